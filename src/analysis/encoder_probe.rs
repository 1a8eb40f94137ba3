//! [`super::probe`] for an encoder-decoder (mT5, T5 v1.1): the same pooled states and MLP
//! activity counts, read from the ENCODER.
//!
//! The encoder reads a whole sentence at once (bidirectional attention), so its states are the
//! model's picture of the sentence; the decoder's states depend on what it is asked to write.
//! Each sentence goes to the encoder as evaluation and pruning give it text: the tokenizer's
//! ids with T5's `</s>` last, one sentence per run (no padding), through the calibration taps
//! of [`Seq2SeqScorer::tap_pass`] with the dense or pruned weights alike.
//!
//! * Pooled state of encoder block i: the mean of block i's output (`enc.blk.i.hidden_out`, the
//!   residual stream after the block; the last block's is the encoder's output before its
//!   final norm, as a decoder block's `hidden_out` is before the decoder's) over the sentence's
//!   text tokens, `</s>` left out as the decoder analyses leave out their start token.
//! * MLP activity: the gated-GELU's gate pre-activation is the tap `enc.blk.i.ffn_in` (after
//!   the MLP's norm) times `enc.blk.i.ffn_gate.weight` (the pruned one when overridden); GELU
//!   is positive exactly where its input is, so a neuron is active on a text token when that
//!   pre-activation is > 0, counted as [`super::probe`] counts a decoder's.
//!
//! The decoder-side alternative (not implemented) would teacher-force the sentence as the
//! decoder's labels, as calibration does, and pool the decoder blocks' outputs: states that
//! also carry the cross-attention's reading of the encoder.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2};

use super::neurons::ActivationCounts;
use super::probe::{count_active, ProbeOptions, ProbeResult, ProbeSentence};
use super::subspace::SentenceStates;
use super::AnalysisError;
use crate::eval::seq2seq::Seq2SeqScorer;
use crate::model::seq2seq::graphs::encoder_block_output;
use crate::model::seq2seq::{Seq2SeqFolder, ENCODER_GRAPH_FILE};
use crate::model::weights::WeightStore;
use crate::model::ModelError;
use crate::runtime::WeightOverride;

/// The tap holding the MLP input of encoder block `k` (after its norm).
pub fn ffn_input(k: usize) -> String {
    format!("enc.blk.{k}.ffn_in")
}

/// The token positions a sentence's state is pooled over: every token but the final `</s>`.
pub fn pooled_tokens(sentence: &ProbeSentence) -> std::ops::Range<usize> {
    0..sentence.tokens.len() - 1
}

/// Tokenizes parallel sentences `(language, id, text)` as the encoder reads text: with the
/// tokenizer's special tokens, so `</s>` ends each (added when a tokenizer does not add it).
pub fn tokenize(folder: &Seq2SeqFolder, sentences: &[(String, String, String)]) -> Result<Vec<ProbeSentence>, AnalysisError> {
    let tokenizer = folder.tokenizer()?;
    let eos = folder.card.spec.eos_token_id;
    sentences
        .iter()
        .map(|(language, id, text)| {
            let enc = tokenizer
                .encode(text.as_str(), true)
                .map_err(|e| AnalysisError::invalid(format!("sentence {id} ({language})"), format!("cannot tokenize: {e}")))?;
            let mut tokens = enc.get_ids().to_vec();
            if tokens.last() != Some(&eos) {
                tokens.push(eos);
            }
            Ok(ProbeSentence { language: language.clone(), id: id.clone(), tokens })
        })
        .collect()
}

fn unusable(folder: &Seq2SeqFolder, reason: impl Into<String>) -> AnalysisError {
    AnalysisError::Model(ModelError::Unusable { path: folder.dir.clone(), reason: reason.into() })
}

/// Encoder block `k`'s gate weight as `[in][out]` (`d x f`), the pruned one if overridden.
fn gate_weight(store: &WeightStore, k: usize, overrides: &[WeightOverride]) -> Result<Vec<f32>, AnalysisError> {
    let name = format!("enc.blk.{k}.ffn_gate.weight");
    Ok(match overrides.iter().find(|o| o.name == name) {
        Some(o) => o.values().map_err(crate::runtime::RuntimeError::from)?.as_ref().clone(),
        None => store.read(&name)?,
    })
}

/// Runs the probe over the encoder; `on_sentence(sentences done)`.
pub fn probe_encoder(
    folder: &Seq2SeqFolder,
    sentences: &[ProbeSentence],
    overrides: &[WeightOverride],
    opts: &ProbeOptions,
    mut on_sentence: impl FnMut(usize),
) -> Result<ProbeResult, AnalysisError> {
    let spec = &folder.card.spec;
    let (blocks, d, f) = (spec.encoder_blocks, spec.d_model, spec.ffn_dim);
    if sentences.is_empty() || sentences.iter().any(|s| s.tokens.len() < 2) {
        return Err(AnalysisError::invalid("probe sentences", "give at least one sentence, each with some text before its </s>"));
    }
    if let Some(&bad) = opts.layers.iter().find(|&&l| l >= blocks) {
        return Err(AnalysisError::invalid(
            "--layers",
            format!("encoder block {bad} does not exist; the encoder has blocks 0..{}", blocks - 1),
        ));
    }
    let mut taps: Vec<String> = opts.layers.iter().map(|&k| encoder_block_output(k)).collect();
    if opts.activity {
        taps.extend((0..blocks).map(ffn_input));
    }
    let mut scorer = Seq2SeqScorer::load_with(folder, &opts.runtime, overrides, &taps)?;
    let languages: Vec<String> = {
        let mut l: Vec<String> = Vec::new();
        for s in sentences {
            if !l.contains(&s.language) {
                l.push(s.language.clone());
            }
        }
        l
    };
    let mut activity = None;
    let mut gates = Vec::new();
    if opts.activity {
        let store = WeightStore::open(&folder.dir, ENCODER_GRAPH_FILE)?;
        gates = (0..blocks).map(|k| gate_weight(&store, k, overrides)).collect::<Result<Vec<_>, _>>()?;
        let mut counts = ActivationCounts::new(languages.clone(), blocks, f);
        for s in sentences {
            let l = counts.language_index(&s.language).expect("listed");
            counts.tokens[l] += pooled_tokens(s).len() as u64;
        }
        activity = Some(counts);
    }
    let mut states: BTreeMap<usize, Array2<f64>> = opts.layers.iter().map(|&k| (k, Array2::zeros((sentences.len(), d)))).collect();
    for (i, s) in sentences.iter().enumerate() {
        let mut values: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        scorer.tap_pass(&s.tokens, &mut |name, _, v| {
            values.insert(name.to_string(), v.to_vec());
            Ok(())
        })?;
        if let Some(missing) = taps.iter().find(|t| !values.contains_key(*t)) {
            return Err(unusable(
                folder,
                format!(
                    "its encoder graph has no tensor '{missing}' (it was written by an older polyprune); write the folder again \
                     with `polyprune model import` (or `model synth`)"
                ),
            ));
        }
        let t = s.tokens.len();
        let real = pooled_tokens(s);
        for (&k, rows) in states.iter_mut() {
            let out = ArrayView2::from_shape((t, d), &values[&encoder_block_output(k)]).expect("[tokens, d]");
            let mean = out.slice(ndarray::s![real.clone(), ..]).mapv(f64::from).mean_axis(ndarray::Axis(0)).expect("tokens");
            rows.row_mut(i).assign(&mean);
        }
        if let Some(counts) = activity.as_mut() {
            let l = counts.language_index(&s.language).expect("listed");
            for (k, gate) in gates.iter().enumerate() {
                let x = ArrayView2::from_shape((t, d), &values[&ffn_input(k)]).expect("[tokens, d]");
                let gate = ArrayView2::from_shape((d, f), gate).expect("[d, f]");
                count_active(counts, l, k, x.slice(ndarray::s![real.clone(), ..]), gate);
            }
        }
        on_sentence(i + 1);
    }
    let mut pooled = BTreeMap::new();
    for (k, rows) in states {
        let langs = sentences.iter().map(|s| s.language.clone()).collect();
        let ids = sentences.iter().map(|s| s.id.clone()).collect();
        pooled.insert(k, SentenceStates::new(langs, ids, rows)?);
    }
    Ok(ProbeResult { pooled, activity })
}
