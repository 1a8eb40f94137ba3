//! Writing results: CSV tables plus a provenance record, atomically.
//!
//! Every run directory holds `provenance.json` (tool version, model identity, settings,
//! machine, time) so that any number in it can be traced to what produced it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::eval::LanguageScore;

#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub tool: String,
    pub tool_version: String,
    pub command: String,
    pub model: String,
    pub settings: serde_json::Value,
    pub machine: Machine,
    pub started_unix: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub cores: usize,
    pub os: String,
}

impl Machine {
    pub fn this() -> Self {
        Machine {
            hostname: std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.to_string(),
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A new run folder `<results>/<kind>/<unix time>-<label>`.
pub fn run_dir(results: &Path, kind: &str, label: &str) -> PathBuf {
    let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    results.join(kind).join(format!("{}-{}", unix_now(), safe))
}

/// Writes rows as CSV (header from the field names), atomically.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> std::io::Result<()> {
    crate::util::write_atomic(path, &csv_bytes(rows)?)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    crate::util::write_atomic(path, &serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)
}

fn csv_bytes<T: Serialize>(rows: &[T]) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(std::io::Error::other)?;
    }
    w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
}

#[derive(Serialize)]
struct DocumentRow<'a> {
    language: &'a str,
    source: &'a str,
    document: &'a str,
    nll: f64,
    tokens: usize,
    bytes: usize,
}

#[derive(Serialize)]
struct SummaryRow<'a> {
    language: &'a str,
    source: &'a str,
    documents: usize,
    tokens: usize,
    bytes: usize,
    nll: f64,
    perplexity: f64,
    bits_per_byte: f64,
}

/// Writes `documents.csv` (per-document NLL, for paired tests), `summary.csv` and `provenance.json`.
pub fn write_perplexity(dir: &Path, scores: &[LanguageScore], provenance: &Provenance) -> std::io::Result<()> {
    let docs: Vec<DocumentRow> = scores
        .iter()
        .flat_map(|s| {
            s.documents.iter().map(move |d| DocumentRow {
                language: &s.language,
                source: &s.source,
                document: &d.id,
                nll: d.nll,
                tokens: d.tokens,
                bytes: d.bytes,
            })
        })
        .collect();
    let summary: Vec<SummaryRow> = scores
        .iter()
        .map(|s| SummaryRow {
            language: &s.language,
            source: &s.source,
            documents: s.documents.len(),
            tokens: s.tokens(),
            bytes: s.bytes(),
            nll: s.nll(),
            perplexity: s.perplexity(),
            bits_per_byte: s.bits_per_byte(),
        })
        .collect();
    crate::util::write_atomic(&dir.join("documents.csv"), &csv_bytes(&docs)?)?;
    crate::util::write_atomic(&dir.join("summary.csv"), &csv_bytes(&summary)?)?;
    let prov = serde_json::to_vec_pretty(provenance).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&dir.join("provenance.json"), &prov)
}
