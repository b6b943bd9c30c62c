//! The extension trait that gives Burn logits a `sample`, and the reusable [`Sampler`].

use super::backend::SamplingBackend;
use super::error::SamplingError;
use super::params::{FilterOutput, SamplingParams};
use burn::tensor::{Bool, Int, Tensor, TensorPrimitive};

/// Tokens `[batch]` and, per row, whether it could be sampled.
pub type TokensWithValidity<B> = (Tensor<B, 1, Int>, Tensor<B, 1, Bool>);

/// Sampling and filtering on `[batch, vocab]` logits (or probabilities).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use burn_topk::sampling::{SampleExt, SamplingParams};
///
/// let device = Default::default();
/// let logits = Tensor::<NdArray, 2>::from_floats([[1.0, 3.0, 2.0], [0.5, 0.1, 4.0]], &device);
/// let greedy = logits.clone().sample(&SamplingParams::greedy());
/// assert_eq!(greedy.into_data().to_vec::<i64>().unwrap(), vec![1, 2]);
/// let tokens = logits.clone().sample(&SamplingParams::new().top_k(2).top_p(0.9).seed(42));
/// assert_eq!(tokens.dims(), [2]);
/// let masked = logits.top_k_mask_logits(1);
/// assert_eq!(
///     masked.into_data().to_vec::<f32>().unwrap(),
///     vec![f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY, 4.0]
/// );
/// ```
pub trait SampleExt<B: SamplingBackend>: Sized {
    /// One token per row, drawn as [`SamplingParams`] describes, or an error for bad parameters.
    /// Rows that cannot be sampled (see [`try_sample_with_validity`](Self::try_sample_with_validity))
    /// give their argmax.
    fn try_sample(self, params: &SamplingParams<B>) -> Result<Tensor<B, 1, Int>, SamplingError>;

    /// Like [`try_sample`](Self::try_sample), panicking with the error's message.
    fn sample(self, params: &SamplingParams<B>) -> Tensor<B, 1, Int> {
        self.try_sample(params)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// The tokens and, per row, whether the row could be sampled. A row is invalid when it holds
    /// NaN or +inf, has no finite logit (all −inf), or (probabilities) a negative value or no
    /// positive one, or when its per-row parameters are out of their domain. An invalid row gets
    /// its argmax in the crate's order (NaN above +inf, ties to the smaller index: for an all −inf
    /// row, token 0) and `false`; it never affects the other rows.
    fn try_sample_with_validity(
        self,
        params: &SamplingParams<B>,
    ) -> Result<TokensWithValidity<B>, SamplingError>;

    /// The rows after the filters of `params` (temperature, top-k, top-p, min-p): masked logits
    /// or renormalised probabilities. Invalid rows come back unchanged.
    fn try_filter(
        self,
        params: &SamplingParams<B>,
        output: FilterOutput,
    ) -> Result<Tensor<B, 2>, SamplingError>;

    /// Logits with all but the top k of each row set to −inf (ties to the smaller index).
    fn try_top_k_mask_logits(self, k: usize) -> Result<Tensor<B, 2>, SamplingError> {
        self.try_filter(&SamplingParams::new().top_k(k), FilterOutput::MaskedLogits)
    }

    /// Like [`try_top_k_mask_logits`](Self::try_top_k_mask_logits), panicking on bad input.
    fn top_k_mask_logits(self, k: usize) -> Tensor<B, 2> {
        self.try_top_k_mask_logits(k)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Probabilities with all but the top k of each row set to 0, renormalised.
    fn try_top_k_renorm_probs(self, k: usize) -> Result<Tensor<B, 2>, SamplingError> {
        let params = SamplingParams::new().top_k(k).from_probabilities();
        self.try_filter(&params, FilterOutput::Probabilities)
    }

    /// Like [`try_top_k_renorm_probs`](Self::try_top_k_renorm_probs), panicking on bad input.
    fn top_k_renorm_probs(self, k: usize) -> Tensor<B, 2> {
        self.try_top_k_renorm_probs(k)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Probabilities outside each row's top-p nucleus set to 0, renormalised.
    fn try_top_p_renorm_probs(self, p: f32) -> Result<Tensor<B, 2>, SamplingError> {
        let params = SamplingParams::new().top_p(p).from_probabilities();
        self.try_filter(&params, FilterOutput::Probabilities)
    }

    /// Like [`try_top_p_renorm_probs`](Self::try_top_p_renorm_probs), panicking on bad input.
    fn top_p_renorm_probs(self, p: f32) -> Tensor<B, 2> {
        self.try_top_p_renorm_probs(p)
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

impl<B: SamplingBackend> SampleExt<B> for Tensor<B, 2> {
    fn try_sample(self, params: &SamplingParams<B>) -> Result<Tensor<B, 1, Int>, SamplingError> {
        let (tokens, _) = B::sample(
            self.into_primitive().tensor(),
            params.row_tensors(),
            params.scalars(),
        )?;
        Ok(Tensor::from_primitive(tokens))
    }

    fn try_sample_with_validity(
        self,
        params: &SamplingParams<B>,
    ) -> Result<TokensWithValidity<B>, SamplingError> {
        let (tokens, valid) = B::sample(
            self.into_primitive().tensor(),
            params.row_tensors(),
            params.scalars(),
        )?;
        let valid = Tensor::<B, 1, Int>::from_primitive(valid).equal_elem(1);
        Ok((Tensor::from_primitive(tokens), valid))
    }

    fn try_filter(
        self,
        params: &SamplingParams<B>,
        output: FilterOutput,
    ) -> Result<Tensor<B, 2>, SamplingError> {
        let filtered = B::filter(
            self.into_primitive().tensor(),
            params.row_tensors(),
            params.scalars(),
            output,
        )?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(filtered)))
    }
}

/// Sampling parameters plus the decode step: each call uses the current step as the generator's
/// offset, then advances it, so a generation loop draws fresh numbers at every step and replays
/// exactly from the same seed.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use burn_topk::sampling::{Sampler, SamplingParams};
///
/// let device = Default::default();
/// let mut sampler = Sampler::new(SamplingParams::<NdArray>::new().top_p(0.9).seed(1));
/// let logits = Tensor::<NdArray, 2>::from_floats([[0.0, 0.0, 0.0, 0.0]], &device);
/// let first = sampler.sample(logits.clone());
/// assert_eq!(sampler.step(), 1);
/// let mut replay = Sampler::new(SamplingParams::<NdArray>::new().top_p(0.9).seed(1));
/// assert_eq!(
///     replay.sample(logits).into_data().to_vec::<i64>().unwrap(),
///     first.into_data().to_vec::<i64>().unwrap()
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Sampler<B: SamplingBackend> {
    params: SamplingParams<B>,
    step: u64,
}

impl<B: SamplingBackend> Sampler<B> {
    /// A sampler at step 0 (the generator's offset is `params`' offset plus the step).
    pub fn new(params: SamplingParams<B>) -> Self {
        Self { params, step: 0 }
    }

    /// The next token of every row, then the step advances. Errors leave the step unchanged.
    pub fn try_sample(&mut self, logits: Tensor<B, 2>) -> Result<Tensor<B, 1, Int>, SamplingError> {
        let offset = self.params.step_offset().wrapping_add(self.step);
        let tokens = logits.try_sample_with_offset(&self.params, offset)?;
        self.step += 1;
        Ok(tokens)
    }

    /// Like [`try_sample`](Self::try_sample), panicking with the error's message.
    pub fn sample(&mut self, logits: Tensor<B, 2>) -> Tensor<B, 1, Int> {
        self.try_sample(logits)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// How many calls have sampled so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The parameters.
    pub fn params(&self) -> &SamplingParams<B> {
        &self.params
    }
}

trait WithOffset<B: SamplingBackend> {
    fn try_sample_with_offset(
        self,
        params: &SamplingParams<B>,
        offset: u64,
    ) -> Result<Tensor<B, 1, Int>, SamplingError>;
}

impl<B: SamplingBackend> WithOffset<B> for Tensor<B, 2> {
    fn try_sample_with_offset(
        self,
        params: &SamplingParams<B>,
        offset: u64,
    ) -> Result<Tensor<B, 1, Int>, SamplingError> {
        let mut scalars = params.scalars();
        scalars.offset = offset;
        let (tokens, _) = B::sample(
            self.into_primitive().tensor(),
            params.row_tensors(),
            scalars,
        )?;
        Ok(Tensor::from_primitive(tokens))
    }
}
