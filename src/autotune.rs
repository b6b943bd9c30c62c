//! [`Strategy::Auto`]: CubeCL's autotuner picks the fastest strategy and
//! its parameters per input key, on the device that runs the call.
//!
//! - **Candidates** ([`candidates`]): streaming with cubes of 256, 512 and 1024 units (those the
//!   device takes: multiples of its plane size; CubeCL 0.10 gives no control over the plane size
//!   itself) and 2 or 4 vector loads per unit in flight (vectors are as wide as the row's
//!   alignment allows: narrower ones only issue more loads for the same bytes); two-stage with
//!   the two largest of those cubes and tiles of the crate's choice or of 32 Ki elements, and
//!   with 256-unit cubes and the crate's tiles (one batch per unit, ranked from registers at
//!   small k); radix select. A candidate that does not fit the device for a key (shared memory,
//!   units per cube, k above the buffer limit) reports an error before launching and is skipped.
//! - **Pruning**: cheap rules drop candidates that cannot win for a key before anything is timed
//!   (two-stage when the rows alone fill the device, cubes or batches larger than the row,
//!   256-unit cubes beside larger ones unless the rows outnumber the processors or are short,
//!   radix select where it would run one cube per row, or where the rows fill the device and k is
//!   below 256, all but radix select when k is above [`STREAMING_MAX_K`]); radix select stays as
//!   the fallback group.
//! - **Key** ([`TopKKey`]): k exactly, the row length and the row count rounded up to a power of
//!   two, the dtype, `largest`, whether `dim` is contiguous, and the device's plane size. Every
//!   candidate's feasibility depends only on these and on the device, so a cached winner fits any
//!   input with the same key; should one not (a corrupted cache), the call falls back to
//!   [`Strategy::Heuristic`] with a warning, never a panic.
//! - **Cache**: results persist through CubeCL's autotune cache, one file per device, so a second
//!   process does not tune again. By default it lives under `target/autotune/` of the nearest
//!   directory holding a `Cargo.toml` (CubeCL's `[autotune.cache]` setting in `cubecl.toml` moves
//!   it); [`cache_dir`] gives the directory. Delete it to tune again. Unreadable lines are skipped
//!   with a warning, and results from another candidate list are ignored (CubeCL checks a checksum
//!   of the candidates' names).
//! - **Cost**: the first call with a new key times every remaining candidate on the call's own
//!   input (CubeCL's 3 warm-up and 10 timed samples, each of [`runs_per_sample`] back-to-back
//!   runs so that jitter averages out: about a millisecond, sized from [`PROBE_RUNS`]
//!   back-to-back runs of the first candidate before tuning starts; CubeCL 0.10 times samples on
//!   the host between two synchronisations on CUDA, so each candidate is ranked by its time per
//!   call in a steady loop, the larger of its host and device time: a candidate of several
//!   launches can lose to one launch that takes longer on the device), about a tenth of a second
//!   on the H100, plus the NVRTC compilation of kernels no earlier call needed: 1–2.4 s per
//!   candidate on the H200 (0.3–0.5 s with CubeCL's compilation cache filled by an earlier
//!   process), paid by the first key of each dtype and k range (the kernels' compile-time
//!   parameters follow ranges of k, not k itself); it is logged at `info` level with the winner.
//!   [`tune_ahead`] pays that cost up front.

use crate::backend::TopKBackend;
use crate::error::TopKError;
use crate::launch::{self, Plan};
use crate::options::{STREAMING_MAX_K, Strategy, StreamingParams, TopKOptions, TwoStageParams};
use crate::tensor_ext::TopKExt;
use burn::tensor::{DType, Distribution, Tensor, TensorMetadata};
use burn_cubecl::{CubeRuntime, CubeTuneId, tensor::CubeTensor};
use cubecl::AutotuneKey;
use cubecl::device::{Device, DeviceId};
use cubecl::ir::{ElemType, HardwareProperties};
use cubecl::tune::{CloneInputGenerator, Tunable, TunableSet, TuneCacheResult, TuneGroup, Tuner};
use serde::{Deserialize, Serialize};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What decides whether a candidate fits and which one wins: the autotune cache key.
#[derive(Hash, Eq, PartialEq, Debug, Clone, Serialize, Deserialize, AutotuneKey)]
pub struct TopKKey {
    /// k, exactly: the buffer size and every feasibility check depend on it.
    pub k: usize,
    /// The length of `dim`, rounded up to a power of two.
    #[autotune(anchor)]
    pub len: usize,
    /// The number of rows, rounded up to a power of two.
    #[autotune(anchor)]
    pub rows: usize,
    /// The element type.
    pub dtype: ElemType,
    /// The k largest (`true`) or smallest.
    pub largest: bool,
    /// Whether `dim` has stride 1 (vector loads).
    pub contiguous: bool,
    /// The device's plane size.
    pub plane_size: u32,
}

/// One strategy the autotuner may pick, with the name it is cached and logged under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Stable name, e.g. `streaming-u1024-v4` (units per cube, vectors per unit).
    pub name: String,
    /// The strategy it runs.
    pub strategy: Strategy,
}

/// A shape to tune ahead of time with [`tune_ahead`]: `rows` contiguous rows of `len` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuneShape {
    /// Rows (the product of every dimension but `dim`).
    pub rows: usize,
    /// Length of `dim`.
    pub len: usize,
    /// k.
    pub k: usize,
    /// Element type.
    pub dtype: DType,
    /// The k largest (`true`) or smallest.
    pub largest: bool,
}

impl TuneShape {
    /// The k largest of `rows` rows of `len` f32 elements.
    pub fn new(rows: usize, len: usize, k: usize) -> Self {
        Self {
            rows,
            len,
            k,
            dtype: DType::F32,
            largest: true,
        }
    }

    /// The same shape with another dtype.
    pub fn with_dtype(self, dtype: DType) -> Self {
        Self { dtype, ..self }
    }

    /// The autotune key of this shape on a device with `hardware`.
    pub fn key(&self, hardware: &HardwareProperties) -> TopKKey {
        TopKKey::new(
            self.k,
            self.len,
            self.rows,
            ElemType::from(self.dtype),
            self.largest,
            true,
            hardware.plane_size_max,
        )
    }
}

/// The candidates the autotuner chooses from on a device with `hardware`, in a fixed order:
/// streaming with 256, 512 and 1024 units per cube (those the device takes: multiples of its
/// plane size) and 2 or 4 vector loads per unit in flight (also 8 at 256 units), two-stage with
/// the two largest of those cubes and the crate's tile width or 32 Ki-element tiles, two-stage
/// with 256-unit cubes and the crate's tile width (one batch per unit, which the tile kernel ranks
/// from registers at k ≤ 64), and radix select.
pub fn candidates(hardware: &HardwareProperties) -> Vec<Candidate> {
    let plane = hardware.plane_size_max.max(1);
    let mut cubes: Vec<u32> = [256u32, 512, 1024]
        .into_iter()
        .filter(|units| units % plane == 0 && *units <= hardware.max_units_per_cube)
        .collect();
    let mut list = Vec::new();
    for &units in &cubes {
        // Eight vectors per unit only in 256-unit cubes: twice the bytes in flight where many
        // rows share the processors (H200, 256 × 128k, k = 50: 50.5 against 56.6 µs with four);
        // at 1024 units they spill (97 against 61 µs).
        let vectors: &[u32] = if units == 256 { &[2, 4, 8] } else { &[2, 4] };
        for &vectors in vectors {
            list.push(Candidate {
                name: format!("streaming-u{units}-v{vectors}"),
                strategy: Strategy::Streaming(StreamingParams {
                    planes_per_cube: Some(units / plane),
                    vectors_per_unit: Some(vectors),
                }),
            });
        }
    }
    // Two-stage in the two largest cubes, with the crate's tiles or tiles of 32 Ki elements, and
    // in 256-unit cubes with the crate's tiles: one batch per unit, which small k ranks from
    // registers (H100, one row of 128k at k = 50: 14.7 µs against 16.3 in the best larger cube).
    let smallest = cubes.first().copied().filter(|&units| units == 256);
    cubes.drain(..cubes.len().saturating_sub(2));
    if let Some(units) = smallest.filter(|units| !cubes.contains(units)) {
        list.push(Candidate {
            name: format!("two-stage-u{units}-tauto"),
            strategy: Strategy::TwoStage(TwoStageParams {
                tile_width: None,
                planes_per_cube: Some(units / plane),
            }),
        });
    }
    for &units in &cubes {
        for tile_width in [None, Some(32768usize)] {
            let tile = tile_width.map_or("auto".to_string(), |w| format!("{}k", w / 1024));
            list.push(Candidate {
                name: format!("two-stage-u{units}-t{tile}"),
                strategy: Strategy::TwoStage(TwoStageParams {
                    tile_width,
                    planes_per_cube: Some(units / plane),
                }),
            });
        }
    }
    list.push(Candidate {
        name: "radix".into(),
        strategy: Strategy::radix_select(),
    });
    list
}

/// How long one timed sample should last: long enough that launch jitter and clock changes
/// average out over its back-to-back runs (with 8 runs of a ~20 µs top-k, the tuner picked
/// candidates up to 19 % slower than the best on the H100, where they sit 1–3 µs apart).
const SAMPLE_TIME: Duration = Duration::from_millis(1);

/// Runs per sample for a key whose run time was not measured (a stale disk cache entry).
const DEFAULT_SAMPLE_RUNS: usize = 8;

/// Back-to-back runs timed, with one synchronisation at the end, to size a key's samples: a
/// single synchronised run also counts the wait for the device (on the H200 a 20 µs top-k read
/// 130–170 µs that way, so "1 ms" samples held 6–8 runs and lasted a quarter of that).
pub const PROBE_RUNS: u32 = 4;

/// Top-k runs per timed sample, given how long one run takes (the time of [`PROBE_RUNS`]
/// back-to-back runs and one synchronisation, divided by [`PROBE_RUNS`]): enough runs to fill
/// about a millisecond, 1 to 32. On the H100 a ~20 µs top-k gets 32 runs; on a software adapter
/// such as lavapipe, where one run takes milliseconds, a sample is a single run, so tuning there
/// costs the candidates' compilation and little more.
pub fn runs_per_sample(one_run: Duration) -> usize {
    let runs = SAMPLE_TIME.as_secs_f64() / one_run.as_secs_f64().max(1e-9);
    (runs.ceil() as usize).clamp(1, 32)
}

type TuneInput<R> = (CubeTensor<R>, usize, usize, bool, DType);

/// A device's tuner, its tunable set and the candidates behind the set's indices.
struct DeviceTuner<R: CubeRuntime> {
    tuner: Tuner<TopKKey>,
    set: TunableSet<TopKKey, TuneInput<R>, ()>,
    candidates: Vec<Candidate>,
    /// Which candidates are worth timing for a key.
    rule: Arc<PlausibleRule>,
}

/// The smallest k at which radix select is timed for rows that fill the device: below it the
/// candidate buffer's one pass beats three launches.
const RADIX_MANY_ROWS_MIN_K: usize = 256;

/// Which candidates are worth timing for a key on one device: rules that only drop candidates
/// which cannot win.
struct PlausibleRule {
    hardware: HardwareProperties,
    /// Units of the largest streaming cube among the candidates.
    largest_cube: usize,
}

impl PlausibleRule {
    fn admits(&self, strategy: Strategy, key: &TopKKey) -> bool {
        let plane = self.hardware.plane_size_max.max(1) as usize;
        let processors = launch::processors(&self.hardware);
        let units = |planes: Option<u32>| planes.unwrap_or(1) as usize * plane;
        match strategy {
            _ if key.k > STREAMING_MAX_K => matches!(strategy, Strategy::RadixSelect(_)),
            // One cube per row, radix select is 5–10× slower than the candidate buffer wherever
            // that fits; tiled, it may win on a few long rows, or at large k.
            Strategy::RadixSelect(_) => {
                launch::radix_select_by_digit(&self.hardware, key.rows, key.len, key.k)
                    && (key.rows * 2 <= processors || key.k >= RADIX_MANY_ROWS_MIN_K)
            }
            Strategy::Streaming(params) => {
                let units = units(params.planes_per_cube);
                let batch = params.vectors_per_unit.unwrap_or(4) as usize * 4;
                // 256-unit cubes beat larger ones only with several cubes per processor, or on
                // rows too short for them (H100: 4096 rows of 4096, 98 µs against 162 for the
                // best of 512 and 1024 units).
                let small_cube_may_win = units >= 512
                    || self.largest_cube <= 512
                    || key.rows >= processors
                    || key.len < 512 * 8;
                // A cube or a batch larger than the row only adds idle units (a row of exactly
                // one batch per unit is read once, into registers).
                small_cube_may_win
                    && (units == 256 || key.len >= units * 8)
                    && (batch == 8 || key.len >= units * batch)
            }
            Strategy::TwoStage(params) => {
                let units = units(params.planes_per_cube);
                // Split rows only when the rows alone leave processors idle, and only into tiles
                // that hold several batches and are smaller than the row.
                key.rows * 2 <= processors
                    && key.len >= 16 * 1024
                    && params
                        .tile_width
                        .is_none_or(|w| w < key.len && w >= units * 16)
            }
            _ => false,
        }
    }
}

/// Runs per timed sample for each key being tuned, measured before its tuning starts.
fn sample_runs() -> &'static Mutex<HashMap<TopKKey, usize>> {
    static RUNS: OnceLock<Mutex<HashMap<TopKKey, usize>>> = OnceLock::new();
    RUNS.get_or_init(Default::default)
}

const TUNER_NAME: &str = "burn-topk-top-k";

/// Candidate runs made by the tuner (the hot path runs winners directly, never through the
/// set), and keys tuned, in this process.
static CANDIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);
static TUNINGS: AtomicUsize = AtomicUsize::new(0);

/// How many keys this process has tuned (timed candidates for), as opposed to found in the
/// in-memory or disk cache.
pub fn tuning_count() -> usize {
    TUNINGS.load(Ordering::Relaxed)
}

/// Each device's [`DeviceTuner`], keyed by runtime and device id (the runtime is a type
/// parameter, so the map holds them type-erased). The key is the id itself, not the tuner's
/// name for it: every `Auto` call looks its tuner up, and formatting that name cost host time
/// per call.
type TunerMap = HashMap<(TypeId, DeviceId), Arc<dyn Any + Send + Sync>>;

fn device_tuner<R: CubeRuntime>(
    client: &cubecl::client::ComputeClient<R>,
    device: &R::Device,
) -> Arc<DeviceTuner<R>> {
    static TUNERS: OnceLock<Mutex<TunerMap>> = OnceLock::new();
    let mut tuners = TUNERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = tuners
        .entry((TypeId::of::<R>(), device.to_id()))
        .or_insert_with(|| {
            let hardware = client.properties().hardware.clone();
            let name = CubeTuneId::new(client, device).to_string();
            Arc::new(Arc::new(new_device_tuner::<R>(&hardware, &name)))
        });
    entry
        .downcast_ref::<Arc<DeviceTuner<R>>>()
        .expect("one tuner type per runtime")
        .clone()
}

fn new_device_tuner<R: CubeRuntime>(hardware: &HardwareProperties, id: &str) -> DeviceTuner<R> {
    let candidates = candidates(hardware);
    let plane = hardware.plane_size_max.max(1);
    let largest_cube = candidates
        .iter()
        .filter_map(|c| match c.strategy {
            Strategy::Streaming(params) => params.planes_per_cube,
            _ => None,
        })
        .max()
        .map_or(0, |planes| planes as usize * plane as usize);
    let rule = Arc::new(PlausibleRule {
        hardware: hardware.clone(),
        largest_cube,
    });
    let timed = TuneGroup::<TopKKey>::new("plausible", |_| 1);
    let fallback = TuneGroup::<TopKKey>::new("radix select", |_| 0);
    let mut set = TunableSet::new(key::<R>, CloneInputGenerator);
    for candidate in &candidates {
        let strategy = candidate.strategy;
        let mut tunable = Tunable::new(&candidate.name, move |inputs: TuneInput<R>| {
            CANDIDATE_RUNS.fetch_add(1, Ordering::Relaxed);
            let runs = sample_runs()
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&key::<R>(&inputs))
                .copied()
                .unwrap_or(DEFAULT_SAMPLE_RUNS);
            let (tensor, k, dim, largest, index_dtype) = inputs;
            for _ in 0..runs {
                run(tensor.clone(), k, dim, strategy, largest, index_dtype)
                    .map_err(|err| err.to_string())?;
            }
            Ok::<(), String>(())
        })
        .group(&timed, {
            let rule = rule.clone();
            move |key| if rule.admits(strategy, key) { 1 } else { -1 }
        });
        if matches!(strategy, Strategy::RadixSelect(_)) {
            tunable = tunable.group(&fallback, |_| 1);
        }
        set = set.with(tunable);
    }
    DeviceTuner {
        tuner: Tuner::new(TUNER_NAME, id),
        set,
        candidates,
        rule,
    }
}

/// Times one run of the first candidate worth timing for `key` (it is compiled first, and the
/// tuner times it anyway), and records how many runs each of the tuner's samples takes.
fn measure_sample_runs<R: CubeRuntime>(
    device: &DeviceTuner<R>,
    key: &TopKKey,
    inputs: &TuneInput<R>,
) {
    let strategy = device
        .candidates
        .iter()
        .find(|c| device.rule.admits(c.strategy, key))
        .map_or(Strategy::radix_select(), |c| c.strategy);
    let (tensor, k, dim, largest, index_dtype) = inputs.clone();
    let client = tensor.client.clone();
    // `times` back-to-back runs and one synchronisation; false if any failed.
    let runs_then_sync = |times: u32| {
        let ok =
            (0..times).all(|_| run(tensor.clone(), k, dim, strategy, largest, index_dtype).is_ok());
        ok && cubecl::future::block_on(client.sync()).is_ok()
    };
    let runs = if runs_then_sync(1) {
        let start = Instant::now();
        if runs_then_sync(PROBE_RUNS) {
            runs_per_sample(start.elapsed() / PROBE_RUNS)
        } else {
            1
        }
    } else {
        1
    };
    sample_runs()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(key.clone(), runs);
}

fn key<R: CubeRuntime>((tensor, k, dim, largest, _index_dtype): &TuneInput<R>) -> TopKKey {
    key_of(tensor, *k, *dim, *largest)
}

fn key_of<R: CubeRuntime>(tensor: &CubeTensor<R>, k: usize, dim: usize, largest: bool) -> TopKKey {
    let len = tensor.meta.shape()[dim];
    TopKKey::new(
        k,
        len,
        tensor.meta.num_elements() / len.max(1),
        ElemType::from(tensor.dtype),
        largest,
        tensor.meta.strides()[dim] == 1,
        tensor.client.properties().hardware.plane_size_max,
    )
}

/// Runs `strategy` exactly as given: an error if it does not fit (never a silent substitute,
/// which would be timed under the wrong name).
fn run<R: CubeRuntime>(
    tensor: CubeTensor<R>,
    k: usize,
    dim: usize,
    strategy: Strategy,
    largest: bool,
    index_dtype: DType,
) -> Result<(CubeTensor<R>, CubeTensor<R>), TopKError> {
    let (layout, plan) = launch::check_and_plan(
        &tensor.client.properties().hardware,
        tensor.dtype,
        || true,
        &tensor.shape(),
        tensor.handle.size() as usize / tensor.dtype.size(),
        k,
        dim,
        strategy,
    )?;
    let matches = matches!(
        (strategy, plan),
        (Strategy::Streaming(_), Plan::Streaming(_))
            | (Strategy::TwoStage(_), Plan::TwoStage(_))
            | (Strategy::RadixSelect(_), Plan::RadixSelect(_))
            | (Strategy::Heuristic, _)
    );
    if !matches || matches!(plan, Plan::BurnBuiltin | Plan::Autotune) {
        return Err(TopKError::InvalidParams {
            reason: format!("{strategy:?} does not fit k = {k} on this device"),
        });
    }
    Ok(launch::top_k(
        tensor,
        k,
        dim,
        layout,
        plan,
        largest,
        index_dtype,
    ))
}

/// The autotuned top-k: the cached winner for the input's key, tuning first on a miss.
pub(crate) fn top_k<R: CubeRuntime>(
    tensor: CubeTensor<R>,
    k: usize,
    dim: usize,
    largest: bool,
    index_dtype: DType,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let device = device_tuner(&tensor.client, &tensor.device);
    // The set's key function, without cloning the tensor into the tuner's inputs on a hit.
    let key = key_of(&tensor, k, dim, largest);
    let index = match device.tuner.fastest(&key) {
        TuneCacheResult::Hit { fastest_index } => Some(fastest_index),
        _ => {
            let inputs: TuneInput<R> = (tensor.clone(), k, dim, largest, index_dtype);
            let start = Instant::now();
            let runs = CANDIDATE_RUNS.load(Ordering::Relaxed);
            // A key found on disk but not yet validated is tuned again only if its file is stale;
            // those few tunings take the default sample size.
            if matches!(device.tuner.fastest(&key), TuneCacheResult::Miss) {
                measure_sample_runs(&device, &key, &inputs);
            }
            let result = device.tuner.check_tune(
                &key,
                &inputs,
                &device.set,
                || device.set.compute_checksum(),
                &tensor.client,
            );
            match result {
                TuneCacheResult::Hit { fastest_index } => {
                    let name = device
                        .candidates
                        .get(fastest_index)
                        .map_or("?", |c| c.name.as_str());
                    if CANDIDATE_RUNS.load(Ordering::Relaxed) != runs {
                        TUNINGS.fetch_add(1, Ordering::Relaxed);
                        log::info!(
                            "burn-topk autotune: {key}: {name} won, tuned in {:.0} ms",
                            start.elapsed().as_secs_f64() * 1e3
                        );
                    } else {
                        log::info!("burn-topk autotune: {key}: {name}, from the disk cache");
                    }
                    Some(fastest_index)
                }
                // Another thread is tuning this key: don't wait for it.
                _ => None,
            }
        }
    };
    if let Some(candidate) = index.and_then(|i| device.candidates.get(i)) {
        match run(
            tensor.clone(),
            k,
            dim,
            candidate.strategy,
            largest,
            index_dtype,
        ) {
            Ok(outputs) => return outputs,
            Err(err) => warn_once(&key, || {
                format!(
                    "burn-topk autotune: the cached winner {} cannot run for {key} ({err}); \
                     using the heuristic",
                    candidate.name
                )
            }),
        }
    } else if let Some(i) = index {
        warn_once(&key, || {
            format!(
                "burn-topk autotune: cached winner #{i} for {key} is not a candidate; \
                 using the heuristic"
            )
        });
    }
    run(tensor, k, dim, Strategy::Heuristic, largest, index_dtype)
        .expect("the heuristic fits every input that passed the checks")
}

/// Logs `message` at `warn` level the first time in this process that `key` has a cached winner
/// that cannot be used (the same key then keeps taking the heuristic without a warning per call).
fn warn_once(key: &TopKKey, message: impl FnOnce() -> String) {
    static WARNED: OnceLock<Mutex<std::collections::HashSet<TopKKey>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(key.clone());
    if first {
        log::warn!("{}", message());
    }
}

/// The candidate the autotuner picked for `shape` on `device`, if a call in this process has
/// tuned that key or read it from the disk cache.
pub fn tuned_choice<R: CubeRuntime>(
    client: &cubecl::client::ComputeClient<R>,
    device: &R::Device,
    shape: &TuneShape,
) -> Option<Candidate> {
    let tuner = device_tuner(client, device);
    match tuner
        .tuner
        .fastest(&shape.key(&client.properties().hardware))
    {
        TuneCacheResult::Hit { fastest_index } => tuner.candidates.get(fastest_index).cloned(),
        _ => None,
    }
}

/// Tunes [`Strategy::Auto`] for each of `shapes` now, so the first real call with the same key
/// does not stall (keys already in the cache cost one call). Runs one top-k per shape on random
/// rows; backends without autotune (the host fallback) just compute it.
pub fn tune_ahead<B: TopKBackend>(
    device: &B::Device,
    shapes: &[TuneShape],
) -> Result<(), TopKError> {
    for shape in shapes {
        let rows = Tensor::<B, 2>::random(
            [shape.rows, shape.len],
            Distribution::Normal(0.0, 1.0),
            device,
        )
        .cast(shape.dtype);
        let options = TopKOptions {
            largest: shape.largest,
            strategy: Strategy::Auto,
        };
        let (values, _) = rows.try_top_k_with(shape.k, 1, options)?;
        let _ = values.into_data();
    }
    Ok(())
}

/// Where CubeCL keeps the autotune cache (this crate's results are in a file named after
/// `burn-topk-top-k` under a directory per device). Delete it to tune again.
pub fn cache_dir() -> PathBuf {
    use cubecl::config::RuntimeConfig;
    cubecl::config::CubeClRuntimeConfig::get()
        .autotune
        .cache
        .root()
        .join("autotune")
}
