//! Cross-checks against gguf-py: the fixture written by
//! `scripts/gguf_fixture.py` (GGUFWriter file + `gguf.quants.dequantize`
//! references). Skipped, with a message, when the fixture has not been built.
//!
//! Dequantized values are compared bit for bit. Both sides evaluate the same
//! IEEE-754 single-precision operations in the same order (a product of the
//! scale and the quant, then at most one subtraction or addition), and neither
//! fuses multiply-adds, so every result is correctly rounded identically; bit
//! comparison also catches a wrong sign of zero.

use std::path::{Path, PathBuf};

use super::{GgmlType, GgufError, GgufFile, GgufVersion, MetadataArray, DEQUANTIZABLE_TYPES};

fn fixture_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/fixtures/gguf");
    if dir.join("fixture.gguf").is_file() && dir.join("manifest.tsv").is_file() {
        Some(dir)
    } else {
        crate::util::prerequisite_missing("run `make fixtures` to create .cache/fixtures/gguf")
    }
}

/// One line of manifest.tsv.
struct Reference {
    name: String,
    type_name: String,
    dims: Vec<u64>,
    values: Vec<f32>,
}

fn read_references(dir: &Path) -> Vec<Reference> {
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    manifest
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "manifest line {line:?}");
            let raw = std::fs::read(dir.join(fields[3])).unwrap();
            Reference {
                name: fields[0].to_string(),
                type_name: fields[1].to_string(),
                dims: fields[2].split(',').map(|d| d.parse().unwrap()).collect(),
                values: raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            }
        })
        .collect()
}

fn open_fixture(dir: &Path) -> GgufFile {
    GgufFile::open(dir.join("fixture.gguf")).unwrap()
}

fn assert_bits_equal(name: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{name}: length");
    for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.to_bits(), e.to_bits(), "{name}[{index}]: got {a}, gguf-py has {e}");
    }
}

#[test]
fn every_type_dequantizes_bit_exactly_like_gguf_py() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    let references = read_references(&dir);
    for ggml_type in DEQUANTIZABLE_TYPES {
        assert!(references.iter().any(|r| r.type_name == ggml_type.name()), "the fixture has no {ggml_type} tensor");
    }
    for reference in &references {
        let view = file.tensor(&reference.name).unwrap();
        assert_eq!(view.ggml_type().name(), reference.type_name, "{}", reference.name);
        assert_eq!(view.shape().dims(), reference.dims, "{}", reference.name);
        let values = view.dequantize().unwrap();
        assert_bits_equal(&reference.name, &values, &reference.values);
    }
}

#[test]
fn row_ranges_match_the_reference_slices() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    for reference in read_references(&dir) {
        let view = file.tensor(&reference.name).unwrap();
        let row_len = view.shape().row_len();
        let last = view.shape().n_rows();
        let rows = view.dequantize_rows(1..last).unwrap();
        assert_bits_equal(&reference.name, &rows, &reference.values[row_len..]);
    }
}

/// Offsets pinned from gguf-py's `GGUFReader` on the same file: the data
/// section starts at 1600 (a multiple of the custom alignment 64) and
/// `q8_k` data at absolute offset 24128.
#[test]
fn layout_matches_gguf_py_reader() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    assert_eq!(file.version(), GgufVersion::V3);
    assert_eq!(file.alignment().bytes(), 64);
    assert_eq!(file.data_offset(), 1600);
    assert_eq!(file.tensor_infos().len(), 16);
    let q8_k = file.tensor_info("q8_k").unwrap();
    assert_eq!(file.data_offset() + q8_k.relative_offset(), 24128);
    assert_eq!(q8_k.byte_len(), 1752);
    let cube = file.tensor_info("f32_3d").unwrap();
    assert_eq!(cube.dims(), [32, 3, 2]);
    assert_eq!(cube.shape().row_major_dims(), [2, 3, 32]);
    assert_eq!(cube.shape().n_rows(), 6);
}

#[test]
fn metadata_values_match_what_the_script_wrote() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    let metadata = file.metadata();
    assert_eq!(metadata.len(), 21);
    assert_eq!(metadata.get_str("general.architecture").unwrap(), "fixture");
    assert_eq!(metadata.get_str("general.name").unwrap(), "polyprune gguf fixture – ünïcödé");
    assert_eq!(metadata.get_u32("general.alignment").unwrap(), 64);
    assert_eq!(metadata.get_u32("fixture.u8").unwrap(), 200);
    assert_eq!(metadata.get_as::<u8>("fixture.u8").unwrap(), 200);
    assert_eq!(metadata.get_i32("fixture.i8").unwrap(), -100);
    assert_eq!(metadata.get_u32("fixture.u16").unwrap(), 60000);
    assert_eq!(metadata.get_i32("fixture.i16").unwrap(), -30000);
    assert_eq!(metadata.get_u32("fixture.u32").unwrap(), 4_000_000_000);
    assert_eq!(metadata.get_i32("fixture.i32").unwrap(), -2_000_000_000);
    assert_eq!(metadata.get_u64("fixture.u64").unwrap(), (1 << 63) + 5);
    assert_eq!(metadata.get_i64("fixture.i64").unwrap(), -(1 << 40));
    assert_eq!(metadata.get_f32("fixture.f32").unwrap(), 0.15625);
    assert_eq!(metadata.get_f64("fixture.f32").unwrap(), 0.15625);
    assert_eq!(metadata.get_f64("fixture.f64").unwrap(), 2.5e-300);
    assert!(metadata.get_bool("fixture.flag_on").unwrap());
    assert!(!metadata.get_bool("fixture.flag_off").unwrap());
    assert_eq!(metadata.get_str_array("fixture.strings").unwrap(), ["alpha", "beta", "", "日本語"]);
    assert_eq!(metadata.get_f32_array("fixture.floats").unwrap(), [0.5, -1.25, 3.0]);
    assert_eq!(metadata.get_i32_array("fixture.ints").unwrap(), [1, -2, 300000]);
    assert_eq!(
        metadata.get_array("fixture.nested").unwrap(),
        &MetadataArray::Array(vec![MetadataArray::I32(vec![1, 2]), MetadataArray::I32(vec![3, 4, 5]),])
    );
    assert_eq!(metadata.get_as::<Vec<u64>>("fixture.u64s").unwrap(), [7, 1 << 40]);
    assert_eq!(metadata.get_u32("fixture.block_count").unwrap(), 18);
}

#[test]
fn metadata_type_errors_name_key_and_types() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    let metadata = file.metadata();
    let error = metadata.get_str("fixture.u8").unwrap_err();
    let message = error.to_string();
    assert!(matches!(&error, GgufError::WrongType { found, .. } if found == "u8 200"), "{error:?}");
    assert!(message.contains("fixture.gguf") && message.contains("'fixture.u8'"), "{message}");
    assert!(matches!(metadata.get_i32("fixture.u32"), Err(GgufError::ValueOutOfRange { .. })));
    assert!(matches!(metadata.get_u32("fixture.i8"), Err(GgufError::ValueOutOfRange { .. })));
    assert!(matches!(metadata.get_u32_array("fixture.u64s"), Err(GgufError::ValueOutOfRange { .. })));
}

#[test]
fn unsupported_fixture_tensor_is_refused_by_name() {
    let Some(dir) = fixture_dir() else { return };
    let file = open_fixture(&dir);
    let view = file.tensor("iq4_nl").unwrap();
    assert_eq!(view.ggml_type(), GgmlType::IQ4_NL);
    assert!(matches!(
        view.dequantize(),
        Err(GgufError::UnsupportedTensorType { tensor, .. }) if tensor == "iq4_nl"
    ));
}

/// GGUF v2 and v3 share the little-endian layout; relabelled as v2 the
/// fixture must read identically.
#[test]
fn fixture_relabelled_as_version_two_reads_the_same() {
    let Some(dir) = fixture_dir() else { return };
    let original = open_fixture(&dir);
    let mut bytes = std::fs::read(dir.join("fixture.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let relabelled = GgufFile::from_bytes("v2.gguf", bytes).unwrap();
    assert_eq!(relabelled.version(), GgufVersion::V2);
    assert_eq!(relabelled.tensor_infos(), original.tensor_infos());
    assert_eq!(relabelled.dequantize("q6_k").unwrap(), original.dequantize("q6_k").unwrap());
}

/// Cutting the gguf-py file anywhere in its header, or anywhere before the
/// end of its last tensor (sampled), is an error.
#[test]
fn truncated_fixture_is_always_an_error() {
    let Some(dir) = fixture_dir() else { return };
    let bytes = std::fs::read(dir.join("fixture.gguf")).unwrap();
    let original = GgufFile::from_bytes("full.gguf", bytes.clone()).unwrap();
    let data_offset = original.data_offset() as usize;
    let last = original.tensor_infos().last().unwrap();
    let data_end = data_offset + last.relative_offset() as usize + last.byte_len();
    let header_cuts = 0..data_offset;
    let data_cuts = (data_offset..data_end).step_by(97);
    for cut in header_cuts.chain(data_cuts).chain([data_end - 1]) {
        match GgufFile::from_bytes("cut.gguf", bytes[..cut].to_vec()) {
            Err(GgufError::Truncated { .. }) => assert!(cut < data_offset, "cut {cut}"),
            Err(GgufError::TensorOutOfBounds { .. }) => assert!(cut >= data_offset, "cut {cut}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}
