//! Per-unit scores for paired tests, from the rows the store reads (`documents.csv`,
//! `examples.csv`): bits per byte per document, 0/1 accuracy per example.
//!
//! A unit is what two runs share: a document (joined on language + document id) or a task
//! example (task + language + example id). Scores are grouped by evaluation set: one
//! language and source for perplexity, one task and language for downstream tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AnalysisError;
use crate::store::{self, DocumentRow, ExampleRow, Scores};

/// What a score measures, and which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Per document: NLL in bits over its UTF-8 bytes (lower is better).
    BitsPerByte,
    /// Per example: acc for choice tasks, exact match for generation (higher is better).
    Accuracy,
}

impl Metric {
    pub fn lower_is_better(self) -> bool {
        matches!(self, Metric::BitsPerByte)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::BitsPerByte => "bits_per_byte",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// Scores of one evaluation set, by unit id.
pub type UnitScores = BTreeMap<String, f64>;

/// All scores of one results file, by evaluation set.
#[derive(Clone, Debug, Default)]
pub struct ScoreFile {
    pub metric: Option<Metric>,
    pub sets: BTreeMap<String, UnitScores>,
    /// Settings the rows themselves record per evaluation set (a task's `split` and `shots`),
    /// which a paired test must not mix.
    pub set_settings: BTreeMap<String, BTreeMap<String, String>>,
}

fn bad(path: &Path, reason: impl Into<String>) -> AnalysisError {
    AnalysisError::BadFile { path: path.to_path_buf(), reason: reason.into() }
}

/// The evaluation set of a task's examples in one language, as comparisons name it.
pub fn task_set(task: &str, language: &str) -> String {
    format!("{task}/{language}")
}

/// The language of a perplexity evaluation set (`<language>/<source>`).
pub fn perplexity_set_language(set: &str) -> &str {
    set.split('/').next().unwrap_or(set)
}

/// Per-document bits per byte, by evaluation set `<language>/<source>` and document id.
pub fn documents(path: &Path, rows: Vec<DocumentRow>) -> Result<ScoreFile, AnalysisError> {
    let mut sets: BTreeMap<String, UnitScores> = BTreeMap::new();
    for r in rows {
        if r.bytes == 0 || !r.nll.is_finite() {
            return Err(bad(
                path,
                format!("document {} ({}) has {} bytes and NLL {}; re-run the evaluation", r.document, r.language, r.bytes, r.nll),
            ));
        }
        let bpb = r.nll / (r.bytes as f64 * std::f64::consts::LN_2);
        sets.entry(format!("{}/{}", r.language, r.source)).or_default().insert(r.document, bpb);
    }
    Ok(ScoreFile { metric: Some(Metric::BitsPerByte), sets, set_settings: BTreeMap::new() })
}

/// Per-example accuracy, by evaluation set `<task>/<language>` and example id.
pub fn examples(rows: Vec<ExampleRow>) -> ScoreFile {
    let mut sets: BTreeMap<String, UnitScores> = BTreeMap::new();
    let mut set_settings: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in rows {
        let Some(score) = r.score() else { continue };
        let set = task_set(&r.task, &r.language);
        set_settings
            .entry(set.clone())
            .or_insert_with(|| [("split".to_string(), r.split.clone()), ("shots".to_string(), r.shots.to_string())].into());
        sets.entry(set).or_default().insert(r.example, f64::from(score));
    }
    ScoreFile { metric: Some(Metric::Accuracy), sets, set_settings }
}

/// Reads a `documents.csv` or `examples.csv` (through the store) as scores by unit.
pub fn read_scores(path: &Path) -> Result<ScoreFile, AnalysisError> {
    match store::read_scores(path)? {
        Scores::Documents(rows) => documents(path, rows),
        Scores::Examples(rows) => Ok(examples(rows)),
    }
}

/// Every results file with per-unit scores under `root`, relative to it (see
/// [`store::find_score_files`]).
pub fn find_score_files(root: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    if !root.is_dir() {
        return Err(AnalysisError::invalid(
            root.display().to_string(),
            "is not a folder; give a results folder (a run folder or a study folder)",
        ));
    }
    Ok(store::find_score_files(root)?)
}
