//! The special tokens of a Hugging Face folder, and which file gave each.
//!
//! Three files may name them: `tokenizer_config.json` (by string: what the tokenizer itself
//! prepends and appends, and what lm-evaluation-harness uses as its prefix token),
//! `generation_config.json` (what `generate` stops on; transformers writes it from config.json
//! when absent and prefers it when present) and `config.json`. BOS is what scoring prepends,
//! so the tokenizer's wins; EOS and pad are generation's, so generation_config.json wins; the
//! others fill in what the first lacks.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::token_id_value;
use crate::model::ModelError;

pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";
pub const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";

/// One special token's id and the file it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSource {
    /// `bos`, `eos` or `pad`.
    pub role: String,
    pub id: u32,
    pub file: String,
}

pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    /// What scoring prepends: BOS when the tokenizer adds it, else the end-of-text token.
    pub start: Option<u32>,
    pub sources: Vec<TokenSource>,
}

fn read_json(path: &Path) -> Result<Option<Value>, ModelError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::Unusable { path: path.to_path_buf(), reason: format!("not valid JSON ({e})") })
}

/// A token named by string (or by an added-token object's `content`) in a tokenizer config.
fn tokenizer_token(cfg: &Value, role: &str, tok: &tokenizers::Tokenizer) -> Option<u32> {
    let v = cfg.get(format!("{role}_token"))?;
    let text = v.as_str().or_else(|| v.get("content").and_then(Value::as_str))?;
    tok.token_to_id(text)
}

/// Reads the special tokens of the folder `dir` with its loaded tokenizer.
pub fn read(dir: &Path, config: &Value, tok: &tokenizers::Tokenizer) -> Result<SpecialTokens, ModelError> {
    let tokenizer_cfg = read_json(&dir.join(TOKENIZER_CONFIG))?;
    let generation = read_json(&dir.join(GENERATION_CONFIG))?;
    let from_json = |v: &Option<Value>, role: &str| v.as_ref().and_then(|v| v.get(format!("{role}_token_id"))).and_then(token_id_value);
    let config = Some(config.clone());
    let mut sources = Vec::new();
    let mut pick = |role: &str, order: &[&str]| -> Option<u32> {
        for file in order {
            let id = match *file {
                TOKENIZER_CONFIG => tokenizer_cfg.as_ref().and_then(|c| tokenizer_token(c, role, tok)),
                GENERATION_CONFIG => from_json(&generation, role),
                _ => from_json(&config, role),
            };
            if let Some(id) = id {
                sources.push(TokenSource { role: role.into(), id, file: (*file).into() });
                return Some(id);
            }
        }
        None
    };
    let bos = pick("bos", &[TOKENIZER_CONFIG, GENERATION_CONFIG, super::config::CONFIG_FILE]);
    let eos = pick("eos", &[GENERATION_CONFIG, super::config::CONFIG_FILE, TOKENIZER_CONFIG]);
    let pad = pick("pad", &[GENERATION_CONFIG, super::config::CONFIG_FILE, TOKENIZER_CONFIG]);
    // Whether the tokenizer itself puts BOS first: what it does, not what a flag claims.
    let adds_bos = bos.is_some_and(|b| tok.encode("a", true).map(|e| e.get_ids().first() == Some(&b)).unwrap_or(false));
    let start = if adds_bos { bos } else { eos.or(bos) };
    Ok(SpecialTokens { bos, eos, pad, start, sources })
}
