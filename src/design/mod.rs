//! A study's design: the study file (`config`) and the grid of cells it expands to (`cells`).
//!
//! Pure data, below everything that runs or reads a study: the runner (`study`) executes the
//! grid, the results store records it, the analyses and the report read it back. Nothing here
//! touches a model or a results folder.

pub mod cells;
pub mod config;

pub use cells::{target_tag, Cell, DenseBaseline, Grid};
pub use config::{
    AdvicePlan, AnalysisParams, AnalysisPlan, AnalysisSwitches, CalibrationChoice, ConfigError, DecidedStop, DisplayNames, ReportPlan,
    StopRule, StudyConfig,
};
