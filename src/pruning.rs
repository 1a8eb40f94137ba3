//! Pruning a whole model: the glue between calibration (what the layers see), the pruning
//! maths (`prune`), and the model's weights. Produces replacement weights for the runtime (no
//! file rewritten), bit-packed masks, and an exact sparsity report; can save all of it.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibrate::{capture_and_prune, CalibrationError, CalibrationSet, CaptureOptions, CaptureTimings, LayerPruner};
use crate::model::weights::{stored_layout, WeightStore};
use crate::model::{LinearLayer, ModelDir, ModelError};
use crate::prune::{InputStatistics, LinearWeight, Mask, Method, SparsityReport, SparsityTarget, StatisticsNeed};
use crate::runtime::WeightOverride;

/// Which layers to prune: all prunable layers, narrowed by name/role filters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayerFilter {
    /// Keep only layers whose name contains one of these, or whose role is one of them.
    pub include: Vec<String>,
    /// Then drop layers whose name contains one of these, or whose role is one of them.
    pub exclude: Vec<String>,
}

impl LayerFilter {
    fn hits(patterns: &[String], l: &LinearLayer) -> bool {
        patterns.iter().any(|p| l.name.contains(p.as_str()) || l.role.as_str() == p)
    }
    pub fn selects(&self, l: &LinearLayer) -> bool {
        (self.include.is_empty() || Self::hits(&self.include, l)) && !Self::hits(&self.exclude, l)
    }
}

pub struct PrunedLayerOutput {
    pub layer: LinearLayer,
    pub mask: Mask,
    pub report: SparsityReport,
}

/// The result of pruning: what to hand the runtime, and what to keep.
pub struct PrunedModel {
    pub overrides: Vec<WeightOverride>,
    pub layers: Vec<PrunedLayerOutput>,
    pub timings: CaptureTimings,
}

impl PrunedModel {
    /// Pruned weights / all weights of the pruned layers, exact to the element.
    pub fn overall_sparsity(&self) -> f64 {
        let pruned: u64 = self.layers.iter().map(|l| l.report.pruned).sum();
        let total: u64 = self.layers.iter().map(|l| l.report.total).sum();
        pruned as f64 / total.max(1) as f64
    }
}

/// One layer: read, prune, and lay the result out as the graph stores it.
fn prune_layer(
    store: &WeightStore,
    layer: &LinearLayer,
    method: &Method,
    target: SparsityTarget,
    stats: Option<&InputStatistics>,
) -> Result<(WeightOverride, PrunedLayerOutput), CalibrationError> {
    let [d_in, d_out] = layer.shape;
    let weight = LinearWeight::new(&layer.name, d_out, d_in, store.read_rows(layer)?)?;
    let result = method.prune(&layer.name, &weight, stats, target)?;
    let mut new = match result.new_weights {
        Some(w) => w,
        None => weight.into_data(),
    };
    if result_needs_mask(method) {
        result.mask.apply(&mut new)?;
    }
    let report = SparsityReport::new(&layer.name, target, &result.mask);
    Ok((weight_override(layer, new), PrunedLayerOutput { layer: layer.clone(), mask: result.mask, report }))
}

/// The override that puts `[out][in]` rows into the graph in place of the layer's weights.
fn weight_override(layer: &LinearLayer, rows: Vec<f32>) -> WeightOverride {
    let (shape, data) = stored_layout(layer, rows);
    WeightOverride { name: layer.name.clone(), shape, data: std::sync::Arc::new(data) }
}

/// Magnitude and Wanda return a mask only; SparseGPT returns weights with zeros already in place.
fn result_needs_mask(method: &Method) -> bool {
    !matches!(method, Method::SparseGpt(_))
}

struct MethodPruner<'a> {
    store: &'a WeightStore,
    method: &'a Method,
    target: SparsityTarget,
    filter: &'a LayerFilter,
    outputs: Vec<PrunedLayerOutput>,
}

impl LayerPruner for MethodPruner<'_> {
    fn prune_block(
        &mut self,
        _block: usize,
        layers: &[LinearLayer],
        statistics: &BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        let chosen: Vec<&LinearLayer> = layers.iter().filter(|l| self.filter.selects(l)).collect();
        let results: Vec<_> = chosen
            .par_iter()
            .map(|l| prune_layer(self.store, l, self.method, self.target, statistics.get(&l.input)))
            .collect::<Result<_, _>>()?;
        let mut overrides = Vec::new();
        for (o, out) in results {
            overrides.push(o);
            self.outputs.push(out);
        }
        Ok(overrides)
    }
}

/// Prunes `model`: Magnitude needs no calibration; Wanda and SparseGPT calibrate on `set`.
pub fn prune_model(
    model: &ModelDir,
    method: &Method,
    target: SparsityTarget,
    filter: &LayerFilter,
    set: Option<&CalibrationSet>,
    capture: &CaptureOptions,
    on_block: impl FnMut(usize, &str),
) -> Result<PrunedModel, CalibrationError> {
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let mut pruner = MethodPruner { store: &store, method, target, filter, outputs: Vec::new() };
    let need = method.statistics_need();
    let (overrides, timings) = match (need, set) {
        (StatisticsNeed::None, _) => {
            let t0 = std::time::Instant::now();
            let layers = model.card.layers.clone();
            let overrides = pruner.prune_block(0, &layers, &BTreeMap::new())?;
            (overrides, CaptureTimings { solve_s: t0.elapsed().as_secs_f64(), ..Default::default() })
        }
        (_, None) => return Err(CalibrationError::Invalid(format!("{} needs calibration data: give --calib <languages>", method.name()))),
        (need, Some(set)) => {
            let opts = CaptureOptions { gram: need == StatisticsNeed::Gram, ..capture.clone() };
            capture_and_prune(model, set, &opts, &mut pruner, on_block)?
        }
    };
    Ok(PrunedModel { overrides, layers: pruner.outputs, timings })
}

/// One pruning of a model: a method at a sparsity target.
#[derive(Clone, Debug)]
pub struct PruneJob {
    pub method: Method,
    pub target: SparsityTarget,
}

/// Several methods/targets fed by one calibration pass where the statistics allow it: the
/// one-shot mode's statistics come from the dense model, so they are captured once and every
/// job is solved from them. In sequential mode block k's statistics depend on how blocks
/// 0..k-1 were pruned, i.e. on the job, so each job gets its own pass. Magnitude needs none.
struct SharedStatisticsPruner<'a> {
    jobs: Vec<MethodPruner<'a>>,
    overrides: Vec<Vec<WeightOverride>>,
    solve_s: Vec<f64>,
}

impl LayerPruner for SharedStatisticsPruner<'_> {
    fn prune_block(
        &mut self,
        block: usize,
        layers: &[LinearLayer],
        statistics: &BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        for (i, job) in self.jobs.iter_mut().enumerate() {
            let t0 = std::time::Instant::now();
            let o = job.prune_block(block, layers, statistics)?;
            self.overrides[i].extend(o);
            self.solve_s[i] += t0.elapsed().as_secs_f64();
        }
        // One-shot capture never feeds pruned weights forward, so nothing is returned.
        Ok(Vec::new())
    }
}

/// Prunes `model` once per job, sharing the calibration statistics between jobs wherever the
/// capture mode allows (see [`SharedStatisticsPruner`]). Results come back in job order.
/// `on_progress(job, block, stage)`; a shared pass reports job 0.
pub fn prune_many(
    model: &ModelDir,
    jobs: &[PruneJob],
    filter: &LayerFilter,
    set: Option<&CalibrationSet>,
    capture: &CaptureOptions,
    mut on_progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<PrunedModel>, CalibrationError> {
    let calibrated: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].method.statistics_need() != StatisticsNeed::None).collect();
    let share = capture.mode == crate::calibrate::CaptureMode::OneShot && calibrated.len() > 1;
    let mut results: Vec<Option<PrunedModel>> = (0..jobs.len()).map(|_| None).collect();
    if share {
        let Some(set) = set else {
            return Err(CalibrationError::Invalid(format!(
                "{} needs calibration data: give --calib <languages>",
                jobs[calibrated[0]].method.name()
            )));
        };
        let store = WeightStore::open(&model.dir, &model.card.graph)?;
        let gram = calibrated.iter().any(|&i| jobs[i].method.statistics_need() == StatisticsNeed::Gram);
        let mut shared = SharedStatisticsPruner {
            jobs: calibrated
                .iter()
                .map(|&i| MethodPruner { store: &store, method: &jobs[i].method, target: jobs[i].target, filter, outputs: Vec::new() })
                .collect(),
            overrides: vec![Vec::new(); calibrated.len()],
            solve_s: vec![0.0; calibrated.len()],
        };
        let opts = CaptureOptions { gram, ..capture.clone() };
        let (_, timings) = capture_and_prune(model, set, &opts, &mut shared, |k, stage| on_progress(0, k, stage))?;
        let SharedStatisticsPruner { jobs: pruners, overrides, solve_s } = shared;
        for (((&i, pruner), overrides), solve_s) in calibrated.iter().zip(pruners).zip(overrides).zip(solve_s) {
            let timings = CaptureTimings { solve_s, ..timings };
            results[i] = Some(PrunedModel { overrides, layers: pruner.outputs, timings });
        }
    }
    for (i, job) in jobs.iter().enumerate() {
        if results[i].is_none() {
            results[i] = Some(prune_model(model, &job.method, job.target, filter, set, capture, |k, stage| on_progress(i, k, stage))?);
        }
    }
    Ok(results.into_iter().map(|r| r.expect("every job pruned")).collect())
}

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
        crate::prune::write_mask(&l.mask, &masks.join(&file))
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

/// Reads `masks/index.json` and the masks it lists.
pub fn read_masks(dir: &Path) -> Result<Vec<(MaskEntry, Mask)>, ModelError> {
    let masks = if dir.join(MASK_INDEX).is_file() { dir.to_path_buf() } else { dir.join(MASK_DIR) };
    let path = masks.join(MASK_INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let index: Vec<MaskEntry> = serde_json::from_str(&text).map_err(|e| ModelError::Unusable {
        path: path.clone(),
        reason: format!("not a mask index ({e}); re-create it with `polyprune prune --save`"),
    })?;
    index
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
            Ok(weight_override(layer, rows))
        })
        .collect()
}

/// The overrides that evaluate `model` with the masks saved in `dir` (a `--save` folder or its
/// `masks/`). Refuses SparseGPT masks: SparseGPT also updates the kept weights, so its masks
/// alone do not reproduce the pruned model; evaluate the saved model folder instead.
pub fn overrides_from_mask_dir(model: &ModelDir, dir: &Path) -> Result<Vec<WeightOverride>, ModelError> {
    let record = [dir.join("pruning.json"), dir.join("..").join("pruning.json")].into_iter().find(|p| p.is_file());
    if let Some(path) = record {
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let method = value.get("method").cloned().and_then(|m| serde_json::from_value::<Method>(m).ok());
        if matches!(method, Some(Method::SparseGpt(_))) {
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
    let masks = read_masks(dir)?;
    overrides_from_masks(model, &masks)
}

/// Saves the pruned model as a model folder (graphs, patched weights, tokenizer, card) plus its masks.
pub fn save_pruned(model: &ModelDir, pruned: &PrunedModel, out: &Path, record: &serde_json::Value) -> Result<(), ModelError> {
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let replaced: Vec<(String, &[f32])> = pruned.overrides.iter().map(|o| (o.name.clone(), o.data.as_slice())).collect();
    store.save_with(out, &replaced)?;
    write_masks(out, pruned)?;
    let path = out.join("pruning.json");
    crate::util::write_atomic(&path, serde_json::to_string_pretty(record).expect("json").as_bytes()).map_err(|e| ModelError::io(&path, e))
}
