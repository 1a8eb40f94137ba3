//! The "k-quant" super-block formats (llama.cpp PR #1684): 256 elements per
//! block, split into sub-blocks that each have their own quantized scale
//! (and, for Q2_K/Q4_K/Q5_K, their own quantized minimum).
//!
//! Decoding is `x = (d * scale) * q - (dmin * min)` per sub-block, where
//! `d`/`dmin` are the block's f16 super-scales. The bit layouts (from ggml's
//! `dequantize_row_q*_K`) are spelled out on each kernel; the parenthesised
//! products are computed exactly in that order so results match ggml and
//! gguf-py bit for bit.

use super::f16_at;

/// Q2_K: `u8 scales[16] | u8 qs[64] | f16 d | f16 dmin`.
/// Sub-blocks of 16; scale byte = `min << 4 | scale`. Element `e` takes the
/// 2 bits at shift `2 * ((e / 32) % 4)` of `qs[(e / 128) * 32 + e % 32]`.
#[inline]
pub(super) fn q2_k_block(block: &[u8; 84], out: &mut [f32; 256]) {
    let (scales, rest) = block.split_at(16);
    let (qs, _) = rest.split_at(64);
    let d = f16_at(block, 80);
    let dmin = f16_at(block, 82);
    for (sub_block, values) in out.chunks_exact_mut(16).enumerate() {
        let scale_byte = scales[sub_block];
        let scale = d * f32::from(scale_byte & 0x0F);
        let min = dmin * f32::from(scale_byte >> 4);
        for (i, value) in values.iter_mut().enumerate() {
            let e = sub_block * 16 + i;
            let shift = 2 * ((e / 32) % 4);
            let q = (qs[(e / 128) * 32 + e % 32] >> shift) & 3;
            *value = scale * f32::from(q) - min;
        }
    }
}

/// Unpacks the sixteen signed 6-bit scales of Q3_K: the low 4 bits of scale
/// `i` are nibble `i / 8` of byte `i % 8`, the high 2 bits are at shift
/// `2 * (i / 4)` of byte `8 + i % 4`; the result is offset by -32.
fn q3_k_scales(packed: &[u8]) -> [i8; 16] {
    std::array::from_fn(|i| {
        let low = (packed[i % 8] >> (4 * (i / 8))) & 0x0F;
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        (low | (high << 4)) as i8 - 32
    })
}

/// Q3_K: `u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d`.
/// Element `e` has 2 low bits as in Q2_K and a high bit at shift `e / 32` of
/// `hmask[e % 32]`; a *clear* high bit subtracts 4 (q in -4..=3).
#[inline]
pub(super) fn q3_k_block(block: &[u8; 110], out: &mut [f32; 256]) {
    let high_mask = &block[..32];
    let qs = &block[32..96];
    let scales = q3_k_scales(&block[96..108]);
    let d = f16_at(block, 108);
    for (sub_block, values) in out.chunks_exact_mut(16).enumerate() {
        let scale = d * f32::from(scales[sub_block]);
        for (i, value) in values.iter_mut().enumerate() {
            let e = sub_block * 16 + i;
            let shift = 2 * ((e / 32) % 4);
            let low = ((qs[(e / 128) * 32 + e % 32] >> shift) & 3) as i8;
            let high_set = (high_mask[e % 32] >> (e / 32)) & 1 == 1;
            let q = if high_set { low } else { low - 4 };
            *value = scale * f32::from(q);
        }
    }
}

/// Unpacks the eight 6-bit (scale, min) pairs shared by Q4_K and Q5_K
/// (ggml `get_scale_min_k4`): pairs 0..4 are the low 6 bits of bytes 0..4 and
/// 4..8; pairs 4..8 take 4 bits from bytes 8..12 and their top 2 bits from
/// the spare high bits of bytes 0..8.
fn scale_min_k4(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..4 {
        scales[j] = packed[j] & 0x3F;
        mins[j] = packed[j + 4] & 0x3F;
    }
    for j in 4..8 {
        scales[j] = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        mins[j] = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
    (scales, mins)
}

/// Q4_K: `f16 d | f16 dmin | u8 scales[12] | u8 qs[128]`.
/// Sub-blocks of 32; sub-block `s` reads nibble `s % 2` of `qs[(s / 2) * 32 + l]`.
#[inline]
pub(super) fn q4_k_block(block: &[u8; 144], out: &mut [f32; 256]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let (scales, mins) = scale_min_k4(&block[4..16]);
    let qs = &block[16..144];
    for (sub_block, values) in out.chunks_exact_mut(32).enumerate() {
        let scale = d * f32::from(scales[sub_block]);
        let min = dmin * f32::from(mins[sub_block]);
        let shift = 4 * (sub_block % 2);
        let packed = &qs[(sub_block / 2) * 32..][..32];
        for (value, &byte) in values.iter_mut().zip(packed) {
            let q = (byte >> shift) & 0x0F;
            *value = scale * f32::from(q) - min;
        }
    }
}

/// Q5_K: `f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]`.
/// As Q4_K, plus a fifth bit at shift `s` of `qh[l]` for sub-block `s`.
#[inline]
pub(super) fn q5_k_block(block: &[u8; 176], out: &mut [f32; 256]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let (scales, mins) = scale_min_k4(&block[4..16]);
    let high_bits = &block[16..48];
    let qs = &block[48..176];
    for (sub_block, values) in out.chunks_exact_mut(32).enumerate() {
        let scale = d * f32::from(scales[sub_block]);
        let min = dmin * f32::from(mins[sub_block]);
        let shift = 4 * (sub_block % 2);
        let packed = &qs[(sub_block / 2) * 32..][..32];
        for (l, value) in values.iter_mut().enumerate() {
            let low = (packed[l] >> shift) & 0x0F;
            let fifth = (high_bits[l] >> sub_block) & 1;
            *value = scale * f32::from(low | (fifth << 4)) - min;
        }
    }
}

/// Q6_K: `u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d`.
/// Element `e = 128 h + r` (`h` = half): low 4 bits are nibble `r / 64` of
/// `ql[64 h + r % 64]`, high 2 bits are at shift `2 * (r / 32)` of
/// `qh[32 h + r % 32]`; q is offset by -32; sub-blocks of 16 share a scale.
#[inline]
pub(super) fn q6_k_block(block: &[u8; 210], out: &mut [f32; 256]) {
    let low_bits = &block[..128];
    let high_bits = &block[128..192];
    let scales = &block[192..208];
    let d = f16_at(block, 208);
    for (sub_block, values) in out.chunks_exact_mut(16).enumerate() {
        let scale = d * f32::from(scales[sub_block] as i8);
        for (i, value) in values.iter_mut().enumerate() {
            let e = sub_block * 16 + i;
            let (half, r) = (e / 128, e % 128);
            let low = (low_bits[64 * half + r % 64] >> (4 * (r / 64))) & 0x0F;
            let high = (high_bits[32 * half + r % 32] >> (2 * (r / 32))) & 0x03;
            let q = (low | (high << 4)) as i8 - 32;
            *value = scale * f32::from(q);
        }
    }
}

/// Q8_K: `f32 d | i8 qs[256] | i16 bsums[16]`, `x = d * q`; the block sums
/// only speed up dot products and are not needed here.
#[inline]
pub(super) fn q8_k_block(block: &[u8; 292], out: &mut [f32; 256]) {
    let d = f32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    for (value, &byte) in out.iter_mut().zip(&block[4..260]) {
        *value = d * f32::from(byte as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_1: [u8; 2] = [0x00, 0x3c];
    const HALF_0_5: [u8; 2] = [0x00, 0x38];

    #[test]
    fn q2_k_uses_scale_and_min_nibbles() {
        let mut block = [0u8; 84];
        block[0] = 0x23; // sub-block 0: scale 3, min 2
        block[16] = 0b11_10_01_00; // e=0: q0 ; e=32: q1 ; e=64: q2 ; e=96: q3
        block[80..82].copy_from_slice(&HALF_1);
        block[82..84].copy_from_slice(&HALF_0_5);
        let mut out = [f32::NAN; 256];
        q2_k_block(&block, &mut out);
        // e=0 in sub-block 0: 3*0 - 0.5*2 = -1
        assert_eq!(out[0], -1.0);
        // e=32 is sub-block 2 (scale byte 0): 0*1 - 0 = 0
        assert_eq!(out[32], 0.0);
        // Put a scale on sub-block 6 (e=96..112) and check q=3 there.
        block[6] = 0x05;
        q2_k_block(&block, &mut out);
        assert_eq!(out[96], 15.0);
    }

    #[test]
    fn q3_k_scales_unpack_six_bits() {
        let mut packed = [0u8; 12];
        packed[1] = 0xA5; // scale 1 low nibble 5, scale 9 low nibble 10
        packed[9] = 0b00_00_11_01; // scale 1 high 1 (shift 0), scale 5 high 3 (shift 2)
        let scales = q3_k_scales(&packed);
        assert_eq!(scales[1], (5 | (1 << 4)) - 32);
        assert_eq!(scales[9], 10 - 32);
        assert_eq!(scales[5], (3 << 4) - 32);
        assert_eq!(scales[0], -32);
    }

    #[test]
    fn q3_k_clear_high_bit_subtracts_four() {
        let mut block = [0u8; 110];
        // All scales: low nibble 1, high bits 2 -> 33 - 32 = 1.
        block[96..104].fill(0x11);
        block[104..108].fill(0xAA);
        block[108..110].copy_from_slice(&HALF_0_5);
        block[32] = 0x03; // e=0 low bits 3
        block[0] = 0x01; // e=0 high bit set; e=32.. high bit clear
        let mut out = [0f32; 256];
        q3_k_block(&block, &mut out);
        assert_eq!(out[0], 1.5); // 0.5 * 1 * 3
        assert_eq!(out[1], -2.0); // low 0, high clear -> -4
    }

    #[test]
    fn k4_scale_min_unpacking_matches_the_bit_diagram() {
        let mut packed = [0u8; 12];
        packed[0] = 0b11_000001; // scale0 = 1, top bits feed scale4
        packed[4] = 0b01_000010; // min0 = 2, top bits feed min4
        packed[8] = 0x7F; // scale4 low 0xF, min4 low 0x7
        let (scales, mins) = scale_min_k4(&packed);
        assert_eq!((scales[0], mins[0]), (1, 2));
        assert_eq!(scales[4], 0x0F | (0b11 << 4));
        assert_eq!(mins[4], 0x07 | (0b01 << 4));
    }

    #[test]
    fn q4_k_and_q5_k_apply_scale_and_min() {
        let mut block = [0u8; 144];
        block[..2].copy_from_slice(&HALF_1);
        block[2..4].copy_from_slice(&HALF_0_5);
        block[5] = 2; // scale of sub-block 1
        block[9] = 4; // min of sub-block 1
        block[16] = 0x70; // sub-block 1, l=0: high nibble 7
        let mut out = [0f32; 256];
        q4_k_block(&block, &mut out);
        assert_eq!(out[32], 2.0 * 7.0 - 0.5 * 4.0);

        let mut block5 = [0u8; 176];
        block5[..4].copy_from_slice(&block[..4]);
        block5[4..16].copy_from_slice(&block[4..16]);
        block5[16] = 0b10; // l=0: fifth bit for sub-block 1
        block5[48] = 0x70;
        let mut out5 = [0f32; 256];
        q5_k_block(&block5, &mut out5);
        assert_eq!(out5[32], 2.0 * 23.0 - 0.5 * 4.0);
    }

    #[test]
    fn q6_k_combines_nibble_and_two_high_bits() {
        let mut block = [0u8; 210];
        block[208..210].copy_from_slice(&HALF_0_5);
        block[192 + 4] = 0xFE; // scale of sub-block 4 (e=64..80) = -2
        block[0] = 0x50; // e=64 reads the high nibble of ql[0]: 5
        block[128] = 0b00_10_00_00; // e=64 high bits at shift 4: 2
        let mut out = [0f32; 256];
        q6_k_block(&block, &mut out);
        // q = (5 | 2<<4) - 32 = 5 ; x = (0.5 * -2) * 5
        assert_eq!(out[64], -5.0);
        // e=0: low nibble 0, high 0 -> -32, scale 0 -> -0.0 or 0.0
        assert_eq!(out[0], 0.0);
    }

    #[test]
    fn q8_k_has_an_f32_scale() {
        let mut block = [0u8; 292];
        block[..4].copy_from_slice(&0.1f32.to_le_bytes());
        block[4] = 0xFF; // -1
        block[259] = 100;
        let mut out = [0f32; 256];
        q8_k_block(&block, &mut out);
        assert_eq!((out[0], out[255]), (-0.1, 0.1f32 * 100.0));
    }
}
