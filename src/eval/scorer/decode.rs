//! Greedy decoding of many sequences at once, with a key/value cache.
//!
//! The prompts run once as a right-padded batch; every later step feeds each row only the token
//! appended since, against the batch's cache. Rows keep their padding columns (hidden by
//! `key_positions`, -1 there), so rows of different lengths decode together, and rows dropped by
//! the caller ([`DecodeBatch::retain`]) leave the batch at the next step (`past_rows` picks the
//! rows still decoding).

use super::streamed::{BlockGraphs, PastIndex, StreamedGraphs};
use super::{Cost, Engine, Scorer, ScorerError};
use crate::runtime::{Arena, Input, Value};

/// Sequences being decoded together; see the module documentation.
pub struct DecodeBatch {
    /// Every row's tokens so far, prompt first.
    rows: Vec<Vec<u32>>,
    cache: Option<BatchCache>,
}

/// The cache of a [`DecodeBatch`]: it covers every row's tokens but the last.
struct BatchCache {
    /// Every block's keys and values `[R, kv, width, hd]`, in the continuation graph's order.
    values: Vec<Value>,
    /// `width` absolute positions per cache row, -1 for padding.
    key_positions: Vec<i64>,
    width: usize,
    /// The cache row of each batch row.
    cache_row: Vec<usize>,
}

impl DecodeBatch {
    pub fn new(prompts: Vec<Vec<u32>>) -> Self {
        DecodeBatch { rows: prompts, cache: None }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i`'s tokens so far.
    pub fn ids(&self, i: usize) -> &[u32] {
        &self.rows[i]
    }

    /// Keeps the rows for which `keep[i]` holds, in order.
    pub fn retain(&mut self, keep: &[bool]) {
        let mut k = keep.iter();
        self.rows.retain(|_| *k.next().expect("one flag per row"));
        if let Some(cache) = &mut self.cache {
            let mut k = keep.iter();
            cache.cache_row.retain(|_| *k.next().expect("one flag per row"));
        }
    }
}

impl Scorer {
    /// One greedy step: appends to every row of `batch` its argmax next token and returns those
    /// tokens. On the cached path the first step runs the prompts and each later step one token
    /// per row, so generating T tokens costs O(T) positions per row; the streamed path does the
    /// same one block at a time (every step loads every block once); on the full-sequence path
    /// the whole sequences run again, batched by length.
    pub fn greedy_step(&mut self, batch: &mut DecodeBatch) -> Result<(Vec<u32>, Cost), ScorerError> {
        if batch.is_empty() {
            return Ok((Vec::new(), Cost::default()));
        }
        let (next, cost) = if matches!(self.engine, Engine::Full(_)) {
            self.greedy_step_whole(batch)?
        } else if let Engine::Streamed(g) = &mut self.engine {
            streamed_step(g, batch)?
        } else {
            let Engine::Cached(g) = &mut self.engine else { unreachable!("checked above") };
            let (hidden, rows, cost) = match batch.cache.take() {
                None => first_step(g, batch)?,
                Some(cache) => later_step(g, batch, cache)?,
            };
            let zeros = vec![0; rows.len()];
            let (_, am) = super::head::run_head(&mut g.head, super::f32_of(&hidden), g.d_model, &rows, &zeros, true, Arena::Release)?;
            (am, cost)
        };
        for (row, &t) in batch.rows.iter_mut().zip(&next) {
            row.push(t);
        }
        Ok((next, cost))
    }

    fn greedy_step_whole(&mut self, batch: &DecodeBatch) -> Result<(Vec<u32>, Cost), ScorerError> {
        let mut cost = Cost::default();
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(batch.rows[i].len()));
        let mut next = vec![0u32; batch.len()];
        let mut start = 0;
        while start < order.len() {
            let width = batch.rows[order[start]].len();
            let chunk: Vec<usize> = order[start..(start + (self.call_tokens() / width).max(1)).min(order.len())].to_vec();
            start += chunk.len();
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| batch.rows[i].as_slice()).collect();
            let tokens = self.greedy_next_whole(&seqs)?;
            cost.runs += 1;
            cost.tokens += chunk.len() * width;
            for (i, t) in chunk.into_iter().zip(tokens) {
                next[i] = t;
            }
        }
        Ok((next, cost))
    }
}

/// The prompts as one right-padded batch through the prefix graph; returns `hidden`
/// `[R, width, d]` with each row's last real position, and leaves the cache in `batch`.
fn first_step(g: &mut super::CachedGraphs, batch: &mut DecodeBatch) -> Result<(Value, Vec<usize>, Cost), ScorerError> {
    let width = batch.rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let seqs: Vec<&[u32]> = batch.rows.iter().map(|r| r.as_slice()).collect();
    let (ids, shape) = super::pad_right(&seqs, width);
    let outputs = g.outputs_with_presents(Some("hidden"));
    let mut values =
        g.prefix.run_keep_with(vec![("input_ids", Input::I64 { shape, data: ids })], &super::refs(&outputs), Arena::Release)?;
    let hidden = values.remove(0);
    let (key_positions, last) = prompt_positions(batch, width);
    let cost = Cost { runs: 1, tokens: batch.len() * width };
    batch.cache = Some(BatchCache { values, key_positions, width, cache_row: (0..batch.len()).collect() });
    Ok((hidden, last, cost))
}

/// The prompts' key positions (right-padded to `width`, -1 for padding) and each row's last
/// real position in the flat `[R * width]` hidden states.
fn prompt_positions(batch: &DecodeBatch, width: usize) -> (Vec<i64>, Vec<usize>) {
    let mut key_positions = vec![-1i64; batch.len() * width];
    for (i, r) in batch.rows.iter().enumerate() {
        for (p, slot) in key_positions[i * width..i * width + r.len()].iter_mut().enumerate() {
            *slot = p as i64;
        }
    }
    let last = batch.rows.iter().enumerate().map(|(i, r)| i * width + r.len() - 1).collect();
    (key_positions, last)
}

/// A later step's inputs: each row's last token `[R]`, and which cache row it continues with
/// every key's position (the cached ones, then the new token's).
fn step_inputs(batch: &DecodeBatch, cache: &BatchCache) -> (Vec<i64>, PastIndex) {
    let (n, w) = (batch.len(), cache.width);
    let ids: Vec<i64> = batch.rows.iter().map(|r| *r.last().expect("rows are never empty") as i64).collect();
    let past_rows: Vec<i64> = cache.cache_row.iter().map(|&c| c as i64).collect();
    let mut key_positions = Vec::with_capacity(n * (w + 1));
    for (r, &c) in batch.rows.iter().zip(&cache.cache_row) {
        key_positions.extend_from_slice(&cache.key_positions[c * w..(c + 1) * w]);
        key_positions.push(r.len() as i64 - 1);
    }
    (ids, PastIndex { past_rows, key_positions })
}

/// Each row's last token against the cache; returns `hidden` `[R, 1, d]` (row i's position is
/// row i) and leaves the grown cache (rows in batch order) in `batch`.
fn later_step(g: &mut super::CachedGraphs, batch: &mut DecodeBatch, cache: BatchCache) -> Result<(Value, Vec<usize>, Cost), ScorerError> {
    let (n, w) = (batch.len(), cache.width);
    let (ids, index) = step_inputs(batch, &cache);
    let outputs = g.outputs_with_presents(Some("hidden"));
    let mut values =
        g.run_continuation(ids, vec![n, 1], &cache.values, index.past_rows, index.key_positions.clone(), &super::refs(&outputs))?;
    let hidden = values.remove(0);
    batch.cache = Some(BatchCache { values, key_positions: index.key_positions, width: w + 1, cache_row: (0..n).collect() });
    Ok((hidden, (0..n).collect(), Cost { runs: 1, tokens: n }))
}

/// One greedy step on the streamed path: the prompts (first step) or each row's last token
/// (later steps) pass block k, against block k's cache, before block k+1 loads; every block's
/// keys and values stay in `batch` for the next step. The same inputs as the cached path's
/// steps, block by block.
fn streamed_step(g: &mut StreamedGraphs, batch: &mut DecodeBatch) -> Result<(Vec<u32>, Cost), ScorerError> {
    let cache = batch.cache.take();
    let n = batch.len();
    let (input, index, rows, key_positions, width, cost) = match &cache {
        None => {
            let width = batch.rows.iter().map(|r| r.len()).max().unwrap_or(1);
            let seqs: Vec<&[u32]> = batch.rows.iter().map(|r| r.as_slice()).collect();
            let (key_positions, last) = prompt_positions(batch, width);
            (super::pad_right(&seqs, width), None, last, key_positions, width, Cost { runs: 1, tokens: n * width })
        }
        Some(c) => {
            let (ids, index) = step_inputs(batch, c);
            let key_positions = index.key_positions.clone();
            ((ids, vec![n, 1]), Some(index), (0..n).collect(), key_positions, c.width + 1, Cost { runs: 1, tokens: n })
        }
    };
    let mut hidden = g.embed(vec![input])?.pop().expect("one batch in, one out");
    let mut values = Vec::with_capacity(2 * g.blocks.len());
    for k in 0..g.blocks.len() {
        let out: Vec<Value> = match (&cache, &index) {
            (Some(c), Some(index)) => {
                let mut block = g.load_cached_block(k, BlockGraphs::Continuation)?;
                block.continuation(&hidden, [&c.values[2 * k], &c.values[2 * k + 1]], index, true)?
            }
            _ => g.load_cached_block(k, BlockGraphs::Prefix)?.prefix(&hidden)?.into(),
        };
        let mut out = out.into_iter();
        hidden = out.next().expect("the block's output first");
        values.extend(out);
    }
    drop(cache);
    let zeros = vec![0; rows.len()];
    let next = if g.sliced_head() {
        let (state, d) = (super::f32_of(&hidden), g.d_model);
        g.head_rows(|i, x| x.extend_from_slice(&state[rows[i] * d..(rows[i] + 1) * d]), &zeros, true)?.1
    } else {
        let mut head = g.load_head()?;
        super::head::run_head(&mut head, super::f32_of(&hidden), g.d_model, &rows, &zeros, true, Arena::Release)?.1
    };
    batch.cache = Some(BatchCache { values, key_positions, width, cache_row: (0..n).collect() });
    Ok((next, cost))
}
