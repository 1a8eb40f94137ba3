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
//! [`crate::prune::Method::prune`], unchanged from the decoder-only models'. SNIP and GraSP
//! need a reverse pass of the encoder-decoder that does not exist yet, and are refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::eval::seq2seq::{Seq2SeqError, Seq2SeqScorer};
use crate::model::import::transpose;
use crate::model::seq2seq::{Seq2SeqFolder, Seq2SeqLayer, Stack, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};
use crate::model::weights::WeightStore;
use crate::model::ModelError;
use crate::prune::{InputStatistics, LinearWeight, Method, PruneError, SparsityTarget, StatisticsNeed};
use crate::runtime::{RuntimeOptions, WeightOverride};

#[derive(Debug, thiserror::Error)]
pub enum Seq2SeqPruneError {
    #[error(transparent)]
    Run(#[from] Seq2SeqError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error("{method} needs gradients from a reverse pass of the encoder-decoder, which polyprune does not have yet; prune encoder-decoder models with magnitude, wanda or sparsegpt")]
    NoReversePass { method: &'static str },
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
}

/// What pruning produced: the pruned weights (`[in, out]`, ready to override the graphs'),
/// per-layer counts, and the calibration time spent per stack.
pub struct PrunedSeq2Seq {
    pub layers: Vec<PrunedSeq2SeqLayer>,
    pub overrides: Vec<WeightOverride>,
    /// Seconds of calibration passes, encoder blocks then decoder blocks.
    pub calibration_seconds: BTreeMap<&'static str, f64>,
}

/// Prunes every linear layer of both stacks of `folder` with `opts`, calibrating on
/// `calibration` (token ids; each is the encoder's input and the decoder's labels).
pub fn prune_seq2seq(
    folder: &Seq2SeqFolder,
    calibration: &[Vec<u32>],
    opts: &Seq2SeqPruneOptions,
    runtime: &RuntimeOptions,
) -> Result<PrunedSeq2Seq, Seq2SeqPruneError> {
    let need = opts.method.statistics_need();
    if matches!(need, StatisticsNeed::Gradient | StatisticsNeed::HessianGradient) {
        return Err(Seq2SeqPruneError::NoReversePass { method: opts.method.name() });
    }
    if need != StatisticsNeed::None && calibration.iter().all(Vec::is_empty) {
        return Err(Seq2SeqPruneError::NoCalibration { method: opts.method.name() });
    }
    let spec = &folder.card.spec;
    // Each layer's weights are read from the graph that holds them: the cross-attention keys
    // and values live in the cross graph, which reads the encoder's output.
    let stores = [
        WeightStore::open(&folder.dir, ENCODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, DECODER_GRAPH_FILE)?,
        WeightStore::open(&folder.dir, CROSS_GRAPH_FILE)?,
    ];
    let mut result = PrunedSeq2Seq { layers: Vec::new(), overrides: Vec::new(), calibration_seconds: BTreeMap::new() };
    let mut statistics: BTreeMap<String, InputStatistics> = BTreeMap::new();
    for stack in [Stack::Encoder, Stack::Decoder] {
        for block in 0..spec.blocks(stack) {
            let layers = spec.layers_of_block(stack, block);
            let fresh = opts.sequential || statistics.is_empty();
            if need != StatisticsNeed::None && fresh {
                let scope = if opts.sequential { layers.clone() } else { spec.layers() };
                let started = Instant::now();
                statistics = collect(folder, calibration, &scope, &result.overrides, need == StatisticsNeed::Gram, runtime)?;
                let key = if opts.sequential { stack_name(stack) } else { "one-shot" };
                *result.calibration_seconds.entry(key).or_default() += started.elapsed().as_secs_f64();
            }
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
                let stored = transpose(&rows, d_out, d_in);
                result.layers.push(PrunedSeq2SeqLayer { pruned: pruned.mask.count_pruned(), total: d_in * d_out, layer: layer.clone() });
                result.overrides.push(WeightOverride {
                    name: layer.name.clone(),
                    shape: vec![d_in, d_out],
                    data: Arc::new(stored),
                    stored: store.stored_type(&layer.name),
                });
            }
        }
    }
    Ok(result)
}

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
