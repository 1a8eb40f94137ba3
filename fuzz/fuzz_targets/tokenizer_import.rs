//! Tokenizer import (`tokenizer.json` from a GGUF vocabulary) on arbitrary vocabularies.
//! An input that starts with the GGUF magic is read as a whole file (the seeds are real
//! checkpoints); any other input is taken as a structured vocabulary (tokens, scores, merges,
//! special ids, pre-tokenizer name) and written into a GGUF file first, so mutations reach the
//! converter instead of dying in the container's header. A `tokenizer.json` the import accepts
//! must load in `tokenizers` and encode text.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use polyprune::model::gguf::GgufFile;
use polyprune::model::import::tokenizer::tokenizer_json;

#[derive(Arbitrary, Debug)]
struct Vocabulary {
    sentencepiece: bool,
    pre: Option<String>,
    tokens: Vec<String>,
    scores: Vec<f32>,
    token_types: Vec<i32>,
    merges: Vec<String>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: Option<bool>,
}

/// Just enough of a GGUF v3 writer for metadata-only files.
#[derive(Default)]
struct GgufWriter {
    kv: Vec<u8>,
    count: u64,
}

const U32: u32 = 4;
const I32: u32 = 5;
const F32: u32 = 6;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufWriter {
    fn key(&mut self, key: &str, kind: u32) {
        put_str(&mut self.kv, key);
        self.kv.extend_from_slice(&kind.to_le_bytes());
        self.count += 1;
    }
    fn string(&mut self, key: &str, value: &str) {
        self.key(key, STRING);
        put_str(&mut self.kv, value);
    }
    fn u32(&mut self, key: &str, value: u32) {
        self.key(key, U32);
        self.kv.extend_from_slice(&value.to_le_bytes());
    }
    fn bool(&mut self, key: &str, value: bool) {
        self.key(key, BOOL);
        self.kv.push(u8::from(value));
    }
    fn array(&mut self, key: &str, kind: u32, count: usize, bytes: impl FnOnce(&mut Vec<u8>)) {
        self.key(key, ARRAY);
        self.kv.extend_from_slice(&kind.to_le_bytes());
        self.kv.extend_from_slice(&(count as u64).to_le_bytes());
        bytes(&mut self.kv);
    }
    fn finish(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.resize(out.len().next_multiple_of(32), 0);
        out
    }
}

fn gguf_of(v: &Vocabulary) -> Vec<u8> {
    let mut w = GgufWriter::default();
    w.string("general.architecture", "llama");
    w.string("tokenizer.ggml.model", if v.sentencepiece { "llama" } else { "gpt2" });
    if let Some(pre) = &v.pre {
        w.string("tokenizer.ggml.pre", pre);
    }
    w.array("tokenizer.ggml.tokens", STRING, v.tokens.len(), |out| v.tokens.iter().for_each(|t| put_str(out, t)));
    w.array("tokenizer.ggml.scores", F32, v.scores.len(), |out| v.scores.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes())));
    w.array("tokenizer.ggml.token_type", I32, v.token_types.len(), |out| {
        v.token_types.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()))
    });
    w.array("tokenizer.ggml.merges", STRING, v.merges.len(), |out| v.merges.iter().for_each(|m| put_str(out, m)));
    if let Some(id) = v.bos {
        w.u32("tokenizer.ggml.bos_token_id", id);
    }
    if let Some(id) = v.eos {
        w.u32("tokenizer.ggml.eos_token_id", id);
    }
    if let Some(add) = v.add_bos {
        w.bool("tokenizer.ggml.add_bos_token", add);
    }
    w.finish()
}

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"GGUF") {
        data.to_vec()
    } else {
        let Ok(vocabulary) = Vocabulary::arbitrary(&mut arbitrary::Unstructured::new(data)) else { return };
        gguf_of(&vocabulary)
    };
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", bytes) else { return };
    let Ok(tok) = tokenizer_json(&file) else { return };
    let tokenizer: tokenizers::Tokenizer = tok.json.parse().expect("an imported tokenizer.json loads");
    let _ = tokenizer.encode("Hello wörld 123 \u{2581}x", true);
});
