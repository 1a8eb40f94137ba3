//! Damaged files must produce the matching error variant, never a panic.
//!
//! Each test starts from a valid image (the small model of
//! [`super::test_builder`], or the gguf-py fixture when it exists) and damages
//! it in one specific way.

use super::test_builder::{small_model, string_bytes, EncodedValue, GgufBuilder};
use super::{GgufError, GgufFile};

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes("damaged.gguf", bytes)
}

/// Absolute position of the `u64` offset field of tensor `name` (which has `n_dims` dims).
fn offset_field(bytes: &[u8], name: &str, n_dims: usize) -> usize {
    let encoded = string_bytes(name);
    let start = bytes.windows(encoded.len()).position(|window| window == encoded).expect("tensor name present in test image");
    start + encoded.len() + 4 + 8 * n_dims + 4
}

fn patch_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The file is usable exactly when it reaches the end of the last tensor;
/// every shorter prefix is reported as a truncated header or as tensor data
/// running past the end, depending on where the cut falls.
#[test]
fn every_truncation_point_is_reported() {
    let (bytes, data_offset) = small_model().build_with_data_offset();
    // embed.weight: relative offset 64, 2 rows x 34 bytes.
    let required = data_offset + 64 + 68;
    assert!(parse(bytes[..required].to_vec()).is_ok());
    for cut in 0..required {
        match parse(bytes[..cut].to_vec()) {
            Err(GgufError::Truncated { file_len, .. }) => {
                assert!(cut < data_offset, "cut {cut}: truncated header reported in data");
                assert_eq!(file_len, cut as u64);
            }
            Err(GgufError::TensorOutOfBounds { end, .. }) => {
                assert!(cut >= data_offset, "cut {cut}: tensor bounds reported in header");
                assert!(end > cut as u64);
            }
            other => panic!("cut at {cut}: expected a truncation error, got {other:?}"),
        }
    }
}

#[test]
fn truncation_message_names_file_part_and_remedy() {
    let bytes = small_model().build();
    let error = parse(bytes[..40].to_vec()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("damaged.gguf"), "{message}");
    assert!(message.contains("truncated"), "{message}");
    assert!(message.contains("metadata"), "{message}");
    assert!(message.contains("polyprune model fetch"), "{message}");
}

#[test]
fn wrong_magic_is_reported_with_the_bytes_found() {
    let mut bytes = small_model().build();
    bytes[..4].copy_from_slice(b"GGML");
    assert!(matches!(
        parse(bytes),
        Err(GgufError::BadMagic { found, .. }) if &found == b"GGML"
    ));
}

#[test]
fn unsupported_versions_are_refused() {
    for version in [1u32, 4, 3u32.swap_bytes()] {
        let bytes = small_model().version(version).build();
        assert!(matches!(
            parse(bytes),
            Err(GgufError::UnsupportedVersion { version: v, .. }) if v == version
        ));
    }
}

#[test]
fn tensor_data_past_the_end_is_reported() {
    let mut bytes = small_model().build();
    let at = offset_field(&bytes, "embed.weight", 2);
    patch_u64(&mut bytes, at, 1 << 20);
    let error = parse(bytes).unwrap_err();
    assert!(matches!(&error, GgufError::TensorOutOfBounds { tensor, .. } if tensor == "embed.weight"), "{error:?}");
}

#[test]
fn offset_overflow_is_out_of_bounds_not_a_panic() {
    let mut bytes = small_model().build();
    let at = offset_field(&bytes, "embed.weight", 2);
    patch_u64(&mut bytes, at, u64::MAX - 31); // aligned, but start + len overflows
    assert!(matches!(parse(bytes), Err(GgufError::TensorOutOfBounds { end: u64::MAX, .. })));
}

#[test]
fn misaligned_tensor_offset_is_reported() {
    let mut bytes = small_model().build();
    let at = offset_field(&bytes, "embed.weight", 2);
    patch_u64(&mut bytes, at, 65);
    assert!(matches!(parse(bytes), Err(GgufError::MisalignedTensor { offset: 65, alignment: 32, .. })));
}

#[test]
fn invalid_alignment_values_are_refused() {
    for value in [0u32, 48] {
        let bytes = small_model().kv("general.alignment", EncodedValue::u32(value)).build();
        assert!(matches!(
            parse(bytes),
            Err(GgufError::BadAlignment { value: v, .. }) if v == u64::from(value)
        ));
    }
    let bytes = small_model().kv("general.alignment", EncodedValue::string("32")).build();
    assert!(matches!(parse(bytes), Err(GgufError::WrongType { .. })));
}

#[test]
fn custom_alignment_moves_the_data_section() {
    let (bytes, data_offset) = small_model().alignment(256).build_with_data_offset();
    let file = parse(bytes).unwrap();
    assert_eq!(file.alignment().bytes(), 256);
    assert_eq!(file.data_offset(), data_offset as u64);
    assert_eq!(file.data_offset() % 256, 0);
    assert_eq!(file.tensor_info("embed.weight").unwrap().relative_offset(), 512);
    assert_eq!(file.dequantize("norm.weight").unwrap(), [1.0, -2.0, 0.5]);
}

#[test]
fn unknown_tensor_type_is_reported() {
    let bytes = GgufBuilder::new().tensor("w", &[4], 4, vec![0; 16]).build();
    assert!(matches!(parse(bytes), Err(GgufError::UnknownTensorType { type_id: 4, .. })));
}

#[test]
fn duplicate_names_and_keys_are_reported() {
    let bytes = small_model().tensor("norm.weight", &[1], 0, vec![0; 4]).build();
    assert!(matches!(
        parse(bytes),
        Err(GgufError::DuplicateTensor { tensor, .. }) if tensor == "norm.weight"
    ));
    let bytes = small_model().kv("tiny.block_count", EncodedValue::u32(3)).build();
    assert!(matches!(
        parse(bytes),
        Err(GgufError::DuplicateKey { key, .. }) if key == "tiny.block_count"
    ));
}

#[test]
fn impossible_shapes_are_reported() {
    let five_dims = GgufBuilder::new().tensor("w", &[1, 1, 1, 1, 1], 0, vec![0; 4]).build();
    assert!(matches!(parse(five_dims), Err(GgufError::InvalidTensorShape { .. })));
    // Q4_0 rows must be multiples of 32 elements.
    let partial_block = GgufBuilder::new().tensor("w", &[16], 2, vec![0; 18]).build();
    assert!(matches!(parse(partial_block), Err(GgufError::InvalidTensorShape { .. })));
}

/// Forged counts make the parser read data as headers; it must stop with an
/// error (each entry consumes bytes, so it cannot loop forever).
#[test]
fn forged_counts_fail_cleanly() {
    let bytes = small_model().build();
    for field_at in [8usize, 16] {
        let mut forged = bytes.clone();
        patch_u64(&mut forged, field_at, u64::MAX);
        assert!(parse(forged).is_err(), "count at {field_at}");
    }
}

/// Flipping any single bit of the header never panics. (Some flips are
/// harmless, e.g. inside a string, so the result may be Ok.)
#[test]
fn single_bit_flips_in_the_header_never_panic() {
    let (bytes, data_offset) = small_model().build_with_data_offset();
    for position in 0..data_offset {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1 << bit;
            if let Ok(file) = parse(flipped) {
                for tensor in file.tensors() {
                    let _ = tensor.dequantize();
                }
            }
        }
    }
}
