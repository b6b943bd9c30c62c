//! Streaming top-k: one pass over the row, one cube per row.
//!
//! Each unit loads a batch of vectors (several loads in flight), turns them into order keys and
//! offers them to the cube's [`Candidates`] buffer, whose running threshold rejects almost every
//! element of a long row with one compare. At the end the buffer is cut to the exact k best and
//! written sorted. One launch per call, any k that fits the buffer in shared memory.

use crate::kernels::candidates::{Candidates, write_top_k};
use crate::kernels::primitives::{
    key_value, linear_unit, load_vectors, mapped_row_offset, order_key, output_row,
};
use cubecl::prelude::*;

/// Vector loads each unit keeps in flight while sampling (more would spill registers at 1024
/// units per cube).
const SAMPLE_VECTORS: usize = 8;

/// Batches a unit offers on its own between two cube barriers (fewer barriers keep the loads of
/// different planes overlapping instead of all waiting at once).
const WINDOW: u32 = 8;

/// The bits of a group of four batch entries (see the offer loop's per-entry path).
const GROUP_BITS: u32 = 0xF;

/// Offers the elements `start..end` of a row (at `base`, `stride` apart) to `candidates`, in
/// batches of `vectors_per_unit` vectors per unit. With vectors wider than one element the row is
/// contiguous (`stride` = 1) and `base`, `start` and `end` are multiples of the width.
///
/// The loads of the next batch are issued before the current one is offered, so two batches are
/// in flight per unit. With `prime_per_unit > 0`, unless the whole range fits the buffer, a
/// sample of the first `prime_batches` batches primes the threshold ([`Candidates::prime`]) from
/// each unit's best `prime_per_unit` sampled entries before anything is offered: the larger the
/// sample, the nearer the threshold starts to the row's k-th best and the fewer elements pass the
/// float compare, at the cost of reading the sample twice (the second time from the cache). Each
/// unit offers up to `WINDOW` batches on its own before the cube meets: a unit that finds the
/// buffer full stops there, keeping what did not fit, and the meeting compacts the buffer (and
/// raises the threshold) before everyone goes on.
///
/// With `single_batch` (the range is at most one batch per unit) the batch is loaded once and
/// offered from registers instead (`offer_loaded`). The last meeting cuts the buffer for
/// [`order_top_k`](fn@crate::kernels::candidates::order_top_k), or with `exact_cut` to exactly the
/// best k ([`Candidates::final_target`]).
#[cube]
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
pub fn offer_range<F: Float, N: Size, L: List<Vector<F, N>>>(
    candidates: &mut Candidates,
    input: &L,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    k: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
    #[comptime] exact_cut: bool,
) {
    let width = input.vector_size();
    let batch = comptime!(vectors_per_unit * width);
    let step = comptime!(units * vectors_per_unit * width);
    let unit = linear_unit();
    let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
    load_vectors::<F, N, L>(
        input,
        &mut vectors,
        base,
        stride,
        start,
        end,
        units,
        vectors_per_unit,
    );
    // The batch being offered as f32 (exact for f16 and bf16): most entries are rejected by one
    // float compare against the threshold's value, and only the others get an order key.
    let mut floats = Array::<f32>::new(batch);
    let group = comptime!(batch.min(4));
    let groups = comptime!(batch / group);
    if comptime!(single_batch) {
        let valid = take_batch::<F, N, L>(
            input,
            &mut vectors,
            &mut floats,
            base,
            stride,
            start,
            end,
            units,
            vectors_per_unit,
        );
        offer_loaded(
            candidates,
            &floats,
            valid,
            start,
            end,
            k,
            largest,
            units,
            vectors_per_unit,
            width,
            prime_per_unit,
            exact_cut,
        );
    } else {
        // `current`: the first element of the batch in `floats`; `next`: of the batch in `vectors`.
        let mut current = start;
        let mut next = start;
        let mut pending = 0u32;

        if comptime!(prime_per_unit > 0) {
            if !candidates.holds(end - start) {
                // A unit that contributes one key keeps one running best instead of one per
                // batch position (the same key: its best sampled element).
                let positions = comptime!(if prime_per_unit == 1 { 1 } else { batch });
                let mut keys = Array::<u32>::new(positions);
                let valid = sample_keys::<F, N, L>(
                    input,
                    &mut keys,
                    base,
                    stride,
                    start,
                    end,
                    largest,
                    units,
                    vectors_per_unit,
                    prime_batches,
                    positions,
                );
                candidates.prime(&keys, valid, k, prime_per_unit, positions);
            }
        }

        let mut round = 1u32;
        loop {
            // The threshold changes only when the cube meets.
            let (lo_key, lo_index) = candidates.threshold();
            let (lo_value, _) = key_value(lo_key, largest);
            let mut stalled = false;
            for _ in 0..WINDOW {
                // A window longer than what is left of the range ends early.
                if !stalled && (pending != 0u32 || next < end) {
                    if pending == 0u32 && next < end {
                        pending = take_batch::<F, N, L>(
                            input,
                            &mut vectors,
                            &mut floats,
                            base,
                            stride,
                            next,
                            end,
                            units,
                            vectors_per_unit,
                        );
                        current = next;
                        next += step;
                    }
                    // One float compare per entry, without branches, marks the entries that may beat
                    // the threshold; only a batch with such an entry takes the branch that computes
                    // their keys, compares them exactly and appends those that beat the threshold.
                    // `!(value < lo)` also passes NaN (the largest) and, when the threshold's value is
                    // NaN (nothing may be rejected), everything.
                    let mut passing = 0u32;
                    #[unroll]
                    for j in 0..batch {
                        let pass = passes(floats[j], lo_value, largest);
                        passing |= select(pass, 1u32 << (j as u32), 0u32);
                    }
                    passing &= pending;
                    let mut left = 0u32;
                    if passing != 0u32 {
                        // Entries in groups of four: one test skips a group in which nothing
                        // passes (nearly every group), instead of four.
                        #[unroll]
                        for c in 0..groups {
                            let group_bits = GROUP_BITS << ((c * group) as u32);
                            if (passing & group_bits) != 0u32 {
                                #[unroll]
                                for t in 0..group {
                                    let j = c * group + t;
                                    let bit = 1u32 << (j as u32);
                                    if (passing & bit) != 0u32 {
                                        let key = order_key::<f32>(floats[j], largest);
                                        let position = ((j / width) * units + unit) * width;
                                        let index = (current + position + j % width) as u32;
                                        if key > lo_key || (key == lo_key && index < lo_index) {
                                            if !candidates.push(key, index) {
                                                left |= bit;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    pending = left;
                    stalled = left != 0u32;
                }
            }
            let busy = pending != 0u32 || next < end;
            let (full, more) = candidates.meet(stalled, busy, round);
            round += 1u32;
            candidates.after_meeting(full, !more, k, exact_cut);
            if !full && !more {
                break;
            }
        }
    }
}

/// [`offer_range()`] for a range of at most one batch per unit, taken into `floats` (the entries
/// whose bit is set in `valid` are real): the batch primes the threshold (unless it all fits the
/// buffer) and is offered from the same registers, so the range is read once and no offer loop
/// or meeting is needed.
#[cube]
#[allow(clippy::too_many_arguments)]
fn offer_loaded(
    candidates: &mut Candidates,
    floats: &Array<f32>,
    valid: u32,
    start: usize,
    end: usize,
    k: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] width: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] exact_cut: bool,
) {
    let batch = comptime!(vectors_per_unit * width);
    // With one or two entries per unit (k small against the units), each unit's best prime
    // nearly as tight a threshold as the whole batch, with a fraction of the histogram atomics
    // (H100: 16k-element rows at k = 50 18.4 → 15.0 µs, 4096 × 4096 130.7 → 108.9). More per unit
    // cost a selection loop over the batch per entry, and the whole batch won (k = 1024 tiles).
    let per_unit = comptime!(if prime_per_unit > 0 && prime_per_unit * 8 <= batch {
        prime_per_unit
    } else {
        batch
    });
    let mut keys = Array::<u32>::new(batch);
    let mut indices = Array::<u32>::new(batch);
    batch_entries(
        floats,
        &mut keys,
        &mut indices,
        start,
        largest,
        units,
        width,
        batch,
    );
    if !candidates.holds(end - start) {
        candidates.prime(&keys, valid, k, per_unit, batch);
    }
    candidates.offer(&keys, &indices, valid, k, 1u32, true, batch, exact_cut);
}

/// The order keys and row indices of this unit's entries of a batch taken by [`take_batch()`] at
/// element `start` (entry j is lane j % width of the unit's vector j / width).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn batch_entries(
    floats: &Array<f32>,
    keys: &mut Array<u32>,
    indices: &mut Array<u32>,
    start: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] width: usize,
    #[comptime] batch: usize,
) {
    let unit = linear_unit();
    #[unroll]
    for j in 0..batch {
        let position = ((j / width) * units + unit) * width + j % width;
        keys[j] = order_key::<f32>(floats[j], largest);
        indices[j] = (start + position) as u32;
    }
}

/// Fills `keys` with this unit's sample of the first `batches` batches of `start..end`: with
/// `positions` equal to the batch, at each batch position the key of the best value of that
/// position over those batches (by float compare: a NaN is kept only when it came first); with
/// one position, the key of the unit's `max` (`min` for the smallest), which may pass over a NaN.
/// Any element will do, as long as each key is a distinct element's: the threshold is a lower
/// bound of the k-th best of the keys. Returns the bits of the positions that saw an element. The
/// loads of up to [`SAMPLE_VECTORS`] vectors are issued before any is used.
#[cube]
#[allow(clippy::too_many_arguments)]
fn sample_keys<F: Float, N: Size, L: List<Vector<F, N>>>(
    input: &L,
    keys: &mut Array<u32>,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] batches: usize,
    #[comptime] positions: usize,
) -> u32 {
    let width = input.vector_size();
    let unit = linear_unit();
    let step = comptime!(units * vectors_per_unit * width);
    // Batches whose loads are issued together (the last group may sample a few more batches
    // than asked, which is as valid).
    let group = comptime!((SAMPLE_VECTORS / vectors_per_unit).clamp(1, batches));
    let groups = comptime!(batches.div_ceil(group));
    let mut best = Array::<f32>::new(positions);
    #[unroll]
    for j in 0..positions {
        best[j] = f32::new(0.0);
    }
    // Positions that have seen an element: the first one seen is taken whatever it is.
    let mut seen = 0u32;
    let mut loaded = Array::<Vector<F, N>>::new(comptime!(group * vectors_per_unit));
    #[unroll]
    for g in 0..groups {
        // The group's loads first (bit `slot` of `in_range`: vector `slot` was loaded), then use.
        let mut in_range = 0u32;
        #[unroll]
        for b in 0..group {
            #[unroll]
            for v in 0..vectors_per_unit {
                let slot = b * vectors_per_unit + v;
                let element = start + (g * group + b) * step + (v * units + unit) * width;
                if element < end {
                    loaded[slot] = input.read((base + element * stride) / width);
                    in_range |= 1u32 << (slot as u32);
                }
            }
        }
        #[unroll]
        for b in 0..group {
            #[unroll]
            for v in 0..vectors_per_unit {
                let slot = b * vectors_per_unit + v;
                if (in_range & (1u32 << (slot as u32))) != 0u32 {
                    let vector = loaded[slot];
                    #[unroll]
                    for lane in 0..width {
                        let value = f32::cast_from(vector[lane]);
                        if comptime!(positions == 1) {
                            // The unit's first element is its first slot's first lane (the
                            // slots run forward through the row), and any element may seed.
                            let first = g == 0 && b == 0 && v == 0 && lane == 0;
                            if first {
                                best[0] = value;
                                seen = 1u32;
                            } else if comptime!(largest) {
                                best[0] = max(best[0], value);
                            } else {
                                best[0] = min(best[0], value);
                            }
                        } else {
                            let j = v * width + lane;
                            let bit = 1u32 << (j as u32);
                            let better = if comptime!(largest) {
                                value > best[j]
                            } else {
                                value < best[j]
                            };
                            best[j] = select(better || (seen & bit) == 0u32, value, best[j]);
                            seen |= bit;
                        }
                    }
                }
            }
        }
    }
    #[unroll]
    for j in 0..positions {
        keys[j] = order_key::<f32>(best[j], largest);
    }
    seen
}

/// Moves the batch in `vectors` (starting at element `first` of the range) into `floats` and
/// issues the loads of the batch after it. Returns the bits of the entries that are real.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn take_batch<F: Float, N: Size, L: List<Vector<F, N>>>(
    input: &L,
    vectors: &mut Array<Vector<F, N>>,
    floats: &mut Array<f32>,
    base: usize,
    stride: usize,
    first: usize,
    end: usize,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) -> u32 {
    let width = input.vector_size();
    let unit = linear_unit();
    let mut valid = 0u32;
    #[unroll]
    for v in 0..vectors_per_unit {
        let element = first + (v * units + unit) * width;
        if element < end {
            let vector = vectors[v];
            #[unroll]
            for lane in 0..width {
                let j = v * width + lane;
                floats[j] = f32::cast_from(vector[lane]);
                valid |= 1u32 << (j as u32);
            }
        }
    }
    load_vectors::<F, N, L>(
        input,
        vectors,
        base,
        stride,
        first + units * vectors_per_unit * width,
        end,
        units,
        vectors_per_unit,
    );
    valid
}

/// Whether `value` may beat a threshold whose value is `lo` (NaN passes, and everything passes a
/// NaN threshold).
#[cube]
// `!(value < lo)` is meant: unlike `value >= lo` it holds for NaN.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn passes(value: f32, lo: f32, #[comptime] largest: bool) -> bool {
    if comptime!(largest) {
        !(value < lo)
    } else {
        !(value > lo)
    }
}

/// The sorted top-k of each row, one cube of `units` units per row (rows beyond `num_rows`
/// exit). The input's rows hold `len` elements `stride` apart and start where
/// [`mapped_row_offset()`] puts them. `values` and `indices` are contiguous with `dim` of length
/// `k`; `inner` is the product of the dimensions after `dim`. `single_batch`: rows are at most
/// one batch per unit (see [`offer_range()`]).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn streaming_kernel<F: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    values: &mut Array<F>,
    indices: &mut Array<I>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let out_row = output_row(row, k as usize, inner);
    let mut candidates = offer_row::<F, N, Array<Vector<F, N>>>(
        input,
        base,
        stride,
        len,
        k,
        largest,
        units,
        vectors_per_unit,
        capacity,
        prime_per_unit,
        prime_batches,
        single_batch,
    );
    write_top_k::<F, I, N, Array<Vector<F, N>>, Array<F>, Array<I>>(
        &mut candidates,
        k,
        input,
        base,
        stride,
        values,
        indices,
        out_row,
        inner,
        largest,
        units,
    );
}

/// A fresh buffer of `capacity` entries offered the whole row of `len` elements at `base`
/// (`stride` apart; [`offer_range()`]): it holds the row's top-k, cut for
/// [`order_top_k`](fn@crate::kernels::candidates::order_top_k).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn offer_row<F: Float, N: Size, L: List<Vector<F, N>>>(
    input: &L,
    base: usize,
    stride: usize,
    len: usize,
    k: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
) -> Candidates {
    let mut candidates = Candidates::new(capacity, units);
    offer_range::<F, N, L>(
        &mut candidates,
        input,
        base,
        stride,
        0usize,
        len,
        k,
        largest,
        units,
        vectors_per_unit,
        prime_per_unit,
        prime_batches,
        single_batch,
        false,
    );
    candidates
}
