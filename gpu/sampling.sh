#!/usr/bin/env bash
# On the GPU machine (no Rust): the sampling tests, the sampling bench, torch's composition on the
# same grid, and the example, with logs under $OUT.
#
# Here: ../shared/tools/gpu-bundle.sh (with BUNDLE_EXAMPLES=1 for the example) builds .gpu/.
# There: bash gpu/sampling.sh tests, then bash gpu/sampling.sh bench (each fits a 10-minute call:
# the bench stops at 420 s, torch at 150 s; the naive Burn path is capped, see benches/sampling.rs).
set -u
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
mode=${1:-all}
summary="$OUT/sampling-summary.txt"; : > "$summary"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
if [[ $mode == all || $mode == tests ]]; then
  # The sampling tests only (the top-k tests share the binary; filter on the module name).
  .gpu/test-topk sampling:: --test-threads=1 --nocapture > "$OUT/test-sampling.log" 2>&1
  echo "sampling tests rc=$?" >> "$summary"
  if [[ -x .gpu/example-generate ]]; then
    .gpu/example-generate > "$OUT/example-generate.log" 2>&1; echo "example rc=$?" >> "$summary"
  fi
fi
if [[ $mode == all || $mode == bench ]]; then
  timeout 420 .gpu/bench-sampling --bench --csv "$OUT/sampling.csv" > "$OUT/bench-sampling.log" 2>&1
  echo "sampling bench rc=$?" >> "$summary"
  timeout 150 python3 benches/torch_sampling.py --csv "$OUT/torch-sampling.csv" > "$OUT/torch-sampling.log" 2>&1
  echo "torch sampling rc=$?" >> "$summary"
fi
cat "$summary"
