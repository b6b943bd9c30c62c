#!/usr/bin/env bash
# The whole H100 sequence in one device call: CUDA tests, wgpu tests through the NVIDIA Vulkan
# driver, the top-k bench and torch.topk on the same grid, and the joined table. Logs in $OUT.
# Needs `.gpu` (../shared/tools/gpu-bundle.sh, plus the wgpu builds as .gpu/wgpu-test-topk and
# .gpu/wgpu-bench-topk)
# and `.gl` (the Vulkan loader .deb) carried.
set -u
export CUDA_PATH=/usr/local/cuda
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
mode=${1:-all}
if [[ $mode == all || $mode == tests ]]; then
  for t in .gpu/test-*; do "$t" --test-threads=1 > "$OUT/$(basename "$t").log" 2>&1; echo "$t rc=$?" >> "$OUT/summary.txt"; done
  if [[ -x .gpu/wgpu-test-topk ]]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    .gpu/wgpu-test-topk --test-threads=1 > "$OUT/wgpu-test-topk.log" 2>&1; echo "wgpu tests rc=$?" >> "$OUT/summary.txt"
  fi
fi
if [[ $mode == all || $mode == bench ]]; then
  .gpu/bench-topk --bench --csv "$OUT/ours.csv" > "$OUT/bench-topk.log" 2>&1; echo "bench rc=$?" >> "$OUT/summary.txt"
  if [[ -x .gpu/wgpu-bench-topk ]]; then
    .gpu/wgpu-bench-topk --bench --strategies auto,streaming --csv "$OUT/wgpu.csv" > "$OUT/wgpu-bench-topk.log" 2>&1; echo "wgpu bench rc=$?" >> "$OUT/summary.txt"
  fi
  python3 benches/torch_topk.py --csv "$OUT/torch.csv" > "$OUT/torch.log" 2>&1; echo "torch rc=$?" >> "$OUT/summary.txt"
  python3 benches/compare.py "$OUT/ours.csv" "$OUT/torch.csv" > "$OUT/table.md" 2>&1
fi
cat "$OUT/summary.txt"
