//! Token sampling and its filters: one cube per row, the whole call in one launch.
//!
//! Calls with a batch top-k of at most 4096 take the faster two-launch path of
//! [`crate::kernels::sampling_candidates`] instead, which gives the same tokens; this kernel serves
//! greedy calls (its first pass), the modes without top-k, per-row k tensors, larger k and the
//! filter ops.
//!
//! Why this design: at decode time the host, not the GPU, sets the pace at small batch (about
//! 10 µs of host time per CubeCL launch on CUDA), and CubeCL has no device-wide fence to hand
//! results between cubes of one launch. So each row gets one cube that does everything, with no
//! sort and no scratch in global memory:
//!
//! 1. One pass: the largest element (its order key and smallest index), and whether the row is
//!    valid. Greedy rows (temperature 0) and invalid rows end here with that argmax.
//! 2. Every filter keeps a prefix of the row sorted by logit descending, ties by smaller index
//!    (min-p excepted, a plain threshold). A prefix is found by radix select over the
//!    order-preserving keys, 8 bits per pass from the top, with a 256-bin shared histogram of
//!    counts (top-k) or of probability mass (top-p). Mass is 64-bit fixed point: each element's
//!    weight relative to the row's largest probability, rounded to a multiple of 2^-31, summed
//!    exactly with `u32` atomics and a carry word, since wgpu has no float atomics. Exact integer
//!    sums make the prefix decisions and the draw consistent with each other.
//! 3. When a prefix ends inside a run of equal keys, the cut tie is found by index with the same
//!    radix select over the index digits (rare with float logits: only then are those passes run).
//! 4. The draw is an inverse CDF on the survivors' fixed-point weights, walked by class (index
//!    mod 256) then index: every unit's elements fall in one class, so a cube scan of per-class
//!    masses finds the class holding the draw, then the cube scans that class's elements. Any
//!    fixed order gives the right distribution; this one keeps every read coalesced and does not
//!    depend on the cube size. One Philox call per row gives the draw.
//!
//! Passes over the row: 2 (greedy, top-k off) to about 14 (sequential top-k then top-p with a cut
//! tie); after the first they mostly hit cache (one row of 128k f32 is 512 KiB).

use crate::kernels::philox::philox_first_word;
use crate::kernels::primitives::{converge_planes, cube_exclusive_sum, linear_unit, order_key};
use crate::kernels::wide::{
    cube_exclusive_sum_wide, draw_point, top_p_target, wide_add, wide_div_ceil, wide_ge, wide_mul,
    wide_sub,
};
use crate::sampling::reference::DRAW_CLASSES;
use cubecl::prelude::*;

/// Output of the kernel: one token per row (and a validity flag).
pub const OUTPUT_TOKENS: u32 = 0;
/// Output of the kernel: the logits, with filtered-out elements set to −inf.
pub const OUTPUT_MASKED_LOGITS: u32 = 1;
/// Output of the kernel: the renormalised probabilities of the survivors, 0 elsewhere.
pub const OUTPUT_PROBABILITIES: u32 = 2;

/// Bits of the kernel's `per_row` argument: which parameters are read from per-row tensors.
pub const PER_ROW_TEMPERATURE: u32 = 1;
/// See [`PER_ROW_TEMPERATURE`].
pub const PER_ROW_TOP_K: u32 = 2;
/// See [`PER_ROW_TEMPERATURE`].
pub const PER_ROW_TOP_P: u32 = 4;
/// See [`PER_ROW_TEMPERATURE`].
pub const PER_ROW_MIN_P: u32 = 8;
/// See [`PER_ROW_TEMPERATURE`].
pub const PER_ROW_SEED: u32 = 16;

const BINS: usize = 256;
/// Classes of the draw order ([`DRAW_CLASSES`]): it fixes which token a seed gives, on the device
/// and on the host, so it must not depend on the cube size.
pub const DRAW_BINS: usize = DRAW_CLASSES;
/// Fixed-point scale of weights: the row's largest probability weighs 2^31.
const WEIGHT_SCALE: f32 = 2_147_483_648.0;
/// 2^32, to turn a probability in (0, 1) into a 32-bit binary fraction.
pub(crate) const FRACTION_SCALE: f32 = 4_294_967_296.0;

/// The order key of +inf and −inf (largest first).
pub(crate) const KEY_POS_INF: u32 = 0xFF80_0000;
pub(crate) const KEY_NEG_INF: u32 = 0x007F_FFFF;
/// The order key of ±0.
pub(crate) const KEY_ZERO: u32 = 0x8000_0000;

// Slots of the `decision` shared memory, where unit 0 publishes what the whole cube needs.
const PREFIX: usize = 0;
const RANK: usize = 1;
const TARGET_HI: usize = 2;
const TARGET_LO: usize = 3;
const ABOVE_HI: usize = 4;
const ABOVE_LO: usize = 5;
const BIN_COUNT: usize = 6;
const TOTAL_HI: usize = 7;
const TOTAL_LO: usize = 8;
const OWNER: usize = 9;
const REMAINDER_HI: usize = 10;
const REMAINDER_LO: usize = 11;
const TOKEN: usize = 12;
const DECISION_WORDS: usize = 16;

/// One row's sampling parameters: the batch values, or the row's entries of the per-row tensors
/// where `per_row` says so, and whether they are in range. Shared by both sampling kernels.
#[derive(CubeType)]
pub struct RowParams {
    /// The temperature (0: greedy).
    pub temperature: f32,
    /// Top-p (1: off).
    pub top_p: f32,
    /// Min-p (0: off).
    pub min_p: f32,
    /// Philox key, low word, with `key1` and `stream`: the batch seed and the row, or the row's
    /// own seed and stream 0 (so a row with its own seed draws the same whatever the batch).
    pub key0: u32,
    /// Philox key, high word.
    pub key1: u32,
    /// Philox stream.
    pub stream: u32,
    /// Every parameter in range (written so that NaN fails every test).
    pub ok: bool,
}

#[cube]
impl RowParams {
    /// Written with explicit comparisons so that NaN fails every test.
    #[allow(clippy::too_many_arguments, clippy::manual_range_contains)]
    pub fn read<P: Float, I: Int>(
        row: usize,
        per_row: u32,
        temperature: f32,
        top_p: f32,
        min_p: f32,
        seed_lo: u32,
        seed_hi: u32,
        temperatures: &Array<P>,
        top_ps: &Array<P>,
        min_ps: &Array<P>,
        seeds: &Array<I>,
    ) -> RowParams {
        let mut row_temperature = temperature;
        if (per_row & PER_ROW_TEMPERATURE) != 0u32 {
            row_temperature = f32::cast_from(temperatures[row]);
        }
        let mut row_p = top_p;
        if (per_row & PER_ROW_TOP_P) != 0u32 {
            row_p = f32::cast_from(top_ps[row]);
        }
        let mut row_min_p = min_p;
        if (per_row & PER_ROW_MIN_P) != 0u32 {
            row_min_p = f32::cast_from(min_ps[row]);
        }
        let mut key0 = seed_lo;
        let mut key1 = seed_hi;
        let mut stream = row as u32;
        if (per_row & PER_ROW_SEED) != 0u32 {
            key0 = u32::cast_from(seeds[row]);
            key1 = 0u32;
            stream = 0u32;
        }
        let ok = row_temperature >= 0.0f32
            && row_temperature <= f32::MAX
            && row_p > 0.0f32
            && row_p <= 1.0f32
            && row_min_p >= 0.0f32
            && row_min_p <= 1.0f32;
        RowParams {
            temperature: row_temperature,
            top_p: row_p,
            min_p: row_min_p,
            key0,
            key1,
            stream,
            ok,
        }
    }
}

/// The value whose order key (largest first) is `key`; the inverse of `order_key` on non-NaN keys.
#[cube]
fn value_of_key(key: u32) -> f32 {
    let bits = select(key >= KEY_ZERO, key & 0x7FFF_FFFFu32, !key);
    f32::reinterpret(bits)
}

/// Probability of `value` relative to the row's largest (`top`), in [0, 1].
///
/// Fast division and `exp` (CUDA's `__fdividef`, `__expf`): this runs for every element in every
/// pass, and the full-precision forms were most of its instructions. The weight only needs to be
/// close to exact (the host reference agrees on a token unless a draw lands within about 1e-6 of
/// a boundary), and both sampling kernels use this same function, so they agree exactly. A valid
/// row has no NaN, and `−inf` still gives weight 0.
#[cube(fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf | FastMath::AllowReciprocal | FastMath::UnsignedZero)]
pub(crate) fn relative_weight(
    value: f32,
    top: f32,
    temperature: f32,
    #[comptime] from_probs: bool,
) -> f32 {
    let weight = if from_probs {
        value / top
    } else {
        ((value - top) / temperature).exp()
    };
    min(weight, 1.0f32)
}

/// A relative weight in fixed point, rounded to the nearest multiple of 2^-31.
#[cube]
pub(crate) fn fixed_weight(weight: f32) -> u32 {
    u32::cast_from(weight * WEIGHT_SCALE + 0.5f32)
}

/// Elements each unit loads before it uses any, in every pass over the row: 4096 per cube, and at
/// least 8 per unit. One cube per row leaves most of the GPU idle at small batch, so each unit must
/// keep several loads in flight or every pass waits out one memory latency per element. (16 per
/// unit in 256-unit cubes, the many-rows case, was 14 % faster at 256 rows of 128k than 8; in
/// 1024-unit cubes 16 gained nothing and doubled the NVRTC compile time.)
const fn loads_per_unit(units: usize) -> usize {
    let loads = 4096 / units;
    if loads < 8 { 8 } else { loads }
}

/// The unit's `loads` elements from `start` on (`start`, `start + units`, ...), all loaded before
/// any is used. Positions past the row read its last element, a valid address: callers skip them.
#[cube]
#[allow(clippy::too_many_arguments)]
fn load_group<F: Float>(
    input: &Array<F>,
    values: &mut Array<F>,
    base: usize,
    stride: usize,
    vocab: usize,
    start: usize,
    #[comptime] units: usize,
    #[comptime] loads: usize,
) {
    #[unroll]
    for j in 0..loads {
        let i = min(start + j * units, vocab - 1usize);
        values[j] = input[base + i * stride];
    }
}

/// Cube-wide maximum of one `i32` per unit. Every unit must call it; `scratch` needs
/// `CUBE_DIM / PLANE_DIM + 1` words. (Signed on purpose: lavapipe's `plane_max` on `u32` is signed.)
#[cube]
pub(crate) fn cube_max_i32(value: i32, scratch: &mut SharedMemory<i32>) -> i32 {
    let planes = (CUBE_DIM / PLANE_DIM) as usize;
    converge_planes();
    let plane_best = plane_max(value);
    if UNIT_POS_PLANE == 0 {
        scratch[PLANE_POS as usize] = plane_best;
    }
    sync_cube();
    if UNIT_POS == 0 {
        let mut best = scratch[0usize];
        for plane in 1usize..planes {
            best = max(best, scratch[plane]);
        }
        scratch[planes] = best;
    }
    sync_cube();
    let best = scratch[planes];
    sync_cube();
    best
}

/// The cube's largest key and the smallest index holding it, from each unit's best `(key, index)`
/// (key 0 for a unit with no element). Every unit must call it; `scratch` as for [`cube_max_i32`].
/// Keys are compared as i32 with the top bit flipped (lavapipe's `plane_max` on u32 is signed);
/// the smallest index is a maximum of −index.
#[cube]
pub(crate) fn cube_argmax(key: u32, index: u32, scratch: &mut SharedMemory<i32>) -> (u32, u32) {
    let top_key =
        u32::reinterpret(cube_max_i32(i32::reinterpret(key ^ KEY_ZERO), scratch)) ^ KEY_ZERO;
    let candidate = select(
        key == top_key,
        0i32 - i32::reinterpret(index),
        -2_147_483_647i32,
    );
    (
        top_key,
        u32::reinterpret(0i32 - cube_max_i32(candidate, scratch)),
    )
}

/// Whether an element survives the filters: inside the prefix that ends at `cut_key` (ties up to
/// index `last_tie`), and with a relative weight of at least `min_p`.
#[cube]
fn survives(
    key: u32,
    index: u32,
    weight: f32,
    cut: bool,
    cut_key: u32,
    last_tie: u32,
    min_p: f32,
) -> bool {
    let in_prefix = !cut || key > cut_key || (key == cut_key && index <= last_tie);
    in_prefix && weight >= min_p
}

/// Radix select over the row, 8 bits per pass from the top, on one of two fields:
/// - `by_index = false`: the order key of every element. `by_mass = false` finds the `rank`-th
///   largest key; `by_mass = true` finds the key at which the mass of the larger keys reaches the
///   64-bit target (`target_from_total`: the target is `target_fraction / 2^32` of the row's
///   total, known after the first pass).
/// - `by_index = true`: among the elements whose key is `tie_key`, the `rank`-th smallest index
///   (its field is `vocab - 1 - index`, so largest field first again), from pass `first_pass`.
///
/// Results, in `decision`: `PREFIX` the field found; `RANK` how many elements with that field
/// are needed to reach the rank, or `TARGET_*` the mass still needed when it starts; `BIN_COUNT`
/// how many elements have that field; `ABOVE_*` the mass of larger keys; `TOTAL_*` the row's mass.
/// Every unit must call it.
#[cube]
#[allow(clippy::too_many_arguments)]
fn radix_search<F: Float>(
    input: &Array<F>,
    base: usize,
    stride: usize,
    vocab: usize,
    top: f32,
    temperature: f32,
    by_index: bool,
    tie_key: u32,
    by_mass: bool,
    rank: u32,
    target_hi: u32,
    target_lo: u32,
    target_fraction: u32,
    target_from_total: bool,
    first_pass: u32,
    counts: &SharedMemory<Atomic<u32>>,
    mass_lo: &SharedMemory<Atomic<u32>>,
    mass_hi: &SharedMemory<Atomic<u32>>,
    decision: &mut SharedMemory<u32>,
    scan: &mut SharedMemory<u32>,
    #[comptime] from_probs: bool,
    #[comptime] cube_dim: u32,
) {
    let unit = linear_unit();
    let units = cube_dim as usize;
    // Every unit has read the previous search's results before they are overwritten.
    sync_cube();
    if UNIT_POS == 0 {
        decision[PREFIX] = 0u32;
        decision[RANK] = rank;
        decision[TARGET_HI] = target_hi;
        decision[TARGET_LO] = target_lo;
        decision[ABOVE_HI] = 0u32;
        decision[ABOVE_LO] = 0u32;
        decision[BIN_COUNT] = 0u32;
    }
    for pass in first_pass..4u32 {
        let shift = 24u32 - 8u32 * pass;
        let mut mask = 0u32;
        if pass > 0u32 {
            mask = 0xFFFF_FFFFu32 << (32u32 - 8u32 * pass);
        }
        let mut bin = unit;
        while bin < BINS {
            counts[bin].store(0u32);
            mass_lo[bin].store(0u32);
            mass_hi[bin].store(0u32);
            bin += units;
        }
        sync_cube();
        let prefix = decision[PREFIX];
        let loads = comptime!(loads_per_unit(cube_dim as usize));
        let mut values = Array::<F>::new(loads);
        let mut start = unit;
        while start < vocab {
            load_group::<F>(
                input,
                &mut values,
                base,
                stride,
                vocab,
                start,
                comptime!(cube_dim as usize),
                loads,
            );
            #[unroll]
            for j in 0..loads {
                let i = start + j * units;
                if i < vocab {
                    let value = values[j];
                    let key = order_key::<F>(value, true);
                    let mut field = key;
                    let mut eligible = true;
                    if by_index {
                        field = (vocab - 1usize - i) as u32;
                        eligible = key == tie_key;
                    }
                    if eligible && (field & mask) == prefix {
                        let digit = ((field >> shift) & 0xFFu32) as usize;
                        // A search by mass needs only the last pass's counts (the ties of the
                        // key found); each atomic skipped saves contended shared-memory work.
                        if !by_mass || pass == 3u32 {
                            counts[digit].fetch_add(1u32);
                        }
                        if !by_index {
                            let weight = fixed_weight(relative_weight(
                                f32::cast_from(value),
                                top,
                                temperature,
                                from_probs,
                            ));
                            if weight > 0u32 {
                                let old = mass_lo[digit].fetch_add(weight);
                                // The low word wrapped: carry into the high word.
                                if weight > 0xFFFF_FFFFu32 - old {
                                    mass_hi[digit].fetch_add(1u32);
                                }
                            }
                        }
                    }
                }
            }
            start += loads * units;
        }
        sync_cube();
        // The bin where the count (or mass) from the top reaches what is needed: each unit sums a
        // run of bins from the top, the cube scans the runs, and the one unit whose run crosses
        // the target walks it. (One unit walking all 256 bins cost microseconds per pass.)
        let remaining_rank = decision[RANK];
        let mut remaining_hi = decision[TARGET_HI];
        let mut remaining_lo = decision[TARGET_LO];
        let per_unit = comptime!(BINS.div_ceil(cube_dim as usize));
        let first = min(unit * per_unit, BINS);
        let last = min(first + per_unit, BINS);
        let mut run_count = 0u32;
        let mut run_hi = 0u32;
        let mut run_lo = 0u32;
        for step in first..last {
            let b = BINS - 1usize - step;
            run_count += counts[b].load();
            let (h, l) = wide_add(run_hi, run_lo, mass_hi[b].load(), mass_lo[b].load());
            run_hi = h;
            run_lo = l;
        }
        let (count_before, _) = cube_exclusive_sum(run_count, scan);
        let (before_hi, before_lo, total_hi, total_lo) =
            cube_exclusive_sum_wide(run_hi, run_lo, scan);
        if !by_index && pass == first_pass {
            // Every element is in the first histogram: the row's total mass.
            if UNIT_POS == 0 {
                decision[TOTAL_HI] = total_hi;
                decision[TOTAL_LO] = total_lo;
            }
            if by_mass && target_from_total {
                let (h, l) = top_p_target(total_hi, total_lo, target_fraction);
                remaining_hi = h;
                remaining_lo = l;
            }
        }
        let (end_hi, end_lo) = wide_add(before_hi, before_lo, run_hi, run_lo);
        let mut reached_before = count_before >= remaining_rank;
        let mut reached_end = count_before + run_count >= remaining_rank;
        if by_mass {
            reached_before = wide_ge(before_hi, before_lo, remaining_hi, remaining_lo);
            reached_end = wide_ge(end_hi, end_lo, remaining_hi, remaining_lo);
        }
        if reached_end && !reached_before {
            let mut above_count = count_before;
            let mut above_hi = before_hi;
            let mut above_lo = before_lo;
            let mut digit = 0u32;
            let mut found = false;
            for step in first..last {
                let b = BINS - 1usize - step;
                if !found {
                    let count = counts[b].load();
                    let (reach_hi, reach_lo) =
                        wide_add(above_hi, above_lo, mass_hi[b].load(), mass_lo[b].load());
                    let mut reached = above_count + count >= remaining_rank;
                    if by_mass {
                        reached = wide_ge(reach_hi, reach_lo, remaining_hi, remaining_lo);
                    }
                    if reached {
                        digit = b as u32;
                        found = true;
                        decision[BIN_COUNT] = count;
                    } else {
                        above_count += count;
                        above_hi = reach_hi;
                        above_lo = reach_lo;
                    }
                }
            }
            decision[PREFIX] = prefix | (digit << shift);
            decision[RANK] = remaining_rank - above_count;
            let (left_hi, left_lo) = wide_sub(remaining_hi, remaining_lo, above_hi, above_lo);
            decision[TARGET_HI] = left_hi;
            decision[TARGET_LO] = left_lo;
            let (sum_hi, sum_lo) =
                wide_add(decision[ABOVE_HI], decision[ABOVE_LO], above_hi, above_lo);
            decision[ABOVE_HI] = sum_hi;
            decision[ABOVE_LO] = sum_lo;
        }
        sync_cube();
    }
}

/// Samples one token per row, or writes the filtered row, depending on `output`.
///
/// `input` holds `rows` rows of `vocab` elements, rows `row_stride` apart and elements `stride`
/// apart (arrays, not tensors: CubeCL uploads a tensor argument's shape and strides before every
/// launch). The per-row parameter arrays are contiguous `[rows]`, read only where their bit is set
/// in `per_row` (otherwise the scalar argument applies; unread arrays may be any placeholder).
/// `tokens` and `valid` are `[rows]` (written for [`OUTPUT_TOKENS`]); `filtered` is contiguous
/// `[rows, vocab]` (written for the other outputs). Launched with one cube of
/// `cube_dim` units per row.
///
/// Per-row parameters outside their domain (temperature negative, infinite or NaN, p outside
/// (0, 1], min-p outside [0, 1]) make the row invalid; k ≤ 0 or k ≥ vocab means no top-k.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments, clippy::manual_range_contains)]
pub fn sampling_kernel<F: Float, P: Float, I: Int>(
    input: &Array<F>,
    temperatures: &Array<P>,
    top_ks: &Array<I>,
    top_ps: &Array<P>,
    min_ps: &Array<P>,
    seeds: &Array<I>,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    filtered: &mut Array<F>,
    vocab: usize,
    row_stride: usize,
    stride: usize,
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
    neg_inf: f32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    per_row: u32,
    num_rows: usize,
    #[comptime] output: u32,
    #[comptime] from_probs: bool,
    #[comptime] joint: bool,
    #[comptime] cube_dim: u32,
    #[define(F, P, I)] _dtypes: [StorageType; 3],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let sample_tokens = comptime!(output == OUTPUT_TOKENS);
    let mask_logits = comptime!(output == OUTPUT_MASKED_LOGITS);
    let unit = linear_unit();
    let units = cube_dim as usize;
    let base = row * row_stride;
    let out_base = row * vocab;

    let counts = SharedMemory::<Atomic<u32>>::new(BINS);
    let mass_lo = SharedMemory::<Atomic<u32>>::new(BINS);
    let mass_hi = SharedMemory::<Atomic<u32>>::new(BINS);
    let mut decision = SharedMemory::<u32>::new(DECISION_WORDS);
    let mut scratch = SharedMemory::<u32>::new(3usize * (cube_dim as usize + 1usize));
    let mut reduce = SharedMemory::<i32>::new(cube_dim as usize + 1usize);
    let mut unit_mass = SharedMemory::<u32>::new(2usize * cube_dim as usize);

    // This row's parameters.
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
    let mut row_k = top_k;
    if (per_row & PER_ROW_TOP_K) != 0u32 {
        let k = top_ks[row];
        row_k = select(k > I::new(0), u32::cast_from(k), 0u32);
    }

    // 1. The largest element (smallest index among equals) and the row's validity.
    let mut best_key = 0u32;
    let mut best_index = 0u32;
    let mut negative = 0i32;
    let loads = comptime!(loads_per_unit(cube_dim as usize));
    let mut values = Array::<F>::new(loads);
    let mut start = unit;
    while start < vocab {
        load_group::<F>(
            input,
            &mut values,
            base,
            stride,
            vocab,
            start,
            comptime!(cube_dim as usize),
            loads,
        );
        #[unroll]
        for j in 0..loads {
            let i = start + j * units;
            if i < vocab {
                let key = order_key::<F>(values[j], true);
                if key > best_key {
                    best_key = key;
                    best_index = i as u32;
                }
                if key < KEY_ZERO {
                    negative = 1i32;
                }
            }
        }
        start += loads * units;
    }
    let (top_key, argmax) = cube_argmax(best_key, best_index, &mut reduce);
    let any_negative = cube_max_i32(negative, &mut reduce) != 0i32;
    let mut row_ok = params.ok && top_key < KEY_POS_INF && top_key > KEY_NEG_INF;
    let mut greedy = false;
    if from_probs {
        row_ok = row_ok && top_key > KEY_ZERO && !any_negative;
    } else {
        greedy = params.temperature == 0.0f32;
    }

    if !row_ok || greedy {
        // Greedy rows keep only their argmax; invalid rows give their argmax (sampling) or come
        // back unchanged (filters).
        if sample_tokens {
            if UNIT_POS == 0 {
                tokens[row] = I::cast_from(argmax);
                valid[row] = I::cast_from(select(row_ok, 1u32, 0u32));
            }
        } else {
            let loads = comptime!(loads_per_unit(cube_dim as usize));
            let mut values = Array::<F>::new(loads);
            let mut start = unit;
            while start < vocab {
                load_group::<F>(
                    input,
                    &mut values,
                    base,
                    stride,
                    vocab,
                    start,
                    comptime!(cube_dim as usize),
                    loads,
                );
                #[unroll]
                for j in 0..loads {
                    let i = start + j * units;
                    if i < vocab {
                        let value = values[j];
                        let mut out = value;
                        if row_ok && i as u32 != argmax {
                            if mask_logits {
                                out = F::cast_from(neg_inf);
                            } else {
                                out = F::cast_from(0.0f32);
                            }
                        } else if row_ok && !mask_logits {
                            out = F::cast_from(1.0f32);
                        }
                        filtered[out_base + i] = out;
                    }
                }
                start += loads * units;
            }
        }
        terminate!();
    }

    let top = f32::cast_from(input[base + argmax as usize * stride]);

    // 2. Prefix filters: top-k, then top-p on the top-k survivors (or on the whole row, joint).
    let k_active = row_k > 0u32 && (row_k as usize) < vocab;
    let p_active = params.top_p < 1.0f32;
    let mut cut = false;
    let mut cut_key = 0u32;
    let mut cut_ties = 0u32;
    let mut cut_tie_count = 0u32;
    let mut total_hi = 0u32;
    let mut total_lo = 0u32;
    let mut kept_hi = 0u32;
    let mut kept_lo = 0u32;
    if k_active {
        radix_search::<F>(
            input,
            base,
            stride,
            vocab,
            top,
            params.temperature,
            false,
            0u32,
            false,
            row_k,
            0u32,
            0u32,
            0u32,
            false,
            0u32,
            &counts,
            &mass_lo,
            &mass_hi,
            &mut decision,
            &mut scratch,
            from_probs,
            cube_dim,
        );
        cut = true;
        cut_key = decision[PREFIX];
        cut_ties = decision[RANK];
        cut_tie_count = decision[BIN_COUNT];
        total_hi = decision[TOTAL_HI];
        total_lo = decision[TOTAL_LO];
        // The top-k mass: everything above the cut key, and the ties taken.
        let tie_weight = fixed_weight(relative_weight(
            value_of_key(cut_key),
            top,
            params.temperature,
            from_probs,
        ));
        let (tie_hi, tie_lo) = wide_mul(cut_ties, tie_weight);
        let (h, l) = wide_add(decision[ABOVE_HI], decision[ABOVE_LO], tie_hi, tie_lo);
        kept_hi = h;
        kept_lo = l;
    }
    if p_active {
        let fraction = u32::cast_from(params.top_p * FRACTION_SCALE);
        let mut target_hi = 0u32;
        let mut target_lo = 0u32;
        if k_active {
            let mut base_hi = kept_hi;
            let mut base_lo = kept_lo;
            if joint {
                base_hi = total_hi;
                base_lo = total_lo;
            }
            let (h, l) = top_p_target(base_hi, base_lo, fraction);
            target_hi = h;
            target_lo = l;
        }
        radix_search::<F>(
            input,
            base,
            stride,
            vocab,
            top,
            params.temperature,
            false,
            0u32,
            true,
            0u32,
            target_hi,
            target_lo,
            fraction,
            !k_active,
            0u32,
            &counts,
            &mass_lo,
            &mass_hi,
            &mut decision,
            &mut scratch,
            from_probs,
            cube_dim,
        );
        let key = decision[PREFIX];
        let tie_count = decision[BIN_COUNT];
        // The mass still needed when the cut key starts is reached after this many of its ties.
        let tie_weight = fixed_weight(relative_weight(
            value_of_key(key),
            top,
            params.temperature,
            from_probs,
        ));
        let ties = min(
            wide_div_ceil(
                decision[TARGET_HI],
                decision[TARGET_LO],
                max(tie_weight, 1u32),
            ),
            tie_count,
        );
        // Both filters keep a prefix of the same order: the shorter one wins.
        if !cut || key > cut_key || (key == cut_key && ties < cut_ties) {
            cut_key = key;
            cut_ties = ties;
            cut_tie_count = tie_count;
        }
        cut = true;
    }

    // 3. A prefix that ends inside a run of equal keys keeps its first ties by index.
    let mut last_tie = 0xFFFF_FFFFu32;
    if cut && cut_ties < cut_tie_count {
        let top_field = (vocab - 1usize) as u32;
        let mut first_pass = 0u32;
        if top_field < 0x100u32 {
            first_pass = 3u32;
        } else if top_field < 0x1_0000u32 {
            first_pass = 2u32;
        } else if top_field < 0x100_0000u32 {
            first_pass = 1u32;
        }
        radix_search::<F>(
            input,
            base,
            stride,
            vocab,
            top,
            params.temperature,
            true,
            cut_key,
            false,
            cut_ties,
            0u32,
            0u32,
            0u32,
            false,
            first_pass,
            &counts,
            &mass_lo,
            &mass_hi,
            &mut decision,
            &mut scratch,
            from_probs,
            cube_dim,
        );
        last_tie = top_field - decision[PREFIX];
    }

    // 4. The survivors' mass per class of the draw order (index mod `DRAW_BINS`, then index), and
    // its cube-wide scan. A unit's elements all fall in class `unit mod DRAW_BINS`, so any cube
    // size that is a multiple of `DRAW_BINS` gives the same order, hence the same token.
    if UNIT_POS == 0 {
        decision[OWNER] = 0xFFFF_FFFFu32;
        decision[TOKEN] = argmax;
    }
    let mut mine_hi = 0u32;
    let mut mine_lo = 0u32;
    let loads = comptime!(loads_per_unit(cube_dim as usize));
    let mut values = Array::<F>::new(loads);
    let mut start = unit;
    while start < vocab {
        load_group::<F>(
            input,
            &mut values,
            base,
            stride,
            vocab,
            start,
            comptime!(cube_dim as usize),
            loads,
        );
        #[unroll]
        for j in 0..loads {
            let i = start + j * units;
            if i < vocab {
                let value = f32::cast_from(values[j]);
                let key = order_key::<f32>(value, true);
                let weight = relative_weight(value, top, params.temperature, from_probs);
                if survives(key, i as u32, weight, cut, cut_key, last_tie, params.min_p) {
                    let (h, l) = wide_add(mine_hi, mine_lo, 0u32, fixed_weight(weight));
                    mine_hi = h;
                    mine_lo = l;
                }
            }
        }
        start += loads * units;
    }
    unit_mass[2usize * unit] = mine_hi;
    unit_mass[2usize * unit + 1usize] = mine_lo;
    sync_cube();
    let mut class_hi = 0u32;
    let mut class_lo = 0u32;
    if unit < DRAW_BINS {
        let mut member = unit;
        while member < units {
            let (h, l) = wide_add(
                class_hi,
                class_lo,
                unit_mass[2usize * member],
                unit_mass[2usize * member + 1usize],
            );
            class_hi = h;
            class_lo = l;
            member += DRAW_BINS;
        }
    }
    let (before_hi, before_lo, sum_hi, sum_lo) =
        cube_exclusive_sum_wide(class_hi, class_lo, &mut scratch);

    if sample_tokens {
        // The draw: r = floor(random * total / 2^32), uniform over [0, total) to 2^-32.
        let random = philox_first_word(
            offset_lo,
            offset_hi,
            params.stream,
            0u32,
            params.key0,
            params.key1,
        );
        let (draw_hi, draw_lo) = draw_point(random, sum_hi, sum_lo);
        let (end_hi, end_lo) = wide_add(before_hi, before_lo, class_hi, class_lo);
        if unit < DRAW_BINS
            && wide_ge(draw_hi, draw_lo, before_hi, before_lo)
            && !wide_ge(draw_hi, draw_lo, end_hi, end_lo)
        {
            decision[OWNER] = unit as u32;
            let (left_hi, left_lo) = wide_sub(draw_hi, draw_lo, before_hi, before_lo);
            decision[REMAINDER_HI] = left_hi;
            decision[REMAINDER_LO] = left_lo;
        }
        sync_cube();
        // The owning class's elements, scanned by the whole cube, chunk by chunk.
        let owner = decision[OWNER] as usize;
        let mut left_hi = decision[REMAINDER_HI];
        let mut left_lo = decision[REMAINDER_LO];
        let mut owned = 0usize;
        if owner < vocab {
            owned = (vocab - owner).div_ceil(DRAW_BINS);
        }
        let chunks = owned.div_ceil(units);
        for chunk in 0usize..chunks {
            let j = chunk * units + unit;
            let i = owner + j * DRAW_BINS;
            let mut weight = 0u32;
            if j < owned {
                let value = f32::cast_from(input[base + i * stride]);
                let key = order_key::<f32>(value, true);
                let relative = relative_weight(value, top, params.temperature, from_probs);
                if survives(
                    key,
                    i as u32,
                    relative,
                    cut,
                    cut_key,
                    last_tie,
                    params.min_p,
                ) {
                    weight = fixed_weight(relative);
                }
            }
            let (at_hi, at_lo, chunk_hi, chunk_lo) =
                cube_exclusive_sum_wide(0u32, weight, &mut scratch);
            let (next_hi, next_lo) = wide_add(at_hi, at_lo, 0u32, weight);
            if weight > 0u32
                && wide_ge(left_hi, left_lo, at_hi, at_lo)
                && !wide_ge(left_hi, left_lo, next_hi, next_lo)
            {
                decision[TOKEN] = i as u32;
            }
            // Past the chunk holding the draw this wraps above 2^63, beyond any later prefix.
            let (h, l) = wide_sub(left_hi, left_lo, chunk_hi, chunk_lo);
            left_hi = h;
            left_lo = l;
        }
        sync_cube();
        if UNIT_POS == 0 {
            tokens[row] = I::cast_from(decision[TOKEN]);
            valid[row] = I::cast_from(1u32);
        }
    } else {
        // The filtered row: masked logits, or the survivors' probabilities renormalised.
        let kept_mass = f32::cast_from(sum_hi) * 2.0f32 + f32::cast_from(sum_lo) / WEIGHT_SCALE;
        let loads = comptime!(loads_per_unit(cube_dim as usize));
        let mut values = Array::<F>::new(loads);
        let mut start = unit;
        while start < vocab {
            load_group::<F>(
                input,
                &mut values,
                base,
                stride,
                vocab,
                start,
                comptime!(cube_dim as usize),
                loads,
            );
            #[unroll]
            for j in 0..loads {
                let i = start + j * units;
                if i < vocab {
                    let raw = values[j];
                    let value = f32::cast_from(raw);
                    let key = order_key::<f32>(value, true);
                    let weight = relative_weight(value, top, params.temperature, from_probs);
                    let keep =
                        survives(key, i as u32, weight, cut, cut_key, last_tie, params.min_p);
                    if mask_logits {
                        filtered[out_base + i] = select(keep, raw, F::cast_from(neg_inf));
                    } else {
                        filtered[out_base + i] =
                            F::cast_from(select(keep, weight / kept_mass, 0.0f32));
                    }
                }
            }
            start += loads * units;
        }
    }
}
