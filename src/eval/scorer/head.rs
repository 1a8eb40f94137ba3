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
