//! Looking inside pruned models and testing differences for significance.
//!
//! Reads what the pipeline stored (masks, model folders, and result tables through
//! [`crate::store`], which alone knows their paths and columns) and produces numbers and report
//! sections of chart data ([`section`], the type the report renders); it never draws, and it
//! imports nothing from the report.
//! * [`masks`]: overlap of pruning masks across calibration languages (exact, on bits);
//! * [`probe`]: hidden states and MLP activity of a (pruned) model on parallel sentences;
//!   [`encoder_probe`]: the same from an encoder-decoder's encoder (mT5, T5);
//! * [`probes`]: language-identity and cross-lingual topic probes, k-means clusters and PCA
//!   pictures of those states (linfa);
//! * [`subspace`]: PCA, language-specific subspace, principal angles, retrieval;
//! * [`neurons`]: language-specific neurons (LAPE), dense vs pruned;
//! * [`pruning_error`]: per-layer output error on each evaluation language;
//! * [`records`] and [`significance`]: paired tests over stored per-document/per-example scores;
//! * [`section`]: what a section is (tables, chart data); [`sections`]: the analyses' sections
//!   and their CSV/JSON exports;
//! * [`study`]: the stored-results analyses of a finished study, for the study runner;
//! * [`workflow`]: the analyses that run models, as library calls (commands and study runner).

pub mod encoder_probe;
mod error;
pub mod masks;
pub mod neurons;
pub mod probe;
pub mod probes;
pub mod pruning_error;
pub mod records;
pub mod section;
pub mod sections;
pub mod significance;
pub mod study;
pub mod subspace;
pub mod workflow;

pub use error::AnalysisError;
