//! What a caller can choose: the direction of the selection and the algorithm.

/// The algorithm that computes a top-k on CubeCL backends.
///
/// Every strategy gives exactly the same result (see the crate docs for the semantics); they differ
/// only in speed. Backends without CubeCL ignore the strategy and use the host fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Let the crate choose. Today this is [`Strategy::RadixSelect`], the one algorithm valid for every k.
    #[default]
    Auto,
    /// Radix select on order-preserving integer keys: one cube per row finds the k-th key digit by
    /// digit, gathers everything above it plus the first ties by index, and sorts the k results.
    /// Valid for any `k` up to the row length.
    RadixSelect,
}

/// Options of [`TopKExt::try_top_k_with`](crate::TopKExt::try_top_k_with).
///
/// ```
/// use burn_topk::{Strategy, TopKOptions};
/// let smallest = TopKOptions::smallest().with_strategy(Strategy::RadixSelect);
/// assert!(!smallest.largest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKOptions {
    /// `true` (the default): the k largest values, sorted descending.
    /// `false`: the k smallest values, sorted ascending.
    pub largest: bool,
    /// The algorithm to run on CubeCL backends.
    pub strategy: Strategy,
}

impl Default for TopKOptions {
    fn default() -> Self {
        Self::largest()
    }
}

impl TopKOptions {
    /// The k largest values, sorted descending.
    pub fn largest() -> Self {
        Self {
            largest: true,
            strategy: Strategy::Auto,
        }
    }

    /// The k smallest values, sorted ascending.
    pub fn smallest() -> Self {
        Self {
            largest: false,
            strategy: Strategy::Auto,
        }
    }

    /// The same options with another strategy.
    pub fn with_strategy(self, strategy: Strategy) -> Self {
        Self { strategy, ..self }
    }
}
