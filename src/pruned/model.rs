//! Pruning every layer of a model: calibration (what each layer sees) feeds the per-layer
//! maths of `crate::prune`, and the result is a set of replacement weights for the runtime (no
//! file is rewritten), bit-packed masks, and an exact sparsity report.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibrate::{
    capture_and_prune, collect_gradients, spill_gradients, CalibrationError, CalibrationSet, CaptureOptions, CaptureTimings,
    GradientSaliency, LayerPruner,
};
use crate::model::gradient::rows_of;
use crate::model::weights::{stored_layout, WeightStore};
use crate::model::{LinearLayer, ModelDir};
use crate::prune::grasp::grasp_keep_scores;
use crate::prune::snip::snip_keep_scores;
use crate::prune::{
    saliency_masks, InputStatistics, LinearWeight, Mask, Method, SaliencyScope, ScoredLayer, SparsityReport, SparsityTarget, StatisticsNeed,
};
use crate::runtime::spill::SpillDir;

use super::spilled_saliency::prune_by_spilled_saliency;
use crate::runtime::{FloatType, WeightOverride};

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
    /// `None` once [`PrunedModel::release_masks`] freed it (after it was written).
    pub mask: Option<Mask>,
    pub report: SparsityReport,
}

/// The result of pruning: what to hand the runtime, and what to keep.
pub struct PrunedModel {
    pub overrides: Vec<WeightOverride>,
    pub layers: Vec<PrunedLayerOutput>,
    pub timings: CaptureTimings,
}

impl PrunedModel {
    /// Zero weights / all weights of the pruned layers after pruning, exact to the element:
    /// the sparsity the pruned model really has.
    pub fn overall_sparsity(&self) -> f64 {
        let zeros: u64 = self.layers.iter().map(|l| l.report.zero_count()).sum();
        zeros as f64 / self.total_weights().max(1) as f64
    }

    /// Weights the masks prune / all weights of the pruned layers. Equal to
    /// [`PrunedModel::overall_sparsity`] unless some row or N:M group already held more zeros
    /// than its share (the methods prune existing zeros first).
    pub fn mask_sparsity(&self) -> f64 {
        let pruned: u64 = self.layers.iter().map(|l| l.report.pruned).sum();
        pruned as f64 / self.total_weights().max(1) as f64
    }

    /// Frees every layer's mask, keeping its report: a run whose weights spill evaluates the
    /// pruned model after writing the masks, and Llama-3 8B's masks alone are 0.81 GiB of a
    /// 6 GiB budget the evaluation plans without them.
    pub fn release_masks(&mut self) {
        for l in &mut self.layers {
            l.mask = None;
        }
    }

    fn total_weights(&self) -> u64 {
        self.layers.iter().map(|l| l.report.total).sum()
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
    let report = SparsityReport::new(&layer.name, target, &result.mask, &new).with_damping(result.damping);
    Ok((store.override_of(layer, new), PrunedLayerOutput { layer: layer.clone(), mask: Some(result.mask), report }))
}

/// The override that puts `[out][in]` rows into the graph in place of the layer's weights,
/// in the type the folder stores them in.
pub(super) fn weight_override(layer: &LinearLayer, rows: Vec<f32>, stored: FloatType) -> WeightOverride {
    let (shape, data) = stored_layout(layer, rows);
    WeightOverride::new(layer.name.clone(), shape, data, stored)
}

/// A saliency method's result for one layer: `weight` with `mask` applied, as the override the
/// graph takes and the output the run keeps.
pub(super) fn masked_layer(
    layer: LinearLayer,
    weight: LinearWeight,
    mask: Mask,
    target: SparsityTarget,
    stored: FloatType,
) -> Result<(WeightOverride, PrunedLayerOutput), CalibrationError> {
    let mut data = weight.into_data();
    mask.apply(&mut data)?;
    let report = SparsityReport::new(&layer.name, target, &mask, &data);
    Ok((weight_override(&layer, data, stored), PrunedLayerOutput { layer, mask: Some(mask), report }))
}

/// A saliency prune's timings: its gradient passes, and the scoring and masking since `scored_from`.
pub(super) fn saliency_timings(gradient_s: f64, hessian_gradient_s: f64, scored_from: std::time::Instant) -> CaptureTimings {
    CaptureTimings { gradient_s, hessian_gradient_s, solve_s: scored_from.elapsed().as_secs_f64(), ..Default::default() }
}

/// Whether a method scores with the model's gradients (SNIP, GraSP).
fn uses_gradients(method: &Method) -> bool {
    matches!(method.statistics_need(), StatisticsNeed::Gradient | StatisticsNeed::HessianGradient)
}

/// One selected layer's weights `[out][in]` and its keep-score (lowest pruned) under `method`.
fn saliency_of(saliency: &GradientSaliency, layer: &LinearLayer, method: &Method) -> Result<(LinearWeight, ScoredLayer), CalibrationError> {
    let missing = || CalibrationError::Invalid(format!("the gradient pass has no {}; the model card and its spec disagree", layer.name));
    let [d_in, d_out] = layer.shape;
    let index = saliency.weights.spec.linear_layers_of_block(layer.block).iter().position(|l| l.name == layer.name).ok_or_else(missing)?;
    let weight = LinearWeight::new(&layer.name, d_out, d_in, rows_of(&saliency.weights.blocks[layer.block].linear[index]))?;
    let direction = match method {
        Method::Grasp { .. } => saliency.hessian_gradient.as_ref().and_then(|h| h.of(layer)).ok_or_else(missing)?,
        _ => saliency.gradient.of(layer).ok_or_else(missing)?,
    };
    score_layer(layer, weight, &rows_of(direction), method)
}

/// A layer's keep-scores from its weight and, as `[out][in]` rows, its gradient (SNIP) or its
/// Hessian-gradient product (GraSP): the one scoring step of the resident and spilled paths.
pub(super) fn score_layer(
    layer: &LinearLayer,
    weight: LinearWeight,
    direction: &[f32],
    method: &Method,
) -> Result<(LinearWeight, ScoredLayer), CalibrationError> {
    let [d_in, d_out] = layer.shape;
    let scores = match method {
        Method::Grasp { .. } => grasp_keep_scores(&layer.name, &weight, direction)?,
        _ => snip_keep_scores(&layer.name, &weight, direction)?,
    };
    Ok((weight, ScoredLayer { name: layer.name.clone(), rows: d_out, cols: d_in, scores }))
}

/// SNIP or GraSP on every selected layer from one gradient pass. Layer scope scores and masks
/// one matrix at a time; global scope holds every score at once (8 bytes per weight).
fn prune_by_saliency(
    model: &ModelDir,
    saliency: &GradientSaliency,
    job: &PruneJob,
    filter: &LayerFilter,
) -> Result<PrunedModel, CalibrationError> {
    let t0 = std::time::Instant::now();
    let layers: Vec<&LinearLayer> = model.card.layers.iter().filter(|l| filter.selects(l)).collect();
    let scope = job.method.saliency_scope().unwrap_or_default();
    let mut results: Vec<(LinearLayer, LinearWeight, Mask)> = Vec::with_capacity(layers.len());
    match scope {
        SaliencyScope::Layer => {
            for l in &layers {
                let (weight, scored) = saliency_of(saliency, l, &job.method)?;
                let mask = saliency_masks(std::slice::from_ref(&scored), job.target, scope)?.remove(0);
                results.push(((*l).clone(), weight, mask));
            }
        }
        SaliencyScope::Global => {
            let (weights, scored): (Vec<LinearWeight>, Vec<ScoredLayer>) =
                layers.iter().map(|l| saliency_of(saliency, l, &job.method)).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
            let masks = saliency_masks(&scored, job.target, scope)?;
            for ((l, w), m) in layers.iter().zip(weights).zip(masks) {
                results.push(((*l).clone(), w, m));
            }
        }
    }
    let mut overrides = Vec::with_capacity(results.len());
    let mut outputs = Vec::with_capacity(results.len());
    for (layer, weight, mask) in results {
        let (o, out) = masked_layer(layer, weight, mask, job.target, model.card.matrix_type())?;
        overrides.push(o);
        outputs.push(out);
    }
    let timings = saliency_timings(saliency.gradient_s, saliency.hessian_gradient_s, t0);
    Ok(PrunedModel { overrides, layers: outputs, timings })
}

/// SNIP and GraSP jobs (in order) from one gradient pass, plus `H g` when a GraSP job is among
/// them. With `spill` (a folder and each job's file prefix) nothing model-sized stays in memory:
/// the gradients go to the folder block by block, and so do each job's pruned weights.
fn prune_gradient_jobs(
    model: &ModelDir,
    jobs: &[&PruneJob],
    filter: &LayerFilter,
    set: Option<&CalibrationSet>,
    spill: Option<(&SpillDir, Vec<String>)>,
    on_stage: &mut dyn FnMut(usize, &str),
) -> Result<Vec<PrunedModel>, CalibrationError> {
    let Some(set) = set else {
        let name = jobs.first().map(|j| j.method.name()).unwrap_or("snip");
        return Err(CalibrationError::Invalid(format!("{name} needs calibration data: give --calib <languages>")));
    };
    let hessian = jobs.iter().any(|j| j.method.statistics_need() == StatisticsNeed::HessianGradient);
    if let Some((dir, prefixes)) = spill {
        let saliency = spill_gradients(model, set, hessian, dir, on_stage)?;
        return jobs
            .iter()
            .zip(&prefixes)
            .map(|(job, prefix)| prune_by_spilled_saliency(model, &saliency, job, filter, dir, prefix))
            .collect();
    }
    let saliency = collect_gradients(model, set, hessian, on_stage)?;
    jobs.iter().map(|job| prune_by_saliency(model, &saliency, job, filter)).collect()
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
    /// Where each block's replacement weights go when it is done (with this job's file
    /// prefix); `None` keeps them in memory.
    spill: Option<(&'a SpillDir, String)>,
    /// Whether a spilling run frees each input's statistics after its last layer: only the
    /// last (or only) job sharing them may.
    release_statistics: bool,
}

impl LayerPruner for MethodPruner<'_> {
    fn prune_block(
        &mut self,
        block: usize,
        layers: &[LinearLayer],
        statistics: &mut BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        let chosen: Vec<&LinearLayer> = layers.iter().filter(|l| self.filter.selects(l)).collect();
        let one = |l: &&LinearLayer, statistics: &BTreeMap<String, InputStatistics>| {
            prune_layer(self.store, l, self.method, self.target, statistics.get(&l.input))
        };
        // Within a budget (spilling), one layer at a time, as the memory plan counts: SparseGPT's
        // factor for a 14336-wide input takes 14336^2 f64 = 1.6 GB beside its Gram matrix, and
        // two of a 70B block's 28672 x 8192 layers read and scored at once peaked 1.7 GiB over
        // the plan. Each input's statistics go as soon as its last layer is solved, so an 8B
        // block's down projection is solved without the other three Grams. Each layer's work
        // still runs on every core (the row selection and the factorisation are parallel); the
        // results are the same either way.
        let results: Vec<_> = if self.spill.is_some() {
            let mut results = Vec::with_capacity(chosen.len());
            for (i, l) in chosen.iter().enumerate() {
                results.push(one(l, statistics)?);
                let used_later = chosen[i + 1..].iter().any(|later| later.input == l.input);
                if self.release_statistics && !used_later {
                    statistics.remove(&l.input);
                }
            }
            results
        } else {
            chosen.par_iter().map(|l| one(l, statistics)).collect::<Result<_, _>>()?
        };
        let mut overrides = Vec::new();
        for (o, out) in results {
            overrides.push(o);
            self.outputs.push(out);
        }
        match &self.spill {
            Some((dir, prefix)) => Ok(dir.spill(&format!("{prefix}-block-{block:03}"), overrides)?),
            None => Ok(overrides),
        }
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
    prune_model_with(model, method, target, filter, set, capture, None, on_block)
}

/// As [`prune_model`]; with `spill`, each block's replacement weights are written there as
/// the block is done (under `prefix`) and read back from it when used.
#[allow(clippy::too_many_arguments)]
fn prune_model_with(
    model: &ModelDir,
    method: &Method,
    target: SparsityTarget,
    filter: &LayerFilter,
    set: Option<&CalibrationSet>,
    capture: &CaptureOptions,
    spill: Option<(&SpillDir, String)>,
    mut on_block: impl FnMut(usize, &str),
) -> Result<PrunedModel, CalibrationError> {
    if uses_gradients(method) {
        let job = PruneJob { method: *method, target };
        let spill = spill.map(|(dir, prefix)| (dir, vec![prefix]));
        return prune_gradient_jobs(model, &[&job], filter, set, spill, &mut on_block).map(|mut v| v.remove(0));
    }
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let mut pruner = MethodPruner { store: &store, method, target, filter, outputs: Vec::new(), spill, release_statistics: true };
    let need = method.statistics_need();
    let (overrides, timings) = match (need, set) {
        (StatisticsNeed::None, _) => {
            let t0 = std::time::Instant::now();
            // Block by block, in the card's order, so that a spill folder takes each block's
            // weights before the next is read.
            let mut overrides = Vec::new();
            for (k, layers) in layers_by_block(&model.card.layers) {
                overrides.extend(pruner.prune_block(k, &layers, &mut BTreeMap::new())?);
            }
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

/// The layers grouped by block, blocks in order of first appearance, layers in card order.
pub(super) fn layers_by_block(layers: &[LinearLayer]) -> Vec<(usize, Vec<LinearLayer>)> {
    let mut out: Vec<(usize, Vec<LinearLayer>)> = Vec::new();
    for l in layers {
        match out.iter_mut().find(|(k, _)| *k == l.block) {
            Some((_, v)) => v.push(l.clone()),
            None => out.push((l.block, vec![l.clone()])),
        }
    }
    out
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
        statistics: &mut BTreeMap<String, InputStatistics>,
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
    on_progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<PrunedModel>, CalibrationError> {
    prune_many_with(model, jobs, filter, set, capture, None, on_progress)
}

/// As [`prune_many`]; with `spill`, every job's replacement weights leave memory block by
/// block into that folder (see [`crate::runtime::spill`]): the results are the same, bit for
/// bit (`tests/streamed_prune.rs`), and at most one block's replacements are in memory.
pub fn prune_many_with(
    model: &ModelDir,
    jobs: &[PruneJob],
    filter: &LayerFilter,
    set: Option<&CalibrationSet>,
    capture: &CaptureOptions,
    spill: Option<&SpillDir>,
    mut on_progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<PrunedModel>, CalibrationError> {
    let spill_of = |i: usize| spill.map(|dir| (dir, format!("job{i}-{}", jobs[i].method.name())));
    let mut results: Vec<Option<PrunedModel>> = (0..jobs.len()).map(|_| None).collect();
    // SNIP and GraSP share one gradient pass (and GraSP's H g) on the dense model.
    let gradient_jobs: Vec<usize> = (0..jobs.len()).filter(|&i| uses_gradients(&jobs[i].method)).collect();
    if let Some(&first) = gradient_jobs.first() {
        let chosen: Vec<&PruneJob> = gradient_jobs.iter().map(|&i| &jobs[i]).collect();
        let spill = spill.map(|dir| (dir, gradient_jobs.iter().map(|&i| spill_of(i).expect("a spill folder").1).collect()));
        let pruned = prune_gradient_jobs(model, &chosen, filter, set, spill, &mut |k, stage| on_progress(first, k, stage))?;
        for (&i, p) in gradient_jobs.iter().zip(pruned) {
            results[i] = Some(p);
        }
    }
    let calibrated: Vec<usize> =
        (0..jobs.len()).filter(|&i| !uses_gradients(&jobs[i].method) && jobs[i].method.statistics_need() != StatisticsNeed::None).collect();
    let share = capture.mode == crate::calibrate::CaptureMode::OneShot && calibrated.len() > 1;
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
                .map(|&i| MethodPruner {
                    store: &store,
                    method: &jobs[i].method,
                    target: jobs[i].target,
                    filter,
                    outputs: Vec::new(),
                    spill: spill_of(i),
                    release_statistics: Some(&i) == calibrated.last(),
                })
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
            let spill = spill_of(i);
            results[i] =
                Some(prune_model_with(model, &job.method, job.target, filter, set, capture, spill, |k, stage| on_progress(i, k, stage))?);
        }
    }
    Ok(results.into_iter().map(|r| r.expect("every job pruned")).collect())
}
