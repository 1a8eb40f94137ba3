//! Reading and writing one file: JSON records and CSV tables, atomically, with errors that name
//! the file and what to do about it.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a results file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}; is this a results folder written by polyprune (`polyprune study run`, `eval`, `prune`)?")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// The file exists but does not hold what polyprune writes there (serde's message names the field).
    #[error(
        "{path}: {message}; this is not a file polyprune wrote (or it is from another version): delete it and re-run {rerun} to rewrite it"
    )]
    Malformed { path: PathBuf, message: String, rerun: &'static str },
}

impl StoreError {
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Read { path, .. } | StoreError::Write { path, .. } | StoreError::Malformed { path, .. } => path,
        }
    }
}

/// The command that rewrites a file, for error messages.
fn rerun_for(path: &Path) -> &'static str {
    let in_study = path.ancestors().any(|a| a.join(super::study::STUDY_FILE).is_file());
    if in_study {
        "`polyprune study run`"
    } else {
        "the `polyprune` command that wrote it"
    }
}

fn malformed(path: &Path, message: String) -> StoreError {
    StoreError::Malformed { path: path.to_path_buf(), message, rerun: rerun_for(path) }
}

pub(crate) fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Write { path: path.to_path_buf(), source: e.into() })?;
    write_bytes(path, &bytes)
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::util::write_atomic(path, bytes).map_err(|source| StoreError::Write { path: path.to_path_buf(), source })
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| malformed(path, e.to_string()))
}

/// Rows as CSV, the header from the field names.
pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), StoreError> {
    let err = |e: String| StoreError::Write { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    write_bytes(path, &bytes)
}

/// Every row of a CSV file; a row that does not fit `T` is an error naming its line and field.
pub(crate) fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, StoreError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => StoreError::Read { path: path.to_path_buf(), source },
        other => malformed(path, format!("{other:?}")),
    })?;
    reader.deserialize().enumerate().map(|(i, r)| r.map_err(|e| malformed(path, format!("row {}: {}", i + 2, csv_message(&e))))).collect()
}

/// The csv crate's message without its position prefix (the row is given separately).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        _ => e.to_string(),
    }
}
