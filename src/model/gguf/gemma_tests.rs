//! Checks against the real model, gemma-3-270m (Q4_K_M mix: F32, Q5_0,
//! Q8_0, Q4_K and Q6_K tensors). Skipped, with a message, when the file is
//! absent. The path is `.cache/models/gemma-3-270m.gguf` under the crate
//! root unless the environment variable `POLYPRUNE_GEMMA_GGUF` names another
//! copy.
//!
//! Reference values were computed once with gguf-py by
//! `scripts/gguf_gemma_reference.py` (GGUFReader + `gguf.quants.dequantize`)
//! on the file whose SHA-256 is a5fd3b62...6818. The first eight values of
//! each row are compared bit for bit (same f32 arithmetic in the same order,
//! see `fixture_tests`). Row sums are compared within 1e-9: the values are
//! identical, only the f64 summation order differs (NumPy sums pairwise),
//! and for 2048 terms of magnitude below 0.1 that changes the sum by at most
//! about 2048 * 2^-53 * sum|x| < 1e-11.

use std::path::PathBuf;

use super::{GgmlType, GgufFile};

const FFN_DOWN_ROW_0_HEAD_BITS: [u32; 8] = [0x3baac700, 0x3cb1e4a0, 0xbcce5b20, 0x3c63b400, 0x3cdc9660, 0xbc801540, 0x3c2ac700, 0xbae3b400];
const FFN_DOWN_ROW_0_SUM: f64 = 0.5224223136901855;
const FFN_DOWN_ROW_1_HEAD_BITS: [u32; 8] = [0xbb5b0000, 0xbc08e000, 0xbc5b0000, 0x3ba44000, 0x3b5b0000, 0x3c766000, 0xbd542800, 0xbc244000];
const FFN_DOWN_ROW_1_SUM: f64 = 0.30054032802581787;
const FFN_DOWN_ROW_639_HEAD_BITS: [u32; 8] =
    [0x3ad34000, 0x00000000, 0x3c113c00, 0x3a534000, 0xbc1e7000, 0x3c534000, 0xbc840800, 0xbc6da800];
const FFN_DOWN_ROW_639_SUM: f64 = 0.13615798950195312;
const TOKEN_EMBD_ROW_2_HEAD_BITS: [u32; 8] =
    [0xbc695900, 0x3c2d2100, 0x3c5a4b00, 0x3c4b3d00, 0x3b9e1300, 0xbb52c400, 0x3b877e00, 0x3b70e000];
const TOKEN_EMBD_ROW_2_SUM: f64 = 1.4879008531570435;
const TOKEN_EMBD_ROW_262143_HEAD_BITS: [u32; 8] =
    [0xbbf76800, 0x3d300a00, 0xbd0ebc00, 0xbcab4800, 0xbc3e5000, 0x3cede400, 0x3b984000, 0xbd007600];
const TOKEN_EMBD_ROW_262143_SUM: f64 = -0.03731584548950195;

const SUM_TOLERANCE: f64 = 1e-9;

pub(crate) fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("POLYPRUNE_GEMMA_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/models/gemma-3-270m.gguf"));
    if path.is_file() {
        Some(path)
    } else {
        crate::util::prerequisite_missing(&format!("{} is absent (run `make models`, or set POLYPRUNE_GEMMA_GGUF)", path.display()))
    }
}

fn assert_row(label: &str, row: &[f32], head_bits: [u32; 8], sum: f64) {
    let head: Vec<u32> = row[..8].iter().map(|v| v.to_bits()).collect();
    assert_eq!(head, head_bits, "{label}: first eight values");
    let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
    assert!((total - sum).abs() < SUM_TOLERANCE, "{label}: row sum {total} differs from gguf-py's {sum}");
}

#[test]
fn gemma_metadata_describes_the_270m_model() {
    let Some(path) = model_path() else { return };
    let model = GgufFile::open(path).unwrap();
    let metadata = model.metadata();
    assert_eq!(metadata.get_str("general.architecture").unwrap(), "gemma3");
    assert_eq!(metadata.get_u32("gemma3.block_count").unwrap(), 18);
    assert_eq!(metadata.get_u32("gemma3.embedding_length").unwrap(), 640);
    assert_eq!(metadata.get_str_array("tokenizer.ggml.tokens").unwrap().len(), 262_144);
    assert_eq!(metadata.get_f32_array("tokenizer.ggml.scores").unwrap().len(), 262_144);
    assert_eq!(metadata.get_i32_array("tokenizer.ggml.token_type").unwrap().len(), 262_144);
    assert!(metadata.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    assert_eq!(model.tensor_infos().len(), 236);
    assert_eq!(model.alignment().bytes(), 32);
}

#[test]
fn gemma_ffn_down_matches_gguf_py() {
    let Some(path) = model_path() else { return };
    let model = GgufFile::open(path).unwrap();
    let view = model.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(view.ggml_type(), GgmlType::Q6_K);
    // GGUF [2048, 640] = PyTorch [640, 2048]: 640 rows of 2048 inputs.
    assert_eq!(view.shape().dims(), [2048, 640]);
    let first_rows = view.dequantize_rows(0..2).unwrap();
    assert_row("ffn_down row 0", &first_rows[..2048], FFN_DOWN_ROW_0_HEAD_BITS, FFN_DOWN_ROW_0_SUM);
    assert_row("ffn_down row 1", &first_rows[2048..], FFN_DOWN_ROW_1_HEAD_BITS, FFN_DOWN_ROW_1_SUM);
    let all = view.dequantize().unwrap();
    assert_eq!(all.len(), 640 * 2048);
    assert_eq!(all[..4096], first_rows[..]);
    let last_row = &all[639 * 2048..];
    assert_row("ffn_down row 639", last_row, FFN_DOWN_ROW_639_HEAD_BITS, FFN_DOWN_ROW_639_SUM);
}

#[test]
fn gemma_embedding_rows_match_gguf_py() {
    let Some(path) = model_path() else { return };
    let model = GgufFile::open(path).unwrap();
    let view = model.tensor("token_embd.weight").unwrap();
    assert_eq!(view.ggml_type(), GgmlType::Q8_0);
    assert_eq!(view.shape().dims(), [640, 262_144]);
    let bos = view.dequantize_rows(2..3).unwrap();
    assert_row("token_embd row 2", &bos, TOKEN_EMBD_ROW_2_HEAD_BITS, TOKEN_EMBD_ROW_2_SUM);
    let last = view.dequantize_rows(262_143..262_144).unwrap();
    assert_row("token_embd row 262143", &last, TOKEN_EMBD_ROW_262143_HEAD_BITS, TOKEN_EMBD_ROW_262143_SUM);
}
