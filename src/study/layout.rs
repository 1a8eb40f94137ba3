//! Where a study's results live on disk: the only code that builds these paths.
//!
//! ```text
//! <out>/study.json                 the expanded plan (StudyRecord)
//! <out>/config.toml                the study file as given
//! <out>/cells/<id>/cell.json       status and provenance (CellRecord)
//! <out>/cells/<id>/sparsity.csv, masks/, ppl/, tasks/
//! <out>/dense/<model>/dense.json, ppl/, tasks/
//! <out>/analysis/<analysis>/...
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::design::{Cell, DenseBaseline};

pub const STUDY_FILE: &str = "study.json";
pub const CONFIG_FILE: &str = "config.toml";
pub const CELL_FILE: &str = "cell.json";
pub const DENSE_FILE: &str = "dense.json";

/// `study.json`: what the study is, so that anyone (the report, `merge`, a resumed run) can
/// tell which results belong to which grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyRecord {
    pub study: String,
    pub config_hash: String,
    pub tool_version: String,
    pub cells: Vec<Cell>,
    pub dense: Vec<DenseBaseline>,
    /// Model name -> folder, as the study file gave them.
    pub models: Vec<(String, PathBuf)>,
    /// Evaluation settings as configured (languages, tasks, limits), for the report's setup.
    pub evaluation: serde_json::Value,
    pub analysis: crate::design::AnalysisPlan,
}

/// A study's output folder.
#[derive(Clone, Debug)]
pub struct StudyDir {
    pub root: PathBuf,
}

impl StudyDir {
    pub fn new(root: impl Into<PathBuf>) -> StudyDir {
        StudyDir { root: root.into() }
    }
    pub fn study_file(&self) -> PathBuf {
        self.root.join(STUDY_FILE)
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub fn cell_dir(&self, id: &str) -> PathBuf {
        self.root.join("cells").join(id)
    }
    pub fn cell_record(&self, id: &str) -> PathBuf {
        self.cell_dir(id).join(CELL_FILE)
    }
    pub fn dense_dir(&self, model: &str) -> PathBuf {
        self.root.join("dense").join(model)
    }
    pub fn dense_record(&self, model: &str) -> PathBuf {
        self.dense_dir(model).join(DENSE_FILE)
    }
    /// The folder of one unit of work (cell or baseline).
    pub fn unit_dir(&self, unit: &Unit) -> PathBuf {
        match unit {
            Unit::Cell(c) => self.cell_dir(&c.id),
            Unit::Dense(d) => self.dense_dir(&d.model),
        }
    }
    pub fn unit_record(&self, unit: &Unit) -> PathBuf {
        match unit {
            Unit::Cell(c) => self.cell_record(&c.id),
            Unit::Dense(d) => self.dense_record(&d.model),
        }
    }
    pub fn analysis_dir(&self, analysis: &str) -> PathBuf {
        self.root.join("analysis").join(analysis)
    }
    /// Where the model analyses of `model` go: `analysis/`, or `analysis/<model>/` when the
    /// study has several models.
    pub fn model_analysis_root(&self, model: &str, several_models: bool) -> PathBuf {
        let root = self.root.join("analysis");
        if several_models {
            root.join(model)
        } else {
            root
        }
    }
    /// A cell's saved masks folder, when the cell has written one.
    pub fn cell_masks(&self, id: &str) -> Option<PathBuf> {
        let masks = self.cell_dir(id).join("masks");
        masks.join("index.json").is_file().then_some(masks)
    }
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }

    pub fn read_study(&self) -> Result<StudyRecord, LayoutError> {
        read_json(&self.study_file())
    }

    /// The record of a unit, `None` when it never ran.
    pub fn read_record(&self, unit: &Unit) -> Result<Option<UnitRecord>, LayoutError> {
        let path = self.unit_record(unit);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
}

/// A unit of work: a pruned cell or a dense baseline.
#[derive(Clone, Debug)]
pub enum Unit {
    Dense(DenseBaseline),
    Cell(Cell),
}

impl Unit {
    pub fn id(&self) -> &str {
        match self {
            Unit::Dense(d) => &d.id,
            Unit::Cell(c) => &c.id,
        }
    }
    pub fn model(&self) -> &str {
        match self {
            Unit::Dense(d) => &d.model,
            Unit::Cell(c) => &c.model,
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

/// `cell.json` / `dense.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub seed: Option<u64>,
    pub started_unix: u64,
    pub timings: StageTimings,
    /// Tokens scored for perplexity and fed through calibration: the plan's throughput comes from these.
    pub eval_tokens: usize,
    pub calibration_tokens: usize,
    /// Pruned / total weights of the pruned layers (cells only).
    pub overall_sparsity: Option<f64>,
    pub machine: MachineRecord,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MachineRecord {
    pub hostname: String,
    pub cores: usize,
    pub os: String,
    pub device: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read {path}: {source}; is this a study results folder (made by `polyprune study run`)?")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid record ({message}); delete it and re-run `polyprune study run` to rebuild it")]
    Parse { path: PathBuf, message: String },
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, LayoutError> {
    let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| LayoutError::Parse { path: path.to_path_buf(), message: e.to_string() })
}
