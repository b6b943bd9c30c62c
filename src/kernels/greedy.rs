//! Greedy decoding: each row's argmax in the crate's order (NaN first, then +inf, −0.0 = +0.0,
//! ties to the smaller index), one read of the row with vector loads.
//!
//! The same token and validity as the first pass of
//! [`sampling_kernel`](crate::kernels::sampling::sampling_kernel()) at temperature 0, without
//! its per-row parameters, scalar loads and inlined filter passes: greedy decoding is a pure
//! read, and this kernel keeps `vectors_per_unit` vector loads in flight per unit. Per element it
//! costs a float compare, two selects and a running maximum of the magnitude bits (which finds
//! NaN): on the H200 that was 13.5 µs for one 128k row against 19.3 µs with the order-preserving
//! key of every element, which made the loop instruction-bound.

use crate::kernels::primitives::{linear_unit, load_vectors, order_key};
use crate::kernels::sampling::{KEY_NEG_INF, KEY_POS_INF, cube_argmax};
use cubecl::prelude::*;

/// One token per row of `input` (`[rows, vocab]`): the index of the row's largest element in
/// the crate's order, and whether that element is finite (a row holding a NaN or +inf, or no
/// finite value, is invalid and gives the NaN's, the +inf's or the first −inf's index).
///
/// One cube of `cube_dim` units per row; each unit reads `vectors_per_unit` vectors per step,
/// all issued before any is used. The buffers are arrays and the layout comes as scalars (`vocab`
/// elements per row, rows `row_stride` apart, elements `stride` apart): for a tensor argument
/// CubeCL uploads shapes and strides before every launch, half of a launch's host time on the
/// H200 (11.9 µs with one tensor argument, 6.3 with an array).
#[cube(launch_unchecked)]
pub fn greedy_kernel<F: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    tokens: &mut Array<I>,
    valid: &mut Array<I>,
    vocab: usize,
    row_stride: usize,
    stride: usize,
    num_rows: usize,
    #[comptime] cube_dim: usize,
    #[comptime] vectors_per_unit: usize,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let width = input.vector_size();
    let base = row * row_stride;
    let unit = linear_unit();
    let mut reduce = SharedMemory::<i32>::new(cube_dim + 1usize);

    // A unit visits its indices in increasing order, so a strictly larger value is the only
    // change: among equal values (−0.0 and +0.0 included) the first, smallest index stays. The
    // float compare is the whole per-element cost; NaN, which it cannot order, is tracked on the
    // bits and located afterwards. The unit's first element seeds the running best, so rows of
    // −inf need no infinity constant.
    let own = unit * width;
    let mut best_value = 0.0f32;
    let mut best_index = 0u32;
    if own < vocab {
        let vector = input[(base + own * stride) / width];
        best_value = f32::cast_from(vector[0usize]);
        best_index = own as u32;
    }
    let mut magnitude_max = 0u32;
    let mut loaded = Array::<Vector<F, N>>::new(vectors_per_unit);
    let mut start = 0usize;
    while start < vocab {
        load_vectors::<F, N, Array<Vector<F, N>>>(
            input,
            &mut loaded,
            base,
            stride,
            start,
            vocab,
            cube_dim,
            vectors_per_unit,
        );
        #[unroll]
        for v in 0..vectors_per_unit {
            let first = start + (v * cube_dim + unit) * width;
            if first < vocab {
                let vector = loaded[v];
                #[unroll]
                for lane in 0..width {
                    let value = f32::cast_from(vector[lane]);
                    let better = value > best_value;
                    best_value = select(better, value, best_value);
                    best_index = select(better, (first + lane) as u32, best_index);
                    magnitude_max = max(magnitude_max, u32::reinterpret(value) & 0x7FFF_FFFFu32);
                }
            }
        }
        start += cube_dim * vectors_per_unit * width;
    }
    let mut best_key = select(own < vocab, order_key::<f32>(best_value, true), 0u32);
    if magnitude_max > 0x7F80_0000u32 {
        // A NaN: the unit's first one, in the same visiting order.
        best_key = 0xFFFF_FFFFu32;
        best_index = u32::MAX;
        let mut start = 0usize;
        while start < vocab {
            #[unroll]
            for v in 0..vectors_per_unit {
                let first = start + (v * cube_dim + unit) * width;
                if first < vocab {
                    let vector = input[(base + first * stride) / width];
                    #[unroll]
                    for lane in 0..width {
                        let key = order_key::<F>(vector[lane], true);
                        let index = (first + lane) as u32;
                        if key == 0xFFFF_FFFFu32 && index < best_index {
                            best_index = index;
                        }
                    }
                }
            }
            start += cube_dim * vectors_per_unit * width;
        }
    }

    let (top_key, argmax) = cube_argmax(best_key, best_index, &mut reduce);
    if UNIT_POS == 0 {
        let finite = top_key < KEY_POS_INF && top_key > KEY_NEG_INF;
        tokens[row] = I::cast_from(argmax);
        valid[row] = I::cast_from(select(finite, 1u32, 0u32));
    }
}
