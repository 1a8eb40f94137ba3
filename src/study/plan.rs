//! `study plan`: the cells a study file expands to, and what they will cost, before anything runs.
//!
//! Cost = tokens x seconds per token. Tokens are counted exactly with each model's tokenizer:
//! the perplexity documents (after `limit`), every task example (each distinct context once plus
//! every continuation, as the key/value-cache path runs them; a generation example counts its
//! prompt plus its token cap), and the calibration windows.
//! Seconds per token come from this study's own finished units when there are any (their
//! records keep tokens and seconds per stage), else from [`DEFAULT_THROUGHPUT`].

use serde::Serialize;

use super::runner::Evaluation;
use crate::design::Grid;
use crate::design::StudyConfig;
use crate::store::{StudyDir, Unit, UnitStatus};
use crate::tasks::TaskItems;

/// Throughput assumed before anything was measured: Gemma 3 270M on 2 CPU cores, as the
/// quickstart measured it (scoring 130 tokens/s through the 262k-wide output layer; sequential
/// calibration, forward and statistics, 198 tokens/s; solve 8 s a cell). The plan replaces
/// them with this study's own measurements once a unit has finished.
pub const DEFAULT_THROUGHPUT: Throughput =
    Throughput { score_tokens_per_s: 130.0, calibration_tokens_per_s: 200.0, solve_s_per_cell: 10.0, measured_units: 0 };

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Throughput {
    /// Scoring (perplexity and tasks) through the full model.
    pub score_tokens_per_s: f64,
    /// Calibration forward passes and statistics.
    pub calibration_tokens_per_s: f64,
    /// The pruning solve per cell (SparseGPT dominates).
    pub solve_s_per_cell: f64,
    /// How many finished units these figures come from (0 = defaults).
    pub measured_units: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitCost {
    pub id: String,
    pub kind: &'static str,
    pub model: String,
    pub label: String,
    pub done: bool,
    pub score_tokens: usize,
    pub calibration_tokens: usize,
    pub seconds: f64,
}

/// The `[advice]` search of one model, after the units.
#[derive(Clone, Debug, Serialize)]
pub struct AdviceCost {
    pub model: String,
    /// `wanda 50% worst-case over eng_Latn, deu_Latn from eng_Latn, deu_Latn`.
    pub label: String,
    pub done: bool,
    /// One one-shot pass per language (candidates, targets and English), plus the confirmation.
    pub calibration_tokens: usize,
    /// Calibration only: the search's scoring depends on how the proxy ranks, so it is not
    /// estimated here.
    pub calibration_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanEstimate {
    pub units: Vec<UnitCost>,
    /// The `[advice]` searches (empty without `[advice]`).
    pub advice: Vec<AdviceCost>,
    pub throughput: Throughput,
    /// Seconds for the units not yet done.
    pub remaining_s: f64,
}

/// Tokens scored per unit for one model's tokenizer.
/// `task_cap`: the most examples a set of a decided study scores (its examples are a random
/// draw from the whole set, so the tokens scale with the share).
fn scored_tokens(tokenizer: &tokenizers::Tokenizer, evaluation: &Evaluation, limit: Option<usize>, task_cap: Option<usize>) -> usize {
    let count = |text: &str| tokenizer.encode(text, false).map(|e| e.len()).unwrap_or(text.len() / 4);
    let mut total = 0;
    for set in &evaluation.text {
        let n = limit.unwrap_or(usize::MAX).min(set.documents.len());
        total += set.documents[..n].iter().map(|(_, t)| count(t) + 1).sum::<usize>();
    }
    for task in &evaluation.tasks {
        let all = task_tokens(&task.items, &count);
        let n = task.items.len();
        total += match task_cap {
            Some(cap) if cap < n => all * cap / n,
            _ => all,
        };
    }
    total
}

/// Token positions one task's examples cost on the key/value-cache path (`eval::choices`): each
/// distinct context of an example once (a context shared by 7 topics counts once) plus every
/// continuation; a generation example its prompt plus its token cap.
fn task_tokens(items: &TaskItems, count: &dyn Fn(&str) -> usize) -> usize {
    match items {
        TaskItems::Choice(examples) => examples
            .iter()
            .map(|e| {
                let mut contexts: Vec<&str> = e.choices.iter().map(|c| c.context()).collect();
                contexts.sort_unstable();
                contexts.dedup();
                contexts.into_iter().map(count).sum::<usize>() + e.choices.iter().map(|c| count(c.continuation())).sum::<usize>()
            })
            .sum(),
        TaskItems::Generation(examples) => examples.iter().map(|g| count(&g.request.context) + g.request.max_new_tokens).sum(),
    }
}

/// Throughput measured from the finished units in `dir`, if any.
pub fn measured_throughput(dir: &StudyDir, grid: &Grid) -> Option<Throughput> {
    let (mut score_tokens, mut score_s, mut calib_tokens, mut calib_s, mut solve_s, mut cells, mut units) =
        (0usize, 0.0, 0usize, 0.0, 0.0, 0usize, 0usize);
    for unit in super::runner::units(grid, None) {
        let Ok(Some(r)) = dir.read_record(&unit) else { continue };
        if r.status != UnitStatus::Done {
            continue;
        }
        units += 1;
        // Task tokens are not recorded per unit; perplexity alone gives the scoring rate.
        score_tokens += r.eval_tokens;
        score_s += r.timings.perplexity_s;
        calib_tokens += r.calibration_tokens;
        calib_s += r.timings.calibration_forward_s + r.timings.statistics_s;
        if matches!(unit, Unit::Cell(_)) {
            solve_s += r.timings.prune_solve_s;
            cells += 1;
        }
    }
    (units > 0).then(|| Throughput {
        score_tokens_per_s: if score_s > 0.0 { score_tokens as f64 / score_s } else { DEFAULT_THROUGHPUT.score_tokens_per_s },
        calibration_tokens_per_s: if calib_s > 0.0 { calib_tokens as f64 / calib_s } else { DEFAULT_THROUGHPUT.calibration_tokens_per_s },
        solve_s_per_cell: if cells > 0 { solve_s / cells as f64 } else { DEFAULT_THROUGHPUT.solve_s_per_cell },
        measured_units: units,
    })
}

/// The estimate for every unit of the study (tokenizers are read from the model folders; a
/// model that cannot be read is estimated with 4 bytes per token).
pub fn estimate(config: &StudyConfig, evaluation: &Evaluation, dir: &StudyDir) -> PlanEstimate {
    let grid = Grid::expand(config);
    let throughput = measured_throughput(dir, &grid).unwrap_or(DEFAULT_THROUGHPUT);
    let limit = config.perplexity.as_ref().and_then(|p| p.limit);
    // A decided study draws from whole sets and stops at `limit` at the latest: the most it costs.
    let task_cap = config.tasks.as_ref().filter(|t| matches!(t.stop, crate::design::StopRule::Decided(_))).and_then(|t| t.limit);
    let mut per_model = std::collections::BTreeMap::new();
    for m in &config.models {
        let tokens = crate::model::ModelDir::open(&m.path)
            .ok()
            .and_then(|d| d.tokenizer().ok())
            .map(|t| scored_tokens(&t, evaluation, limit, task_cap))
            .unwrap_or_else(|| {
                let bytes: usize = evaluation
                    .text
                    .iter()
                    .map(|s| s.documents.iter().take(limit.unwrap_or(usize::MAX)).map(|(_, t)| t.len()).sum::<usize>())
                    .sum();
                bytes / 4
            });
        per_model.insert(m.name.clone(), tokens);
    }
    let mut units = Vec::new();
    let mut remaining_s = 0.0;
    for unit in super::runner::units(&grid, None) {
        let done = dir.is_done(&unit);
        let score_tokens = per_model.get(unit.model()).copied().unwrap_or(0);
        let (kind, label, calibration_tokens, solve) = match &unit {
            Unit::Dense(_) => ("dense", "dense".to_string(), 0, 0.0),
            Unit::Cell(c) => {
                let tokens = c.calibration.as_ref().map_or(0, |k| k.samples * k.seqlen);
                ("cell", c.label(), tokens, throughput.solve_s_per_cell)
            }
        };
        let seconds =
            score_tokens as f64 / throughput.score_tokens_per_s + calibration_tokens as f64 / throughput.calibration_tokens_per_s + solve;
        if !done {
            remaining_s += seconds;
        }
        units.push(UnitCost {
            id: unit.id().to_string(),
            kind,
            model: unit.model().to_string(),
            label,
            done,
            score_tokens,
            calibration_tokens,
            seconds,
        });
    }
    let pending = super::advice::pending_advice(config, dir);
    let advice = config
        .advice
        .iter()
        .flat_map(|plan| {
            let mut languages = plan.candidates.clone();
            for l in plan.targets.iter().map(String::as_str).chain(["eng_Latn"]) {
                if !languages.iter().any(|c| c == l) {
                    languages.push(l.to_string());
                }
            }
            let passes = languages.len() + usize::from(plan.confirm);
            let calibration_tokens = passes * plan.samples * plan.seqlen;
            let target = match plan.sparsity {
                Some(s) => format!("{}%", (s.get() * 100.0).round()),
                None => plan.pattern.to_string(),
            };
            let label = format!(
                "{} {target} {} over {} from {}",
                plan.method.name(),
                plan.objective.name(),
                plan.targets.join(", "),
                plan.candidates.join(", ")
            );
            let pending = &pending;
            config.models.iter().map(move |m| AdviceCost {
                model: m.name.clone(),
                label: label.clone(),
                done: !pending.contains(&m.name),
                calibration_tokens,
                calibration_s: calibration_tokens as f64 / throughput.calibration_tokens_per_s,
            })
        })
        .collect();
    PlanEstimate { units, advice, throughput, remaining_s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Choice, Example};

    #[test]
    fn a_shared_context_counts_once_and_every_continuation_counts() {
        // Words stand in for tokens: the rule, not the tokenizer, is under test.
        let words = |t: &str| t.split_whitespace().count();
        let topics = ["science", "travel", "politics"];
        let shared = Example::new("sib/0".into(), 0, topics.iter().map(|t| Choice::new("Text: a b c\nTopic:", " ", t)).collect()).unwrap();
        // XWinograd-like: each choice has its own context and the same continuation.
        let own =
            Example::new("xw/0".into(), 1, vec![Choice::new("x y Anna", " ", "left early"), Choice::new("x y Bob", " ", "left early")])
                .unwrap();
        // 5 context words once + 3 one-word continuations; 2 contexts of 3 words + 2 x 2 words.
        assert_eq!(task_tokens(&TaskItems::Choice(vec![shared.clone()]), &words), 5 + 3);
        assert_eq!(task_tokens(&TaskItems::Choice(vec![own.clone()]), &words), 2 * 3 + 2 * 2);
        assert_eq!(task_tokens(&TaskItems::Choice(vec![shared, own]), &words), 8 + 10);
    }
}
