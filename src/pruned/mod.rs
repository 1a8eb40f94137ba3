//! A whole pruned model: produced by calibrating and pruning every layer (`model`), saved and
//! read back as a folder of masks and patched weights (`saved`).
//!
//! `crate::prune` holds the per-layer maths (one file per method, no model or file in sight);
//! this module sits above `crate::calibrate`, which feeds those methods their statistics.

mod model;
mod saved;
pub mod seq2seq;
mod spilled_saliency;

pub use model::{prune_many, prune_many_with, prune_model, LayerFilter, PruneJob, PrunedLayerOutput, PrunedModel};
pub use saved::{
    overrides_from_mask_dir, overrides_from_masks, parse_mask_index, read_mask_dir, read_masks, save_pruned, write_masks, MaskEntry,
    MASK_DIR, MASK_INDEX,
};
