//! Host code: validation, buffers and launches for each algorithm. Kernels live in `crate::kernels`.

pub mod radix_select;
pub mod sampling;

use crate::error::{RowLayout, TopKError, check_float_dtype, check_shape};
use crate::options::{Strategy, TopKOptions};
use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::{CubeRuntime, tensor::CubeTensor};

/// Validates a top-k on a CubeCL tensor, on the host, before anything is launched.
pub(crate) fn validate<R: CubeRuntime>(
    tensor: &CubeTensor<R>,
    k: usize,
    dim: usize,
) -> Result<RowLayout, TopKError> {
    check_kernel_input(
        tensor.dtype,
        || {
            tensor
                .client
                .properties()
                .supports_type(cubecl::ir::ElemType::from(tensor.dtype))
        },
        &tensor.shape(),
        tensor.handle.size() as usize / tensor.dtype.size(),
        k,
        dim,
    )
}

/// Everything the device kernels need checked on the host, shared by the CubeCL and Fusion paths:
/// the dtype (`device_supports` says whether the device has it at all), the shape, and the 32-bit
/// addressing of the input's buffer (`input_elements`) and of the scratch rows (2k words per row,
/// the largest buffer a launch writes).
pub(crate) fn check_kernel_input(
    dtype: DType,
    device_supports: impl FnOnce() -> bool,
    shape: &Shape,
    input_elements: usize,
    k: usize,
    dim: usize,
) -> Result<RowLayout, TopKError> {
    check_float_dtype(dtype, kernel_supports(dtype, device_supports))?;
    let layout = check_shape(shape, k, dim)?;
    let elements = input_elements.max(layout.rows * 2 * k);
    if elements > u32::MAX as usize {
        return Err(TopKError::TooLarge {
            elements,
            max: u32::MAX as usize,
        });
    }
    Ok(layout)
}

/// Whether the device kernels can rank `dtype`, given whether the device supports it at all.
/// They rank in f32, which is exact for f16 and bf16 but would merge close f64 values.
fn kernel_supports(dtype: DType, device_supports: impl FnOnce() -> bool) -> bool {
    dtype != DType::F64 && device_supports()
}

/// Runs a validated top-k. `index_dtype` is the backend's integer type.
pub(crate) fn top_k<R: CubeRuntime>(
    tensor: CubeTensor<R>,
    k: usize,
    dim: usize,
    layout: RowLayout,
    options: TopKOptions,
    index_dtype: DType,
) -> (CubeTensor<R>, CubeTensor<R>) {
    match options.strategy {
        Strategy::Auto | Strategy::RadixSelect => {
            radix_select::launch(tensor, k, dim, layout, options.largest, index_dtype)
        }
    }
}

/// The shape of the results: `shape` with `dim` replaced by `k`.
pub(crate) fn output_shape(shape: &Shape, k: usize, dim: usize) -> Shape {
    let mut dims = shape.to_vec();
    dims[dim] = k;
    Shape::from(dims)
}
