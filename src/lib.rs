//! polyprune: does the language of the calibration data change what post-training pruning keeps?
//!
//! Data flows one way through the modules: `model` (graph, import) and `runtime` (ONNX Runtime)
//! run a model; `data` supplies multilingual text; `eval` measures it; `calibrate` and `prune`
//! produce masks; `stats` tests differences; `store` owns every results file (paths and rows); `analysis`
//! and `report` read what the study runner stored there.

pub mod analysis;
pub mod calibrate;
pub mod data;
pub mod design;
pub mod eval;
pub mod model;
pub mod progress;
pub mod prune;
pub mod pruned;
pub mod report;
pub mod runtime;
pub mod stats;
pub mod store;
pub mod study;
pub mod tasks;
pub mod util;
pub mod workflow;
