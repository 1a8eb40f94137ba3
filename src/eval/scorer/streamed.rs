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
//! (`tests/streamed.rs` measures it).
//!
//! **Key/value cache.** Continuations and generation use per-block cache graphs
//! ([`crate::model::decoder::cached_block_part`], built in memory from the block file's weight
//! references, nothing written): block k's *prefix* graph returns its output and block k's
//! keys/values; its *continuation* graph takes that block's past keys/values as the whole-body
//! continuation graph does. Continuations: all context batches and all continuation batches
//! pass block k (contexts first, then the continuations of each context batch on that batch's
//! block-k cache, which is dropped once they have run) before block k+1 loads; only one
//! block's cache of one context batch exists at a time. Generation: the batch's caches of
//! every block stay between steps (they are small next to the weights), and each step moves
//! every row one token through block k before block k+1, so a step reads every block's
//! weights once (for a model streamed from disk, a step costs a read of the model).

use std::ops::Range;
use std::path::{Path, PathBuf};

use prost::Message;

use super::{f32_of, head, pad_right, ScoredSequence, ScorerError};
use crate::model::decoder::{
    cached_block_part, head_slice_model, past_name, present_name, DecoderSpec, WeightTable, KEY_POSITIONS, PAST_ROWS,
};
use crate::model::graph;
use crate::model::onnx::{StringStringEntryProto, TensorProto};
use crate::runtime::{Arena, Graph, GraphSource, Input, RuntimeError, RuntimeOptions, SharedWeights, Value, WeightOverride};

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
    /// The folder the weight references point into.
    pub dir: PathBuf,
    pub spec: DecoderSpec,
    /// Block k's cache graphs (prefix, continuation), encoded once on first use.
    pub cache_graphs: Vec<Option<[Vec<u8>; 2]>>,
    /// The vocabulary slices the output layer runs in (the memory plan's; 1: whole).
    pub head_slices: usize,
    /// The head graph's weight references, read on the first sliced run.
    pub head_weights: Option<WeightTable>,
}

/// Block k's cache graphs; when both are loaded they share the block's packed weights.
pub(super) struct CachedBlock {
    prefix: Option<Graph>,
    continuation: Option<Graph>,
    block: usize,
}

/// Which of a block's cache graphs a caller runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockGraphs {
    Prefix,
    Continuation,
    Both,
}

/// The inputs of a per-block continuation run besides `hidden` and the past keys/values.
pub(super) struct PastIndex {
    pub past_rows: Vec<i64>,
    pub key_positions: Vec<i64>,
}

impl CachedBlock {
    /// The prefix graph on `hidden` `[B, T, d]`: `(hidden_out, key, value)`.
    pub fn prefix(&mut self, hidden: &Value) -> Result<[Value; 3], ScorerError> {
        let (k, v) = (present_name(self.block, "key"), present_name(self.block, "value"));
        let graph = self.prefix.as_mut().expect("loaded with the prefix graph");
        let out = graph.run_keep_with(vec![("hidden", Input::Kept(hidden))], &["hidden_out", &k, &v], Arena::Release)?;
        Ok(out.try_into().unwrap_or_else(|_| unreachable!("three outputs asked, three given")))
    }

    /// The continuation graph on `hidden` `[B, T, d]` against this block's past `(key, value)`;
    /// `hidden_out`, then the grown key and value when `with_presents`.
    pub fn continuation(
        &mut self,
        hidden: &Value,
        past: [&Value; 2],
        index: &PastIndex,
        with_presents: bool,
    ) -> Result<Vec<Value>, ScorerError> {
        let b = hidden.shape()[0];
        let keys = index.key_positions.len() / b;
        let (pk, pv) = (past_name(self.block, "key"), past_name(self.block, "value"));
        let inputs = vec![
            ("hidden", Input::Kept(hidden)),
            (pk.as_str(), Input::Kept(past[0])),
            (pv.as_str(), Input::Kept(past[1])),
            (PAST_ROWS, Input::I64 { shape: vec![b], data: index.past_rows.clone() }),
            (KEY_POSITIONS, Input::I64 { shape: vec![b, keys], data: index.key_positions.clone() }),
        ];
        let (k, v) = (present_name(self.block, "key"), present_name(self.block, "value"));
        let outputs: Vec<&str> = if with_presents { vec!["hidden_out", &k, &v] } else { vec!["hidden_out"] };
        let graph = self.continuation.as_mut().expect("loaded with the continuation graph");
        Ok(graph.run_keep_with(inputs, &outputs, Arena::Release)?)
    }
}

impl StreamedGraphs {
    /// Loads one part with the overrides `wanted` selects (a session refuses overrides of
    /// initializers it does not have).
    fn load(&mut self, path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Graph, RuntimeError> {
        let overrides: Vec<WeightOverride> = self.overrides.iter().filter(|o| wanted(&o.name)).cloned().collect();
        self.loads += 1;
        Graph::load(GraphSource::File(path), &self.opts, &overrides)
    }

    /// Block k's prefix and/or continuation cache graphs, with block k's overrides; two
    /// sessions share the block's packed weights.
    pub fn load_cached_block(&mut self, k: usize, which: BlockGraphs) -> Result<CachedBlock, ScorerError> {
        if self.cache_graphs.len() != self.blocks.len() {
            self.cache_graphs = vec![None; self.blocks.len()];
        }
        if self.cache_graphs[k].is_none() {
            // The block file's initializers are the weight references (external data in the
            // folder's weight file) the cache graphs read, rotary tables included.
            let proto = graph::read_model(&self.blocks[k])?;
            let table: WeightTable = proto.graph.iter().flat_map(|g| &g.initializer).map(|t| (t.name().to_string(), t.clone())).collect();
            let encode = |with_past| cached_block_part(&self.spec, &table, k, with_past).encode_to_vec();
            self.cache_graphs[k] = Some([encode(false), encode(true)]);
        }
        let prefix = format!("blk.{k}.");
        let overrides: Vec<WeightOverride> = self.overrides.iter().filter(|o| o.name.starts_with(&prefix)).cloned().collect();
        let shared = SharedWeights::new(&self.opts)?;
        let [p, c] = self.cache_graphs[k].as_ref().expect("encoded above");
        let load = |bytes: &[u8], kind: &str| {
            let label = format!("{} ({kind} with key/value cache)", self.blocks[k].display());
            Graph::load_sharing(GraphSource::Memory { bytes, folder: &self.dir, label: &label }, &self.opts, &overrides, Some(&shared))
        };
        let prefix = if which == BlockGraphs::Continuation { None } else { Some(load(p, "prefix")?) };
        let continuation = if which == BlockGraphs::Prefix { None } else { Some(load(c, "continuation")?) };
        self.loads += 1;
        Ok(CachedBlock { prefix, continuation, block: k })
    }

    /// The embedding of every batch `(ids, shape)`.
    pub fn embed(&mut self, batches: Vec<(Vec<i64>, Vec<usize>)>) -> Result<Vec<Value>, ScorerError> {
        let embed_path = self.embed.clone();
        let mut embed = self.load(&embed_path, |n| EMBED_WEIGHTS.contains(&n))?;
        let mut hidden = Vec::with_capacity(batches.len());
        for (ids, shape) in batches {
            hidden.extend(embed.run_keep_with(vec![("input_ids", Input::I64 { shape, data: ids })], &["hidden"], Arena::Release)?);
        }
        Ok(hidden)
    }

    /// The output layer, with its overrides.
    pub fn load_head(&mut self) -> Result<Graph, ScorerError> {
        let head_path = self.head.clone();
        Ok(self.load(&head_path, |n| HEAD_WEIGHTS.contains(&n))?)
    }

    /// Whether the output layer runs in vocabulary slices ([`StreamedGraphs::head_rows`]).
    pub fn sliced_head(&self) -> bool {
        self.head_slices > 1
    }

    /// The output layer in slices over `n` rows (`row(i, x)` appends row i's hidden state),
    /// each slice's session loaded once: `(log p(target), argmax)` per row.
    pub fn head_rows(
        &mut self,
        row: impl Fn(usize, &mut Vec<f32>),
        targets: &[u32],
        with_greedy: bool,
    ) -> Result<(Vec<f32>, Vec<u32>), ScorerError> {
        let (slices, d) = (self.head_slices, self.d_model);
        head::run_sliced(slices, |s| self.load_head_slice(s), d, row, targets, with_greedy)
    }

    /// Slice `s` of [`StreamedGraphs::head_slices`] of the output layer: its session, reading
    /// only that slice's rows of the output matrix from the weight file, and its tokens.
    fn load_head_slice(&mut self, s: usize) -> Result<(Graph, Range<usize>), ScorerError> {
        if self.head_weights.is_none() {
            let proto = graph::read_model(&self.head)?;
            self.head_weights = Some(proto.graph.iter().flat_map(|g| &g.initializer).map(|t| (t.name().to_string(), t.clone())).collect());
        }
        let table = self.head_weights.as_ref().expect("read above");
        let matrix = if self.spec.tied_output { "token_embd.weight" } else { "output.weight" };
        let vocab = self.spec.vocab_size;
        let per = vocab.div_ceil(self.head_slices);
        let tokens = (s * per).min(vocab)..((s + 1) * per).min(vocab);
        let unusable = |reason: String| {
            ScorerError::Model(crate::model::ModelError::Unusable {
                path: self.head.clone(),
                reason: format!("{reason}; re-import the model with `polyprune model import`, or give a larger --max-memory"),
            })
        };
        let whole = table.get(matrix).ok_or_else(|| unusable(format!("the output layer's graph has no initializer {matrix}")))?;
        let sliced = slice_rows(whole, tokens.clone(), self.d_model).ok_or_else(|| {
            unusable(format!("{matrix} is not a [{vocab}, {}] matrix in the weight file, so it cannot be read in slices", self.d_model))
        })?;
        let mut weights = table.clone();
        weights.insert(matrix.to_string(), sliced);
        let bytes = head_slice_model(&self.spec, &weights).encode_to_vec();
        let mut overrides = Vec::new();
        for o in self.overrides.iter().filter(|o| HEAD_WEIGHTS.contains(&o.name.as_str())) {
            if o.name != matrix {
                overrides.push(o.clone());
                continue;
            }
            let values = o.values().map_err(|e| unusable(e.to_string()))?;
            let part = values[tokens.start * self.d_model..tokens.end * self.d_model].to_vec();
            overrides.push(WeightOverride::new(matrix, vec![tokens.len(), self.d_model], part, o.stored));
        }
        self.loads += 1;
        let label = format!("{} (vocabulary slice {} of {})", self.head.display(), s + 1, self.head_slices);
        let graph = Graph::load(GraphSource::Memory { bytes: &bytes, folder: &self.dir, label: &label }, &self.opts, &overrides)?;
        Ok((graph, tokens))
    }

    /// The last block's output for every batch `(ids, shape)`, one part resident at a time.
    fn hidden(&mut self, batches: Vec<(Vec<i64>, Vec<usize>)>) -> Result<Vec<Value>, ScorerError> {
        let mut hidden = self.embed(batches)?;
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
    /// position.
    pub fn score(&mut self, seqs: &[&[u32]], batches: &[Vec<usize>], with_greedy: bool) -> Result<Vec<ScoredSequence>, ScorerError> {
        let widths: Vec<usize> = batches.iter().map(|b| b.iter().map(|&i| seqs[i].len()).max().unwrap_or(1)).collect();
        let inputs = batches.iter().zip(&widths).map(|(b, &w)| pad_right(&b.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), w)).collect();
        let hidden = self.hidden(inputs)?;
        if self.sliced_head() {
            return self.score_sliced(seqs, batches, &widths, &hidden, with_greedy);
        }
        let mut head = self.load_head()?;
        let mut out = vec![ScoredSequence::default(); seqs.len()];
        for ((batch, h), &width) in batches.iter().zip(&hidden).zip(&widths) {
            let (rows, targets): (Vec<usize>, Vec<u32>) = next_token_rows(seqs, batch, width).unzip();
            let (lp, am) = head::run_head(&mut head, f32_of(h), self.d_model, &rows, &targets, with_greedy, Arena::Keep)?;
            hand_out(seqs, batch, &lp, &am, with_greedy, &mut out);
        }
        Ok(out)
    }

    /// [`StreamedGraphs::score`]'s output layer in vocabulary slices, over the rows of every
    /// batch at once.
    fn score_sliced(
        &mut self,
        seqs: &[&[u32]],
        batches: &[Vec<usize>],
        widths: &[usize],
        hidden: &[Value],
        with_greedy: bool,
    ) -> Result<Vec<ScoredSequence>, ScorerError> {
        let (rows, targets): (Vec<(usize, usize)>, Vec<u32>) = batches
            .iter()
            .zip(widths)
            .enumerate()
            .flat_map(|(k, (batch, &width))| next_token_rows(seqs, batch, width).map(move |(row, t)| ((k, row), t)))
            .unzip();
        let d = self.d_model;
        let states: Vec<&[f32]> = hidden.iter().map(f32_of).collect();
        let (lp, am) =
            self.head_rows(|i, x| x.extend_from_slice(&states[rows[i].0][rows[i].1 * d..(rows[i].1 + 1) * d]), &targets, with_greedy)?;
        let mut out = vec![ScoredSequence::default(); seqs.len()];
        let order: Vec<usize> = batches.iter().flatten().copied().collect();
        hand_out(seqs, &order, &lp, &am, with_greedy, &mut out);
        Ok(out)
    }
}

/// Every scored row of `batch` (sequences right-padded to `width`): `(row, next token)`,
/// sequence by sequence.
fn next_token_rows<'a>(seqs: &'a [&[u32]], batch: &'a [usize], width: usize) -> impl Iterator<Item = (usize, u32)> + 'a {
    batch.iter().enumerate().flat_map(move |(b, &i)| {
        let s = seqs[i];
        (0..s.len() - 1).map(move |t| (b * width + t, s[t + 1]))
    })
}

/// Gives each sequence of `order`, in turn, its run of the head's results.
fn hand_out(seqs: &[&[u32]], order: &[usize], lp: &[f32], am: &[u32], with_greedy: bool, out: &mut [ScoredSequence]) {
    let mut at = 0;
    for &i in order {
        let n = seqs[i].len() - 1;
        out[i] =
            ScoredSequence { logprobs: lp[at..at + n].to_vec(), greedy: if with_greedy { am[at..at + n].to_vec() } else { Vec::new() } };
        at += n;
    }
}

/// Rows `tokens` of the `[vocab, d]` external-data matrix `t`: the same file, its offset moved
/// to the first row and its length cut to the rows (row-major, so a row range is one span).
/// `None` when `t` is not such a matrix.
fn slice_rows(t: &TensorProto, tokens: Range<usize>, d: usize) -> Option<TensorProto> {
    let width = crate::model::onnx::data_type::element_size(t.data_type?)?;
    if !t.is_external() || t.dims.len() != 2 || t.dims[1] != d as i64 || (t.dims[0] as usize) < tokens.end {
        return None;
    }
    let offset: u64 = t.external_entry("offset").map_or(Some(0), |v| v.parse().ok())?;
    let row_bytes = (d * width) as u64;
    let mut sliced = t.clone();
    sliced.dims[0] = tokens.len() as i64;
    let location = t.external_entry("location")?.to_string();
    sliced.external_data = vec![
        StringStringEntryProto::new("location", location),
        StringStringEntryProto::new("offset", (offset + tokens.start as u64 * row_bytes).to_string()),
        StringStringEntryProto::new("length", (tokens.len() as u64 * row_bytes).to_string()),
    ];
    Some(sliced)
}
