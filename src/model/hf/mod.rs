//! Hugging Face folders in and out: `config.json` + `model.safetensors` (or shards with
//! `model.safetensors.index.json`) + `tokenizer.json`, the form researchers publish models in.
//!
//! [`import::import_hf`] writes the same model folder a GGUF import writes (graphs, key/value
//! cache graphs, per-block parts, card, GGUF-style layer names), so every command works on it
//! unchanged; [`export::export_hf`] turns a model folder, dense or pruned, back into a folder
//! transformers' `AutoModelForCausalLM.from_pretrained` loads. [`names`] maps the graph's
//! tensor names to the checkpoint's and says how each tensor's layout differs.

pub mod config;
pub mod export;
pub mod import;
pub mod names;
pub mod safetensors;
pub mod t5;
pub mod tokens;

use serde::{Deserialize, Serialize};

pub use self::safetensors::FloatType;

/// What a card records about a model imported from a Hugging Face folder, for export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HfOrigin {
    /// The dtype most of the checkpoint's weights had (an export writes it unless told).
    pub dtype: FloatType,
    /// Which file gave each special token.
    pub special_tokens: Vec<tokens::TokenSource>,
}
