//! Host code: validation, buffers and launches for each algorithm. Kernels live in `crate::kernels`.

pub mod radix_select;

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
    check_float_dtype(tensor.dtype, dtype_supported(tensor))?;
    let layout = check_shape(&tensor.shape(), k, dim)?;
    check_addressing(
        tensor.handle.size() as usize / tensor.dtype.size(),
        layout,
        k,
    )?;
    Ok(layout)
}

/// Kernels index with 32 bits: the input's buffer and the scratch rows (2k words per row, the
/// largest buffer a launch writes) must fit.
pub(crate) fn check_addressing(
    input_elements: usize,
    layout: RowLayout,
    k: usize,
) -> Result<(), TopKError> {
    let elements = input_elements.max(layout.rows * 2 * k);
    if elements > u32::MAX as usize {
        return Err(TopKError::TooLarge {
            elements,
            max: u32::MAX as usize,
        });
    }
    Ok(())
}

fn dtype_supported<R: CubeRuntime>(tensor: &CubeTensor<R>) -> bool {
    kernel_supports(tensor.dtype, || {
        tensor
            .client
            .properties()
            .supports_type(cubecl::ir::ElemType::from(tensor.dtype))
    })
}

/// Whether the device kernels can rank `dtype`, given whether the device supports it at all.
/// They rank in f32, which is exact for f16 and bf16 but would merge close f64 values.
pub(crate) fn kernel_supports(dtype: DType, device_supports: impl FnOnce() -> bool) -> bool {
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
