//! Running the calibration set through the model block by block, collecting what the pruning
//! methods need from each linear layer's input, and pruning as it goes.
//!
//! Imported models come with per-block graphs (`model.blockNN.onnx`, sharing the weight file).
//! The hidden states of all windows are kept (N x L x d floats) and pushed through one block at
//! a time:
//! * **sequential** (as the Wanda and SparseGPT reference code does): block k's statistics are
//!   taken on the outputs of the already pruned blocks 0..k-1; after block k is pruned it is
//!   run again, pruned, to give block k+1 its inputs. Cost: two passes over the blocks, no
//!   output layer: about one forward pass of the whole model.
//! * **one-shot**: all statistics come from the dense model; one pass.
//!
//! Memory: the hidden states, one batch of activations, and the statistics themselves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{CalibrationError, CalibrationSet};
use crate::model::{LinearLayer, ModelDir, ModelError};
use crate::prune::InputStatistics;
use crate::runtime::{Graph, GraphSource, Input, OutputView, RuntimeOptions, WeightOverride};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureMode {
    Sequential,
    OneShot,
}

#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub mode: CaptureMode,
    /// Windows per runtime call.
    pub batch: usize,
    pub runtime: RuntimeOptions,
    /// Collect Gram matrices X^T X (SparseGPT) and not only per-channel norms.
    pub gram: bool,
}

/// Where the time went, for `make bench`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CaptureTimings {
    pub forward_s: f64,
    pub statistics_s: f64,
    pub solve_s: f64,
    /// SNIP/GraSP: the loss gradient (forward + backward of the set), and GraSP's `H g`.
    pub gradient_s: f64,
    pub hessian_gradient_s: f64,
}

/// Prunes one block given the statistics of its layer inputs (keyed by tap name); returns the
/// replacement weights for the block's layers.
pub trait LayerPruner {
    /// Prunes block `block`'s `layers` from their inputs' `statistics`. A pruner may remove
    /// the entries it is done with: a Gram matrix freed before the block's last solve is
    /// memory that solve can use.
    fn prune_block(
        &mut self,
        block: usize,
        layers: &[LinearLayer],
        statistics: &mut BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError>;
}

/// The statistics of block `k`'s taps, one entry per distinct layer input.
fn empty_statistics(layers: &[LinearLayer], gram: bool) -> BTreeMap<String, InputStatistics> {
    let mut stats = BTreeMap::new();
    for l in layers {
        stats.entry(l.input.clone()).or_insert_with(|| InputStatistics::new(l.input.clone(), l.shape[0], gram));
    }
    stats
}

struct Runner<'a> {
    set: &'a CalibrationSet,
    opts: &'a CaptureOptions,
    seqlen: usize,
    timings: CaptureTimings,
}

impl Runner<'_> {
    fn batches(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let n = self.set.windows.len();
        let b = self.opts.batch.max(1);
        (0..n.div_ceil(b)).map(move |i| i * b..((i + 1) * b).min(n))
    }

    fn embed(&mut self, model: &ModelDir, embed_file: &str, d: usize) -> Result<Vec<f32>, CalibrationError> {
        let mut g = Graph::load(GraphSource::File(&model.dir.join(embed_file)), &self.opts.runtime, &[])?;
        let mut hidden = Vec::with_capacity(self.set.windows.len() * self.seqlen * d);
        for r in self.batches().collect::<Vec<_>>() {
            let ids: Vec<i64> = self.set.windows[r.clone()].iter().flatten().map(|&t| t as i64).collect();
            let t0 = Instant::now();
            g.run_with(vec![("input_ids", Input::I64 { shape: vec![r.len(), self.seqlen], data: ids })], &["hidden"], |_, _, v| {
                if let OutputView::F32(x) = v {
                    hidden.extend_from_slice(x);
                }
                Ok(())
            })?;
            self.timings.forward_s += t0.elapsed().as_secs_f64();
        }
        Ok(hidden)
    }

    /// Runs one block over all windows; accumulates tap statistics when given, and returns
    /// the block's outputs when asked.
    fn run_block(
        &mut self,
        graph: &mut Graph,
        hidden: &[f32],
        d: usize,
        mut stats: Option<&mut BTreeMap<String, InputStatistics>>,
        want_output: bool,
    ) -> Result<Vec<f32>, CalibrationError> {
        let mut out = Vec::with_capacity(if want_output { hidden.len() } else { 0 });
        let mut names: Vec<String> = Vec::new();
        if want_output {
            names.push("hidden_out".into());
        }
        if let Some(s) = &stats {
            names.extend(s.keys().cloned());
        }
        let name_refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let per_window = self.seqlen * d;
        for r in self.batches().collect::<Vec<_>>() {
            let x = &hidden[r.start * per_window..r.end * per_window];
            let t0 = Instant::now();
            let mut stat_time = Duration::ZERO;
            let mut failure: Option<crate::prune::PruneError> = None;
            graph.run_with(
                vec![("hidden", Input::F32 { shape: vec![r.len(), self.seqlen, d], data: x })],
                &name_refs,
                |name, dims, v| {
                    let OutputView::F32(values) = v else { return Ok(()) };
                    if name == "hidden_out" {
                        out.extend_from_slice(values);
                    } else if let Some(s) = stats.as_deref_mut() {
                        let t = Instant::now();
                        let tokens = dims[0] * dims[1];
                        if let Err(e) = s.get_mut(name).expect("requested tap").accumulate(values, tokens) {
                            failure.get_or_insert(e);
                        }
                        stat_time += t.elapsed();
                    }
                    Ok(())
                },
            )?;
            if let Some(e) = failure {
                return Err(e.into());
            }
            self.timings.statistics_s += stat_time.as_secs_f64();
            self.timings.forward_s += (t0.elapsed() - stat_time).as_secs_f64();
        }
        Ok(out)
    }
}

/// Calibrates and prunes a model block by block; returns every pruned layer's new weights.
pub fn capture_and_prune(
    model: &ModelDir,
    set: &CalibrationSet,
    opts: &CaptureOptions,
    pruner: &mut dyn LayerPruner,
    mut on_block: impl FnMut(usize, &str),
) -> Result<(Vec<WeightOverride>, CaptureTimings), CalibrationError> {
    let card = &model.card;
    let parts = card.parts.as_ref().ok_or_else(|| {
        CalibrationError::Model(ModelError::Unusable {
            path: model.dir.clone(),
            reason: "calibration needs the per-block graphs that `polyprune model import` writes; this folder has none".into(),
        })
    })?;
    let d = card.spec.as_ref().map(|s| s.d_model).ok_or_else(|| CalibrationError::Invalid("the card has no decoder spec".into()))?;
    let seqlen = set.spec.seqlen;
    let mut runner = Runner { set, opts, seqlen, timings: CaptureTimings::default() };
    on_block(0, "embedding");
    let mut hidden = runner.embed(model, &parts.embed, d)?;
    let mut overrides = Vec::new();
    for (k, file) in parts.blocks.iter().enumerate() {
        let layers: Vec<LinearLayer> = card.layers.iter().filter(|l| l.block == k).cloned().collect();
        let path = model.dir.join(file);
        let mut dense = Graph::load(GraphSource::File(&path), &opts.runtime, &[])?;
        let mut stats = empty_statistics(&layers, opts.gram);
        on_block(k, "statistics");
        let one_shot = opts.mode == CaptureMode::OneShot;
        let dense_out = runner.run_block(&mut dense, &hidden, d, Some(&mut stats), one_shot)?;
        drop(dense);
        on_block(k, "pruning");
        let t0 = Instant::now();
        let block_overrides = if layers.is_empty() { Vec::new() } else { pruner.prune_block(k, &layers, &mut stats)? };
        runner.timings.solve_s += t0.elapsed().as_secs_f64();
        drop(stats);
        hidden = if one_shot {
            dense_out
        } else {
            on_block(k, "pruned forward");
            let mut pruned = Graph::load(GraphSource::File(&path), &opts.runtime, &block_overrides)?;
            runner.run_block(&mut pruned, &hidden, d, None, true)?
        };
        overrides.extend(block_overrides);
    }
    Ok((overrides, runner.timings))
}
