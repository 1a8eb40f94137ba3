//! Searching the simplex of calibration mixtures for the one that serves a set of target
//! languages best, given a function that scores a mixture per target (lower is better).
//!
//! A mixture is a vector of window counts per candidate language summing to the calibration
//! size `N` (`--samples`): exactly the mixtures a real calibration of `N` windows can draw, so
//! the search never proposes a mixture finer than the calibration can realise, and a mixture
//! is identified (and cached) by its counts.
//!
//! **Method: a grid, then a pattern search.** Why not exponentiated gradient: the per-target
//! error of a pruned model is piecewise constant in the weights wherever the masks do not
//! change and jumps where they do, so it has no useful gradient; a finite-difference gradient
//! costs one evaluation per candidate and step anyway. The simplex is small (the targets plus
//! English: three to six candidates), so a uniform grid of the finest resolution that half the
//! evaluation budget affords covers it evenly and includes every single-language vertex, which
//! the advice needs as baselines regardless. The other half refines around the best point:
//! moves of `s` windows from one candidate to another (the directions `e_i - e_j`, a positive
//! spanning set of the simplex's plane); when no move improves, the sum of the two best moves
//! is tried (the worst-case objective is a maximum of per-target errors, whose minimum usually
//! lies on a ridge where two targets' errors are equal, and the ridge direction is such a sum),
//! then `s` is halved, down to one window. The proxy being an approximation of what matters
//! (bits per byte), the best few points are validated on text afterwards rather than trusted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Mix;

/// How per-target errors combine into one score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The worst-served target's error (minimax).
    Worst,
    /// The mean over targets.
    Mean,
}

impl Objective {
    pub fn parse(s: &str) -> Option<Objective> {
        match s {
            "worst" => Some(Objective::Worst),
            "mean" => Some(Objective::Mean),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Objective::Worst => "worst",
            Objective::Mean => "mean",
        }
    }

    /// The score of per-target errors.
    pub fn score(self, errors: &[f64]) -> f64 {
        match self {
            Objective::Worst => errors.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Objective::Mean => errors.iter().sum::<f64>() / errors.len().max(1) as f64,
        }
    }
}

/// One evaluated mixture.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvaluatedMixture {
    /// Windows per candidate (sum = N).
    pub shares: Vec<usize>,
    /// Per-target errors, in target order.
    pub errors: Vec<f64>,
    pub score: f64,
}

impl EvaluatedMixture {
    /// The weights `shares / N`.
    pub fn weights(&self) -> Vec<f64> {
        let n: usize = self.shares.iter().sum();
        self.shares.iter().map(|&s| s as f64 / n.max(1) as f64).collect()
    }

    /// Whether all windows come from one candidate.
    pub fn single_language(&self) -> Option<usize> {
        let nonzero: Vec<usize> = (0..self.shares.len()).filter(|&i| self.shares[i] > 0).collect();
        (nonzero.len() == 1).then(|| nonzero[0])
    }
}

/// The number of points of the grid of resolution `g` on the simplex of `k` candidates:
/// `C(g + k - 1, k - 1)`.
pub fn grid_size(k: usize, g: usize) -> usize {
    let mut c: u128 = 1;
    for i in 1..k {
        c = c * (g + i) as u128 / i as u128;
    }
    c.min(usize::MAX as u128) as usize
}

/// Every composition of `g` into `k` non-negative parts, in lexicographic order.
fn compositions(k: usize, g: usize) -> Vec<Vec<usize>> {
    if k == 1 {
        return vec![vec![g]];
    }
    let mut out = Vec::new();
    for first in (0..=g).rev() {
        for mut rest in compositions(k - 1, g - first) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}

/// Searches the mixtures of `k` candidates over `samples` windows with at most `budget`
/// evaluations of `evaluate` (which returns per-target errors for window counts); returns
/// every evaluated mixture, best score first (ties: the earlier evaluated).
pub fn search_mixtures<E>(
    k: usize,
    samples: usize,
    objective: Objective,
    budget: usize,
    mut evaluate: impl FnMut(&[usize]) -> Result<Vec<f64>, E>,
) -> Result<Vec<EvaluatedMixture>, E> {
    let mut seen: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
    let mut evaluated: Vec<EvaluatedMixture> = Vec::new();
    if k == 0 || samples == 0 {
        return Ok(evaluated);
    }
    let budget = budget.max(k);
    // The index of a mixture's evaluation; `None` once the budget is spent.
    let mut visit = |shares: Vec<usize>, evaluated: &mut Vec<EvaluatedMixture>| -> Result<Option<usize>, E> {
        if let Some(&i) = seen.get(&shares) {
            return Ok(Some(i));
        }
        if evaluated.len() >= budget {
            return Ok(None);
        }
        let errors = evaluate(&shares)?;
        let score = objective.score(&errors);
        seen.insert(shares.clone(), evaluated.len());
        evaluated.push(EvaluatedMixture { shares, errors, score });
        Ok(Some(evaluated.len() - 1))
    };

    // The grid: the finest resolution whose points fit in half the budget (at least the vertices).
    let mut g = 1;
    while g < samples && grid_size(k, g + 1) <= budget / 2 {
        g += 1;
    }
    for point in compositions(k, g) {
        let shares = Mix::Weights(point.iter().map(|&c| c as f64).collect()).shares(samples, k);
        visit(shares, &mut evaluated)?;
    }

    // Pattern search from the best grid point.
    let best_of = |evaluated: &[EvaluatedMixture]| {
        (0..evaluated.len()).min_by(|&a, &b| evaluated[a].score.total_cmp(&evaluated[b].score).then(a.cmp(&b))).expect("evaluated")
    };
    let mut current = evaluated[best_of(&evaluated)].clone();
    let mut step = (samples / g / 2).max(1);
    'outer: loop {
        let mut moves: Vec<(f64, Vec<i64>)> = Vec::new();
        let mut improved = false;
        for from in 0..k {
            for to in 0..k {
                if from == to || current.shares[from] < step {
                    continue;
                }
                let mut shares = current.shares.clone();
                shares[from] -= step;
                shares[to] += step;
                let Some(index) = visit(shares, &mut evaluated)? else { break 'outer };
                let score = evaluated[index].score;
                let mut delta = vec![0i64; k];
                delta[from] = -(step as i64);
                delta[to] = step as i64;
                moves.push((score, delta));
                if score < current.score {
                    current = evaluated[index].clone();
                    improved = true;
                    break;
                }
            }
            if improved {
                break;
            }
        }
        if improved {
            continue;
        }
        // No single move helps: try the sum of the two best moves that are not opposite.
        moves.sort_by(|a, b| a.0.total_cmp(&b.0));
        let combined = moves.iter().enumerate().find_map(|(i, a)| {
            moves[i + 1..].iter().find_map(|b| {
                let sum: Vec<i64> = a.1.iter().zip(&b.1).map(|(x, y)| x + y).collect();
                let shares: Vec<i64> = current.shares.iter().zip(&sum).map(|(&s, d)| s as i64 + d).collect();
                (sum.iter().any(|&d| d != 0) && shares.iter().all(|&s| s >= 0))
                    .then(|| shares.iter().map(|&s| s as usize).collect::<Vec<_>>())
            })
        });
        if let Some(shares) = combined {
            let Some(index) = visit(shares, &mut evaluated)? else { break };
            if evaluated[index].score < current.score {
                current = evaluated[index].clone();
                continue;
            }
        }
        if step == 1 {
            break;
        }
        step /= 2;
    }
    let mut order: Vec<usize> = (0..evaluated.len()).collect();
    order.sort_by(|&a, &b| evaluated[a].score.total_cmp(&evaluated[b].score).then(a.cmp(&b)));
    Ok(order.into_iter().map(|i| evaluated[i].clone()).collect())
}
