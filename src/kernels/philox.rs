//! Philox4x32-10 (Salmon et al., SC'11), the counter-based generator of the sampling kernels.
//! Stateless: a (counter, key) pair gives the same words on every device and on the host
//! ([`crate::sampling::philox`] is the host twin, checked against the published test vectors).

use cubecl::prelude::*;

const MULTIPLIER_0: u32 = 0xD251_1F53;
const MULTIPLIER_1: u32 = 0xCD9E_8D57;
const WEYL_0: u32 = 0x9E37_79B9;
const WEYL_1: u32 = 0xBB67_AE85;

/// The first output word of Philox4x32-10 for the counter `(c0, c1, c2, c3)` and the key `(key0, key1)`.
#[cube]
pub fn philox_first_word(c0: u32, c1: u32, c2: u32, c3: u32, key0: u32, key1: u32) -> u32 {
    let mut x0 = c0;
    let mut x1 = c1;
    let mut x2 = c2;
    let mut x3 = c3;
    let mut k0 = key0;
    let mut k1 = key1;
    #[unroll]
    for _ in 0..10u32 {
        let hi0 = x0.mul_hi(MULTIPLIER_0);
        let lo0 = x0 * MULTIPLIER_0;
        let hi1 = x2.mul_hi(MULTIPLIER_1);
        let lo1 = x2 * MULTIPLIER_1;
        x0 = hi1 ^ x1 ^ k0;
        x1 = lo1;
        x2 = hi0 ^ x3 ^ k1;
        x3 = lo0;
        k0 += WEYL_0;
        k1 += WEYL_1;
    }
    x0
}
