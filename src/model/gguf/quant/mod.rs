//! Dequantization of ggml tensor data to `f32`.
//!
//! Each supported type has a block kernel that turns one fixed-size block of
//! bytes into its elements, written with the same arithmetic order as ggml's
//! reference `dequantize_row_*` functions and gguf-py's `gguf.quants`, so the
//! results are bit-identical to theirs (each value is a product, and at most
//! one subtraction or addition, of `f32`s; there is no fused multiply-add).
//! The driver below splits the blocks into tasks of about
//! [`ELEMENTS_PER_TASK`] elements and runs them on the rayon pool; blocks are
//! independent, so no synchronisation or per-element allocation is needed.

mod float;
mod k_quants;
mod legacy;

use rayon::prelude::*;

use super::ggml_type::GgmlType;

/// Work per rayon task: large enough to amortise scheduling, small enough to
/// balance a few-thousand-element row across cores.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// The type has no kernel here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsupported;

/// Dequantizes whole blocks of `ggml_type` from `source` into `output`.
///
/// The caller guarantees `source` holds exactly `output.len() / block_size`
/// blocks; a mismatch is a bug in this module, not bad input.
pub(super) fn dequantize_into(ggml_type: GgmlType, source: &[u8], output: &mut [f32]) -> Result<(), Unsupported> {
    match ggml_type {
        GgmlType::F32 => decode_blocks(source, output, float::f32_element),
        GgmlType::F16 => decode_blocks(source, output, float::f16_element),
        GgmlType::BF16 => decode_blocks(source, output, float::bf16_element),
        GgmlType::Q4_0 => decode_blocks(source, output, legacy::q4_0_block),
        GgmlType::Q4_1 => decode_blocks(source, output, legacy::q4_1_block),
        GgmlType::Q5_0 => decode_blocks(source, output, legacy::q5_0_block),
        GgmlType::Q5_1 => decode_blocks(source, output, legacy::q5_1_block),
        GgmlType::Q8_0 => decode_blocks(source, output, legacy::q8_0_block),
        GgmlType::Q2_K => decode_blocks(source, output, k_quants::q2_k_block),
        GgmlType::Q3_K => decode_blocks(source, output, k_quants::q3_k_block),
        GgmlType::Q4_K => decode_blocks(source, output, k_quants::q4_k_block),
        GgmlType::Q5_K => decode_blocks(source, output, k_quants::q5_k_block),
        GgmlType::Q6_K => decode_blocks(source, output, k_quants::q6_k_block),
        GgmlType::Q8_K => decode_blocks(source, output, k_quants::q8_k_block),
        _ => return Err(Unsupported),
    }
    Ok(())
}

/// Runs a block kernel over every `BYTES`-byte block of `source`, writing
/// `ELEMS` values per block into `output`, in parallel.
fn decode_blocks<const BYTES: usize, const ELEMS: usize>(
    source: &[u8],
    output: &mut [f32],
    decode: impl Fn(&[u8; BYTES], &mut [f32; ELEMS]) + Sync,
) {
    let (blocks, loose_bytes) = source.as_chunks::<BYTES>();
    let (outputs, loose_values) = output.as_chunks_mut::<ELEMS>();
    assert!(
        loose_bytes.is_empty() && loose_values.is_empty() && blocks.len() == outputs.len(),
        "internal error: {} source bytes do not match {} output values in {BYTES}-byte blocks \
         of {ELEMS}",
        source.len(),
        output.len()
    );
    let blocks_per_task = (ELEMENTS_PER_TASK / ELEMS).max(1);
    outputs.par_chunks_mut(blocks_per_task).zip(blocks.par_chunks(blocks_per_task)).for_each(|(output_task, block_task)| {
        for (values, block) in output_task.iter_mut().zip(block_task) {
            decode(block, values);
        }
    });
}

/// Reads the little-endian IEEE half at `bytes[offset..offset + 2]` as `f32` (exact).
#[inline]
fn f16_at(bytes: &[u8], offset: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[offset], bytes[offset + 1]])).to_f32()
}

#[cfg(test)]
mod tests {
    use super::super::ggml_type::{GgmlType, DEQUANTIZABLE_TYPES};
    use super::*;

    /// Every advertised type has a kernel whose block geometry matches the
    /// type's declared sizes (a mismatch would trip the driver's assertion).
    #[test]
    fn every_dequantizable_type_has_a_matching_kernel() {
        for ggml_type in DEQUANTIZABLE_TYPES {
            let blocks = 3;
            let source = vec![0u8; blocks * ggml_type.type_size()];
            let mut output = vec![f32::NAN; blocks * ggml_type.block_size()];
            assert_eq!(dequantize_into(ggml_type, &source, &mut output), Ok(()));
            // All-zero bytes decode to zero scales, hence zeros (never the NaN fill).
            assert!(output.iter().all(|v| *v == 0.0), "{ggml_type}");
        }
    }

    #[test]
    fn types_without_kernel_are_reported() {
        let mut output = [0f32; 32];
        assert_eq!(dequantize_into(GgmlType::IQ4_NL, &[0u8; 18], &mut output), Err(Unsupported));
    }

    /// Many tasks must land in the right places: compare a parallel F32 decode
    /// of a long ramp with the ramp itself.
    #[test]
    fn parallel_tasks_keep_element_order() {
        let count = 3 * ELEMENTS_PER_TASK + 7;
        let source: Vec<u8> = (0..count).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let mut output = vec![0f32; count];
        dequantize_into(GgmlType::F32, &source, &mut output).unwrap();
        assert!(output.iter().enumerate().all(|(i, v)| *v == i as f32));
    }

    #[test]
    fn half_reader_is_exact() {
        // 0x3c00 = 1.0, 0xc000 = -2.0, 0x0001 = smallest subnormal 2^-24.
        let bytes = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00];
        assert_eq!(f16_at(&bytes, 0), 1.0);
        assert_eq!(f16_at(&bytes, 2), -2.0);
        assert_eq!(f16_at(&bytes, 4), 2f32.powi(-24));
    }
}
