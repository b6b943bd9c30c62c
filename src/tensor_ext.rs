//! The extension trait that gives every Burn float tensor a top-k.

use crate::backend::TopKBackend;
use crate::error::TopKError;
use crate::options::TopKOptions;
use burn::tensor::{Int, Tensor, TensorPrimitive};

/// Top-k on Burn tensors: `logits.top_k(50, 1)`.
///
/// Returns `(values, indices)` of the tensor's shape with `dim` of length `k`: the k largest
/// values sorted descending, equal values ordered by the smaller index, NaN above +inf, −0.0 equal
/// to +0.0. See the [crate docs](crate) for the full semantics.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use burn_topk::TopKExt;
///
/// let device = Default::default();
/// let logits = Tensor::<NdArray, 2>::from_floats([[0.1, 3.0, 2.0, 3.0], [5.0, 4.0, 6.0, 0.0]], &device);
/// let (values, indices) = logits.top_k(2, 1);
/// assert_eq!(values.into_data().to_vec::<f32>().unwrap(), vec![3.0, 3.0, 6.0, 5.0]);
/// assert_eq!(indices.into_data().to_vec::<i64>().unwrap(), vec![1, 3, 2, 0]);
/// ```
pub trait TopKExt<B: TopKBackend, const D: usize>: Sized {
    /// The k largest values along `dim` and their indices, or a [`TopKError`] for bad input.
    fn try_top_k(
        self,
        k: usize,
        dim: usize,
    ) -> Result<(Tensor<B, D>, Tensor<B, D, Int>), TopKError>;

    /// Like [`try_top_k`](Self::try_top_k), with [`TopKOptions`]: the k smallest, or a strategy.
    fn try_top_k_with(
        self,
        k: usize,
        dim: usize,
        options: TopKOptions,
    ) -> Result<(Tensor<B, D>, Tensor<B, D, Int>), TopKError>;

    /// Like [`try_top_k`](Self::try_top_k), panicking with the error's message on bad input.
    fn top_k(self, k: usize, dim: usize) -> (Tensor<B, D>, Tensor<B, D, Int>) {
        self.try_top_k(k, dim).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`try_top_k_with`](Self::try_top_k_with), panicking with the error's message.
    fn top_k_with(
        self,
        k: usize,
        dim: usize,
        options: TopKOptions,
    ) -> (Tensor<B, D>, Tensor<B, D, Int>) {
        self.try_top_k_with(k, dim, options)
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

impl<B: TopKBackend, const D: usize> TopKExt<B, D> for Tensor<B, D> {
    fn try_top_k(
        self,
        k: usize,
        dim: usize,
    ) -> Result<(Tensor<B, D>, Tensor<B, D, Int>), TopKError> {
        self.try_top_k_with(k, dim, TopKOptions::default())
    }

    fn try_top_k_with(
        self,
        k: usize,
        dim: usize,
        options: TopKOptions,
    ) -> Result<(Tensor<B, D>, Tensor<B, D, Int>), TopKError> {
        let (values, indices) = B::float_top_k(self.into_primitive().tensor(), k, dim, options)?;
        Ok((
            Tensor::from_primitive(TensorPrimitive::Float(values)),
            Tensor::from_primitive(indices),
        ))
    }
}
