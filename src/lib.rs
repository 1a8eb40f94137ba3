//! polyprune: does the language of the calibration data change what post-training pruning keeps?
//!
//! The modules form layers; each uses only those below it (`tests/module_layers.rs` checks it):
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | base | `util`, `progress`, `stats` | atomic files and hashes; how work reports progress; pure statistics |
//! | running a model | `runtime`, `model` | the only ONNX Runtime code; the graph builder, GGUF import, model folders |
//! | inputs | `data`, `tasks` | languages (all of FLORES-200) and text sources; downstream task data as a registry of families |
//! | pruning | `prune`, `calibrate`, `pruned` | per-layer methods (one file each); what layers see; a whole pruned model, saved and read back |
//! | measuring | `eval` | one scoring path: perplexity, multiple choice, generation |
//! | a study's shape | `design` | the study file and the grid of cells it expands to (pure data) |
//! | results on disk | `store` | every path of a results folder and one row type per file |
//! | entry points | `analysis`, `workflow` | analyses (masks, subspaces, neurons, error, significance); `eval ppl`, `eval tasks`, `prune` as library calls |
//! | whole studies | `study` | runs a grid resumably, then its `[analysis]` |
//! | output | `report` | HTML, LaTeX and CSV/JSON of what the store holds and the analyses computed |
//!
//! Every command of the `polyprune` binary is one of these library calls: a typed options struct
//! in, a typed result out; the binary only maps flags and prints.

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
