//! `study merge`: gathers the results of several shards (or partial runs) of one study into one
//! folder. Shards must come from the same study file (same config hash). Each unit is taken
//! from the first shard where it is done; units done nowhere are reported, not invented.

use std::path::{Path, PathBuf};

use super::runner::units;
use crate::design::Grid;
use crate::store::{StoreError, StudyDir, StudyRecord};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one shard folder")]
    NoShards,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{shard} comes from another study file (config hash {found:.12}, the first shard has {expected:.12}); merge only shards of one study")]
    OtherStudy { shard: PathBuf, found: String, expected: String },
    #[error("{out} holds another study (config hash {found:.12}); give another -o")]
    OutOccupied { out: PathBuf, found: String },
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
    if target.exists() {
        let existing = target.read_study()?;
        if existing.config_hash != record.config_hash {
            return Err(MergeError::OutOccupied { out: out.to_path_buf(), found: existing.config_hash });
        }
    }
    target.copy_plan_from(first)?;
    let grid = Grid { cells: record.cells.clone(), dense: record.dense.clone() };
    let mut summary = MergeSummary::default();
    for unit in units(&grid, None) {
        if target.is_done(&unit) {
            summary.merged.push(unit.id().to_string());
            continue;
        }
        let source = dirs.iter().find(|d| d.is_done(&unit));
        match source {
            Some(d) => {
                target.copy_unit_from(d, &unit)?;
                summary.merged.push(unit.id().to_string());
            }
            None => summary.missing.push(unit.id().to_string()),
        }
    }
    Ok(summary)
}
