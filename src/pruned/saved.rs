//! A pruned model on disk: `prune --save` writes a model folder with patched weights plus
//! `masks/` (one bit-packed file per layer, listed in `masks/index.json`) and `pruning.json`;
//! evaluation and the analyses read the masks back and apply them to the dense model.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::PrunedModel;
use crate::model::weights::WeightStore;
use crate::model::{ModelDir, ModelError};
use crate::prune::{Mask, Method, SparsityReport};
use crate::runtime::WeightOverride;

/// What `masks/index.json` lists for each layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaskEntry {
    pub layer: String,
    pub file: String,
    /// The mask is `[out][in]` (PyTorch layout), bit set = weight kept.
    pub out_features: usize,
    pub in_features: usize,
    pub report: SparsityReport,
}

pub const MASK_DIR: &str = "masks";
pub const MASK_INDEX: &str = "index.json";

fn mask_file_name(layer: &str) -> String {
    format!("{}.mask", layer.replace(['/', '\\', ':'], "_"))
}

/// Writes the masks (bit-packed, one file per layer) and their index into `dir/masks/`.
pub fn write_masks(dir: &Path, pruned: &PrunedModel) -> Result<(), ModelError> {
    let masks = dir.join(MASK_DIR);
    std::fs::create_dir_all(&masks).map_err(|e| ModelError::io(&masks, e))?;
    let mut index = Vec::new();
    for l in &pruned.layers {
        let file = mask_file_name(&l.layer.name);
        let mask = l.mask.as_ref().ok_or_else(|| ModelError::Unusable {
            path: masks.join(&file),
            reason: "the mask was released before it was written (a bug: masks are written first)".into(),
        })?;
        crate::prune::write_mask(mask, &masks.join(&file))
            .map_err(|e| ModelError::Unusable { path: masks.join(&file), reason: e.to_string() })?;
        index.push(MaskEntry {
            layer: l.layer.name.clone(),
            file,
            out_features: l.layer.shape[1],
            in_features: l.layer.shape[0],
            report: l.report.clone(),
        });
    }
    let path = masks.join(MASK_INDEX);
    crate::util::write_atomic(&path, serde_json::to_string_pretty(&index).expect("json").as_bytes()).map_err(|e| ModelError::io(&path, e))
}

/// The entries of a mask index's text; `path` names it in errors.
pub fn parse_mask_index(text: &str, path: &Path) -> Result<Vec<MaskEntry>, ModelError> {
    serde_json::from_str(text).map_err(|e| ModelError::Unusable {
        path: path.to_path_buf(),
        reason: format!("not a mask index ({e}); re-create it with `polyprune prune --save`"),
    })
}

/// Reads `masks/index.json` and the masks it lists.
pub fn read_masks(dir: &Path) -> Result<Vec<(MaskEntry, Mask)>, ModelError> {
    let masks = if dir.join(MASK_INDEX).is_file() { dir.to_path_buf() } else { dir.join(MASK_DIR) };
    let path = masks.join(MASK_INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    parse_mask_index(&text, &path)?
        .into_iter()
        .map(|e| {
            let p = masks.join(&e.file);
            let m = crate::prune::read_mask(&p).map_err(|err| ModelError::Unusable { path: p.clone(), reason: err.to_string() })?;
            Ok((e, m))
        })
        .collect()
}

/// Dense weights with saved masks applied: the overrides that evaluate a masked model
/// (exact for Magnitude and Wanda; SparseGPT also moves the kept weights, so use its saved model).
pub fn overrides_from_masks(model: &ModelDir, masks: &[(MaskEntry, Mask)]) -> Result<Vec<WeightOverride>, ModelError> {
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    masks
        .iter()
        .map(|(entry, mask)| {
            let layer = model.card.layers.iter().find(|l| l.name == entry.layer).ok_or_else(|| ModelError::Unusable {
                path: model.dir.clone(),
                reason: format!(
                    "the masks name layer '{}', which this model does not have; use the masks with the model they were made for",
                    entry.layer
                ),
            })?;
            let mut rows = store.read_rows(layer)?;
            mask.apply(&mut rows).map_err(|e| ModelError::Unusable { path: model.dir.clone(), reason: e.to_string() })?;
            Ok(store.override_of(layer, rows))
        })
        .collect()
}

/// The overrides that evaluate `model` with the masks saved in `dir` (a `--save` folder or its
/// `masks/`). Refuses SparseGPT masks: SparseGPT also updates the kept weights, so its masks
/// alone do not reproduce the pruned model; evaluate the saved model folder instead.
pub fn overrides_from_mask_dir(model: &ModelDir, dir: &Path) -> Result<Vec<WeightOverride>, ModelError> {
    overrides_from_masks(model, &read_mask_dir(dir)?)
}

/// The masks saved in `dir` (a `--save` folder or its `masks/`), refused when they come from
/// SparseGPT (see [`overrides_from_mask_dir`]).
pub fn read_mask_dir(dir: &Path) -> Result<Vec<(MaskEntry, Mask)>, ModelError> {
    let record = [dir.join("pruning.json"), dir.join("..").join("pruning.json")].into_iter().find(|p| p.is_file());
    if let Some(path) = record {
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        // A record that cannot be read must not let SparseGPT masks through as if they were
        // Wanda's: the model evaluated would silently differ from the one saved.
        let unreadable = |reason: String| ModelError::Unusable {
            path: path.clone(),
            reason: format!("{reason}; restore the file or re-create the folder with `polyprune prune --save`"),
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| unreadable(format!("not valid JSON ({e})")))?;
        let method = value.get("method").cloned().ok_or_else(|| unreadable("no \"method\" key".into()))?;
        let method: Method = serde_json::from_value(method).map_err(|e| unreadable(format!("\"method\" is not a pruning method ({e})")))?;
        if matches!(method, Method::SparseGpt(_)) {
            return Err(ModelError::Unusable {
                path: dir.to_path_buf(),
                reason: "these masks come from SparseGPT, which also changes the weights it keeps; pass the saved folder as --model instead of --masks".into(),
            });
        }
    }
    if !dir.join(MASK_INDEX).is_file() && !dir.join(MASK_DIR).join(MASK_INDEX).is_file() {
        return Err(ModelError::Unusable {
            path: dir.to_path_buf(),
            reason: format!("no {MASK_INDEX} here or in {MASK_DIR}/; give --masks a folder written by `polyprune prune --save`"),
        });
    }
    read_masks(dir)
}

/// Saves the pruned model as a model folder (graphs, patched weights, tokenizer, card) plus its masks.
pub fn save_pruned(model: &ModelDir, pruned: &PrunedModel, out: &Path, record: &serde_json::Value) -> Result<(), ModelError> {
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    // Built beside `out` and swapped in whole, so a killed save never leaves a folder whose
    // masks or weights are only partly written (and `--masks`/`--model` never read one).
    let staged = crate::util::StagedDir::begin(out).map_err(|e| ModelError::io(out, e))?;
    // The folder's files are copied, then each pruned weight written over its bytes, one at a
    // time (spilled weights are read back one by one: the model is never whole in memory).
    store.save_with_overrides(staged.path(), &pruned.overrides)?;
    write_masks(staged.path(), pruned)?;
    let path = staged.path().join("pruning.json");
    crate::util::write_atomic(&path, serde_json::to_string_pretty(record).expect("json").as_bytes())
        .map_err(|e| ModelError::io(&path, e))?;
    staged.commit().map_err(|e| ModelError::io(out, e))
}
