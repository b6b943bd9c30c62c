//! Streaming top-k: one pass over the row, one cube per row.
//!
//! Each unit loads a batch of vectors (several loads in flight), turns them into order keys and
//! offers them to the cube's [`Candidates`] buffer, whose running threshold rejects almost every
//! element of a long row with one compare. At the end the buffer is cut to the exact k best and
//! written sorted. One launch per call, any k that fits the buffer in shared memory.

use crate::kernels::candidates::{Candidates, write_top_k};
use crate::kernels::primitives::{linear_unit, order_key, row_offset};
use cubecl::prelude::*;

/// Offers the elements `start..end` of a row (at `base`, `stride` apart) to `candidates`, in
/// batches of `vectors_per_unit` vectors per unit. With vectors wider than one element the row is
/// contiguous (`stride` = 1) and `base`, `start` and `end` are multiples of the width.
#[cube]
#[allow(clippy::too_many_arguments)]
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
) {
    let width = input.vector_size();
    let batch = comptime!(vectors_per_unit * width);
    let unit = linear_unit();
    let mut batch_start = start;
    while batch_start < end {
        let mut keys = Array::<u32>::new(batch);
        let mut indices = Array::<u32>::new(batch);
        let mut valid = 0u32;
        // All loads of the batch are issued before any is used.
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = batch_start + (v * units + unit) * width;
            if first < end {
                let vector = input[(base + first * stride) / width];
                #[unroll]
                for lane in 0..width {
                    let j = v * width + lane;
                    keys[j] = order_key::<F>(vector[lane], largest);
                    indices[j] = (first + lane) as u32;
                    valid |= 1u32 << (j as u32);
                }
            }
        }
        candidates.offer(&keys, &indices, valid, k, batch);
        batch_start += units * batch;
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
