//! Philox4x32-10 on the host: the twin of the device generator, used by the fallback.
//!
//! A token draw at decode step `offset` uses the first word of
//! `philox4x32_10([offset as u32, (offset >> 32) as u32, stream, 0], key)`, where
//! - with one seed for the batch: `key = [seed as u32, (seed >> 32) as u32]` and `stream` is the
//!   row index;
//! - with per-row seeds: `key = [seed_of_row as u32, 0]` and `stream = 0`, so a row's draw depends
//!   on its own seed only, never on its position in the batch.

const MULTIPLIER_0: u32 = 0xD251_1F53;
const MULTIPLIER_1: u32 = 0xCD9E_8D57;
const WEYL_0: u32 = 0x9E37_79B9;
const WEYL_1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds (Salmon, Moraes, Dror, Shaw, SC'11), as in Random123.
///
/// ```
/// use burn_topk::sampling::philox::philox4x32_10;
/// // Random123's known-answer vector for a zero counter and key.
/// assert_eq!(
///     philox4x32_10([0; 4], [0; 2]),
///     [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
/// );
/// ```
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = counter;
    let [mut k0, mut k1] = key;
    for _ in 0..10 {
        let product0 = u64::from(x0) * u64::from(MULTIPLIER_0);
        let product1 = u64::from(x2) * u64::from(MULTIPLIER_1);
        let (hi0, lo0) = ((product0 >> 32) as u32, product0 as u32);
        let (hi1, lo1) = ((product1 >> 32) as u32, product1 as u32);
        x0 = hi1 ^ x1 ^ k0;
        x1 = lo1;
        x2 = hi0 ^ x3 ^ k1;
        x3 = lo0;
        k0 = k0.wrapping_add(WEYL_0);
        k1 = k1.wrapping_add(WEYL_1);
    }
    [x0, x1, x2, x3]
}

/// The 32-bit random word of one row's draw (see the module docs).
pub fn draw_word(key: [u32; 2], stream: u32, offset: u64) -> u32 {
    philox4x32_10([offset as u32, (offset >> 32) as u32, stream, 0], key)[0]
}
