//! Calibration: which text the pruning methods see (`set`), and what they measure on it
//! (`capture`: per-layer input statistics, block by block; `gradients`: the loss gradient and
//! Hessian-gradient product over the whole model, for SNIP and GraSP; `mixture_search`: which
//! mixture of calibration languages serves a set of target languages best).

pub mod capture;
pub mod gradients;
pub mod mixture_search;
pub mod set;

pub use capture::{capture_and_prune, CaptureMode, CaptureOptions, CaptureTimings, LayerPruner};
pub use gradients::{collect_gradients, spill_gradients, GradientSaliency, SpilledGradients, SpilledSaliency};
pub use mixture_search::{search_mixtures, EvaluatedMixture, Objective};
pub use set::{CalibrationSet, CalibrationSpec, Mix, WindowRecord};

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Prune(#[from] crate::prune::PruneError),
    #[error(transparent)]
    Spill(Box<crate::runtime::spill::SpillError>),
    #[error("cannot tokenize calibration text with {path}: {message}")]
    Tokenizer { path: std::path::PathBuf, message: String },
    #[error("{language} from '{source_name}' has {tokens} tokens in its calibration split, fewer than one window of {seqlen}; use a shorter --seqlen or a source with more text (--calib-source)")]
    TooLittleText { language: String, source_name: String, tokens: usize, seqlen: usize },
    #[error("--mix {given}: {reason}")]
    BadMix { given: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<crate::runtime::spill::SpillError> for CalibrationError {
    fn from(e: crate::runtime::spill::SpillError) -> Self {
        CalibrationError::Spill(Box::new(e))
    }
}
