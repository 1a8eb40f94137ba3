//! Looking inside the model on a set of sentences: mean-pooled hidden states per sentence at
//! chosen layers, and per-neuron MLP activity counts per language (for LAPE).
//!
//! The model's per-block parts are run one block at a time over all sentences (as calibration
//! does), the dense weights or pruned ones (overrides) alike: only one block's weights are
//! resident, and the batches hold at most the memory plan's tokens per call (`--max-memory`). Sentences of one batch are
//! right-padded; attention is causal, so real positions never see the padding and only they
//! are read.
//!
//! * Pooled state of block i: the mean of block i's output over the sentence's tokens after the
//!   start token (the start token's state is the same in every language: it sees only itself).
//! * MLP activity without editing the graph: the gate's input tap (`blk.i.ffn_in`, the gate/up
//!   input after the pre-norm; `blk.i.attn_in` in a parallel Command-R block) times the gate
//!   weight (the pruned one when overrides are given) is the gate pre-activation; GELU and SiLU
//!   are positive exactly when their input is, so a neuron is active on a token when that
//!   pre-activation is > 0 (LAPE's criterion). Counts are accumulated per language and neuron;
//!   activations are never kept.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2};

use super::neurons::ActivationCounts;
use super::subspace::SentenceStates;
use super::AnalysisError;
use crate::model::weights::WeightStore;
use crate::model::{LinearLayer, ModelDir, ModelError, Role};
use crate::runtime::{Graph, GraphSource, Input, OutputView, RuntimeOptions, WeightOverride};

/// One sentence to probe; `id` is shared by translations.
#[derive(Clone, Debug)]
pub struct ProbeSentence {
    pub language: String,
    pub id: String,
    pub tokens: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Blocks whose output is pooled (0-based; block i's output is the state after i + 1 blocks).
    pub layers: Vec<usize>,
    /// Count MLP activity in every block for LAPE.
    pub activity: bool,
    /// Sentences per runtime call.
    pub batch: usize,
    pub runtime: RuntimeOptions,
}

pub struct ProbeResult {
    /// Pooled states by block.
    pub pooled: BTreeMap<usize, SentenceStates>,
    pub activity: Option<ActivationCounts>,
}

fn unusable(model: &ModelDir, reason: impl Into<String>) -> AnalysisError {
    AnalysisError::Model(ModelError::Unusable { path: model.dir.clone(), reason: reason.into() })
}

/// The gate weight of block `k` as `[in][out]` (`d x f`), the pruned one if overridden.
fn gate_weight(
    model: &ModelDir,
    store: &WeightStore,
    k: usize,
    overrides: &[WeightOverride],
) -> Result<(Vec<f32>, usize, usize), AnalysisError> {
    let layer: &LinearLayer =
        model.card.layers.iter().find(|l| l.block == k && l.role == Role::Gate).ok_or_else(|| {
            unusable(model, format!("block {k} has no gate projection; MLP activity needs a gated MLP (Gemma, Llama, Qwen)"))
        })?;
    let [d_in, d_out] = layer.shape;
    let stored = match overrides.iter().find(|o| o.name == layer.name) {
        Some(o) => std::sync::Arc::unwrap_or_clone(o.values().map_err(|e| unusable(model, e.to_string()))?),
        None => store.read(&layer.name)?,
    };
    // The stored layout is [in][out] unless the export keeps [out][in].
    let in_out = if layer.transposed { crate::model::import::transpose(&stored, d_out, d_in) } else { stored };
    Ok((in_out, d_in, d_out))
}

/// Adds to `counts` (language `lang`) the neurons of block `k` active on each real token.
pub(super) fn count_active(counts: &mut ActivationCounts, lang: usize, k: usize, x: ArrayView2<f32>, gate: ArrayView2<f32>) {
    let pre = x.dot(&gate);
    let neurons = counts.neurons;
    let row = &mut counts.active[lang][k * neurons..(k + 1) * neurons];
    for token in pre.outer_iter() {
        for (n, &v) in token.iter().enumerate() {
            row[n] += u64::from(v > 0.0);
        }
    }
}

/// Tokens per runtime call under the memory budget of `runtime` (the plan's batch, see
/// [`crate::model::memory::plan_within_budget`]); a `--max-memory` that even one block with its
/// activations exceeds is refused here, before any work. The probe always runs one block at
/// a time (the streamed path), whatever the plan's residency.
fn budget_tokens(model: &ModelDir, runtime: &RuntimeOptions) -> Result<usize, AnalysisError> {
    match crate::eval::scorer::memory_plan(model, runtime) {
        Ok(Some(Ok(plan))) => Ok(plan.batch_tokens),
        Ok(Some(Err(e))) if runtime.max_memory.is_some() => Err(e.into()),
        _ => Ok(usize::MAX),
    }
}

/// Consecutive sentences in batches of at most `most` sentences and (beyond a lone sentence)
/// `tokens` padded tokens.
fn batches(sentences: &[ProbeSentence], most: usize, tokens: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sentences.len() {
        let (mut end, mut longest) = (start + 1, sentences[start].tokens.len());
        while end < sentences.len() && end - start < most.max(1) {
            let wider = longest.max(sentences[end].tokens.len());
            if wider.saturating_mul(end - start + 1) > tokens {
                break;
            }
            (longest, end) = (wider, end + 1);
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Runs the probe; sentences should be grouped by language for cache-friendly batches, but any
/// order works.
pub fn probe(
    model: &ModelDir,
    sentences: &[ProbeSentence],
    overrides: &[WeightOverride],
    opts: &ProbeOptions,
    mut on_block: impl FnMut(usize),
) -> Result<ProbeResult, AnalysisError> {
    let parts = model
        .card
        .parts
        .as_ref()
        .ok_or_else(|| unusable(model, "probing needs the per-block graphs that `polyprune model import` writes"))?;
    let d = model.card.spec.as_ref().map(|s| s.d_model).ok_or_else(|| unusable(model, "the card has no decoder spec"))?;
    if sentences.is_empty() || sentences.iter().any(|s| s.tokens.len() < 2) {
        return Err(AnalysisError::invalid("probe sentences", "give at least one sentence, each with a start token and some text"));
    }
    if let Some(&bad) = opts.layers.iter().find(|&&l| l >= parts.blocks.len()) {
        return Err(AnalysisError::invalid(
            "--layers",
            format!("block {bad} does not exist; the model has blocks 0..{}", parts.blocks.len() - 1),
        ));
    }
    let last = if opts.activity { parts.blocks.len() - 1 } else { *opts.layers.iter().max().unwrap_or(&0) };
    let batches = batches(sentences, opts.batch, budget_tokens(model, &opts.runtime)?);
    let width = |r: &std::ops::Range<usize>| sentences[r.clone()].iter().map(|s| s.tokens.len()).max().unwrap_or(0);

    // Hidden states per batch, `[b, t, d]` with t the batch's longest sentence.
    let mut embed = Graph::load(GraphSource::File(&model.dir.join(&parts.embed)), &opts.runtime, &[])?;
    let mut hidden: Vec<Vec<f32>> = Vec::with_capacity(batches.len());
    for r in &batches {
        let t = width(r);
        let ids: Vec<i64> = sentences[r.clone()]
            .iter()
            .flat_map(|s| s.tokens.iter().map(|&x| x as i64).chain(std::iter::repeat_n(0, t - s.tokens.len())))
            .collect();
        let out = embed.run_f32(vec![("input_ids", Input::I64 { shape: vec![r.len(), t], data: ids })], &["hidden"])?;
        hidden.push(out.into_iter().next().map(|o| o.data).unwrap_or_default());
    }
    drop(embed);

    let languages: Vec<String> = {
        let mut l: Vec<String> = Vec::new();
        for s in sentences {
            if !l.contains(&s.language) {
                l.push(s.language.clone());
            }
        }
        l
    };
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let mut activity = None;
    if opts.activity {
        let (_, _, f) = gate_weight(model, &store, 0, overrides)?;
        let mut counts = ActivationCounts::new(languages.clone(), parts.blocks.len(), f);
        for s in sentences {
            let l = counts.language_index(&s.language).expect("listed");
            counts.tokens[l] += (s.tokens.len() - 1) as u64;
        }
        activity = Some(counts);
    }
    let mut pooled = BTreeMap::new();
    for k in 0..=last {
        on_block(k);
        let names: Vec<&str> = model.card.layers.iter().filter(|l| l.block == k).map(|l| l.name.as_str()).collect();
        let block_overrides: Vec<WeightOverride> = overrides.iter().filter(|o| names.contains(&o.name.as_str())).cloned().collect();
        let mut graph = Graph::load(GraphSource::File(&model.dir.join(&parts.blocks[k])), &opts.runtime, &block_overrides)?;
        // The gate's input tap: `ffn_in`, or `attn_in` where attention and MLP share one norm.
        let tap = model
            .card
            .layers
            .iter()
            .find(|l| l.block == k && l.role == Role::Gate)
            .map(|l| l.input.clone())
            .unwrap_or_else(|| format!("blk.{k}.ffn_in"));
        let gate = if opts.activity { Some(gate_weight(model, &store, k, overrides)?) } else { None };
        let mut outputs = vec!["hidden_out"];
        if gate.is_some() {
            outputs.push(tap.as_str());
        }
        let mut states = opts.layers.contains(&k).then(|| Array2::<f64>::zeros((sentences.len(), d)));
        for (r, h) in batches.iter().zip(hidden.iter_mut()) {
            let t = width(r);
            let mut next: Vec<f32> = Vec::new();
            let mut tap_values: Vec<f32> = Vec::new();
            graph.run_with(vec![("hidden", Input::F32 { shape: vec![r.len(), t, d], data: h })], &outputs, |name, _, v| {
                if let OutputView::F32(x) = v {
                    if name == "hidden_out" {
                        next = x.to_vec()
                    } else {
                        tap_values = x.to_vec()
                    }
                }
                Ok(())
            })?;
            for (b, s) in sentences[r.clone()].iter().enumerate() {
                let real = 1..s.tokens.len();
                if let Some(states) = states.as_mut() {
                    let rows = ArrayView2::from_shape((t, d), &next[b * t * d..(b + 1) * t * d]).expect("shape");
                    let mean = rows.slice(ndarray::s![real.clone(), ..]).mapv(f64::from).mean_axis(ndarray::Axis(0)).expect("tokens");
                    states.row_mut(r.start + b).assign(&mean);
                }
                if let (Some((g, d_in, d_out)), Some(counts)) = (&gate, activity.as_mut()) {
                    let x = ArrayView2::from_shape((t, *d_in), &tap_values[b * t * d_in..(b + 1) * t * d_in]).expect("shape");
                    let gate = ArrayView2::from_shape((*d_in, *d_out), g).expect("shape");
                    let l = counts.language_index(&s.language).expect("listed");
                    count_active(counts, l, k, x.slice(ndarray::s![real.clone(), ..]), gate);
                }
            }
            *h = next;
        }
        if let Some(states) = states {
            let langs = sentences.iter().map(|s| s.language.clone()).collect();
            let ids = sentences.iter().map(|s| s.id.clone()).collect();
            pooled.insert(k, SentenceStates::new(langs, ids, states)?);
        }
    }
    Ok(ProbeResult { pooled, activity })
}

/// Tokenizes parallel sentences for [`probe`]: the model's start token, then the text.
pub fn tokenize(
    model: &ModelDir,
    tokenizer: &tokenizers::Tokenizer,
    sentences: &[(String, String, String)],
) -> Result<Vec<ProbeSentence>, AnalysisError> {
    let start = model.card.start_token();
    sentences
        .iter()
        .map(|(language, id, text)| {
            let enc = tokenizer
                .encode(text.as_str(), false)
                .map_err(|e| AnalysisError::invalid(format!("sentence {id} ({language})"), format!("cannot tokenize: {e}")))?;
            let tokens: Vec<u32> = start.into_iter().chain(enc.get_ids().iter().copied()).collect();
            Ok(ProbeSentence { language: language.clone(), id: id.clone(), tokens })
        })
        .collect()
}
