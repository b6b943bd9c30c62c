//! Host side of [`crate::kernels::radix_select`]: one cube per row.

use super::streaming::cube_grid;
use super::{allocate_outputs, allocate_scratch};
use crate::error::RowLayout;
use crate::kernels::radix_select::radix_select_kernel;
use burn::tensor::DType;
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};
use cubecl::prelude::*;

/// Units per cube: a multiple of every plane size (8, 16, 32, 64), within every device's limit.
const CUBE_UNITS: u32 = 256;

/// Launches the radix-select kernel on a validated input.
pub(crate) fn launch<R: CubeRuntime>(
    input: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    largest: bool,
    index_dtype: DType,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let (values, indices) = allocate_outputs(&input, k, dim, index_dtype);
    if layout.rows == 0 {
        return (values, indices);
    }
    let (scratch_keys, scratch_indices) = allocate_scratch(&input, layout.rows, 2 * k);
    let client = input.client.clone();
    let dtypes = [input.dtype.into(), index_dtype.into()];
    // SAFETY: the kernel guards its own accesses (every index is bounded by
    // the row length, k or the scratch size). A checked launch clamps each load, which makes
    // the load wait for its data at once (seen in the H100 profile).
    unsafe {
        radix_select_kernel::launch_unchecked::<R>(
            &client,
            cube_grid(layout.rows),
            CubeDim::new_1d(CUBE_UNITS),
            input.into_tensor_arg(),
            values.clone().into_tensor_arg(),
            indices.clone().into_tensor_arg(),
            scratch_keys.into_tensor_arg(),
            scratch_indices.into_tensor_arg(),
            dim,
            k as u32,
            layout.rows,
            layout.inner,
            largest,
            CUBE_UNITS,
            dtypes,
        )
    };
    (values, indices)
}
