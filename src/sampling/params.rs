//! What a caller chooses: [`SamplingParams`], and the primitive forms the backends receive.

use crate::options::Strategy;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{Int, Tensor};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0;

/// How top-k and top-p combine when both are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterOrder {
    /// Top-k first, then top-p on the top-k survivors renormalised (the default).
    #[default]
    Sequential,
    /// Both thresholds on the unrenormalised distribution: keep the tokens that are in the top k
    /// *and* in the smallest prefix whose probability reaches p (FlashInfer's "joint" order).
    Joint,
}

/// What the input rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Logits: probabilities are `softmax(logits / temperature)` (the default).
    #[default]
    Logits,
    /// Probabilities (non-negative weights, normalised by their sum); temperature must stay 1.
    Probabilities,
}

/// What a filter operation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOutput {
    /// The input logits, with every filtered-out element set to −inf.
    MaskedLogits,
    /// The probabilities of the survivors renormalised to sum to 1, 0 elsewhere.
    Probabilities,
}

/// A parameter given once for the batch or per row.
#[derive(Debug, Clone)]
enum Param<T, R> {
    Batch(T),
    PerRow(R),
}

impl<T: Copy, R: Clone> Param<T, R> {
    fn batch(&self, default: T) -> T {
        match self {
            Param::Batch(value) => *value,
            Param::PerRow(_) => default,
        }
    }

    fn per_row(&self) -> Option<R> {
        match self {
            Param::Batch(_) => None,
            Param::PerRow(tensor) => Some(tensor.clone()),
        }
    }
}

/// How to turn logits (or probabilities) into one token per row.
///
/// Every parameter is either one value for the batch (`temperature(0.7)`) or a `[batch]` tensor
/// (`temperature_per_row(t)`). Defaults: temperature 1, no top-k, top-p 1, min-p 0, seed
/// [`DEFAULT_SEED`], step offset 0, [`FilterOrder::Sequential`], [`Source::Logits`].
///
/// Semantics, in order (identical on every backend):
/// 1. probabilities are `softmax(logits / temperature)`; temperature 0 means greedy: the argmax,
///    ties to the smaller index;
/// 2. top-k keeps the k most probable (ties to the smaller index);
/// 3. top-p keeps the smallest prefix of the survivors, sorted by probability descending (ties by
///    smaller index), whose renormalised mass reaches p;
/// 4. min-p keeps tokens whose probability is at least `min_p` × the largest probability;
/// 5. the token is drawn from the survivors, renormalised, with the counter-based generator
///    described in [`philox`](crate::sampling::philox), keyed by (seed, row, step offset).
///
/// Between decode steps, advance the offset ([`offset`](Self::offset), [`next_step`](Self::next_step))
/// or use a [`Sampler`](crate::sampling::Sampler), which does it for you; the same seed and
/// offset give the same tokens on every run.
///
/// Per-row values follow the conventions of LLM servers: a per-row k ≤ 0 (or ≥ the vocabulary)
/// means no top-k for that row; per-row values outside their domain (temperature negative,
/// infinite or NaN, p outside (0, 1], min-p outside [0, 1]) make that row *invalid* (see
/// [`SampleExt::try_sample_with_validity`](crate::sampling::SampleExt::try_sample_with_validity)),
/// and never affect the other rows. Batch values outside their domain are errors.
///
/// ```
/// use burn::backend::NdArray;
/// use burn_topk::sampling::SamplingParams;
///
/// let params = SamplingParams::<NdArray>::new().temperature(0.8).top_k(50).top_p(0.95).seed(7);
/// let next = params.clone().next_step();
/// assert_eq!(next.step_offset(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct SamplingParams<B: Backend> {
    temperature: Param<f32, Tensor<B, 1>>,
    top_k: Param<Option<usize>, Tensor<B, 1, Int>>,
    top_p: Param<f32, Tensor<B, 1>>,
    min_p: Param<f32, Tensor<B, 1>>,
    seed: Param<u64, Tensor<B, 1, Int>>,
    offset: u64,
    order: FilterOrder,
    source: Source,
    top_k_strategy: Strategy,
}

impl<B: Backend> Default for SamplingParams<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> SamplingParams<B> {
    /// Plain sampling from `softmax(logits)` with the default seed.
    pub fn new() -> Self {
        Self {
            temperature: Param::Batch(1.0),
            top_k: Param::Batch(None),
            top_p: Param::Batch(1.0),
            min_p: Param::Batch(0.0),
            seed: Param::Batch(DEFAULT_SEED),
            offset: 0,
            order: FilterOrder::Sequential,
            source: Source::Logits,
            top_k_strategy: Strategy::Auto,
        }
    }

    /// Greedy decoding: temperature 0.
    pub fn greedy() -> Self {
        Self::new().temperature(0.0)
    }

    /// The temperature for every row: ≥ 0, 0 meaning greedy.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Param::Batch(temperature);
        self
    }

    /// One temperature per row, a `[batch]` float tensor.
    pub fn temperature_per_row(mut self, temperatures: Tensor<B, 1>) -> Self {
        self.temperature = Param::PerRow(temperatures);
        self
    }

    /// Keep the k most probable tokens of every row (k ≥ 1; k ≥ the vocabulary keeps all).
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = Param::Batch(Some(k));
        self
    }

    /// One k per row, a `[batch]` int tensor; k ≤ 0 means no top-k for that row.
    pub fn top_k_per_row(mut self, ks: Tensor<B, 1, Int>) -> Self {
        self.top_k = Param::PerRow(ks);
        self
    }

    /// Nucleus sampling: p in (0, 1]; 1 keeps all.
    pub fn top_p(mut self, p: f32) -> Self {
        self.top_p = Param::Batch(p);
        self
    }

    /// One p per row, a `[batch]` float tensor.
    pub fn top_p_per_row(mut self, ps: Tensor<B, 1>) -> Self {
        self.top_p = Param::PerRow(ps);
        self
    }

    /// Min-p: keep tokens with probability ≥ `min_p` × the largest; in [0, 1], 0 keeps all.
    pub fn min_p(mut self, min_p: f32) -> Self {
        self.min_p = Param::Batch(min_p);
        self
    }

    /// One min-p per row, a `[batch]` float tensor.
    pub fn min_p_per_row(mut self, min_ps: Tensor<B, 1>) -> Self {
        self.min_p = Param::PerRow(min_ps);
        self
    }

    /// The seed of the whole batch (rows get independent streams).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Param::Batch(seed);
        self
    }

    /// One seed per row, a `[batch]` int tensor (its low 32 bits are used): a row's token then
    /// depends only on its logits, its parameters, its seed and the step offset.
    pub fn seed_per_row(mut self, seeds: Tensor<B, 1, Int>) -> Self {
        self.seed = Param::PerRow(seeds);
        self
    }

    /// The step offset of the generator: use the decode step, so each step draws fresh numbers.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// The same parameters one decode step later (offset + 1, wrapping).
    pub fn next_step(self) -> Self {
        let offset = self.offset.wrapping_add(1);
        self.offset(offset)
    }

    /// The current step offset.
    pub fn step_offset(&self) -> u64 {
        self.offset
    }

    /// How top-k and top-p combine.
    pub fn order(mut self, order: FilterOrder) -> Self {
        self.order = order;
        self
    }

    /// Shorthand for [`FilterOrder::Joint`].
    pub fn joint(self) -> Self {
        self.order(FilterOrder::Joint)
    }

    /// What the input rows hold.
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Shorthand for [`Source::Probabilities`]: sample from probabilities instead of logits.
    pub fn from_probabilities(self) -> Self {
        self.source(Source::Probabilities)
    }

    /// The top-k strategy of the fast path that a batch top-k of at most
    /// [`STREAMING_MAX_K`](crate::options::STREAMING_MAX_K) takes on CubeCL backends (default
    /// [`Strategy::Auto`]): its top-k picks each row's candidates, and with the streaming kernel
    /// the sampling runs in the same launch. For benchmarks and tests: the tokens do not depend
    /// on it.
    pub fn top_k_strategy(mut self, strategy: Strategy) -> Self {
        self.top_k_strategy = strategy;
        self
    }

    /// The batch-wide values (per-row parameters show their defaults here).
    pub fn scalars(&self) -> ScalarParams {
        ScalarParams {
            temperature: self.temperature.batch(1.0),
            top_k: self.top_k.batch(None),
            top_p: self.top_p.batch(1.0),
            min_p: self.min_p.batch(0.0),
            seed: self.seed.batch(DEFAULT_SEED),
            offset: self.offset,
            order: self.order,
            source: self.source,
            top_k_strategy: self.top_k_strategy,
            per_row_temperature: matches!(self.temperature, Param::PerRow(_)),
        }
    }

    /// The per-row tensors as backend primitives.
    pub fn row_tensors(&self) -> RowTensors<B> {
        RowTensors {
            temperature: self.temperature.per_row().map(float_primitive),
            top_k: self.top_k.per_row().map(|t| t.into_primitive()),
            top_p: self.top_p.per_row().map(float_primitive),
            min_p: self.min_p.per_row().map(float_primitive),
            seed: self.seed.per_row().map(|t| t.into_primitive()),
        }
    }
}

fn float_primitive<B: Backend>(tensor: Tensor<B, 1>) -> FloatTensor<B> {
    tensor.into_primitive().tensor()
}

/// The batch-wide parameters, as the backends receive them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarParams {
    /// Temperature (ignored where a per-row tensor is given).
    pub temperature: f32,
    /// Top-k, `None` for none.
    pub top_k: Option<usize>,
    /// Top-p; 1 for none.
    pub top_p: f32,
    /// Min-p; 0 for none.
    pub min_p: f32,
    /// Seed of the batch (ignored with per-row seeds).
    pub seed: u64,
    /// Step offset of the generator.
    pub offset: u64,
    /// How top-k and top-p combine.
    pub order: FilterOrder,
    /// Logits or probabilities.
    pub source: Source,
    /// The fast path's top-k strategy.
    pub top_k_strategy: Strategy,
    /// Whether the temperature is given per row.
    pub per_row_temperature: bool,
}

/// The per-row parameter tensors (`[batch]` each), as backend primitives.
#[derive(Debug, Clone)]
pub struct RowTensors<B: Backend> {
    /// Per-row temperatures.
    pub temperature: Option<FloatTensor<B>>,
    /// Per-row k.
    pub top_k: Option<IntTensor<B>>,
    /// Per-row p.
    pub top_p: Option<FloatTensor<B>>,
    /// Per-row min-p.
    pub min_p: Option<FloatTensor<B>>,
    /// Per-row seeds.
    pub seed: Option<IntTensor<B>>,
}
