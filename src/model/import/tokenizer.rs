//! `tokenizer.json` derived from the vocabulary stored in a GGUF file.
//!
//! Two GGUF tokenizer families are covered:
//! * `llama` (SentencePiece-style, Gemma's): spaces become U+2581, no prefix space, then adjacent
//!   pieces are merged greedily, always the pair whose merged piece has the highest score;
//!   characters that are not pieces fall back to `<0xNN>` byte tokens. This is exactly a BPE whose
//!   merge list holds every split of every piece into two pieces, ranked by the merged piece's
//!   score (ties by id), so it is written as a `tokenizers` BPE model with byte fallback.
//!   User-defined pieces (token type 4: Gemma's runs of spaces, tabs and newlines, its HTML
//!   tags) are not merged into: SentencePiece cuts them out of the text first, longest match
//!   leftmost, and BPE-merges only what lies between them. They become added tokens, matched
//!   after the space -> U+2581 normalizer, so a run of spaces is one token (`▁mi ▁▁ sono`, not
//!   `▁mi ▁ ▁sono`), as SentencePiece itself encodes it (`scripts/gemma_tokenizer_reference.py`).
//!   llama.cpp's converter stores their U+2581 as plain spaces, which the normalizer undoes.
//! * `gpt2` (byte-level BPE, Llama 3 / Qwen2 / SmolLM2 / BLOOM): the file stores the merges; the
//!   pre-tokenizer is chosen from `tokenizer.ggml.pre`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::super::gguf::GgufFile;
use super::super::ModelError;

pub struct TokenizerJson {
    pub json: String,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// BOS when the tokenizer adds it, else `<|endoftext|>` if the vocabulary has it, else EOS.
    pub start: Option<u32>,
}

pub fn tokenizer_json(g: &GgufFile) -> Result<TokenizerJson, ModelError> {
    let kind = g.metadata().get_str("tokenizer.ggml.model")?.to_string();
    let tokens = g.metadata().get_str_array("tokenizer.ggml.tokens")?;
    let bos = g.metadata().get_opt::<u32>("tokenizer.ggml.bos_token_id")?;
    let eos = g.metadata().get_opt::<u32>("tokenizer.ggml.eos_token_id")?;
    let add_bos = g.metadata().get_opt::<bool>("tokenizer.ggml.add_bos_token")?.unwrap_or(kind == "llama");
    let damaged = |reason: String| ModelError::UnsupportedTokenizer {
        path: g.path().to_path_buf(),
        reason: format!("{reason}; the file's vocabulary is damaged (re-download or re-convert it)"),
    };
    for (key, id) in [("bos", bos), ("eos", eos)] {
        if id.is_some_and(|id| id as usize >= tokens.len()) {
            return Err(damaged(format!("tokenizer.ggml.{key}_token_id {} is past the {} tokens", id.unwrap_or_default(), tokens.len())));
        }
    }
    let bos_for_template = if add_bos { bos.map(|id| (id, tokens[id as usize].clone())) } else { None };
    let json = match kind.as_str() {
        "llama" => {
            let scores = g.metadata().get_f32_array("tokenizer.ggml.scores")?;
            if scores.len() != tokens.len() {
                return Err(damaged(format!("{} scores for {} tokens", scores.len(), tokens.len())));
            }
            let types = g.metadata().get_opt::<Vec<i32>>("tokenizer.ggml.token_type")?.unwrap_or_default();
            if !types.is_empty() && types.len() != tokens.len() {
                return Err(damaged(format!("{} token types for {} tokens", types.len(), tokens.len())));
            }
            sentencepiece_bpe(tokens, &scores, &types, bos_for_template)
        }
        "gpt2" => {
            let merges = g.metadata().get_str_array("tokenizer.ggml.merges")?;
            let pre = g.metadata().get_opt::<&str>("tokenizer.ggml.pre")?.unwrap_or("default").to_string();
            byte_level_bpe(tokens, merges, &pre, bos_for_template)
                .map_err(|reason| ModelError::UnsupportedTokenizer { path: g.path().to_path_buf(), reason })?
        }
        other => {
            return Err(ModelError::UnsupportedTokenizer {
                path: g.path().to_path_buf(),
                reason: format!("tokenizer.ggml.model '{other}' (supported: llama, gpt2)"),
            })
        }
    };
    let end_of_text = tokens.iter().position(|t| t == "<|endoftext|>").map(|i| i as u32);
    let start = if add_bos { bos } else { end_of_text.or(eos) };
    Ok(TokenizerJson { json: serde_json::to_string(&json).expect("json serialises"), bos, eos, start })
}

/// Piece -> id, the later id winning when a piece repeats (as a dictionary built in order would).
fn vocab_map(tokens: &[String]) -> HashMap<&str, u32> {
    tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect()
}

fn vocab_json(vocab: &HashMap<&str, u32>) -> Value {
    let mut entries: Vec<(&str, u32)> = vocab.iter().map(|(k, v)| (*k, *v)).collect();
    entries.sort_by_key(|e| e.1);
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

/// Every way to build a piece from two pieces, best score first.
fn sentencepiece_merges<'a>(vocab: &HashMap<&'a str, u32>, scores: &[f32]) -> Vec<(&'a str, &'a str)> {
    let mut ranked: Vec<(f32, u32, usize, &str, &str)> = Vec::new();
    for (&piece, &id) in vocab {
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            if let (Some((l, _)), Some((r, _))) = (vocab.get_key_value(left), vocab.get_key_value(right)) {
                ranked.push((scores[id as usize], id, split, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().map(|(_, _, _, l, r)| (l, r)).collect()
}

fn bos_template(bos: Option<(u32, String)>) -> Value {
    match bos {
        None => Value::Null,
        Some((id, piece)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {piece.clone(): {"id": piece, "ids": [id], "tokens": [piece]}}
        }),
    }
}

/// GGUF's `tokenizer.ggml.token_type` of a piece SentencePiece treats as user-defined.
const USER_DEFINED: i32 = 4;

/// The user-defined pieces as `tokenizers` added tokens: matched in the normalized text (their
/// spaces normalized like the text's), not special (they are text, kept when decoding).
fn user_defined_tokens(tokens: &[String], types: &[i32], vocab: &HashMap<&str, u32>) -> Vec<Value> {
    let mut pieces: Vec<&str> =
        tokens.iter().zip(types).filter(|(t, &kind)| kind == USER_DEFINED && !t.is_empty()).map(|(t, _)| t.as_str()).collect();
    pieces.sort_by_key(|p| vocab[p]);
    pieces.dedup();
    pieces
        .into_iter()
        .map(|piece| {
            json!({"id": vocab[piece], "content": piece, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": true, "special": false})
        })
        .collect()
}

fn sentencepiece_bpe(tokens: &[String], scores: &[f32], types: &[i32], bos: Option<(u32, String)>) -> Value {
    let vocab = vocab_map(tokens);
    let merges: Vec<Value> = sentencepiece_merges(&vocab, scores).into_iter().map(|(l, r)| json!([l, r])).collect();
    let unk = tokens.iter().find(|t| t.as_str() == "<unk>").cloned();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": user_defined_tokens(tokens, types, &vocab),
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
        "pre_tokenizer": null,
        "post_processor": bos_template(bos),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"}
        ]},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab_json(&vocab), "merges": merges
        }
    })
}

/// Split patterns of the byte-level pre-tokenizers GGUF files name in `tokenizer.ggml.pre`.
fn pre_tokenizer(pre: &str) -> Result<Value, String> {
    let byte_level =
        |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    const LLAMA3: &str =
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // BLOOM splits before a space and around a fixed set of punctuation (Latin, CJK, Devanagari,
    // Urdu, Arabic); its tokenizer.json writes the set as a class nested in the negated class,
    // llama.cpp flat, as here: the same characters.
    const BLOOM: &str = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{ff0c}\u{3001}\u{0964}\u{06d4}\u{060c})]+";
    Ok(match pre {
        "default" | "gpt2" | "gpt-2" => byte_level(true),
        // llama.cpp gives Command-R (Aya-23) the same split: single digits, then GPT-2's regex.
        "smollm" | "starcoder" | "command-r" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [split(LLAMA3), byte_level(false)]}),
        "qwen2" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2), byte_level(false)]}),
        "bloom" => json!({"type": "Sequence", "pretokenizers": [split(BLOOM), byte_level(false)]}),
        other => {
            return Err(format!(
            "pre-tokenizer '{other}' is not supported (supported: default, gpt2, smollm, starcoder, command-r, llama-bpe, qwen2, bloom); \
                 export the model with its own tokenizer.json and use `polyprune model inspect` instead"
        ))
        }
    })
}

pub(crate) fn byte_level_bpe(tokens: &[String], merges: &[String], pre: &str, bos: Option<(u32, String)>) -> Result<Value, String> {
    let vocab = vocab_map(tokens);
    let merges: Vec<Value> = merges
        .iter()
        .map(|m| match m.split_once(' ') {
            // `tokenizers` refuses a merge whose pieces, or whose result, the vocabulary lacks:
            // refused here, the import names the damaged file instead of writing a
            // tokenizer.json that every later command fails to load.
            Some((l, r)) if [l, r, format!("{l}{r}").as_str()].iter().all(|p| vocab.contains_key(p)) => Ok(json!([l, r])),
            Some(_) => Err(format!(
                "merge '{m}' joins pieces that tokenizer.ggml.tokens does not hold; the file's vocabulary is damaged (re-download or re-convert it)"
            )),
            None => Err(format!("merge '{m}' is not two pieces separated by a space")),
        })
        .collect::<Result<_, _>>()?;
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        // Qwen2's tokenizer composes Unicode (NFC) before splitting; GGUF does not record it.
        "normalizer": if pre == "qwen2" { json!({"type": "NFC"}) } else { Value::Null },
        "pre_tokenizer": pre_tokenizer(pre)?,
        "post_processor": bos_template(bos),
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            // Llama 3's tokenizer takes a pre-token that is itself in the vocabulary as one token.
            "ignore_merges": matches!(pre, "llama-bpe" | "llama3"),
            "vocab": vocab_json(&vocab), "merges": merges
        }
    }))
}

/// Inputs the fuzzer (`fuzz/fuzz_targets/tokenizer_import.rs`) found mishandled, reduced to
/// the smallest vocabulary that shows each.
#[cfg(test)]
mod fuzz_regressions {
    use super::*;
    use crate::model::gguf::test_builder::{EncodedValue as V, GgufBuilder};

    fn import(builder: GgufBuilder) -> Result<TokenizerJson, ModelError> {
        tokenizer_json(&GgufFile::from_bytes("vocab.gguf", builder.build()).unwrap())
    }

    fn byte_level(tokens: &[&str], merges: &[&str]) -> GgufBuilder {
        GgufBuilder::new()
            .kv("tokenizer.ggml.model", V::string("gpt2"))
            .kv("tokenizer.ggml.tokens", V::string_array(tokens))
            .kv("tokenizer.ggml.merges", V::string_array(merges))
    }

    fn sentencepiece(tokens: &[&str], scores: &[f32]) -> GgufBuilder {
        let mut array = 6u32.to_le_bytes().to_vec();
        array.extend_from_slice(&(scores.len() as u64).to_le_bytes());
        array.extend(scores.iter().flat_map(|s| s.to_le_bytes()));
        GgufBuilder::new()
            .kv("tokenizer.ggml.model", V::string("llama"))
            .kv("tokenizer.ggml.tokens", V::string_array(tokens))
            .kv("tokenizer.ggml.scores", V::raw(9, array))
    }

    /// Special-token ids past the vocabulary, and fewer scores than tokens, indexed out of
    /// bounds (a panic) instead of naming the damaged file.
    #[test]
    fn ids_and_scores_that_do_not_match_the_vocabulary_are_refused() {
        let err = import(sentencepiece(&["<s>", "a"], &[0.0, -1.0]).kv("tokenizer.ggml.bos_token_id", V::u32(2))).err().unwrap();
        assert!(err.to_string().contains("bos_token_id 2 is past the 2 tokens"), "{err}");
        let err = import(byte_level(&["a"], &[]).kv("tokenizer.ggml.eos_token_id", V::u32(7))).err().unwrap();
        assert!(err.to_string().contains("eos_token_id 7 is past the 1 tokens"), "{err}");
        let err = import(sentencepiece(&["a", "b", "ab"], &[-1.0, -2.0])).err().unwrap();
        assert!(err.to_string().contains("2 scores for 3 tokens"), "{err}");
        let tok =
            import(sentencepiece(&["<s>", "a", "b", "ab"], &[0.0, -1.0, -2.0, -0.5]).kv("tokenizer.ggml.bos_token_id", V::u32(0))).unwrap();
        assert_eq!((tok.bos, tok.start), (Some(0), Some(0)));
    }

    /// A merge naming a piece the vocabulary lacks used to be written into tokenizer.json,
    /// which `tokenizers` then refused to load ("Token `d` out of vocabulary") at every use.
    #[test]
    fn merges_outside_the_vocabulary_are_refused_at_import() {
        for merge in ["a d", "d a", "b b"] {
            let err = import(byte_level(&["a", "b", "ab"], &["a b", merge])).err().expect(merge).to_string();
            assert!(err.contains(&format!("merge '{merge}'")) && err.contains("damaged"), "{merge}: {err}");
        }
        let tok = import(byte_level(&["a", "b", "ab"], &["a b"])).unwrap();
        let loaded: tokenizers::Tokenizer = tok.json.parse().unwrap();
        assert_eq!(loaded.encode("ab", false).unwrap().get_ids(), &[2]);
    }
}

/// SentencePiece's user-defined pieces, on a small vocabulary and on Gemma's own.
#[cfg(test)]
mod user_defined_pieces {
    use super::*;
    use crate::model::gguf::test_builder::{EncodedValue as V, GgufBuilder};

    fn numbers(type_id: u32, values: Vec<[u8; 4]>) -> V {
        let mut array = type_id.to_le_bytes().to_vec();
        array.extend_from_slice(&(values.len() as u64).to_le_bytes());
        array.extend(values.into_iter().flatten());
        V::raw(9, array)
    }

    fn loaded(g: &GgufFile) -> tokenizers::Tokenizer {
        tokenizer_json(g).unwrap().json.parse().unwrap()
    }

    /// The vocabulary's pieces for the ids of `text` (an added token's `get_tokens` shows its
    /// normalized text instead).
    fn pieces(tok: &tokenizers::Tokenizer, text: &str) -> Vec<String> {
        tok.encode(text, false).unwrap().get_ids().iter().map(|&id| tok.id_to_token(id).unwrap()).collect()
    }

    /// "  " (two spaces, stored as GGUF stores Gemma's) is user-defined; "▁b" outscores every
    /// other merge. By score alone "a  b" is `a ▁ ▁b`; SentencePiece cuts the user-defined
    /// run out first and merges only around it: `a`, the run, `b`. Three spaces hold the
    /// two-space run and one more (longest match first, leftmost). A literal U+2581 counts as
    /// a space (it is what a space normalizes to); tabs and newlines work the same way.
    #[test]
    fn user_defined_pieces_are_cut_out_before_merging() {
        let tokens = ["<unk>", "a", "b", "\u{2581}", "\u{2581}b", "  ", "\t\t", "\t", "<x>", "<", "x", ">", "<x"];
        let scores = [0.0f32, -1.0, -2.0, -3.0, -0.5, -1000.0, -1000.0, -1000.0, -1000.0, -4.0, -5.0, -6.0, -0.1];
        let types = [3i32, 1, 1, 1, 1, 4, 4, 4, 4, 1, 1, 1, 1];
        let gguf = |types: Option<&[i32]>| {
            let mut b = GgufBuilder::new()
                .kv("tokenizer.ggml.model", V::string("llama"))
                .kv("tokenizer.ggml.tokens", V::string_array(&tokens))
                .kv("tokenizer.ggml.scores", numbers(6, scores.iter().map(|s| s.to_le_bytes()).collect()))
                .kv("tokenizer.ggml.add_bos_token", V::bool(false));
            if let Some(types) = types {
                b = b.kv("tokenizer.ggml.token_type", numbers(5, types.iter().map(|t| t.to_le_bytes()).collect()));
            }
            GgufFile::from_bytes("vocab.gguf", b.build()).unwrap()
        };
        let tok = loaded(&gguf(Some(&types)));
        assert_eq!(pieces(&tok, "a  b"), ["a", "  ", "b"]);
        assert_eq!(pieces(&tok, "a   b"), ["a", "  ", "\u{2581}b"]);
        assert_eq!(pieces(&tok, "a \u{2581}b"), ["a", "  ", "b"]);
        assert_eq!(pieces(&tok, "a b"), ["a", "\u{2581}b"]);
        assert_eq!(pieces(&tok, "a\t\t\tb"), ["a", "\t\t", "\t", "b"]);
        // "<x" outscores everything, but "<x>" is cut out whole first.
        assert_eq!(pieces(&tok, "a<x>b"), ["a", "<x>", "b"]);
        assert_eq!(tok.decode(tok.encode("a  b<x>\t\t", false).unwrap().get_ids(), true).unwrap(), "a  b<x>\t\t");
        // Without token types (older files) nothing is user-defined: merges by score alone.
        assert_eq!(pieces(&loaded(&gguf(None)), "a  b"), ["a", "\u{2581}", "\u{2581}b"]);
        let short = GgufBuilder::new()
            .kv("tokenizer.ggml.model", V::string("llama"))
            .kv("tokenizer.ggml.tokens", V::string_array(&tokens))
            .kv("tokenizer.ggml.scores", numbers(6, scores.iter().map(|s| s.to_le_bytes()).collect()))
            .kv("tokenizer.ggml.token_type", numbers(5, types[..3].iter().map(|t| t.to_le_bytes()).collect()));
        let err = tokenizer_json(&GgufFile::from_bytes("vocab.gguf", short.build()).unwrap()).err().unwrap();
        assert!(err.to_string().contains("3 token types for 13 tokens"), "{err}");
    }

    /// Gemma 3's tokenizer.json against the sentencepiece library encoding the same texts with a
    /// model rebuilt from the GGUF's pieces, scores and types (`tests/fixtures/gemma-tokenizer/`,
    /// written by `scripts/gemma_tokenizer_reference.py`): runs of spaces, tabs and newlines
    /// in every position, HTML tags, control-token text, bytes. Exact ids.
    #[test]
    fn gemma_token_ids_equal_sentencepiece_on_runs_of_whitespace() {
        let Some(path) = crate::model::gguf::gemma_tests::model_path() else { return };
        let reference: Value = serde_json::from_str(include_str!("../../../tests/fixtures/gemma-tokenizer/cases.json")).unwrap();
        let tok = loaded(&GgufFile::open(path).unwrap());
        let cases = reference["cases"].as_array().unwrap();
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let expected: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(tok.encode(text, false).unwrap().get_ids(), expected.as_slice(), "{text:?}");
        }
        assert_eq!(cases.len(), 123);
        // The XCOPA choice that scored 16 nats off: the double space is one token (138).
        assert_eq!(pieces(&tok, " Oggi mi  sono")[1..], ["\u{2581}mi", "  ", "sono"]);
    }
}

/// BLOOM's pre-tokenizer (`tokenizer.ggml.pre = bloom`).
#[cfg(test)]
mod bloom_split {
    use super::*;
    use tokenizers::tokenizer::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, PreTokenizerWrapper};

    /// The pieces `pre` cuts `text` into, with ByteLevel's `Ġ` for a space.
    fn pieces(pre: &Value, text: &str) -> Vec<String> {
        let pre: PreTokenizerWrapper = serde_json::from_value(pre.clone()).unwrap();
        let mut split = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut split).unwrap();
        split.get_splits(OffsetReferential::Original, OffsetType::Char).into_iter().map(|(s, _, _)| s.to_string()).collect()
    }

    /// The split as bigscience/bloom's own tokenizer.json writes it: the punctuation as a class
    /// nested in the negated class.
    fn published() -> Value {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": " ?[^(\\s|[.,!?…。，、।۔،])]+"}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})
    }

    /// Worked by hand from the rule: a piece is an optional space and a run of characters that
    /// are neither whitespace nor the punctuation; everything between pieces stands alone.
    #[test]
    fn bloom_splits_before_spaces_and_around_its_punctuation() {
        let ours = pre_tokenizer("bloom").unwrap();
        assert_eq!(pieces(&ours, "Hello, world!"), ["Hello", ",", "Ġworld", "!"]);
        assert_eq!(pieces(&ours, "a  b"), ["a", "Ġ", "Ġb"]);
        // A space before a bracket matches no piece: it stands alone with the bracket.
        assert_eq!(pieces(&ours, "3.14 (pi)"), ["3", ".", "14", "Ġ(", "pi", ")"]);
        // "你好。世界，" in UTF-8 bytes as ByteLevel shows them.
        let cjk = pieces(&ours, "你好。世界，");
        assert_eq!(cjk.len(), 4, "{cjk:?}");
        // A full stop of Devanagari ends a piece like "." does.
        assert_eq!(pieces(&ours, "नमस्ते। ok").len(), 3);
    }

    /// The flat class here and the nested class of the published tokenizer.json cut every text
    /// the same way: Latin, CJK, Devanagari, Arabic and Urdu punctuation, digits, brackets, runs
    /// of whitespace.
    #[test]
    fn bloom_split_equals_the_published_tokenizer_json() {
        let texts = [
            "The cat sat on the mat... and then? It left!",
            "Der Fluss, die Stadt; das Land: (gross) | klein",
            "他说：“你好。”然后，他走了、很快…",
            "यह एक वाक्य है। दूसरा वाक्य?",
            "مرحبا، كيف حالك؟ أنا بخير۔",
            "tabs\tand\nnewlines  and   spaces 12,345.67",
        ];
        for text in texts {
            assert_eq!(pieces(&pre_tokenizer("bloom").unwrap(), text), pieces(&published(), text), "{text:?}");
        }
    }

    /// A GGUF vocabulary that names `bloom` imports, and its merges stay inside pieces.
    #[test]
    fn a_bloom_gguf_vocabulary_imports() {
        use crate::model::gguf::test_builder::{EncodedValue as V, GgufBuilder};
        let g = GgufBuilder::new()
            .kv("tokenizer.ggml.model", V::string("gpt2"))
            .kv("tokenizer.ggml.pre", V::string("bloom"))
            .kv("tokenizer.ggml.tokens", V::string_array(&["a", "b", ",", "Ġ", "Ġb", "ab", "a,"]))
            .kv("tokenizer.ggml.merges", V::string_array(&["Ġ b", "a b", "a ,"]));
        let tok: tokenizers::Tokenizer =
            tokenizer_json(&GgufFile::from_bytes("vocab.gguf", g.build()).unwrap()).unwrap().json.parse().unwrap();
        let ids = tok.encode("ab, b", false).unwrap().get_ids().to_vec();
        // "a," would merge, but "," is its own piece: ab | , | Ġb.
        assert_eq!(ids, [5, 2, 4]);
    }
}
