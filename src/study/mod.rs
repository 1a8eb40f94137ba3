//! The whole study from one config file (its grid is `crate::design`): estimate it (`plan`), run it resumably (`runner`), split it across machines (`shard`, `merge`, `slurm`).
//! `layout` is the only code that knows where results live on disk.

pub mod analyses;
pub mod layout;
pub mod merge;
pub mod plan;
pub mod runner;
pub mod shard;
pub mod slurm;

pub use crate::design::{Cell, ConfigError, DenseBaseline, Grid, StudyConfig};
pub use layout::{StudyDir, StudyRecord, Unit, UnitRecord, UnitStatus};
pub use runner::{run_study, Observer, RunOptions, RunSummary, Silent};
pub use shard::Shard;
