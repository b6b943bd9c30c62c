//! Host side of [`crate::kernels::streaming`]: one cube per row, one launch.

use super::{
    allocate_outputs, mapped_rows, prime_batches, prime_per_unit, processors, vectors_per_unit,
};
use crate::error::RowLayout;
use crate::kernels::streaming::streaming_kernel;
use burn::tensor::DType;
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};
use cubecl::prelude::*;

/// The largest cube count per grid dimension that every runtime accepts.
pub(crate) const MAX_CUBES_PER_AXIS: usize = 65_535;

/// A cube that streams elements through a candidate buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// Units per cube: a multiple of the plane size, at least 256.
    pub units: usize,
    /// Elements each unit loads per batch, before using any.
    pub batch: usize,
    /// Entries of the candidate buffer: a multiple of `units`, at least 2k.
    pub capacity: usize,
}

/// The widest vector the input's rows can be read with: 1 unless `dim` is contiguous and every
/// row starts on a multiple of the width.
pub(crate) fn vector_width<R: CubeRuntime>(input: &CubeTensor<R>, dim: usize) -> usize {
    cubecl::tensor_vector_size_parallel(
        input.client.io_optimized_vector_sizes(input.dtype.size()),
        input.meta.shape(),
        input.meta.strides(),
        dim,
    )
}

/// A grid of at least `cubes` cubes, within every runtime's limit per axis.
pub(crate) fn cube_grid(cubes: usize) -> CubeCount {
    let x = cubes.clamp(1, MAX_CUBES_PER_AXIS);
    CubeCount::Static(x as u32, cubes.div_ceil(x) as u32, 1)
}

/// Launches the streaming kernel on a validated input.
pub(crate) fn launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
    config: Config,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let (values, indices) = allocate_outputs(&input, k, dim, index_dtype);
    if layout.rows == 0 {
        return (values, indices);
    }
    let (input, rows) = mapped_rows(input, dim);
    let stride = input.meta.strides()[dim];
    let client = input.client.clone();
    let params = KernelParams::new(&input, dim, layout, k, config);
    let dtypes = [input.dtype.into(), index_dtype.into()];
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, k or the buffer capacity). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        streaming_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows),
            CubeDim::new_1d(config.units as u32),
            params.width,
            input.into_array_arg(),
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
            config.units,
            params.vectors,
            config.capacity,
            params.prime_per_unit,
            params.prime_batches,
            params.single_batch,
            dtypes,
        )
    };
    (values, indices)
}

/// The streaming kernel's launch parameters besides its [`Config`] (shared by
/// `streaming_kernel` and the sampling kernel that runs it first).
pub(crate) struct KernelParams {
    /// The vector width of the loads.
    pub width: usize,
    /// Vectors per unit per batch.
    pub vectors: usize,
    /// Keys each unit contributes to the priming.
    pub prime_per_unit: usize,
    /// Batches of the priming sample.
    pub prime_batches: usize,
    /// A row is at most one batch per unit: read once, into registers.
    pub single_batch: bool,
}

impl KernelParams {
    pub(crate) fn new<R: CubeRuntime>(
        input: &CubeTensor<R>,
        dim: usize,
        layout: RowLayout,
        k: usize,
        config: Config,
    ) -> Self {
        let width = vector_width(input, dim);
        let vectors = vectors_per_unit(config.batch, width);
        let crowded = layout.rows > processors(&input.client.properties().hardware);
        Self {
            width,
            vectors,
            prime_per_unit: prime_per_unit(k, config.units, config.capacity),
            prime_batches: prime_batches(k, layout.len, config.units, vectors * width, crowded),
            single_batch: layout.len <= config.units * vectors * width,
        }
    }
}
