//! # burn-topk
//!
//! Fast, deterministic top-k for [Burn](https://burn.dev), written once in CubeCL and run on the
//! CUDA and wgpu runtimes, with a correct host fallback on Burn's CPU backend.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use burn_topk::TopKExt;
//!
//! let device = Default::default();
//! let logits = Tensor::<NdArray, 2>::from_floats([[1.0, 4.0, 2.0, 4.0]], &device);
//! let (values, indices) = logits.top_k(3, 1);
//! assert_eq!(values.into_data().to_vec::<f32>().unwrap(), vec![4.0, 4.0, 2.0]);
//! assert_eq!(indices.into_data().to_vec::<i64>().unwrap(), vec![1, 3, 2]);
//! ```
//!
//! ## Semantics (identical on every backend)
//! - The k largest values along `dim`, sorted descending; with
//!   [`TopKOptions::smallest`] the k smallest, sorted ascending.
//! - Equal values are ordered by the smaller index first: results are deterministic, and a row
//!   gives the same answer alone or inside a batch.
//! - NaN ranks above +inf (so it is picked first by a largest top-k and last by a smallest one);
//!   −0.0 equals +0.0. Values come back bit for bit as they were in the input.
//! - 1 ≤ k ≤ the length of `dim`; any rank ≥ 1, any `dim`, any strides (transposed views
//!   included). The results are contiguous, of the input's shape with `dim` of length `k`;
//!   indices have the backend's integer type.
//! - f32 everywhere; f16 and bf16 where the device supports them (not converted to f32 in
//!   memory); f64 on the host fallback only.
//! - Bad input returns a [`TopKError`] from `try_top_k` (and panics with its message from
//!   `top_k`): k = 0, k > length, `dim` ≥ rank, an empty `dim`, an unsupported dtype, a tensor
//!   past the device kernels' 32-bit addressing. Other dimensions may be empty: the result is
//!   then empty too.
//!
//! The exact definition is [`reference`](mod@reference), the CPU code every kernel is tested against.
//!
//! [`Strategy::Auto`] (the default) autotunes the algorithm per input key: see [`autotune`].
//!
//! Token sampling (temperature, top-k, top-p, min-p, seeded, on the device) is in [`sampling`].

#![warn(missing_docs)]

pub mod autotune;
pub mod backend;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod device;
pub mod error;
pub mod fallback;
// `#[cube]` generates public expansion items that take no doc comments.
#[allow(missing_docs)]
pub mod kernels;
mod launch;
pub mod options;
pub mod reference;
pub mod sampling;
pub mod tensor_ext;

pub use backend::TopKBackend;
pub use error::TopKError;
pub use options::{Strategy, TopKOptions};
pub use tensor_ext::TopKExt;

/// The README's code, compiled and run as a doctest so its snippet keeps working.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
