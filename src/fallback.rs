//! A correct top-k for any Burn backend, built from Burn's data transfer ops and the CPU
//! [`reference`](mod@reference): what `NdArray` uses, and available to users of backends that
//! have no CubeCL kernels.
//!
//! On a device backend this reads the tensor back to the host: use it for correctness, not speed.

use crate::error::{TopKError, check_float_dtype, check_shape};
use crate::options::TopKOptions;
use crate::reference::{self, RankedElement};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Element, Shape, TensorData, TensorMetadata};

/// The top-k of `tensor` along `dim`, computed on the host. Same semantics as every kernel.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::{Tensor, TensorPrimitive};
/// use burn_topk::{TopKOptions, fallback};
///
/// let device = Default::default();
/// let x = Tensor::<NdArray, 1>::from_floats([0.5, 2.0, -1.0, 2.0], &device);
/// let (values, indices) =
///     fallback::float_top_k::<NdArray>(x.into_primitive().tensor(), 2, 0, TopKOptions::largest())
///         .unwrap();
/// let values = Tensor::<NdArray, 1>::from_primitive(TensorPrimitive::Float(values));
/// assert_eq!(values.into_data().to_vec::<f32>().unwrap(), vec![2.0, 2.0]);
/// ```
pub fn float_top_k<B: Backend>(
    tensor: FloatTensor<B>,
    k: usize,
    dim: usize,
    options: TopKOptions,
) -> Result<(FloatTensor<B>, IntTensor<B>), TopKError> {
    let dtype = tensor.dtype();
    let shape = tensor.shape();
    check(dtype, &shape, k, dim)?;
    let device = B::float_device(&tensor);
    let data = burn::tensor::try_read_sync(B::float_into_data(tensor))
        .expect("the fallback needs a backend that can read synchronously")
        .expect("reading the tensor back to the host");
    let out_shape = crate::launch::output_shape(&shape, k, dim);
    let largest = options.largest;
    let (values, indices) = match dtype {
        DType::F64 => select::<f64>(data, &shape, &out_shape, k, dim, largest),
        DType::F16 => select::<half::f16>(data, &shape, &out_shape, k, dim, largest),
        DType::BF16 => select::<half::bf16>(data, &shape, &out_shape, k, dim, largest),
        _ => select::<f32>(data.convert::<f32>(), &shape, &out_shape, k, dim, largest),
    };
    let values = B::float_from_data(values.convert_dtype(dtype), &device);
    let indices: Vec<i64> = indices.into_iter().map(|i| i as i64).collect();
    let indices = TensorData::new(indices, out_shape).convert_dtype(B::IntElem::dtype());
    Ok((values, B::int_from_data(indices, &device)))
}

/// The errors [`float_top_k`] returns, found without reading the tensor.
pub fn check(dtype: DType, shape: &Shape, k: usize, dim: usize) -> Result<(), TopKError> {
    check_float_dtype(dtype, true)?;
    check_shape(shape, k, dim).map(|_| ())
}

fn select<E: RankedElement + Element>(
    data: TensorData,
    shape: &Shape,
    out_shape: &Shape,
    k: usize,
    dim: usize,
    largest: bool,
) -> (TensorData, Vec<usize>) {
    let slice = data
        .as_slice::<E>()
        .expect("the data has the tensor's dtype");
    let (values, indices) =
        reference::top_k(slice, shape, k, dim, largest).expect("validated by the caller");
    (TensorData::new(values, out_shape.clone()), indices)
}
