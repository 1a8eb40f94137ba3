//! A finished (or partly finished) study, read back from its folder for the report: the plan,
//! each unit's record, and the summary rows of its measurements. Reading only; the paths come
//! from `study::layout`.

use std::path::Path;

use serde::Deserialize;

use crate::design::{Cell, DenseBaseline};
use crate::study::layout::{LayoutError, StudyDir, StudyRecord, Unit, UnitRecord, UnitStatus};

/// A row of `ppl/summary.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct PerplexityRow {
    pub language: String,
    pub source: String,
    pub documents: usize,
    pub tokens: usize,
    pub bytes: usize,
    pub nll: f64,
    pub perplexity: f64,
    pub bits_per_byte: f64,
}

/// A row of `tasks/summary.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct TaskRow {
    pub task: String,
    pub language: String,
    pub metric: String,
    pub value: f64,
    pub stderr: Option<f64>,
    pub n: usize,
    pub chance: f64,
}

/// A row of `sparsity.csv` (the columns the report uses).
#[derive(Clone, Debug, Deserialize)]
struct SparsityRow {
    pruned: u64,
    total: u64,
}

/// What one unit left on disk.
#[derive(Clone, Debug, Default)]
pub struct UnitResults {
    pub record: Option<UnitRecord>,
    pub perplexity: Vec<PerplexityRow>,
    pub tasks: Vec<TaskRow>,
    /// (pruned, total) weights over the pruned layers.
    pub sparsity: Option<(u64, u64)>,
}

impl UnitResults {
    pub fn is_done(&self) -> bool {
        matches!(&self.record, Some(r) if r.status == UnitStatus::Done)
    }
    pub fn bits_per_byte(&self, language: &str) -> Option<f64> {
        self.perplexity.iter().find(|r| r.language == language).map(|r| r.bits_per_byte)
    }
    pub fn task(&self, task: &str, language: &str, metric: &str) -> Option<&TaskRow> {
        self.tasks.iter().find(|r| r.task == task && r.language == language && r.metric == metric)
    }
}

pub struct StudyResults {
    pub dir: StudyDir,
    pub record: StudyRecord,
    pub dense: Vec<(DenseBaseline, UnitResults)>,
    pub cells: Vec<(Cell, UnitResults)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {message}; re-run the study to rewrite it")]
    Csv { path: std::path::PathBuf, message: String },
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, ResultsError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| ResultsError::Csv { path: path.to_path_buf(), message: e.to_string() })?;
    reader.deserialize().collect::<Result<Vec<T>, _>>().map_err(|e| ResultsError::Csv { path: path.to_path_buf(), message: e.to_string() })
}

fn read_unit(dir: &StudyDir, unit: &Unit) -> Result<UnitResults, ResultsError> {
    let record = dir.read_record(unit)?;
    let folder = dir.unit_dir(unit);
    let done = matches!(&record, Some(r) if r.status == UnitStatus::Done);
    if !done {
        return Ok(UnitResults { record, ..Default::default() });
    }
    let sparsity_rows: Vec<SparsityRow> = read_csv(&folder.join("sparsity.csv"))?;
    let sparsity =
        (!sparsity_rows.is_empty()).then(|| (sparsity_rows.iter().map(|r| r.pruned).sum(), sparsity_rows.iter().map(|r| r.total).sum()));
    Ok(UnitResults {
        record,
        perplexity: read_csv(&folder.join("ppl/summary.csv"))?,
        tasks: read_csv(&folder.join("tasks/summary.csv"))?,
        sparsity,
    })
}

impl StudyResults {
    pub fn load(root: &Path) -> Result<StudyResults, ResultsError> {
        let dir = StudyDir::new(root);
        let record = dir.read_study()?;
        let dense =
            record.dense.iter().map(|d| Ok((d.clone(), read_unit(&dir, &Unit::Dense(d.clone()))?))).collect::<Result<_, ResultsError>>()?;
        let cells =
            record.cells.iter().map(|c| Ok((c.clone(), read_unit(&dir, &Unit::Cell(c.clone()))?))).collect::<Result<_, ResultsError>>()?;
        Ok(StudyResults { dir, record, dense, cells })
    }

    pub fn dense_of(&self, model: &str) -> Option<&UnitResults> {
        self.dense.iter().find(|(d, _)| d.model == model).map(|(_, r)| r).filter(|r| r.is_done())
    }

    /// Evaluation languages in first-seen order over all units.
    pub fn perplexity_languages(&self) -> Vec<String> {
        let mut langs: Vec<String> = Vec::new();
        let units = self.dense.iter().map(|(_, r)| r).chain(self.cells.iter().map(|(_, r)| r));
        for r in units.flat_map(|u| &u.perplexity) {
            if !langs.contains(&r.language) {
                langs.push(r.language.clone());
            }
        }
        langs
    }

    /// (task, language) pairs in first-seen order.
    pub fn task_languages(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let units = self.dense.iter().map(|(_, r)| r).chain(self.cells.iter().map(|(_, r)| r));
        for r in units.flat_map(|u| &u.tasks) {
            let p = (r.task.clone(), r.language.clone());
            if !pairs.contains(&p) {
                pairs.push(p);
            }
        }
        pairs
    }
}
