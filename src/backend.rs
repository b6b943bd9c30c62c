//! The backend trait: how each Burn backend computes a top-k.

use crate::error::TopKError;
use crate::options::TopKOptions;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Shape};

/// A Burn backend that can compute a top-k.
///
/// Implemented for CubeCL backends (`CubeBackend` on wgpu and CUDA, `Fusion` of it, and
/// `Autodiff` of either), where the work runs in this crate's kernels on the device, and for
/// `NdArray`, through the host fallback in [`crate::fallback`]. Users call it through
/// [`TopKExt`](crate::TopKExt).
pub trait TopKBackend: Backend {
    /// The top-k of `tensor` along `dim`: `(values, indices)`, with `dim` of length `k`.
    /// See the crate docs for the exact semantics. Errors are found before anything is launched.
    fn float_top_k(
        tensor: FloatTensor<Self>,
        k: usize,
        dim: usize,
        options: TopKOptions,
    ) -> Result<(FloatTensor<Self>, IntTensor<Self>), TopKError>;

    /// The error [`float_top_k`](Self::float_top_k) would return for a tensor of this `dtype`
    /// and `shape` on `device`, found without running anything. Lazy backends (Fusion) call it
    /// before they queue the operation.
    fn check_top_k(
        device: &Self::Device,
        dtype: DType,
        shape: &Shape,
        k: usize,
        dim: usize,
        options: TopKOptions,
    ) -> Result<(), TopKError>;
}

mod cube {
    use super::*;
    use crate::launch::{self, Plan};
    use burn::tensor::Element;
    use burn::tensor::Slice;
    use burn::tensor::TensorMetadata;
    use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

    impl<R, F, I, BT> TopKBackend for CubeBackend<R, F, I, BT>
    where
        R: CubeRuntime,
        F: FloatElement,
        I: IntElement,
        BT: BoolElement,
    {
        fn float_top_k(
            tensor: FloatTensor<Self>,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(FloatTensor<Self>, IntTensor<Self>), TopKError> {
            let dtype = tensor.dtype;
            let (layout, plan) = launch::check_and_plan(
                &tensor.client.properties().hardware,
                dtype,
                || supports(&tensor.client, dtype),
                &tensor.shape(),
                tensor.handle.size() as usize / dtype.size(),
                k,
                dim,
                options.strategy,
            )?;
            Ok(match plan {
                Plan::BurnBuiltin => burn_builtin::<Self>(tensor, k, dim, options.largest),
                plan => launch::top_k(tensor, k, dim, layout, plan, options.largest, I::dtype()),
            })
        }

        fn check_top_k(
            device: &Self::Device,
            dtype: DType,
            shape: &Shape,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(), TopKError> {
            let client = R::client(device);
            launch::check_and_plan(
                &client.properties().hardware,
                dtype,
                || supports(&client, dtype),
                shape,
                shape.num_elements(),
                k,
                dim,
                options.strategy,
            )
            .map(|_| ())
        }
    }

    fn supports<R: CubeRuntime>(client: &cubecl::client::ComputeClient<R>, dtype: DType) -> bool {
        client
            .properties()
            .supports_type(cubecl::ir::ElemType::from(dtype))
    }

    /// [`Strategy::BurnBuiltin`](crate::Strategy::BurnBuiltin): Burn's sort, then the first k.
    fn burn_builtin<B: burn::tensor::backend::Backend>(
        tensor: FloatTensor<B>,
        k: usize,
        dim: usize,
        largest: bool,
    ) -> (FloatTensor<B>, IntTensor<B>) {
        let rank = tensor.shape().num_dims();
        let int_dtype = B::IntElem::dtype().into();
        let (values, indices) = B::float_sort_with_indices(tensor, dim, largest, int_dtype);
        let slices: Vec<Slice> = (0..rank)
            .map(|axis| {
                let end = (axis == dim).then_some(k as isize);
                Slice::new(0, end, 1)
            })
            .collect();
        (
            B::float_slice(values, &slices),
            B::int_slice(indices, &slices),
        )
    }
}

mod fusion {
    use super::*;
    use crate::launch::output_shape;
    use burn::tensor::{Element, TensorMetadata};
    use burn_fusion::{
        Fusion, FusionBackend, FusionRuntime,
        stream::{Operation, OperationStreams},
    };
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
    use core::marker::PhantomData;

    /// The top-k registered as a custom operation in the fusion stream; it runs the inner backend.
    #[derive(Clone, Debug)]
    struct TopKOp<B> {
        desc: CustomOpIr,
        k: usize,
        dim: usize,
        options: TopKOptions,
        backend: PhantomData<B>,
    }

    impl<B: FusionBackend + TopKBackend> Operation<B::FusionRuntime> for TopKOp<B> {
        fn execute(
            &self,
            handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let ([input], [values, indices]) = self.desc.as_fixed();
            let tensor = handles.get_float_tensor::<B>(input);
            // Validated by `float_top_k` before the operation was registered.
            let (top_values, top_indices) = B::float_top_k(tensor, self.k, self.dim, self.options)
                .expect("top-k was validated before it was registered");
            handles.register_float_tensor::<B>(&values.id, top_values);
            handles.register_int_tensor::<B>(&indices.id, top_indices);
        }
    }

    impl<B: FusionBackend + TopKBackend> TopKBackend for Fusion<B> {
        fn float_top_k(
            tensor: FloatTensor<Self>,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(FloatTensor<Self>, IntTensor<Self>), TopKError> {
            let client = tensor.client.clone();
            B::check_top_k(
                client.device(),
                tensor.dtype,
                &tensor.shape(),
                k,
                dim,
                options,
            )?;

            let shape = output_shape(&tensor.shape(), k, dim);
            let values =
                TensorIr::uninit(client.create_empty_handle(), shape.clone(), tensor.dtype);
            let indices =
                TensorIr::uninit(client.create_empty_handle(), shape, B::IntElem::dtype());
            let streams = OperationStreams::with_inputs([&tensor]);
            let desc = CustomOpIr::new("burn_topk::top_k", &[tensor.into_ir()], &[values, indices]);
            let op = TopKOp::<B> {
                desc: desc.clone(),
                k,
                dim,
                options,
                backend: PhantomData,
            };
            let [values, indices] = client
                .register(streams, OperationIr::Custom(desc), op)
                .try_into()
                .expect("top-k registers two outputs");
            Ok((values, indices))
        }

        fn check_top_k(
            device: &Self::Device,
            dtype: DType,
            shape: &Shape,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(), TopKError> {
            B::check_top_k(device, dtype, shape, k, dim, options)
        }
    }
}

mod autodiff {
    use super::*;
    use burn::backend::Autodiff;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::ops::FloatTensorOps;

    /// Indices carry no gradient. Values of a tensor on the autodiff graph (a leaf that requires a
    /// gradient, or anything computed from one) are gathered again through the graph, so gradients
    /// flow to the selected positions; other tensors pay no extra launch.
    impl<B: TopKBackend, C: CheckpointStrategy> TopKBackend for Autodiff<B, C> {
        fn float_top_k(
            tensor: FloatTensor<Self>,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(FloatTensor<Self>, IntTensor<Self>), TopKError> {
            let tracked = !tensor.node.requirement.is_none();
            let (values, indices) = B::float_top_k(Self::inner(tensor.clone()), k, dim, options)?;
            let values = if tracked {
                Self::float_gather(dim, tensor, indices.clone())
            } else {
                Self::from_inner(values)
            };
            Ok((values, indices))
        }

        fn check_top_k(
            device: &Self::Device,
            dtype: DType,
            shape: &Shape,
            k: usize,
            dim: usize,
            options: TopKOptions,
        ) -> Result<(), TopKError> {
            B::check_top_k(device, dtype, shape, k, dim, options)
        }
    }
}

mod ndarray {
    use super::*;
    use burn::backend::NdArray;

    /// NdArray keeps its data on the host: the fallback ranks it there, with no device involved.
    /// (NdArray's own bounds name a private array type, so the impls are spelled out per element pair.)
    macro_rules! ndarray_top_k {
        ($($float:ty, $int:ty);*) => {$(
            impl TopKBackend for NdArray<$float, $int, i8> {
                fn float_top_k(
                    tensor: FloatTensor<Self>,
                    k: usize,
                    dim: usize,
                    options: TopKOptions,
                ) -> Result<(FloatTensor<Self>, IntTensor<Self>), TopKError> {
                    crate::fallback::float_top_k::<Self>(tensor, k, dim, options)
                }

                fn check_top_k(
                    _device: &Self::Device,
                    dtype: DType,
                    shape: &Shape,
                    k: usize,
                    dim: usize,
                    _options: TopKOptions,
                ) -> Result<(), TopKError> {
                    crate::fallback::check(dtype, shape, k, dim)
                }
            }
        )*};
    }

    ndarray_top_k!(f32, i64; f32, i32; f64, i64; f64, i32);
}
