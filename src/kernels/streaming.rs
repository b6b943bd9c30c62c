//! Streaming top-k: one pass over the row, one cube per row.
//!
//! Each unit loads a batch of vectors (several loads in flight), turns them into order keys and
//! offers them to the cube's [`Candidates`] buffer, whose running threshold rejects almost every
//! element of a long row with one compare. At the end the buffer is cut to the exact k best and
//! written sorted. One launch per call, any k that fits the buffer in shared memory.

use crate::kernels::candidates::{Candidates, write_top_k};
use crate::kernels::primitives::{is_nan_f32, key_value, linear_unit, order_key, row_offset};
use cubecl::prelude::*;

/// Offers the elements `start..end` of a row (at `base`, `stride` apart) to `candidates`, in
/// batches of `vectors_per_unit` vectors per unit. With vectors wider than one element the row is
/// contiguous (`stride` = 1) and `base`, `start` and `end` are multiples of the width.
///
/// The loads of the next batch are issued before the current one is offered, so two batches are
/// in flight per unit. With `prime_per_unit > 0` the first batch primes the threshold
/// ([`Candidates::prime`]) with each unit's best `prime_per_unit` entries, unless the whole range
/// fits the buffer.
#[cube]
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
pub fn offer_range<F: Float, N: Size>(
    candidates: &mut Candidates,
    input: &Tensor<Vector<F, N>>,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    k: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] prime_per_unit: usize,
) {
    let width = input.vector_size();
    let batch = comptime!(vectors_per_unit * width);
    let step = comptime!(units * vectors_per_unit * width);
    let unit = linear_unit();
    let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
    #[unroll]
    for v in 0..vectors_per_unit {
        let first = start + (v * units + unit) * width;
        if first < end {
            vectors[v] = input[(base + first * stride) / width];
        }
    }
    // The current batch as f32 (exact for f16 and bf16): most entries are rejected by one float
    // compare against the threshold's value, and only the others get an order key.
    let mut floats = Array::<f32>::new(batch);
    let mut round = 1u32;
    let mut batch_start = start;
    while batch_start < end {
        let mut valid = 0u32;
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = batch_start + (v * units + unit) * width;
            if first < end {
                let vector = vectors[v];
                #[unroll]
                for lane in 0..width {
                    let j = v * width + lane;
                    floats[j] = f32::cast_from(vector[lane]);
                    valid |= 1u32 << (j as u32);
                }
            }
        }
        // The next batch's loads fly while this batch is offered.
        let next_start = batch_start + step;
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = next_start + (v * units + unit) * width;
            if first < end {
                vectors[v] = input[(base + first * stride) / width];
            }
        }
        if comptime!(prime_per_unit > 0) {
            if batch_start == start && !candidates.holds(end - start) {
                let mut keys = Array::<u32>::new(batch);
                let mut indices = Array::<u32>::new(batch);
                #[unroll]
                for v in 0..vectors_per_unit {
                    #[unroll]
                    for lane in 0..width {
                        let j = v * width + lane;
                        keys[j] = order_key::<f32>(floats[j], largest);
                        indices[j] = (batch_start + (v * units + unit) * width + lane) as u32;
                    }
                }
                let taken = candidates.prime(&keys, &indices, valid, k, prime_per_unit, batch);
                valid &= !taken;
            }
        }
        // Offer the batch: a float compare per entry, a key and an exact compare for the few
        // that pass, an append for those that beat the threshold, one barrier per round; a full
        // buffer is compacted and the rest offered again.
        let mut pending = valid;
        loop {
            let (lo_key, lo_index) = candidates.threshold();
            let (lo_value, filter) = key_value(lo_key, largest);
            let mut overflowed = false;
            let mut left = 0u32;
            #[unroll]
            for v in 0..vectors_per_unit {
                #[unroll]
                for lane in 0..width {
                    let j = v * width + lane;
                    let bit = 1u32 << (j as u32);
                    let value = floats[j];
                    let mut maybe = !filter;
                    if comptime!(largest) {
                        maybe = maybe || value >= lo_value || is_nan_f32(value);
                    } else {
                        maybe = maybe || value <= lo_value;
                    }
                    if (pending & bit) != 0u32 && maybe {
                        let key = order_key::<f32>(value, largest);
                        let index = (batch_start + (v * units + unit) * width + lane) as u32;
                        if key > lo_key || (key == lo_key && index < lo_index) {
                            if !candidates.push(key, index) {
                                left |= bit;
                                overflowed = true;
                            }
                        }
                    }
                }
            }
            pending = left;
            let full = candidates.settle(overflowed, round);
            round += 1u32;
            if !full {
                break;
            }
            candidates.compact(k, candidates.half());
        }
        batch_start = next_start;
    }
}

/// The sorted top-k of each row, one cube of `units` units per row (rows beyond `num_rows`
/// exit). `values` and `indices` are contiguous with `dim` of length `k`; `inner` is the
/// product of the dimensions after `dim`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn streaming_kernel<F: Float, I: Int, N: Size>(
    input: &Tensor<Vector<F, N>>,
    values: &mut Tensor<F>,
    indices: &mut Tensor<I>,
    dim: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let len = input.shape(dim);
    let stride = input.stride(dim);
    let base = row_offset(input, row, dim);
    let mut candidates = Candidates::new(capacity, units);
    offer_range::<F, N>(
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
    );
    write_top_k::<F, I, N>(
        &mut candidates,
        k,
        input,
        base,
        stride,
        values,
        indices,
        row,
        inner,
        units,
    );
}
