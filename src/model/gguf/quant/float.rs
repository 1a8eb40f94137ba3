//! Plain floating-point element types: each "block" is a single value.
//!
//! F16 and BF16 widen to f32 exactly (BF16 is the upper half of an f32, so
//! widening is a 16-bit shift), hence no rounding question arises.

/// F32: the value itself.
#[inline]
pub(super) fn f32_element(bytes: &[u8; 4], out: &mut [f32; 1]) {
    out[0] = f32::from_le_bytes(*bytes);
}

/// F16: IEEE binary16 widened to f32.
#[inline]
pub(super) fn f16_element(bytes: &[u8; 2], out: &mut [f32; 1]) {
    out[0] = super::f16_at(bytes, 0);
}

/// BF16: the stored 16 bits are the high half of an f32.
#[inline]
pub(super) fn bf16_element(bytes: &[u8; 2], out: &mut [f32; 1]) {
    out[0] = f32::from_bits(u32::from(u16::from_le_bytes(*bytes)) << 16);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_is_the_high_half_of_f32() {
        let mut out = [0f32; 1];
        // 1.5f32 = 0x3fc00000 -> bf16 0x3fc0
        bf16_element(&[0xc0, 0x3f], &mut out);
        assert_eq!(out[0], 1.5);
        // -0.15625 = 0xbe200000 -> bf16 0xbe20
        bf16_element(&[0x20, 0xbe], &mut out);
        assert_eq!(out[0], -0.15625);
    }

    #[test]
    fn f16_and_f32_round_trip() {
        let mut out = [0f32; 1];
        // 0x3555 is the f16 nearest 1/3: exactly 1365/4096.
        f16_element(&[0x55, 0x35], &mut out);
        assert_eq!(out[0], 1365.0 / 4096.0);
        f32_element(&(-7.25f32).to_le_bytes(), &mut out);
        assert_eq!(out[0], -7.25);
    }
}
