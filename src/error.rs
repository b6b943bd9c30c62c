//! The typed errors of this crate. Every error is found on the host, before any kernel launch.

use burn::tensor::DType;

/// Why a top-k call was refused. Checked on the host before anything is launched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopKError {
    /// `k` was zero: top-k selects at least one element.
    #[error("top-k: k must be at least 1, got k = 0")]
    KIsZero,
    /// `k` was larger than the length of the selected dimension.
    #[error("top-k: k = {k} is larger than the length {len} of dimension {dim}")]
    KTooLarge {
        /// The requested k.
        k: usize,
        /// The length of `dim`.
        len: usize,
        /// The selected dimension.
        dim: usize,
    },
    /// `dim` was not a dimension of the tensor.
    #[error("top-k: dimension {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// The selected dimension.
        dim: usize,
        /// The rank of the tensor.
        rank: usize,
    },
    /// The selected dimension has length zero, so there is nothing to select.
    #[error("top-k: dimension {dim} is empty (shape {shape:?})")]
    EmptyDim {
        /// The selected dimension.
        dim: usize,
        /// The shape of the tensor.
        shape: Vec<usize>,
    },
    /// The element type is not supported by this backend on this device.
    #[error("top-k: dtype {dtype:?} is not supported on this device ({reason})")]
    UnsupportedDType {
        /// The tensor's element type.
        dtype: DType,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A buffer the device kernels would address has more elements than their 32-bit indexing reaches.
    #[error(
        "top-k: {elements} elements exceed the device kernels' 32-bit addressing (at most {max})"
    )]
    TooLarge {
        /// Elements of the largest buffer the launch would address.
        elements: usize,
        /// The largest supported count.
        max: usize,
    },
    /// `BURN_TOPK_STRATEGY` named no strategy.
    #[error(
        "top-k: BURN_TOPK_STRATEGY = {name:?} is not one of {}",
        crate::options::STRATEGY_NAMES
    )]
    UnknownStrategy {
        /// The value found.
        name: String,
    },
    /// Explicit tuning parameters the device cannot run.
    #[error("top-k: invalid strategy parameters: {reason}")]
    InvalidParams {
        /// What is wrong with them.
        reason: String,
    },
}

/// Where the selection runs: the tensor seen as `rows` independent rows of `len` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowLayout {
    /// Number of rows (product of every dimension but `dim`).
    pub rows: usize,
    /// Length of `dim`.
    pub len: usize,
    /// Product of the dimensions after `dim`: the output stride of `dim` in a contiguous result.
    pub inner: usize,
}

/// Checks `k` and `dim` against `shape`: the part of validation that does not depend on the backend.
pub(crate) fn check_shape(shape: &[usize], k: usize, dim: usize) -> Result<RowLayout, TopKError> {
    let rank = shape.len();
    if dim >= rank {
        return Err(TopKError::DimOutOfRange { dim, rank });
    }
    let len = shape[dim];
    if len == 0 {
        return Err(TopKError::EmptyDim {
            dim,
            shape: shape.to_vec(),
        });
    }
    if k == 0 {
        return Err(TopKError::KIsZero);
    }
    if k > len {
        return Err(TopKError::KTooLarge { k, len, dim });
    }
    let inner = shape[dim + 1..].iter().product();
    let rows = shape.iter().product::<usize>() / len;
    Ok(RowLayout { rows, len, inner })
}

/// Checks that the float dtype is one a top-k can rank exactly.
pub(crate) fn check_float_dtype(dtype: DType, supported_on_device: bool) -> Result<(), TopKError> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 | DType::F64 | DType::Flex32 => {}
        _ => {
            return Err(TopKError::UnsupportedDType {
                dtype,
                reason: "top-k takes float tensors (f32, f16, bf16)",
            });
        }
    }
    if !supported_on_device {
        return Err(TopKError::UnsupportedDType {
            dtype,
            reason: "the device does not support this element type",
        });
    }
    Ok(())
}
