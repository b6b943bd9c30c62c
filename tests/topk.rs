//! The top-k test matrix, run on the runtime the features select: wgpu by default (a software
//! Vulkan adapter when no GPU is present), CUDA with `--features cuda`. Every case is compared with
//! `burn_topk::reference`, exactly: value bits and indices.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Shape, Tensor, TensorData};
use burn_topk::options::{RadixSelectParams, StreamingParams, TwoStageParams};
use burn_topk::{Strategy, TopKBackend, TopKError, TopKExt, TopKOptions, reference};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[cfg(feature = "cuda")]
mod gpu {
    pub type Fused = burn::backend::Cuda;
    pub type Plain = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;
    pub type Rt = cubecl::cuda::CudaRuntime;
}
#[cfg(not(feature = "cuda"))]
mod gpu {
    pub type Fused = burn::backend::Wgpu;
    pub type Plain = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;
    pub type Rt = cubecl::wgpu::WgpuRuntime;
}
use gpu::{Fused, Plain};

/// The sampling and autotune tests, in this same binary (one test binary keeps the GPU bundle
/// small).
mod autotune;
mod sampling;

fn gpu_device() -> burn::tensor::Device<Fused> {
    burn_topk::device::default_device()
}

/// A fresh seed per run, printed so a failure can be replayed with `BURN_TOPK_TEST_SEED`.
fn rng(case: &str) -> StdRng {
    let seed = std::env::var("BURN_TOPK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    println!("{case}: seed {seed}");
    StdRng::seed_from_u64(seed)
}

fn random_values(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-10.0f32..10.0)).collect()
}

fn few_values(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(0..4) as f32).collect()
}

/// The values `specials` draws from; the first six (NaN of both signs, ±inf, ±0) are the ones a
/// float compare or a key mapping can get wrong.
const SPECIALS: [f32; 14] = [
    f32::NAN,
    -f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1e-45,
    -1e-45,
];

fn specials(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| SPECIALS[rng.random_range(0..SPECIALS.len())])
        .collect()
}

/// Random values with a few specials (NaN of both signs, ±inf, ±0) spread over the row, one of
/// them a NaN among the first elements: what a priming sample meets in a real row, where a
/// running max may pass over a NaN that the row's top-k must still hold.
fn sparse_specials(rng: &mut StdRng, n: usize) -> Vec<f32> {
    let pool = &SPECIALS[..6];
    let mut values = random_values(rng, n);
    for _ in 0..n.div_ceil(500) {
        let at = rng.random_range(0..n);
        values[at] = pool[rng.random_range(0..pool.len())];
    }
    values[rng.random_range(0..n.min(64))] = f32::NAN;
    values
}

/// Bits of a value after a round trip through `dtype`, so the reference sees what the device sees.
fn bits_of(data: &TensorData) -> Vec<u64> {
    match data.dtype {
        DType::F32 => data.iter::<f32>().map(|v| v.to_bits() as u64).collect(),
        DType::F16 => data
            .as_slice::<half::f16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::BF16 => data
            .as_slice::<half::bf16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::F64 => data.iter::<f64>().map(|v| v.to_bits()).collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

fn reference_of(data: &TensorData, k: usize, dim: usize, largest: bool) -> (TensorData, Vec<i64>) {
    let shape = data.shape.clone();
    macro_rules! run {
        ($t:ty) => {{
            let (v, i) =
                reference::top_k(data.as_slice::<$t>().unwrap(), &shape, k, dim, largest).unwrap();
            let mut out_shape = shape.to_vec();
            out_shape[dim] = k;
            (
                TensorData::new(v, out_shape),
                i.into_iter().map(|i| i as i64).collect(),
            )
        }};
    }
    match data.dtype {
        DType::F32 => run!(f32),
        DType::F16 => run!(half::f16),
        DType::BF16 => run!(half::bf16),
        DType::F64 => run!(f64),
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// Runs a top-k of `tensor` and compares it with the reference, exactly.
fn check_tensor<B: TopKBackend, const D: usize>(
    tensor: Tensor<B, D>,
    k: usize,
    dim: usize,
    options: TopKOptions,
    what: &str,
) {
    try_check_tensor(tensor, k, dim, options, what).unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// [`check_tensor`] for a call that may be refused: returns the error instead of panicking on it
/// (a wrong result still panics).
fn try_check_tensor<B: TopKBackend, const D: usize>(
    tensor: Tensor<B, D>,
    k: usize,
    dim: usize,
    options: TopKOptions,
    what: &str,
) -> Result<(), TopKError> {
    let input = tensor.to_data();
    let device = tensor.device();
    let (values, indices) = tensor.try_top_k_with(k, dim, options)?;
    let (want_values, want_indices) = reference_of(&input, k, dim, options.largest);
    let got_indices: Vec<i64> = indices.into_data().convert::<i64>().to_vec().unwrap();
    let got_values = values.into_data();
    // A launch the runtime refused (CubeCL reports it at the next synchronisation, while
    // `into_data` returns whatever the buffer held) fails here with the runtime's reason.
    B::sync(&device).unwrap_or_else(|e| panic!("{what}: the device reported {e:?}"));
    assert_eq!(got_values.shape, want_values.shape, "{what}: shape");
    assert_same(&got_indices, &want_indices, &format!("{what}: indices"));
    assert_same(
        &bits_of(&got_values),
        &bits_of(&want_values),
        &format!("{what}: value bits"),
    );
    Ok(())
}

/// Equal slices, or a panic naming the first difference (whole vectors are too long to print).
fn assert_same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(at) = (0..got.len()).find(|&i| got[i] != want[i]) {
        let wrong = (0..got.len()).filter(|&i| got[i] != want[i]).count();
        panic!(
            "{what}: {wrong} of {} differ, first at {at}: got {:?}, want {:?}",
            got.len(),
            got[at],
            want[at]
        );
    }
}

fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The foundation matrix on one backend.
fn matrix<B: TopKBackend>(device: &B::Device, strategy: Strategy) {
    let mut rng = rng("matrix");
    let lengths = [1usize, 3, 31, 257, 65537];
    for &len in &lengths {
        let rows = if len > 1000 { 2 } else { 5 };
        let ks: Vec<usize> = [1, 2, len / 2, len - 1, len]
            .into_iter()
            .filter(|&k| k >= 1 && k <= len)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for (name, values) in [
            ("random", random_values(&mut rng, rows * len)),
            ("ties", few_values(&mut rng, rows * len)),
            ("equal", vec![3.5; rows * len]),
            ("specials", specials(&mut rng, rows * len)),
        ] {
            for &k in &ks {
                for largest in [true, false] {
                    let options = TopKOptions { largest, strategy };
                    let what = format!("{name} rows={rows} len={len} k={k} largest={largest}");
                    check_tensor(
                        tensor::<B, 2>(values.clone(), [rows, len], device),
                        k,
                        1,
                        options,
                        &what,
                    );
                }
            }
        }
    }
}

/// Rank 1 and 3, every dim, transposed and permuted views.
fn layouts<B: TopKBackend>(device: &B::Device, strategy: Strategy) {
    let mut rng = rng("layouts");
    let options = TopKOptions::largest().with_strategy(strategy);
    let v = random_values(&mut rng, 300);
    check_tensor(
        tensor::<B, 1>(v.clone(), [300], device),
        7,
        0,
        options,
        "rank 1",
    );
    check_tensor(
        tensor::<B, 1>(v.clone(), [300], device),
        300,
        0,
        TopKOptions::smallest().with_strategy(strategy),
        "rank 1 smallest k = len",
    );

    let v = few_values(&mut rng, 4 * 37 * 5);
    for dim in 0..3 {
        for k in [1, 3] {
            check_tensor(
                tensor::<B, 3>(v.clone(), [4, 37, 5], device),
                k,
                dim,
                options,
                &format!("rank 3 dim {dim} k {k}"),
            );
        }
    }
    // Transposed: the selected dim has a large stride.
    let t = tensor::<B, 2>(random_values(&mut rng, 33 * 70), [33, 70], device).transpose();
    check_tensor(t.clone(), 5, 1, options, "transposed dim 1");
    check_tensor(t, 70, 0, options, "transposed dim 0");
    let p = tensor::<B, 3>(specials(&mut rng, 6 * 9 * 11), [6, 9, 11], device).permute([2, 0, 1]);
    check_tensor(p.clone(), 4, 1, options, "permuted dim 1");
    check_tensor(p, 9, 2, options, "permuted dim 2");
    // A slice: offset and strides from a narrowed view.
    let s = tensor::<B, 2>(random_values(&mut rng, 8 * 40), [8, 40], device).narrow(1, 3, 30);
    check_tensor(s, 10, 1, options, "narrowed");
}

/// Half-precision dtypes where the device has them (checked on the device's own terms).
fn half_dtypes<B: TopKBackend>(device: &B::Device, strategy: Strategy) {
    let mut rng = rng("half");
    for dtype in [DType::F16, DType::BF16] {
        if !B::supports_dtype(device, dtype) {
            println!("{dtype:?} not supported on this device: skipped");
            continue;
        }
        for (name, values) in [
            ("random", random_values(&mut rng, 3 * 1000)),
            ("ties", few_values(&mut rng, 3 * 1000)),
            ("specials", specials(&mut rng, 3 * 1000)),
        ] {
            for largest in [true, false] {
                let options = TopKOptions { largest, strategy };
                let t = tensor::<B, 2>(values.clone(), [3, 1000], device).cast(dtype);
                check_tensor(t, 100, 1, options, &format!("{dtype:?} {name} {largest}"));
            }
        }
    }
}

/// Every error, returned before any launch, and the panicking form's message.
fn errors<B: TopKBackend>(device: &B::Device) {
    let t = || tensor::<B, 2>(vec![1.0; 12], [3, 4], device);
    assert_eq!(t().try_top_k(0, 1).err(), Some(TopKError::KIsZero));
    assert_eq!(
        t().try_top_k(5, 1).err(),
        Some(TopKError::KTooLarge {
            k: 5,
            len: 4,
            dim: 1
        })
    );
    assert_eq!(
        t().try_top_k(1, 2).err(),
        Some(TopKError::DimOutOfRange { dim: 2, rank: 2 })
    );
    let empty = Tensor::<B, 2>::empty([3, 0], device);
    assert_eq!(
        empty.try_top_k(1, 1).err(),
        Some(TopKError::EmptyDim {
            dim: 1,
            shape: vec![3, 0]
        })
    );
    // Other dims may be empty: the result is empty too.
    let (v, i) = Tensor::<B, 2>::empty([0, 5], device).top_k(2, 1);
    assert_eq!(v.dims(), [0, 2]);
    assert_eq!(i.dims(), [0, 2]);
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t().top_k(9, 0))).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("k = 9 is larger than the length 3"),
        "{message}"
    );
}

/// Every exact strategy, with tunings that stress them on small inputs: the smallest cubes,
/// one vector per unit, and tiles so narrow that most rows split into many. With
/// `BURN_TOPK_TEST_FIXED_STRATEGIES` set (CI's second pass, at another plane size), only the fixed
/// strategies: `Auto` and the heuristic run their kernels, and `Auto` would time every candidate
/// of each key again (`autotune_choice_runs_and_matches` still runs it there).
fn strategies() -> Vec<(&'static str, Strategy)> {
    let mut list = vec![
        ("auto", Strategy::Auto),
        ("heuristic", Strategy::Heuristic),
        ("streaming", Strategy::streaming()),
        (
            "streaming-1-vector",
            Strategy::Streaming(StreamingParams {
                planes_per_cube: None,
                vectors_per_unit: Some(1),
            }),
        ),
        ("two-stage", Strategy::two_stage()),
        (
            "two-stage-narrow",
            Strategy::TwoStage(TwoStageParams {
                tile_width: Some(40),
                planes_per_cube: None,
            }),
        ),
        ("radix", Strategy::radix_select()),
    ];
    if std::env::var_os("BURN_TOPK_TEST_FIXED_STRATEGIES").is_some() {
        list.retain(|(_, strategy)| !matches!(strategy, Strategy::Auto | Strategy::Heuristic));
    }
    list
}

#[test]
fn fused_matrix() {
    let device = gpu_device();
    for (name, strategy) in strategies() {
        println!("strategy {name}");
        matrix::<Fused>(&device, strategy);
    }
}

#[test]
fn fused_layouts_and_dtypes() {
    let device = gpu_device();
    for (name, strategy) in strategies() {
        println!("strategy {name}");
        layouts::<Fused>(&device, strategy);
        half_dtypes::<Fused>(&device, strategy);
    }
}

/// The kernels issue's shapes: a row of 1M elements, a batch of 4096 rows, the k that sit on
/// plane and buffer boundaries, half-precision rows full of exact ties.
#[test]
fn kernel_family_shapes() {
    let device = gpu_device();
    let mut rng = rng("family");
    let long = random_values(&mut rng, 1 << 20);
    let long_ties = few_values(&mut rng, 1 << 20);
    let batch = random_values(&mut rng, 4096 * 300);
    let mid = specials(&mut rng, 3 * 5000);
    for (name, strategy) in strategies() {
        println!("strategy {name}");
        for k in [1, 33, 2048] {
            check_tensor(
                tensor::<Fused, 2>(long.clone(), [1, 1 << 20], &device),
                k,
                1,
                TopKOptions::largest().with_strategy(strategy),
                &format!("{name}: 1M random k={k}"),
            );
        }
        check_tensor(
            tensor::<Fused, 2>(long_ties.clone(), [1, 1 << 20], &device),
            100,
            1,
            TopKOptions::smallest().with_strategy(strategy),
            &format!("{name}: 1M ties k=100 smallest"),
        );
        for k in [1, 50, 300] {
            check_tensor(
                tensor::<Fused, 2>(batch.clone(), [4096, 300], &device),
                k,
                1,
                TopKOptions::largest().with_strategy(strategy),
                &format!("{name}: 4096 rows k={k}"),
            );
        }
        // 1200: on a 32 KiB device the default 1024-unit cube has no room for its buffer, 256 does.
        for k in [1, 2, 31, 32, 33, 64, 100, 1000, 1200, 2048, 5000] {
            check_tensor(
                tensor::<Fused, 2>(mid.clone(), [3, 5000], &device),
                k,
                1,
                TopKOptions::largest().with_strategy(strategy),
                &format!("{name}: specials k={k}"),
            );
        }
        for dtype in [DType::F16, DType::BF16] {
            if Fused::supports_dtype(&device, dtype) {
                let t = tensor::<Fused, 2>(few_values(&mut rng, 4 * 20000), [4, 20000], &device)
                    .cast(dtype);
                check_tensor(
                    t,
                    1000,
                    1,
                    TopKOptions::largest().with_strategy(strategy),
                    &format!("{name}: {dtype:?} ties k=1000"),
                );
            }
        }
    }
    // k = length: beyond the streaming buffer, so every strategy runs radix select. A 1M row on
    // real GPUs; lavapipe gives wrong sorts past about 200k candidates in one cube (NOTES.md).
    let len = if cfg!(feature = "cuda") {
        1 << 20
    } else {
        1 << 17
    };
    check_tensor(
        tensor::<Fused, 2>(long[..len].to_vec(), [1, len], &device),
        len,
        1,
        TopKOptions::largest().with_strategy(Strategy::streaming()),
        "1M k=len",
    );
}

/// More rows than one axis of a launch grid holds (65535 cubes): the cubes of one-cube-per-row
/// kernels spill onto the grid's second axis, and each must still find its own row.
#[test]
fn rows_beyond_one_grid_axis() {
    let device = gpu_device();
    let mut rng = rng("many rows");
    let (rows, len) = (70000usize, 40usize);
    let values = random_values(&mut rng, rows * len);
    // Lavapipe runs 70000 cubes slowly (seconds per launch, and Auto times a dozen candidates):
    // there, one kernel per launch path, the streaming kernel and radix select.
    let cases: Vec<(&str, Strategy, usize)> = if cfg!(feature = "cuda") {
        strategies()
            .into_iter()
            .flat_map(|(name, strategy)| [(name, strategy, 1), (name, strategy, len)])
            .collect()
    } else {
        vec![
            ("streaming", Strategy::streaming(), 1),
            ("radix", Strategy::radix_select(), len),
        ]
    };
    for (name, strategy, k) in cases {
        let started = std::time::Instant::now();
        check_tensor(
            tensor::<Fused, 2>(values.clone(), [rows, len], &device),
            k,
            1,
            TopKOptions::largest().with_strategy(strategy),
            &format!("{name}: {rows}x{len} k={k}"),
        );
        println!("{name} k={k}: {:.1} s", started.elapsed().as_secs_f32());
    }
    if cfg!(feature = "cuda") {
        // The same rows as columns: the rows run along dimension 0, `len` apart.
        check_tensor(
            tensor::<Fused, 2>(values, [len, rows], &device),
            3,
            0,
            TopKOptions::largest(),
            &format!("{rows} columns of {len}"),
        );
    }
}

/// Burn's own sort is not stable, so it is compared on distinct values only.
#[test]
fn burn_builtin_strategy() {
    let device = gpu_device();
    let mut rng = rng("builtin");
    let mut values: Vec<f32> = (0..3 * 700).map(|i| i as f32 * 0.25 - 100.0).collect();
    for i in (1..values.len()).rev() {
        values.swap(i, rng.random_range(0..=i));
    }
    for largest in [true, false] {
        let options = TopKOptions {
            largest,
            strategy: Strategy::BurnBuiltin,
        };
        check_tensor(
            tensor::<Fused, 2>(values.clone(), [3, 700], &device),
            20,
            1,
            options,
            &format!("burn builtin largest={largest}"),
        );
    }
}

#[test]
fn strategy_names_and_params() {
    assert_eq!(Strategy::from_name("two-stage"), Ok(Strategy::two_stage()));
    assert_eq!(Strategy::from_name("Radix"), Ok(Strategy::radix_select()));
    assert_eq!(Strategy::from_name("burn"), Ok(Strategy::BurnBuiltin));
    assert_eq!(Strategy::from_name("auto"), Ok(Strategy::Auto));
    assert_eq!(Strategy::from_name("heuristic"), Ok(Strategy::Heuristic));
    assert_eq!(Strategy::from_name("streaming"), Ok(Strategy::streaming()));
    assert!(matches!(
        Strategy::from_name("fastest"),
        Err(TopKError::UnknownStrategy { .. })
    ));
    // The names the errors list are the names the parser takes.
    for name in burn_topk::options::STRATEGY_NAMES.split(", ") {
        assert!(Strategy::from_name(name).is_ok(), "{name}");
    }
    let device = gpu_device();
    let t = || tensor::<Fused, 2>(vec![1.0; 2 * 512], [2, 512], &device);
    for strategy in [
        Strategy::Streaming(StreamingParams {
            planes_per_cube: Some(1),
            vectors_per_unit: None,
        }),
        Strategy::Streaming(StreamingParams {
            planes_per_cube: None,
            vectors_per_unit: Some(100),
        }),
        Strategy::TwoStage(TwoStageParams {
            tile_width: Some(0),
            planes_per_cube: None,
        }),
    ] {
        let result = t().try_top_k_with(3, 1, TopKOptions::largest().with_strategy(strategy));
        assert!(
            matches!(result, Err(TopKError::InvalidParams { .. })),
            "{strategy:?}"
        );
    }
}

/// `BURN_TOPK_STRATEGY` in a child process (the variable is process-wide): each name replaces
/// `Auto` (so nothing is tuned) and gives the reference's answer; an unknown name is a typed
/// error from top-k and from sampling, while explicit strategies are not overridden.
#[test]
fn strategy_env_override() {
    for name in [
        "radix",
        "streaming",
        "two-stage",
        "heuristic",
        "burn",
        "bogus",
    ] {
        run_child_test("strategy_env_child", ("BURN_TOPK_STRATEGY", name), None);
    }
}

/// Runs the ignored test `test` of this binary in a child process with one environment variable
/// set (and in `dir` if given), and fails unless it passed.
fn run_child_test(test: &str, (var, value): (&str, &str), dir: Option<&std::path::Path>) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--ignored", "--nocapture"])
        .env(var, value);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} with {var}={value} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "a phase of strategy_env_override"]
fn strategy_env_child() {
    use burn_topk::sampling::{SampleExt, SamplingError, SamplingParams};
    let name = std::env::var("BURN_TOPK_STRATEGY").expect("run by the parent test");
    let device = gpu_device();
    let mut rng = rng("strategy env");
    let values = random_values(&mut rng, 2 * 3000);
    let rows = || tensor::<Fused, 2>(values.clone(), [2, 3000], &device);
    let explicit = TopKOptions::largest().with_strategy(Strategy::radix_select());
    check_tensor(rows(), 5, 1, explicit, "explicit radix");
    if name == "bogus" {
        let unknown = Some(TopKError::UnknownStrategy { name: name.clone() });
        assert_eq!(rows().try_top_k(5, 1).err(), unknown);
        let sampled = rows().try_sample(&SamplingParams::new().top_k(5));
        assert!(
            matches!(sampled, Err(SamplingError::UnknownStrategy { name: ref n }) if *n == name),
            "{sampled:?}"
        );
    } else {
        check_tensor(rows(), 5, 1, TopKOptions::largest(), &name);
        let tokens = rows()
            .sample(&SamplingParams::new().temperature(0.0))
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        let argmax: Vec<i64> = values
            .chunks(3000)
            .map(|row| reference::top_k_row(row, 1, true)[0].1 as i64)
            .collect();
        assert_eq!(tokens, argmax, "greedy tokens");
    }
    assert_eq!(
        burn_topk::autotune::tuning_count(),
        0,
        "{name} replaces the autotuner"
    );
}

/// Which runtime and adapter the tests run on: `--nocapture` prints it (the GPU machine's log
/// shows the wgpu tests on the NVIDIA Vulkan driver at plane size 32, CI's on lavapipe at 8 and
/// 16). With `BURN_TOPK_EXPECT_PLANE_SIZE` set, the plane size must be that.
/// `examples/generate.rs` writes the same text on every run with its default seed (issue 5).
/// Runs the example binary that `cargo test` builds beside this one (or the one
/// `BURN_TOPK_GENERATE_BIN` names, as on the GPU machine) twice, for a short text per mode.
#[test]
fn generate_is_reproducible() {
    let binary = std::env::var_os("BURN_TOPK_GENERATE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            profile_dir
                .join("examples")
                .join(format!("generate{}", std::env::consts::EXE_SUFFIX))
        });
    assert!(
        binary.exists(),
        "no example binary at {} (`cargo test` builds it; `--test topk` alone does not: run \
         `cargo build --release --example generate`, or set BURN_TOPK_GENERATE_BIN)",
        binary.display()
    );
    let run = || {
        let output = std::process::Command::new(&binary)
            .args(["--chars", "40"])
            .output()
            .expect("spawn the example");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "the example failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Everything but the timings: "[mode] (0.12 s)" and the training's ", 0.3 s".
        stdout
            .lines()
            .map(|line| match line.find(" (") {
                Some(at) if line.starts_with('[') => &line[..at],
                _ if line.starts_with("trained") => line.rsplit_once(", ").map_or(line, |(l, _)| l),
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = run();
    let modes = first.lines().filter(|line| line.starts_with('[')).count();
    assert_eq!(modes, 7, "one text per sampling mode:\n{first}");
    assert_eq!(first, run(), "a second run of the example wrote other text");
}

#[test]
fn runtime_report() {
    use cubecl::Runtime;
    let device = gpu_device();
    let client = gpu::Rt::client(&device);
    let hardware = &client.properties().hardware;
    println!(
        "{} on {device:?}: plane size {}..={}, {} units per cube, {} KiB shared memory, {:?} processors",
        gpu::Rt::name(&client),
        hardware.plane_size_min,
        hardware.plane_size_max,
        hardware.max_units_per_cube,
        hardware.max_shared_memory_size / 1024,
        hardware.num_streaming_multiprocessors,
    );
    assert!(hardware.plane_size_min >= 1 && hardware.plane_size_min <= hardware.plane_size_max);
    // CI's second pass asks lavapipe for wider planes; this fails if the driver ignored it.
    if let Ok(expected) = std::env::var("BURN_TOPK_EXPECT_PLANE_SIZE") {
        let expected: u32 = expected
            .parse()
            .expect("BURN_TOPK_EXPECT_PLANE_SIZE is a number");
        assert_eq!(hardware.plane_size_max, expected, "plane size");
    }
}

mod plane_probe {
    use burn_topk::kernels::primitives::{converge_planes, cube_exclusive_sum, linear_unit};
    use cubecl::prelude::*;

    /// Plane ops after loops whose trip count differs from lane to lane, in the shapes the kernels
    /// have before one: a few trips in some lanes, one trip in the first lanes, a strided walk,
    /// and a contiguous block per unit that is short at the row's end before a cube scan. A
    /// SPIR-V plane op acts on the lanes that run it together, and a driver need not bring a
    /// plane back together after such a loop, so the kernels call `converge_planes` before
    /// their plane ops (`cube_exclusive_sum` calls it itself).
    #[cube(launch)]
    pub fn plane_ops_after_loops_kernel(
        data: &Array<u32>,
        out: &mut Array<u32>,
        count: u32,
        len: u32,
    ) {
        let lane = UNIT_POS_PLANE;
        let unit = linear_unit();
        let cube = CUBE_DIM as usize;
        let mut acc = 0u32;
        let mut i = 0u32;
        while i < lane % 3u32 {
            acc += data[i as usize];
            i += 1u32;
        }
        converge_planes();
        out[unit] = plane_inclusive_sum(1u32);
        let lo = min(lane, count);
        let hi = min(lo + 1u32, count);
        for j in lo..hi {
            acc += data[j as usize];
        }
        converge_planes();
        out[cube + unit] = plane_sum(1u32);
        let mut best = 0i32;
        let mut j = lane;
        while j < count * 3u32 {
            best = max(best, i32::cast_from(data[j as usize]));
            j += PLANE_DIM;
        }
        converge_planes();
        out[2 * cube + unit] = u32::cast_from(plane_max(best));
        let block = len.div_ceil(CUBE_DIM);
        let start = min(unit as u32 * block, len);
        let end = min(start + block, len);
        let mut ones = 0u32;
        for i in start..end {
            ones += select(data[(i % 256u32) as usize] < 256u32, 1u32, 0u32);
        }
        let mut scratch = SharedMemory::<u32>::new(257usize);
        let (before, total) = cube_exclusive_sum(ones, &mut scratch);
        out[3 * cube + unit] = before;
        out[4 * cube + unit] = total;
        out[5 * cube + unit] = acc;
    }
}

#[test]
fn plane_ops_after_divergent_loops() {
    use cubecl::prelude::*;
    let device = gpu_device();
    let client = gpu::Rt::client(&device);
    let plane = client.properties().hardware.plane_size_max as usize;
    // Some lanes of each plane run a trip of the second and third loops, the others none.
    let count = (plane / 4).max(1) as u32;
    let units = 8 * plane;
    // Blocks of 7 elements, the last unit's shorter, and the last plane's final units empty.
    let len = units * 7 - 13 - 7 * (plane / 2);
    let data: Vec<u32> = (0..256u32).collect();
    let data = client.create_from_slice(u32::as_bytes(&data));
    let out = client.empty(6 * units * 4);
    plane_probe::plane_ops_after_loops_kernel::launch::<gpu::Rt>(
        &client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(units as u32),
        unsafe { ArrayArg::from_raw_parts(data, 256) },
        unsafe { ArrayArg::from_raw_parts(out.clone(), 6 * units) },
        count,
        len as u32,
    );
    let got = u32::from_bytes(&client.read_one_unchecked(out)).to_vec();
    let block = len.div_ceil(units);
    let want: Vec<u32> = (0..units)
        .map(|u| (u % plane) as u32 + 1)
        .chain((0..units).map(|_| plane as u32))
        .chain((0..units).map(|_| count * 3 - 1))
        .chain((0..units).map(|u| len.min(u * block) as u32))
        .chain((0..units).map(|_| len as u32))
        .collect();
    for (at, what) in [
        "inclusive sum after a loop of lane % 3 trips",
        "sum after a loop of 0 or 1 trips",
        "max after a strided walk",
        "cube scan after blocks of 0 to 7 elements: prefix",
        "cube scan after blocks of 0 to 7 elements: total",
    ]
    .iter()
    .enumerate()
    {
        assert_same(
            &got[at * units..(at + 1) * units],
            &want[at * units..(at + 1) * units],
            what,
        );
    }
}

#[test]
fn plain_cube_backend() {
    let device = gpu_device();
    layouts::<Plain>(&device, Strategy::Auto);
    half_dtypes::<Plain>(&device, Strategy::Auto);
    errors::<Plain>(&device);
}

#[test]
fn fused_errors() {
    let device = gpu_device();
    errors::<Fused>(&device);
    // f64 is refused by the device kernels where the device could hold it.
    if Fused::supports_dtype(&device, DType::F64) {
        let t = tensor::<Fused, 2>(vec![1.0; 6], [2, 3], &device).cast(DType::F64);
        assert!(matches!(
            t.try_top_k(1, 1),
            Err(TopKError::UnsupportedDType {
                dtype: DType::F64,
                ..
            })
        ));
    }
    // Checked from the shape alone (nothing allocated): f64 and half types the device lacks
    // are refused, and so is a tensor past the kernels' 32-bit addressing, by one element.
    let check = |dtype: DType, dims: [usize; 2], strategy: Strategy| {
        Fused::check_top_k(
            &device,
            dtype,
            &Shape::new(dims),
            5,
            1,
            TopKOptions::largest().with_strategy(strategy),
        )
    };
    assert!(matches!(
        check(DType::F64, [2, 30], Strategy::Auto),
        Err(TopKError::UnsupportedDType { .. })
    ));
    for dtype in [DType::F16, DType::BF16] {
        let result = check(dtype, [2, 30], Strategy::Auto);
        if Fused::supports_dtype(&device, dtype) {
            assert_eq!(result, Ok(()), "{dtype:?}");
        } else {
            assert!(
                matches!(result, Err(TopKError::UnsupportedDType { .. })),
                "{dtype:?}: {result:?}"
            );
        }
    }
    let max = u32::MAX as usize;
    for strategy in [Strategy::streaming(), Strategy::Auto] {
        assert_eq!(check(DType::F32, [3, max / 3], strategy), Ok(()));
        assert_eq!(
            check(DType::F32, [4096, 1 << 20], strategy),
            Err(TopKError::TooLarge {
                elements: 1 << 32,
                max
            })
        );
    }
}

#[test]
fn autodiff_values_carry_gradients() {
    type B = Autodiff<Fused>;
    let device = gpu_device();
    layouts::<B>(&device, Strategy::Auto);
    let x = tensor::<B, 2>(vec![1.0, 5.0, 3.0, 5.0, 7.0, 2.0], [2, 3], &device).require_grad();
    let (values, indices) = x.clone().top_k(2, 1);
    let want: Vec<i64> = vec![1, 2, 1, 0];
    assert_eq!(
        indices
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap(),
        want
    );
    let grads = (values * 2.0).sum().backward();
    let grad = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    assert_eq!(grad, vec![0.0, 2.0, 2.0, 2.0, 2.0, 0.0]);
    // Through an intermediate tensor of the graph, too.
    let (values, _) = (x.clone() * 3.0).top_k(1, 1);
    let grads = values.sum().backward();
    let grad = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    assert_eq!(grad, vec![0.0, 3.0, 0.0, 0.0, 3.0, 0.0]);
}

#[test]
fn row_alone_equals_row_in_batch() {
    let device = gpu_device();
    let mut rng = rng("batch");
    let values = few_values(&mut rng, 16 * 500);
    for (name, strategy) in strategies() {
        row_alone_equals_row_in_batch_with(&device, &values, strategy, name);
    }
}

fn row_alone_equals_row_in_batch_with(
    device: &burn::tensor::Device<Fused>,
    values: &[f32],
    strategy: Strategy,
    name: &str,
) {
    let options = TopKOptions::largest().with_strategy(strategy);
    let batch: Tensor<Fused, 2> = tensor(values.to_vec(), [16, 500], device);
    let (bv, bi) = batch.top_k_with(40, 1, options);
    let (bv, bi) = (bv.into_data(), bi.into_data().convert::<i64>());
    for row in [0usize, 7, 15] {
        let alone: Tensor<Fused, 2> = tensor(
            values[row * 500..(row + 1) * 500].to_vec(),
            [1, 500],
            device,
        );
        let (v, i) = alone.top_k_with(40, 1, options);
        assert_eq!(
            v.into_data().to_vec::<f32>().unwrap(),
            bv.to_vec::<f32>().unwrap()[row * 40..(row + 1) * 40],
            "{name}"
        );
        assert_eq!(
            i.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
            bi.to_vec::<i64>().unwrap()[row * 40..(row + 1) * 40]
        );
    }
}

#[test]
fn ndarray_fallback() {
    let device = Default::default();
    matrix::<NdArray>(&device, Strategy::Auto);
    layouts::<NdArray>(&device, Strategy::Auto);
    errors::<NdArray>(&device);
    // f64 is ranked exactly on the host.
    let t = tensor::<NdArray, 2>(vec![1.0, 3.0, 2.0, 3.0], [2, 2], &device).cast(DType::F64);
    check_tensor(t, 1, 1, TopKOptions::largest(), "ndarray f64");
    let _: Tensor<NdArray, 2, Int> = tensor::<NdArray, 2>(vec![1.0; 4], [2, 2], &device)
        .top_k(1, 0)
        .1;
}

#[test]
fn reference_semantics() {
    let (v, i) = reference::top_k(
        &[f32::NAN, f32::INFINITY, -0.0, 0.0, -1.0],
        &[5],
        5,
        0,
        true,
    )
    .unwrap();
    assert!(v[0].is_nan());
    assert_eq!(&v[1..], &[f32::INFINITY, -0.0, 0.0, -1.0]);
    assert_eq!(i, vec![0, 1, 2, 3, 4]);
    let (_, i) = reference::top_k(&[f32::NAN, 2.0, 0.0, -0.0], &[4], 3, 0, false).unwrap();
    assert_eq!(i, vec![2, 3, 1]);
}

/// The candidate buffer's threshold priming and overflow paths: rows just around one batch of a
/// cube (256 units × 16 elements, 1024 × 16), k around the cube's units and past them (each unit
/// then primes with several entries), sorted rows (every batch beats the threshold, so the buffer
/// overflows again and again), constant rows (every priming entry ties), rows with a few NaN,
/// infinities and zeros (k = 50 primes from one key per unit, a running max that may pass over a
/// NaN), tiles that start mid-batch, and the smallest direction. Rows whose best 1024 elements
/// all lie in the priming sample, one per unit (every fourth element from the start): there a
/// threshold primed above the sample's k-th best would let fewer than k through.
#[test]
fn priming_and_overflow() {
    let device = gpu_device();
    let mut rng = rng("priming");
    let two_stage_tiles = Strategy::TwoStage(TwoStageParams {
        tile_width: Some(1000),
        planes_per_cube: None,
    });
    let strategies = [
        ("streaming", Strategy::streaming()),
        ("two-stage", Strategy::two_stage()),
        ("two-stage-1000", two_stage_tiles),
    ];
    for len in [4095usize, 4097, 16383, 16385, 40000] {
        let ascending: Vec<f32> = (0..len).map(|i| i as f32).collect();
        let descending: Vec<f32> = (0..len).map(|i| -(i as f32)).collect();
        let random = random_values(&mut rng, len);
        let ties = few_values(&mut rng, len);
        let constant = vec![1.5f32; len];
        let sparse = sparse_specials(&mut rng, len);
        let mut best_in_sample = random_values(&mut rng, len);
        for (i, value) in best_in_sample.iter_mut().step_by(4).take(1024).enumerate() {
            *value = 1000.0 + i as f32;
        }
        for (data, values) in [
            ("best in sample", &best_in_sample),
            ("ascending", &ascending),
            ("descending", &descending),
            ("random", &random),
            ("ties", &ties),
            ("constant", &constant),
            ("sparse specials", &sparse),
        ] {
            for k in [1usize, 50, 255, 256, 257, 1000] {
                for largest in [true, false] {
                    for (name, strategy) in strategies {
                        check_tensor(
                            tensor::<Fused, 2>(values.clone(), [1, len], &device),
                            k,
                            1,
                            TopKOptions { largest, strategy },
                            &format!("{name}: {data} len={len} k={k} largest={largest}"),
                        );
                    }
                }
            }
        }
    }
}

/// The two-stage merge's paths over sorted tile lists in shared memory: the bound whose passing
/// entries are each placed by counting (more list entries than the merge cube's units, at most
/// 256 passing), the bound whose passing entries are sorted in planes (more than two list entries
/// per unit, more than 256 passing), and the pairwise merge (fewer list entries than units, or
/// too many passing: sorted, tied or constant rows). 160 rows make the merge cubes 256 units wide
/// (no fewer rows than processors) and tiles of 256 elements make 16 or 8 lists, the last one of
/// 30 elements at 1822, so shorter than most k (padding in the lists); one row of 32 lists runs
/// in the widest merge cube. On a device with 32 KiB of shared memory (lavapipe) only the 160-row
/// cases at up to 1024 list entries take the sorted merge (the counted and pairwise paths); the
/// plane sort needs more than 256 units and the lists of 1 × 8192 at k = 256 fit 227 KiB (CUDA).
#[test]
fn two_stage_merge_paths() {
    let device = gpu_device();
    let mut rng = rng("merge");
    let strategy = Strategy::TwoStage(TwoStageParams {
        tile_width: Some(256),
        planes_per_cube: None,
    });
    for (rows, len, ks) in [
        (160usize, 4096usize, &[1usize, 20, 64][..]),
        (160, 7 * 256 + 30, &[50, 200][..]),
        (1, 8192, &[1, 50, 256][..]),
    ] {
        let n = rows * len;
        let ascending: Vec<f32> = (0..n).map(|i| (i % len) as f32).collect();
        for (data, values) in [
            ("random", random_values(&mut rng, n)),
            ("ties", few_values(&mut rng, n)),
            ("ascending", ascending),
            ("constant", vec![-2.5f32; n]),
            ("sparse specials", sparse_specials(&mut rng, n)),
        ] {
            for &k in ks {
                for largest in [true, false] {
                    check_tensor(
                        tensor::<Fused, 2>(values.clone(), [rows, len], &device),
                        k,
                        1,
                        TopKOptions { largest, strategy },
                        &format!("{data}: {rows} x {len} k={k} largest={largest}"),
                    );
                }
            }
        }
    }
}

/// Two-stage tiles of one batch (16 elements per unit) in cubes of 512 and 1024 units at k above
/// the register ranking's 64 (65, and 127–129 or 255–257): each tile is loaded once, primes the
/// buffer's threshold and is offered once. Random, tied, sorted, constant and special rows; two
/// rows whose last tile is short, of a length that takes vectors of 4 and of an odd one (scalar
/// loads); both directions.
#[test]
fn two_stage_single_batch_tiles() {
    use cubecl::Runtime;
    let device = gpu_device();
    let hardware = gpu::Rt::client(&device).properties().hardware.clone();
    let plane = hardware.plane_size_max as usize;
    let mut rng = rng("single-batch tiles");
    let rows = 2usize;
    for len in [40000usize, 40003] {
        let n = rows * len;
        let ascending: Vec<f32> = (0..n).map(|i| (i % len) as f32).collect();
        let descending: Vec<f32> = (0..n).map(|i| -((i % len) as f32)).collect();
        let data = [
            ("random", random_values(&mut rng, n)),
            ("ties", few_values(&mut rng, n)),
            ("ascending", ascending),
            ("descending", descending),
            ("constant", vec![0.5f32; n]),
            ("sparse specials", sparse_specials(&mut rng, n)),
        ];
        for units in [512usize, 1024] {
            if units % plane != 0 || units > hardware.max_units_per_cube as usize {
                println!("{units} units: not a cube this device takes");
                continue;
            }
            // One batch of 16 elements per unit.
            let strategy = Strategy::TwoStage(TwoStageParams {
                tile_width: Some(units * 16),
                planes_per_cube: Some((units / plane) as u32),
            });
            for k in [65usize, units / 4 - 1, units / 4, units / 4 + 1] {
                for (name, values) in &data {
                    for largest in [true, false] {
                        check_tensor(
                            tensor::<Fused, 2>(values.clone(), [rows, len], &device),
                            k,
                            1,
                            TopKOptions { largest, strategy },
                            &format!("{units} units: {name} {rows}x{len} k={k} largest={largest}"),
                        );
                    }
                }
            }
        }
    }
}

/// Radix select over long rows runs by one digit: in one launch for rows few against the
/// processors, tiled (a digit histogram, a filter, a select: three launches) for more: rows whose
/// lengths are not multiples of the tiles or vectors, ties at the pivot digit, whole rows of one
/// value, NaN and infinities, both directions, columns.
#[test]
fn radix_select_by_digit() {
    let device = gpu_device();
    let mut rng = rng("radix tiled");
    let radix = |largest| TopKOptions {
        largest,
        strategy: Strategy::radix_select(),
    };
    // In one launch (rows of at most 32k, k up to a 16th of them): one row (lavapipe, which
    // reports no processor count, is taken for 16), three on the H200 (132 processors); tiled:
    // the longer rows, three rows of 16385 on lavapipe, 20 on the H200.
    for (rows, len) in [
        (1usize, 16385usize),
        (1, 131072),
        (3, 16385),
        (3, 100003),
        (20, 16385),
    ] {
        let ascending: Vec<f32> = (0..rows * len).map(|i| (i % len) as f32).collect();
        let random = random_values(&mut rng, rows * len);
        let ties = few_values(&mut rng, rows * len);
        let special = specials(&mut rng, rows * len);
        let constant = vec![-2.5f32; rows * len];
        // One value copied among the largest random ones: the copies share a bucket of the
        // list, which ranks 40 of them there by index, and sends 3000 (too many) to the buffer.
        let copied = |copies: usize, rng: &mut StdRng| {
            let mut values = random_values(rng, rows * len);
            for row in 0..rows {
                for _ in 0..copies {
                    values[row * len + rng.random_range(0..len)] = 9.9;
                }
            }
            values
        };
        let few_copies = copied(40, &mut rng);
        let many_copies = copied(3000, &mut rng);
        // The keys of a bf16 row (f32 values rounded to bf16): hundreds of copies of each value
        // near the top, which the list's buckets spread by index.
        let bf16_grid: Vec<f32> = random
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect();
        for (data, values) in [
            ("ascending", &ascending),
            ("random", &random),
            ("ties", &ties),
            ("specials", &special),
            ("constant", &constant),
            ("40 copies", &few_copies),
            ("3000 copies", &many_copies),
            ("bf16 grid", &bf16_grid),
        ] {
            // Short lists are ranked across the row's cubes, longer ones taken by bucket in
            // one cube (copies of a value spread over buckets by index), lists whose kept
            // entries still crowd into a few buckets (3000 copies, constant rows) offered to
            // its candidate buffer.
            let ks: &[usize] = if data == "random" || data == "ties" {
                &[1, 333, 1000, 4096]
            } else if data == "bf16 grid" {
                &[333, 1000]
            } else {
                &[1, 333, 1000]
            };
            for &k in ks {
                for largest in [true, false] {
                    check_tensor(
                        tensor::<Fused, 2>(values.clone(), [rows, len], &device),
                        k,
                        1,
                        radix(largest),
                        &format!("radix: {data} {rows}x{len} k={k} largest={largest}"),
                    );
                }
            }
        }
    }
    // Strided rows: columns of 20000 (in one launch) and 40000 (tiled).
    for len in [20000usize, 40000] {
        let columns = random_values(&mut rng, 2 * len);
        check_tensor(
            tensor::<Fused, 2>(columns, [len, 2], &device),
            500,
            0,
            radix(true),
            &format!("radix: columns of {len}"),
        );
    }
    // Tiled over more dimensions: rows along the middle one (two levels of rows), and a
    // permuted view whose other dimensions do not fold into two levels (copied first).
    let len = 40000usize;
    check_tensor(
        tensor::<Plain, 3>(random_values(&mut rng, 6 * len), [2, len, 3], &device),
        500,
        1,
        radix(true),
        "radix: 2 x 40000 x 3 along the middle",
    );
    let permuted = tensor::<Plain, 4>(random_values(&mut rng, 12 * len), [2, 3, 2, len], &device)
        .permute([2, 1, 0, 3]);
    check_tensor(permuted, 500, 3, radix(false), "radix: a permuted 4-d view");
}

/// Radix select's explicit parameters: every digit width on the pass-by-pass form (short rows)
/// and on the tiled form (asked for by a tile width, rows longer and shorter than 16k, tiles not
/// multiples of the vectors), small explicit cubes on both, and typed errors for what no form
/// takes.
#[test]
fn radix_select_params() {
    use cubecl::Runtime;
    let device = gpu_device();
    let plane = gpu::Rt::client(&device)
        .properties()
        .hardware
        .plane_size_max;
    let mut rng = rng("radix params");
    let radix = |largest, digit_bits, tile_width, planes_per_cube| TopKOptions {
        largest,
        strategy: Strategy::RadixSelect(RadixSelectParams {
            digit_bits,
            tile_width,
            planes_per_cube,
        }),
    };
    let data = |rng: &mut StdRng, n: usize| {
        [
            ("random", random_values(rng, n)),
            ("ties", few_values(rng, n)),
            ("specials", specials(rng, n)),
        ]
    };
    // Pass by pass: digits of 9 to 12 bits (3 or 4 passes, the last one narrower; 8 is the
    // default, which other tests run), in the default cube and in one of three planes (a count
    // of units that is no power of two).
    let (rows, len) = (2usize, 5000usize);
    for (name, values) in data(&mut rng, rows * len) {
        for (bits, planes) in [(9, Some(3)), (11, None), (12, Some(3))] {
            for k in [77, len] {
                for largest in [true, false] {
                    check_tensor(
                        tensor::<Fused, 2>(values.clone(), [rows, len], &device),
                        k,
                        1,
                        radix(largest, Some(bits), None, planes),
                        &format!("per row: {name} {bits} bits {planes:?} planes k={k} {largest}"),
                    );
                }
            }
        }
    }
    // Tiled: top digits of 8 to 12 bits (12, the default, only in a cube of 64 units), in the
    // default cube and in one of 64 units.
    let units_64 = 64 / plane;
    for (rows, len, tile_width) in [(2usize, 20000usize, 3001usize), (3, 1000, 256)] {
        for (name, values) in data(&mut rng, rows * len) {
            for (bits, planes) in [(8, None), (10, Some(units_64)), (12, Some(units_64))] {
                for k in [333, 1000.min(len)] {
                    for largest in [true, false] {
                        check_tensor(
                            tensor::<Fused, 2>(values.clone(), [rows, len], &device),
                            k,
                            1,
                            radix(largest, Some(bits), Some(tile_width), planes),
                            &format!(
                                "tiled: {name} {rows}x{len} tiles of {tile_width} {bits} bits \
                                 {planes:?} planes k={k} {largest}"
                            ),
                        );
                    }
                }
            }
        }
    }
    let t = |len: usize| tensor::<Fused, 2>(vec![1.0; 2 * len], [2, len], &device);
    for (what, len, k, options) in [
        ("7-bit digits", 5000, 3, radix(true, Some(7), None, None)),
        ("13-bit digits", 5000, 3, radix(true, Some(13), None, None)),
        (
            "a tile width of 0",
            20000,
            3,
            radix(true, None, Some(0), None),
        ),
        (
            "too many planes",
            5000,
            3,
            radix(true, None, None, Some(1 << 20)),
        ),
        // Tiled cubes hold a power-of-two count of units.
        (
            "three planes, tiled",
            20000,
            3,
            radix(true, None, Some(4096), Some(3)),
        ),
        // Tiled, the last launch needs a candidate buffer of 2k entries in a cube.
        (
            "k = length, tiled",
            20000,
            20000,
            radix(true, None, Some(4096), None),
        ),
    ] {
        let result = t(len).try_top_k_with(k, 1, options);
        assert!(
            matches!(result, Err(TopKError::InvalidParams { .. })),
            "{what}: {:?}",
            result.map(|_| ())
        );
    }
}
