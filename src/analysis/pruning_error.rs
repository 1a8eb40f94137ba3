//! How much pruning changes each layer's output on text of each evaluation language.
//!
//! For a layer with dense weight `W` (`out x in`), pruned weight `W'` and inputs `X`
//! (`in x tokens`, columns = tokens of the evaluation text), the relative output error is
//! `||W X - W' X||_F^2 / ||W X||_F^2` and its signal-to-noise ratio `10 log10(1 / error)` dB.
//! With `D = W - W'` and the Gram matrix `G = X X^T` of the layer input (what
//! `calibrate::capture` collects for SparseGPT), `||D X||_F^2 = tr(D G D^T)`, so the error
//! needs only `G`, never the activations. Comparing masks calibrated in language c on text of
//! language e gives a calibration x evaluation grid per layer: does calibrating in e make the
//! layer more faithful on e?
//!
//! The Grams come from a one-shot dense pass over the evaluation text; nothing is pruned during
//! it (the collector below returns no replacement weights). The pass runs one block's graph at
//! a time, and each block's Grams are reduced to their layers' errors (dense and pruned weights
//! read one layer at a time) before the next block runs, so a decoder's peak is one block's:
//! under `--max-memory` that peak is planned first ([`crate::model::memory::error_plan`]) and a
//! budget below it is refused before any work. An encoder-decoder's come from the
//! calibration taps of both stacks ([`crate::pruned::seq2seq::collect`]).

use std::collections::BTreeMap;
use std::path::Path;

use faer::Mat;
use serde::Serialize;

use super::masks::{LayerPlace, MaskSet};
use super::AnalysisError;
use crate::calibrate::{capture_and_prune, CalibrationError, CalibrationSet, CaptureMode, CaptureOptions, LayerPruner};
use crate::model::memory::{error_plan, CalibrationShape, ErrorPlan};
use crate::model::seq2seq::{is_seq2seq_folder, Seq2SeqFolder, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};
use crate::model::weights::WeightStore;
use crate::model::{LinearLayer, ModelDir};
use crate::prune::InputStatistics;
use crate::runtime::{RuntimeOptions, WeightOverride};

/// `||D X||^2` and `||W X||^2` of one layer on one text.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OutputError {
    pub error: f64,
    pub signal: f64,
}

impl OutputError {
    pub fn relative(&self) -> f64 {
        if self.signal == 0.0 {
            f64::NAN
        } else {
            self.error / self.signal
        }
    }
    /// Signal over error in decibels (infinite when the layer is unchanged).
    pub fn snr_db(&self) -> f64 {
        10.0 * (self.signal / self.error).log10()
    }
}

/// `sum_r v_r^T G v_r` for the rows `v_r` of a row-major `rows x cols` matrix: `tr(V G V^T)`.
fn quadratic_trace(v: &Mat<f64>, gram: &Mat<f64>) -> f64 {
    let vg = v * gram;
    let mut total = 0.0;
    for j in 0..v.ncols() {
        for i in 0..v.nrows() {
            total += vg[(i, j)] * v[(i, j)];
        }
    }
    total
}

/// The output error of replacing `dense` by `pruned` (both row-major `[out][in]`), from the
/// Gram matrix `G = X X^T` of the layer input (`in x in`).
pub fn output_error(dense: &[f32], pruned: &[f32], out_features: usize, gram: &Mat<f64>) -> Result<OutputError, AnalysisError> {
    let in_features = gram.nrows();
    if dense.len() != out_features * in_features || pruned.len() != dense.len() || gram.ncols() != in_features {
        return Err(AnalysisError::invalid(
            "pruning error",
            format!("weights of {} and {} values do not fit {out_features} x {in_features}", dense.len(), pruned.len()),
        ));
    }
    let w = Mat::from_fn(out_features, in_features, |i, j| dense[i * in_features + j] as f64);
    let d = Mat::from_fn(out_features, in_features, |i, j| (dense[i * in_features + j] - pruned[i * in_features + j]) as f64);
    Ok(OutputError { error: quadratic_trace(&d, gram), signal: quadratic_trace(&w, gram) })
}

/// Where a pruned model's weights come from.
pub enum PrunedWeights {
    /// Dense weights with saved masks applied (exact for Magnitude and Wanda).
    Masks(MaskSet),
    /// A saved pruned model folder (SparseGPT also moves the kept weights).
    Model(Box<WeightStore>),
    /// A saved pruned encoder-decoder folder: one weight table per graph file.
    Seq2SeqModel(BTreeMap<&'static str, WeightStore>),
}

/// An encoder-decoder's three graphs' weight tables, by graph file.
fn seq2seq_stores(dir: &Path) -> Result<BTreeMap<&'static str, WeightStore>, AnalysisError> {
    [ENCODER_GRAPH_FILE, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE].into_iter().map(|g| Ok((g, WeightStore::open(dir, g)?))).collect()
}

/// The table holding an encoder-decoder's weight `name`.
fn store_of<'a>(stores: &'a BTreeMap<&'static str, WeightStore>, name: &str) -> &'a WeightStore {
    &stores[Seq2SeqFolder::graph_of(name)]
}

pub struct Candidate {
    pub label: String,
    pub weights: PrunedWeights,
}

impl Candidate {
    pub fn from_masks(label: &str, dir: &Path) -> Result<Candidate, AnalysisError> {
        Ok(Candidate { label: label.to_string(), weights: PrunedWeights::Masks(MaskSet::read(label, dir)?) })
    }
    pub fn from_model(label: &str, dir: &Path) -> Result<Candidate, AnalysisError> {
        if is_seq2seq_folder(dir) {
            return Ok(Candidate { label: label.to_string(), weights: PrunedWeights::Seq2SeqModel(seq2seq_stores(dir)?) });
        }
        let card = crate::model::ModelDir::card_of(dir)?;
        Ok(Candidate { label: label.to_string(), weights: PrunedWeights::Model(Box::new(WeightStore::open(dir, &card.graph)?)) })
    }

    /// This candidate's `[out][in]` weights of `layer`, or `None` when it did not prune it.
    fn rows_of(&self, layer: &LinearLayer, dense_rows: &[f32]) -> Result<Option<Vec<f32>>, AnalysisError> {
        match &self.weights {
            PrunedWeights::Masks(set) => {
                let Some(mask) = set.masks.get(&layer.name) else { return Ok(None) };
                let mut rows = dense_rows.to_vec();
                mask.apply(&mut rows)
                    .map_err(|e| AnalysisError::invalid(format!("mask of {} for {}", self.label, layer.name), e.to_string()))?;
                Ok(Some(rows))
            }
            PrunedWeights::Model(store) => Ok(Some(store.read_rows(layer)?)),
            PrunedWeights::Seq2SeqModel(stores) => Ok(Some(store_of(stores, &layer.name).read_rows(layer)?)),
        }
    }
}

/// One cell of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct LayerError {
    pub calibration: String,
    pub evaluation: String,
    pub layer: String,
    pub block: Option<usize>,
    pub projection: String,
    pub relative_error: f64,
    pub snr_db: f64,
    pub tokens: usize,
}

struct ErrorCollector<'a> {
    dense: &'a WeightStore,
    candidates: &'a [Candidate],
    evaluation: &'a str,
    rows: Vec<LayerError>,
}

/// Every candidate's error on one layer (dense weights from `dense`) on one evaluation text.
fn layer_errors(
    dense: &WeightStore,
    candidates: &[Candidate],
    evaluation: &str,
    layer: &LinearLayer,
    place: &LayerPlace,
    stats: &InputStatistics,
) -> Result<Vec<LayerError>, AnalysisError> {
    let gram = stats.gram().ok_or_else(|| AnalysisError::invalid("pruning error", "the capture collected no Gram matrix"))?;
    let dense_rows = dense.read_rows(layer)?;
    let out_features = layer.shape[1];
    let mut rows = Vec::new();
    for c in candidates {
        let Some(pruned) = c.rows_of(layer, &dense_rows)? else { continue };
        let e = output_error(&dense_rows, &pruned, out_features, &gram)?;
        rows.push(LayerError {
            calibration: c.label.clone(),
            evaluation: evaluation.to_string(),
            layer: layer.name.clone(),
            block: place.block,
            projection: place.projection.clone(),
            relative_error: e.relative(),
            snr_db: e.snr_db(),
            tokens: stats.tokens(),
        });
    }
    Ok(rows)
}

impl ErrorCollector<'_> {
    fn layer(&mut self, layer: &LinearLayer, stats: &InputStatistics) -> Result<(), AnalysisError> {
        let place = LayerPlace::of(&layer.name);
        let rows = layer_errors(self.dense, self.candidates, self.evaluation, layer, &place, stats)?;
        self.rows.extend(rows);
        Ok(())
    }
}

impl LayerPruner for ErrorCollector<'_> {
    fn prune_block(
        &mut self,
        _block: usize,
        layers: &[LinearLayer],
        statistics: &mut BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        for layer in layers {
            if let Some(stats) = statistics.get(&layer.input) {
                self.layer(layer, stats).map_err(|e| CalibrationError::Invalid(e.to_string()))?;
            }
        }
        Ok(Vec::new())
    }
}

/// The calibration x evaluation grid: for each evaluation text (a language and its windows),
/// one dense pass collecting Grams, and every candidate's error on every layer.
pub fn error_grid(
    model: &ModelDir,
    evaluation: &[(String, CalibrationSet)],
    candidates: &[Candidate],
    capture: &CaptureOptions,
    mut on_block: impl FnMut(&str, usize),
) -> Result<Vec<LayerError>, AnalysisError> {
    check_budget(model, evaluation, capture)?;
    let dense = WeightStore::open(&model.dir, &model.card.graph)?;
    let opts = CaptureOptions { mode: CaptureMode::OneShot, gram: true, ..capture.clone() };
    let mut rows = Vec::new();
    for (language, text) in evaluation {
        let mut collector = ErrorCollector { dense: &dense, candidates, evaluation: language, rows: Vec::new() };
        capture_and_prune(model, text, &opts, &mut collector, |k, _| on_block(language, k))?;
        rows.extend(collector.rows);
    }
    Ok(rows)
}

/// The plan of [`error_grid`] under `--max-memory` (the largest evaluation text's windows),
/// refused when one block does not fit; `None` without a budget or a decoder spec.
pub fn check_budget(
    model: &ModelDir,
    evaluation: &[(String, CalibrationSet)],
    capture: &CaptureOptions,
) -> Result<Option<ErrorPlan>, AnalysisError> {
    let Some(budget) = capture.runtime.max_memory else { return Ok(None) };
    if model.card.spec.is_none() {
        return Ok(None);
    }
    let windows = evaluation.iter().map(|(_, s)| s.windows.len()).max().unwrap_or(0);
    let seqlen = evaluation.iter().flat_map(|(_, s)| s.windows.iter().map(Vec::len)).max().unwrap_or(0);
    let shape = CalibrationShape { windows, seqlen, batch: capture.batch };
    Ok(Some(error_plan(&model.card, budget, "--max-memory", shape)?))
}

/// The grid of an encoder-decoder: for each evaluation text (a language and its sequences,
/// each the encoder's input and the decoder's labels), one dense pass of both stacks collecting
/// the Grams of every layer's input, and every candidate's error on every layer of both stacks.
/// Blocks are numbered as `sparsity.csv` numbers them (the decoder's after the encoder's);
/// `on_text(texts done)`.
pub fn seq2seq_error_grid(
    folder: &Seq2SeqFolder,
    evaluation: &[(String, Vec<Vec<u32>>)],
    candidates: &[Candidate],
    runtime: &RuntimeOptions,
    mut on_text: impl FnMut(usize),
) -> Result<Vec<LayerError>, AnalysisError> {
    let spec = &folder.card.spec;
    let layers = spec.layers();
    let dense = seq2seq_stores(&folder.dir)?;
    let mut rows = Vec::new();
    for (i, (language, sequences)) in evaluation.iter().enumerate() {
        let statistics = crate::pruned::seq2seq::collect(folder, sequences, &layers, &[], true, runtime)?;
        for layer in &layers {
            let Some(stats) = statistics.get(&layer.input) else { continue };
            let linear = layer.as_linear(spec.encoder_blocks);
            let place = LayerPlace::in_model(&layer.name, Some(spec.encoder_blocks));
            rows.extend(layer_errors(store_of(&dense, &layer.name), candidates, language, &linear, &place, stats)?);
        }
        on_text(i + 1);
    }
    Ok(rows)
}

/// Evaluation text as capture windows: the documents' tokens packed end to end and cut into
/// windows of `seqlen` that begin with the start token (as calibration windows do), at most
/// `windows` of them; a short tail is dropped.
pub fn text_windows(token_lists: &[Vec<u32>], start_token: u32, seqlen: usize, windows: usize) -> Vec<Vec<u32>> {
    let body = seqlen.saturating_sub(1).max(1);
    let stream: Vec<u32> = token_lists.iter().flatten().copied().collect();
    stream.chunks_exact(body).take(windows).map(|c| std::iter::once(start_token).chain(c.iter().copied()).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn gram_form_equals_the_direct_output_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (out_f, in_f, tokens) = (7, 11, 40);
        let w: Vec<f32> = (0..out_f * in_f).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let pruned: Vec<f32> = w.iter().map(|&x| if rng.gen_bool(0.5) { 0.0 } else { x }).collect();
        // X: in x tokens.
        let x: Vec<f64> = (0..in_f * tokens).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let gram = Mat::from_fn(in_f, in_f, |i, j| (0..tokens).map(|t| x[i * tokens + t] * x[j * tokens + t]).sum());
        let got = output_error(&w, &pruned, out_f, &gram).unwrap();
        // Direct: W X and W' X, element by element.
        let (mut err, mut sig) = (0.0, 0.0);
        for r in 0..out_f {
            for t in 0..tokens {
                let y: f64 = (0..in_f).map(|i| w[r * in_f + i] as f64 * x[i * tokens + t]).sum();
                let yp: f64 = (0..in_f).map(|i| pruned[r * in_f + i] as f64 * x[i * tokens + t]).sum();
                err += (y - yp) * (y - yp);
                sig += y * y;
            }
        }
        assert!((got.error - err).abs() <= 1e-9 * err, "{} vs {err}", got.error);
        assert!((got.signal - sig).abs() <= 1e-9 * sig);
        assert!((got.snr_db() - 10.0 * (sig / err).log10()).abs() < 1e-9);
        let same = output_error(&w, &w, out_f, &gram).unwrap();
        assert_eq!(same.error, 0.0);
        assert!(output_error(&w, &w[1..], out_f, &gram).is_err());
    }

    #[test]
    fn text_windows_start_with_the_start_token() {
        let w = text_windows(&[vec![5, 6, 7], vec![8, 9]], 2, 3, 10);
        assert_eq!(w, vec![vec![2, 5, 6], vec![2, 7, 8]]);
    }
}
