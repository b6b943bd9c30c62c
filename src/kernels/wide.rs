//! Unsigned 64-bit arithmetic on `(high, low)` pairs of `u32`, for devices without 64-bit integers
//! (WGSL without `SHADER_INT64`). The sampling kernels keep probability mass in 64-bit fixed point.

use crate::kernels::primitives::{converge_planes, scan_plane_totals};
use cubecl::prelude::*;

/// `a + b`, wrapping at 2^64.
#[cube]
pub fn wide_add(a_hi: u32, a_lo: u32, b_hi: u32, b_lo: u32) -> (u32, u32) {
    let lo = a_lo + b_lo;
    let carry = select(lo < a_lo, 1u32, 0u32);
    (a_hi + b_hi + carry, lo)
}

/// `a - b`, wrapping at 2^64.
#[cube]
pub fn wide_sub(a_hi: u32, a_lo: u32, b_hi: u32, b_lo: u32) -> (u32, u32) {
    let borrow = select(a_lo < b_lo, 1u32, 0u32);
    (a_hi - b_hi - borrow, a_lo - b_lo)
}

/// `a >= b`.
#[cube]
pub fn wide_ge(a_hi: u32, a_lo: u32, b_hi: u32, b_lo: u32) -> bool {
    a_hi > b_hi || (a_hi == b_hi && a_lo >= b_lo)
}

/// The full 64-bit product of two `u32`.
#[cube]
pub fn wide_mul(a: u32, b: u32) -> (u32, u32) {
    (a.mul_hi(b), a * b)
}

/// `floor(a * fraction / 2^32)` for a 64-bit `a` and a 32-bit binary fraction, and whether the
/// discarded low word was non-zero (to round up).
#[cube]
pub fn wide_scale(a_hi: u32, a_lo: u32, fraction: u32) -> (u32, u32, bool) {
    let (hh, hl) = wide_mul(a_hi, fraction);
    let (lh, ll) = wide_mul(a_lo, fraction);
    let (hi, lo) = wide_add(hh, hl, 0u32, lh);
    (hi, lo, ll != 0u32)
}

/// `ceil(a / divisor)` for a 64-bit `a` and `1 <= divisor <= 2^31`, when the quotient fits 32 bits.
/// Bit-serial long division: it runs once per row, on one unit.
#[cube]
pub fn wide_div_ceil(a_hi: u32, a_lo: u32, divisor: u32) -> u32 {
    let (n_hi, n_lo) = wide_add(a_hi, a_lo, 0u32, divisor - 1u32);
    let mut remainder = 0u32;
    let mut quotient = 0u32;
    for bit in 0u32..64u32 {
        let mut next = (n_lo >> (63u32 - bit)) & 1u32;
        if bit < 32u32 {
            next = (n_hi >> (31u32 - bit)) & 1u32;
        }
        // remainder < divisor <= 2^31, so this cannot overflow.
        remainder = (remainder << 1u32) | next;
        let mut digit = 0u32;
        if remainder >= divisor {
            remainder -= divisor;
            digit = 1u32;
        }
        quotient = (quotient << 1u32) | digit;
    }
    quotient
}

/// Cube-wide exclusive prefix sum of one 64-bit value per unit, in
/// [`linear_unit`](fn@crate::kernels::primitives::linear_unit) order: `(prefix_hi, prefix_lo,
/// total_hi, total_lo)`. Every unit of the cube must call it; `scratch` needs
/// `3 * (CUBE_DIM / PLANE_DIM + 1)` words.
///
/// The value is scanned as three pieces (low 16 bits, next 16 bits, high word), so plane scans of
/// `u32` never overflow for cubes up to 2^16 units, and recombined with carries.
#[cube]
pub fn cube_exclusive_sum_wide(
    value_hi: u32,
    value_lo: u32,
    scratch: &mut SharedMemory<u32>,
) -> (u32, u32, u32, u32) {
    let planes = (CUBE_DIM / PLANE_DIM) as usize;
    let stride = planes + 1usize;
    let plane = PLANE_POS as usize;
    let low = value_lo & 0xFFFFu32;
    let mid = value_lo >> 16u32;
    converge_planes();
    let inclusive_low = plane_inclusive_sum(low);
    let inclusive_mid = plane_inclusive_sum(mid);
    let inclusive_hi = plane_inclusive_sum(value_hi);
    if UNIT_POS_PLANE == PLANE_DIM - 1 {
        scratch[plane] = inclusive_low;
        scratch[stride + plane] = inclusive_mid;
        scratch[2usize * stride + plane] = inclusive_hi;
    }
    sync_cube();
    if PLANE_POS == 0 {
        #[unroll]
        for piece in 0usize..3usize {
            scan_plane_totals(scratch, piece * stride, planes);
        }
    }
    sync_cube();
    let before_low = scratch[plane] + inclusive_low - low;
    let before_mid = scratch[stride + plane] + inclusive_mid - mid;
    let before_hi = scratch[2usize * stride + plane] + inclusive_hi - value_hi;
    let total_low = scratch[planes];
    let total_mid = scratch[stride + planes];
    let total_hi = scratch[2usize * stride + planes];
    sync_cube();
    let (prefix_hi, prefix_lo) = combine_pieces(before_hi, before_mid, before_low);
    let (sum_hi, sum_lo) = combine_pieces(total_hi, total_mid, total_low);
    (prefix_hi, prefix_lo, sum_hi, sum_lo)
}

/// `hi * 2^32 + mid * 2^16 + low` as a 64-bit pair, for `mid` and `low` below 2^32.
#[cube]
fn combine_pieces(hi: u32, mid: u32, low: u32) -> (u32, u32) {
    let (h, l) = wide_add(hi, 0u32, mid >> 16u32, mid << 16u32);
    wide_add(h, l, 0u32, low)
}

/// `floor(random × total / 2^32)`: where a 32-bit random fraction falls in a 64-bit mass. Every
/// sampling path draws with it, so a seed gives the same token whichever path runs.
#[cube]
pub fn draw_point(random: u32, total_hi: u32, total_lo: u32) -> (u32, u32) {
    let (scaled_hi, scaled_lo) = wide_mul(random, total_hi);
    wide_add(scaled_hi, scaled_lo, 0u32, random.mul_hi(total_lo))
}

/// The mass a top-p of `fraction` (a 32-bit binary fraction of `p`) must reach within `base`:
/// `ceil(base × p)`, at least 1.
#[cube]
pub fn top_p_target(base_hi: u32, base_lo: u32, fraction: u32) -> (u32, u32) {
    let (h, l, round_up) = wide_scale(base_hi, base_lo, fraction);
    let (h, l) = wide_add(h, l, 0u32, select(round_up, 1u32, 0u32));
    (h, select(h == 0u32 && l == 0u32, 1u32, l))
}
