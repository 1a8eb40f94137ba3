//! What can go wrong in an analysis, each variant naming the input and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Stats(#[from] crate::stats::StatsError),
    #[error(transparent)]
    Calibration(#[from] crate::calibrate::CalibrationError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Seq2Seq(#[from] crate::eval::seq2seq::Seq2SeqError),
    #[error(transparent)]
    // Boxed: the encoder-decoder's pruning errors are large, and this enum travels by value.
    Seq2SeqCapture(Box<crate::pruned::seq2seq::Seq2SeqPruneError>),
    #[error(transparent)]
    Memory(#[from] crate::model::memory::MemoryError),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error(
        "layer '{layer}': mask of {first} is {a_rows}x{a_cols} but mask of {second} is {b_rows}x{b_cols}; compare masks of the same model"
    )]
    MaskShapes { layer: String, first: String, second: String, a_rows: usize, a_cols: usize, b_rows: usize, b_cols: usize },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl From<crate::pruned::seq2seq::Seq2SeqPruneError> for AnalysisError {
    fn from(e: crate::pruned::seq2seq::Seq2SeqPruneError) -> Self {
        AnalysisError::Seq2SeqCapture(Box::new(e))
    }
}

impl AnalysisError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AnalysisError::Io { path: path.to_path_buf(), source }
    }
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        AnalysisError::Invalid { what: what.into(), reason: reason.into() }
    }
}
