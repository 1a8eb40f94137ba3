//! The JSON records of a results folder: `provenance.json` of every run, `cell.json` /
//! `dense.json` of every unit of a study, and the study's `study.json`.
//!
//! Optional fields are still required keys (`null` when absent): a record that lacks one was not
//! written by this version, and reading it fails instead of guessing (e.g. a seed of 0).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::Language;
use crate::design::config::{PerplexityPlan, TaskPlan};
use crate::design::{AnalysisPlan, Cell, DenseBaseline};
use crate::tasks::TaskSplit;

/// `provenance.json`: what produced the numbers next to it (tool version, model identity,
/// settings, machine, time), so any of them can be traced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool: String,
    pub tool_version: String,
    pub command: String,
    pub model: String,
    /// The command's settings, as it chose to describe them.
    pub settings: serde_json::Value,
    pub machine: Machine,
    pub started_unix: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
            started_unix: super::unix_now().saturating_sub(started.elapsed().as_secs()),
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

impl Provenance {
    /// The settings that change the figures of an evaluation (what two results must share to
    /// be compared unit by unit), named the same whether `eval ppl`/`eval tasks` or a study
    /// wrote them: perplexity's `context`, `stride` and `per_line`; the tasks' `split`, `shots`,
    /// `max_new_tokens`, and the few-shot `seed` when there are shots. Which text or task was
    /// evaluated is in the rows themselves; the limit only decides which units exist.
    pub fn evaluation_settings(&self) -> std::collections::BTreeMap<String, String> {
        // A study unit's record nests its plan: {"settings": {"plan": {...}, "unit": ...}}.
        let flat = self.settings.get("settings").and_then(|s| s.get("plan")).unwrap_or(&self.settings);
        let mut out = std::collections::BTreeMap::new();
        let mut keep = |key: &str| {
            if let Some(v) = flat.get(key).filter(|v| !v.is_null()) {
                out.insert(key.to_string(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
            }
        };
        for key in ["context", "stride", "per_line", "split", "shots", "max_new_tokens"] {
            keep(key);
        }
        if flat.get("shots").and_then(|s| s.as_u64()).is_some_and(|shots| shots > 0) {
            keep("seed");
        }
        out
    }
}

impl Machine {
    /// This machine (an unreadable hostname is recorded as empty).
    pub fn this() -> Self {
        Machine {
            hostname: std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.to_string(),
        }
    }
}

/// `study.json`: what the study is, so that anyone (the report, `merge`, a resumed run, the
/// analyses) can tell which results belong to which grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub study: String,
    pub config_hash: String,
    pub tool_version: String,
    pub cells: Vec<Cell>,
    pub dense: Vec<DenseBaseline>,
    /// Model name -> folder, as the study file gave them.
    pub models: Vec<(String, PathBuf)>,
    /// Evaluation settings as configured (languages, tasks, limits), for the report's setup.
    pub evaluation: EvaluationRecord,
    pub analysis: AnalysisPlan,
}

/// What every unit of a study is measured on, as configured. Fields are in alphabetical order,
/// the order `study.json` has always had them in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    #[serde(deserialize_with = "Option::deserialize")]
    pub perplexity: Option<PerplexitySettings>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub tasks: Option<TaskSettings>,
}

/// The study file's `[perplexity]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerplexitySettings {
    pub context: usize,
    pub languages: Vec<Language>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub limit: Option<usize>,
    /// `None`: each language's default source.
    #[serde(deserialize_with = "Option::deserialize")]
    pub source: Option<String>,
    pub stride: usize,
}

/// The study file's `[tasks]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSettings {
    pub data: PathBuf,
    pub languages: Vec<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub limit: Option<usize>,
    pub names: Vec<String>,
    pub seed: u64,
    pub shots: usize,
    pub split: TaskSplit,
}

impl EvaluationRecord {
    pub fn of(perplexity: Option<&PerplexityPlan>, tasks: Option<&TaskPlan>) -> EvaluationRecord {
        EvaluationRecord {
            perplexity: perplexity.map(|p| PerplexitySettings {
                context: p.context,
                languages: p.languages.clone(),
                limit: p.limit,
                source: p.source.clone(),
                stride: p.stride,
            }),
            tasks: tasks.map(|t| TaskSettings {
                data: t.data.clone(),
                languages: t.languages.clone(),
                limit: t.limit,
                names: t.names.iter().map(|n| n.as_str().to_string()).collect(),
                seed: t.seed,
                shots: t.shots,
                split: t.split,
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UnitStatus {
    /// Every file of the unit is written.
    Done,
    /// The unit stopped with this error; a re-run tries it again.
    Failed { error: String },
}

/// Seconds per stage of one unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub calibration_draw_s: f64,
    pub calibration_forward_s: f64,
    pub statistics_s: f64,
    pub prune_solve_s: f64,
    pub perplexity_s: f64,
    pub tasks_s: f64,
    pub total_s: f64,
}

/// `cell.json` / `dense.json`: a unit's status, provenance and costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub id: String,
    #[serde(flatten)]
    pub status: UnitStatus,
    /// How many times this unit has been computed (a resumed run must not raise it for done units).
    pub runs: u32,
    pub model: String,
    /// Source checksum of the model (`ModelDir::identity`), empty if the model could not be opened.
    pub model_hash: String,
    pub config_hash: String,
    pub tool_version: String,
    /// The calibration seed; `null` for units without calibration.
    #[serde(deserialize_with = "Option::deserialize")]
    pub seed: Option<u64>,
    pub started_unix: u64,
    pub timings: StageTimings,
    /// Tokens scored for perplexity and fed through calibration: the plan's throughput comes from these.
    pub eval_tokens: usize,
    pub calibration_tokens: usize,
    /// Pruned / total weights of the pruned layers (cells only, `null` for dense baselines).
    #[serde(deserialize_with = "Option::deserialize")]
    pub overall_sparsity: Option<f64>,
    pub machine: MachineRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub hostname: String,
    pub cores: usize,
    pub os: String,
    pub device: String,
    /// The type the model's graphs computed in (`f32`, `f16`, `bf16`; see `[study] compute`).
    /// Records written before half compute existed computed in f32.
    #[serde(default = "f32_compute")]
    pub compute: String,
}

fn f32_compute() -> String {
    "f32".into()
}

// ---------------------------------------------------------------------------------------------
// A study that stops when decided (`[tasks] stop = "decided"`): `decided/decisions.json`.

/// One comparison's outcome, in `decisions.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonDecision {
    /// The significance analysis' family of the first cell on this set.
    pub family: String,
    /// Calibration labels (`dense` for the dense model): the difference is first − second.
    pub first: String,
    pub second: String,
    pub first_unit: String,
    pub second_unit: String,
    pub decision: crate::stats::Decision,
    /// Examples seen when the decision was made (`None`: undecided).
    pub decided_after: Option<usize>,
    /// Over every example the set used.
    pub mean_difference: f64,
    pub lower: f64,
    pub upper: f64,
}

impl ComparisonDecision {
    /// Whether the interval excludes no difference at all: the sign of the difference is known.
    pub fn excludes_zero(&self) -> bool {
        self.lower > 0.0 || self.upper < 0.0
    }
}

/// One task in one language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetDecisions {
    /// `<task>/<language>`, as the significance analysis names evaluation sets.
    pub evaluation: String,
    /// Examples every unit scored, the most it could (`limit`), and the test set's size.
    pub examples: usize,
    pub cap: usize,
    pub available: usize,
    pub comparisons: Vec<ComparisonDecision>,
}

/// `decided/decisions.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decisions {
    pub margin: f64,
    pub alpha: f64,
    pub round: usize,
    pub sequence: String,
    pub sets: Vec<SetDecisions>,
}
