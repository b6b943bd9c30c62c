//! Host code: validation, planning, buffers and launches for each algorithm. Kernels live in
//! `crate::kernels`.

pub mod radix_select;
pub mod sampling;
pub mod streaming;
pub mod two_stage;

use crate::error::{RowLayout, TopKError, check_float_dtype, check_shape};
use crate::kernels::candidates;
use crate::kernels::radix_select::{
    PER_ROW_DIGIT_BITS, RANK_QUERIES, TILED_DIGIT_BITS, filter_scratch_words,
};
use crate::options::{
    RADIX_DIGIT_BITS_MAX, RADIX_DIGIT_BITS_MIN, RadixSelectParams, STREAMING_MAX_K, Strategy,
    StreamingParams, TwoStageParams,
};
use burn::tensor::{DType, Shape};
use cubecl::ir::HardwareProperties;

/// Units of the cubes that hold a candidate buffer: its digit search gives one bin to a unit.
const MIN_CANDIDATE_UNITS: usize = 256;
/// Elements a unit holds per batch: one bit each in the pending mask.
const MAX_BATCH: usize = 32;
/// Whole batches of this many elements per unit by default (4 loads of 16 bytes for f32).
const DEFAULT_BATCH: usize = 16;

/// What a validated call will run, with every parameter fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Streaming(streaming::Config),
    TwoStage(two_stage::Config),
    RadixSelect(radix_select::Config),
    BurnBuiltin,
    /// [`Strategy::Auto`]: the autotuner chooses at launch (`crate::autotune`).
    Autotune,
}

/// Everything the device kernels need checked on the host, shared by the CubeCL and Fusion
/// paths: the dtype (`device_supports` says whether the device has it at all), the shape, the
/// 32-bit addressing of the input's buffer (`input_elements`) and of the scratch rows, and the
/// strategy, resolved to a plan that fits the device.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_and_plan(
    hardware: &HardwareProperties,
    dtype: DType,
    device_supports: impl FnOnce() -> bool,
    shape: &Shape,
    input_elements: usize,
    k: usize,
    dim: usize,
    strategy: Strategy,
) -> Result<(RowLayout, Plan), TopKError> {
    check_float_dtype(dtype, kernel_supports(dtype, device_supports))?;
    let layout = check_shape(shape, k, dim)?;
    let plan = plan(hardware, layout, k, strategy.with_env_override()?)?;
    let scratch = match plan {
        Plan::RadixSelect(config) => layout.rows * config.scratch_per_row(layout.len, k),
        // Autotune checks its pick again and falls back to the heuristic, which fits this.
        Plan::Autotune => layout.rows * 2 * k,
        Plan::TwoStage(config) => layout.rows * config.tiles(layout.len) * k,
        Plan::Streaming(_) | Plan::BurnBuiltin => 0,
    };
    let elements = input_elements.max(scratch);
    if elements > u32::MAX as usize {
        return Err(TopKError::TooLarge {
            elements,
            max: u32::MAX as usize,
        });
    }
    Ok((layout, plan))
}

/// Whether the device kernels can rank `dtype`, given whether the device supports it at all.
/// They rank in f32, which is exact for f16 and bf16 but would merge close f64 values.
fn kernel_supports(dtype: DType, device_supports: impl FnOnce() -> bool) -> bool {
    dtype != DType::F64 && device_supports()
}

/// Resolves a strategy to a plan for this device and shape.
fn plan(
    hardware: &HardwareProperties,
    layout: RowLayout,
    k: usize,
    strategy: Strategy,
) -> Result<Plan, TopKError> {
    let streaming_fits = k <= STREAMING_MAX_K
        && hardware.max_units_per_cube as usize >= MIN_CANDIDATE_UNITS
        && candidate_capacity(k, MIN_CANDIDATE_UNITS, hardware).is_some();
    Ok(match strategy {
        Strategy::BurnBuiltin => Plan::BurnBuiltin,
        Strategy::RadixSelect(params) => {
            Plan::RadixSelect(radix_select_config(hardware, layout, k, params)?)
        }
        _ if !streaming_fits => Plan::RadixSelect(radix_select_config(
            hardware,
            layout,
            k,
            RadixSelectParams::default(),
        )?),
        Strategy::Streaming(params) => {
            Plan::Streaming(streaming_config(hardware, layout, k, params)?)
        }
        Strategy::TwoStage(params) => {
            Plan::TwoStage(two_stage_config(hardware, layout, k, params)?)
        }
        Strategy::Auto => Plan::Autotune,
        Strategy::Heuristic => {
            if few_long_rows(hardware, layout, k) {
                match radix_select_config(hardware, layout, k, RadixSelectParams::default())? {
                    radix if radix.by_digit() && k >= HEURISTIC_RADIX_MIN_K => {
                        Plan::RadixSelect(radix)
                    }
                    _ => Plan::TwoStage(two_stage_config(
                        hardware,
                        layout,
                        k,
                        TwoStageParams::default(),
                    )?),
                }
            } else {
                match radix_select_config(hardware, layout, k, RadixSelectParams::default())? {
                    radix if radix.by_digit() && k >= HEURISTIC_RADIX_MANY_ROWS_MIN_K => {
                        Plan::RadixSelect(radix)
                    }
                    _ => Plan::Streaming(streaming_config(
                        hardware,
                        layout,
                        k,
                        StreamingParams::default(),
                    )?),
                }
            }
        }
    })
}

/// The streaming multiprocessors (or their equivalent) to fill; unknown on some runtimes.
pub(crate) fn processors(hardware: &HardwareProperties) -> usize {
    hardware.num_streaming_multiprocessors.unwrap_or(16) as usize
}

/// The smallest k for which [`Strategy::Heuristic`] sends a few long rows to the tiled radix
/// select rather than two-stage (H200, one row of 128k: k = 256 30.5 against 34.4 µs, k = 1024
/// 37.5 against 55.7; at k = 50 two-stage wins, 21.8 against 26.0).
const HEURISTIC_RADIX_MIN_K: usize = 256;

/// The smallest k for which [`Strategy::Heuristic`] sends rows that fill the device to the tiled
/// radix select rather than streaming (H200, k = 4096: 64 rows of 128k 66.5 against 119 µs, 256
/// rows of 32k 109 against 247; at k = 1024 the two are within 10 %).
const HEURISTIC_RADIX_MANY_ROWS_MIN_K: usize = 2048;

/// The heuristic's rule for splitting rows across cubes: fewer rows than a quarter of the
/// processors, and rows long enough that each would give several tiles of at least 4k elements.
fn few_long_rows(hardware: &HardwareProperties, layout: RowLayout, k: usize) -> bool {
    layout.rows * 4 <= processors(hardware) && layout.len >= 8 * (4 * k).max(4096)
}

/// Whether radix select runs by one digit and a list of what passes it (tiled, or in one launch)
/// for `rows` rows of `len` elements, rather than one cube per row pass by pass.
pub(crate) fn radix_select_by_digit(
    hardware: &HardwareProperties,
    rows: usize,
    len: usize,
    k: usize,
) -> bool {
    let layout = RowLayout {
        rows,
        len,
        inner: 1,
    };
    radix_select_config(hardware, layout, k, RadixSelectParams::default())
        .is_ok_and(|config| config.by_digit())
}

/// The most elements (rows × length) radix select runs tiled for whatever the rows: its lists
/// take two words per element of scratch (256 MiB here).
const RADIX_TILED_MAX_ELEMENTS: usize = 1 << 25;

/// The most entries the radix select's filter stages per step (32 KiB), so that three cubes of
/// 512 units still share a processor.
const FILTER_STAGE_MAX: usize = 4096;

/// The most rows radix select runs in one launch per processor: a cube per row leaves the
/// others idle, which pays where the tiled select's four launches cost more than the row's two
/// reads by one processor.
const ONE_LAUNCH_ROWS_PER_PROCESSOR: f64 = 0.125;

/// The longest row radix select runs in one launch: one processor reads it twice. H200, against
/// the tiled select (device / host wall µs per call): one row of 32k at k = 256 19.8 / 24.8
/// against 25.4 / 66.0, at k = 1024 22.7 / 26.3 against 24.3 / 64.3, 8 rows at k = 1024 23.3 /
/// 26.2 against 28.6 / 56.6; but rows of 128k took 44–62 µs against 24–37, and k = 4096 at 32k
/// 34.9 against 32.5 (hence also k ≤ len / 16).
const ONE_LAUNCH_MAX_LEN: usize = 32 * 1024;

/// The filter's batch (elements per unit per step) for tiles of `tile_width` in cubes of
/// `units`: as long as the tile fills the steps, up to 32 (fewer steps, each a cube scan and a
/// place taken: H200, 64 × 1M, k = 4096, 257 → 203 µs).
fn filter_batch(tile_width: usize, units: usize) -> usize {
    let batch = (tile_width / units).clamp(8, MAX_BATCH);
    1 << batch.ilog2()
}

/// The filter's stage in a cube of `units` loading `batch` elements each, with `fixed` bytes of
/// other shared memory: the entries one step may pass, up to [`FILTER_STAGE_MAX`] and what
/// shared memory holds; 0 when not even one fits.
fn filter_stage(hardware: &HardwareProperties, fixed: usize, units: usize, batch: usize) -> usize {
    (hardware.max_shared_memory_size.saturating_sub(fixed) / 8)
        .min(units * batch)
        .min(FILTER_STAGE_MAX)
}

/// The one-launch radix select's digit: one bin per bucket of its candidate buffer's histogram.
const ONE_LAUNCH_DIGIT_BITS: u32 = candidates::BUCKETS.trailing_zeros();

/// The fewest units of an explicit tiled radix select cube: each unit holds its share of the
/// histogram's bins in registers (64 at 4096 bins).
const TILED_MIN_UNITS: usize = 64;

/// Radix select in one launch for rows few enough ([`ONE_LAUNCH_ROWS_PER_PROCESSOR`]) of 16k to
/// [`ONE_LAUNCH_MAX_LEN`] elements, k up to a 16th of the row, where the candidate buffer (at
/// least 2k entries) fits with a stage; else tiled when the rows are long, the final candidate
/// buffer holds 2k entries in a cube, and either the rows alone leave most processors idle or the
/// lists' scratch is at most [`RADIX_TILED_MAX_ELEMENTS`]; else one cube per row. Explicit
/// parameters narrow the choice to the forms that take them (a tile width asks for the tiled
/// form) and are an error where none does.
fn radix_select_config(
    hardware: &HardwareProperties,
    layout: RowLayout,
    k: usize,
    params: RadixSelectParams,
) -> Result<radix_select::Config, TopKError> {
    let invalid = |reason: String| TopKError::InvalidParams { reason };
    let plane = hardware.plane_size_max.max(1) as usize;
    let max_units = hardware.max_units_per_cube as usize;
    if let Some(bits) = params.digit_bits
        && !(RADIX_DIGIT_BITS_MIN..=RADIX_DIGIT_BITS_MAX).contains(&bits)
    {
        return Err(invalid(format!(
            "{bits}-bit digits; radix select counts {RADIX_DIGIT_BITS_MIN} to \
             {RADIX_DIGIT_BITS_MAX}"
        )));
    }
    if params.tile_width == Some(0) {
        return Err(invalid("a tile width of 0".into()));
    }
    let explicit_units = match params.planes_per_cube {
        Some(planes) => {
            let units = planes as usize * plane;
            if units == 0 || units > max_units {
                return Err(invalid(format!(
                    "{planes} planes of {plane} units make {units} units per cube; radix \
                     select needs 1 to {max_units}"
                )));
            }
            Some(units)
        }
        None => None,
    };
    let one_launch_params =
        params.tile_width.is_none() && params.digit_bits.is_none_or(|b| b == ONE_LAUNCH_DIGIT_BITS);
    if one_launch_params
        && let Ok((select_units, capacity)) =
            candidate_cube(hardware, params.planes_per_cube, layout.rows, k)
    {
        let batch = filter_batch(layout.len, select_units);
        let stage = filter_stage(
            hardware,
            candidates::shared_bytes(capacity, select_units),
            select_units,
            batch,
        );
        if (layout.rows as f64) <= ONE_LAUNCH_ROWS_PER_PROCESSOR * processors(hardware) as f64
            && (16 * 1024..=ONE_LAUNCH_MAX_LEN).contains(&layout.len)
            && k <= layout.len / 16
            && select_units.is_power_of_two()
            && candidates::BUCKETS.is_multiple_of(select_units)
            && stage > 0
        {
            return Ok(radix_select::Config::OneLaunch {
                batch,
                stage,
                select: streaming::Config {
                    units: select_units,
                    batch: 8,
                    capacity,
                },
            });
        }
    }
    // The tiled form: its digit passes give each unit a run of the histogram's bins (a power of
    // two of them), two 4-element vectors per unit per step.
    let tiled_bits = params.digit_bits.unwrap_or(TILED_DIGIT_BITS);
    let bins = 1usize << tiled_bits;
    let (units, min_units) = match explicit_units {
        Some(units) => (units, TILED_MIN_UNITS),
        None => (max_units.min(512).min(bins), MIN_CANDIDATE_UNITS),
    };
    let units_fit = units.is_power_of_two()
        && units.is_multiple_of(plane)
        && (min_units..=bins).contains(&units);
    let select = candidate_cube(hardware, None, layout.rows, k)
        .ok()
        .filter(|(select_units, _)| select_units.is_multiple_of(RANK_QUERIES));
    let by_shape = (layout.rows * 2 <= processors(hardware)
        || layout.rows * layout.len <= RADIX_TILED_MAX_ELEMENTS)
        && layout.len >= 16 * 1024;
    match select {
        Some((select_units, capacity))
            if units_fit && (by_shape || params.tile_width.is_some()) =>
        {
            let batch = 8;
            // At most two cubes per processor over the batch for each launch, so each launch
            // runs in one wave (rounded up, 64 rows took 320 cubes; H200, k = 1024: 64 x 128k
            // 59.7 -> 57.9 us, 256 x 32k at k = 4096 103.0 -> 98.4).
            let cubes_per_row = (2 * processors(hardware) / layout.rows).max(1);
            // Tiles of at least one step of the cube.
            let tile_width = params
                .tile_width
                .unwrap_or_else(|| layout.len.div_ceil(cubes_per_row).max(units * batch));
            let filter_batch = filter_batch(tile_width, units);
            let scratch = 4 * filter_scratch_words(units);
            let stage = filter_stage(hardware, scratch, units, filter_batch).max(1);
            // No more ranking cubes than the longest ranked list has groups of queries.
            let rank_max = radix_select::rank_max_entries(layout.rows);
            let rank_cubes = cubes_per_row.min(rank_max.div_ceil(RANK_QUERIES).max(1));
            Ok(radix_select::Config::Tiled {
                tile_width,
                units,
                batch,
                digit_bits: tiled_bits,
                filter_batch,
                stage,
                rank_cubes,
                rank_max,
                select: streaming::Config {
                    units: select_units,
                    batch: 8,
                    // A list is taken by bucket into a buffer of 2k, or offered to it; more
                    // (the streaming kernel's 4k) only takes shared memory from other cubes
                    // (H200, 256 x 32k, k = 4096: 98.9 -> 82.4 us, the last launch in one wave).
                    capacity: (2 * k)
                        .max(2048)
                        .div_ceil(select_units)
                        .saturating_mul(select_units)
                        .min(capacity),
                },
            })
        }
        _ if params.tile_width.is_some() => Err(invalid(format!(
            "the tiled radix select needs a power-of-two count of {min_units} to {bins} units \
             that is a multiple of the plane size (got {units}) and a candidate buffer of {} \
             entries in a cube",
            2 * k
        ))),
        _ => {
            let units = explicit_units.unwrap_or(radix_select::CUBE_UNITS as usize);
            let digit_bits = params.digit_bits.unwrap_or(PER_ROW_DIGIT_BITS);
            // The histogram, and the scans' words.
            let shared = 4 * ((1usize << digit_bits) + units + 3);
            if shared > hardware.max_shared_memory_size {
                return Err(invalid(format!(
                    "{digit_bits}-bit digits in cubes of {units} units need {shared} bytes of \
                     shared memory; the device has {}",
                    hardware.max_shared_memory_size
                )));
            }
            Ok(radix_select::Config::PerRow { units, digit_bits })
        }
    }
}

/// A candidate cube's units and buffer entries for `k`. Explicit planes are taken as given
/// (an error if they do not fit); by default, large cubes (more loads in flight) when the rows
/// are fewer than the processors, else 256 so several cubes share a processor, and 256 whenever
/// the large cube's fixed shared memory leaves too little room for the buffer.
fn candidate_cube(
    hardware: &HardwareProperties,
    planes: Option<u32>,
    rows: usize,
    k: usize,
) -> Result<(usize, usize), TopKError> {
    let plane = hardware.plane_size_max.max(1) as usize;
    let max = hardware.max_units_per_cube as usize;
    let small = MIN_CANDIDATE_UNITS.div_ceil(plane) * plane;
    let units = match planes {
        Some(planes) => {
            let units = planes as usize * plane;
            if units < MIN_CANDIDATE_UNITS || units > max {
                return Err(TopKError::InvalidParams {
                    reason: format!(
                        "{planes} planes of {plane} units make {units} units per cube; \
                         this kernel needs {MIN_CANDIDATE_UNITS} to {max}"
                    ),
                });
            }
            units
        }
        None if rows < processors(hardware) => max.min(1024) / plane * plane,
        None => small,
    };
    if let Some(capacity) = candidate_capacity(k, units, hardware) {
        return Ok((units, capacity));
    }
    match (planes, candidate_capacity(k, small, hardware)) {
        (None, Some(capacity)) => Ok((small, capacity)),
        _ => Err(TopKError::InvalidParams {
            reason: format!(
                "a candidate buffer of {} entries for k = {k} does not fit the device's shared \
                 memory in a cube of {units} units",
                2 * k
            ),
        }),
    }
}

/// The candidate buffer's entries for `k` in a cube of `units`: 4k (at least 2048), so that a
/// compaction frees most of it, cut to what the device's shared memory holds; `None` when not
/// even 2k fit. A multiple of `units`.
fn candidate_capacity(k: usize, units: usize, hardware: &HardwareProperties) -> Option<usize> {
    let wanted = (4 * k).max(2048).div_ceil(units) * units;
    let fixed = candidates::shared_bytes(0, units);
    let fitting = hardware.max_shared_memory_size.saturating_sub(fixed) / 8 / units * units;
    let capacity = wanted.min(fitting);
    (capacity >= 2 * k && capacity >= units).then_some(capacity)
}

fn streaming_config(
    hardware: &HardwareProperties,
    layout: RowLayout,
    k: usize,
    params: StreamingParams,
) -> Result<streaming::Config, TopKError> {
    let (units, capacity) = candidate_cube(hardware, params.planes_per_cube, layout.rows, k)?;
    Ok(streaming::Config {
        units,
        batch: batch_elements(params.vectors_per_unit)?,
        capacity,
    })
}

fn two_stage_config(
    hardware: &HardwareProperties,
    layout: RowLayout,
    k: usize,
    params: TwoStageParams,
) -> Result<two_stage::Config, TopKError> {
    let (tile_units, tile_capacity) =
        candidate_cube(hardware, params.planes_per_cube, usize::MAX, k)?;
    let tile_width = match params.tile_width {
        Some(0) => {
            return Err(TopKError::InvalidParams {
                reason: "a tile width of 0".into(),
            });
        }
        Some(width) => width,
        None => {
            // About two cubes per processor over the whole batch, tiles of at least 4k
            // elements (so a tile's k candidates are a small part of it) and one full batch.
            let cubes = 2 * processors(hardware);
            let tiles = cubes.div_ceil(layout.rows.max(1)).max(1);
            layout
                .len
                .div_ceil(tiles)
                .max(4 * k)
                .max(tile_units * DEFAULT_BATCH)
        }
    };
    let (merge_units, merge_capacity) = merge_cube(hardware, layout, k, tile_width)?;
    Ok(two_stage::Config {
        tile: streaming::Config {
            units: tile_units,
            batch: DEFAULT_BATCH,
            capacity: tile_capacity,
        },
        tile_width,
        merge: streaming::Config {
            units: merge_units,
            batch: 8,
            capacity: merge_capacity,
        },
    })
}

/// Units of the sorted merge's cube where [`candidate_cube`] would take more.
const SORTED_MERGE_UNITS: usize = 512;

/// The two-stage merge's cube: [`candidate_cube`]'s, except that a sorted merge (the row's lists
/// fit shared memory twice) takes [`SORTED_MERGE_UNITS`] where that cube is larger (1024 units
/// for rows fewer than the processors). Its steps are barriers across the cube, which a smaller cube passes
/// sooner (H100, two-stage, 1 × 128k: k = 50 12.9 → 12.5 µs, k = 256 30.5 → 28.6; 8 × 128k,
/// k = 256 36.1 → 35.0; 256 units doubled k = 256, as more entries pass the bound than it has
/// units). A merge through the candidate buffer keeps the larger cube (1 × 1M, k = 50: 23.1
/// against 24.7 µs).
fn merge_cube(
    hardware: &HardwareProperties,
    layout: RowLayout,
    k: usize,
    tile_width: usize,
) -> Result<(usize, usize), TopKError> {
    let cube = candidate_cube(hardware, None, layout.rows, k)?;
    let plane = hardware.plane_size_max.max(1) as usize;
    let lists = layout.len.div_ceil(tile_width.max(1));
    let sorted =
        two_stage::sorted_merge_capacity(hardware, lists * k, SORTED_MERGE_UNITS).is_some();
    if sorted && cube.0 > SORTED_MERGE_UNITS && SORTED_MERGE_UNITS.is_multiple_of(plane) {
        let planes = (SORTED_MERGE_UNITS / plane) as u32;
        if let Ok(smaller) = candidate_cube(hardware, Some(planes), layout.rows, k) {
            return Ok(smaller);
        }
    }
    Ok(cube)
}

/// Elements per unit per batch, from explicit vectors per unit (of up to 4 elements each:
/// the batch is re-cut into vectors of the actual width at launch).
fn batch_elements(vectors_per_unit: Option<u32>) -> Result<usize, TopKError> {
    match vectors_per_unit {
        None => Ok(DEFAULT_BATCH),
        Some(vectors) if vectors >= 1 && vectors as usize * 4 <= MAX_BATCH => {
            Ok(vectors as usize * 4)
        }
        Some(vectors) => Err(TopKError::InvalidParams {
            reason: format!(
                "{vectors} vectors per unit; between 1 and {} are supported",
                MAX_BATCH / 4
            ),
        }),
    }
}

/// Entries each unit contributes to prime a candidate buffer's threshold (see
/// `Candidates::prime`): enough that the cube's contributions are about 4k, so that their k-th
/// best (the threshold) sits near the row's, and at most `capacity / units` (the per-unit choice
/// is a loop over the batch per entry). A kernel takes all of a batch when this is at least the
/// batch.
pub(crate) fn prime_per_unit(k: usize, units: usize, capacity: usize) -> usize {
    (4 * k).div_ceil(units).clamp(1, (capacity / units).max(1))
}

/// Elements the streaming loop samples to prime its threshold at k ≤ 256 (see
/// `prime_batches`) when every cube has a processor to itself: the sample is read twice, the
/// second time from L2, and a larger sample passes fewer elements to the buffer (H200, 128k rows,
/// k = 50, 1024-unit cubes: 64k against 32k, b = 1 21.0 → 19.4 µs, b = 64 25.8 → 23.1; k = 256
/// 37.4 → 32.1; 8 × 1M 87.1 → 75.6; 128k samples gained nothing more).
const PRIME_SAMPLE: usize = 64 * 1024;

/// [`PRIME_SAMPLE`] when the cubes outnumber the processors: many rows sampled at once no longer
/// leave their samples in L2 for the second read (H200, 256 × 128k, 256-unit cubes of 8 vectors:
/// 54.7 µs with 32k samples, 65.7 with 64k).
const PRIME_SAMPLE_CROWDED: usize = 32 * 1024;

/// Batches of `batch` elements per unit that a cube of `units` samples to prime its threshold on
/// a range of `len` elements (see `kernels::streaming::offer_range`): about [`PRIME_SAMPLE`]
/// elements ([`PRIME_SAMPLE_CROWDED`] when the launch's cubes outnumber the processors), more
/// for a larger k (whose threshold passes about k / sample of a random row), at most half the
/// range (the sample is read twice): 1, 2, 4 or 8 batches. The count is a comptime
/// parameter of the kernels (a run-time loop over the sample was 4–5 µs slower at 4 vectors per
/// unit on the H100), so it is rounded down to a power of two to keep the kernel variants that
/// NVRTC compiles (and the autotuner's first calls) few.
pub(crate) fn prime_batches(
    k: usize,
    len: usize,
    units: usize,
    batch: usize,
    crowded: bool,
) -> usize {
    let per_256 = if crowded {
        PRIME_SAMPLE_CROWDED
    } else {
        PRIME_SAMPLE
    };
    let sample = (per_256 * k.div_ceil(256)).min(len / 2);
    let batches = (sample / (units * batch).max(1)).clamp(1, 8);
    1 << batches.ilog2()
}

/// Vectors per unit for a batch of `batch` elements in vectors of `width`.
pub(crate) fn vectors_per_unit(batch: usize, width: usize) -> usize {
    (batch / width).clamp(1, MAX_BATCH / width)
}

/// The contiguous `(values, indices)` a launch writes: the input's shape with `dim` of length `k`.
pub(crate) fn allocate_outputs<R: burn_cubecl::CubeRuntime>(
    input: &burn_cubecl::tensor::CubeTensor<R>,
    k: usize,
    dim: usize,
    index_dtype: DType,
) -> (
    burn_cubecl::tensor::CubeTensor<R>,
    burn_cubecl::tensor::CubeTensor<R>,
) {
    use burn::tensor::TensorMetadata;
    let shape = output_shape(&input.shape(), k, dim);
    let [values, indices] = allocate(input, [(shape.clone(), input.dtype), (shape, index_dtype)]);
    (values, indices)
}

/// Two `[rows, per_row]` u32 scratch buffers (keys and indices) on the input's device.
pub(crate) fn allocate_scratch<R: burn_cubecl::CubeRuntime>(
    input: &burn_cubecl::tensor::CubeTensor<R>,
    rows: usize,
    per_row: usize,
) -> (
    burn_cubecl::tensor::CubeTensor<R>,
    burn_cubecl::tensor::CubeTensor<R>,
) {
    let shape: Shape = [rows, per_row].into();
    let [keys, indices] = allocate(input, [(shape.clone(), DType::U32), (shape, DType::U32)]);
    (keys, indices)
}

/// Scratch of at most this many bytes shares the outputs' buffer (one request fewer per call);
/// the buffer lives as long as the caller keeps the results, so larger scratch gets its own.
const SCRATCH_WITH_OUTPUTS_MAX_BYTES: usize = 1 << 20;

/// The outputs of [`allocate_outputs`] and the two buffers of [`allocate_scratch`], in one
/// request where the scratch is small ([`SCRATCH_WITH_OUTPUTS_MAX_BYTES`]).
pub(crate) fn allocate_outputs_and_scratch<R: burn_cubecl::CubeRuntime>(
    input: &burn_cubecl::tensor::CubeTensor<R>,
    (k, dim, index_dtype): (usize, usize, DType),
    (rows, per_row): (usize, usize),
) -> [burn_cubecl::tensor::CubeTensor<R>; 4] {
    use burn::tensor::TensorMetadata;
    if rows * per_row * 2 * DType::U32.size() > SCRATCH_WITH_OUTPUTS_MAX_BYTES {
        let (values, indices) = allocate_outputs(input, k, dim, index_dtype);
        let (keys, key_indices) = allocate_scratch(input, rows, per_row);
        return [values, indices, keys, key_indices];
    }
    let shape = output_shape(&input.shape(), k, dim);
    let scratch: Shape = [rows, per_row].into();
    allocate(
        input,
        [
            (shape.clone(), input.dtype),
            (shape, index_dtype),
            (scratch.clone(), DType::U32),
            (scratch, DType::U32),
        ],
    )
}

/// Contiguous tensors of the given shapes and dtypes on the input's device, reserved in one
/// storage buffer by one request to the device's server thread: each request is host time per
/// call, and a call needs several tensors. The buffer is freed when the last of them is dropped,
/// so only tensors that live about as long as each other (or are tiny) should share one.
pub(crate) fn allocate<R: burn_cubecl::CubeRuntime, const N: usize>(
    input: &burn_cubecl::tensor::CubeTensor<R>,
    tensors: [(Shape, DType); N],
) -> [burn_cubecl::tensor::CubeTensor<R>; N] {
    use burn_cubecl::tensor::CubeTensor;
    use cubecl::server::{MemoryLayout, MemoryLayoutDescriptor};
    let descriptors = tensors
        .iter()
        .map(|(shape, dtype)| MemoryLayoutDescriptor::contiguous(shape.clone(), dtype.size()))
        .collect();
    // The layout policy aligns each tensor within the buffer.
    let mut layouts = input.client.empty_tensors(descriptors).into_iter();
    tensors.map(|(shape, dtype)| {
        let MemoryLayout { memory, strides } = layouts.next().expect("one layout per tensor");
        CubeTensor::new(
            input.client.clone(),
            memory,
            cubecl::zspace::metadata::Metadata::new(shape, strides),
            input.device.clone(),
            dtype,
        )
    })
}

/// The shape of the results: `shape` with `dim` replaced by `k`.
pub(crate) fn output_shape(shape: &Shape, k: usize, dim: usize) -> Shape {
    let mut dims = shape.to_vec();
    dims[dim] = k;
    Shape::from(dims)
}

/// Runs a planned top-k on the device. `index_dtype` is the backend's integer type.
pub(crate) fn top_k<R: burn_cubecl::CubeRuntime>(
    tensor: burn_cubecl::tensor::CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    plan: Plan,
    largest: bool,
    index_dtype: DType,
) -> (
    burn_cubecl::tensor::CubeTensor<R>,
    burn_cubecl::tensor::CubeTensor<R>,
) {
    match plan {
        Plan::Streaming(config) => {
            streaming::launch(tensor, k, dim, layout, largest, index_dtype, config)
        }
        Plan::TwoStage(config) => {
            two_stage::launch(tensor, k, dim, layout, largest, index_dtype, config)
        }
        Plan::RadixSelect(config) => {
            radix_select::launch(tensor, k, dim, layout, largest, index_dtype, config)
        }
        Plan::BurnBuiltin => unreachable!("Burn's own top-k runs through the backend's ops"),
        Plan::Autotune => crate::autotune::top_k(tensor, k, dim, largest, index_dtype),
    }
}

/// Where each row starts in a buffer passed to a kernel as an array, which carries no shape or
/// strides (a tensor argument makes CubeCL upload them before every launch: half of the host's
/// time per launch on the H200). Rows, numbered row-major over every dimension but `dim`, come in
/// groups of `group_rows`; groups are `group_stride` elements apart and the rows of a group
/// `row_stride` apart
/// ([`mapped_row_offset`](crate::kernels::primitives::mapped_row_offset())).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowMap {
    pub group_rows: usize,
    pub group_stride: usize,
    pub row_stride: usize,
}

impl RowMap {
    /// The map of a tensor with `shape` and `strides` whose rows run along `dim`, or `None` when
    /// the other dimensions do not fold into two levels (a permuted view of three or more).
    pub(crate) fn new(shape: &[usize], strides: &[usize], dim: usize) -> Option<Self> {
        // The other dimensions, outermost first, without those of size 1, each merged into the
        // one before where they nest (its stride is this one's times this one's size).
        let mut levels: Vec<(usize, usize)> = Vec::new();
        for axis in (0..shape.len()).filter(|&axis| axis != dim && shape[axis] != 1) {
            let (size, stride) = (shape[axis], strides[axis]);
            match levels.last_mut() {
                Some(outer) if outer.1 == stride * size => *outer = (outer.0 * size, stride),
                _ => levels.push((size, stride)),
            }
        }
        match levels[..] {
            [] => Some(Self {
                group_rows: 1,
                group_stride: 0,
                row_stride: 0,
            }),
            [(rows, row_stride)] => Some(Self {
                group_rows: rows,
                group_stride: 0,
                row_stride,
            }),
            [(_, group_stride), (rows, row_stride)] => Some(Self {
                group_rows: rows,
                group_stride,
                row_stride,
            }),
            _ => None,
        }
    }
}

/// The input and the map of its rows along `dim` for kernels that take arrays; a permuted view
/// whose rows have no map ([`RowMap::new`]) is copied contiguous first.
pub(crate) fn mapped_rows<R: burn_cubecl::CubeRuntime>(
    input: burn_cubecl::tensor::CubeTensor<R>,
    dim: usize,
) -> (burn_cubecl::tensor::CubeTensor<R>, RowMap) {
    let map = |input: &burn_cubecl::tensor::CubeTensor<R>| {
        RowMap::new(input.meta.shape(), input.meta.strides(), dim)
    };
    match map(&input) {
        Some(rows) => (input, rows),
        None => {
            let input = burn_cubecl::kernel::into_contiguous(input);
            let rows = map(&input).expect("a contiguous tensor's rows have a map");
            (input, rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RowMap;

    /// The offset of each row by its coordinates, row-major over the dimensions other than `dim`.
    fn offsets(shape: &[usize], strides: &[usize], dim: usize) -> Vec<usize> {
        let rows: usize = shape.iter().product::<usize>() / shape[dim];
        (0..rows)
            .map(|row| {
                let mut remaining = row;
                let mut offset = 0;
                for axis in (0..shape.len()).rev().filter(|&axis| axis != dim) {
                    offset += (remaining % shape[axis]) * strides[axis];
                    remaining /= shape[axis];
                }
                offset
            })
            .collect()
    }

    #[test]
    fn row_map_matches_row_offsets() {
        let cases: [(&[usize], &[usize], usize); 8] = [
            (&[4, 10], &[10, 1], 1),
            (&[10, 4], &[1, 10], 0),
            (&[10, 4], &[4, 1], 0),
            (&[2, 3, 5], &[15, 5, 1], 1),
            (&[2, 3, 5], &[15, 5, 1], 2),
            (&[2, 3, 5], &[15, 5, 1], 0),
            (&[1, 7, 1], &[7, 1, 1], 1),
            (&[3, 1, 4, 6], &[24, 24, 1, 4], 2),
        ];
        for (shape, strides, dim) in cases {
            let map = RowMap::new(shape, strides, dim).expect("two levels at most");
            let mapped: Vec<usize> = (0..offsets(shape, strides, dim).len())
                .map(|row| {
                    (row / map.group_rows) * map.group_stride
                        + (row % map.group_rows) * map.row_stride
                })
                .collect();
            assert_eq!(
                mapped,
                offsets(shape, strides, dim),
                "{shape:?} {strides:?} {dim}"
            );
        }
        // Three levels that do not nest (a permuted view): no map.
        assert_eq!(RowMap::new(&[2, 3, 5, 7], &[1, 100, 14, 2], 3), None);
    }

    /// A device with planes of 32, `processors` and `shared` bytes of shared memory per cube.
    fn hardware(processors: Option<u32>, shared: usize) -> cubecl::ir::HardwareProperties {
        cubecl::ir::HardwareProperties {
            load_width: 128,
            plane_size_min: 32,
            plane_size_max: 32,
            max_bindings: 8,
            max_shared_memory_size: shared,
            max_cube_count: (65535, 65535, 65535),
            max_units_per_cube: 1024,
            max_cube_dim: (1024, 1024, 64),
            num_streaming_multiprocessors: processors,
            num_cpu_cores: None,
            num_tensor_cores: None,
            min_tensor_cores_dim: None,
            max_vector_size: 4,
        }
    }

    /// The sorted merge of rows fewer than the processors runs in 512-unit cubes; a merge through
    /// the candidate buffer (lists too long for shared memory twice) in 1024, and rows that fill
    /// the device in 256.
    #[test]
    fn merge_cube_by_merge_kind_and_rows() {
        use super::{RowLayout, merge_cube};
        let h100 = hardware(Some(132), 227 * 1024);
        let units = |rows, len, k, tile_width| {
            let layout = RowLayout {
                rows,
                len,
                inner: 1,
            };
            merge_cube(&h100, layout, k, tile_width).expect("fits").0
        };
        assert_eq!(units(1, 131072, 50, 4096), 512);
        assert_eq!(units(64, 131072, 256, 26215), 512);
        assert_eq!(units(1, 1 << 20, 50, 4096), 1024);
        assert_eq!(units(1, 131072, 1024, 4096), 1024);
        assert_eq!(units(256, 131072, 50, 4096), 256);
    }

    /// One short row takes the one-launch radix select whether or not the device reports its
    /// processor count, so lavapipe's CI (wgpu reports none) runs that kernel; longer rows are
    /// tiled.
    #[test]
    fn one_launch_for_one_short_row() {
        use super::{RadixSelectParams, RowLayout, radix_select_config};
        use crate::launch::radix_select::Config;
        let hardware = |processors| hardware(processors, 48 * 1024);
        let plan = |processors, len| {
            let layout = RowLayout {
                rows: 1,
                len,
                inner: 1,
            };
            radix_select_config(
                &hardware(processors),
                layout,
                333,
                RadixSelectParams::default(),
            )
            .expect("radix select fits")
        };
        for processors in [Some(132), None] {
            assert!(matches!(plan(processors, 16385), Config::OneLaunch { .. }));
            assert!(matches!(plan(processors, 131072), Config::Tiled { .. }));
        }
    }
}
