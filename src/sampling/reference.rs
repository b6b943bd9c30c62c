//! The CPU reference for sampling: the exact filtered distribution of one row, in f64.
//!
//! This is the definition the device kernels are tested against (exactly for which tokens
//! survive, statistically for the draws), and what the host fallback samples from.

use super::params::{FilterOrder, Source};
use crate::reference::rank_order;

/// The parameters of one row, as the kernels see them after per-row values are applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSettings {
    /// Temperature, ≥ 0 (0 is greedy). Ignored for probabilities.
    pub temperature: f32,
    /// Top-k; `None` (or k ≥ the row length) keeps all.
    pub top_k: Option<usize>,
    /// Top-p in (0, 1]; 1 keeps all.
    pub top_p: f32,
    /// Min-p in [0, 1]; 0 keeps all.
    pub min_p: f32,
    /// How top-k and top-p combine.
    pub order: FilterOrder,
    /// Logits or probabilities.
    pub source: Source,
}

impl Default for RowSettings {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: 1.0,
            min_p: 0.0,
            order: FilterOrder::Sequential,
            source: Source::Logits,
        }
    }
}

/// A filtered row: which elements survive, and the distribution to draw from (the survivors'
/// probabilities renormalised; 0 elsewhere).
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    /// `true` for the survivors.
    pub keep: Vec<bool>,
    /// The renormalised probabilities.
    pub probabilities: Vec<f64>,
}

/// The greedy token, and the token an invalid row yields: the largest element in the crate's
/// total order (NaN above +inf, ties to the smaller index).
pub fn argmax(values: &[f64]) -> usize {
    (0..values.len())
        .min_by(|&a, &b| rank_order((values[a], a), (values[b], b), true))
        .expect("a non-empty row")
}

/// The filtered distribution of one row, or `None` if the row is invalid: it holds NaN or +inf,
/// no finite logit (all −inf), or (probabilities) a negative value or no positive one; or its
/// parameters are out of their domain.
pub fn filter_row(values: &[f64], settings: &RowSettings) -> Option<Filtered> {
    let n = values.len();
    let RowSettings {
        temperature,
        top_k,
        top_p,
        min_p,
        order,
        source,
    } = *settings;
    let params_ok = temperature >= 0.0
        && temperature.is_finite()
        && top_p > 0.0
        && top_p <= 1.0
        && (0.0..=1.0).contains(&min_p);
    if !params_ok || n == 0 || values.iter().any(|v| v.is_nan() || *v == f64::INFINITY) {
        return None;
    }
    let top = argmax(values);
    let largest = values[top];
    let probabilities: Vec<f64> = match source {
        Source::Logits => {
            if largest == f64::NEG_INFINITY {
                return None;
            }
            if temperature == 0.0 {
                let mut keep = vec![false; n];
                keep[top] = true;
                let mut probabilities = vec![0.0; n];
                probabilities[top] = 1.0;
                return Some(Filtered {
                    keep,
                    probabilities,
                });
            }
            let t = f64::from(temperature);
            let weights: Vec<f64> = values.iter().map(|v| ((v - largest) / t).exp()).collect();
            let total: f64 = weights.iter().sum();
            weights.iter().map(|w| w / total).collect()
        }
        Source::Probabilities => {
            if largest <= 0.0 || values.iter().any(|v| *v < 0.0) {
                return None;
            }
            let total: f64 = values.iter().sum();
            values.iter().map(|v| v / total).collect()
        }
    };

    // Sorted by value descending, ties by index: the order every prefix filter cuts.
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by(|&a, &b| rank_order((values[a], a), (values[b], b), true));
    let mut kept = n;
    if let Some(k) = top_k {
        kept = kept.min(k.max(1));
    }
    if top_p < 1.0 {
        let base: f64 = match order {
            FilterOrder::Sequential => sorted[..kept].iter().map(|&i| probabilities[i]).sum(),
            FilterOrder::Joint => 1.0,
        };
        let target = f64::from(top_p) * base;
        let mut mass = 0.0;
        let mut prefix = n;
        for (position, &i) in sorted.iter().enumerate() {
            mass += probabilities[i];
            if mass >= target {
                prefix = position + 1;
                break;
            }
        }
        kept = kept.min(prefix);
    }
    let mut keep = vec![false; n];
    let threshold = f64::from(min_p) * probabilities[top];
    for &i in &sorted[..kept] {
        keep[i] = probabilities[i] >= threshold;
    }
    let mass: f64 = (0..n).filter(|&i| keep[i]).map(|i| probabilities[i]).sum();
    let probabilities = (0..n)
        .map(|i| {
            if keep[i] {
                probabilities[i] / mass
            } else {
                0.0
            }
        })
        .collect();
    Some(Filtered {
        keep,
        probabilities,
    })
}

/// Classes of the draw order (see [`draw`]): elements are walked by index mod `DRAW_CLASSES`, then
/// by index.
pub const DRAW_CLASSES: usize = 256;

/// Inverse-CDF draw of `random / 2^32` from `weights`, walking the elements in the kernels' order,
/// by class (index mod [`DRAW_CLASSES`]) then index (`0, 256, 512, ..., 1, 257, ...`), so the host
/// and the device pick the same token for the same random word, up to rounding at the boundaries
/// between tokens. (Any fixed order gives the right distribution; this one lets every unit of a
/// device cube add up its own elements.)
pub fn draw(weights: &[f64], random: u32) -> usize {
    let classes = DRAW_CLASSES.min(weights.len()).max(1);
    let order = (0..classes).flat_map(|class| (class..weights.len()).step_by(classes));
    let total: f64 = order.clone().map(|i| weights[i]).sum();
    let target = f64::from(random) / 4_294_967_296.0 * total;
    let mut mass = 0.0;
    let mut last = None;
    for i in order {
        if weights[i] > 0.0 {
            mass += weights[i];
            last = Some(i);
            if mass > target {
                return i;
            }
        }
    }
    last.expect("a distribution with positive mass")
}
