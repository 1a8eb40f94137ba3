//! The streamed path: the model runs one part at a time, so only the current block's weights
//! are resident.
//!
//! Every sequence of a call is cut into right-padded batches as on the other paths; then the
//! embedding graph (`model.embed.onnx`) runs every batch, each block graph
//! (`model.blockNN.onnx`) in turn runs every batch (all rows pass block k before block k+1),
//! and the output layer (`model.head.onnx`) runs the scored rows. Each graph is loaded when
//! its turn comes and dropped after it: ONNX Runtime reads its weights from the folder's
//! weight file then, and gives them back with the session. The hidden states of all batches
//! (`rows x width x d` floats) stay between parts.
//!
//! The graphs compute what the prefix graph computes, part by part, so the scores equal the
//! cached path's up to how ONNX Runtime fuses operators across a part boundary
//! (`tests/streamed.rs` measures it). There is no key/value cache: continuations and
//! generation run whole sequences, as on the full-sequence path.

use std::path::{Path, PathBuf};

use super::{f32_of, head, pad_right, ScoredSequence, ScorerError};
use crate::runtime::{Arena, Graph, GraphSource, Input, RuntimeError, RuntimeOptions, Value, WeightOverride};

/// Weights the embedding and output-layer graphs read (the only overrides they take).
const EMBED_WEIGHTS: &[&str] = &["token_embd.weight"];
const HEAD_WEIGHTS: &[&str] = &["output_norm.weight", "output.weight", "token_embd.weight"];

pub(super) struct StreamedGraphs {
    pub embed: PathBuf,
    pub blocks: Vec<PathBuf>,
    pub head: PathBuf,
    pub opts: RuntimeOptions,
    pub overrides: Vec<WeightOverride>,
    pub d_model: usize,
    /// Graphs loaded so far (one per part per call), for the callers' counters.
    pub loads: usize,
}

impl StreamedGraphs {
    /// Loads one part with the overrides `wanted` selects (a session refuses overrides of
    /// initializers it does not have).
    fn load(&mut self, path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Graph, RuntimeError> {
        let overrides: Vec<WeightOverride> = self.overrides.iter().filter(|o| wanted(&o.name)).cloned().collect();
        self.loads += 1;
        Graph::load(GraphSource::File(path), &self.opts, &overrides)
    }

    /// The last block's output for every batch `(ids, shape)`, one part resident at a time.
    fn hidden(&mut self, batches: Vec<(Vec<i64>, Vec<usize>)>) -> Result<Vec<Value>, ScorerError> {
        let embed_path = self.embed.clone();
        let mut embed = self.load(&embed_path, |n| EMBED_WEIGHTS.contains(&n))?;
        let mut hidden = Vec::with_capacity(batches.len());
        for (ids, shape) in batches {
            hidden.extend(embed.run_keep_with(vec![("input_ids", Input::I64 { shape, data: ids })], &["hidden"], Arena::Release)?);
        }
        drop(embed);
        for k in 0..self.blocks.len() {
            let path = self.blocks[k].clone();
            let prefix = format!("blk.{k}.");
            let mut block = self.load(&path, |n| n.starts_with(&prefix))?;
            for h in hidden.iter_mut() {
                let out = block.run_keep_with(vec![("hidden", Input::Kept(h))], &["hidden_out"], Arena::Keep)?;
                *h = out.into_iter().next().expect("one output asked, one given");
            }
        }
        Ok(hidden)
    }

    /// Scores `seqs` (ids) in the given batches of indices into `seqs`: for each sequence the
    /// log-probability of every next token and, with `with_greedy`, the argmax at every
    /// position; with `with_last` one more row per sequence, its last position (target 0,
    /// whose argmax is the greedy continuation).
    pub fn score(
        &mut self,
        seqs: &[&[u32]],
        batches: &[Vec<usize>],
        with_greedy: bool,
        with_last: bool,
    ) -> Result<Vec<ScoredSequence>, ScorerError> {
        let widths: Vec<usize> = batches.iter().map(|b| b.iter().map(|&i| seqs[i].len()).max().unwrap_or(1)).collect();
        let inputs = batches.iter().zip(&widths).map(|(b, &w)| pad_right(&b.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), w)).collect();
        let hidden = self.hidden(inputs)?;
        let head_path = self.head.clone();
        let mut head = self.load(&head_path, |n| HEAD_WEIGHTS.contains(&n))?;
        let mut out = vec![ScoredSequence::default(); seqs.len()];
        for ((batch, h), &width) in batches.iter().zip(&hidden).zip(&widths) {
            let (mut rows, mut targets) = (Vec::new(), Vec::new());
            for (b, &i) in batch.iter().enumerate() {
                let s = seqs[i];
                for t in 0..s.len() - 1 {
                    rows.push(b * width + t);
                    targets.push(s[t + 1]);
                }
                if with_last {
                    rows.push(b * width + s.len() - 1);
                    targets.push(0);
                }
            }
            let (lp, am) = head::run_head(&mut head, f32_of(h), self.d_model, &rows, &targets, with_greedy, Arena::Keep)?;
            let mut at = 0;
            for &i in batch {
                let n = seqs[i].len() - 1 + usize::from(with_last);
                out[i] = ScoredSequence {
                    logprobs: lp[at..at + n].to_vec(),
                    greedy: if with_greedy { am[at..at + n].to_vec() } else { Vec::new() },
                };
                at += n;
            }
        }
        Ok(out)
    }
}
