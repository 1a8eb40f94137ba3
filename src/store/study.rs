//! A study's output folder: its plan, one folder per unit of work (pruned cell or dense
//! baseline) with the unit's record written last, the analyses' exports and the report's.
//!
//! The record-last order is what makes a study resumable and mergeable: a unit whose record
//! says done has every file, so [`StudyDir::copy_unit_from`] copies the record last too.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::io::{read_json, write_bytes, write_json, StoreError};
use super::records::{StudyRecord, UnitRecord, UnitStatus};
use super::rows::{PerplexitySummaryRow, TaskSummaryRow};
use super::run::{ResultsDir, ANALYSIS};
use crate::design::{Cell, DenseBaseline};
use crate::runtime::WeightOverride;

pub(super) const STUDY_FILE: &str = "study.json";
const CONFIG_FILE: &str = "config.toml";
const CELL_FILE: &str = "cell.json";
const DENSE_FILE: &str = "dense.json";
const DECISIONS_FILE: &str = "decisions.json";
const ADVICE_RECORD: &str = "study_advice.json";
const PROGRESS_DIR: &str = "progress";
const WEIGHTS_DIR: &str = "weights";

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

/// A study's output folder.
#[derive(Clone, Debug)]
pub struct StudyDir {
    pub root: PathBuf,
}

impl StudyDir {
    pub fn new(root: impl Into<PathBuf>) -> StudyDir {
        StudyDir { root: root.into() }
    }

    fn study_file(&self) -> PathBuf {
        self.root.join(STUDY_FILE)
    }
    fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// Whether a study has claimed this folder (its `study.json` exists).
    pub fn exists(&self) -> bool {
        self.study_file().is_file()
    }
    pub fn read_study(&self) -> Result<StudyRecord, StoreError> {
        read_json(&self.study_file())
    }
    /// Claims the folder: the study file as given, then the plan.
    /// Removes the temporaries and staged folders a killed run left (nothing it finished).
    pub fn remove_abandoned_writes(&self) -> Result<usize, StoreError> {
        crate::util::remove_abandoned_writes(&self.root).map_err(|source| StoreError::Write { path: self.root.clone(), source })
    }

    pub fn write_study(&self, record: &StudyRecord, config_text: &str) -> Result<(), StoreError> {
        write_bytes(&self.config_file(), config_text.as_bytes())?;
        write_json(&self.study_file(), record)
    }

    /// The study file as last given to `study run` (`None` for folders written before it was kept).
    pub fn read_config_text(&self) -> Result<Option<String>, StoreError> {
        let path = self.config_file();
        if !path.is_file() {
            return Ok(None);
        }
        std::fs::read_to_string(&path).map(Some).map_err(|source| StoreError::Read { path, source })
    }
    /// Where the kept copy of the study file is (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.config_file()
    }
    /// Replaces the kept study file by a text of the same study (same hash: only its `[report]`
    /// or comments differ), so the report follows the latest names.
    pub fn update_config_text(&self, config_text: &str) -> Result<(), StoreError> {
        write_bytes(&self.config_file(), config_text.as_bytes())
    }

    /// The folder of a pruned cell.
    pub fn cell(&self, id: &str) -> ResultsDir {
        ResultsDir::at(self.root.join("cells").join(id))
    }
    /// The folder of a model's dense baseline.
    pub fn dense(&self, model: &str) -> ResultsDir {
        ResultsDir::at(self.root.join("dense").join(model))
    }
    /// The folder of one unit of work.
    pub fn unit(&self, unit: &Unit) -> ResultsDir {
        match unit {
            Unit::Cell(c) => self.cell(&c.id),
            Unit::Dense(d) => self.dense(&d.model),
        }
    }
    fn record_file(&self, unit: &Unit) -> PathBuf {
        let name = if matches!(unit, Unit::Cell(_)) { CELL_FILE } else { DENSE_FILE };
        self.unit(unit).path().join(name)
    }

    /// The record of a unit, `None` when it never ran.
    pub fn read_record(&self, unit: &Unit) -> Result<Option<UnitRecord>, StoreError> {
        let path = self.record_file(unit);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    /// Whether the unit's record says done (an unreadable record counts as not done).
    pub fn is_done(&self, unit: &Unit) -> bool {
        matches!(self.read_record(unit), Ok(Some(r)) if r.status == UnitStatus::Done)
    }
    /// Writes the unit's record: last, after every other file of the unit.
    pub fn write_record(&self, unit: &Unit, record: &UnitRecord) -> Result<(), StoreError> {
        write_json(&self.record_file(unit), record)
    }

    /// Where analyses export their sections: `<study>/analysis/`, or `<study>/analysis/<model>/`
    /// for the model-running analyses of a study with several models.
    pub fn analysis(&self, model: Option<&str>) -> PathBuf {
        let out = self.root.join(ANALYSIS);
        match model {
            Some(m) => out.join(m),
            None => out,
        }
    }
    /// The per-model analysis folders present, `(model, folder)` sorted by name. A folder that
    /// holds a section of its own (a section id, not a model) is not one.
    pub fn analysis_models(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let out = self.analysis(None);
        if !out.is_dir() {
            return Ok(Vec::new());
        }
        let read = |source| StoreError::Read { path: out.clone(), source };
        let mut models = Vec::new();
        for entry in std::fs::read_dir(&out).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.is_dir() {
                models.push((path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), path));
            }
        }
        models.sort();
        Ok(models)
    }
    /// `<study>/advice/<model>/`: the `[advice]` search's files for one model (`advise`'s
    /// `advice.json` and the rest, and the record of what ran).
    pub fn advice(&self, model: &str) -> PathBuf {
        self.root.join("advice").join(model)
    }
    /// The record of the `[advice]` search that produced `advice/<model>/` (written after its
    /// files, so its presence means they are complete), `None` before one finished.
    pub fn read_advice_record<T: DeserializeOwned>(&self, model: &str) -> Result<Option<T>, StoreError> {
        let path = self.advice(model).join(ADVICE_RECORD);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    /// `advice/<model>/advice.json` (the `advise` result), `None` when there is none.
    pub fn read_advice<T: DeserializeOwned>(&self, model: &str) -> Result<Option<T>, StoreError> {
        let path = self.advice(model).join("advice.json");
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    pub fn write_advice_record<T: Serialize>(&self, model: &str, record: &T) -> Result<(), StoreError> {
        write_json(&self.advice(model).join(ADVICE_RECORD), record)
    }
    /// Removes the record before a search is redone, so files half rewritten by an interrupted
    /// run are never taken for a finished result.
    pub fn remove_advice_record(&self, model: &str) -> Result<(), StoreError> {
        let path = self.advice(model).join(ADVICE_RECORD);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Write { path, source }),
        }
    }
    /// Where the report exports its tables.
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }

    /// `<study>/decided/`: a study that stops when decided keeps its rounds here.
    fn decided(&self) -> PathBuf {
        self.root.join("decided")
    }
    /// The decisions of a finished decided evaluation (`decided/decisions.json`), `None` in a
    /// study that scores every example.
    pub fn read_decisions<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        let path = self.decided().join(DECISIONS_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    pub fn write_decisions<T: Serialize>(&self, decisions: &T) -> Result<(), StoreError> {
        write_json(&self.decided().join(DECISIONS_FILE), decisions)
    }
    /// The rounds done so far (`decided/progress/state.json`), `None` before the first.
    pub fn read_rounds<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        let path = self.decided().join(PROGRESS_DIR).join("state.json");
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    /// Written after every unit's part of the round ([`StudyDir::write_unit_part`]), so the
    /// state never counts a round a unit has not kept.
    pub fn write_rounds<T: Serialize>(&self, state: &T) -> Result<(), StoreError> {
        write_json(&self.decided().join(PROGRESS_DIR).join("state.json"), state)
    }
    /// One unit's examples scored so far in a decided evaluation.
    pub fn read_unit_part<T: DeserializeOwned>(&self, unit: &Unit) -> Result<Option<T>, StoreError> {
        let path = self.decided().join(PROGRESS_DIR).join(format!("{}.json", unit.id()));
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
    pub fn write_unit_part<T: Serialize>(&self, unit: &Unit, part: &T) -> Result<(), StoreError> {
        write_json(&self.decided().join(PROGRESS_DIR).join(format!("{}.json", unit.id())), part)
    }
    /// Drops the rounds' working files and the pruned weights once the results are written.
    pub fn remove_decided_progress(&self) -> Result<(), StoreError> {
        for dir in [self.decided().join(PROGRESS_DIR), self.root.join(WEIGHTS_DIR)] {
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir).map_err(|source| StoreError::Write { path: dir.clone(), source })?;
            }
        }
        Ok(())
    }

    /// A pruned cell's changed weights, kept while a decided evaluation needs them
    /// (`weights/<cell>.safetensors`, f32; never committed, removed when the study ends).
    fn weights_file(&self, cell: &str) -> PathBuf {
        self.root.join(WEIGHTS_DIR).join(format!("{cell}.safetensors"))
    }
    /// Written by the one weights-file writer ([`crate::runtime::spill`]): each weight in the
    /// type the model folder stores it in.
    pub fn write_pruned_weights(&self, cell: &str, weights: &[WeightOverride]) -> Result<(), StoreError> {
        let path = self.weights_file(cell);
        crate::runtime::spill::write_overrides(&path, weights).map_err(|e| match e {
            crate::runtime::spill::SpillError::Write { path, source } => StoreError::Write { path, source },
            other => StoreError::Write { path: path.clone(), source: std::io::Error::other(other.to_string()) },
        })
    }
    /// The weights of [`StudyDir::write_pruned_weights`], read from the file when a session
    /// needs them (also the f32 files older studies wrote).
    pub fn read_pruned_weights(&self, cell: &str) -> Result<Vec<WeightOverride>, StoreError> {
        let path = self.weights_file(cell);
        if !path.is_file() {
            return Err(StoreError::Read { path: path.clone(), source: std::io::Error::from(std::io::ErrorKind::NotFound) });
        }
        crate::runtime::spill::map_overrides(&path, None).map_err(|e| StoreError::Malformed {
            path: path.clone(),
            message: e.to_string(),
            rerun: "`polyprune study run`",
        })
    }

    /// Copies the plan (study file and `study.json`) from another folder of the same study.
    pub fn copy_plan_from(&self, from: &StudyDir) -> Result<(), StoreError> {
        copy_file(&from.study_file(), &self.study_file())?;
        copy_file(&from.config_file(), &self.config_file())
    }

    /// Copies a unit's folder from another folder of the same study, its record last (so an
    /// interrupted copy never shows a half unit as done).
    pub fn copy_unit_from(&self, from: &StudyDir, unit: &Unit) -> Result<(), StoreError> {
        let record = from.record_file(unit);
        copy_tree(from.unit(unit).path(), self.unit(unit).path(), &record)?;
        copy_file(&record, &self.record_file(unit))
    }
}

fn copy_tree(src: &Path, dst: &Path, skip: &Path) -> Result<(), StoreError> {
    let read = |source| StoreError::Read { path: src.to_path_buf(), source };
    std::fs::create_dir_all(dst).map_err(|source| StoreError::Write { path: dst.to_path_buf(), source })?;
    for entry in std::fs::read_dir(src).map_err(read)? {
        let entry = entry.map_err(read)?;
        let path = entry.path();
        let name = entry.file_name();
        if path == skip || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &dst.join(&name), skip)?;
        } else {
            copy_file(&path, &dst.join(&name))?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), StoreError> {
    let bytes = std::fs::read(from).map_err(|source| StoreError::Read { path: from.to_path_buf(), source })?;
    write_bytes(to, &bytes)
}

/// What one unit left on disk, as the report reads it.
#[derive(Clone, Debug, Default)]
pub struct UnitResults {
    pub record: Option<UnitRecord>,
    pub perplexity: Vec<PerplexitySummaryRow>,
    pub tasks: Vec<TaskSummaryRow>,
    /// (zero, total) weights over the pruned layers after pruning (the masks' count in folders
    /// written before zeros were counted).
    pub sparsity: Option<(u64, u64)>,
}

impl UnitResults {
    pub fn is_done(&self) -> bool {
        matches!(&self.record, Some(r) if r.status == UnitStatus::Done)
    }
    pub fn bits_per_byte(&self, language: &str) -> Option<f64> {
        self.perplexity.iter().find(|r| r.language == language).map(|r| r.bits_per_byte)
    }
    pub fn task(&self, task: &str, language: &str, metric: &str) -> Option<&TaskSummaryRow> {
        self.tasks.iter().find(|r| r.task == task && r.language == language && r.metric == metric)
    }
}

/// A finished (or partly finished) study read back: the plan, and each unit's record and
/// summary rows. A unit that is not done has only its record (if any); a done unit's missing
/// `ppl/` or `tasks/` means the study measured none.
pub struct StudyResults {
    pub dir: StudyDir,
    pub record: StudyRecord,
    pub dense: Vec<(DenseBaseline, UnitResults)>,
    pub cells: Vec<(Cell, UnitResults)>,
}

fn read_unit(dir: &StudyDir, unit: &Unit) -> Result<UnitResults, StoreError> {
    let record = dir.read_record(unit)?;
    if !matches!(&record, Some(r) if r.status == UnitStatus::Done) {
        return Ok(UnitResults { record, ..Default::default() });
    }
    let folder = dir.unit(unit);
    let sparsity = if folder.has_sparsity() {
        let rows = folder.read_sparsity()?;
        (!rows.is_empty()).then(|| (rows.iter().map(|r| r.zeros.unwrap_or(r.pruned)).sum(), rows.iter().map(|r| r.total).sum()))
    } else {
        None
    };
    let (ppl, tasks) = (folder.perplexity(), folder.tasks());
    Ok(UnitResults {
        record,
        perplexity: if ppl.has_summary() { ppl.read_summary()? } else { Vec::new() },
        tasks: if tasks.has_summary() { tasks.read_summary()? } else { Vec::new() },
        sparsity,
    })
}

impl StudyResults {
    pub fn load(root: &Path) -> Result<StudyResults, StoreError> {
        let dir = StudyDir::new(root);
        let record = dir.read_study()?;
        let dense =
            record.dense.iter().map(|d| Ok((d.clone(), read_unit(&dir, &Unit::Dense(d.clone()))?))).collect::<Result<_, StoreError>>()?;
        let cells =
            record.cells.iter().map(|c| Ok((c.clone(), read_unit(&dir, &Unit::Cell(c.clone()))?))).collect::<Result<_, StoreError>>()?;
        Ok(StudyResults { dir, record, dense, cells })
    }

    /// The done dense baseline of `model`.
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
