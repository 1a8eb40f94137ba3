//! `study merge`: gathers the results of several shards (or partial runs) of one study into one
//! folder. Shards must come from the same study file (same config hash). Each unit is taken
//! from the first shard where it is done; units done nowhere are reported, not invented.

use std::path::{Path, PathBuf};

use super::layout::{StudyDir, StudyRecord, Unit, UnitStatus};
use super::runner::units;
use crate::design::Grid;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one shard folder")]
    NoShards,
    #[error(transparent)]
    Layout(#[from] super::layout::LayoutError),
    #[error("{shard} comes from another study file (config hash {found:.12}, the first shard has {expected:.12}); merge only shards of one study")]
    OtherStudy { shard: PathBuf, found: String, expected: String },
    #[error("{out} holds another study (config hash {found:.12}); give another -o")]
    OutOccupied { out: PathBuf, found: String },
    #[error("cannot copy {from} to {to}: {source}")]
    Copy { from: PathBuf, to: PathBuf, source: std::io::Error },
}

#[derive(Debug, Default)]
pub struct MergeSummary {
    pub merged: Vec<String>,
    /// Units done in no shard (failed or never run).
    pub missing: Vec<String>,
}

/// Merges `shards` into `out`.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<MergeSummary, MergeError> {
    let dirs: Vec<StudyDir> = shards.iter().map(StudyDir::new).collect();
    let first = dirs.first().ok_or(MergeError::NoShards)?;
    let record: StudyRecord = first.read_study()?;
    for d in &dirs[1..] {
        let other = d.read_study()?;
        if other.config_hash != record.config_hash {
            return Err(MergeError::OtherStudy { shard: d.root.clone(), found: other.config_hash, expected: record.config_hash });
        }
    }
    let target = StudyDir::new(out);
    if target.study_file().is_file() {
        let existing = target.read_study()?;
        if existing.config_hash != record.config_hash {
            return Err(MergeError::OutOccupied { out: out.to_path_buf(), found: existing.config_hash });
        }
    }
    copy_file(&first.study_file(), &target.study_file())?;
    copy_file(&first.config_file(), &target.config_file())?;
    let grid = Grid { cells: record.cells.clone(), dense: record.dense.clone() };
    let mut summary = MergeSummary::default();
    for unit in units(&grid, None) {
        if matches!(target.read_record(&unit), Ok(Some(r)) if r.status == UnitStatus::Done) {
            summary.merged.push(unit.id().to_string());
            continue;
        }
        let source = dirs.iter().find(|d| matches!(d.read_record(&unit), Ok(Some(r)) if r.status == UnitStatus::Done));
        match source {
            Some(d) => {
                copy_unit(d, &target, &unit)?;
                summary.merged.push(unit.id().to_string());
            }
            None => summary.missing.push(unit.id().to_string()),
        }
    }
    Ok(summary)
}

/// Copies a unit's folder, its record last (so an interrupted merge never shows a half unit as done).
fn copy_unit(from: &StudyDir, to: &StudyDir, unit: &Unit) -> Result<(), MergeError> {
    let src = from.unit_dir(unit);
    let dst = to.unit_dir(unit);
    let record = from.unit_record(unit);
    copy_tree(&src, &dst, &record)?;
    copy_file(&record, &to.unit_record(unit))
}

fn copy_tree(src: &Path, dst: &Path, skip: &Path) -> Result<(), MergeError> {
    let err = |source| MergeError::Copy { from: src.to_path_buf(), to: dst.to_path_buf(), source };
    std::fs::create_dir_all(dst).map_err(err)?;
    for entry in std::fs::read_dir(src).map_err(err)? {
        let entry = entry.map_err(err)?;
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

fn copy_file(from: &Path, to: &Path) -> Result<(), MergeError> {
    let bytes = std::fs::read(from).map_err(|source| MergeError::Copy { from: from.to_path_buf(), to: to.to_path_buf(), source })?;
    crate::util::write_atomic(to, &bytes).map_err(|source| MergeError::Copy { from: from.to_path_buf(), to: to.to_path_buf(), source })
}
