//! The one scoring path: token ids in, the log-probability of every next token out.
//!
//! Sequences are grouped into right-padded batches of similar length (so padding wastes
//! little), run through the graph's `token_logprobs` head, and only the real positions are
//! kept. The vocabulary-sized logits never leave the runtime.

use tokenizers::Tokenizer;

use crate::model::{graph, ModelDir, ModelError};
use crate::runtime::{Graph, GraphSource, Input, OutputView, RuntimeError, RuntimeOptions, WeightOverride};

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(
        "cannot read the tokenizer {path}: {message}; re-create it with `polyprune model import` or copy the model's tokenizer.json there"
    )]
    Tokenizer { path: std::path::PathBuf, message: String },
    #[error("the text is empty after tokenization ({what}); give non-empty text")]
    EmptyText { what: String },
}

/// What one scored sequence gives back: `logprobs[t] = log p(s[t+1] | s[..=t])` and, when
/// asked for, `greedy[t]` = the argmax prediction for position t+1.
#[derive(Clone, Debug, Default)]
pub struct ScoredSequence {
    pub logprobs: Vec<f32>,
    pub greedy: Vec<u32>,
}

/// Token ids of a text, with the model's start token first.
pub struct Tokenized {
    pub ids: Vec<u32>,
}

pub struct Scorer {
    pub model: ModelDir,
    graph: Graph,
    tokenizer: Tokenizer,
    /// Upper bound on batch x padded length per run, which bounds the runtime's memory
    /// (the logits inside the graph are `tokens x vocab` floats).
    pub batch_tokens: usize,
}

impl Scorer {
    /// Loads a model folder, with pruned weights given as overrides (empty for the dense model).
    pub fn load(model: &ModelDir, opts: &RuntimeOptions, overrides: &[WeightOverride]) -> Result<Self, ScorerError> {
        let tokenizer = model.tokenizer()?;
        let graph = if model.card.has_scoring_heads {
            Graph::load(GraphSource::File(&model.graph_path()), opts, overrides)?
        } else {
            // Exported models get the scoring heads added in memory; their weights stay on disk.
            let proto = graph::read_model(&model.graph_path())?;
            let bytes = prost::Message::encode_to_vec(&graph::with_heads_and_outputs(&proto, true, &[]));
            let label = model.graph_path().display().to_string();
            Graph::load(GraphSource::Memory { bytes: &bytes, folder: &model.dir, label: &label }, opts, overrides)?
        };
        Ok(Scorer { model: model.clone(), graph, tokenizer, batch_tokens: 2048 })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids with the start token (BOS) first, as the model saw text in training.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ScorerError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ScorerError::Tokenizer { path: self.model.tokenizer_path(), message: e.to_string() })?;
        let mut ids = enc.get_ids().to_vec();
        if let Some(bos) = self.model.card.start_token() {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Log-probability of each next token of every sequence: `out[i][t] = log p(s_i[t+1] | s_i[..=t])`.
    pub fn token_logprobs(&mut self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>, ScorerError> {
        let rows = self.in_batches(seqs, |scorer, batch, width| scorer.run_batch(batch, width, false))?;
        Ok(rows.into_iter().map(|r| r.logprobs).collect())
    }

    /// As [`Scorer::token_logprobs`], plus the greedy (argmax) next token at every position
    /// from the same run: `greedy[t]` is the model's top prediction for `s[t+1]`. Choice
    /// scoring uses it to tell whether a continuation is what greedy decoding would write.
    pub fn token_logprobs_and_greedy(&mut self, seqs: &[&[u32]]) -> Result<Vec<ScoredSequence>, ScorerError> {
        self.in_batches(seqs, |scorer, batch, width| scorer.run_batch(batch, width, true))
    }

    /// Runs `seqs` (those of at least two tokens; shorter ones get empty rows) in
    /// right-padded batches of similar length, longest first, each bounded by
    /// `batch_tokens`, and returns the rows in the input order.
    fn in_batches(
        &mut self,
        seqs: &[&[u32]],
        mut run: impl FnMut(&mut Self, &[&[u32]], usize) -> Result<Vec<ScoredSequence>, ScorerError>,
    ) -> Result<Vec<ScoredSequence>, ScorerError> {
        let mut out: Vec<ScoredSequence> = vec![ScoredSequence::default(); seqs.len()];
        let mut order: Vec<usize> = (0..seqs.len()).filter(|&i| seqs[i].len() >= 2).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let mut start = 0;
        while start < order.len() {
            let longest = seqs[order[start]].len();
            let fit = (self.batch_tokens / longest).max(1);
            let batch: Vec<usize> = order[start..(start + fit).min(order.len())].to_vec();
            start += batch.len();
            let rows = run(self, &batch.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), longest)?;
            for (i, row) in batch.into_iter().zip(rows) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    fn run_batch(&mut self, seqs: &[&[u32]], width: usize, with_greedy: bool) -> Result<Vec<ScoredSequence>, ScorerError> {
        let (ids, shape) = pad_right(seqs, width);
        let inputs = self.feed(ids, &shape);
        let mut rows = vec![ScoredSequence::default(); seqs.len()];
        let outputs: &[&str] = if with_greedy { &["token_logprobs", "argmax"] } else { &["token_logprobs"] };
        self.graph.run_with(inputs, outputs, |_, dims, view| {
            let stride = dims[1];
            match view {
                OutputView::F32(lp) => {
                    for (b, s) in seqs.iter().enumerate() {
                        rows[b].logprobs = lp[b * stride..b * stride + s.len() - 1].to_vec();
                    }
                }
                OutputView::I64(am) => {
                    // argmax has one entry per position; the last real one predicts past the
                    // sequence and is not needed here.
                    for (b, s) in seqs.iter().enumerate() {
                        rows[b].greedy = am[b * stride..b * stride + s.len() - 1].iter().map(|&t| t as u32).collect();
                    }
                }
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Greedy next token after each sequence (its last real position).
    pub fn greedy_next(&mut self, seqs: &[&[u32]]) -> Result<Vec<u32>, ScorerError> {
        let width = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let (ids, shape) = pad_right(seqs, width);
        let inputs = self.feed(ids, &shape);
        let mut next = Vec::with_capacity(seqs.len());
        self.graph.run_with(inputs, &["argmax"], |_, dims, view| {
            if let OutputView::I64(am) = view {
                for (b, s) in seqs.iter().enumerate() {
                    next.push(am[b * dims[1] + s.len() - 1] as u32);
                }
            }
            Ok(())
        })?;
        Ok(next)
    }

    /// The inputs this graph takes: ids, plus an all-ones mask and positions for exported models.
    fn feed(&self, ids: Vec<i64>, shape: &[usize]) -> Vec<(&'static str, Input<'static>)> {
        let mut inputs = vec![("input_ids", Input::I64 { shape: shape.to_vec(), data: ids })];
        let inputs_wanted = &self.model.card.inputs;
        if inputs_wanted.iter().any(|n| n == "attention_mask") {
            inputs.push(("attention_mask", Input::I64 { shape: shape.to_vec(), data: vec![1; shape[0] * shape[1]] }));
        }
        if inputs_wanted.iter().any(|n| n == "position_ids") {
            let pos: Vec<i64> = (0..shape[0]).flat_map(|_| 0..shape[1] as i64).collect();
            inputs.push(("position_ids", Input::I64 { shape: shape.to_vec(), data: pos }));
        }
        inputs
    }
}

/// Right-pads with id 0: causal attention keeps padding from reaching real positions.
fn pad_right(seqs: &[&[u32]], width: usize) -> (Vec<i64>, Vec<usize>) {
    let mut ids = vec![0i64; seqs.len() * width];
    for (b, s) in seqs.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            ids[b * width + t] = id as i64;
        }
    }
    (ids, vec![seqs.len(), width])
}
