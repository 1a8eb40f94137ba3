//! Post-training pruning of linear layers as pure linear algebra.
//!
//! The model-facing code finds each linear layer, streams its calibration inputs into
//! [`InputStatistics`], calls [`Method::prune`] and applies the resulting [`Mask`] (and, for
//! SparseGPT, the updated weights). This module knows nothing about models or files other than
//! its own mask format; it only does the maths:
//!
//! * [`sparsity`]: what to prune ([`Sparsity`], [`Pattern`], validated into a [`SparsityTarget`]);
//! * [`statistics`]: streaming per-channel norms and Gram matrices of layer inputs (and a
//!   calibration mixture's, as a weighted sum of each language's);
//! * [`output_error`]: a weight change's output error on one language, from its Gram matrix;
//! * [`magnitude`], [`wanda`], [`sparsegpt`]: the per-layer methods (each cites its paper);
//! * [`snip`], [`grasp`]: gradient saliencies (the gradients come from `crate::model::gradient`),
//!   turned into masks per layer or globally by [`saliency`];
//! * `selection` (private): scores to masks under one documented tie rule (lower index first);
//! * [`mask`], [`mask_file`], [`report`]: the bit-packed result, its file format, its summary.
//!
//! Conventions: weights are PyTorch `nn.Linear` weights, row-major `[out][in]` (`y = W x`), so
//! rows are outputs and columns are input channels.

pub mod error;
pub mod grasp;
pub mod magnitude;
pub mod mask;
pub mod mask_file;
pub mod method;
pub mod output_error;
pub mod report;
pub mod saliency;
mod selection;
pub mod snip;
pub mod sparsegpt;
pub mod sparsity;
pub mod statistics;
pub mod wanda;
pub mod weight;

#[cfg(test)]
mod existing_zeros;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod timing;

pub use error::PruneError;
pub use magnitude::{magnitude_mask, MagnitudeScope};
pub use mask::{Mask, NmViolation};
pub use mask_file::{decode_mask, encode_mask, read_mask, write_mask};
pub use method::{Method, PrunedLayer, StatisticsNeed};
pub use output_error::ColumnGram;
pub use report::SparsityReport;
pub use saliency::{saliency_masks, SaliencyScope, ScoredLayer};
pub use sparsegpt::{sparsegpt_prune, DampingUsed, SparseGptConfig, SparseGptResult, MAX_DAMPING_ATTEMPTS};
pub use sparsity::{NmPattern, Pattern, Sparsity, SparsityTarget};
pub use statistics::{GramPrecision, InputStatistics, GRAM_CHUNK_TOKENS};
pub use wanda::{wanda_mask, wanda_scores};
pub use weight::LinearWeight;

#[cfg(test)]
mod fused_rows_tests;
