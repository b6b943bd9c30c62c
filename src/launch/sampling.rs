//! Host side of the sampling kernels: [`crate::kernels::sampling`] (one launch per call, one cube
//! per row), the fast path for calls with a top-k of at most [`STREAMING_MAX_K`] (the crate's
//! top-k, then [`crate::kernels::sampling_candidates`] on the candidates), and greedy decoding
//! ([`crate::kernels::greedy`], one read of each row).

use crate::autotune::{TuneShape, tuned_choice};
use crate::error::RowLayout;
use crate::kernels::greedy::greedy_kernel;
use crate::kernels::sampling::{
    DRAW_BINS, OUTPUT_MASKED_LOGITS, OUTPUT_PROBABILITIES, OUTPUT_TOKENS, PER_ROW_MIN_P,
    PER_ROW_SEED, PER_ROW_TEMPERATURE, PER_ROW_TOP_K, PER_ROW_TOP_P, sampling_kernel,
};
use crate::kernels::sampling_candidates::{
    self, candidate_sampling_kernel, streaming_sampling_kernel,
};
use crate::launch::streaming::{self, KernelParams, cube_grid, vector_width};
use crate::launch::{Plan, allocate, check_and_plan, processors, top_k};
use crate::options::{STREAMING_MAX_K, Strategy};
use crate::sampling::{FilterOrder, FilterOutput, ScalarParams, Source};
use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};
use cubecl::ir::HardwareProperties;
use cubecl::prelude::*;

/// Units per cube of both sampling kernels, one cube per row. A row read by one cube leaves most
/// processors idle at small batch, so while the rows are fewer than the processors (and `long_read`:
/// the kernel reads whole rows) the cube is as large as the device allows, up to 1024 units;
/// otherwise 256, which every device supports. Always a multiple of the draw's classes
/// ([`DRAW_BINS`]) and of every plane size (8 to 64); the tokens do not depend on it.
fn cube_units(hardware: &HardwareProperties, rows: usize, long_read: bool) -> usize {
    let max_units = (hardware.max_units_per_cube as usize).min(1024) / DRAW_BINS * DRAW_BINS;
    if long_read && rows < processors(hardware) {
        max_units.max(DRAW_BINS)
    } else {
        DRAW_BINS
    }
}

/// Per-row parameter tensors on a CubeCL device (validated: `[rows]`, dtypes checked).
pub(crate) struct PerRowTensors<R: CubeRuntime> {
    pub temperature: Option<CubeTensor<R>>,
    pub top_k: Option<CubeTensor<R>>,
    pub top_p: Option<CubeTensor<R>>,
    pub min_p: Option<CubeTensor<R>>,
    pub seed: Option<CubeTensor<R>>,
}

/// What one launch produces: tokens and validity flags, or the filtered rows.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Produced<R: CubeRuntime> {
    Tokens {
        tokens: CubeTensor<R>,
        valid: CubeTensor<R>,
    },
    Filtered(CubeTensor<R>),
}

/// Launches the sampling kernel on a validated `[rows, vocab]` input. `output` is `None` for
/// tokens; `int_dtype` is the backend's integer type.
pub(crate) fn launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    per_row: PerRowTensors<R>,
    scalars: &ScalarParams,
    output: Option<FilterOutput>,
    int_dtype: DType,
) -> Produced<R> {
    let shape = input.shape();
    let rows = shape[0];
    // Tokens and validity flags, or the filtered rows; the outputs a call does not write, and the
    // parameter slots not given per row, are one-element placeholders. All in one request.
    let (token_shape, filtered_shape): (Shape, Shape) = match output {
        None => ([rows].into(), [1].into()),
        Some(_) => ([1].into(), shape.clone()),
    };
    let param_dtype = param_dtype(&per_row, input.dtype);
    let one: Shape = [1].into();
    let [
        tokens,
        valid,
        filtered,
        temperature,
        top_k,
        top_p,
        min_p,
        seed,
    ] = allocate(
        &input,
        [
            (token_shape.clone(), int_dtype),
            (token_shape, int_dtype),
            (filtered_shape, input.dtype),
            (one.clone(), param_dtype),
            (one.clone(), int_dtype),
            (one.clone(), param_dtype),
            (one.clone(), param_dtype),
            (one, int_dtype),
        ],
    );
    let placeholders = Placeholders {
        temperature,
        top_k,
        top_p,
        min_p,
        seed,
        param_dtype,
    };
    let produced = match output {
        None => Produced::Tokens {
            tokens: tokens.clone(),
            valid: valid.clone(),
        },
        Some(_) => Produced::Filtered(filtered.clone()),
    };
    if rows == 0 {
        return produced;
    }
    if greedy_only(&per_row, scalars, output) {
        launch_greedy(input, int_dtype, tokens, valid);
        return produced;
    }
    if let Some(kept) = fast_path_k(&input, &per_row, scalars, output) {
        sample_from_top_k(
            input,
            per_row,
            placeholders,
            scalars,
            kept,
            int_dtype,
            [tokens, valid, filtered],
        );
        return produced;
    }
    launch_kernel(
        input,
        per_row,
        placeholders,
        scalars,
        output,
        int_dtype,
        [tokens, valid, filtered],
    );
    produced
}

/// One-element tensors for the parameter slots not given per row (never read; distinct buffers,
/// since wgpu refuses aliased writable bindings).
struct Placeholders<R: CubeRuntime> {
    temperature: CubeTensor<R>,
    top_k: CubeTensor<R>,
    top_p: CubeTensor<R>,
    min_p: CubeTensor<R>,
    seed: CubeTensor<R>,
    /// The float type of the per-row parameters ([`param_dtype`]), that of the float slots.
    param_dtype: DType,
}

/// The kernels' per-row parameter tensors and the flags saying which are given. Parameters not
/// given per row are kernel scalars; their tensor slots get a placeholder.
struct ParamSlots<R: CubeRuntime> {
    temperatures: CubeTensor<R>,
    top_ks: CubeTensor<R>,
    top_ps: CubeTensor<R>,
    min_ps: CubeTensor<R>,
    seeds: CubeTensor<R>,
    flags: u32,
    /// The float type of the per-row parameters (the input's when none is given).
    param_dtype: DType,
}

/// The float type of the per-row parameters: that of the first one given, else the input's.
fn param_dtype<R: CubeRuntime>(per_row: &PerRowTensors<R>, input_dtype: DType) -> DType {
    [&per_row.temperature, &per_row.top_p, &per_row.min_p]
        .into_iter()
        .flatten()
        .map(|t| t.dtype)
        .next()
        .unwrap_or(input_dtype)
}

fn param_slots<R: CubeRuntime>(
    per_row: PerRowTensors<R>,
    placeholders: Placeholders<R>,
) -> ParamSlots<R> {
    let mut flags = 0u32;
    let mut slot = |tensor: Option<CubeTensor<R>>, flag: u32, placeholder: CubeTensor<R>| {
        match tensor {
            Some(tensor) => {
                flags |= flag;
                // The kernels read `[row]` of an array: a strided or broadcast view is copied in
                // order.
                into_contiguous(tensor)
            }
            None => placeholder,
        }
    };
    let temperatures = slot(
        per_row.temperature,
        PER_ROW_TEMPERATURE,
        placeholders.temperature,
    );
    let top_ks = slot(per_row.top_k, PER_ROW_TOP_K, placeholders.top_k);
    let top_ps = slot(per_row.top_p, PER_ROW_TOP_P, placeholders.top_p);
    let min_ps = slot(per_row.min_p, PER_ROW_MIN_P, placeholders.min_p);
    let seeds = slot(per_row.seed, PER_ROW_SEED, placeholders.seed);
    ParamSlots {
        temperatures,
        top_ks,
        top_ps,
        min_ps,
        seeds,
        flags,
        param_dtype: placeholders.param_dtype,
    }
}

/// Launches the one-launch kernel ([`sampling_kernel`]) into the given outputs (placeholders of one
/// element for the ones `output` does not write).
#[allow(clippy::too_many_arguments)]
fn launch_kernel<R: CubeRuntime>(
    input: CubeTensor<R>,
    per_row: PerRowTensors<R>,
    placeholders: Placeholders<R>,
    scalars: &ScalarParams,
    output: Option<FilterOutput>,
    int_dtype: DType,
    [tokens, valid, filtered]: [CubeTensor<R>; 3],
) {
    let client = input.client.clone();
    let rows = input.shape()[0];
    let cube_dim = cube_units(&client.properties().hardware, rows, true) as u32;
    let ParamSlots {
        temperatures,
        top_ks,
        top_ps,
        min_ps,
        seeds,
        flags,
        param_dtype,
    } = param_slots(per_row, placeholders);

    let kernel_output = match output {
        None => OUTPUT_TOKENS,
        Some(FilterOutput::MaskedLogits) => OUTPUT_MASKED_LOGITS,
        Some(FilterOutput::Probabilities) => OUTPUT_PROBABILITIES,
    };
    // k = 0 tells the kernel "no top-k" (validated k >= 1 otherwise).
    let top_k = scalars
        .top_k
        .map(|k| k.min(u32::MAX as usize) as u32)
        .unwrap_or(0);
    let dtypes = [input.dtype.into(), param_dtype.into(), int_dtype.into()];
    let (vocab, row_stride, stride) = row_layout(&input);
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, k or the per-row flags). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        sampling_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(rows),
            CubeDim::new_1d(cube_dim),
            input.into_array_arg(),
            temperatures.into_array_arg(),
            top_ks.into_array_arg(),
            top_ps.into_array_arg(),
            min_ps.into_array_arg(),
            seeds.into_array_arg(),
            tokens.into_array_arg(),
            valid.into_array_arg(),
            filtered.into_array_arg(),
            vocab,
            row_stride,
            stride,
            scalars.temperature,
            top_k,
            scalars.top_p,
            scalars.min_p,
            // −inf as an argument: CUDA cannot reinterpret a constant's bits, and float constants
            // print as `inf`.
            f32::NEG_INFINITY,
            scalars.seed as u32,
            (scalars.seed >> 32) as u32,
            scalars.offset as u32,
            (scalars.offset >> 32) as u32,
            flags,
            rows,
            kernel_output,
            scalars.source == Source::Probabilities,
            scalars.order == FilterOrder::Joint,
            cube_dim,
            dtypes,
        )
    };
}

/// A `[rows, vocab]` input's row length, row stride and element stride, the kernels' view of it.
fn row_layout<R: CubeRuntime>(input: &CubeTensor<R>) -> (usize, usize, usize) {
    let strides = input.meta.strides();
    (input.shape()[1], strides[0], strides[1])
}

/// Vector loads in flight per unit in the candidate kernel's read of the whole row.
const ROW_PASS_VECTORS: u32 = 4;

/// Whether the call is greedy decoding with nothing given per row: tokens from logits at a batch
/// temperature of 0. Every filter then keeps the argmax, and with no per-row parameter no row can
/// be invalid for its parameters, so [`greedy_kernel`] gives the token and the validity alone.
fn greedy_only<R: CubeRuntime>(
    per_row: &PerRowTensors<R>,
    scalars: &ScalarParams,
    output: Option<FilterOutput>,
) -> bool {
    let PerRowTensors {
        temperature,
        top_k,
        top_p,
        min_p,
        seed,
    } = per_row;
    output.is_none()
        && scalars.source == Source::Logits
        && scalars.temperature == 0.0
        && [temperature, top_k, top_p, min_p, seed]
            .iter()
            .all(|t| t.is_none())
}

/// Vector loads in flight per unit in the greedy kernel's read of the row.
const GREEDY_VECTORS: usize = 4;

/// Greedy decoding: one cube per row, [`greedy_kernel`].
fn launch_greedy<R: CubeRuntime>(
    input: CubeTensor<R>,
    int_dtype: DType,
    tokens: CubeTensor<R>,
    valid: CubeTensor<R>,
) {
    let client = input.client.clone();
    let rows = input.shape()[0];
    let cube_dim = cube_units(&client.properties().hardware, rows, true);
    let width = vector_width(&input, 1);
    let (vocab, row_stride, stride) = row_layout(&input);
    let dtypes = [input.dtype.into(), int_dtype.into()];
    // SAFETY: the kernel bounds every load by the row length and writes one token per row.
    unsafe {
        greedy_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(rows),
            CubeDim::new_1d(cube_dim as u32),
            width,
            input.clone().into_array_arg(),
            tokens.into_array_arg(),
            valid.into_array_arg(),
            vocab,
            row_stride,
            stride,
            rows,
            cube_dim,
            GREEDY_VECTORS,
            dtypes,
        )
    };
}

/// The k of the fast path for this call, or `None` where the one-launch kernel runs: token
/// sampling (not the filters) with a batch top-k whose k, cut to the vocabulary, is at most
/// [`STREAMING_MAX_K`]. Per-row k tensors take the one-launch kernel (their largest k is not known
/// on the host without a read-back), and so does greedy decoding from logits with other per-row
/// parameters (a row's parameters may make it invalid): its first pass is the argmax, one launch
/// and one read instead of a top-k and a candidate kernel.
fn fast_path_k<R: CubeRuntime>(
    input: &CubeTensor<R>,
    per_row: &PerRowTensors<R>,
    scalars: &ScalarParams,
    output: Option<FilterOutput>,
) -> Option<usize> {
    if output.is_some() || per_row.top_k.is_some() {
        return None;
    }
    let vocab = input.shape()[1];
    let greedy = scalars.source == Source::Logits
        && per_row.temperature.is_none()
        && scalars.temperature == 0.0;
    if greedy {
        return None;
    }
    let kept = scalars.top_k?.min(vocab);
    (kept <= STREAMING_MAX_K).then_some(kept)
}

/// The streaming cube that runs the fast path in one launch
/// ([`streaming_sampling_kernel`]: the top-k, then the candidate sampling, in each cube): where
/// the top-k's plan is the streaming kernel (or, for [`Strategy::Auto`], the autotuner's pick
/// for this key once it is tuned; the first call tunes through the two-launch path), with a cube
/// of whole draw classes whose candidate buffer and sampling scratch both fit the shared memory.
/// The tokens are the same either way.
fn fused_config<R: CubeRuntime>(
    input: &CubeTensor<R>,
    layout: RowLayout,
    plan: Plan,
    kept: usize,
) -> Option<streaming::Config> {
    let hardware = &input.client.properties().hardware;
    let config = match plan {
        Plan::Streaming(config) => config,
        Plan::Autotune => {
            let shape = TuneShape::new(layout.rows, layout.len, kept).with_dtype(input.dtype);
            let choice = tuned_choice::<R>(&input.client, &input.device, &shape)?;
            if !matches!(choice.strategy, Strategy::Streaming(_)) {
                return None;
            }
            // The input was checked with `Auto`; only the pick's configuration is new.
            match crate::launch::plan(hardware, layout, kept, choice.strategy) {
                Ok(Plan::Streaming(config)) => config,
                _ => return None,
            }
        }
        _ => return None,
    };
    let shared = sampling_candidates::fused_shared_bytes(config.capacity, config.units);
    (config.units.is_multiple_of(DRAW_BINS)
        && kept.div_ceil(config.units) <= 32
        && shared <= hardware.max_shared_memory_size)
        .then_some(config)
}

/// The fast path: the crate's top-k (the params' strategy, `Strategy::Auto` by default) of every
/// row, then one cube per row on its `kept` candidates. One launch where the streaming kernel
/// can sample in the same cubes ([`fused_config`]), else two, or three when the top-k is
/// two-stage.
/// Falls back to the one-launch kernel where the top-k refuses the input.
fn sample_from_top_k<R: CubeRuntime>(
    input: CubeTensor<R>,
    per_row: PerRowTensors<R>,
    placeholders: Placeholders<R>,
    scalars: &ScalarParams,
    kept: usize,
    int_dtype: DType,
    [tokens, valid, filtered]: [CubeTensor<R>; 3],
) {
    let client = input.client.clone();
    let shape = input.shape();
    let (rows, vocab) = (shape[0], shape[1]);
    let hardware = client.properties().hardware.clone();
    let planned = check_and_plan(
        &hardware,
        input.dtype,
        || true,
        &shape,
        input.handle.size() as usize / input.dtype.size(),
        kept,
        1,
        scalars.top_k_strategy,
    );
    let (layout, plan) = match planned {
        Ok((layout, plan)) if plan != Plan::BurnBuiltin => (layout, plan),
        _ => {
            launch_kernel(
                input,
                per_row,
                placeholders,
                scalars,
                None,
                int_dtype,
                [tokens, valid, filtered],
            );
            return;
        }
    };
    // The fast path only runs with a batch k: no per-row k slot.
    let ParamSlots {
        temperatures,
        top_ps,
        min_ps,
        seeds,
        flags,
        param_dtype,
        ..
    } = param_slots(per_row, placeholders);

    let from_probs = scalars.source == Source::Probabilities;
    let joint = scalars.order == FilterOrder::Joint;
    let p_may_cut = scalars.top_p < 1.0 || flags & PER_ROW_TOP_P != 0;
    let full_pass = from_probs || (joint && p_may_cut && kept < vocab);
    let dtypes = [input.dtype.into(), param_dtype.into(), int_dtype.into()];
    let (vocab, row_stride, stride) = row_layout(&input);
    if !full_pass && let Some(config) = fused_config(&input, layout, plan, kept) {
        let params = KernelParams::new(&input, 1, layout, kept, config);
        // SAFETY: the kernel guards its own accesses (every index is bounded by the row length,
        // k, the buffer capacity or the per-row flags).
        unsafe {
            streaming_sampling_kernel::launch_unchecked::<R>(
                &client,
                cube_grid(rows),
                CubeDim::new_1d(config.units as u32),
                params.width,
                input.into_array_arg(),
                temperatures.into_array_arg(),
                top_ps.into_array_arg(),
                min_ps.into_array_arg(),
                seeds.into_array_arg(),
                tokens.into_array_arg(),
                valid.into_array_arg(),
                vocab,
                row_stride,
                stride,
                scalars.temperature,
                scalars.top_p,
                scalars.min_p,
                scalars.seed as u32,
                (scalars.seed >> 32) as u32,
                scalars.offset as u32,
                (scalars.offset >> 32) as u32,
                flags,
                rows,
                kept as u32,
                config.units,
                params.vectors,
                config.capacity,
                params.prime_per_unit,
                params.prime_batches,
                params.single_batch,
                kept.div_ceil(config.units) as u32,
                dtypes,
            )
        };
        return;
    }
    let (values, indices) = top_k(input.clone(), kept, 1, layout, plan, true, int_dtype);
    // The candidate kernel reads them as `[rows, kept]` arrays.
    let (values, indices) = (into_contiguous(values), into_contiguous(indices));

    let cube_dim = cube_units(&hardware, rows, full_pass);
    let per_unit = kept.div_ceil(cube_dim) as u32;
    let width = if full_pass {
        vector_width(&input, 1)
    } else {
        1
    };
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, k or the per-row flags). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        candidate_sampling_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(rows),
            CubeDim::new_1d(cube_dim as u32),
            width,
            values.into_array_arg(),
            indices.into_array_arg(),
            input.into_array_arg(),
            temperatures.into_array_arg(),
            top_ps.into_array_arg(),
            min_ps.into_array_arg(),
            seeds.into_array_arg(),
            tokens.into_array_arg(),
            valid.into_array_arg(),
            vocab,
            row_stride,
            stride,
            scalars.temperature,
            scalars.top_p,
            scalars.min_p,
            scalars.seed as u32,
            (scalars.seed >> 32) as u32,
            scalars.offset as u32,
            (scalars.offset >> 32) as u32,
            flags,
            rows,
            kept as u32,
            from_probs,
            joint,
            full_pass,
            cube_dim as u32,
            per_unit,
            ROW_PASS_VECTORS,
            dtypes,
        )
    };
}
