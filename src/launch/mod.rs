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
    check_shape(&tensor.shape(), k, dim)
}

fn dtype_supported<R: CubeRuntime>(tensor: &CubeTensor<R>) -> bool {
    match tensor.dtype {
        // The kernels rank in f32: f64 would lose order between close values.
        DType::F64 => false,
        dtype => tensor
            .client
            .properties()
            .supports_type(cubecl::ir::ElemType::from(dtype)),
    }
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
