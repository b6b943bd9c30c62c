//! What a caller can choose: the direction of the selection, the algorithm and its tuning.

use crate::error::TopKError;

/// The algorithm that computes a top-k on CubeCL backends.
///
/// Every strategy but [`BurnBuiltin`](Strategy::BurnBuiltin) gives exactly the same result (see
/// the crate docs for the semantics); they differ only in speed. Backends without CubeCL ignore
/// the strategy and use the host fallback.
///
/// The environment variable `BURN_TOPK_STRATEGY` (`auto`, `heuristic`, `streaming`, `two-stage`,
/// `radix` or `burn`) replaces [`Auto`](Strategy::Auto) for benchmarks and tests; explicit
/// strategies are never overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// CubeCL's autotuner picks the fastest strategy and parameters for the input's key on the
    /// device, timing the candidates on the first call with a new key and caching the winner on
    /// disk (see [`crate::autotune`]). Backends without CubeCL use the host fallback.
    #[default]
    Auto,
    /// A fixed rule, no timing: [`RadixSelect`](Strategy::RadixSelect) when k is too large for
    /// the streaming buffer (more than [`STREAMING_MAX_K`]); when the rows are too few to fill
    /// the device (at most a quarter of its processors) and long enough to split (at least
    /// 8 × max(4k, 4096)), [`RadixSelect`](Strategy::RadixSelect) from k = 256 where it runs by
    /// one digit (tiled or in one launch) and [`TwoStage`](Strategy::TwoStage) below; else
    /// [`RadixSelect`](Strategy::RadixSelect) from k = 2048 where it runs by one digit, and
    /// [`Streaming`](Strategy::Streaming) below. What `Auto` falls back to when a cached choice
    /// cannot run.
    Heuristic,
    /// One pass over each row with one cube per row: a candidate buffer in shared memory and a
    /// running threshold that rejects most elements with one compare. One launch per call. For
    /// k up to [`STREAMING_MAX_K`]; a larger k runs [`RadixSelect`](Strategy::RadixSelect).
    Streaming(StreamingParams),
    /// Rows split into tiles, several cubes per row each finding its tile's top-k, then a second
    /// launch merging a row's candidates. For long rows at small batch. Same k limit as
    /// [`Streaming`](Strategy::Streaming), with the same fallback.
    TwoStage(TwoStageParams),
    /// Radix select on order-preserving integer keys, valid for any `k` up to the row length.
    /// By one digit where a candidate buffer of 2k entries fits a cube: the keys' top bits are
    /// counted, the entries at or above the digit that holds the k-th are passed to a list, and
    /// the list's top-k is placed without a sort (by bucket in one cube, or across cubes by
    /// counting the entries that beat each one, when that costs little). Few rows of 16k–32k
    /// elements (k up to a 16th of them) do all of it in one launch, one cube per row; longer or
    /// more rows, up to 2²⁵ elements in all, are cut into tiles over the whole device (a fill of
    /// the counters and three launches). Otherwise one cube per row finds the k-th key digit by
    /// digit, gathers everything above it plus the first ties by index, and sorts the k results
    /// (one launch).
    RadixSelect(RadixSelectParams),
    /// Burn's own `sort_with_indices` and a slice, for comparison. Burn's sort is not stable, so
    /// equal values may come in another order than the other strategies give.
    BurnBuiltin,
}

/// The largest k the streaming and two-stage kernels take: their candidate buffer holds at
/// least 2k entries in shared memory (a device with less shared memory gets a smaller limit:
/// 32 KiB holds k up to about 1400), and one cube sorts the k results.
pub const STREAMING_MAX_K: usize = 4096;

/// The names `BURN_TOPK_STRATEGY` takes (see [`Strategy::from_name`]), as error messages list them.
pub const STRATEGY_NAMES: &str = "auto, heuristic, streaming, two-stage, radix, burn";

impl Strategy {
    /// [`Strategy::Streaming`] with its parameters chosen per call.
    pub fn streaming() -> Self {
        Self::Streaming(StreamingParams::default())
    }

    /// [`Strategy::TwoStage`] with its parameters chosen per call.
    pub fn two_stage() -> Self {
        Self::TwoStage(TwoStageParams::default())
    }

    /// [`Strategy::RadixSelect`] with its parameters chosen per call.
    pub fn radix_select() -> Self {
        Self::RadixSelect(RadixSelectParams::default())
    }

    /// Parses a `BURN_TOPK_STRATEGY` value (one of [`STRATEGY_NAMES`]).
    pub fn from_name(name: &str) -> Result<Self, TopKError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "heuristic" => Ok(Self::Heuristic),
            "streaming" => Ok(Self::streaming()),
            "two-stage" | "two_stage" => Ok(Self::two_stage()),
            "radix" | "radix-select" => Ok(Self::radix_select()),
            "burn" => Ok(Self::BurnBuiltin),
            _ => Err(TopKError::UnknownStrategy {
                name: name.to_string(),
            }),
        }
    }

    /// `Auto` replaced by `BURN_TOPK_STRATEGY` when that is set; other strategies unchanged.
    pub(crate) fn with_env_override(self) -> Result<Self, TopKError> {
        if self != Self::Auto {
            return Ok(self);
        }
        match std::env::var("BURN_TOPK_STRATEGY") {
            Ok(name) => Self::from_name(&name),
            Err(_) => Ok(Self::Auto),
        }
    }
}

/// Tuning of [`Strategy::Streaming`]; `None` lets the crate choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamingParams {
    /// Planes per cube: the cube has `planes_per_cube × plane size` units, at least 256 and at
    /// most the device's limit.
    pub planes_per_cube: Option<u32>,
    /// Vector loads each unit issues before using any (more loads in flight per unit); at most 32
    /// elements per unit per batch.
    pub vectors_per_unit: Option<u32>,
}

/// Tuning of [`Strategy::TwoStage`]; `None` lets the crate choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwoStageParams {
    /// Elements per tile in stage 1 (rounded up to whole batches of the cube).
    pub tile_width: Option<usize>,
    /// Planes per cube in stage 1, as in [`StreamingParams::planes_per_cube`].
    pub planes_per_cube: Option<u32>,
}

/// Tuning of [`Strategy::RadixSelect`]; `None` lets the crate choose, by the shape, among its
/// three forms: one cube per row pass by pass, one cube per row in one launch, or tiled.
///
/// ```
/// use burn_topk::options::RadixSelectParams;
/// use burn_topk::{Strategy, TopKOptions};
/// // The tiled form, tiles of 16k elements, counting the keys' top 10 bits.
/// let tiled = Strategy::RadixSelect(RadixSelectParams {
///     tile_width: Some(16 * 1024),
///     digit_bits: Some(10),
///     planes_per_cube: None,
/// });
/// let options = TopKOptions::largest().with_strategy(tiled);
/// assert_ne!(options.strategy, Strategy::radix_select());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RadixSelectParams {
    /// Bits of the digit each histogram counts, from [`RADIX_DIGIT_BITS_MIN`] to
    /// [`RADIX_DIGIT_BITS_MAX`]. Tiled, the one digit is the keys' top `digit_bits` bits (12 by
    /// default): fewer make a smaller histogram but pass more entries to the list. Pass by pass,
    /// the k-th key is found ⌈32 / `digit_bits`⌉ digits at a time (8 by default): more bits,
    /// fewer passes over the row. The one-launch form counts 11 bits (its candidate buffer's
    /// histogram), so it runs only where this is `None` or 11.
    pub digit_bits: Option<u32>,
    /// Elements per tile: asks for the tiled form (a histogram over tiles of the row, a filter,
    /// a select), rounded up to whole vectors; an error where that form cannot run (its last
    /// launch needs a candidate buffer of 2k entries in a cube). `None`: tiled only for rows of
    /// 16k elements or more that the one-launch form does not take, in tiles of about two cubes
    /// per processor.
    pub tile_width: Option<usize>,
    /// Planes per cube of the kernels that read the rows. Pass by pass, any count up to the
    /// device's limit (256 units by default); tiled, a power-of-two count of units from 64 to
    /// the device's limit and the histogram's bins (512 units by default, where the device
    /// allows); in one launch, as [`StreamingParams::planes_per_cube`].
    pub planes_per_cube: Option<u32>,
}

/// The fewest bits [`RadixSelectParams::digit_bits`] takes.
pub const RADIX_DIGIT_BITS_MIN: u32 = 8;

/// The most bits [`RadixSelectParams::digit_bits`] takes: a 4096-bin histogram, 16 KiB of shared
/// memory.
pub const RADIX_DIGIT_BITS_MAX: u32 = 12;

/// Options of [`TopKExt::try_top_k_with`](crate::TopKExt::try_top_k_with).
///
/// ```
/// use burn_topk::{Strategy, TopKOptions};
/// let smallest = TopKOptions::smallest().with_strategy(Strategy::radix_select());
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
