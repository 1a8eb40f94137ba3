//! Calibrating and pruning both stacks of an encoder-decoder.
//!
//! Calibration text goes into the encoder as input and into the decoder as its target (the
//! labels; the decoder reads them shifted right behind the start token), so every layer of
//! both stacks sees the text once. The alternative, T5's own span-corruption objective (noised
//! input, sentinel-delimited spans as target), is not implemented here.
//!
//! Sequential mode prunes the encoder's blocks in order, then the decoder's: each block's
//! statistics come from a pass of the model whose earlier blocks are already pruned, so the
//! decoder's cross-attention keys and values are calibrated on the pruned encoder's output.
//! Each block costs one pass over the calibration set through the whole model (the graphs are
//! reloaded with the pruned weights so far), which is quadratic in depth but exact; one-shot
//! mode collects every statistic from the dense model in one pass. The per-layer maths is
//! [`crate::prune::Method::prune`], unchanged from the decoder-only models'.
//!
//! SNIP and GraSP score the dense model once, whatever the mode, from the reverse pass of
//! [`crate::model::gradient::seq2seq`]: the gradient (and GraSP's Hessian-gradient product) of
//! the decoder's mean label loss over the calibration set, each sequence both the encoder's
//! input and the decoder's labels, with respect to every prunable layer of both stacks.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::model::{LayerFilter, PrunedLayerOutput, PrunedModel};
use super::saved::{read_mask_dir, write_masks};
use crate::calibrate::CaptureTimings;
use crate::eval::seq2seq::{Seq2SeqError, Seq2SeqScorer};
use crate::model::gradient::rows_of;
use crate::model::gradient::seq2seq::{Seq2SeqGradients, Seq2SeqWeights, SEQ2SEQ_GRASP_DELTA};
use crate::model::import::transpose;
use crate::model::seq2seq::{Seq2SeqFolder, Seq2SeqLayer, Seq2SeqSpec, Stack, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};
use crate::model::weights::WeightStore;
use crate::model::ModelError;
use crate::prune::grasp::grasp_keep_scores;
use crate::prune::snip::snip_keep_scores;
use crate::prune::{
    saliency_masks, InputStatistics, LinearWeight, Mask, Method, PruneError, SaliencyScope, ScoredLayer, SparsityReport, SparsityTarget,
    StatisticsNeed,
};
use crate::runtime::{RuntimeOptions, WeightOverride};

#[derive(Debug, thiserror::Error)]
pub enum Seq2SeqPruneError {
    #[error(transparent)]
    Run(#[from] Seq2SeqError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error("{method} needs calibration text; give at least one calibration sequence")]
    NoCalibration { method: &'static str },
}

pub struct Seq2SeqPruneOptions {
    pub method: Method,
    pub target: SparsityTarget,
    /// Calibrate each block on the outputs of the already-pruned blocks before it.
    pub sequential: bool,
}

/// One pruned layer.
#[derive(Clone, Debug)]
pub struct PrunedSeq2SeqLayer {
    pub layer: Seq2SeqLayer,
    pub pruned: usize,
    pub total: usize,
    /// `[out][in]`, bit set = kept, as the decoder-only masks.
    pub mask: Mask,
    pub report: SparsityReport,
}

/// The time one block cost: its calibration pass (sequential mode; the one-shot pass is
/// counted once, in `calibration_seconds`) and the per-layer solves. For SNIP and GraSP,
/// `calibration` is the block's share of the gradient passes (its forward, then its
/// recomputed forward and backward; GraSP's three passes summed), and `solve` its scoring and
/// masking.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockSeconds {
    pub stack: Stack,
    pub block: usize,
    pub calibration: f64,
    pub solve: f64,
}

/// What pruning produced: the pruned weights (`[in, out]`, ready to override the graphs'),
/// per-layer counts and masks, and where the time went.
pub struct PrunedSeq2Seq {
    pub layers: Vec<PrunedSeq2SeqLayer>,
    pub overrides: Vec<WeightOverride>,
    /// Seconds of calibration passes: per stack (sequential), `one-shot`, or SNIP/GraSP's
    /// `gradient` and `hessian_gradient` passes (each whole, embedding and head included).
    pub calibration_seconds: BTreeMap<&'static str, f64>,
    pub blocks: Vec<BlockSeconds>,
}

/// Prunes every linear layer of both stacks of `folder` with `opts`, calibrating on
/// `calibration` (token ids; each is the encoder's input and the decoder's labels).
pub fn prune_seq2seq(
    folder: &Seq2SeqFolder,
    calibration: &[Vec<u32>],
    opts: &Seq2SeqPruneOptions,
    runtime: &RuntimeOptions,
) -> Result<PrunedSeq2Seq, Seq2SeqPruneError> {
    prune_seq2seq_selected(folder, calibration, opts, &LayerFilter::default(), runtime)
}

/// As [`prune_seq2seq`], pruning only the layers `filter` selects (matched on the names and
/// roles of [`Seq2SeqLayer::as_linear`]: `enc.blk.0.`, `dec.blk.3.cross`, `cross_q`); the others
/// keep their dense weights, also in the passes that calibrate later blocks.
pub fn prune_seq2seq_selected(
    folder: &Seq2SeqFolder,
    calibration: &[Vec<u32>],
    opts: &Seq2SeqPruneOptions,
    filter: &LayerFilter,
    runtime: &RuntimeOptions,
) -> Result<PrunedSeq2Seq, Seq2SeqPruneError> {
    let need = opts.method.statistics_need();
    if need != StatisticsNeed::None && calibration.iter().all(Vec::is_empty) {
        return Err(Seq2SeqPruneError::NoCalibration { method: opts.method.name() });
    }
    if matches!(need, StatisticsNeed::Gradient | StatisticsNeed::HessianGradient) {
        return prune_by_gradients(folder, calibration, opts, filter);
    }
    let spec = &folder.card.spec;
    // Each layer's weights are read from the graph that holds them: the cross-attention keys
    // and values live in the cross graph, which reads the encoder's output.
    let stores = [
        WeightStore::open(&folder.dir, ENCODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, DECODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, CROSS_GRAPH_FILE)?,
    ];
    let mut result = PrunedSeq2Seq { layers: Vec::new(), overrides: Vec::new(), calibration_seconds: BTreeMap::new(), blocks: Vec::new() };
    let mut statistics: BTreeMap<String, InputStatistics> = BTreeMap::new();
    for stack in [Stack::Encoder, Stack::Decoder] {
        for block in 0..spec.blocks(stack) {
            let layers: Vec<Seq2SeqLayer> =
                spec.layers_of_block(stack, block).into_iter().filter(|l| filter.selects(&l.as_linear(spec.encoder_blocks))).collect();
            if layers.is_empty() {
                continue;
            }
            let fresh = opts.sequential || statistics.is_empty();
            let mut seconds = BlockSeconds { stack, block, calibration: 0.0, solve: 0.0 };
            if need != StatisticsNeed::None && fresh {
                let scope = if opts.sequential { layers.clone() } else { spec.layers() };
                let started = Instant::now();
                statistics = collect(folder, calibration, &scope, &result.overrides, need == StatisticsNeed::Gram, runtime)?;
                let key = if opts.sequential { stack_name(stack) } else { "one-shot" };
                let elapsed = started.elapsed().as_secs_f64();
                *result.calibration_seconds.entry(key).or_default() += elapsed;
                if opts.sequential {
                    seconds.calibration = elapsed;
                }
            }
            let solving = Instant::now();
            for layer in layers {
                let store = match (layer.stack, layer.input.as_str()) {
                    (Stack::Encoder, _) => &stores[0],
                    (Stack::Decoder, crate::eval::seq2seq::ENCODER_HIDDEN) => &stores[2],
                    (Stack::Decoder, _) => &stores[1],
                };
                let [d_in, d_out] = layer.shape;
                let rows = transpose(&store.read(&layer.name)?, d_in, d_out);
                let weight = LinearWeight::new(&layer.name, d_out, d_in, rows)?;
                let pruned = opts.method.prune(&layer.name, &weight, statistics.get(&layer.input), opts.target)?;
                let mut rows = pruned.new_weights.unwrap_or_else(|| weight.into_data());
                pruned.mask.apply(&mut rows)?;
                let report = SparsityReport::new(&layer.name, opts.target, &pruned.mask, &rows).with_damping(pruned.damping);
                let stored = transpose(&rows, d_out, d_in);
                result.layers.push(PrunedSeq2SeqLayer {
                    pruned: pruned.mask.count_pruned(),
                    total: d_in * d_out,
                    layer: layer.clone(),
                    mask: pruned.mask,
                    report,
                });
                result.overrides.push(WeightOverride::new(layer.name.clone(), vec![d_in, d_out], stored, store.stored_type(&layer.name)));
            }
            seconds.solve = solving.elapsed().as_secs_f64();
            result.blocks.push(seconds);
        }
    }
    Ok(result)
}

/// SNIP or GraSP on every layer of both stacks from one gradient pass of the dense model (two
/// more for GraSP's `H g`): each layer scored by [`snip_keep_scores`] / [`grasp_keep_scores`]
/// and masked per layer or over all layers at once (the method's scope).
fn prune_by_gradients(
    folder: &Seq2SeqFolder,
    calibration: &[Vec<u32>],
    opts: &Seq2SeqPruneOptions,
    filter: &LayerFilter,
) -> Result<PrunedSeq2Seq, Seq2SeqPruneError> {
    let spec = &folder.card.spec;
    let weights = Seq2SeqWeights::<f32>::load(folder)?;
    let pairs: Vec<(&[u32], &[u32])> = calibration.iter().filter(|s| !s.is_empty()).map(|s| (s.as_slice(), s.as_slice())).collect();
    let mut result = PrunedSeq2Seq { layers: Vec::new(), overrides: Vec::new(), calibration_seconds: BTreeMap::new(), blocks: Vec::new() };
    let started = Instant::now();
    let gradient = weights.loss_and_gradients(&pairs);
    result.calibration_seconds.insert(GRADIENT_PASS, started.elapsed().as_secs_f64());
    let mut seconds = gradient.seconds.clone();
    let hessian_gradient = if opts.method.statistics_need() == StatisticsNeed::HessianGradient {
        let started = Instant::now();
        let hg = weights.hessian_gradient_product(&pairs, &gradient, SEQ2SEQ_GRASP_DELTA);
        result.calibration_seconds.insert(HESSIAN_GRADIENT_PASSES, started.elapsed().as_secs_f64());
        for (a, b) in seconds.encoder.iter_mut().zip(&hg.seconds.encoder).chain(seconds.decoder.iter_mut().zip(&hg.seconds.decoder)) {
            *a += b;
        }
        Some(hg)
    } else {
        None
    };
    let scores_from: &Seq2SeqGradients<f32> = hessian_gradient.as_ref().unwrap_or(&gradient);
    let missing = |layer: &Seq2SeqLayer| {
        Seq2SeqPruneError::Model(ModelError::Unusable {
            path: folder.dir.clone(),
            reason: format!("the gradient pass has no {}; the folder's card and its graphs disagree, re-import the model", layer.name),
        })
    };
    // Every layer's weights and scores, block by block; the solve time is each block's scoring.
    let mut kept: Vec<(Seq2SeqLayer, LinearWeight)> = Vec::new();
    let mut scored: Vec<ScoredLayer> = Vec::new();
    let mut solve = Vec::new();
    for stack in [Stack::Encoder, Stack::Decoder] {
        let blocks = match stack {
            Stack::Encoder => &weights.encoder,
            Stack::Decoder => &weights.decoder,
        };
        for (block, w) in blocks.iter().enumerate() {
            let t0 = Instant::now();
            for (layer, matrix) in spec.layers_of_block(stack, block).into_iter().zip(&w.linear) {
                // Layers left out keep their dense weights (the gradient pass ran on the dense model).
                if !filter.selects(&layer.as_linear(spec.encoder_blocks)) {
                    continue;
                }
                let [d_in, d_out] = layer.shape;
                let weight = LinearWeight::new(&layer.name, d_out, d_in, rows_of(matrix))?;
                let values = rows_of(scores_from.of(&layer).ok_or_else(|| missing(&layer))?);
                let scores = match opts.method {
                    Method::Grasp { .. } => grasp_keep_scores(&layer.name, &weight, &values)?,
                    _ => snip_keep_scores(&layer.name, &weight, &values)?,
                };
                scored.push(ScoredLayer { name: layer.name.clone(), rows: d_out, cols: d_in, scores });
                kept.push((layer, weight));
            }
            solve.push(t0.elapsed().as_secs_f64());
        }
    }
    drop((gradient, hessian_gradient));
    let t0 = Instant::now();
    let scope = opts.method.saliency_scope().unwrap_or_default();
    let masks = match scope {
        SaliencyScope::Layer => scored
            .iter()
            .map(|s| saliency_masks(std::slice::from_ref(s), opts.target, scope).map(|mut m| m.remove(0)))
            .collect::<Result<Vec<_>, _>>()?,
        SaliencyScope::Global => saliency_masks(&scored, opts.target, scope)?,
    };
    // The masking time is shared out over the blocks by their weight counts.
    drop(scored);
    let total: usize = kept.iter().map(|(l, _)| l.shape[0] * l.shape[1]).sum();
    let masking = t0.elapsed().as_secs_f64();
    let stores = [
        WeightStore::open(&folder.dir, ENCODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, DECODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, CROSS_GRAPH_FILE)?,
    ];
    for ((layer, weight), mask) in kept.into_iter().zip(masks) {
        let [d_in, d_out] = layer.shape;
        let mut rows = weight.into_data();
        mask.apply(&mut rows)?;
        let report = SparsityReport::new(&layer.name, opts.target, &mask, &rows);
        let store = match Seq2SeqFolder::graph_of(&layer.name) {
            ENCODER_GRAPH_FILE => &stores[0],
            DECODER_GRAPH_FILE => &stores[1],
            _ => &stores[2],
        };
        result.overrides.push(WeightOverride::new(
            layer.name.clone(),
            vec![d_in, d_out],
            transpose(&rows, d_out, d_in),
            store.stored_type(&layer.name),
        ));
        result.layers.push(PrunedSeq2SeqLayer { pruned: mask.count_pruned(), total: d_in * d_out, layer, mask, report });
    }
    let block_ids = [Stack::Encoder, Stack::Decoder].into_iter().flat_map(|s| (0..spec.blocks(s)).map(move |b| (s, b)));
    for ((stack, block), solve) in block_ids.zip(solve) {
        let calibration = match stack {
            Stack::Encoder => seconds.encoder[block],
            Stack::Decoder => seconds.decoder[block],
        };
        let weights_in_block: usize = spec.layers_of_block(stack, block).iter().map(|l| l.shape[0] * l.shape[1]).sum();
        let share = masking * weights_in_block as f64 / total.max(1) as f64;
        result.blocks.push(BlockSeconds { stack, block, calibration, solve: solve + share });
    }
    Ok(result)
}

/// `calibration_seconds` keys of SNIP and GraSP: the gradient pass, and GraSP's two more for `H g`.
pub const GRADIENT_PASS: &str = "gradient";
pub const HESSIAN_GRADIENT_PASSES: &str = "hessian_gradient";

fn stack_name(stack: Stack) -> &'static str {
    match stack {
        Stack::Encoder => "encoder",
        Stack::Decoder => "decoder",
    }
}

/// Input statistics of `layers`' inputs over the calibration set, through the model with
/// `overrides` applied.
pub fn collect(
    folder: &Seq2SeqFolder,
    calibration: &[Vec<u32>],
    layers: &[Seq2SeqLayer],
    overrides: &[WeightOverride],
    gram: bool,
    runtime: &RuntimeOptions,
) -> Result<BTreeMap<String, InputStatistics>, Seq2SeqPruneError> {
    let mut stats: BTreeMap<String, InputStatistics> = BTreeMap::new();
    for l in layers {
        stats.entry(l.input.clone()).or_insert_with(|| InputStatistics::new(l.input.clone(), l.shape[0], gram));
    }
    let taps: Vec<String> = stats.keys().cloned().collect();
    let mut scorer = Seq2SeqScorer::load_with(folder, runtime, overrides, &taps)?;
    for ids in calibration.iter().filter(|s| !s.is_empty()) {
        let mut failure: Option<PruneError> = None;
        scorer.tap_pass(ids, &mut |name, tokens, values| {
            if let Some(s) = stats.get_mut(name) {
                if let Err(e) = s.accumulate(values, tokens) {
                    failure = Some(e);
                }
            }
            Ok(())
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    Ok(stats)
}

impl PrunedSeq2Seq {
    /// The result as the decoder-only tools hold a pruned model (sparsity tables, masks, the
    /// results folder); layers described by [`Seq2SeqLayer::as_linear`]. The per-block times
    /// stay in [`Self::blocks`]; the timings sum them (calibration passes as `forward_s`).
    pub fn to_pruned_model(&self, spec: &Seq2SeqSpec) -> PrunedModel {
        let pass = |key: &str| self.calibration_seconds.get(key).copied().unwrap_or(0.0);
        let gradient_s = pass(GRADIENT_PASS);
        let hessian_gradient_s = pass(HESSIAN_GRADIENT_PASSES);
        let timings = CaptureTimings {
            forward_s: self.calibration_seconds.values().sum::<f64>() - gradient_s - hessian_gradient_s,
            solve_s: self.blocks.iter().map(|b| b.solve).sum(),
            gradient_s,
            hessian_gradient_s,
            ..Default::default()
        };
        PrunedModel {
            overrides: self.overrides.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| PrunedLayerOutput {
                    layer: l.layer.as_linear(spec.encoder_blocks),
                    mask: Some(l.mask.clone()),
                    report: l.report.clone(),
                })
                .collect(),
            timings,
        }
    }
}

/// Saves a pruned encoder-decoder as a model folder: the dense folder's files with the pruned
/// weights patched into its weight file (all three graphs read it), plus `masks/` and
/// `pruning.json` as a decoder's saved folder has them. Staged beside `out` and swapped in whole.
pub fn save_pruned_seq2seq(folder: &Seq2SeqFolder, pruned: &PrunedModel, out: &Path, record: &serde_json::Value) -> Result<(), ModelError> {
    let staged = crate::util::StagedDir::begin(out).map_err(|e| ModelError::io(out, e))?;
    for entry in std::fs::read_dir(&folder.dir).map_err(|e| ModelError::io(&folder.dir, e))? {
        let entry = entry.map_err(|e| ModelError::io(&folder.dir, e))?;
        if entry.path().is_file() {
            let to = staged.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to).map_err(|e| ModelError::io(&to, e))?;
        }
    }
    for graph in [ENCODER_GRAPH_FILE, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE] {
        let replaced: Vec<WeightOverride> =
            pruned.overrides.iter().filter(|o| Seq2SeqFolder::graph_of(&o.name) == graph).cloned().collect();
        if !replaced.is_empty() {
            WeightStore::open(&folder.dir, graph)?.patch_overrides(staged.path(), &replaced)?;
        }
    }
    write_masks(staged.path(), pruned)?;
    let path = staged.path().join("pruning.json");
    crate::util::write_atomic(&path, serde_json::to_string_pretty(record).expect("json").as_bytes())
        .map_err(|e| ModelError::io(&path, e))?;
    staged.commit().map_err(|e| ModelError::io(out, e))
}

/// The dense encoder-decoder's weights with the masks saved in `dir` applied (Magnitude and
/// Wanda; SparseGPT's masks are refused, as for decoders: evaluate its saved folder instead).
pub fn overrides_from_mask_dir_seq2seq(folder: &Seq2SeqFolder, dir: &Path) -> Result<Vec<WeightOverride>, ModelError> {
    let layers = folder.card.spec.layers();
    let mut stores: BTreeMap<&'static str, WeightStore> = BTreeMap::new();
    let mut out = Vec::new();
    for (entry, mask) in read_mask_dir(dir)? {
        let layer = layers.iter().find(|l| l.name == entry.layer).ok_or_else(|| ModelError::Unusable {
            path: folder.dir.clone(),
            reason: format!(
                "the masks name layer '{}', which this model does not have; use the masks with the model they were made for",
                entry.layer
            ),
        })?;
        let graph = Seq2SeqFolder::graph_of(&layer.name);
        if !stores.contains_key(graph) {
            stores.insert(graph, WeightStore::open(&folder.dir, graph)?);
        }
        let store = &stores[graph];
        let [d_in, d_out] = layer.shape;
        let mut rows = transpose(&store.read(&layer.name)?, d_in, d_out);
        mask.apply(&mut rows).map_err(|e| ModelError::Unusable { path: folder.dir.clone(), reason: e.to_string() })?;
        out.push(WeightOverride::new(layer.name.clone(), vec![d_in, d_out], transpose(&rows, d_out, d_in), store.stored_type(&layer.name)));
    }
    Ok(out)
}
