//! Host side of [`crate::kernels::two_stage`]: one cube per tile, then one cube per row, which
//! merges the row's sorted tile lists in shared memory when they fit there twice.

use super::streaming::{self, cube_grid, vector_width};
use super::{
    allocate_outputs, allocate_outputs_and_scratch, mapped_rows, prime_batches, prime_per_unit,
    processors, vectors_per_unit,
};
use crate::error::RowLayout;
use crate::kernels::two_stage::{
    merge_candidates_kernel, merge_scan_words, tile_candidates_kernel,
};
use burn::tensor::DType;
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};
use cubecl::ir::HardwareProperties;
use cubecl::prelude::*;

/// Both stages' cubes and the tile width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// Stage 1: one cube per tile.
    pub tile: streaming::Config,
    /// Elements per tile, before rounding up to the vector width.
    pub tile_width: usize,
    /// Stage 2: one cube per row, `batch` candidates per unit per batch.
    pub merge: streaming::Config,
}

impl Config {
    /// Tiles per row of `len` elements (at most; the vector width may round tiles up).
    pub(crate) fn tiles(&self, len: usize) -> usize {
        len.div_ceil(self.tile_width)
    }
}

/// Launches both stages on a validated input.
pub(crate) fn launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    config: Config,
) -> (CubeTensor<R>, CubeTensor<R>) {
    if layout.rows == 0 {
        return allocate_outputs(&input, k, dim, index_dtype);
    }
    let (input, rows) = mapped_rows(input, dim);
    let stride = input.meta.strides()[dim];
    let client = input.client.clone();
    let width = vector_width(&input, dim);
    // Tiles start on whole vectors.
    let tile_width = config.tile_width.div_ceil(width) * width;
    let tiles = layout.len.div_ceil(tile_width);
    let per_row = tiles * k;
    let [values, indices, candidate_keys, candidate_indices] =
        allocate_outputs_and_scratch(&input, (k, dim, index_dtype), (layout.rows, per_row));
    let vectors = vectors_per_unit(config.tile.batch, width);
    let hardware = &client.properties().hardware;
    let merge_capacity = sorted_merge_capacity(hardware, per_row, config.merge.units);
    let crowded = layout.rows * tiles > processors(hardware);

    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, the tile, k or the capacity). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        tile_candidates_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows * tiles),
            CubeDim::new_1d(config.tile.units as u32),
            width,
            input.clone().into_array_arg(),
            candidate_keys.clone().into_array_arg(),
            candidate_indices.clone().into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            tile_width,
            largest,
            config.tile.units,
            vectors,
            config.tile.capacity,
            prime_per_unit(k, config.tile.units, config.tile.capacity),
            prime_batches(k, tile_width, config.tile.units, vectors * width, crowded),
            tile_width <= config.tile.units * vectors * width,
            merge_capacity.is_some(),
            input.dtype.into(),
        )
    };
    // Sorted lists that fit shared memory twice merge pairwise; otherwise they stream through a
    // candidate buffer.
    let (merge_capacity, pairwise) = match merge_capacity {
        Some(capacity) => (capacity, true),
        None => (config.merge.capacity, false),
    };
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, the list count, k or the capacity). A checked launch clamps each load, which
    // makes the load wait for its data at once (seen in the H100 profile).
    unsafe {
        merge_candidates_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows),
            CubeDim::new_1d(config.merge.units as u32),
            width,
            input.clone().into_array_arg(),
            candidate_keys.into_array_arg(),
            candidate_indices.into_array_arg(),
            values.clone().into_array_arg(),
            indices.clone().into_array_arg(),
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            layout.inner,
            tiles,
            largest,
            config.merge.units,
            config.merge.batch,
            merge_capacity,
            prime_per_unit(k, config.merge.units, config.merge.capacity),
            pairwise,
            [input.dtype.into(), index_dtype.into()],
        )
    };
    (values, indices)
}

/// The entries of each half of the sorted merge's shared buffer for a row of `entries`
/// candidates: the next power of two (few kernel variants), `None` when two halves of keys and
/// indices, with the bound's words and its gather's scan (see `merge_candidates_kernel`), do not
/// fit the device's shared memory in a cube of `units`.
pub(crate) fn sorted_merge_capacity(
    hardware: &HardwareProperties,
    entries: usize,
    units: usize,
) -> Option<usize> {
    let capacity = entries.next_power_of_two();
    let bytes = 2 * capacity * 8 + 4 * (merge_scan_words(units) + 2);
    (bytes <= hardware.max_shared_memory_size).then_some(capacity)
}
