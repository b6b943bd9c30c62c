#!/usr/bin/env bash
# The GPU-machine sequence (H100 or H200, CUDA 13), one mode or several per device call; each
# mode fits the 10-minute call limit. Logs go to $OUT.
#
#   bash benches/gpu.sh tests      # the CUDA test binary in parallel groups (one process each,
#                                  # its own autotune cache; each sampling test a group of its own;
#                                  # ONLY=prefix runs the groups so named), the example, and the wgpu
#                                  # test binary through Vulkan if .gpu/wgpu-test-topk and .gl are carried
#   bash benches/gpu.sh bench      # top-k bench (STRATEGIES, default auto; SHAPES B:V:K,... in DTYPE,
#                                  # default f32, or the whole grid) + torch.topk on the same shapes
#                                  # + the table
#   bash benches/gpu.sh ab         # same-call A/B of .gpu/bench-topk-<side> for SIDES (default
#                                  # "base new"; ROUNDS, STRATEGIES, SHAPES): best round, side by side
#   bash benches/gpu.sh autotune   # autotune bench: every candidate next to the pick (AUTOTUNE_TIMEOUT)
#   bash benches/gpu.sh compile    # each candidate's first-call cost, twice: NVRTC + PTX load, then
#                                  # with CubeCL's PTX cache filled (the driver's JIT cache off)
#   bash benches/gpu.sh sampling   # sampling bench + torch's composition
#   bash benches/gpu.sh sampling-ab  # same-call A/B of .gpu/bench-sampling-<side> for SIDES (ROUNDS,
#                                  # SAMPLING_SHAPES B:V,..., MODES, TOPK_STRATEGY): best round, side by side
#   bash benches/gpu.sh kernels    # ncu: GPU time of each kernel of a few calls (SHAPE, STRATEGY)
#   bash benches/gpu.sh profile    # ncu stall samples per SASS instruction of one kernel
#                                  # (KERNEL regex, SHAPE B:V:K, STRATEGY; see NOTES.md)
#   bash benches/gpu.sh rawfloor   # benches/read_floor.cu: the hand-written CUDA floor of each launch
#                                  # shape, then ncu's time for its main shapes
#   bash benches/gpu.sh regs       # registers, stack and spills (ptxas -v) of every kernel one
#                                  # bench call compiles (SHAPE B:V:K, STRATEGY, BENCH)
#   bash benches/gpu.sh pack       # all logs into $OUT/logs.tgz (the device tool returns 8 files)
#
# Needs `.gpu` from ../shared/tools/gpu-bundle.sh (BUNDLE_EXAMPLES=1 for the example; binaries may
# be gzipped to fit the 64 MiB tree). For the wgpu tests, `.gpu/wgpu-test-topk` (the test binary of
# a default-features build) and `.gl` with the Vulkan loader and the libraries the NVIDIA driver's
# ICD links (the device README's list; libvulkan1 alone found no adapter on the H200):
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   mkdir -p .gl /tmp/amd64/partial; apt-get $o update
#   (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
set -u
export CUDA_PATH=/usr/local/cuda
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
repo=$(pwd)
for f in .gpu/*.gz; do [[ -e $f ]] && gunzip -f "$f"; done
chmod +x .gpu/* 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
summary="$OUT/summary.txt"
mode=${1:-tests}
shapes_arg=()
[[ -n ${SHAPES:-} ]] && shapes_arg=(--shapes "$SHAPES" --dtype "${DTYPE:-f32}")

# Runs test binary $1 with filters $3.. in a directory of its own (group name $2), in the
# background: each group is a process with its own CUDA context, NVRTC compilations and autotune
# cache, so the groups compile their kernels in parallel.
test_group() {
  local binary=$1 name=$2; shift 2
  [[ -n ${ONLY:-} && $name != "$ONLY"* ]] && return
  local dir=/tmp/tests-$name
  mkdir -p "$dir" && touch "$dir/Cargo.toml"
  ( cd "$dir" && timeout "${TEST_TIMEOUT:-480}" "$repo/$binary" --test-threads=1 "$@" \
      > "$OUT/test-$name.log" 2>&1; echo "tests $name rc=$?" >> "$summary" ) &
}

# Same-call A/B: .gpu/<bench $1>-<side> run with arguments $4.. for each of SIDES (default
# "base new"), alternating, ROUNDS each, the CSVs named <prefix $2>-<side>-<round>; table $3 puts
# the best round of each side next to the first side's.
ab_rounds() {
  local bench=$1 prefix=$2 table=$3 round side groups=()
  shift 3
  local sides=${SIDES:-base new}
  for round in $(seq "${ROUNDS:-2}"); do
    for side in $sides; do
      timeout "${BENCH_TIMEOUT:-150}" ".gpu/$bench-$side" --bench "$@" \
        --csv "$OUT/$prefix-$side-$round.csv" > "$OUT/$prefix-$side-$round.log" 2>&1
      echo "$prefix $side round $round rc=$?" >> "$summary"
    done
  done
  for side in $sides; do groups+=(--side "$side" "$OUT"/$prefix-$side-*.csv); done
  python3 benches/compare_ab.py "${groups[@]}" > "$OUT/$table" 2>&1
}

case $mode in
  tests)
    t=.gpu/test-topk
    # generate_is_reproducible runs the example (bundle it: BUNDLE_EXAMPLES=1).
    export BURN_TOPK_GENERATE_BIN=$repo/.gpu/example-generate
    test_group $t family kernel_family_shapes
    test_group $t matrix fused_matrix
    test_group $t rows priming_and_overflow radix_select_by_digit row_alone
    # The sampling tests are the suite's longest group run one after another (325 s on the H100):
    # a process each.
    for name in $($t --list 2>/dev/null | sed -n 's/^sampling::\([a-z0-9_]*\): test$/\1/p'); do
      test_group $t "sampling-$name" --exact "sampling::$name"
    done
    timeout 120 $t runtime_report --nocapture > "$OUT/cuda-adapter.log" 2>&1
    test_group $t grid rows_beyond_one_grid_axis
    test_group $t rest --skip kernel_family_shapes --skip fused_matrix --skip priming_and_overflow \
      --skip radix_select_by_digit --skip row_alone --skip sampling --skip rows_beyond_one_grid_axis
    if [[ -x .gpu/wgpu-test-topk ]]; then
      for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
      export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
      export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
      { ldconfig -p | grep -E 'libvulkan|libGLdispatch|libEGL'; ls /usr/local/nvidia/share/vulkan/icd.d/; } > "$OUT/vulkan.txt" 2>&1
      w=.gpu/wgpu-test-topk
      timeout 120 $w runtime_report --nocapture > "$OUT/wgpu-adapter.log" 2>&1
      test_group $w wgpu-topk --skip sampling
      test_group $w wgpu-sampling sampling
    fi
    if [[ -x .gpu/example-generate ]]; then
      timeout 120 .gpu/example-generate > "$OUT/example-generate.log" 2>&1; echo "example rc=$?" >> "$summary"
    fi
    wait
    grep -h '^test result\|FAILED\|panicked' "$OUT"/test-*.log >> "$summary"
    ;;
  bench)
    timeout "${BENCH_TIMEOUT:-330}" .gpu/bench-topk --bench --strategies "${STRATEGIES:-auto}" \
      "${shapes_arg[@]}" --csv "$OUT/ours.csv" > "$OUT/bench-topk.log" 2>&1
    echo "bench rc=$?" >> "$summary"
    timeout "${TORCH_TIMEOUT:-200}" python3 benches/torch_topk.py "${shapes_arg[@]}" --csv "$OUT/torch.csv" > "$OUT/torch.log" 2>&1
    echo "torch rc=$?" >> "$summary"
    python3 benches/compare.py "$OUT/ours.csv" "$OUT/torch.csv" > "$OUT/table.md" 2>&1
    ;;
  ab)
    ab_rounds bench-topk ab ab.md --strategies "${STRATEGIES:-auto}" "${shapes_arg[@]}"
    ;;
  sampling-ab)
    # Without the naive path; SAMPLING_SHAPES B:V,..., MODES and TOPK_STRATEGY as the bench takes them.
    args=(--naive-limit-s 0)
    [[ -n ${SAMPLING_SHAPES:-} ]] && args+=(--shapes "$SAMPLING_SHAPES")
    [[ -n ${MODES:-} ]] && args+=(--modes "$MODES")
    [[ -n ${TOPK_STRATEGY:-} ]] && args+=(--top-k-strategy "$TOPK_STRATEGY")
    ab_rounds bench-sampling sab sampling-ab.md "${args[@]}"
    ;;
  autotune)
    # AUTOTUNE_ARGS: e.g. "--dtype bf16" for one half of the grid.
    timeout "${AUTOTUNE_TIMEOUT:-560}" .gpu/bench-autotune --bench ${AUTOTUNE_ARGS:-} --csv "$OUT/autotune.csv" > "$OUT/autotune.log" 2>&1
    echo "autotune bench rc=$?" >> "$summary"
    ;;
  compile)
    dir=/tmp/compile-cost
    mkdir -p "$dir" && touch "$dir/Cargo.toml"
    printf '[compilation]\ncache = "local"\n' > "$dir/cubecl.toml"
    for run in nvrtc ptx-cache; do
      ( cd "$dir" && CUDA_CACHE_DISABLE=1 timeout "${COMPILE_TIMEOUT:-150}" "$repo/.gpu/bench-autotune" \
          --compile-cost > "$OUT/compile-$run.log" 2>&1; echo "compile $run rc=$?" >> "$summary" )
    done
    ;;
  sampling)
    timeout 330 .gpu/bench-sampling --bench --naive-limit-s 0.5 --csv "$OUT/sampling.csv" > "$OUT/bench-sampling.log" 2>&1
    echo "sampling bench rc=$?" >> "$summary"
    timeout 200 python3 benches/torch_sampling.py --csv "$OUT/torch-sampling.csv" > "$OUT/torch-sampling.log" 2>&1
    echo "torch sampling rc=$?" >> "$summary"
    ;;
  kernels)
    # The bench's warm-up calls come first: skip them, then time each kernel of a few calls.
    for shape in ${SHAPE:-1:131072:1024}; do
      timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum \
        --launch-skip "${SKIP:-20}" --launch-count "${COUNT:-12}" \
        "${BENCH:-.gpu/bench-topk}" --bench --strategies "${STRATEGY:-radix}" --shapes "$shape" \
        > /tmp/ncu-kernels.log 2>&1
      echo "ncu kernels $shape rc=$?" >> "$summary"
      { echo "== $shape ${STRATEGY:-radix}"; grep -E 'Context|gpu__time_duration' /tmp/ncu-kernels.log | sed -E 's/\(([0-9]+, ){2}[0-9]+\)x/&/; s/, Context.*//'; } >> "$OUT/kernels.txt"
    done
    ;;
  profile)
    shape=${SHAPE:-1:131072:50}
    timeout 200 ncu --clock-control none --kernel-name "regex:${KERNEL:-streaming}" --launch-skip 40 \
      --launch-count 1 --set full --warp-sampling-interval 0 --import-source no -f -o /tmp/prof \
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
  rawfloor)
    /usr/local/cuda/bin/nvcc -O3 -arch=sm_90a -o /tmp/read_floor benches/read_floor.cu
    timeout 120 /tmp/read_floor > "$OUT/rawfloor.txt" 2>&1
    echo "rawfloor rc=$?" >> "$summary"
    timeout 60 ncu --clock-control none --metrics \
      gpu__time_duration.sum,dram__bytes_read.sum,smsp__inst_executed.sum,launch__registers_per_thread \
      --kernel-name regex:read_part --launch-skip 40 --launch-count 8 /tmp/read_floor ncu \
      > "$OUT/rawfloor-ncu.txt" 2>&1
    echo "rawfloor ncu rc=$?" >> "$summary"
    ;;
  regs)
    # CubeCL's compilation log holds each kernel's CUDA source and parameters; nvcc compiles
    # each source again with ptxas -v (the 64-register cap of a 1024-unit cube is where spills
    # start).
    rm -f /tmp/cubecl-regs.log
    CUBECL_DEBUG_LOG=/tmp/cubecl-regs.log timeout 120 "${BENCH:-.gpu/bench-topk}" --bench \
      --strategies "${STRATEGY:-streaming}" --shapes "${SHAPE:-64:131072:1024}" > /dev/null 2>&1
    echo "regs ${SHAPE:-64:131072:1024} ${BENCH:-.gpu/bench-topk} rc=$?" >> "$summary"
    python3 benches/kernel_regs.py /tmp/cubecl-regs.log "${NVCC:-/usr/local/cuda/bin/nvcc}" \
      >> "$OUT/regs.txt" 2>&1
    ;;
  pack)
    # The device tool brings back at most 8 files: everything in one archive, the summary and
    # the table beside it.
    tar czf /tmp/logs.tgz -C "$OUT" . && find "$OUT" -type f ! -name summary.txt ! -name table.md ! -name ab.md ! -name sampling-ab.md -delete
    mv /tmp/logs.tgz "$OUT/logs.tgz"
    ;;
esac
cat "$summary"
