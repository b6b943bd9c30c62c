//! The CPU reference: the exact definition of what every top-k in this crate returns.
//!
//! - The k largest values along `dim`, sorted descending (`largest = false`: the k smallest,
//!   sorted ascending).
//! - Equal values are ordered by the smaller index first, so the result is deterministic.
//! - NaN ranks above +inf (so with `largest = false` NaN comes last); all NaNs are equal.
//! - −0.0 and +0.0 are equal (ordered by index); the returned value keeps its own sign bit.
//! - Values are returned bit for bit as they are in the input.
//!
//! Every kernel is tested against this module.

use crate::error::{TopKError, check_shape};
use core::cmp::Ordering;

/// An element the reference can rank: converted to `f64`, which preserves the order of every
/// f16, bf16, f32 and f64 value.
pub trait RankedElement: Copy {
    /// The value as `f64`.
    fn to_f64(self) -> f64;
}

impl RankedElement for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}
impl RankedElement for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl RankedElement for half::f16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}
impl RankedElement for half::bf16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}

/// The order of the selection: `Less` means `a` comes first. NaN first, then +inf down to −inf
/// (reversed for `largest = false`, except that NaN always ranks as the largest value); ties
/// (including −0.0 against +0.0) are broken by the smaller index.
pub fn rank_order(a: (f64, usize), b: (f64, usize), largest: bool) -> Ordering {
    let by_value = match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // −0.0 == +0.0 under partial_cmp, which is what we want.
        (false, false) => a.0.partial_cmp(&b.0).expect("not NaN"),
    };
    let by_value = if largest {
        by_value.reverse()
    } else {
        by_value
    };
    by_value.then(a.1.cmp(&b.1))
}

/// The top-k of one row: `(value, index)` pairs in output order.
pub fn top_k_row<E: RankedElement>(row: &[E], k: usize, largest: bool) -> Vec<(E, usize)> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&i, &j| rank_order((row[i].to_f64(), i), (row[j].to_f64(), j), largest));
    order.truncate(k);
    order.into_iter().map(|i| (row[i], i)).collect()
}

/// The top-k of a row-major tensor `data` of shape `shape` along `dim`.
///
/// Returns `(values, indices)`, row-major, of shape `shape` with `shape[dim]` replaced by `k`.
///
/// ```
/// let data = [1.0f32, f32::NAN, 3.0, 3.0, -0.0, 0.0];
/// let (values, indices) = burn_topk::reference::top_k(&data, &[2, 3], 2, 1, true).unwrap();
/// assert!(values[0].is_nan());
/// // Row 0 is [1, NaN, 3]: NaN ranks first. Row 1 is [3, -0, 0]: -0 and 0 tie, the smaller index wins.
/// assert_eq!(indices, vec![1, 2, 0, 1]);
/// ```
pub fn top_k<E: RankedElement>(
    data: &[E],
    shape: &[usize],
    k: usize,
    dim: usize,
    largest: bool,
) -> Result<(Vec<E>, Vec<usize>), TopKError> {
    let layout = check_shape(shape, k, dim)?;
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "data does not match its shape"
    );
    let (len, inner) = (layout.len, layout.inner);
    let outer = layout.rows / inner;
    let mut values = Vec::with_capacity(layout.rows * k);
    let mut indices = Vec::with_capacity(layout.rows * k);
    // Output is [outer, k, inner]; fill it row by row, then place.
    let mut out_values = vec![None; layout.rows * k];
    for o in 0..outer {
        for i in 0..inner {
            let row: Vec<E> = (0..len).map(|j| data[(o * len + j) * inner + i]).collect();
            for (j, pair) in top_k_row(&row, k, largest).into_iter().enumerate() {
                out_values[(o * k + j) * inner + i] = Some(pair);
            }
        }
    }
    for (value, index) in out_values
        .into_iter()
        .map(|p| p.expect("every slot written"))
    {
        values.push(value);
        indices.push(index);
    }
    Ok((values, indices))
}
