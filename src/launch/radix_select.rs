//! Host side of [`crate::kernels::radix_select`]: one cube per row pass by pass; one cube per
//! row in one launch for few short rows; or tiles of a row in three launches after a fill of
//! their counters (a histogram of the keys' top digit, a filter of the entries at or above the
//! pivot digit, a select over what passed).

use super::streaming::{self, cube_grid, vector_width};
use super::{
    allocate, allocate_outputs, allocate_outputs_and_scratch, mapped_rows, prime_per_unit,
    vectors_per_unit,
};
use crate::error::RowLayout;
use crate::kernels::radix_select::{
    digit_filter_kernel, digit_histogram_kernel, filtered_top_k_kernel, one_launch_kernel,
    radix_select_kernel, zero_counters_kernel,
};
use burn::tensor::{DType, Shape};
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};
use cubecl::prelude::*;

/// Units per cube of the fill, and of the pass-by-pass select by default: a multiple of every
/// plane size (8, 16, 32, 64), within every device's limit.
pub(crate) const CUBE_UNITS: u32 = 256;

/// How many compares (rows × list length²) the tiled select may spend ranking each row's list
/// across the row's cubes (each entry placed by the entries that beat it); a longer list is
/// taken by the row's first cube alone, by bucket ([`write_top_k_of_entries`]), which costs a
/// few passes over the list but a longer chain of barriers. H200, rows of 128k: one row at
/// k = 1024 (~1.5k-entry lists) ranked 25.3 µs against 27.0 by bucket, at k = 4096 (~5k entries)
/// 40.1 against 32.5; 8 rows at k = 1024 39.2 against 30.7.
///
/// [`write_top_k_of_entries`]: crate::kernels::candidates::write_top_k_of_entries
const RANK_COMPARES: usize = 1 << 23;

/// The longest list the tiled select ranks across cubes for `rows` rows.
pub(crate) fn rank_max_entries(rows: usize) -> usize {
    (RANK_COMPARES / rows.max(1)).isqrt()
}

/// How radix select runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Config {
    /// One cube per row of `units`: passes over the row counting a digit of `digit_bits` each,
    /// an ordered gather, a radix sort. Any k.
    PerRow { units: usize, digit_bits: u32 },
    /// One cube per row of `select.units`, in one launch: the row's top digit counted, the
    /// entries at or above the pivot digit passed on (`batch` elements per unit per step, each
    /// step's entries staged in `stage` entries of shared memory when they fit), the list taken
    /// by bucket in the candidate buffer (`select`).
    OneLaunch {
        batch: usize,
        stage: usize,
        select: streaming::Config,
    },
    /// Several cubes per row. `tile_width` elements per cube of `units` (each unit loading
    /// `batch` elements per step) count the keys' top `digit_bits` bits, then pass on the
    /// entries at or above the row's pivot digit (`filter_batch` elements per unit per step,
    /// each step's entries gathered in a shared-memory stage of `stage` entries when they fit);
    /// `rank_cubes` cubes per row of `select.units` rank those and write the top-k, or, for a
    /// list over `rank_max` entries ([`rank_max_entries`]), the row's first cube takes it with
    /// its candidate buffer (`select`).
    Tiled {
        tile_width: usize,
        units: usize,
        batch: usize,
        digit_bits: u32,
        filter_batch: usize,
        stage: usize,
        rank_cubes: usize,
        rank_max: usize,
        select: streaming::Config,
    },
}

impl Config {
    /// Whether it runs by one digit and a list of what passes it (in one launch or tiled),
    /// rather than pass by pass in one cube per row.
    pub(crate) fn by_digit(&self) -> bool {
        !matches!(self, Config::PerRow { .. })
    }

    /// Scratch words per row (keys, and as many indices).
    pub(crate) fn scratch_per_row(&self, len: usize, k: usize) -> usize {
        match self {
            Config::PerRow { .. } => 2 * k,
            Config::OneLaunch { .. } | Config::Tiled { .. } => len,
        }
    }
}

/// Launches radix select on a validated input.
pub(crate) fn launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    config: Config,
) -> (CubeTensor<R>, CubeTensor<R>) {
    match config {
        Config::PerRow { units, digit_bits } => launch_per_row(
            input,
            k,
            dim,
            layout,
            largest,
            index_dtype,
            (units, digit_bits),
        ),
        Config::OneLaunch {
            batch,
            stage,
            select,
        } => launch_one_launch(
            input,
            k,
            dim,
            layout,
            largest,
            index_dtype,
            (batch, stage),
            select,
        ),
        Config::Tiled {
            tile_width,
            units,
            batch,
            digit_bits,
            filter_batch,
            stage,
            rank_cubes,
            rank_max,
            select,
        } => launch_tiled(
            input,
            k,
            dim,
            layout,
            largest,
            index_dtype,
            (tile_width, units, batch, digit_bits),
            (filter_batch, stage),
            (rank_cubes, rank_max),
            select,
        ),
    }
}

fn launch_per_row<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    (units, digit_bits): (usize, u32),
) -> (CubeTensor<R>, CubeTensor<R>) {
    if layout.rows == 0 {
        return allocate_outputs(&input, k, dim, index_dtype);
    }
    let (input, rows) = mapped_rows(input, dim);
    let stride = input.meta.strides()[dim];
    let [values, indices, scratch_keys, scratch_indices] =
        allocate_outputs_and_scratch(&input, (k, dim, index_dtype), (layout.rows, 2 * k));
    let client = input.client.clone();
    let dtypes = [input.dtype.into(), index_dtype.into()];
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, k or the scratch size). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        radix_select_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows),
            CubeDim::new_1d(units as u32),
            input.into_array_arg(),
            values.clone().into_array_arg(),
            indices.clone().into_array_arg(),
            scratch_keys.into_array_arg(),
            scratch_indices.into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            layout.inner,
            largest,
            units as u32,
            digit_bits,
            dtypes,
        )
    };
    (values, indices)
}

#[allow(clippy::too_many_arguments)]
fn launch_one_launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    (batch, stage): (usize, usize),
    select: streaming::Config,
) -> (CubeTensor<R>, CubeTensor<R>) {
    if layout.rows == 0 {
        return allocate_outputs(&input, k, dim, index_dtype);
    }
    let (input, rows) = mapped_rows(input, dim);
    let stride = input.meta.strides()[dim];
    let client = input.client.clone();
    let width = vector_width(&input, dim);
    let [values, indices, list_keys, list_indices] =
        allocate_outputs_and_scratch(&input, (k, dim, index_dtype), (layout.rows, layout.len));
    // SAFETY: the kernel guards its own accesses: loads by the row length, bins by the digit's
    // 11 bits, list places by the row's length (a row passes at most all of its entries).
    unsafe {
        one_launch_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows),
            CubeDim::new_1d(select.units as u32),
            width,
            input.clone().into_array_arg(),
            list_keys.into_array_arg(),
            list_indices.into_array_arg(),
            values.clone().into_array_arg(),
            indices.clone().into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            layout.inner,
            largest,
            select.units,
            vectors_per_unit(batch, width),
            stage,
            select.capacity,
            select.batch,
            prime_per_unit(k, select.units, select.capacity),
            [input.dtype.into(), index_dtype.into()],
        );
    }
    (values, indices)
}

#[allow(clippy::too_many_arguments)]
fn launch_tiled<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    (tile_width, units, batch, digit_bits): (usize, usize, usize, u32),
    (filter_batch, stage): (usize, usize),
    (rank_cubes, rank_max): (usize, usize),
    select: streaming::Config,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let (values, indices) = allocate_outputs(&input, k, dim, index_dtype);
    if layout.rows == 0 {
        return (values, indices);
    }
    let (input, rows) = mapped_rows(input, dim);
    let stride = input.meta.strides()[dim];
    let client = input.client.clone();
    let width = vector_width(&input, dim);
    let tile_width = tile_width.div_ceil(width) * width;
    let tiles = layout.len.div_ceil(tile_width);
    let vectors = vectors_per_unit(batch, width);
    let filter_vectors = vectors_per_unit(filter_batch, width);
    // Each row's histogram, then each row's list length: zero before the first launch. Filled
    // on the device: a copy of zeros from the host cost more host and device time than a fill
    // kernel's launch on the H200 (8 rows of 128k, k = 1024: 65.0 -> 40.5 us device, 121.9 ->
    // 45.3 us wall per call).
    let bins = 1usize << digit_bits;
    let counter_words = layout.rows * (bins + 1);
    // All three are this call's scratch, so they share one buffer (one request).
    let list_shape: Shape = [layout.rows, layout.len].into();
    let [counters, list_keys, list_indices] = allocate(
        &input,
        [
            ([counter_words].into(), DType::U32),
            (list_shape.clone(), DType::U32),
            (list_shape, DType::U32),
        ],
    );
    let histogram = counters.clone();
    let lengths_offset = layout.rows * bins;
    let grid = cube_grid(layout.rows * tiles);
    // SAFETY: the kernels guard their own accesses: loads by the row length and tile, bins by
    // the digit's bits, list places by the row's length (a row passes at most all of its
    // entries), the histogram and lengths by the row count.
    unsafe {
        zero_counters_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(counter_words.div_ceil(CUBE_UNITS as usize)),
            CubeDim::new_1d(CUBE_UNITS),
            counters.clone().into_array_arg(),
            counter_words,
            CUBE_UNITS as usize,
        );
        digit_histogram_kernel::launch_unchecked::<R>(
            &client,
            grid.clone(),
            CubeDim::new_1d(units as u32),
            width,
            input.clone().into_array_arg(),
            histogram.clone().into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            layout.rows,
            tile_width,
            largest,
            units,
            vectors,
            digit_bits,
            input.dtype.into(),
        );
        digit_filter_kernel::launch_unchecked::<R>(
            &client,
            grid,
            CubeDim::new_1d(units as u32),
            width,
            input.clone().into_array_arg(),
            histogram.into_array_arg(),
            counters.clone().into_array_arg(),
            list_keys.clone().into_array_arg(),
            list_indices.clone().into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            tile_width,
            lengths_offset,
            largest,
            units,
            filter_vectors,
            stage,
            digit_bits,
            input.dtype.into(),
        );
        filtered_top_k_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows * rank_cubes),
            CubeDim::new_1d(select.units as u32),
            width,
            input.clone().into_array_arg(),
            counters.into_array_arg(),
            list_keys.into_array_arg(),
            list_indices.into_array_arg(),
            values.clone().into_array_arg(),
            indices.clone().into_array_arg(),
            layout.len,
            stride,
            rows.group_rows,
            rows.group_stride,
            rows.row_stride,
            k as u32,
            layout.rows,
            layout.inner,
            lengths_offset,
            rank_cubes,
            rank_max,
            largest,
            select.units,
            select.batch,
            select.capacity,
            prime_per_unit(k, select.units, select.capacity),
            [input.dtype.into(), index_dtype.into()],
        );
    }
    (values, indices)
}
