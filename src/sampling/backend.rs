//! The backend trait: how each Burn backend samples and filters.

use super::error::{SamplingError, check};
use super::params::{FilterOutput, RowTensors, ScalarParams};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};

/// A Burn backend that can sample tokens and filter distributions.
///
/// Implemented for CubeCL backends (`CubeBackend` on wgpu and CUDA, `Fusion` of it, and
/// `Autodiff` of either), where one to three kernel launches do the whole call on the device with
/// no read-back (see the [module docs](super)), and for `NdArray` through the host
/// [`fallback`](super::fallback). Users call it
/// through [`SampleExt`](super::SampleExt); every error is found before anything is launched.
pub trait SamplingBackend: Backend {
    /// One token per row of `input` (`[batch, vocab]`) and a validity flag per row (1 valid,
    /// 0 invalid), both `[batch]` in the backend's integer type.
    fn sample(
        input: FloatTensor<Self>,
        rows: RowTensors<Self>,
        scalars: ScalarParams,
    ) -> Result<(IntTensor<Self>, IntTensor<Self>), SamplingError>;

    /// The filtered rows of `input`, `[batch, vocab]`: see [`FilterOutput`].
    fn filter(
        input: FloatTensor<Self>,
        rows: RowTensors<Self>,
        scalars: ScalarParams,
        output: FilterOutput,
    ) -> Result<FloatTensor<Self>, SamplingError>;
}

mod cube {
    use super::*;
    use crate::launch::sampling::{PerRowTensors, Produced, launch};
    use crate::sampling::error::check_kernel;
    use burn::tensor::{DType, TensorMetadata};
    use burn_cubecl::{
        BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement, tensor::CubeTensor,
    };

    fn validate<R, F, I, BT>(
        input: &CubeTensor<R>,
        rows: RowTensors<CubeBackend<R, F, I, BT>>,
        scalars: &ScalarParams,
    ) -> Result<PerRowTensors<R>, SamplingError>
    where
        R: CubeRuntime,
        F: FloatElement,
        I: IntElement,
        BT: BoolElement,
    {
        let checked = check(&input.shape(), input.dtype, &rows, scalars, I::dtype())?;
        let supports = |dtype: DType| {
            input
                .client
                .properties()
                .supports_type(cubecl::ir::ElemType::from(dtype))
        };
        let param_dtypes: Vec<DType> = [&rows.temperature, &rows.top_p, &rows.min_p]
            .into_iter()
            .flatten()
            .map(|t| t.dtype)
            .collect();
        check_kernel(
            input.dtype,
            || {
                supports(input.dtype)
                    && param_dtypes.iter().all(|&d| d == DType::F64 || supports(d))
            },
            &param_dtypes,
            input.handle.size() as usize / input.dtype.size(),
            checked,
            scalars.top_k_strategy,
        )?;
        Ok(PerRowTensors {
            temperature: rows.temperature,
            top_k: rows.top_k,
            top_p: rows.top_p,
            min_p: rows.min_p,
            seed: rows.seed,
        })
    }

    impl<R, F, I, BT> SamplingBackend for CubeBackend<R, F, I, BT>
    where
        R: CubeRuntime,
        F: FloatElement,
        I: IntElement,
        BT: BoolElement,
    {
        fn sample(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
        ) -> Result<(IntTensor<Self>, IntTensor<Self>), SamplingError> {
            let per_row = validate(&input, rows, &scalars)?;
            match launch(input, per_row, &scalars, None, I::dtype()) {
                Produced::Tokens { tokens, valid } => Ok((tokens, valid)),
                Produced::Filtered(_) => unreachable!("a token launch produces tokens"),
            }
        }

        fn filter(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
            output: FilterOutput,
        ) -> Result<FloatTensor<Self>, SamplingError> {
            let per_row = validate(&input, rows, &scalars)?;
            match launch(input, per_row, &scalars, Some(output), I::dtype()) {
                Produced::Filtered(filtered) => Ok(filtered),
                Produced::Tokens { .. } => unreachable!("a filter launch produces rows"),
            }
        }
    }
}

mod fusion {
    use super::*;
    use crate::sampling::error::check_kernel;
    use burn::tensor::{DType, Element, Shape, TensorMetadata};
    use burn_fusion::{
        Fusion, FusionBackend, FusionRuntime, FusionTensor,
        stream::{Operation, OperationStreams},
    };
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
    use core::marker::PhantomData;

    /// Which per-row tensors follow the input in the operation's inputs, in this order:
    /// temperature, top-k, top-p, min-p, seed.
    type Present = [bool; 5];

    /// Sampling (or a filter) registered as a custom operation; it runs the inner backend.
    #[derive(Clone, Debug)]
    struct SamplingOp<B> {
        desc: CustomOpIr,
        scalars: ScalarParams,
        output: Option<FilterOutput>,
        present: Present,
        backend: PhantomData<B>,
    }

    impl<B: FusionBackend + SamplingBackend> Operation<B::FusionRuntime> for SamplingOp<B> {
        fn execute(
            &self,
            handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            // The input, then the per-row tensors that are present, in the order of `Present`.
            let mut inputs = self.desc.inputs.iter();
            let input = handles.get_float_tensor::<B>(inputs.next().expect("the input"));
            let mut take = |present: bool| if present { inputs.next() } else { None };
            let temperature = take(self.present[0]).cloned();
            let top_k = take(self.present[1]).cloned();
            let top_p = take(self.present[2]).cloned();
            let min_p = take(self.present[3]).cloned();
            let seed = take(self.present[4]).cloned();
            let rows = RowTensors {
                temperature: temperature.map(|t| handles.get_float_tensor::<B>(&t)),
                top_k: top_k.map(|t| handles.get_int_tensor::<B>(&t)),
                top_p: top_p.map(|t| handles.get_float_tensor::<B>(&t)),
                min_p: min_p.map(|t| handles.get_float_tensor::<B>(&t)),
                seed: seed.map(|t| handles.get_int_tensor::<B>(&t)),
            };
            // Validated before the operation was registered.
            match self.output {
                None => {
                    let (tokens, valid) = B::sample(input, rows, self.scalars)
                        .expect("sampling was validated before it was registered");
                    handles.register_int_tensor::<B>(&self.desc.outputs[0].id, tokens);
                    handles.register_int_tensor::<B>(&self.desc.outputs[1].id, valid);
                }
                Some(output) => {
                    let filtered = B::filter(input, rows, self.scalars, output)
                        .expect("the filter was validated before it was registered");
                    handles.register_float_tensor::<B>(&self.desc.outputs[0].id, filtered);
                }
            }
        }
    }

    fn register<B: FusionBackend + SamplingBackend>(
        input: FusionTensor<B::FusionRuntime>,
        rows: RowTensors<Fusion<B>>,
        scalars: ScalarParams,
        output: Option<FilterOutput>,
    ) -> Result<Vec<FusionTensor<B::FusionRuntime>>, SamplingError> {
        let client = input.client.clone();
        let shape = input.shape();
        let checked = check(&shape, input.dtype, &rows, &scalars, B::IntElem::dtype())?;
        let param_dtypes: Vec<DType> = [&rows.temperature, &rows.top_p, &rows.min_p]
            .into_iter()
            .flatten()
            .map(|t| t.dtype)
            .collect();
        check_kernel(
            input.dtype,
            || {
                B::supports_dtype(client.device(), input.dtype)
                    && param_dtypes
                        .iter()
                        .all(|&d| d == DType::F64 || B::supports_dtype(client.device(), d))
            },
            &param_dtypes,
            shape.num_elements(),
            checked,
            scalars.top_k_strategy,
        )?;

        let present = [
            rows.temperature.is_some(),
            rows.top_k.is_some(),
            rows.top_p.is_some(),
            rows.min_p.is_some(),
            rows.seed.is_some(),
        ];
        let mut tensors = vec![input];
        tensors.extend(
            [
                rows.temperature,
                rows.top_k,
                rows.top_p,
                rows.min_p,
                rows.seed,
            ]
            .into_iter()
            .flatten(),
        );
        let outputs = match output {
            None => {
                let int = B::IntElem::dtype();
                let batch = Shape::from([checked.batch]);
                vec![
                    TensorIr::uninit(client.create_empty_handle(), batch.clone(), int),
                    TensorIr::uninit(client.create_empty_handle(), batch, int),
                ]
            }
            Some(_) => vec![TensorIr::uninit(
                client.create_empty_handle(),
                shape,
                tensors[0].dtype,
            )],
        };
        let streams = OperationStreams::with_inputs(tensors.iter());
        let inputs: Vec<TensorIr> = tensors.into_iter().map(|t| t.into_ir()).collect();
        let desc = CustomOpIr::new("burn_topk::sampling", &inputs, &outputs);
        let op = SamplingOp::<B> {
            desc: desc.clone(),
            scalars,
            output,
            present,
            backend: PhantomData,
        };
        Ok(client.register(streams, OperationIr::Custom(desc), op))
    }

    impl<B: FusionBackend + SamplingBackend> SamplingBackend for Fusion<B> {
        fn sample(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
        ) -> Result<(IntTensor<Self>, IntTensor<Self>), SamplingError> {
            let [tokens, valid]: [_; 2] = register::<B>(input, rows, scalars, None)?
                .try_into()
                .expect("sampling registers two outputs");
            Ok((tokens, valid))
        }

        fn filter(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
            output: FilterOutput,
        ) -> Result<FloatTensor<Self>, SamplingError> {
            let [filtered]: [_; 1] = register::<B>(input, rows, scalars, Some(output))?
                .try_into()
                .expect("a filter registers one output");
            Ok(filtered)
        }
    }
}

mod autodiff {
    use super::*;
    use burn::backend::Autodiff;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::tensor::backend::AutodiffBackend;

    /// Tokens carry no gradient, and the filters are not differentiable: the inner backend runs
    /// on the tensors' values, and filtered rows come back as constants of the graph.
    impl<B: SamplingBackend, C: CheckpointStrategy> SamplingBackend for Autodiff<B, C> {
        fn sample(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
        ) -> Result<(IntTensor<Self>, IntTensor<Self>), SamplingError> {
            B::sample(Self::inner(input), inner_rows::<B, C>(rows), scalars)
        }

        fn filter(
            input: FloatTensor<Self>,
            rows: RowTensors<Self>,
            scalars: ScalarParams,
            output: FilterOutput,
        ) -> Result<FloatTensor<Self>, SamplingError> {
            B::filter(
                Self::inner(input),
                inner_rows::<B, C>(rows),
                scalars,
                output,
            )
            .map(Self::from_inner)
        }
    }

    fn inner_rows<B: SamplingBackend, C: CheckpointStrategy>(
        rows: RowTensors<Autodiff<B, C>>,
    ) -> RowTensors<B> {
        RowTensors {
            temperature: rows.temperature.map(Autodiff::<B, C>::inner),
            top_k: rows.top_k.map(Autodiff::<B, C>::int_inner),
            top_p: rows.top_p.map(Autodiff::<B, C>::inner),
            min_p: rows.min_p.map(Autodiff::<B, C>::inner),
            seed: rows.seed.map(Autodiff::<B, C>::int_inner),
        }
    }
}

mod ndarray {
    use super::*;
    use crate::sampling::fallback;
    use burn::backend::NdArray;

    /// NdArray keeps its data on the host: the fallback samples it there.
    macro_rules! ndarray_sampling {
        ($($float:ty, $int:ty);*) => {$(
            impl SamplingBackend for NdArray<$float, $int, i8> {
                fn sample(
                    input: FloatTensor<Self>,
                    rows: RowTensors<Self>,
                    scalars: ScalarParams,
                ) -> Result<(IntTensor<Self>, IntTensor<Self>), SamplingError> {
                    fallback::sample::<Self>(input, rows, &scalars)
                }

                fn filter(
                    input: FloatTensor<Self>,
                    rows: RowTensors<Self>,
                    scalars: ScalarParams,
                    output: FilterOutput,
                ) -> Result<FloatTensor<Self>, SamplingError> {
                    fallback::filter::<Self>(input, rows, &scalars, output)
                }
            }
        )*};
    }

    ndarray_sampling!(f32, i64; f32, i32; f64, i64; f64, i32);
}
