//! Token sampling from a row's top-k candidates: the second launch of the fast path, or the end
//! of the streaming top-k's launch ([`streaming_sampling_kernel()`]).
//!
//! When a call has a top-k of at most [`STREAMING_MAX_K`](crate::options::STREAMING_MAX_K), the
//! host first runs the crate's own top-k on the logits (or probabilities), which
//! reads each row once with vector loads and writes the k largest, sorted by value descending,
//! ties by smaller index: exactly the order every prefix filter of
//! [`sampling_kernel`](crate::kernels::sampling::sampling_kernel()) cuts. This kernel then works on
//! those `[rows, k]` candidates only, one cube per row, and gives the same token as
//! `sampling_kernel` for the same seed:
//!
//! 1. validity and greedy from the first candidate (NaN ranks above +inf, so a row with a NaN or
//!    +inf, or with no finite logit, has it first); rows from probabilities also need the whole row
//!    free of negative values, which costs one extra read of the row (see 3);
//! 2. each unit owns a contiguous block of candidates and computes their fixed-point weights
//!    (the same rounding as `sampling_kernel`); one cube scan gives every prefix mass, so the top-p
//!    cut is the first candidate whose prefix mass reaches the target, and the top-k mass (the base
//!    of a sequential top-p) is the scan's total;
//! 3. the joint order puts top-p on the unrenormalised distribution, whose normaliser is the
//!    fixed-point mass of the whole row: one extra read of the row with vector loads, several in
//!    flight per unit, folded into this kernel;
//! 4. the draw walks the survivors in `sampling_kernel`'s order (class: index mod 256, then
//!    index), i.e. by the position key `(index mod 256) << 24 | index >> 8`. With one candidate
//!    per unit (k up to the cube size), every unit sums the weights of the survivors before its
//!    own, one barrier; otherwise a radix select by mass over the position key, 8 bits per pass,
//!    with 64-bit fixed-point histograms of the survivors' weights; passes over bytes that are zero
//!    for every index of the row are skipped (two passes for vocabularies up to 65 536, three up
//!    to 2^24).

use crate::kernels::candidates::{self, order_top_k};
use crate::kernels::philox::philox_first_word;
use crate::kernels::primitives::{key_value, linear_unit, order_key};
use crate::kernels::sampling::{
    DRAW_BINS, FRACTION_SCALE, KEY_NEG_INF, KEY_POS_INF, KEY_ZERO, RowParams, cube_max_i32,
    fixed_weight, relative_weight,
};
use crate::kernels::streaming::offer_row;
use crate::kernels::wide::{
    cube_exclusive_sum_wide, draw_point, top_p_target, wide_add, wide_ge, wide_sub,
};
use cubecl::prelude::*;

// Slots of the `decision` shared memory.
const CUT: usize = 0;
const DIGIT: usize = 1;
const REM_HI: usize = 2;
const REM_LO: usize = 3;
const DECISION_WORDS: usize = 4;

/// Where a row lies in its array: `len` elements from `base` on, `stride` apart.
#[derive(CubeType, Clone, Copy)]
pub struct RowSpan {
    pub base: usize,
    pub stride: usize,
    pub len: usize,
}

#[cube]
impl RowSpan {
    pub fn new(base: usize, stride: usize, len: usize) -> RowSpan {
        RowSpan { base, stride, len }
    }
}

/// Shared-memory bytes of the candidate sampling in a cube of `cube_dim` units.
pub fn shared_bytes(cube_dim: usize) -> usize {
    4 * ((cube_dim + 1) + 3 * (cube_dim + 1) + DECISION_WORDS + 2 * DRAW_BINS)
}

/// Shared-memory bytes of [`streaming_sampling_kernel()`] with a candidate buffer of `capacity`
/// entries in a cube of `units`, with room for the alignment of each shared array.
pub fn fused_shared_bytes(capacity: usize, units: usize) -> usize {
    candidates::shared_bytes(capacity, units) + shared_bytes(units) + 256
}

/// One read of a row with vector loads (`vectors_per_unit` loads in flight per unit): whether it
/// holds a negative value (`from_probs` only), and the fixed-point mass of the whole row relative to
/// `top` (only where `need_total`). Returns `(negative, mass_hi, mass_lo)` for this unit.
// Comptime and run-time conditions stay in separate `if`s: the DSL cannot mix them in one `&&`.
#[cube]
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
fn row_pass<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    row: RowSpan,
    top: f32,
    temperature: f32,
    need_total: bool,
    #[comptime] from_probs: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) -> (u32, u32, u32) {
    let width = input.vector_size();
    let vocab = row.len;
    let stride = row.stride;
    let base = row.base;
    let unit = linear_unit();
    let mut negative = 0u32;
    let mut hi = 0u32;
    let mut lo = 0u32;
    let mut start = 0usize;
    while start < vocab {
        let mut loaded = Array::<Vector<F, N>>::new(vectors_per_unit);
        // All loads of the batch are issued before any is used.
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = start + (v * units + unit) * width;
            if first < vocab {
                loaded[v] = input[(base + first * stride) / width];
            }
        }
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = start + (v * units + unit) * width;
            if first < vocab {
                let vector = loaded[v];
                #[unroll]
                for lane in 0..width {
                    let value = f32::cast_from(vector[lane]);
                    if from_probs {
                        if order_key::<f32>(value, true) < KEY_ZERO {
                            negative = 1u32;
                        }
                    }
                    if need_total {
                        let weight =
                            fixed_weight(relative_weight(value, top, temperature, from_probs));
                        let (h, l) = wide_add(hi, lo, 0u32, weight);
                        hi = h;
                        lo = l;
                    }
                }
            }
        }
        start += units * vectors_per_unit * width;
    }
    (negative, hi, lo)
}

/// The draw when each unit holds at most one candidate (`weight`, 0 if none or filtered out, at
/// the position key `position`): every unit holding a survivor sums the survivors' weights, in all
/// and over those of smaller position key, so it knows its own mass interval in the draw order, and
/// the unit whose interval holds the draw writes the token. One barrier instead of a radix pass's
/// five, and the same token: `r = floor(random × total / 2^32)` falls in exactly one survivor's
/// interval.
#[cube]
#[allow(clippy::too_many_arguments)]
fn draw_one_per_unit<I: Int>(
    weight: u32,
    position: u32,
    random: u32,
    kept: u32,
    row: usize,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    scratch: &mut SharedMemory<u32>,
    #[comptime] cube_dim: u32,
) {
    let unit = linear_unit();
    sync_cube();
    scratch[unit] = position;
    scratch[cube_dim as usize + unit] = weight;
    sync_cube();
    // Only a survivor can hold the draw: the others (most units of a large cube) skip the walk
    // over the list, which every unit would otherwise repeat.
    if weight > 0u32 {
        let mut total_hi = 0u32;
        let mut total_lo = 0u32;
        let mut before_hi = 0u32;
        let mut before_lo = 0u32;
        // Four entries per step, so their loads overlap. The units past `kept` wrote weight 0,
        // and the cube (a multiple of 256 units) holds the rounded-up list.
        for group in 0..(kept as usize).div_ceil(4usize) {
            #[unroll]
            for t in 0..4usize {
                let i = group * 4usize + t;
                let w = scratch[cube_dim as usize + i];
                let (h, l) = wide_add(total_hi, total_lo, 0u32, w);
                total_hi = h;
                total_lo = l;
                let earlier = select(scratch[i] < position, w, 0u32);
                let (h, l) = wide_add(before_hi, before_lo, 0u32, earlier);
                before_hi = h;
                before_lo = l;
            }
        }
        let (r_hi, r_lo) = draw_point(random, total_hi, total_lo);
        let (end_hi, end_lo) = wide_add(before_hi, before_lo, 0u32, weight);
        if wide_ge(r_hi, r_lo, before_hi, before_lo) && !wide_ge(r_hi, r_lo, end_hi, end_lo) {
            tokens[row] = I::cast_from(((position & 0x00FF_FFFFu32) << 8u32) | (position >> 24u32));
            valid[row] = I::cast_from(1u32);
        }
    }
}

/// Samples one token per row from its sorted top-k candidates (`values`, `indices`: contiguous
/// `[rows, kept]`, as the crate's top-k writes them), with the semantics and the draw of
/// [`sampling_kernel`](crate::kernels::sampling::sampling_kernel()) for a batch top-k of `kept`
/// (`kept` = the vocabulary means no top-k). `input` holds the rows themselves (`vocab` elements,
/// rows `row_stride` apart, elements `stride` apart), read only where `full_pass` (joint top-p
/// with `kept` < vocab, or probabilities) and the row needs it. Per-row parameter arrays
/// (contiguous `[rows]`) are read where their bit is set in `per_row`; per-row k is not supported
/// here.
///
/// One cube of `cube_dim` units (at least 256) per row; `per_unit` = ceil(`kept` / `cube_dim`),
/// at most 32.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn candidate_sampling_kernel<F: Float, P: Float, I: Int, N: Size>(
    values: &Array<F>,
    indices: &Array<I>,
    input: &Array<Vector<F, N>>,
    temperatures: &Array<P>,
    top_ps: &Array<P>,
    min_ps: &Array<P>,
    seeds: &Array<I>,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    vocab: usize,
    row_stride: usize,
    stride: usize,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    per_row: u32,
    num_rows: usize,
    kept: u32,
    #[comptime] from_probs: bool,
    #[comptime] joint: bool,
    #[comptime] full_pass: bool,
    #[comptime] cube_dim: u32,
    #[comptime] per_unit: u32,
    #[comptime] vectors_per_unit: u32,
    #[define(F, P, I)] _dtypes: [StorageType; 3],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    // This unit's candidates: a contiguous block of the sorted list.
    let unit = linear_unit();
    let list_base = row * kept as usize;
    let mut block_values = Array::<f32>::new(per_unit as usize);
    let mut block_indices = Array::<u32>::new(per_unit as usize);
    #[unroll]
    for t in 0..per_unit {
        let j = unit * per_unit as usize + t as usize;
        if j < kept as usize {
            block_values[t as usize] = f32::cast_from(values[list_base + j]);
            block_indices[t as usize] = u32::cast_from(indices[list_base + j]);
        }
    }
    sample_candidates::<F, P, I, N>(
        row,
        f32::cast_from(values[list_base]),
        u32::cast_from(indices[list_base]),
        &block_values,
        &block_indices,
        input,
        RowSpan::new(row * row_stride, stride, vocab),
        temperatures,
        top_ps,
        min_ps,
        seeds,
        tokens,
        valid,
        temperature,
        top_p,
        min_p,
        seed_lo,
        seed_hi,
        offset_lo,
        offset_hi,
        per_row,
        kept,
        from_probs,
        joint,
        full_pass,
        cube_dim,
        per_unit,
        vectors_per_unit,
    );
}

/// [`candidate_sampling_kernel()`] fused after the streaming top-k
/// ([`streaming_kernel`](crate::kernels::streaming::streaming_kernel())): each cube finds its
/// row's top-`kept` in its candidate buffer, arranges them sorted in place
/// ([`Candidates::arrange`](crate::kernels::candidates::Candidates::arrange)) and samples the
/// row's token from them, in one launch instead of two and with no round trip of the candidates
/// through global memory. For logits without the
/// joint order's second read of the row (no `from_probs`, no `full_pass`), in a cube of `units`
/// (a multiple of 256) whose candidate buffer and sampling scratch both fit the shared memory.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn streaming_sampling_kernel<F: Float, P: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    temperatures: &Array<P>,
    top_ps: &Array<P>,
    min_ps: &Array<P>,
    seeds: &Array<I>,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    vocab: usize,
    row_stride: usize,
    stride: usize,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    per_row: u32,
    num_rows: usize,
    kept: u32,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
    #[comptime] per_unit: u32,
    #[define(F, P, I)] _dtypes: [StorageType; 3],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let span = RowSpan::new(row * row_stride, stride, vocab);
    let mut candidates = offer_row::<F, N, Array<Vector<F, N>>>(
        input,
        span.base,
        span.stride,
        span.len,
        kept,
        true,
        units,
        vectors_per_unit,
        capacity,
        prime_per_unit,
        prime_batches,
        single_batch,
    );
    let (len, by_rank) = order_top_k(&mut candidates);
    candidates.arrange(len, by_rank, kept);
    // A key gives its value back exactly but for a NaN's payload and a zero's sign, neither of
    // which changes a weight (a NaN first makes the row invalid).
    let unit = linear_unit();
    let mut block_values = Array::<f32>::new(per_unit as usize);
    let mut block_indices = Array::<u32>::new(per_unit as usize);
    #[unroll]
    for t in 0..per_unit {
        let j = unit * per_unit as usize + t as usize;
        if j < kept as usize {
            let (value, _) = key_value(candidates.key(j), true);
            block_values[t as usize] = value;
            block_indices[t as usize] = candidates.index(j);
        }
    }
    let (top, _) = key_value(candidates.key(0usize), true);
    sample_candidates::<F, P, I, N>(
        row,
        top,
        candidates.index(0usize),
        &block_values,
        &block_indices,
        input,
        span,
        temperatures,
        top_ps,
        min_ps,
        seeds,
        tokens,
        valid,
        temperature,
        top_p,
        min_p,
        seed_lo,
        seed_hi,
        offset_lo,
        offset_hi,
        per_row,
        kept,
        false,
        false,
        false,
        units as u32,
        per_unit,
        1u32,
    );
}

/// The sampling of both kernels for `row`, from its first candidate (`top`, `argmax`) and this
/// unit's block of the sorted candidates (`block_values`, `block_indices`:
/// candidates `unit × per_unit ..`, those past `kept` unused): every unit of the cube calls it.
#[cube]
#[allow(
    clippy::too_many_arguments,
    clippy::manual_range_contains,
    clippy::collapsible_if
)]
fn sample_candidates<F: Float, P: Float, I: Int, N: Size>(
    row: usize,
    top: f32,
    argmax: u32,
    block_values: &Array<f32>,
    block_indices: &Array<u32>,
    input: &Array<Vector<F, N>>,
    span: RowSpan,
    temperatures: &Array<P>,
    top_ps: &Array<P>,
    min_ps: &Array<P>,
    seeds: &Array<I>,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    per_row: u32,
    kept: u32,
    #[comptime] from_probs: bool,
    #[comptime] joint: bool,
    #[comptime] full_pass: bool,
    #[comptime] cube_dim: u32,
    #[comptime] per_unit: u32,
    #[comptime] vectors_per_unit: u32,
) {
    let unit = linear_unit();
    let kk = kept as usize;
    let vocab = span.len;

    let mut reduce = SharedMemory::<i32>::new(cube_dim as usize + 1usize);
    let mut scratch = SharedMemory::<u32>::new(3usize * (cube_dim as usize + 1usize));
    let mut decision = SharedMemory::<u32>::new(DECISION_WORDS);
    let mass_lo = SharedMemory::<Atomic<u32>>::new(DRAW_BINS);
    let mass_hi = SharedMemory::<Atomic<u32>>::new(DRAW_BINS);

    // This row's parameters, as in `sampling_kernel`.
    let params = RowParams::read::<P, I>(
        row,
        per_row,
        temperature,
        top_p,
        min_p,
        seed_lo,
        seed_hi,
        temperatures,
        top_ps,
        min_ps,
        seeds,
    );

    // 1. The first candidate (`top`, `argmax`) is the row's largest element in the crate's order.
    let top_key = order_key::<f32>(top, true);
    let finite = top_key < KEY_POS_INF && top_key > KEY_NEG_INF;
    let mut greedy = false;
    if !from_probs {
        greedy = params.temperature == 0.0f32;
    }
    let p_active = params.top_p < 1.0f32;
    // Whether the joint top-p needs the whole row's mass (else the candidates' mass is the base).
    let mut need_total = false;
    if joint {
        need_total = p_active && kk < vocab && params.ok && finite && !greedy;
    }

    // The extra read of the row (3.): probabilities (negative values) or the joint normaliser.
    let mut total_hi = 0u32;
    let mut total_lo = 0u32;
    let mut any_negative = false;
    if full_pass {
        if from_probs || need_total {
            let (negative, hi, lo) = row_pass::<F, N>(
                input,
                span,
                top,
                params.temperature,
                need_total,
                from_probs,
                cube_dim as usize,
                vectors_per_unit as usize,
            );
            if from_probs {
                any_negative = cube_max_i32(i32::cast_from(negative), &mut reduce) != 0i32;
            }
            if need_total {
                let (_, _, sum_hi, sum_lo) = cube_exclusive_sum_wide(hi, lo, &mut scratch);
                total_hi = sum_hi;
                total_lo = sum_lo;
            }
        }
    }

    let mut row_ok = params.ok && finite;
    if from_probs {
        row_ok = row_ok && top_key > KEY_ZERO && !any_negative;
    }
    if !row_ok || greedy {
        if UNIT_POS == 0 {
            tokens[row] = I::cast_from(argmax);
            valid[row] = I::cast_from(select(row_ok, 1u32, 0u32));
        }
        terminate!();
    }

    // 2. The candidates of this unit (`block_values`, `block_indices`): a contiguous block of the
    // sorted list, weights in registers.
    let first = unit * per_unit as usize;
    let mut weights = Array::<u32>::new(per_unit as usize);
    let mut positions = Array::<u32>::new(per_unit as usize);
    let mut min_p_ok = 0u32;
    let mut mine_hi = 0u32;
    let mut mine_lo = 0u32;
    #[unroll]
    for t in 0..per_unit {
        let j = first + t as usize;
        let mut weight = 0u32;
        let mut position = 0u32;
        if j < kk {
            let relative = relative_weight(
                block_values[t as usize],
                top,
                params.temperature,
                from_probs,
            );
            weight = fixed_weight(relative);
            if relative >= params.min_p {
                min_p_ok |= 1u32 << t;
            }
            let index = block_indices[t as usize];
            position = ((index & 0xFFu32) << 24u32) | (index >> 8u32);
        }
        weights[t as usize] = weight;
        positions[t as usize] = position;
        let (h, l) = wide_add(mine_hi, mine_lo, 0u32, weight);
        mine_hi = h;
        mine_lo = l;
    }
    if UNIT_POS == 0 {
        decision[CUT] = kept;
    }
    let (before_hi, before_lo, kept_hi, kept_lo) =
        cube_exclusive_sum_wide(mine_hi, mine_lo, &mut scratch);

    // Top-p: the shortest prefix whose mass reaches p of the base.
    let mut cut = kept;
    if p_active {
        let fraction = u32::cast_from(params.top_p * FRACTION_SCALE);
        let mut base_hi = kept_hi;
        let mut base_lo = kept_lo;
        if need_total {
            base_hi = total_hi;
            base_lo = total_lo;
        }
        let (target_hi, target_lo) = top_p_target(base_hi, base_lo, fraction);
        let mut run_hi = before_hi;
        let mut run_lo = before_lo;
        #[unroll]
        for t in 0..per_unit {
            let (next_hi, next_lo) = wide_add(run_hi, run_lo, 0u32, weights[t as usize]);
            if wide_ge(next_hi, next_lo, target_hi, target_lo)
                && !wide_ge(run_hi, run_lo, target_hi, target_lo)
            {
                decision[CUT] = (first + t as usize + 1usize) as u32;
            }
            run_hi = next_hi;
            run_lo = next_lo;
        }
        sync_cube();
        cut = decision[CUT];
    }

    // Survivors: inside the cut and above min-p.
    #[unroll]
    for t in 0..per_unit {
        let j = first + t as usize;
        let keep = j < cut as usize && ((min_p_ok >> t) & 1u32) != 0u32;
        weights[t as usize] = select(keep, weights[t as usize], 0u32);
    }

    // 4. The draw.
    let random = philox_first_word(
        offset_lo,
        offset_hi,
        params.stream,
        0u32,
        params.key0,
        params.key1,
    );
    if comptime!(per_unit == 1u32) {
        draw_one_per_unit(
            weights[0usize],
            positions[0usize],
            random,
            kept,
            row,
            tokens,
            valid,
            &mut scratch,
            cube_dim,
        );
    } else {
        // By radix select on the position key, weighted by the survivors' mass.
        let top_position = ((vocab - 1usize) >> 8usize) as u32;
        let mut prefix = 0u32;
        let mut mask = 0u32;
        let mut rem_hi = 0u32;
        let mut rem_lo = 0u32;
        for pass in 0u32..4u32 {
            let shift = 24u32 - 8u32 * pass;
            if pass == 0u32 || (top_position >> shift) != 0u32 {
                if unit < DRAW_BINS {
                    mass_lo[unit].store(0u32);
                    mass_hi[unit].store(0u32);
                }
                sync_cube();
                #[unroll]
                for t in 0..per_unit {
                    let weight = weights[t as usize];
                    let position = positions[t as usize];
                    if weight > 0u32 && (position & mask) == prefix {
                        let digit = ((position >> shift) & 0xFFu32) as usize;
                        let old = mass_lo[digit].fetch_add(weight);
                        // The low word wrapped: carry into the high word.
                        if weight > 0xFFFF_FFFFu32 - old {
                            mass_hi[digit].fetch_add(1u32);
                        }
                    }
                }
                sync_cube();
                let mut bin_hi = 0u32;
                let mut bin_lo = 0u32;
                if unit < DRAW_BINS {
                    bin_hi = mass_hi[unit].load();
                    bin_lo = mass_lo[unit].load();
                }
                let (at_hi, at_lo, sum_hi, sum_lo) =
                    cube_exclusive_sum_wide(bin_hi, bin_lo, &mut scratch);
                if pass == 0u32 {
                    let (draw_hi, draw_lo) = draw_point(random, sum_hi, sum_lo);
                    rem_hi = draw_hi;
                    rem_lo = draw_lo;
                }
                let (end_hi, end_lo) = wide_add(at_hi, at_lo, bin_hi, bin_lo);
                if unit < DRAW_BINS
                    && wide_ge(rem_hi, rem_lo, at_hi, at_lo)
                    && !wide_ge(rem_hi, rem_lo, end_hi, end_lo)
                {
                    decision[DIGIT] = unit as u32;
                    let (left_hi, left_lo) = wide_sub(rem_hi, rem_lo, at_hi, at_lo);
                    decision[REM_HI] = left_hi;
                    decision[REM_LO] = left_lo;
                }
                sync_cube();
                prefix |= decision[DIGIT] << shift;
                mask |= 0xFFu32 << shift;
                rem_hi = decision[REM_HI];
                rem_lo = decision[REM_LO];
            }
        }
        if UNIT_POS == 0 {
            tokens[row] = I::cast_from(((prefix & 0x00FF_FFFFu32) << 8u32) | (prefix >> 24u32));
            valid[row] = I::cast_from(1u32);
        }
    }
}
