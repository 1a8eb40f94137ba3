//! One row type per CSV file, used both to write it and to read it back.
//!
//! The rows are flat (criterion's habit) so that the header is the field list. Columns that do
//! not apply to a row (the generation columns of a choice example) are `Option`s written empty.
//! The constructors turn measurements (`eval`, `pruning`) into rows; nothing else builds them.

use serde::{Deserialize, Serialize};

use crate::eval::{LanguageScore, TaskRecords, TaskResult};
use crate::pruned::PrunedModel;

/// `calibration_manifest.csv`: where each calibration window came from. The calibration module
/// declares it (it fills it while drawing the set); the store writes and reads it.
pub type CalibrationManifestRow = crate::calibrate::WindowRecord;

/// `ppl/documents.csv`: one evaluated document (what paired tests join on `language, document`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentRow {
    pub language: String,
    pub source: String,
    pub document: String,
    /// Sum of -log p over the document's predicted tokens, in nats.
    pub nll: f64,
    pub tokens: usize,
    pub bytes: usize,
}

/// `ppl/summary.csv`: one evaluation language and source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerplexitySummaryRow {
    pub language: String,
    pub source: String,
    pub documents: usize,
    pub tokens: usize,
    pub bytes: usize,
    pub nll: f64,
    pub perplexity: f64,
    pub bits_per_byte: f64,
}

impl DocumentRow {
    pub fn from_scores(scores: &[LanguageScore]) -> Vec<DocumentRow> {
        scores
            .iter()
            .flat_map(|s| {
                s.documents.iter().map(move |d| DocumentRow {
                    language: s.language.clone(),
                    source: s.source.clone(),
                    document: d.id.clone(),
                    nll: d.nll,
                    tokens: d.tokens,
                    bytes: d.bytes,
                })
            })
            .collect()
    }
}

impl PerplexitySummaryRow {
    pub fn from_scores(scores: &[LanguageScore]) -> Vec<PerplexitySummaryRow> {
        scores
            .iter()
            .map(|s| PerplexitySummaryRow {
                language: s.language.clone(),
                source: s.source.clone(),
                documents: s.documents.len(),
                tokens: s.tokens(),
                bytes: s.bytes(),
                nll: s.nll(),
                perplexity: s.perplexity(),
                bits_per_byte: s.bits_per_byte(),
            })
            .collect()
    }
}

/// What kind of example a row of `examples.csv` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExampleKind {
    Choice,
    Generation,
}

/// `tasks/examples.csv`: one example of one task and language, what paired tests between two
/// runs join on `task, language, example`. Choice examples fill `pred*`/`acc*`, generation
/// examples `exact_match` and the generation columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExampleRow {
    pub task: String,
    pub language: String,
    pub split: String,
    pub shots: usize,
    pub example: String,
    pub kind: ExampleKind,
    pub gold: String,
    pub pred: Option<usize>,
    pub pred_norm: Option<usize>,
    pub pred_bytes: Option<usize>,
    pub acc: Option<u8>,
    pub acc_norm: Option<u8>,
    pub acc_bytes: Option<u8>,
    pub exact_match: Option<u8>,
    pub output: Option<String>,
    pub extracted: Option<String>,
    pub new_tokens: Option<usize>,
    pub stop: Option<String>,
}

impl ExampleRow {
    /// The example's 0/1 score: acc for choice examples, exact match for generation.
    pub fn score(&self) -> Option<u8> {
        self.acc.or(self.exact_match)
    }
}

/// `tasks/choices.csv`: one choice of one choice example, the raw log-likelihood behind `acc`,
/// `acc_norm` and `acc_bytes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChoiceRow {
    pub task: String,
    pub language: String,
    pub example: String,
    pub choice: usize,
    pub is_gold: u8,
    pub log_likelihood: f64,
    pub tokens: usize,
    pub chars: usize,
    pub bytes: usize,
    pub is_greedy: u8,
}

/// `tasks/summary.csv`: one task, language and metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummaryRow {
    pub task: String,
    pub language: String,
    pub split: String,
    pub shots: usize,
    pub metric: String,
    /// The mean of the 0/1 scores (the accuracy).
    pub value: f64,
    pub stderr: Option<f64>,
    pub n: usize,
    pub chance: f64,
    pub seconds: f64,
}

/// The three task tables of a set of results, in writing order.
pub(crate) fn task_rows(results: &[TaskResult]) -> (Vec<ExampleRow>, Vec<ChoiceRow>, Vec<TaskSummaryRow>) {
    let mut examples = Vec::new();
    let mut choices = Vec::new();
    let mut summary = Vec::new();
    let flag = |b: bool| u8::from(b);
    for r in results {
        let (task, language, split) = (r.task.as_str().to_string(), r.language.clone(), r.split.as_str().to_string());
        let example = |id: &str, kind: ExampleKind, gold: String| ExampleRow {
            task: task.clone(),
            language: language.clone(),
            split: split.clone(),
            shots: r.shots,
            example: id.to_string(),
            kind,
            gold,
            pred: None,
            pred_norm: None,
            pred_bytes: None,
            acc: None,
            acc_norm: None,
            acc_bytes: None,
            exact_match: None,
            output: None,
            extracted: None,
            new_tokens: None,
            stop: None,
        };
        match &r.records {
            TaskRecords::Choice(records) => {
                for rec in records {
                    examples.push(ExampleRow {
                        pred: Some(rec.pred),
                        pred_norm: Some(rec.pred_norm),
                        pred_bytes: Some(rec.pred_bytes),
                        acc: Some(flag(rec.pred == rec.gold)),
                        acc_norm: Some(flag(rec.pred_norm == rec.gold)),
                        acc_bytes: Some(flag(rec.pred_bytes == rec.gold)),
                        ..example(&rec.id, ExampleKind::Choice, rec.gold.to_string())
                    });
                    for (i, ll) in rec.lls.iter().enumerate() {
                        choices.push(ChoiceRow {
                            task: task.clone(),
                            language: language.clone(),
                            example: rec.id.clone(),
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
                    examples.push(ExampleRow {
                        exact_match: Some(flag(rec.correct)),
                        output: Some(rec.output.clone()),
                        extracted: rec.extracted.clone(),
                        new_tokens: Some(generated.new_tokens),
                        stop: serde_json::to_value(generated.stop).ok().and_then(|v| v.as_str().map(str::to_string)),
                        ..example(&rec.id, ExampleKind::Generation, rec.gold.clone())
                    });
                }
            }
        }
        for m in &r.summary.metrics {
            summary.push(TaskSummaryRow {
                task: task.clone(),
                language: language.clone(),
                split: split.clone(),
                shots: r.shots,
                metric: m.metric.as_str().to_string(),
                value: m.mean,
                stderr: m.stderr,
                n: m.n,
                chance: r.summary.chance,
                seconds: r.seconds,
            });
        }
    }
    (examples, choices, summary)
}

/// `sparsity.csv`: requested and achieved sparsity of one pruned layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityRow {
    pub layer: String,
    pub block: usize,
    pub role: String,
    pub requested: f64,
    pub pattern: String,
    pub pruned: u64,
    pub total: u64,
    pub achieved: f64,
    /// Whether every group obeys the N:M pattern; empty for unstructured targets.
    pub nm_valid: Option<bool>,
    /// Weights exactly zero after pruning (`pruned` plus zeros the mask kept); the column is
    /// absent from files written before these were counted.
    #[serde(default)]
    pub zeros: Option<u64>,
    /// SparseGPT's Hessian dampening (fraction of the mean diagonal) the layer was solved with;
    /// empty for other methods and in files written before it was recorded.
    #[serde(default)]
    pub damping: Option<f64>,
}

impl SparsityRow {
    pub fn from_pruned(pruned: &PrunedModel) -> Vec<SparsityRow> {
        pruned
            .layers
            .iter()
            .map(|l| SparsityRow {
                layer: l.layer.name.clone(),
                block: l.layer.block,
                role: l.layer.role.as_str().to_string(),
                requested: l.report.requested,
                pattern: l.report.pattern.to_string(),
                pruned: l.report.pruned,
                total: l.report.total,
                achieved: l.report.achieved,
                nm_valid: l.report.nm_valid,
                zeros: l.report.zeros,
                damping: l.report.damping.map(|d| d.used),
            })
            .collect()
    }
}
