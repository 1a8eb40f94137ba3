//! The whole study from one config file: expand the grid (`config`, `cells`), estimate it
//! (`plan`), run it resumably (`runner`), split it across machines (`shard`, `merge`, `slurm`).
//! `layout` is the only code that knows where results live on disk.

pub mod cells;
pub mod config;
pub mod layout;
pub mod merge;
pub mod plan;
pub mod runner;
pub mod shard;
pub mod slurm;

pub use cells::{Cell, DenseBaseline, Grid};
pub use config::{ConfigError, StudyConfig};
pub use layout::{StudyDir, StudyRecord, Unit, UnitRecord, UnitStatus};
pub use runner::{run_study, Observer, RunOptions, RunSummary, Silent};
pub use shard::Shard;
