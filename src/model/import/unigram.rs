//! `tokenizer.json` for GGUF's `t5` tokenizer: a SentencePiece unigram model (mT5, T5 v1.1)
//! as llama.cpp's converter stores it (pieces, scores, token types, the precompiled
//! normalization charsmap, `add_space_prefix`, `remove_extra_whitespaces`).
//!
//! The `tokenizers` pipeline follows SentencePiece's own order, as transformers' converter
//! builds it from a `spiece.model`: the charsmap (`Precompiled`), then, with
//! `remove_extra_whitespaces`, leading and trailing spaces dropped and runs of spaces made one;
//! spaces escaped to U+2581; the dummy prefix (`Metaspace`, which skips it when the text already
//! starts with U+2581, so a leading U+2581 is doubled first, as SentencePiece would prefix it).
//! Pieces SentencePiece never emits from text (control, unknown and unused pieces: `<pad>`,
//! `</s>`, `<unk>`, the converter's `[PADn]` fillers) and user-defined pieces (T5's sentinels,
//! which llama.cpp matches in the raw text) become added tokens, so the unigram search never
//! picks them; their scores are set to 0 in the model, because `tokenizers` derives the unknown
//! piece's penalty from the lowest score of all pieces and SentencePiece from the normal
//! pieces only. `</s>` is appended unless `tokenizer.ggml.add_eos_token` is false (llama.cpp's
//! default for `t5` is to add it, as mT5's tokenizer does).

use serde_json::{json, Value};

use super::super::gguf::{GgufFile, MetadataArray};
use super::super::ModelError;

/// SentencePiece's piece types as GGUF's `tokenizer.ggml.token_type` stores them.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

pub const CHARSMAP_KEY: &str = "tokenizer.ggml.precompiled_charsmap";

/// The `tokenizer.json` text of a GGUF `t5` tokenizer, and its EOS id.
pub struct UnigramTokenizer {
    pub json: String,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

pub fn t5_tokenizer_json(g: &GgufFile) -> Result<UnigramTokenizer, ModelError> {
    let m = g.metadata();
    let unsupported = |reason: String| ModelError::UnsupportedTokenizer { path: g.path().to_path_buf(), reason };
    let damaged = |reason: String| unsupported(format!("{reason}; the file's vocabulary is damaged (re-download or re-convert it)"));
    let kind = m.get_str("tokenizer.ggml.model")?;
    if kind != "t5" {
        return Err(unsupported(format!(
            "tokenizer.ggml.model '{kind}' in a t5 file: polyprune imports T5 models with SentencePiece's unigram tokenizer \
             ('t5', what llama.cpp writes for mT5 and T5 v1.1); import the Hugging Face folder instead"
        )));
    }
    let tokens = m.get_str_array("tokenizer.ggml.tokens")?;
    let scores = m.get_f32_array("tokenizer.ggml.scores")?;
    let types = m.get_i32_array("tokenizer.ggml.token_type")?;
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        return Err(damaged(format!("{} tokens, {} scores and {} token types", tokens.len(), scores.len(), types.len())));
    }
    let charsmap = match m.get_opt::<&MetadataArray>(CHARSMAP_KEY)? {
        Some(MetadataArray::U8(bytes)) => bytes.as_slice(),
        Some(other) => return Err(damaged(format!("{CHARSMAP_KEY} is an {}, not bytes", other.describe()))),
        None => {
            return Err(unsupported(format!(
                "{CHARSMAP_KEY} is missing: without SentencePiece's normalization rules the text would be tokenized \
                 differently from the model's training (full-width letters, ligatures, spacing); re-convert the model \
                 with llama.cpp's convert_hf_to_gguf.py from a folder holding its spiece.model, or import the Hugging \
                 Face folder"
            )))
        }
    };
    check_charsmap(charsmap).map_err(|e| damaged(format!("{CHARSMAP_KEY} is not a SentencePiece charsmap ({e})")))?;
    let id = |key: &str| -> Result<Option<u32>, ModelError> {
        let v = m.get_opt::<u32>(key)?;
        if let Some(v) = v.filter(|&v| v as usize >= tokens.len()) {
            return Err(damaged(format!("{key} {v} is past the {} tokens", tokens.len())));
        }
        Ok(v)
    };
    let unk = match id("tokenizer.ggml.unknown_token_id")? {
        Some(u) => u,
        None => types.iter().position(|&t| t == UNKNOWN).map(|i| i as u32).ok_or_else(|| damaged("no unknown piece".into()))?,
    };
    let eos = id("tokenizer.ggml.eos_token_id")?.unwrap_or(1);
    let pad = id("tokenizer.ggml.padding_token_id")?.unwrap_or(0);
    let add_eos = m.get_opt::<bool>("tokenizer.ggml.add_eos_token")?.unwrap_or(true);
    let add_prefix = m.get_opt::<bool>("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let remove_extra = m.get_opt::<bool>("tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(true);

    let mut vocab = Vec::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (i, ((piece, &score), &kind)) in tokens.iter().zip(&scores).zip(&types).enumerate() {
        let emitted_from_text = matches!(kind, NORMAL | BYTE) && i as u32 != unk;
        vocab.push(json!([piece, if emitted_from_text { score as f64 } else { 0.0 }]));
        if !emitted_from_text && !piece.is_empty() {
            let special = kind != USER_DEFINED || is_sentinel(piece);
            added.push(json!({"id": i, "content": piece, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": special}));
        }
        if !matches!(kind, NORMAL | UNKNOWN | CONTROL | USER_DEFINED | UNUSED | BYTE) {
            return Err(damaged(format!("token {i} has type {kind}, not a SentencePiece piece type (1 to 6)")));
        }
    }
    let mut normalizers = vec![json!({"type": "Precompiled", "precompiled_charsmap": base64(charsmap)})];
    if remove_extra {
        normalizers.push(json!({"type": "Replace", "pattern": {"Regex": r"\A +| +\z"}, "content": ""}));
        normalizers.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}));
    if add_prefix {
        normalizers.push(json!({"type": "Replace", "pattern": {"Regex": "\\A\u{2581}"}, "content": "\u{2581}\u{2581}"}));
    }
    let scheme = if add_prefix { "always" } else { "never" };
    let metaspace = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": scheme, "split": true});
    let eos_piece = tokens[eos as usize].clone();
    let post = if add_eos {
        json!({
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos_piece, "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos_piece, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": eos_piece, "type_id": 0}}],
            "special_tokens": {eos_piece.clone(): {"id": eos_piece, "ids": [eos], "tokens": [eos_piece]}}
        })
    } else {
        Value::Null
    };
    let value = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": post,
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": false}
    });
    let json = serde_json::to_string(&value).expect("json serialises");
    json.parse::<tokenizers::Tokenizer>().map_err(|e| damaged(format!("the unigram vocabulary does not load ({e})")))?;
    Ok(UnigramTokenizer { json, eos, pad, unk })
}

/// T5's sentinel pieces, `<extra_id_N>`: special tokens in transformers' T5 tokenizer.
fn is_sentinel(piece: &str) -> bool {
    piece
        .strip_prefix("<extra_id_")
        .and_then(|r| r.strip_suffix('>'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a precompiled charsmap as the `tokenizers` normalizer will read it, so that a damaged
/// file is refused at import instead of failing (or indexing out of bounds) on some later text:
/// a little-endian u32 byte size of the double-array trie, the trie's 32-bit units, then the
/// NUL-separated replacement strings. The trie is darts-clone's, allocated in blocks of 256
/// units, so a node's children (its base XOR a byte) stay inside the array when every reachable
/// base does; each reachable leaf must point at the start of a character of the strings.
fn check_charsmap(bytes: &[u8]) -> Result<(), String> {
    let size = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize).ok_or("fewer than 4 bytes")?;
    if size == 0 || !size.is_multiple_of(4) || size > bytes.len() - 4 {
        return Err(format!("trie size {size} for {} bytes", bytes.len()));
    }
    let units: Vec<u32> = bytes[4..4 + size].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if !units.len().is_multiple_of(256) {
        return Err(format!("{} trie units, not whole blocks of 256", units.len()));
    }
    let strings = std::str::from_utf8(&bytes[4 + size..]).map_err(|_| "replacement strings are not UTF-8".to_string())?;
    let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
    let label = |u: u32| u & ((1 << 31) | 0xFF);
    let has_leaf = |u: u32| (u >> 8) & 1 == 1;
    let value = |u: u32| (u & ((1 << 31) - 1)) as usize;
    let root = offset(units[0]);
    if root >= units.len() {
        return Err("the root points outside the trie".into());
    }
    let mut seen = vec![false; units.len()];
    let mut stack = vec![root];
    while let Some(base) = stack.pop() {
        if std::mem::replace(&mut seen[base], true) {
            continue;
        }
        for c in 1..=255u32 {
            let child = base ^ c as usize;
            let unit = units[child];
            if label(unit) != c {
                continue;
            }
            let next = child ^ offset(unit);
            if next >= units.len() {
                return Err(format!("unit {child} points outside the trie"));
            }
            if has_leaf(unit) {
                let at = value(units[next]);
                if at >= strings.len() || !strings.is_char_boundary(at) {
                    return Err(format!("a leaf points at byte {at} of {} bytes of replacements", strings.len()));
                }
            }
            stack.push(next);
        }
    }
    Ok(())
}

/// Standard base64 with padding, as `tokenizers` stores a charsmap in its JSON.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648's test vectors.
    #[test]
    fn base64_follows_rfc_4648() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn sentinels_are_extra_ids_only() {
        assert!(is_sentinel("<extra_id_0>") && is_sentinel("<extra_id_99>"));
        assert!(!is_sentinel("<extra_id_>") && !is_sentinel("<extra_id_x>") && !is_sentinel("<mask>"));
    }

    /// Truncated and inconsistent charsmaps are named, not read past their end.
    #[test]
    fn damaged_charsmaps_are_refused() {
        assert!(check_charsmap(&[1, 0]).unwrap_err().contains("fewer than 4"));
        assert!(check_charsmap(&[8, 0, 0, 0, 1, 2]).unwrap_err().contains("trie size 8"));
        let mut one_block = (1024u32).to_le_bytes().to_vec();
        one_block.extend(vec![0u8; 1024]);
        // An empty trie of one block: the root's base is 0, no child carries its label.
        assert_eq!(check_charsmap(&one_block), Ok(()));
        let mut bad_root = one_block.clone();
        bad_root[4..8].copy_from_slice(&(512u32 << 10).to_le_bytes());
        assert!(check_charsmap(&bad_root).unwrap_err().contains("root"));
        let mut short = (12u32).to_le_bytes().to_vec();
        short.extend(vec![0u8; 12]);
        assert!(check_charsmap(&short).unwrap_err().contains("blocks of 256"));
    }

    use crate::model::gguf::test_builder::{EncodedValue as V, GgufBuilder};

    fn array(type_id: u32, values: Vec<Vec<u8>>) -> V {
        let mut out = type_id.to_le_bytes().to_vec();
        out.extend_from_slice(&(values.len() as u64).to_le_bytes());
        out.extend(values.into_iter().flatten());
        V::raw(9, out)
    }

    /// A charsmap that maps nothing: one empty block of the trie and no replacement strings.
    fn identity_charsmap() -> Vec<u8> {
        let mut bytes = 1024u32.to_le_bytes().to_vec();
        bytes.extend(vec![0u8; 1024]);
        bytes
    }

    /// T5's layout in miniature: <pad>, </s>, <unk> at 0, 1, 2, normal pieces, a sentinel
    /// (user-defined) and a converter's [PAD] filler (unused).
    fn t5_vocab(charsmap: Option<Vec<u8>>, model: &str) -> GgufBuilder {
        let tokens = ["<pad>", "</s>", "<unk>", "\u{2581}", "a", "b", "\u{2581}a", "\u{2581}b", "ab", "<extra_id_0>", "[PAD10]"];
        let scores = [0.0f32, 0.0, 0.0, -2.0, -3.0, -3.0, -1.5, -1.5, -2.5, -1000.0, -10000.0];
        let types = [3i32, 3, 2, 1, 1, 1, 1, 1, 1, 4, 5];
        let mut b = GgufBuilder::new()
            .kv("tokenizer.ggml.model", V::string(model))
            .kv("tokenizer.ggml.tokens", V::string_array(&tokens))
            .kv("tokenizer.ggml.scores", array(6, scores.iter().map(|s| s.to_le_bytes().to_vec()).collect()))
            .kv("tokenizer.ggml.token_type", array(5, types.iter().map(|t| t.to_le_bytes().to_vec()).collect()))
            .kv("tokenizer.ggml.eos_token_id", V::u32(1))
            .kv("tokenizer.ggml.padding_token_id", V::u32(0))
            .kv("tokenizer.ggml.unknown_token_id", V::u32(2))
            .kv("tokenizer.ggml.add_space_prefix", V::bool(true))
            .kv("tokenizer.ggml.remove_extra_whitespaces", V::bool(true));
        if let Some(map) = charsmap {
            b = b.kv(CHARSMAP_KEY, array(0, map.into_iter().map(|b| vec![b]).collect()));
        }
        b
    }

    fn import(b: GgufBuilder) -> Result<UnigramTokenizer, ModelError> {
        t5_tokenizer_json(&GgufFile::from_bytes("t5.gguf", b.build()).unwrap())
    }

    /// Worked by hand: the outer spaces go, runs become one, spaces are escaped and one U+2581
    /// is prefixed; each text's best segmentation by total score is unique (commented below).
    #[test]
    fn whitespace_sentinels_and_eos_follow_sentencepiece_and_t5() {
        let tok: tokenizers::Tokenizer = import(t5_vocab(Some(identity_charsmap()), "t5")).unwrap().json.parse().unwrap();
        let ids = |text: &str| tok.encode(text, true).unwrap().get_ids().to_vec();
        // "▁a▁b": ▁a ▁b (-3) beats ▁ a ▁ b and the rest; </s> appended.
        assert_eq!(ids("a b"), [6, 7, 1]);
        assert_eq!(ids("  a   b  "), [6, 7, 1]);
        // "▁ba": ▁b a = -4.5 beats ▁ b a = -8.
        assert_eq!(ids("ba"), [7, 4, 1]);
        // The sentinel is cut out whole; the text after it gets its own prefix (as transformers' T5 does).
        assert_eq!(ids("a<extra_id_0>b"), [6, 9, 7, 1]);
        // "c" is no piece: one <unk>; the [PAD] filler is never matched inside words.
        assert_eq!(ids("c"), [3, 2, 1]);
        assert_eq!(ids(""), [1]);
        let json: Value = serde_json::from_str(&import(t5_vocab(Some(identity_charsmap()), "t5")).unwrap().json).unwrap();
        let special: Vec<(u64, bool)> =
            json["added_tokens"].as_array().unwrap().iter().map(|a| (a["id"].as_u64().unwrap(), a["special"].as_bool().unwrap())).collect();
        assert_eq!(special, [(0, true), (1, true), (2, true), (9, true), (10, true)]);
        // Pieces the search must not pick score 0, so they do not lower the unknown penalty.
        assert_eq!(json["model"]["vocab"][10][1], 0.0);
        assert_eq!(json["model"]["vocab"][6][1], -1.5);
    }

    #[test]
    fn a_missing_charsmap_or_another_tokenizer_model_is_refused_by_name() {
        let e = import(t5_vocab(None, "t5")).err().unwrap().to_string();
        assert!(e.contains("tokenizer.ggml.precompiled_charsmap is missing") && e.contains("spiece.model"), "{e}");
        let e = import(t5_vocab(Some(identity_charsmap()), "llama")).err().unwrap().to_string();
        assert!(e.contains("tokenizer.ggml.model 'llama'") && e.contains("'t5'"), "{e}");
        let e = import(t5_vocab(Some(vec![9, 0, 0, 0, 1]), "t5")).err().unwrap().to_string();
        assert!(e.contains("not a SentencePiece charsmap") && e.contains("damaged"), "{e}");
    }
}
