//! The folders that hold one kind of measurement, wherever they sit: a standalone run folder
//! (`<results>/ppl/<time>-<label>/`) or a study unit's `ppl/`, `tasks/` and the unit folder
//! itself (sparsity, manifest, masks). Each knows its file names and reads and writes its rows.

use std::path::{Path, PathBuf};

use super::io::{read_csv, read_json, write_bytes, write_csv, write_json, StoreError};
use super::records::Provenance;
use super::rows::{
    task_rows, CalibrationManifestRow, ChoiceRow, DocumentRow, ExampleRow, PerplexitySummaryRow, SparsityRow, TaskSummaryRow,
};
use crate::eval::{LanguageScore, TaskResult};
use crate::pruned::{PrunedModel, MASK_DIR, MASK_INDEX};

const DOCUMENTS: &str = "documents.csv";
const EXAMPLES: &str = "examples.csv";
const CHOICES: &str = "choices.csv";
const SUMMARY: &str = "summary.csv";
const PROVENANCE: &str = "provenance.json";
const SPARSITY: &str = "sparsity.csv";
const MANIFEST: &str = "calibration_manifest.csv";
const SECTION: &str = "section.json";
const GATE: &str = "gate.json";
/// Folders of analysis outputs, skipped when looking for per-unit scores.
pub(super) const ANALYSIS: &str = "analysis";

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a standalone command stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// `eval ppl`: a [`PerplexityDir`].
    Perplexity,
    /// `eval tasks`: a [`TasksDir`].
    Tasks,
    /// `prune`: a [`ResultsDir`].
    Prune,
    /// `gate`: a [`GateDir`].
    Gate,
}

impl RunKind {
    fn folder(self) -> &'static str {
        match self {
            RunKind::Perplexity => "ppl",
            RunKind::Tasks => "tasks",
            RunKind::Prune => "prune",
            RunKind::Gate => "gate",
        }
    }
}

/// A new run folder `<results>/<kind>/<unix time>-<label>` (the label made folder-safe); it is
/// created by the first write into it.
pub fn new_run(results: &Path, kind: RunKind, label: &str) -> PathBuf {
    let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    results.join(kind.folder()).join(format!("{}-{}", unix_now(), safe))
}

/// Perplexity results: `documents.csv` (per document, for paired tests), `summary.csv` (per
/// language) and `provenance.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerplexityDir(PathBuf);

impl PerplexityDir {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        PerplexityDir(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn exists(&self) -> bool {
        self.0.join(DOCUMENTS).is_file()
    }
    pub fn has_summary(&self) -> bool {
        self.0.join(SUMMARY).is_file()
    }
    pub fn write(&self, scores: &[LanguageScore], provenance: &Provenance) -> Result<(), StoreError> {
        write_csv(&self.0.join(DOCUMENTS), &DocumentRow::from_scores(scores))?;
        write_csv(&self.0.join(SUMMARY), &PerplexitySummaryRow::from_scores(scores))?;
        write_json(&self.0.join(PROVENANCE), provenance)
    }
    pub fn read_documents(&self) -> Result<Vec<DocumentRow>, StoreError> {
        read_csv(&self.0.join(DOCUMENTS))
    }
    pub fn read_summary(&self) -> Result<Vec<PerplexitySummaryRow>, StoreError> {
        read_csv(&self.0.join(SUMMARY))
    }
    pub fn read_provenance(&self) -> Result<Provenance, StoreError> {
        read_json(&self.0.join(PROVENANCE))
    }
}

/// Downstream-task results: `examples.csv`, `choices.csv`, `summary.csv`, `provenance.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TasksDir(PathBuf);

impl TasksDir {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        TasksDir(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn exists(&self) -> bool {
        self.0.join(EXAMPLES).is_file()
    }
    pub fn has_summary(&self) -> bool {
        self.0.join(SUMMARY).is_file()
    }
    pub fn write(&self, results: &[TaskResult], provenance: &Provenance) -> Result<(), StoreError> {
        let (examples, choices, summary) = task_rows(results);
        write_csv(&self.0.join(EXAMPLES), &examples)?;
        write_csv(&self.0.join(CHOICES), &choices)?;
        write_csv(&self.0.join(SUMMARY), &summary)?;
        write_json(&self.0.join(PROVENANCE), provenance)
    }
    pub fn read_examples(&self) -> Result<Vec<ExampleRow>, StoreError> {
        read_csv(&self.0.join(EXAMPLES))
    }
    pub fn read_choices(&self) -> Result<Vec<ChoiceRow>, StoreError> {
        read_csv(&self.0.join(CHOICES))
    }
    pub fn read_summary(&self) -> Result<Vec<TaskSummaryRow>, StoreError> {
        read_csv(&self.0.join(SUMMARY))
    }
    pub fn read_provenance(&self) -> Result<Provenance, StoreError> {
        read_json(&self.0.join(PROVENANCE))
    }
}

/// The results of one model: for a pruned one `sparsity.csv`, `calibration_manifest.csv` (when
/// calibrated), `masks/` and, for a standalone `prune` run, `provenance.json`; in a study, every
/// unit's folder (cell or dense baseline) is one, with its `ppl/` and `tasks/` inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultsDir(PathBuf);

impl ResultsDir {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ResultsDir(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn perplexity(&self) -> PerplexityDir {
        PerplexityDir(self.0.join("ppl"))
    }
    pub fn tasks(&self) -> TasksDir {
        TasksDir(self.0.join("tasks"))
    }
    /// The folder the mask files go in (written by `pruning::write_masks`, read by `MaskSet`).
    pub fn masks(&self) -> PathBuf {
        self.0.join(MASK_DIR)
    }
    /// Whether the masks were written completely (their index is written last).
    pub fn has_masks(&self) -> bool {
        self.masks().join(MASK_INDEX).is_file()
    }
    pub fn has_sparsity(&self) -> bool {
        self.0.join(SPARSITY).is_file()
    }
    pub fn write_sparsity(&self, pruned: &PrunedModel) -> Result<(), StoreError> {
        write_csv(&self.0.join(SPARSITY), &SparsityRow::from_pruned(pruned))
    }
    pub fn read_sparsity(&self) -> Result<Vec<SparsityRow>, StoreError> {
        read_csv(&self.0.join(SPARSITY))
    }
    pub fn write_manifest(&self, rows: &[CalibrationManifestRow]) -> Result<(), StoreError> {
        write_csv(&self.0.join(MANIFEST), rows)
    }
    pub fn read_manifest(&self) -> Result<Vec<CalibrationManifestRow>, StoreError> {
        read_csv(&self.0.join(MANIFEST))
    }
    pub fn write_provenance(&self, provenance: &Provenance) -> Result<(), StoreError> {
        write_json(&self.0.join(PROVENANCE), provenance)
    }
    pub fn read_provenance(&self) -> Result<Provenance, StoreError> {
        read_json(&self.0.join(PROVENANCE))
    }
}

/// A sequential regression gate's results: `gate.json` (the decisions; its type belongs to the
/// gate workflow, the store only places the file) and the candidate's per-example results in
/// `tasks/` and per-document results in `ppl/`, the same files `eval tasks` and `eval ppl` write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateDir(PathBuf);

impl GateDir {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        GateDir(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn tasks(&self) -> TasksDir {
        TasksDir(self.0.join("tasks"))
    }
    pub fn perplexity(&self) -> PerplexityDir {
        PerplexityDir(self.0.join("ppl"))
    }
    pub fn write_decision<T: serde::Serialize>(&self, record: &T) -> Result<(), StoreError> {
        write_json(&self.0.join(GATE), record)
    }
    pub fn read_decision<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        read_json(&self.0.join(GATE))
    }
}

/// An analysis section's exports under an output folder: `<out>/<id>/section.json` plus each
/// table as `<name>.csv` and `<name>.json`. The section type belongs to the analyses; the store
/// only places and writes its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionDir(PathBuf);

impl SectionDir {
    pub fn new(out: &Path, id: &str) -> Self {
        SectionDir(out.join(id))
    }
    /// The folder `dir` itself holds the section (a command's `--out`).
    pub fn at(dir: &Path) -> Self {
        SectionDir(dir.to_path_buf())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn exists(&self) -> bool {
        self.0.join(SECTION).is_file()
    }
    pub fn write_section<T: serde::Serialize>(&self, section: &T) -> Result<(), StoreError> {
        write_json(&self.0.join(SECTION), section)
    }
    pub fn read_section<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        read_json(&self.0.join(SECTION))
    }
    pub fn write_table(&self, name: &str, csv: &[u8], json: &serde_json::Value) -> Result<(), StoreError> {
        write_bytes(&self.0.join(format!("{name}.csv")), csv)?;
        write_json(&self.0.join(format!("{name}.json")), json)
    }
}

/// The per-unit scores of one file, as paired tests read them.
#[derive(Clone, Debug, PartialEq)]
pub enum Scores {
    Documents(Vec<DocumentRow>),
    Examples(Vec<ExampleRow>),
}

/// Reads `documents.csv` or `examples.csv`, by its name.
pub fn read_scores(path: &Path) -> Result<Scores, StoreError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(DOCUMENTS) => read_csv(path).map(Scores::Documents),
        Some(EXAMPLES) => read_csv(path).map(Scores::Examples),
        _ => Err(StoreError::Malformed {
            path: path.to_path_buf(),
            message: format!("expected {DOCUMENTS} or {EXAMPLES}"),
            rerun: "`polyprune eval`",
        }),
    }
}

/// The `provenance.json` beside a `documents.csv` / `examples.csv`, `None` when there is none
/// (a folder assembled by hand).
pub fn read_provenance_beside(score_file: &Path) -> Result<Option<Provenance>, StoreError> {
    let path = score_file.with_file_name(PROVENANCE);
    if path.is_file() {
        read_json(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// A results file's place with the names of standalone run folders (`<kind>/<time>-<label>/`)
/// replaced by `<kind>/<run>`: two runs of the same command land at the same run-free path
/// whatever their time stamps and labels, so a regression check can pair them.
pub fn run_free_path(rel: &Path) -> String {
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let kinds = [RunKind::Perplexity, RunKind::Tasks, RunKind::Prune, RunKind::Gate].map(RunKind::folder);
    let is_run = |i: usize| i > 0 && kinds.contains(&parts[i - 1].as_str()) && is_run_folder_name(&parts[i]);
    parts.iter().enumerate().map(|(i, p)| if is_run(i) { "<run>" } else { p.as_str() }).collect::<Vec<_>>().join("/")
}

/// `<unix time>-<label>`, as [`new_run`] names a run folder.
fn is_run_folder_name(name: &str) -> bool {
    name.split_once('-').is_some_and(|(time, _)| !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()))
}

/// Every `documents.csv` / `examples.csv` under `root` (a run folder, a results folder or a
/// study), as paths relative to it, sorted; analysis outputs are skipped.
pub fn find_score_files(root: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let read = |source| StoreError::Read { path: dir.clone(), source };
        for entry in std::fs::read_dir(&dir).map_err(read)? {
            let entry = entry.map_err(read)?;
            let name = entry.file_name();
            let path = rel.join(&name);
            if entry.path().is_dir() {
                if name != ANALYSIS {
                    stack.push(path);
                }
            } else if name == DOCUMENTS || name == EXAMPLES {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
