//! The library's single-run entry points, one per command that measures a model: a typed
//! options struct in, a typed result out, the results folder written on the way.
//!
//! * [`perplexity`]: `eval ppl`, perplexity and bits per byte per language or file;
//! * [`tasks`]: `eval tasks`, downstream tasks per language;
//! * [`prune`]: `prune`, calibrate, prune, save, compare perplexity before and after;
//! * [`advise`]: `advise`, which calibration mixture serves a set of target languages best,
//!   searched on a layer-error proxy from one calibration pass per language, then validated;
//! * [`gate`]: `gate`, a candidate against a baseline's results, a round of examples at a time
//!   until anytime-valid confidence sequences decide.
//!
//! These sit above everything they combine (model, data, calibration, pruning, evaluation, the
//! results store); `crate::study` runs the same building blocks over a whole grid, and
//! `crate::analysis::workflow` holds the analyses. The command line only maps flags to these
//! options and prints what comes back.

pub mod advise;
pub mod folder;
pub mod gate;
pub mod perplexity;
pub mod prune;
mod prune_seq2seq;
pub mod tasks;

use std::path::PathBuf;

/// Why a workflow stopped; each variant names the input and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Scorer(#[from] crate::eval::ScorerError),
    #[error(transparent)]
    TaskEval(#[from] crate::eval::TaskEvalError),
    #[error(transparent)]
    Task(#[from] crate::tasks::TaskError),
    #[error(transparent)]
    Calibration(#[from] crate::calibrate::CalibrationError),
    #[error(transparent)]
    Seq2SeqPrune(#[from] crate::pruned::seq2seq::Seq2SeqPruneError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}; check --results")]
    Store(#[from] crate::store::StoreError),
    /// A request refused with a whole sentence (what is wrong; what to do).
    #[error("{0}")]
    Refused(String),
}

/// Scores every set, one progress stage per set.
fn score_sets(
    scorer: &mut dyn crate::eval::LanguageModel,
    sets: &[crate::eval::TextSet],
    limit: Option<usize>,
    window: crate::eval::WindowOptions,
    progress: &mut dyn crate::progress::Progress,
) -> Result<Vec<crate::eval::LanguageScore>, crate::eval::ScorerError> {
    let mut current = None;
    let scores = crate::eval::score_sets(scorer, sets, limit, window, |i, n| {
        if current != Some(i) {
            if current.is_some() {
                progress.finish();
            }
            current = Some(i);
            progress.stage(&sets[i].language, limit.unwrap_or(usize::MAX).min(sets[i].documents.len()) as u64);
        }
        progress.advance(n as u64);
    });
    if current.is_some() {
        progress.finish();
    }
    scores
}
