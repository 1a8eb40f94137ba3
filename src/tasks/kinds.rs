//! The names a task is described by: which task, how it is scored, what it reports, which split.
//!
//! These are the words of `tasks/tasks.toml` and of the command line. They sit apart from the
//! catalogue (`spec.rs`) and its serde shape (`schema.rs`) so that both can use them without
//! depending on each other.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::error::{Result, TaskError};
use super::suggest::closest;

/// The tasks this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskName {
    /// XCOPA causal commonsense.
    Xcopa,
    /// XWinograd, partial scoring.
    Xwinograd,
    /// SIB-200 topic classification.
    Sib200,
    /// Translation choice on Tatoeba pairs.
    Tatoeba,
    /// Translation choice on FLORES-200 sentences (from SIB-200 files).
    Flores,
    /// MGSM maths word problems (generation).
    Mgsm,
    /// XNLI inference (user-supplied files).
    Xnli,
    /// XStoryCloze (user-supplied files).
    Xstorycloze,
    /// PAWS-X paraphrase (user-supplied files).
    Pawsx,
    /// Belebele reading comprehension (user-supplied files).
    Belebele,
    /// Translated ARC (user-supplied files).
    MArc,
    /// Translated MMLU (user-supplied files).
    MMmlu,
    /// Translated HellaSwag (user-supplied files).
    MHellaswag,
}

impl TaskName {
    /// Every task, in the order they are listed to users.
    pub const ALL: [TaskName; 13] = [
        TaskName::Xcopa,
        TaskName::Xwinograd,
        TaskName::Sib200,
        TaskName::Tatoeba,
        TaskName::Flores,
        TaskName::Mgsm,
        TaskName::Xnli,
        TaskName::Xstorycloze,
        TaskName::Pawsx,
        TaskName::Belebele,
        TaskName::MArc,
        TaskName::MMmlu,
        TaskName::MHellaswag,
    ];

    /// The name used on the command line and in tasks.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::Xcopa => "xcopa",
            TaskName::Xwinograd => "xwinograd",
            TaskName::Sib200 => "sib200",
            TaskName::Tatoeba => "tatoeba",
            TaskName::Flores => "flores",
            TaskName::Mgsm => "mgsm",
            TaskName::Xnli => "xnli",
            TaskName::Xstorycloze => "xstorycloze",
            TaskName::Pawsx => "pawsx",
            TaskName::Belebele => "belebele",
            TaskName::MArc => "m_arc",
            TaskName::MMmlu => "m_mmlu",
            TaskName::MHellaswag => "m_hellaswag",
        }
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskName {
    type Err = TaskError;

    fn from_str(given: &str) -> Result<Self> {
        let wanted = given.trim().to_lowercase().replace('-', "_");
        if let Some(name) = TaskName::ALL.into_iter().find(|n| n.as_str() == wanted) {
            return Ok(name);
        }
        let names = TaskName::ALL.map(TaskName::as_str);
        let hint = closest(&wanted, names).map_or_else(String::new, |c| format!("did you mean '{c}'? "));
        Err(TaskError::UnknownTask { given: given.to_string(), hint, known: names.join(", ") })
    }
}

/// How a task's examples are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// One context, several continuations; the likeliest continuation is the answer.
    MultipleChoice,
    /// One continuation, several contexts; the context under which the shared
    /// continuation is likeliest is the answer.
    PartialChoice,
    /// Free generation, checked against a gold answer.
    Generation,
}

/// A reported metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Accuracy of the argmax of summed log-likelihoods.
    Acc,
    /// Accuracy of the argmax of log-likelihood per character of the target.
    AccNorm,
    /// Accuracy of the argmax of log-likelihood per UTF-8 byte of the target.
    AccBytes,
    /// Exact match of the normalised generated answer (generation tasks).
    ExactMatch,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 4] = [Metric::Acc, Metric::AccNorm, Metric::AccBytes, Metric::ExactMatch];

    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Acc => "acc",
            Metric::AccNorm => "acc_norm",
            Metric::AccBytes => "acc_bytes",
            Metric::ExactMatch => "exact_match",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = TaskError;

    fn from_str(given: &str) -> Result<Self> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == given.trim())
            .ok_or_else(|| TaskError::UnknownMetric { given: given.to_string(), known: Metric::ALL.map(Metric::as_str).join(", ") })
    }
}

/// A data split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSplit {
    /// Training data.
    Train,
    /// Development / validation data (few-shot demonstrations usually come from here).
    Dev,
    /// Test data.
    Test,
}

impl TaskSplit {
    /// The name used in tasks.toml and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSplit::Train => "train",
            TaskSplit::Dev => "dev",
            TaskSplit::Test => "test",
        }
    }
}

impl fmt::Display for TaskSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskSplit {
    type Err = TaskError;

    fn from_str(given: &str) -> Result<Self> {
        match given.trim().to_lowercase().as_str() {
            "train" => Ok(TaskSplit::Train),
            "dev" | "val" | "validation" => Ok(TaskSplit::Dev),
            "test" => Ok(TaskSplit::Test),
            _ => Err(TaskError::UnknownSplit { given: given.to_string() }),
        }
    }
}
