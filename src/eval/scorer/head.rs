//! The output layer on the rows a caller scores, [`HEAD_ROWS`] rows per run.
//!
//! Every run of the head reads the whole `vocab x d` output matrix (0.67 GB on Gemma 3 270M),
//! so a run with few rows costs about as much as a full one: [`HeadQueue`] collects scored rows
//! from many body runs (the continuations of many examples) and runs the head on full chunks.

use super::{ScorerError, HEAD_ROWS};
use crate::runtime::{Arena, Graph, Input, OutputView};

/// One chunk of rows through the head: `(log p(target), argmax)` per row.
fn run_chunk(
    head: &mut Graph,
    x: &[f32],
    d: usize,
    targets: &[i64],
    with_greedy: bool,
    arena: Arena,
) -> Result<(Vec<f32>, Vec<u32>), ScorerError> {
    let rows = targets.len();
    let outputs: &[&str] = if with_greedy { &["target_logprobs", "argmax"] } else { &["target_logprobs"] };
    let inputs = vec![
        ("hidden", Input::F32 { shape: vec![rows, d], data: x }),
        ("targets", Input::I64 { shape: vec![rows], data: targets.to_vec() }),
    ];
    let values = head.run_keep_with(inputs, outputs, arena)?;
    let lp = match values[0].view() {
        Some(OutputView::F32(v)) => v.to_vec(),
        _ => Vec::new(),
    };
    let am = match values.get(1).and_then(|v| v.view()) {
        Some(OutputView::I64(v)) => v.iter().map(|&t| t as u32).collect(),
        _ => Vec::new(),
    };
    Ok((lp, am))
}

/// The output layer on chosen rows of `hidden` (`[rows, d]` flat): the log-probability of each
/// row's target and, when asked, the argmax.
pub(super) fn run_head(
    head: &mut Graph,
    hidden: &[f32],
    d: usize,
    rows: &[usize],
    targets: &[u32],
    with_greedy: bool,
    arena: Arena,
) -> Result<(Vec<f32>, Vec<u32>), ScorerError> {
    let mut lp = Vec::with_capacity(rows.len());
    let mut am = Vec::with_capacity(if with_greedy { rows.len() } else { 0 });
    let mut x = Vec::with_capacity(HEAD_ROWS.min(rows.len()) * d);
    for (chunk, tchunk) in rows.chunks(HEAD_ROWS).zip(targets.chunks(HEAD_ROWS)) {
        x.clear();
        for &r in chunk {
            x.extend_from_slice(&hidden[r * d..(r + 1) * d]);
        }
        let t: Vec<i64> = tchunk.iter().map(|&t| t as i64).collect();
        // Only a call's last chunk can be short; the full ones keep the arena's regions.
        let last = chunk.len() < HEAD_ROWS;
        let (l, a) = run_chunk(head, &x, d, &t, with_greedy, if last { arena } else { Arena::Keep })?;
        lp.extend(l);
        am.extend(a);
    }
    Ok((lp, am))
}

/// Scored rows waiting for the head, each with where its result goes (`S`).
pub(super) struct HeadQueue<S> {
    d: usize,
    x: Vec<f32>,
    targets: Vec<i64>,
    slots: Vec<S>,
    /// Head runs done, for the callers' counters.
    pub runs: usize,
}

impl<S> HeadQueue<S> {
    pub fn new(d: usize) -> Self {
        HeadQueue { d, x: Vec::new(), targets: Vec::new(), slots: Vec::new(), runs: 0 }
    }

    /// Queues one hidden row (`d` floats) to be scored against `target`.
    pub fn push(&mut self, row: &[f32], target: u32, slot: S) {
        debug_assert_eq!(row.len(), self.d);
        self.x.extend_from_slice(row);
        self.targets.push(target as i64);
        self.slots.push(slot);
    }

    /// Every queued row, `(hidden rows [n, d] flat, targets, slots)`, leaving the queue empty
    /// (for a head run over all rows at once: the sliced head).
    pub fn take_all(&mut self) -> (Vec<f32>, Vec<u32>, Vec<S>) {
        let targets = self.targets.drain(..).map(|t| t as u32).collect();
        (std::mem::take(&mut self.x), targets, std::mem::take(&mut self.slots))
    }

    /// Runs the head on every full chunk queued (all queued rows when `all`), giving each row's
    /// `(slot, log p(target), argmax)` to `put`.
    pub fn drain(&mut self, head: &mut Graph, all: bool, mut put: impl FnMut(S, f32, u32)) -> Result<(), ScorerError> {
        while self.slots.len() >= HEAD_ROWS || (all && !self.slots.is_empty()) {
            let n = self.slots.len().min(HEAD_ROWS);
            // Between these runs the other graphs of the choice path run with changing shapes;
            // keeping the head's regions too cost 0.27 GB of peak on the SIB-200 test set.
            let (lp, am) = run_chunk(head, &self.x[..n * self.d], self.d, &self.targets[..n], true, Arena::Release)?;
            self.runs += 1;
            for ((slot, l), a) in self.slots.drain(..n).zip(lp).zip(am) {
                put(slot, l, a);
            }
            self.x.drain(..n * self.d);
            self.targets.drain(..n);
        }
        Ok(())
    }
}

/// One vocabulary slice's results for a chunk of rows (see `decoder::head_slice_model`).
struct SliceChunk {
    logsumexp: Vec<f32>,
    max: Vec<f32>,
    argmax: Vec<i64>,
    target_logits: Vec<f32>,
}

fn run_slice_chunk(head: &mut Graph, x: &[f32], d: usize, targets: Vec<i64>) -> Result<SliceChunk, ScorerError> {
    let rows = targets.len();
    // As in `run_head`: only a short (last) chunk gives its regions back.
    let arena = if rows < HEAD_ROWS { Arena::Release } else { Arena::Keep };
    let inputs =
        vec![("hidden", Input::F32 { shape: vec![rows, d], data: x }), ("targets", Input::I64 { shape: vec![rows], data: targets })];
    let values = head.run_keep_with(inputs, &["slice_logsumexp", "slice_max", "slice_argmax", "target_logits"], arena)?;
    let f32s = |i: usize| match values[i].view() {
        Some(OutputView::F32(v)) => v.to_vec(),
        _ => Vec::new(),
    };
    let argmax = match values[2].view() {
        Some(OutputView::I64(v)) => v.to_vec(),
        _ => Vec::new(),
    };
    Ok(SliceChunk { logsumexp: f32s(0), max: f32s(1), argmax, target_logits: f32s(3) })
}

/// What the slices run so far say of one row: the running log-sum-exp as `(max, sum of
/// exp(l - max))` in f64, the largest logit and its token, and the target's logit.
#[derive(Clone, Copy)]
struct RowSoFar {
    lse_max: f64,
    lse_sum: f64,
    best: f32,
    best_token: u32,
    target_logit: f32,
}

impl RowSoFar {
    const EMPTY: RowSoFar =
        RowSoFar { lse_max: f64::NEG_INFINITY, lse_sum: 0.0, best: f32::NEG_INFINITY, best_token: 0, target_logit: f32::NAN };

    fn add_logsumexp(&mut self, lse: f64) {
        if lse > self.lse_max {
            self.lse_sum = self.lse_sum * (self.lse_max - lse).exp() + 1.0;
            self.lse_max = lse;
        } else {
            self.lse_sum += (lse - self.lse_max).exp();
        }
    }

    fn log_prob(&self) -> f32 {
        (self.target_logit as f64 - (self.lse_max + self.lse_sum.ln())) as f32
    }
}

/// The output layer run as vocabulary slices, for a head whose whole matrix does not fit the
/// memory budget: each slice's session is loaded once (`load(s)` gives it and its first
/// token) and runs every row in chunks of [`HEAD_ROWS`]; `row(i, x)` appends row i's hidden
/// state to `x`. A row's log-probability is its target's logit less the log-sum-exp combined
/// over slices; its argmax is the first token with the largest logit, as one session's ArgMax
/// picks it.
pub(super) fn run_sliced(
    slices: usize,
    mut load: impl FnMut(usize) -> Result<(Graph, std::ops::Range<usize>), ScorerError>,
    d: usize,
    row: impl Fn(usize, &mut Vec<f32>),
    targets: &[u32],
    with_greedy: bool,
) -> Result<(Vec<f32>, Vec<u32>), ScorerError> {
    let mut so_far = vec![RowSoFar::EMPTY; targets.len()];
    let mut x = Vec::with_capacity(HEAD_ROWS.min(targets.len()) * d);
    for s in 0..slices {
        let (mut head, tokens) = load(s)?;
        for start in (0..targets.len()).step_by(HEAD_ROWS) {
            let end = (start + HEAD_ROWS).min(targets.len());
            x.clear();
            (start..end).for_each(|i| row(i, &mut x));
            let local = |t: u32| if tokens.contains(&(t as usize)) { (t as usize - tokens.start) as i64 } else { 0 };
            let out = run_slice_chunk(&mut head, &x, d, targets[start..end].iter().map(|&t| local(t)).collect())?;
            for (j, r) in so_far[start..end].iter_mut().enumerate() {
                r.add_logsumexp(out.logsumexp[j] as f64);
                // Strictly larger only: on a tie the earlier slice's (lower) token stays.
                if out.max[j] > r.best {
                    r.best = out.max[j];
                    r.best_token = (tokens.start as i64 + out.argmax[j]) as u32;
                }
                if tokens.contains(&(targets[start + j] as usize)) {
                    r.target_logit = out.target_logits[j];
                }
            }
        }
    }
    let lp = so_far.iter().map(RowSoFar::log_prob).collect();
    let am = if with_greedy { so_far.iter().map(|r| r.best_token).collect() } else { Vec::new() };
    Ok((lp, am))
}

#[cfg(test)]
mod tests {
    use super::RowSoFar;

    /// Slices' log-sum-exps combine to the whole vocabulary's, in any order of size: logits
    /// {1, 2, 3, 10} in slices {1, 2}, {10}, {3} give log(e + e^2 + e^3 + e^10), and a target
    /// logit of 2 gets log p = 2 minus that (f64 throughout, so 1e-12).
    #[test]
    fn slices_combine_to_the_whole_log_sum_exp() {
        let lse = |xs: &[f64]| xs.iter().map(|x| x.exp()).sum::<f64>().ln();
        let mut row = RowSoFar { target_logit: 2.0, ..RowSoFar::EMPTY };
        for slice in [&[1.0, 2.0][..], &[10.0], &[3.0]] {
            row.add_logsumexp(lse(slice));
        }
        let whole = lse(&[1.0, 2.0, 3.0, 10.0]);
        assert!((row.lse_max + row.lse_sum.ln() - whole).abs() < 1e-12);
        assert!((f64::from(row.log_prob()) - (2.0 - whole)).abs() < 1e-6, "{}", row.log_prob());
    }
}
