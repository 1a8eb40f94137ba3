//! The original 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.
//!
//! Each block holds one f16 scale `d` (plus an f16 offset `m` for the `_1`
//! variants) and 32 small integers `q`:
//! symmetric types decode as `x = d * (q - zero)` with `zero` = 8 (4-bit) or
//! 16 (5-bit), Q8_0 stores signed `q` directly, and offset types decode as
//! `x = d * q + m`. Nibbles are split by position, not interleaved: the low
//! nibble of byte `j` is element `j` and the high nibble is element `j + 16`.
//! The fifth bit of element `j` in Q5 types is bit `j` of a little-endian
//! `u32` (ggml `dequantize_row_q5_0`).

use super::f16_at;

/// Low and high nibble of each packed byte: elements `j` and `j + 16`.
#[inline]
fn nibbles(byte: u8) -> (u8, u8) {
    (byte & 0x0F, byte >> 4)
}

/// Q4_0: `f16 d | u8 qs[16]`, `x = d * (q - 8)`.
#[inline]
pub(super) fn q4_0_block(block: &[u8; 18], out: &mut [f32; 32]) {
    let d = f16_at(block, 0);
    for (j, &byte) in block[2..].iter().enumerate() {
        let (low, high) = nibbles(byte);
        out[j] = d * f32::from(low as i8 - 8);
        out[j + 16] = d * f32::from(high as i8 - 8);
    }
}

/// Q4_1: `f16 d | f16 m | u8 qs[16]`, `x = d * q + m`.
#[inline]
pub(super) fn q4_1_block(block: &[u8; 20], out: &mut [f32; 32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    for (j, &byte) in block[4..].iter().enumerate() {
        let (low, high) = nibbles(byte);
        out[j] = d * f32::from(low) + m;
        out[j + 16] = d * f32::from(high) + m;
    }
}

/// The 5-bit values of a Q5 block: nibbles plus bit `j` of `high_bits`.
#[inline]
fn five_bit_pair(byte: u8, high_bits: u32, j: usize) -> (u8, u8) {
    let (low, high) = nibbles(byte);
    let fifth_low = ((high_bits >> j) & 1) as u8;
    let fifth_high = ((high_bits >> (j + 16)) & 1) as u8;
    (low | (fifth_low << 4), high | (fifth_high << 4))
}

/// Q5_0: `f16 d | u32 qh | u8 qs[16]`, `x = d * (q - 16)`.
#[inline]
pub(super) fn q5_0_block(block: &[u8; 22], out: &mut [f32; 32]) {
    let d = f16_at(block, 0);
    let high_bits = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    for (j, &byte) in block[6..].iter().enumerate() {
        let (first, second) = five_bit_pair(byte, high_bits, j);
        out[j] = d * f32::from(first as i8 - 16);
        out[j + 16] = d * f32::from(second as i8 - 16);
    }
}

/// Q5_1: `f16 d | f16 m | u32 qh | u8 qs[16]`, `x = d * q + m`.
#[inline]
pub(super) fn q5_1_block(block: &[u8; 24], out: &mut [f32; 32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let high_bits = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
    for (j, &byte) in block[8..].iter().enumerate() {
        let (first, second) = five_bit_pair(byte, high_bits, j);
        out[j] = d * f32::from(first) + m;
        out[j + 16] = d * f32::from(second) + m;
    }
}

/// Q8_0: `f16 d | i8 qs[32]`, `x = d * q`.
#[inline]
pub(super) fn q8_0_block(block: &[u8; 34], out: &mut [f32; 32]) {
    let d = f16_at(block, 0);
    for (value, &byte) in out.iter_mut().zip(&block[2..]) {
        *value = d * f32::from(byte as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f16 bit patterns of small exact scales.
    const HALF_0_5: [u8; 2] = [0x00, 0x38];
    const HALF_0_25: [u8; 2] = [0x00, 0x34];
    const HALF_MINUS_1: [u8; 2] = [0x00, 0xbc];

    #[test]
    fn q4_0_splits_nibbles_by_position() {
        let mut block = [0u8; 18];
        block[..2].copy_from_slice(&HALF_0_5);
        block[2] = 0xF0; // element 0: q=0 -> -8 ; element 16: q=15 -> 7
        block[17] = 0x98; // element 15: q=8 -> 0 ; element 31: q=9 -> 1
        let mut out = [f32::NAN; 32];
        q4_0_block(&block, &mut out);
        assert_eq!((out[0], out[16]), (-4.0, 3.5));
        assert_eq!((out[15], out[31]), (0.0, 0.5));
        // Untouched bytes are 0 -> q=0 -> -8 * 0.5.
        assert_eq!(out[1], -4.0);
    }

    #[test]
    fn q4_1_adds_the_offset() {
        let mut block = [0u8; 20];
        block[..2].copy_from_slice(&HALF_0_25);
        block[2..4].copy_from_slice(&HALF_MINUS_1);
        block[4] = 0x3C; // element 0: 12 -> 0.25*12-1 = 2 ; element 16: 3 -> -0.25
        let mut out = [0f32; 32];
        q4_1_block(&block, &mut out);
        assert_eq!((out[0], out[16], out[1]), (2.0, -0.25, -1.0));
    }

    #[test]
    fn q5_takes_the_fifth_bit_from_a_little_endian_word() {
        let mut block = [0u8; 22];
        block[..2].copy_from_slice(&HALF_0_5);
        // bit 0 (element 0) and bit 31 (element 31) set.
        block[2..6].copy_from_slice(&(1u32 | (1 << 31)).to_le_bytes());
        block[6] = 0x0F; // element 0: 15|16=31 -> 15 ; element 16: 0 -> -16
        block[21] = 0xF0; // element 15: 0 -> -16 ; element 31: 15|16=31 -> 15
        let mut out = [0f32; 32];
        q5_0_block(&block, &mut out);
        assert_eq!((out[0], out[16]), (7.5, -8.0));
        assert_eq!((out[15], out[31]), (-8.0, 7.5));

        let mut block1 = [0u8; 24];
        block1[..2].copy_from_slice(&HALF_0_5);
        block1[2..4].copy_from_slice(&HALF_MINUS_1);
        block1[4..8].copy_from_slice(&(1u32 << 16).to_le_bytes());
        block1[8] = 0x21; // element 0: 1 -> -0.5 ; element 16: 2|16=18 -> 8
        let mut out1 = [0f32; 32];
        q5_1_block(&block1, &mut out1);
        assert_eq!((out1[0], out1[16]), (-0.5, 8.0));
    }

    #[test]
    fn q8_0_reads_signed_bytes() {
        let mut block = [0u8; 34];
        block[..2].copy_from_slice(&HALF_0_25);
        block[2] = 0x80; // -128
        block[33] = 0x7F; // 127
        let mut out = [0f32; 32];
        q8_0_block(&block, &mut out);
        assert_eq!((out[0], out[31], out[1]), (-32.0, 31.75, 0.0));
    }
}
