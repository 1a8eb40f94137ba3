//! Writing results: CSV tables plus a provenance record, atomically.
//!
//! Every run directory holds `provenance.json` (tool version, model identity, settings,
//! machine, time) so that any number in it can be traced to what produced it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::eval::LanguageScore;
use crate::pruned::PrunedModel;

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

impl Provenance {
    /// The record of one run of `command` that began at `started`, finished now.
    pub fn new(command: &str, model: String, settings: serde_json::Value, started: std::time::Instant) -> Self {
        Provenance {
            tool: "polyprune".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            command: command.into(),
            model,
            settings,
            machine: Machine::this(),
            started_unix: unix_now().saturating_sub(started.elapsed().as_secs()),
            seconds: started.elapsed().as_secs_f64(),
        }
    }
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

/// The sparsity of one layer, as `sparsity.csv` lists it.
#[derive(Serialize)]
struct SparsityRow<'a> {
    layer: &'a str,
    block: usize,
    role: &'a str,
    requested: f64,
    pattern: String,
    pruned: u64,
    total: u64,
    achieved: f64,
    /// Whether every group obeys the N:M pattern; empty for unstructured targets.
    nm_valid: Option<bool>,
}

/// Writes `sparsity.csv`: requested and achieved sparsity of every pruned layer.
pub fn write_sparsity(path: &Path, pruned: &PrunedModel) -> std::io::Result<()> {
    let rows: Vec<SparsityRow> = pruned
        .layers
        .iter()
        .map(|l| SparsityRow {
            layer: &l.layer.name,
            block: l.layer.block,
            role: l.layer.role.as_str(),
            requested: l.report.requested,
            pattern: l.report.pattern.to_string(),
            pruned: l.report.pruned,
            total: l.report.total,
            achieved: l.report.achieved,
            nm_valid: l.report.nm_valid,
        })
        .collect();
    write_csv(path, &rows)
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

/// One row per example of every task and language: what paired tests between two runs
/// (e.g. two calibration languages) join on `task, language, example`. Columns that do
/// not apply to the example's kind are empty.
#[derive(Serialize)]
struct TaskExampleRow<'a> {
    task: &'a str,
    language: &'a str,
    split: &'a str,
    shots: usize,
    example: &'a str,
    kind: &'static str,
    gold: String,
    pred: Option<usize>,
    pred_norm: Option<usize>,
    pred_bytes: Option<usize>,
    acc: Option<u8>,
    acc_norm: Option<u8>,
    acc_bytes: Option<u8>,
    exact_match: Option<u8>,
    output: Option<&'a str>,
    extracted: Option<&'a str>,
    new_tokens: Option<usize>,
    stop: Option<String>,
}

/// One row per choice of every choice example: the raw log-likelihoods behind `acc`,
/// `acc_norm` and `acc_bytes`.
#[derive(Serialize)]
struct TaskChoiceRow<'a> {
    task: &'a str,
    language: &'a str,
    example: &'a str,
    choice: usize,
    is_gold: u8,
    log_likelihood: f64,
    tokens: usize,
    chars: usize,
    bytes: usize,
    is_greedy: u8,
}

/// One row per task, language and metric.
#[derive(Serialize)]
struct TaskSummaryRow<'a> {
    task: &'a str,
    language: &'a str,
    split: &'a str,
    shots: usize,
    metric: &'a str,
    value: f64,
    stderr: Option<f64>,
    n: usize,
    chance: f64,
    seconds: f64,
}

/// Writes `examples.csv`, `choices.csv`, `summary.csv` and `provenance.json` for
/// downstream-task results.
pub fn write_tasks(dir: &Path, results: &[crate::eval::TaskResult], provenance: &Provenance) -> std::io::Result<()> {
    use crate::eval::TaskRecords;
    let mut examples = Vec::new();
    let mut choices = Vec::new();
    let mut summary = Vec::new();
    for r in results {
        let task = r.task.as_str();
        let language = r.language.as_str();
        let split = r.split.as_str();
        let flag = |b: bool| u8::from(b);
        match &r.records {
            TaskRecords::Choice(records) => {
                for rec in records {
                    examples.push(TaskExampleRow {
                        task,
                        language,
                        split,
                        shots: r.shots,
                        example: &rec.id,
                        kind: "choice",
                        gold: rec.gold.to_string(),
                        pred: Some(rec.pred),
                        pred_norm: Some(rec.pred_norm),
                        pred_bytes: Some(rec.pred_bytes),
                        acc: Some(flag(rec.pred == rec.gold)),
                        acc_norm: Some(flag(rec.pred_norm == rec.gold)),
                        acc_bytes: Some(flag(rec.pred_bytes == rec.gold)),
                        exact_match: None,
                        output: None,
                        extracted: None,
                        new_tokens: None,
                        stop: None,
                    });
                    for (i, ll) in rec.lls.iter().enumerate() {
                        choices.push(TaskChoiceRow {
                            task,
                            language,
                            example: &rec.id,
                            choice: i,
                            is_gold: flag(i == rec.gold),
                            log_likelihood: *ll,
                            tokens: rec.tokens[i],
                            chars: rec.chars[i],
                            bytes: rec.bytes[i],
                            is_greedy: flag(rec.greedy[i]),
                        });
                    }
                }
            }
            TaskRecords::Generation(records) => {
                for (rec, generated) in records {
                    examples.push(TaskExampleRow {
                        task,
                        language,
                        split,
                        shots: r.shots,
                        example: &rec.id,
                        kind: "generation",
                        gold: rec.gold.clone(),
                        pred: None,
                        pred_norm: None,
                        pred_bytes: None,
                        acc: None,
                        acc_norm: None,
                        acc_bytes: None,
                        exact_match: Some(flag(rec.correct)),
                        output: Some(&rec.output),
                        extracted: rec.extracted.as_deref(),
                        new_tokens: Some(generated.new_tokens),
                        stop: serde_json::to_value(generated.stop).ok().and_then(|v| v.as_str().map(str::to_string)),
                    });
                }
            }
        }
        for m in &r.summary.metrics {
            summary.push(TaskSummaryRow {
                task,
                language,
                split,
                shots: r.shots,
                metric: m.metric.as_str(),
                value: m.mean,
                stderr: m.stderr,
                n: m.n,
                chance: r.summary.chance,
                seconds: r.seconds,
            });
        }
    }
    crate::util::write_atomic(&dir.join("examples.csv"), &csv_bytes(&examples)?)?;
    crate::util::write_atomic(&dir.join("choices.csv"), &csv_bytes(&choices)?)?;
    crate::util::write_atomic(&dir.join("summary.csv"), &csv_bytes(&summary)?)?;
    let prov = serde_json::to_vec_pretty(provenance).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&dir.join("provenance.json"), &prov)
}
