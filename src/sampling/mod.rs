//! Token sampling for Burn language models: temperature, top-k, top-p, min-p and joint filters,
//! on the device, seeded and reproducible.
//!
//! Logits `[batch, vocab]` in, one token id per row out, with no read-back to the host: on
//! CubeCL backends the whole call is one kernel launch (see [`crate::kernels::sampling`] for the
//! algorithm); other backends (NdArray) use the host [`fallback`]. The exact semantics are on
//! [`SamplingParams`]; the definition every backend is tested against is [`reference`].
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use burn_topk::sampling::{SampleExt, Sampler, SamplingParams};
//!
//! let device = Default::default();
//! let logits = Tensor::<NdArray, 2>::from_floats([[2.0, 1.0, 0.5, -1.0]], &device);
//! // One call, or a sampler that advances the step between decode steps.
//! let token = logits.clone().sample(&SamplingParams::new().temperature(0.7).top_k(3).seed(5));
//! let mut sampler = Sampler::new(SamplingParams::new().top_p(0.9).min_p(0.05));
//! for _ in 0..3 {
//!     let next = sampler.sample(logits.clone());
//!     assert!(next.into_data().to_vec::<i64>().unwrap()[0] < 4);
//! }
//! # let _ = token;
//! ```
//!
//! ## Precision
//! The device kernels keep probabilities in 64-bit fixed point, each weight rounded to a multiple
//! of 2^-31 of the row's largest probability, and draw with a 32-bit random word: a token's
//! probability is off by at most about 2^-31 of the largest one (tokens below 2^-32 of it are
//! never drawn), and top-p targets are exact on those weights. Thresholds that fall within float
//! rounding of a boundary (a top-p prefix mass within ~1e-7 of p, a probability within ~1e-7 of
//! `min_p` × the largest) may resolve either way.
//!
//! Tokens for a given seed are reproducible run to run on a device and across devices up to
//! float rounding of `exp`; the host fallback draws from the same random word in the same order,
//! so it agrees except at those boundaries.

mod backend;
mod error;
mod ext;
pub mod fallback;
mod params;
pub mod philox;
pub mod reference;

pub use backend::SamplingBackend;
pub use error::SamplingError;
pub use ext::{SampleExt, Sampler, TokensWithValidity};
pub use params::{
    DEFAULT_SEED, FilterOrder, FilterOutput, RowTensors, SamplingParams, ScalarParams, Source,
};
