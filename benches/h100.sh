#!/usr/bin/env bash
# The H100 sequence, one mode per device call (each fits the 10-minute limit); logs in $OUT.
#
#   bash benches/h100.sh tests      # CUDA test binary (top-k, sampling, autotune), the example,
#                                   # and the wgpu tests if .gpu/wgpu-test-topk and .gl are carried
#   bash benches/h100.sh bench      # top-k bench (auto = the autotuner's pick) + torch.topk + table
#   bash benches/h100.sh autotune   # autotune bench: every candidate next to the pick
#   bash benches/h100.sh sampling   # sampling bench + torch's composition
#   bash benches/h100.sh profile    # ncu stall samples per SASS instruction of one kernel
#                                   # (KERNEL regex, SHAPE B:V:K, STRATEGY; see NOTES.md)
#
# Needs `.gpu` from ../shared/tools/gpu-bundle.sh (BUNDLE_EXAMPLES=1 for the example; binaries may
# be gzipped to fit the 64 MiB tree). Set STRATEGIES to time more than `auto` in `bench`.
set -u
export CUDA_PATH=/usr/local/cuda
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .gpu/*.gz; do [[ -e $f ]] && gunzip -f "$f"; done
chmod +x .gpu/* 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
summary="$OUT/summary.txt"
mode=${1:-tests}
case $mode in
  tests)
    .gpu/test-topk --test-threads=1 > "$OUT/test-topk.log" 2>&1; echo "cuda tests rc=$?" >> "$summary"
    if [[ -x .gpu/example-generate ]]; then
      timeout 60 .gpu/example-generate > "$OUT/example-generate.log" 2>&1; echo "example rc=$?" >> "$summary"
    fi
    if [[ -x .gpu/wgpu-test-topk ]]; then
      for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
      export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
      .gpu/wgpu-test-topk --test-threads=1 > "$OUT/wgpu-test-topk.log" 2>&1; echo "wgpu tests rc=$?" >> "$summary"
    fi
    ;;
  bench)
    timeout 330 .gpu/bench-topk --bench --strategies "${STRATEGIES:-auto}" --csv "$OUT/ours.csv" > "$OUT/bench-topk.log" 2>&1
    echo "bench rc=$?" >> "$summary"
    timeout 200 python3 benches/torch_topk.py --csv "$OUT/torch.csv" > "$OUT/torch.log" 2>&1; echo "torch rc=$?" >> "$summary"
    python3 benches/compare.py "$OUT/ours.csv" "$OUT/torch.csv" > "$OUT/table.md" 2>&1
    ;;
  autotune)
    timeout 560 .gpu/bench-autotune --bench --csv "$OUT/autotune.csv" > "$OUT/autotune.log" 2>&1
    echo "autotune bench rc=$?" >> "$summary"
    ;;
  sampling)
    timeout 330 .gpu/bench-sampling --bench --naive-limit-s 0.5 --csv "$OUT/sampling.csv" > "$OUT/bench-sampling.log" 2>&1
    echo "sampling bench rc=$?" >> "$summary"
    timeout 200 python3 benches/torch_sampling.py --csv "$OUT/torch-sampling.csv" > "$OUT/torch-sampling.log" 2>&1
    echo "torch sampling rc=$?" >> "$summary"
    ;;
  profile)
    shape=${SHAPE:-1:131072:50}
    timeout 200 ncu --clock-control none --kernel-name "regex:${KERNEL:-streaming}" --launch-skip 40 \
      --launch-count 1 --set full --warp-sampling-interval 0 --import-source no -o /tmp/prof \
      .gpu/bench-topk --bench --strategies "${STRATEGY:-streaming}" --shapes "$shape" > "$OUT/ncu.log" 2>&1
    echo "ncu rc=$?" >> "$summary"
    ncu --import /tmp/prof.ncu-rep --page details > "$OUT/details.txt" 2>&1
    ncu --import /tmp/prof.ncu-rep --page source --csv --print-source sass > /tmp/sass.csv 2>&1
    # Per instruction: address, stall samples, times executed, SASS (the whole listing is large).
    python3 - > "$OUT/stalls.txt" <<'PY'
import csv
rows = list(csv.reader(open('/tmp/sass.csv')))
h = next(i for i, r in enumerate(rows) if 'Address' in r)
head = rows[h]
samples = head.index('Warp Stall Sampling (All Samples)')
executed = head.index('Instructions Executed')
source = head.index('Source')
for r in rows[h + 1:]:
    if len(r) > samples:
        print(r[0][-5:], r[samples], r[executed], r[source][:70])
PY
    ;;
esac
cat "$summary"
