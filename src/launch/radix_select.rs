//! Host side of [`crate::kernels::radix_select`]: one cube per row.

use super::output_shape;
use super::streaming::cube_grid;
use crate::error::RowLayout;
use crate::kernels::radix_select::radix_select_kernel;
use burn::tensor::{DType, TensorMetadata};
use burn_cubecl::{CubeRuntime, ops::numeric::empty_device_contiguous_dtype, tensor::CubeTensor};
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
    let client = input.client.clone();
    let device = input.device.clone();
    let shape = output_shape(&input.shape(), k, dim);
    let values =
        empty_device_contiguous_dtype(client.clone(), device.clone(), shape.clone(), input.dtype);
    let indices = empty_device_contiguous_dtype(client.clone(), device.clone(), shape, index_dtype);
    if layout.rows == 0 {
        return (values, indices);
    }
    let scratch_shape = [layout.rows, 2 * k];
    let scratch_keys = empty_device_contiguous_dtype(
        client.clone(),
        device.clone(),
        scratch_shape.into(),
        DType::U32,
    );
    let scratch_indices =
        empty_device_contiguous_dtype(client.clone(), device, scratch_shape.into(), DType::U32);

    let dtypes = [input.dtype.into(), index_dtype.into()];
    radix_select_kernel::launch::<R>(
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
    );
    (values, indices)
}
