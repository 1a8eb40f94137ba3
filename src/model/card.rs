//! The model card: a small JSON file beside `model.onnx` that says what the graph is.
//!
//! It names the architecture, where the weights came from, the tokenizer, and, most
//! importantly for pruning, every prunable linear layer: which initializer, which block, which
//! role, its shape and the tensor that feeds it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::decoder::{DecoderSpec, LinearLayer};
use super::ModelError;

pub const CARD_FILE: &str = "card.json";
pub const CARD_FORMAT: &str = "polyprune-model-card/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceFile {
    pub file: String,
    pub sha256: String,
}

/// Per-block graphs sharing the main weight file (imported models only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parts {
    pub embed: String,
    pub blocks: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub name: String,
    pub architecture: String,
    pub source: Option<SourceFile>,
    pub graph: String,
    pub tokenizer: String,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    /// The token prepended to every text before scoring (and to calibration windows): BOS
    /// where the model's tokenizer adds one, else the end-of-text token that separated
    /// documents in pre-training.
    #[serde(default)]
    pub start_token_id: Option<u32>,
    /// Longest input the graph accepts (rotary tables or position embeddings).
    pub max_positions: usize,
    pub vocab_size: usize,
    pub blocks: usize,
    /// Graph inputs polyprune feeds, by name.
    pub inputs: Vec<String>,
    /// True when the graph already has `token_logprobs` and `argmax` outputs.
    pub has_scoring_heads: bool,
    pub layers: Vec<LinearLayer>,
    pub spec: Option<DecoderSpec>,
    pub parts: Option<Parts>,
    /// Set for folders written by `model synth`: random weights in a named real shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticOrigin>,
    /// Set for folders imported from a Hugging Face folder: its dtype and token sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<super::hf::HfOrigin>,
    /// The type the weight matrices are stored in (absent: f32, as every folder written
    /// before 16-bit weights); vectors are always f32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_dtype: Option<crate::runtime::FloatType>,
}

/// Where a synthetic model's shape came from, and how much of it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyntheticOrigin {
    /// The shape's name in `model synth --list` (e.g. `llama-3-8b`).
    pub like: String,
    pub seed: u64,
    /// Blocks written; fewer than `shape_blocks` when the model was truncated with `--blocks`.
    pub blocks: usize,
    /// Blocks of the real model.
    pub shape_blocks: usize,
    pub truncated: bool,
    /// Where `tokenizer.json` came from (a copied file, or the padded byte-level one).
    pub tokenizer: String,
}

impl ModelCard {
    /// The type the weight matrices are stored in.
    pub fn matrix_type(&self) -> crate::runtime::FloatType {
        self.weight_dtype.unwrap_or_default()
    }

    /// The start token to prepend, if the model has any.
    pub fn start_token(&self) -> Option<u32> {
        self.start_token_id.or(self.bos_token_id).or(self.eos_token_id)
    }

    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        // The graphs of a folder read here load through the runtime's compute-type rebuild.
        crate::runtime::install_rebuild(super::compute::graph_for_compute);
        let path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| ModelError::BadCard { path: path.clone(), reason: e.to_string() })?;
        if card.format != CARD_FORMAT {
            return Err(ModelError::BadCard { path, reason: format!("format '{}' is not '{}'", card.format, CARD_FORMAT) });
        }
        Ok(card)
    }

    pub fn write(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(CARD_FILE);
        let text = serde_json::to_string_pretty(self).expect("card serialises");
        crate::util::write_atomic(&path, text.as_bytes()).map_err(|e| ModelError::io(&path, e))
    }
}
