//! Two-stage top-k, for long rows at small batch: a single row uses the whole GPU.
//!
//! Stage 1 ([`tile_candidates_kernel`]) splits each row into tiles of `tile_width` elements, one
//! cube per tile, and writes each tile's exact top-k (unsorted, padded when the tile is shorter
//! than k) as keys and indices. Stage 2 ([`merge_candidates_kernel`]), a second launch, streams
//! a row's candidates through one cube and writes the sorted top-k. The union of the tiles' top-k
//! holds the row's top-k, and the candidate order is total, so the result is exact.

use crate::kernels::candidates::{Candidates, PADDING_INDEX, PADDING_KEY, write_top_k};
use crate::kernels::primitives::{linear_unit, row_offset};
use crate::kernels::streaming::offer_range;
use cubecl::prelude::*;

/// Stage 1: the top-k of each tile, into `candidate_keys` / `candidate_indices` (k words per
/// tile, tiles of a row consecutive). Launched with one cube per tile (extra cubes exit).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn tile_candidates_kernel<F: Float, N: Size>(
    input: &Tensor<Vector<F, N>>,
    candidate_keys: &mut Tensor<u32>,
    candidate_indices: &mut Tensor<u32>,
    dim: usize,
    k: u32,
    num_rows: usize,
    tile_width: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[define(F)] _dtype: StorageType,
) {
    let len = input.shape(dim);
    let tiles = len.div_ceil(tile_width);
    let cube = CUBE_POS;
    let row = cube / tiles;
    if row >= num_rows {
        terminate!();
    }
    let tile = cube % tiles;
    let stride = input.stride(dim);
    let base = row_offset(input, row, dim);
    let start = tile * tile_width;
    let end = min(len, start + tile_width);
    let mut candidates = Candidates::new(capacity, units);
    offer_range::<F, N>(
        &mut candidates,
        input,
        base,
        stride,
        start,
        end,
        k,
        largest,
        units,
        vectors_per_unit,
        prime_per_unit,
        prime_batches,
    );
    let kept = candidates.compact(k, k) as usize;
    let k_len = k as usize;
    let out = cube * k_len;
    let mut j = linear_unit();
    while j < k_len {
        let mut key = u32::cast_from(PADDING_KEY);
        let mut index = u32::cast_from(PADDING_INDEX);
        if j < kept {
            key = candidates.key(j);
            index = candidates.index(j);
        }
        candidate_keys[out + j] = key;
        candidate_indices[out + j] = index;
        j += units;
    }
}

/// Stage 2: the sorted top-k of each row from its tiles' candidates (`candidates_per_row`
/// consecutive entries per row). One cube per row.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
pub fn merge_candidates_kernel<F: Float, I: Int, N: Size>(
    input: &Tensor<Vector<F, N>>,
    candidate_keys: &Tensor<u32>,
    candidate_indices: &Tensor<u32>,
    values: &mut Tensor<F>,
    indices: &mut Tensor<I>,
    dim: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    candidates_per_row: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] entries_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let unit = linear_unit();
    let stride = input.stride(dim);
    let base = row_offset(input, row, dim);
    let first = row * candidates_per_row;
    let mut candidates = Candidates::new(capacity, units);
    let mut round = 1u32;
    let mut batch_start = 0usize;
    while batch_start < candidates_per_row {
        let mut keys = Array::<u32>::new(entries_per_unit);
        let mut entry_indices = Array::<u32>::new(entries_per_unit);
        let mut valid = 0u32;
        #[unroll]
        for e in 0..entries_per_unit {
            let j = batch_start + e * units + unit;
            if j < candidates_per_row {
                keys[e] = candidate_keys[first + j];
                entry_indices[e] = candidate_indices[first + j];
                // A short tile's padding is no entry (and equal paddings would break the total
                // order that compactions rely on).
                if entry_indices[e] != PADDING_INDEX {
                    valid |= 1u32 << (e as u32);
                }
            }
        }
        // The first batch primes the threshold with each unit's best entries, unless the row's
        // candidates all fit the buffer.
        if comptime!(prime_per_unit > 0) {
            if batch_start == 0usize && !candidates.holds(candidates_per_row) {
                candidates.prime(&keys, valid, k, prime_per_unit, entries_per_unit);
            }
        }
        round = candidates.offer(&keys, &entry_indices, valid, k, round, entries_per_unit);
        batch_start += units * entries_per_unit;
    }
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
        largest,
        units,
    );
}
