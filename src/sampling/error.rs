//! Why a sampling call is refused, and the host checks that find it before any launch.

use super::params::{RowTensors, ScalarParams, Source};
use crate::Strategy;
use crate::error::TopKError;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, TensorMetadata};

/// Why a sampling or filter call was refused. Checked on the host before anything is launched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    /// The temperature was negative, infinite or NaN.
    #[error("sampling: temperature must be finite and >= 0 (0 is greedy), got {0}")]
    InvalidTemperature(f32),
    /// Top-k was 0.
    #[error("sampling: top-k must be at least 1, got k = 0")]
    TopKIsZero,
    /// Top-p was outside (0, 1].
    #[error("sampling: top-p must be in (0, 1], got {0}")]
    InvalidTopP(f32),
    /// Min-p was outside [0, 1].
    #[error("sampling: min-p must be in [0, 1], got {0}")]
    InvalidMinP(f32),
    /// A temperature other than 1 was given for probabilities.
    #[error(
        "sampling: temperature applies to logits; sampling from probabilities needs temperature 1"
    )]
    TemperatureWithProbabilities,
    /// The input is not `[batch, vocab]`.
    #[error("sampling: the input must be [batch, vocab], got shape {0:?}")]
    NotAMatrix(Vec<usize>),
    /// The vocabulary is empty.
    #[error("sampling: the vocabulary is empty (shape {0:?})")]
    EmptyVocabulary(Vec<usize>),
    /// The input's element type cannot be sampled here.
    #[error("sampling: dtype {dtype:?} is not supported ({reason})")]
    UnsupportedDType {
        /// The input's element type.
        dtype: DType,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A per-row parameter tensor is not `[batch]`.
    #[error("sampling: per-row {param} must have shape [{batch}], got {shape:?}")]
    PerRowShape {
        /// Which parameter.
        param: &'static str,
        /// The batch size.
        batch: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A per-row parameter tensor has the wrong element type.
    #[error("sampling: per-row {param} has dtype {dtype:?}, expected {expected}")]
    PerRowDType {
        /// Which parameter.
        param: &'static str,
        /// Its dtype.
        dtype: DType,
        /// What was expected.
        expected: &'static str,
    },
    /// `BURN_TOPK_STRATEGY` (which picks the fast path's top-k on CubeCL backends) named no
    /// strategy.
    #[error(
        "sampling: BURN_TOPK_STRATEGY = {name:?} is not one of {}",
        crate::options::STRATEGY_NAMES
    )]
    UnknownStrategy {
        /// The value found.
        name: String,
    },
    /// A buffer the device kernel would address is past its 32-bit indexing.
    #[error(
        "sampling: {elements} elements exceed the device kernel's 32-bit addressing (at most {max})"
    )]
    TooLarge {
        /// Elements of the largest buffer.
        elements: usize,
        /// The largest supported count.
        max: usize,
    },
}

/// The input seen as rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rows {
    pub batch: usize,
    pub vocab: usize,
}

/// Every check that does not depend on the device: shapes, dtypes and parameter ranges.
/// `int_dtype` is the backend's integer type, which per-row k and seeds must have.
pub(crate) fn check<B: Backend>(
    shape: &[usize],
    dtype: DType,
    rows: &RowTensors<B>,
    scalars: &ScalarParams,
    int_dtype: DType,
) -> Result<Rows, SamplingError> {
    if shape.len() != 2 {
        return Err(SamplingError::NotAMatrix(shape.to_vec()));
    }
    let (batch, vocab) = (shape[0], shape[1]);
    if vocab == 0 {
        return Err(SamplingError::EmptyVocabulary(shape.to_vec()));
    }
    if !matches!(
        dtype,
        DType::F32 | DType::F16 | DType::BF16 | DType::F64 | DType::Flex32
    ) {
        return Err(SamplingError::UnsupportedDType {
            dtype,
            reason: "sampling takes float tensors (f32, f16, bf16)",
        });
    }
    let t = scalars.temperature;
    if !t.is_finite() || t < 0.0 {
        return Err(SamplingError::InvalidTemperature(t));
    }
    if scalars.top_k == Some(0) {
        return Err(SamplingError::TopKIsZero);
    }
    let p = scalars.top_p;
    if p.is_nan() || p <= 0.0 || p > 1.0 {
        return Err(SamplingError::InvalidTopP(p));
    }
    let min_p = scalars.min_p;
    if !(0.0..=1.0).contains(&min_p) {
        return Err(SamplingError::InvalidMinP(min_p));
    }
    if scalars.source == Source::Probabilities && (t != 1.0 || scalars.per_row_temperature) {
        return Err(SamplingError::TemperatureWithProbabilities);
    }

    let mut float_dtype = None;
    let floats = [
        ("temperature", &rows.temperature),
        ("top-p", &rows.top_p),
        ("min-p", &rows.min_p),
    ];
    for (param, tensor) in floats {
        let Some(tensor) = tensor else { continue };
        check_row_shape(param, &tensor.shape(), batch)?;
        let dtype = tensor.dtype();
        if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
            return Err(SamplingError::PerRowDType {
                param,
                dtype,
                expected: "a float type",
            });
        }
        if *float_dtype.get_or_insert(dtype) != dtype {
            return Err(SamplingError::PerRowDType {
                param,
                dtype,
                expected: "the same float type as the other per-row parameters",
            });
        }
    }
    for (param, tensor) in [("top-k", &rows.top_k), ("seed", &rows.seed)] {
        let Some(tensor) = tensor else { continue };
        check_row_shape(param, &tensor.shape(), batch)?;
        if tensor.dtype() != int_dtype {
            return Err(SamplingError::PerRowDType {
                param,
                dtype: tensor.dtype(),
                expected: "the backend's integer type",
            });
        }
    }
    Ok(Rows { batch, vocab })
}

fn check_row_shape(
    param: &'static str,
    shape: &[usize],
    batch: usize,
) -> Result<(), SamplingError> {
    if shape != [batch] {
        return Err(SamplingError::PerRowShape {
            param,
            batch,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// The device kernel's own limits: f64 is refused (it ranks in f32), the device must support the
/// dtype, and every buffer must fit 32-bit indexing. The fast path's top-k follows
/// `BURN_TOPK_STRATEGY` as top-k calls do, so a name that is no strategy is refused here too.
pub(crate) fn check_kernel(
    dtype: DType,
    device_supports: impl FnOnce() -> bool,
    param_dtypes: &[DType],
    input_elements: usize,
    rows: Rows,
    top_k_strategy: Strategy,
) -> Result<(), SamplingError> {
    if let Err(TopKError::UnknownStrategy { name }) = top_k_strategy.with_env_override() {
        return Err(SamplingError::UnknownStrategy { name });
    }
    if dtype == DType::F64 || !device_supports() {
        return Err(SamplingError::UnsupportedDType {
            dtype,
            reason: "the device kernels take f32, f16 and bf16 where the device supports them",
        });
    }
    if let Some(&dtype) = param_dtypes.iter().find(|&&d| d == DType::F64) {
        return Err(SamplingError::PerRowDType {
            param: "float parameters",
            dtype,
            expected: "f32, f16 or bf16 on the device",
        });
    }
    let elements = input_elements.max(rows.batch * rows.vocab);
    let max = i32::MAX as usize;
    if elements > max {
        return Err(SamplingError::TooLarge { elements, max });
    }
    Ok(())
}
