//! Reading stored per-unit scores (`documents.csv`, `examples.csv`) for paired tests.
//!
//! A unit is what two runs share: a document (joined on language + document id) or a task
//! example (task + language + example id). Scores are grouped by evaluation set: one
//! language and source for perplexity, one task and language for downstream tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AnalysisError;

pub const DOCUMENTS_FILE: &str = "documents.csv";
pub const EXAMPLES_FILE: &str = "examples.csv";

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
}

#[derive(Deserialize)]
struct DocumentRow {
    language: String,
    source: String,
    document: String,
    nll: f64,
    bytes: usize,
}

#[derive(Deserialize)]
struct ExampleRow {
    task: String,
    language: String,
    example: String,
    acc: Option<u8>,
    exact_match: Option<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> AnalysisError {
    AnalysisError::BadFile { path: path.to_path_buf(), reason: reason.into() }
}

fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<Vec<T>, AnalysisError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(io) => AnalysisError::io(path, io),
        other => bad(path, format!("{other:?}")),
    })?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| bad(path, format!("row {}: {e}; this is not a {what} file written by polyprune", i + 2))))
        .collect()
}

/// Per-document bits per byte, by evaluation set `<language>/<source>` and document id.
pub fn read_documents(path: &Path) -> Result<ScoreFile, AnalysisError> {
    let mut sets: BTreeMap<String, UnitScores> = BTreeMap::new();
    for r in read_rows::<DocumentRow>(path, DOCUMENTS_FILE)? {
        if r.bytes == 0 || !r.nll.is_finite() {
            return Err(bad(
                path,
                format!("document {} ({}) has {} bytes and NLL {}; re-run the evaluation", r.document, r.language, r.bytes, r.nll),
            ));
        }
        let bpb = r.nll / (r.bytes as f64 * std::f64::consts::LN_2);
        sets.entry(format!("{}/{}", r.language, r.source)).or_default().insert(r.document, bpb);
    }
    Ok(ScoreFile { metric: Some(Metric::BitsPerByte), sets })
}

/// Per-example accuracy, by evaluation set `<task>/<language>` and example id.
pub fn read_examples(path: &Path) -> Result<ScoreFile, AnalysisError> {
    let mut sets: BTreeMap<String, UnitScores> = BTreeMap::new();
    for r in read_rows::<ExampleRow>(path, EXAMPLES_FILE)? {
        let Some(score) = r.acc.or(r.exact_match) else { continue };
        sets.entry(format!("{}/{}", r.task, r.language)).or_default().insert(r.example, f64::from(score));
    }
    Ok(ScoreFile { metric: Some(Metric::Accuracy), sets })
}

/// Reads a results file by its name.
pub fn read_scores(path: &Path) -> Result<ScoreFile, AnalysisError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(DOCUMENTS_FILE) => read_documents(path),
        Some(EXAMPLES_FILE) => read_examples(path),
        _ => Err(bad(path, format!("expected {DOCUMENTS_FILE} or {EXAMPLES_FILE}"))),
    }
}

/// Every `documents.csv` / `examples.csv` under `root`, as paths relative to it, sorted
/// (analysis outputs under `analysis/` are skipped).
pub fn find_score_files(root: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    if !root.is_dir() {
        return Err(AnalysisError::invalid(
            root.display().to_string(),
            "is not a folder; give a results folder (a run folder or a study folder)",
        ));
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = std::fs::read_dir(&dir).map_err(|e| AnalysisError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AnalysisError::io(&dir, e))?;
            let name = entry.file_name();
            let path = rel.join(&name);
            if entry.path().is_dir() {
                if name != "analysis" {
                    stack.push(path);
                }
            } else if name == DOCUMENTS_FILE || name == EXAMPLES_FILE {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
