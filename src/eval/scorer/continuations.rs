//! Continuations scored against shared contexts: each context runs once, and the continuations
//! of many contexts run together on their caches.
//!
//! One round: contexts of similar length run as one right-padded prefix batch, which returns
//! their key/value caches (kept inside the runtime) and their hidden states; the state at a
//! context's last position predicts the first token of each of its continuations. The
//! continuations of two or more tokens then run their other tokens as rows of continuation
//! batches (`past_rows` says which context row a row continues, `key_positions` hides the padding
//! of shorter contexts and rows). A one-token continuation (most SIB-200 topics, many answer
//! words) needs no run of its own. The rows whose next token is scored queue for the output layer
//! ([`super::head::HeadQueue`]), which runs on full chunks across batches.

use super::head::HeadQueue;
use super::streamed::{BlockGraphs, PastIndex, StreamedGraphs};
use super::{pad_right, CachedGraphs, Cost, Engine, ScoredSequence, Scorer, ScorerError};
use crate::runtime::{Arena, Input};

/// Keys (rows x (past + new positions)) per continuation run. Bounds the past gathered for the
/// batch inside the runtime and the grown keys and values the graph writes: 1 KiB per key and
/// block on Gemma 3 270M (k and v, 256 floats each), 1 MiB per block and tensor at this bound.
/// At 4096 the SIB-200 run of 40 English examples peaked 0.3 GB higher (2.59 GB against 2.29).
pub const CONTINUATION_KEYS: usize = 1024;

/// Keys (contexts x width) per prefix batch of contexts, whatever `batch_tokens` allows: the
/// batch's keys and values stay alive while its continuations run, 36 KiB per key on Gemma 3
/// 270M (18 blocks), 72 MiB at this bound. With `--batch-tokens 8192` and no such bound the
/// SIB-200 test set peaked 0.25 GB higher than at 2048.
pub const CONTEXT_KEYS: usize = 2048;

/// The continuations of one context, for [`Scorer::score_continuation_groups`].
pub struct ContinuationGroup<'a> {
    pub context: &'a [u32],
    pub rests: Vec<&'a [u32]>,
}

/// Where a queued head row's result goes: group, continuation, token.
type Slot = (usize, usize, usize);

impl Scorer {
    /// Scores several continuations of one context: `out[c].logprobs[j] = log p(rest_c[j] |
    /// context ++ rest_c[..j])` and `out[c].greedy[j]` the argmax there. Returns the work done,
    /// counting the context once.
    pub fn score_continuations(&mut self, context: &[u32], rests: &[&[u32]]) -> Result<(Vec<ScoredSequence>, Cost), ScorerError> {
        let (mut out, cost) = self.score_continuation_groups(&[ContinuationGroup { context, rests: rests.to_vec() }])?;
        Ok((out.pop().expect("one group in, one out"), cost))
    }

    /// [`Scorer::score_continuations`] for many contexts at once: `out[g][c]` for continuation c
    /// of group g. On the cached and streamed paths the contexts run in right-padded batches
    /// and the continuations of a whole batch of contexts run together (module documentation);
    /// groups whose context is a lone start token, and models without cache graphs, run each
    /// (context + continuation) whole.
    pub fn score_continuation_groups(&mut self, groups: &[ContinuationGroup]) -> Result<(Vec<Vec<ScoredSequence>>, Cost), ScorerError> {
        let mut out: Vec<Vec<ScoredSequence>> = groups.iter().map(|g| vec![ScoredSequence::default(); g.rests.len()]).collect();
        let cached = matches!(self.engine, Engine::Cached(_) | Engine::Streamed(_));
        let (shared, whole): (Vec<usize>, Vec<usize>) = (0..groups.len()).partition(|&g| cached && groups[g].context.len() >= 2);
        let mut cost = self.score_whole(groups, &whole, &mut out)?;
        if !shared.is_empty() {
            let batch_tokens = self.call_tokens();
            let c = match &mut self.engine {
                Engine::Cached(g) => score_shared(g, groups, shared, batch_tokens, &mut out)?,
                Engine::Streamed(g) => score_shared_streamed(g, groups, shared, batch_tokens, &mut out)?,
                Engine::Full(_) => unreachable!("checked above"),
            };
            cost.runs += c.runs;
            cost.tokens += c.tokens;
        }
        Ok((out, cost))
    }

    /// The groups in `which`, each continuation as one whole sequence.
    fn score_whole(&mut self, groups: &[ContinuationGroup], which: &[usize], out: &mut [Vec<ScoredSequence>]) -> Result<Cost, ScorerError> {
        let mut wholes = Vec::new();
        let mut slots = Vec::new();
        for &g in which {
            for (c, r) in groups[g].rests.iter().enumerate() {
                wholes.push([groups[g].context, r].concat());
                slots.push((g, c, r.len()));
            }
        }
        if wholes.is_empty() {
            return Ok(Cost::default());
        }
        let refs: Vec<&[u32]> = wholes.iter().map(|w| w.as_slice()).collect();
        let scored = self.token_logprobs_and_greedy(&refs)?;
        for (s, (g, c, len)) in scored.into_iter().zip(slots) {
            let from = s.logprobs.len().saturating_sub(len);
            out[g][c] = ScoredSequence { logprobs: s.logprobs[from..].to_vec(), greedy: s.greedy[from..].to_vec() };
        }
        Ok(Cost { runs: 1, tokens: wholes.iter().filter(|w| w.len() >= 2).map(|w| w.len()).sum() })
    }
}

/// Continuation rows of one batch: `(context row, group, continuation)`.
type Rows = Vec<(usize, usize, usize)>;

/// One right-padded batch of contexts and the continuation batches that run on its cache.
struct ContextBatch {
    /// Group indices, longest context first (it sets `width`).
    groups: Vec<usize>,
    width: usize,
    /// Continuation batches, longest first: their rows and `t`, the tokens each row feeds.
    chunks: Vec<(Rows, usize)>,
}

/// How the groups in `shared` (contexts of at least two tokens) are batched: contexts of
/// similar length together, bounded by `batch_tokens` and [`CONTEXT_KEYS`]; each batch's
/// continuations of two or more tokens in batches bounded by `batch_tokens` and
/// [`CONTINUATION_KEYS`]. The cached and streamed paths share it, so they run the same batches.
fn plan_shared(groups: &[ContinuationGroup], mut shared: Vec<usize>, batch_tokens: usize) -> Vec<ContextBatch> {
    shared.sort_by_key(|&gi| std::cmp::Reverse(groups[gi].context.len()));
    let mut plan = Vec::new();
    let mut start = 0;
    while start < shared.len() {
        let width = groups[shared[start]].context.len();
        let batch = shared[start..(start + (batch_tokens.min(CONTEXT_KEYS) / width).max(1)).min(shared.len())].to_vec();
        start += batch.len();
        let mut rows: Rows = Vec::new();
        for (e, &gi) in batch.iter().enumerate() {
            rows.extend((0..groups[gi].rests.len()).filter(|&c| groups[gi].rests[c].len() >= 2).map(|c| (e, gi, c)));
        }
        rows.sort_by_key(|&(_, gi, c)| std::cmp::Reverse(groups[gi].rests[c].len()));
        let mut chunks = Vec::new();
        let mut s = 0;
        while s < rows.len() {
            let (_, gi, c) = rows[s];
            let t = groups[gi].rests[c].len() - 1;
            let fit = (batch_tokens / t).min(CONTINUATION_KEYS / (width + t)).max(1);
            let chunk = rows[s..(s + fit).min(rows.len())].to_vec();
            s += chunk.len();
            chunks.push((chunk, t));
        }
        plan.push(ContextBatch { groups: batch, width, chunks });
    }
    plan
}

/// Marks every continuation of `shared` unscored (NaN), so a row the head never reached shows.
fn unscored(groups: &[ContinuationGroup], shared: &[usize], out: &mut [Vec<ScoredSequence>]) {
    for &gi in shared {
        for (c, r) in groups[gi].rests.iter().enumerate() {
            out[gi][c] = ScoredSequence { logprobs: vec![f32::NAN; r.len()], greedy: vec![u32::MAX; r.len()] };
        }
    }
}

/// Queues a context batch's last positions (`hidden` `[contexts, width, d]`): each predicts
/// the first token of each of its context's continuations.
fn push_context_rows(head: &mut HeadQueue<Slot>, groups: &[ContinuationGroup], batch: &ContextBatch, hidden: &[f32], d: usize) {
    for (e, &gi) in batch.groups.iter().enumerate() {
        let at = (e * batch.width + groups[gi].context.len() - 1) * d;
        for (c, rest) in groups[gi].rests.iter().enumerate() {
            if let Some(&first) = rest.first() {
                head.push(&hidden[at..at + d], first, (gi, c, 0));
            }
        }
    }
}

/// Queues a continuation batch's rows (`hidden` `[rows, t, d]`): row b's position j predicts
/// its continuation's token j + 1.
fn push_continuation_rows(
    head: &mut HeadQueue<Slot>,
    groups: &[ContinuationGroup],
    chunk: &[(usize, usize, usize)],
    t: usize,
    hidden: &[f32],
    d: usize,
) {
    for (b, &(_, gi, c)) in chunk.iter().enumerate() {
        for (j, &target) in groups[gi].rests[c].iter().enumerate().skip(1) {
            let at = (b * t + j - 1) * d;
            head.push(&hidden[at..at + d], target, (gi, c, j));
        }
    }
}

/// The cached path for `shared` (groups whose context has at least two tokens).
fn score_shared(
    g: &mut CachedGraphs,
    groups: &[ContinuationGroup],
    shared: Vec<usize>,
    batch_tokens: usize,
    out: &mut [Vec<ScoredSequence>],
) -> Result<Cost, ScorerError> {
    unscored(groups, &shared, out);
    let mut cost = Cost::default();
    let d = g.d_model;
    let mut head: HeadQueue<Slot> = HeadQueue::new(d);
    let mut put = |(gi, c, j): Slot, lp: f32, am: u32| {
        out[gi][c].logprobs[j] = lp;
        out[gi][c].greedy[j] = am;
    };
    for batch in plan_shared(groups, shared, batch_tokens) {
        let width = batch.width;
        let contexts: Vec<&[u32]> = batch.groups.iter().map(|&gi| groups[gi].context).collect();
        let (ids, shape) = pad_right(&contexts, width);
        let outputs = g.outputs_with_presents(Some("hidden"));
        let mut past =
            g.prefix.run_keep_with(vec![("input_ids", Input::I64 { shape, data: ids })], &super::refs(&outputs), Arena::Release)?;
        let hidden = past.remove(0);
        cost.runs += 1;
        cost.tokens += batch.groups.len() * width;
        push_context_rows(&mut head, groups, &batch, super::f32_of(&hidden), d);
        drop(hidden);
        head.drain(&mut g.head, false, &mut put)?;
        // Continuations of two or more tokens run on the cache for the rest, longest first.
        for (chunk, t) in &batch.chunks {
            let (ids, index) = chunk_inputs(groups, width, *t, chunk);
            let mut hidden = g.run_continuation(ids, vec![chunk.len(), *t], &past, index.past_rows, index.key_positions, &["hidden"])?;
            cost.runs += 1;
            cost.tokens += chunk.len() * t;
            push_continuation_rows(&mut head, groups, chunk, *t, super::f32_of(&hidden.remove(0)), d);
            head.drain(&mut g.head, false, &mut put)?;
        }
    }
    head.drain(&mut g.head, true, &mut put)?;
    Ok(cost)
}

/// The streamed path for `shared`: the batches of [`plan_shared`], every one passing block k
/// (contexts first, then each context batch's continuations on its block-k keys and values)
/// before block k+1 loads; then the output layer on the rows the cached path scores, in its
/// order (the same chunks of [`super::HEAD_ROWS`] rows).
fn score_shared_streamed(
    g: &mut StreamedGraphs,
    groups: &[ContinuationGroup],
    shared: Vec<usize>,
    batch_tokens: usize,
    out: &mut [Vec<ScoredSequence>],
) -> Result<Cost, ScorerError> {
    unscored(groups, &shared, out);
    let plan = plan_shared(groups, shared, batch_tokens);
    let mut cost = Cost::default();
    // Every batch's ids, context batch then its continuation batches, in plan order.
    let mut inputs = Vec::new();
    let mut indices = Vec::new();
    for batch in &plan {
        let contexts: Vec<&[u32]> = batch.groups.iter().map(|&gi| groups[gi].context).collect();
        inputs.push(pad_right(&contexts, batch.width));
        cost.runs += 1;
        cost.tokens += batch.groups.len() * batch.width;
        for (chunk, t) in &batch.chunks {
            let (ids, index) = chunk_inputs(groups, batch.width, *t, chunk);
            inputs.push((ids, vec![chunk.len(), *t]));
            indices.push(index);
            cost.runs += 1;
            cost.tokens += chunk.len() * t;
        }
    }
    let mut hidden = g.embed(inputs)?;
    for k in 0..g.blocks.len() {
        let mut block = g.load_cached_block(k, BlockGraphs::Both)?;
        let (mut at, mut chunk_at) = (0, 0);
        for batch in &plan {
            let [h, key, value] = block.prefix(&hidden[at])?;
            hidden[at] = h;
            at += 1;
            for _ in &batch.chunks {
                let out = block.continuation(&hidden[at], [&key, &value], &indices[chunk_at], false)?;
                hidden[at] = out.into_iter().next().expect("one output asked, one given");
                at += 1;
                chunk_at += 1;
            }
        }
    }
    let d = g.d_model;
    let mut put = |(gi, c, j): Slot, lp: f32, am: u32| {
        out[gi][c].logprobs[j] = lp;
        out[gi][c].greedy[j] = am;
    };
    if g.sliced_head() {
        // Every scored row queued first, so that each slice's session loads once.
        let mut head: HeadQueue<Slot> = HeadQueue::new(d);
        let mut states = hidden.iter();
        for batch in &plan {
            push_context_rows(&mut head, groups, batch, super::f32_of(states.next().expect("one state per batch")), d);
            for (chunk, t) in &batch.chunks {
                push_continuation_rows(&mut head, groups, chunk, *t, super::f32_of(states.next().expect("one state per batch")), d);
            }
        }
        drop(hidden);
        let (x, targets, slots) = head.take_all();
        let (lp, am) = g.head_rows(|i, row| row.extend_from_slice(&x[i * d..(i + 1) * d]), &targets, true)?;
        for ((slot, l), a) in slots.into_iter().zip(lp).zip(am) {
            put(slot, l, a);
        }
        return Ok(cost);
    }
    let mut head_graph = g.load_head()?;
    let mut head: HeadQueue<Slot> = HeadQueue::new(d);
    let mut states = hidden.iter();
    for batch in &plan {
        push_context_rows(&mut head, groups, batch, super::f32_of(states.next().expect("one state per batch")), d);
        head.drain(&mut head_graph, false, &mut put)?;
        for (chunk, t) in &batch.chunks {
            push_continuation_rows(&mut head, groups, chunk, *t, super::f32_of(states.next().expect("one state per batch")), d);
            head.drain(&mut head_graph, false, &mut put)?;
        }
    }
    head.drain(&mut head_graph, true, &mut put)?;
    Ok(cost)
}

/// One continuation batch's inputs: `chunk` rows `(context row, group, continuation)`, each
/// feeding all of its continuation's tokens but the last (at most `t`, ids `[rows, t]`),
/// against the context batch's cache (context rows right-padded to `width`).
fn chunk_inputs(groups: &[ContinuationGroup], width: usize, t: usize, chunk: &[(usize, usize, usize)]) -> (Vec<i64>, PastIndex) {
    let n = chunk.len();
    let mut ids = vec![0i64; n * t];
    let mut past_rows = Vec::with_capacity(n);
    let mut key_positions = vec![-1i64; n * (width + t)];
    for (b, &(e, gi, c)) in chunk.iter().enumerate() {
        let (context, rest) = (groups[gi].context, groups[gi].rests[c]);
        let (known, fed) = (context.len(), &rest[..rest.len() - 1]);
        for (j, &tok) in fed.iter().enumerate() {
            ids[b * t + j] = tok as i64;
        }
        past_rows.push(e as i64);
        let kp = &mut key_positions[b * (width + t)..(b + 1) * (width + t)];
        for (p, slot) in kp[..known].iter_mut().enumerate() {
            *slot = p as i64;
        }
        for (j, slot) in kp[width..width + fed.len()].iter_mut().enumerate() {
            *slot = (known + j) as i64;
        }
    }
    (ids, PastIndex { past_rows, key_positions })
}
