//! The whole study from one config file (its grid is `crate::design`): estimate it (`plan`), run
//! it resumably (`runner`), split it across machines (`shard`, `merge`, `slurm`). Where the
//! results go on disk is `crate::store`'s business; the runner only hands it rows and records.

pub mod advice;
pub mod analyses;
pub mod decided;
pub mod merge;
pub mod plan;
pub mod runner;
pub mod shard;
pub mod slurm;

pub use crate::design::{Cell, ConfigError, DenseBaseline, Grid, StudyConfig};
pub use crate::store::{StudyDir, StudyRecord, Unit, UnitRecord, UnitStatus};
pub use runner::{run_study, Observer, RunOptions, RunSummary, Silent};
pub use shard::Shard;
