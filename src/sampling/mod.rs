//! Token sampling for Burn language models: temperature, top-k, top-p, min-p and joint filters,
//! on the device, seeded and reproducible.
//!
//! Logits `[batch, vocab]` in, one token id per row out, with no read-back to the host. Other
//! backends (NdArray) use the host [`fallback`]. The exact semantics are on [`SamplingParams`]; the
//! definition every backend is tested against is [`reference`](mod@reference).
//!
//! ## Launches on CubeCL backends
//! Three device paths, which give the same token for the same seed (tests compare them row by row):
//!
//! | mode | path | launches |
//! |---|---|---|
//! | batch top-k with k (cut to the vocabulary) ≤ [`STREAMING_MAX_K`](crate::options::STREAMING_MAX_K), alone or with temperature, top-p (sequential or joint), min-p, per-row temperature / p / min-p / seeds | top-k, then candidates | 1 when the top-k is the streaming kernel and neither joint top-p nor probabilities need the whole row again (the sampling runs in the same launch), else 2 (3 when the top-k is two-stage) |
//! | greedy (batch temperature 0, logits, nothing per row) | the greedy kernel (the argmax) | 1 |
//! | greedy with per-row parameters | the one-launch kernel's first pass (the argmax) | 1 |
//! | no top-k (plain, top-p alone, min-p alone), per-row k tensor, k > 4096, the filter ops | one-launch kernel | 1 |
//!
//! - **Top-k, then candidates** (the fast path): the crate's own top-k
//!   ([`Strategy::Auto`](crate::Strategy::Auto), autotuned; the first call with a new shape tunes
//!   it) reads each row once with vector loads and writes the k best, sorted, ties to the smaller
//!   index; [`crate::kernels::sampling_candidates`] then applies every filter to the `[batch, k]`
//!   candidates and draws, one cube per row. Joint top-p (on the unrenormalised distribution) and
//!   sampling from probabilities (which must check the row for negative values) read the row once
//!   more inside that second launch, with vector loads. When the top-k is the streaming kernel
//!   (the autotuner's pick for the shape, once tuned, or an explicit
//!   [`SamplingParams::top_k_strategy`]) and no second read is needed, each cube samples its row
//!   from the candidates in its own shared memory right after finding them, in the same launch
//!   (the candidates are never written out); the tokens are the same.
//! - **Greedy kernel** ([`crate::kernels::greedy`]): one cube per row reads the row once with
//!   vector loads, four in flight per unit, and keeps the largest key and its index; the same
//!   token and validity as the one-launch kernel's first pass, which greedy rows take when some
//!   parameter is given per row (a row's own parameters may make it invalid).
//! - **One-launch kernel** ([`crate::kernels::sampling`]): one cube per row does everything on the
//!   whole row with radix-select passes, each unit keeping 8–16 loads in flight; while the rows
//!   are fewer than the processors the cube is as large as the device allows (1024 units on
//!   NVIDIA), which does not change the tokens. A per-row k tensor takes it because the largest k
//!   of the batch is not known on the host without a read-back.
//!
//! Each CubeCL launch costs about 10 µs of host time on CUDA, which bounds the call rate at
//! small batch.
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
