//! The model: its ONNX graph, the card describing it, and import from GGUF.
//!
//! A model is a folder holding `model.onnx` (+ external weights), `tokenizer.json`, and
//! usually `card.json`. Imported models always have a card; an exported model without one is
//! understood by inspecting its graph ([`graph::inspect`]). [`ModelDir::tokenizer`] is the one
//! way the library loads a model's tokenizer, so a broken `tokenizer.json` always gets the same
//! message naming the file and the fix.

pub mod builder;
pub mod card;
pub mod compute;
pub mod decoder;
pub mod fetch;
pub mod gguf;
pub mod gradient;
pub mod graph;
pub mod hf;
pub mod import;
pub mod memory;
pub mod onnx;
pub mod rope;
pub mod seq2seq;
pub mod synth;
pub mod weights;

use std::path::{Path, PathBuf};

pub use card::ModelCard;
pub use decoder::{LinearLayer, Role};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    #[error("{path}: architecture '{found}' is not supported for import (supported: {}); export the model to ONNX with its tokenizer.json instead and point --model at that folder", import::SUPPORTED.join(", "))]
    UnsupportedArchitecture { path: PathBuf, found: String },
    #[error("{path}: tensor '{tensor}' is missing; the file is incomplete or not a standard checkpoint of its architecture")]
    MissingTensor { path: PathBuf, tensor: String },
    #[error("tensor '{tensor}' has dims {found:?} but the architecture needs {expected:?} elements-wise; the file's metadata and tensors disagree")]
    TensorShape { tensor: String, expected: Vec<usize>, found: Vec<u64> },
    #[error("{path}: unsupported tokenizer: {reason}")]
    UnsupportedTokenizer { path: PathBuf, reason: String },
    #[error("{path}: not a usable model card ({reason}); re-create it with `polyprune model import`")]
    BadCard { path: PathBuf, reason: String },
    #[error("{path} is not a model folder: it has no model.onnx. Create one with `polyprune model import <file.gguf> -o <dir>` or export a model to ONNX there")]
    NotAModel { path: PathBuf },
    #[error("{path}: cannot parse the ONNX graph ({reason}); the file is truncated or not ONNX: re-export or re-import it")]
    BadGraph { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error(
        "cannot load the tokenizer {path}: {message}; re-create it with `polyprune model import` or copy the model's tokenizer.json there"
    )]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Fetch(String),
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
}

impl ModelError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io { path: path.to_path_buf(), source }
    }
}

/// A model folder opened for use: where its files are and what its card says.
#[derive(Clone, Debug)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub card: ModelCard,
}

impl ModelDir {
    /// Opens a folder: reads `card.json` if present, otherwise inspects the graph.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let card = Self::card_of(dir)?;
        let tok = dir.join(&card.tokenizer);
        if !tok.is_file() {
            return Err(ModelError::Unusable {
                path: dir.to_path_buf(),
                reason: format!("no {} beside model.onnx; copy the model's tokenizer.json there", card.tokenizer),
            });
        }
        Ok(ModelDir { dir: dir.to_path_buf(), card })
    }

    /// The card of a model folder (read, or built by inspecting the graph), without checking
    /// that the folder is complete enough to run.
    pub fn card_of(dir: &Path) -> Result<ModelCard, ModelError> {
        if seq2seq::is_seq2seq_folder(dir) {
            return Err(ModelError::Unusable {
                path: dir.to_path_buf(),
                reason: "an encoder-decoder (mT5/T5) model folder, which this command does not read yet; `model inspect`, `model export --format hf`, `eval ppl`, `eval tasks`, `prune`, `gate`, `analyze` and `study run` do (README, \"Encoder-decoders\")".into(),
            });
        }
        if !dir.join("model.onnx").is_file() {
            return Err(ModelError::NotAModel { path: dir.to_path_buf() });
        }
        if dir.join(card::CARD_FILE).is_file() {
            ModelCard::read(dir)
        } else {
            graph::inspect(dir)
        }
    }

    pub fn graph_path(&self) -> PathBuf {
        self.dir.join(&self.card.graph)
    }

    /// The token every calibration window starts with. A card that names none (no start, BOS or
    /// EOS token) cannot calibrate: any fixed id would be a guess at the model's vocabulary.
    pub fn calibration_start_token(&self) -> Result<u32, ModelError> {
        self.card.start_token().ok_or_else(|| ModelError::BadCard {
            path: self.dir.join(card::CARD_FILE),
            reason:
                "it names no start_token_id, bos_token_id or eos_token_id; add \"start_token_id\": the id the model's documents begin with"
                    .into(),
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(&self.card.tokenizer)
    }

    /// The model's tokenizer, read from [`ModelDir::tokenizer_path`].
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer, ModelError> {
        let path = self.tokenizer_path();
        tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer { path, message: e.to_string() })
    }

    /// A stable identity for provenance: the source checksum for imports, else the graph's.
    pub fn identity(&self) -> String {
        let base = match &self.card.source {
            Some(s) => format!("{}:{}", s.file, &s.sha256[..16.min(s.sha256.len())]),
            None => format!("{}:{}", self.card.graph, self.dir.display()),
        };
        // The same checkpoint stored in 16 bits holds other weights: another identity.
        match self.card.matrix_type() {
            crate::runtime::FloatType::F32 => base,
            t => format!("{base}:{t}"),
        }
    }
}
