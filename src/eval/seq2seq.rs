//! Scoring an encoder-decoder model as lm-evaluation-harness's seq2seq backend does, so that
//! figures compare with theirs.
//!
//! * [`Seq2SeqScorer::loglikelihood`]: the context (tokenized with the tokenizer's special
//!   tokens, so T5's `</s>` ends it) goes to the encoder; the continuation (no special tokens)
//!   is the decoder's labels, whose inputs are the labels shifted right behind the decoder
//!   start token; the result is the sum of the labels' log-probabilities and whether every
//!   label was the greedy token. Each distinct context is encoded once and its cross-attention
//!   keys and values computed once; its continuations are decoded in one batch against them.
//! * [`Seq2SeqScorer::loglikelihood_rolling`]: lm-eval's rolling windows over a text's ids
//!   (which end in `</s>`): the first window's encoder input is the prefix token (BOS if the
//!   model has one, else EOS: `</s>` for T5), later full windows get the token before the
//!   window, and a last partial window the tokens before it that complete `max_length`.
//! * [`Seq2SeqScorer::generate_greedy`]: greedy decoding with the self-attention cache, as
//!   transformers' `generate` without sampling: the output starts with the decoder start token
//!   and ends at `</s>` or after `max_new_tokens`.

use std::collections::BTreeMap;

use crate::model::graph::{read_model, with_heads_and_outputs};
use crate::model::seq2seq::graphs::{cross_name, past_name, present_name};
use crate::model::seq2seq::{Seq2SeqFolder, Seq2SeqSpec, CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};
use crate::model::ModelError;
use crate::runtime::{Graph, GraphSource, Input, OutputView, RuntimeError, RuntimeOptions, Value, WeightOverride};

#[derive(Debug, thiserror::Error)]
pub enum Seq2SeqError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot tokenize with {model}'s tokenizer: {message}")]
    Tokenize { model: String, message: String },
    #[error("{what} is empty; an encoder-decoder needs at least one token there")]
    Empty { what: &'static str },
}

/// Rows of continuations decoded in one run (bounds the `rows x vocabulary` log-softmax).
const DECODE_ROWS: usize = 32;

/// One (context, continuation) pair's score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairScore {
    /// Sum of the continuation's token log-probabilities (natural log).
    pub logprob: f64,
    /// Every continuation token was the decoder's argmax.
    pub greedy: bool,
}

/// The encoder's output for one context, kept inside the runtime.
struct EncodedContext {
    len: usize,
    /// `cross.N.key`, `cross.N.value` for every decoder block, in that order.
    cross: Vec<Value>,
}

/// The three graphs of an encoder-decoder model folder, loaded.
pub struct Seq2SeqScorer {
    spec: Seq2SeqSpec,
    name: String,
    tokenizer: tokenizers::Tokenizer,
    encoder: Graph,
    cross: Graph,
    decoder: Graph,
    /// Calibration taps each graph was given as extra outputs ([`Seq2SeqScorer::load_with`]).
    encoder_taps: Vec<String>,
    decoder_taps: Vec<String>,
}

/// Receives one tap's values: its name, its token count and `[tokens, width]` floats.
pub type TapSink<'a> = dyn FnMut(&str, usize, &[f32]) -> Result<(), Seq2SeqError> + 'a;

/// The encoder's output, which is also the input of every cross-attention key and value layer.
pub const ENCODER_HIDDEN: &str = "encoder_hidden";

impl Seq2SeqScorer {
    pub fn load(folder: &Seq2SeqFolder, opts: &RuntimeOptions) -> Result<Self, Seq2SeqError> {
        Self::load_with(folder, opts, &[], &[])
    }

    /// Loads the graphs with `overrides` in place of the named weights (pruned layers; each
    /// graph takes those it has) and the named internal tensors (calibration taps such as
    /// `enc.blk.0.attn_in`, or [`ENCODER_HIDDEN`]) as extra outputs for [`Self::tap_pass`].
    pub fn load_with(
        folder: &Seq2SeqFolder,
        opts: &RuntimeOptions,
        overrides: &[WeightOverride],
        taps: &[String],
    ) -> Result<Self, Seq2SeqError> {
        let mut tapped: [Vec<String>; 2] = Default::default();
        let mut load = |file: &str, slot: Option<usize>| -> Result<Graph, Seq2SeqError> {
            let path = folder.graph(file);
            let model = read_model(&path)?;
            let graph = model.graph.as_ref().cloned().unwrap_or_default();
            let produced = |name: &str| graph.node.iter().any(|n| n.output.iter().any(|o| o == name));
            let extra: Vec<String> = match slot {
                Some(_) => taps.iter().filter(|t| t.as_str() != ENCODER_HIDDEN && produced(t)).cloned().collect(),
                None => Vec::new(),
            };
            let mine: Vec<WeightOverride> =
                overrides.iter().filter(|w| graph.initializer.iter().any(|t| t.name() == w.name)).cloned().collect();
            let bytes = prost::Message::encode_to_vec(&with_heads_and_outputs(&model, false, &extra));
            if let Some(slot) = slot {
                tapped[slot] = extra;
            }
            let label = path.display().to_string();
            Ok(Graph::load(GraphSource::Memory { bytes: &bytes, folder: &folder.dir, label: &label }, opts, &mine)?)
        };
        let encoder = load(ENCODER_GRAPH_FILE, Some(0))?;
        let cross = load(CROSS_GRAPH_FILE, None)?;
        let decoder = load(DECODER_GRAPH_FILE, Some(1))?;
        let [mut encoder_taps, decoder_taps] = tapped;
        if taps.iter().any(|t| t == ENCODER_HIDDEN) {
            encoder_taps.push(ENCODER_HIDDEN.into());
        }
        Ok(Seq2SeqScorer {
            spec: folder.card.spec.clone(),
            name: folder.card.name.clone(),
            tokenizer: folder.tokenizer()?,
            encoder,
            cross,
            decoder,
            encoder_taps,
            decoder_taps,
        })
    }

    /// Runs one calibration sequence through the model, `ids` being both the encoder's input
    /// and the decoder's labels, and hands each tap's values `[tokens, width]` to `sink` with
    /// its name and token count.
    pub fn tap_pass(&mut self, ids: &[u32], sink: &mut TapSink) -> Result<(), Seq2SeqError> {
        if ids.is_empty() {
            return Err(Seq2SeqError::Empty { what: "a calibration sequence" });
        }
        let mut wanted: Vec<&str> = vec![ENCODER_HIDDEN];
        wanted.extend(self.encoder_taps.iter().map(String::as_str).filter(|t| *t != ENCODER_HIDDEN));
        let values = self.encoder.run_keep(encoder_inputs(ids), &wanted)?;
        for (name, v) in wanted.iter().zip(&values).skip(1) {
            sink(name, ids.len(), &f32_values(v))?;
        }
        if self.encoder_taps.iter().any(|t| t == ENCODER_HIDDEN) {
            sink(ENCODER_HIDDEN, ids.len(), &f32_values(&values[0]))?;
        }
        if self.decoder_taps.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = (0..self.spec.decoder_blocks).flat_map(|i| [cross_name(i, "key"), cross_name(i, "value")]).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let cross = self.cross.run_keep(vec![(ENCODER_HIDDEN, Input::Kept(&values[0]))], &refs)?;
        let ctx = EncodedContext { len: ids.len(), cross };
        let taps = self.decoder_taps.clone();
        let outputs: Vec<&str> = taps.iter().map(String::as_str).collect();
        let decoded = self.decode(&ctx, &[self.shift_right(ids)], &[ids.to_vec()], None, &outputs)?;
        for (name, v) in outputs.iter().zip(&decoded) {
            sink(name, ids.len(), &f32_values(v))?;
        }
        Ok(())
    }

    pub fn spec(&self) -> &Seq2SeqSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Generated ids back to text, special tokens (`</s>`, the start token) left out.
    pub fn decode_text(&self, ids: &[u32]) -> Result<String, Seq2SeqError> {
        self.tokenizer.decode(ids, true).map_err(|e| Seq2SeqError::Tokenize { model: self.name.clone(), message: e.to_string() })
    }

    /// A text's ids as the encoder gets them: with the tokenizer's special tokens (`</s>` last).
    pub fn encode_context(&self, text: &str) -> Result<Vec<u32>, Seq2SeqError> {
        self.tokenize(text, true)
    }

    /// A continuation's ids: no special tokens.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, Seq2SeqError> {
        self.tokenize(text, false)
    }

    fn tokenize(&self, text: &str, special: bool) -> Result<Vec<u32>, Seq2SeqError> {
        let enc = self
            .tokenizer
            .encode(text, special)
            .map_err(|e| Seq2SeqError::Tokenize { model: self.name.clone(), message: e.to_string() })?;
        Ok(enc.get_ids().to_vec())
    }

    /// The encoder's output `[S, d]` (after its final norm) for one context.
    pub fn encoder_hidden(&mut self, context: &[u32]) -> Result<Vec<f32>, Seq2SeqError> {
        let out = self.encoder.run_f32(encoder_inputs(context), &["encoder_hidden"])?;
        Ok(out.into_iter().next().map(|o| o.data).unwrap_or_default())
    }

    fn encode(&mut self, context: &[u32]) -> Result<EncodedContext, Seq2SeqError> {
        if context.is_empty() {
            return Err(Seq2SeqError::Empty { what: "the encoder's input" });
        }
        let hidden = self.encoder.run_keep(encoder_inputs(context), &["encoder_hidden"])?;
        let names: Vec<String> = (0..self.spec.decoder_blocks).flat_map(|i| [cross_name(i, "key"), cross_name(i, "value")]).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let cross = self.cross.run_keep(vec![("encoder_hidden", Input::Kept(&hidden[0]))], &refs)?;
        Ok(EncodedContext { len: context.len(), cross })
    }

    /// One decoder run over `rows` (right-padded with the pad token) of decoder inputs and
    /// labels against one encoded context; `past` is the self-attention cache of every row
    /// (`None`: empty). Returns the requested outputs.
    fn decode(
        &mut self,
        ctx: &EncodedContext,
        inputs: &[Vec<u32>],
        labels: &[Vec<u32>],
        past: Option<&[Value]>,
        outputs: &[&str],
    ) -> Result<Vec<Value>, Seq2SeqError> {
        let rows = inputs.len();
        let width = inputs.iter().map(Vec::len).max().unwrap_or(0);
        let pad = self.spec.pad_token_id as i64;
        let padded = |seqs: &[Vec<u32>]| -> Vec<i64> {
            seqs.iter().flat_map(|s| s.iter().map(|&t| t as i64).chain(std::iter::repeat(pad)).take(width)).collect()
        };
        let (h, hd) = (self.spec.n_heads, self.spec.head_dim);
        let blocks = self.spec.decoder_blocks;
        let names: Vec<(String, String)> =
            (0..blocks).flat_map(|i| ["key", "value"].map(|k| (cross_name(i, k), past_name(i, k)))).collect();
        let mut feed: Vec<(&str, Input)> = vec![
            ("decoder_input_ids", Input::I64 { shape: vec![rows, width], data: padded(inputs) }),
            ("labels", Input::I64 { shape: vec![rows, width], data: padded(labels) }),
            ("encoder_attention_mask", Input::I64 { shape: vec![1, ctx.len], data: vec![1; ctx.len] }),
        ];
        for (j, (cross, past_n)) in names.iter().enumerate() {
            feed.push((cross.as_str(), Input::Kept(&ctx.cross[j])));
            match past {
                Some(values) => feed.push((past_n.as_str(), Input::Kept(&values[j]))),
                None => feed.push((past_n.as_str(), Input::F32 { shape: vec![rows, h, 0, hd], data: &[] })),
            }
        }
        Ok(self.decoder.run_keep(feed, outputs)?)
    }

    /// The decoder's logits `[T, V]` for `labels` against `context` (teacher forcing).
    pub fn decoder_logits(&mut self, context: &[u32], labels: &[u32]) -> Result<Vec<f32>, Seq2SeqError> {
        let ctx = self.encode(context)?;
        let out = self.decode(&ctx, &[self.shift_right(labels)], &[labels.to_vec()], None, &["logits"])?;
        Ok(f32_values(&out[0]))
    }

    fn shift_right(&self, labels: &[u32]) -> Vec<u32> {
        std::iter::once(self.spec.decoder_start_token_id).chain(labels.iter().copied().take(labels.len().saturating_sub(1))).collect()
    }

    /// Scores (context ids, continuation ids) pairs; see the module doc.
    pub fn loglikelihood(&mut self, requests: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<PairScore>, Seq2SeqError> {
        let mut by_context: BTreeMap<&[u32], Vec<usize>> = BTreeMap::new();
        for (i, (ctx, cont)) in requests.iter().enumerate() {
            if cont.is_empty() {
                return Err(Seq2SeqError::Empty { what: "a continuation" });
            }
            by_context.entry(ctx.as_slice()).or_default().push(i);
        }
        let mut out = vec![PairScore { logprob: 0.0, greedy: false }; requests.len()];
        for (context, members) in by_context {
            let ctx = self.encode(context)?;
            for chunk in members.chunks(DECODE_ROWS) {
                let labels: Vec<Vec<u32>> = chunk.iter().map(|&i| requests[i].1.clone()).collect();
                let inputs: Vec<Vec<u32>> = labels.iter().map(|l| self.shift_right(l)).collect();
                let values = self.decode(&ctx, &inputs, &labels, None, &["label_logprobs", "argmax"])?;
                let (lp, am) = (f32_values(&values[0]), i64_values(&values[1]));
                let width = labels.iter().map(Vec::len).max().unwrap_or(0);
                for (row, (&i, l)) in chunk.iter().zip(&labels).enumerate() {
                    let span = row * width..row * width + l.len();
                    out[i] = PairScore {
                        logprob: lp[span.clone()].iter().map(|&v| v as f64).sum(),
                        greedy: am[span].iter().zip(l).all(|(&a, &t)| a == t as i64),
                    };
                }
            }
        }
        Ok(out)
    }

    /// The (encoder input, labels) windows lm-eval scores a text's ids `tokens` in, with
    /// `prefix` as the first window's encoder input and windows of `max_length` labels.
    pub fn rolling_windows(tokens: &[u32], prefix: u32, max_length: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
        let mut windows = Vec::new();
        if tokens.is_empty() || max_length == 0 {
            return windows;
        }
        let first = max_length.min(tokens.len());
        windows.push((vec![prefix], tokens[..first].to_vec()));
        let mut predicted = first;
        while predicted < tokens.len() {
            let n = (tokens.len() - predicted).min(max_length);
            let end = predicted + n;
            // lm-eval's context is the max_length tokens before the window's last one, cut to
            // leave no overlap with the window: the (max_length - n + 1) tokens before it.
            let context = tokens[end - max_length - 1..end - n].to_vec();
            windows.push((context, tokens[end - n..end].to_vec()));
            predicted += n;
        }
        windows
    }

    /// The text's log-likelihood as lm-eval's `loglikelihood_rolling` computes it for a
    /// seq2seq model, over windows of `max_length` tokens.
    pub fn loglikelihood_rolling(&mut self, text: &str, max_length: usize) -> Result<f64, Seq2SeqError> {
        let ids = self.encode_context(text)?;
        let windows = Self::rolling_windows(&ids, self.spec.eos_token_id, max_length);
        Ok(self.loglikelihood(&windows)?.iter().map(|s| s.logprob).sum())
    }

    /// Log-probabilities of `labels` given `context`, decoding one token at a time with the
    /// self-attention cache (what generation does); equal to [`Self::loglikelihood`]'s
    /// per-token values up to float rounding.
    pub fn label_logprobs_cached(&mut self, context: &[u32], labels: &[u32]) -> Result<Vec<f32>, Seq2SeqError> {
        let ctx = self.encode(context)?;
        let inputs = self.shift_right(labels);
        let presents = self.present_names();
        let mut outputs: Vec<&str> = vec!["label_logprobs"];
        outputs.extend(presents.iter().map(String::as_str));
        let mut past: Option<Vec<Value>> = None;
        let mut out = Vec::with_capacity(labels.len());
        for (&input, &label) in inputs.iter().zip(labels) {
            let mut values = self.decode(&ctx, &[vec![input]], &[vec![label]], past.as_deref(), &outputs)?;
            out.push(f32_values(&values[0])[0]);
            past = Some(values.split_off(1));
        }
        Ok(out)
    }

    fn present_names(&self) -> Vec<String> {
        (0..self.spec.decoder_blocks).flat_map(|i| [present_name(i, "key"), present_name(i, "value")]).collect()
    }

    /// Greedy decoding with the cache; the output starts with the decoder start token and
    /// stops after `</s>` or `max_new_tokens` new tokens.
    pub fn generate_greedy(&mut self, context: &[u32], max_new_tokens: usize) -> Result<Vec<u32>, Seq2SeqError> {
        self.generate_greedy_until(context, max_new_tokens, |_| false)
    }

    /// As [`Self::generate_greedy`], also stopping after the step at which `stop(output so
    /// far)` first holds (generation tasks stop at their `until` strings this way).
    pub fn generate_greedy_until(
        &mut self,
        context: &[u32],
        max_new_tokens: usize,
        mut stop: impl FnMut(&[u32]) -> bool,
    ) -> Result<Vec<u32>, Seq2SeqError> {
        let ctx = self.encode(context)?;
        let presents = self.present_names();
        let mut outputs: Vec<&str> = vec!["argmax"];
        outputs.extend(presents.iter().map(String::as_str));
        let mut tokens = vec![self.spec.decoder_start_token_id];
        let mut past: Option<Vec<Value>> = None;
        for _ in 0..max_new_tokens {
            let last = *tokens.last().expect("starts with the start token");
            let mut values = self.decode(&ctx, &[vec![last]], &[vec![0]], past.as_deref(), &outputs)?;
            let next = i64_values(&values[0])[0] as u32;
            tokens.push(next);
            if next == self.spec.eos_token_id || stop(&tokens) {
                break;
            }
            past = Some(values.split_off(1));
        }
        Ok(tokens)
    }
}

fn encoder_inputs(context: &[u32]) -> Vec<(&'static str, Input<'static>)> {
    let n = context.len();
    vec![
        ("input_ids", Input::I64 { shape: vec![1, n], data: context.iter().map(|&t| t as i64).collect() }),
        ("attention_mask", Input::I64 { shape: vec![1, n], data: vec![1; n] }),
    ]
}

fn f32_values(v: &Value) -> Vec<f32> {
    match v.view() {
        Some(OutputView::F32(d)) => d.to_vec(),
        _ => Vec::new(),
    }
}

fn i64_values(v: &Value) -> Vec<i64> {
    match v.view() {
        Some(OutputView::I64(d)) => d.to_vec(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lm-eval's windows for 30 tokens and max_length 12, written out by hand from
    /// get_rolling_token_windows(context_len=1) + make_disjoint_window: [p | 0..12],
    /// [11 | 12..24], [17..24 | 24..30] (the last partial window's context completes 12
    /// tokens with the window's first label).
    #[test]
    fn rolling_windows_follow_lm_eval() {
        let tokens: Vec<u32> = (0..30).collect();
        let w = Seq2SeqScorer::rolling_windows(&tokens, 99, 12);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], (vec![99], (0..12).collect()));
        assert_eq!(w[1], (vec![11], (12..24).collect()));
        assert_eq!(w[2], ((17..24).collect(), (24..30).collect()));
        let covered: Vec<u32> = w.iter().flat_map(|(_, l)| l.clone()).collect();
        assert_eq!(covered, tokens);
    }
}
