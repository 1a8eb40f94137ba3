//! Task evaluation that stops when decided (`[tasks] stop = "decided"`).
//!
//! Scoring every example of every task in every cell is what fixed-n tests need, and most of it
//! is wasted: a pruned model that is clearly worse than dense is clearly worse after a hundred
//! examples. Here every task in every language is scored a round of examples at a time, in one
//! seeded random order that every unit shares (so the examples stay paired), and after each round
//! each of its comparisons feeds its paired accuracy differences into an anytime-valid
//! confidence sequence for the mean difference over the test set:
//!
//! * each cell against the dense model of its model;
//! * each calibrated cell against the cell of the same condition and seed calibrated on
//!   `[report] reference_calibration` (English when unset).
//!
//! The sequence is the betting sequence for sampling without replacement from the set's N
//! examples ([`BettingConfidenceSequence`]), valid at every round at once, so looking after each
//! round and stopping does not raise the error rate: each comparison's decision is wrong with
//! probability at most alpha, whenever it is made. A comparison is decided `worse` when its
//! interval (first − second) lies below −margin and `not-worse` when it lies above; a set stops
//! when all its comparisons are decided, or when its examples (up to `limit`) run out, leaving
//! the rest `undecided` with their final interval.
//!
//! Cells are pruned and measured on perplexity first, as in a full study, with their changed
//! weights kept in the study folder; then the rounds run, each unit's scorer loaded once per
//! round. After every round each unit's examples and then the round count are written
//! atomically, so a killed run resumes at the round it was in. The unit folders end up with the
//! same task files a full study writes (on the examples used), and `decided/decisions.json`
//! holds every comparison's decision, interval and "decided after n of N" for the report.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::runner::{Evaluation, Observer, UnitError};
use crate::analysis::records::task_set;
use crate::analysis::significance::StudyCell;
use crate::design::{Cell, DecidedStop, Grid, StudyConfig};
use crate::eval::{downstream, LanguageModel, ResultPart, TaskResult};
use crate::stats::BettingConfidenceSequence;
use crate::store::{ComparisonDecision, Decisions, Provenance, SetDecisions, StudyDir, Unit};
use crate::tasks::{LoadedTask, TaskItems};
use crate::workflow::folder::ModelFolder;
use crate::workflow::gate::Decision;

/// Keeps the rounds' example order apart from the other uses of the task seed.
const ORDER_STREAM: u64 = 0x5e90_0000_0000_0028;
/// Grid of candidate means for the betting sequence: a thousandth of the [-1, 1] range.
const BETTING_GRID_STEPS: usize = 1000;
/// The comparator name of the dense model in comparisons.
const DENSE: &str = "dense";

/// What `decided/progress/state.json` keeps between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Rounds {
    rounds: usize,
    /// Examples used per set (by evaluation name); every unit part holds at least this many.
    used: BTreeMap<String, usize>,
}

/// A comparison as the rounds go.
struct Running {
    first: usize,
    second: usize,
    decision: ComparisonDecision,
    sequence: BettingConfidenceSequence,
    sum: f64,
}

/// A task in a language as the rounds go.
struct OpenSet {
    evaluation: String,
    loaded: LoadedTask,
    cap: usize,
    available: usize,
    used: usize,
    comparisons: Vec<Running>,
}

impl OpenSet {
    fn finished(&self) -> bool {
        self.used >= self.cap || self.comparisons.iter().all(|c| c.decision.decided_after.is_some())
    }
}

/// The set's examples in the seeded order every unit shares.
fn shuffled(items: TaskItems, seed: u64) -> TaskItems {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(ORDER_STREAM);
    match items {
        TaskItems::Choice(mut v) => {
            v.shuffle(&mut rng);
            TaskItems::Choice(v)
        }
        TaskItems::Generation(mut v) => {
            v.shuffle(&mut rng);
            TaskItems::Generation(v)
        }
    }
}

/// The pairs of units to compare: each cell against its model's dense baseline, and each
/// calibrated cell against its reference-calibration sibling (same model, condition, seed).
fn comparison_pairs(units: &[Unit], reference: &str) -> Vec<(usize, usize)> {
    let cells: Vec<(usize, &Cell, StudyCell)> =
        units.iter().enumerate().filter_map(|(i, u)| if let Unit::Cell(c) = u { Some((i, c, StudyCell::of(c))) } else { None }).collect();
    let mut pairs = Vec::new();
    for (i, cell, me) in &cells {
        if let Some(d) = units.iter().position(|u| matches!(u, Unit::Dense(d) if d.model == cell.model)) {
            pairs.push((*i, d));
        }
        if me.calibration == "none" || me.calibration == reference {
            continue;
        }
        let sibling = cells.iter().find(|(_, other, them)| {
            them.calibration == reference && other.model == cell.model && them.condition == me.condition && other.seed == cell.seed
        });
        if let Some((j, _, _)) = sibling {
            pairs.push((*i, *j));
        }
    }
    pairs
}

fn label(unit: &Unit) -> String {
    match unit {
        Unit::Dense(_) => DENSE.to_string(),
        Unit::Cell(c) => StudyCell::of(c).calibration,
    }
}

/// Every unit of the study, dense baselines first, as [`super::runner::units`] orders them.
fn all_units(grid: &Grid) -> Vec<Unit> {
    super::runner::units(grid, None)
}

/// Scores the study's tasks in rounds until decided (see the module documentation); every
/// unit must be done (pruned, weights kept, perplexity measured).
pub fn run_decided(
    config: &StudyConfig,
    dir: &StudyDir,
    evaluation: &Evaluation,
    rule: DecidedStop,
    max_rounds: Option<usize>,
    observer: &mut dyn Observer,
) -> Result<Option<Decisions>, UnitError> {
    let grid = Grid::expand(config);
    let units = all_units(&grid);
    let reference = config.report.reference_calibration.clone().unwrap_or_else(|| "eng_Latn".to_string());
    let pairs = comparison_pairs(&units, &reference);
    let seed = config.tasks.as_ref().map_or(0, |t| t.seed);
    let limit = config.tasks.as_ref().and_then(|t| t.limit);

    let mut sets: Vec<OpenSet> = Vec::new();
    for loaded in &evaluation.tasks {
        let evaluation_name = task_set(&loaded.task.to_string(), &loaded.language.label());
        let available = loaded.items.len();
        let items = shuffled(loaded.items.clone(), seed);
        let mut comparisons = Vec::new();
        for &(first, second) in &pairs {
            let family = match &units[first] {
                Unit::Cell(c) => StudyCell::of(c).family(&evaluation_name),
                Unit::Dense(_) => unreachable!("the first of a pair is a cell"),
            };
            let sequence = BettingConfidenceSequence::new(-1.0, 1.0, Some(available), rule.alpha, BETTING_GRID_STEPS)
                .map_err(|e| UnitError::Decided(format!("{evaluation_name}: {e}")))?;
            let interval = sequence.interval();
            comparisons.push(Running {
                first,
                second,
                decision: ComparisonDecision {
                    family,
                    first: label(&units[first]),
                    second: label(&units[second]),
                    first_unit: units[first].id().to_string(),
                    second_unit: units[second].id().to_string(),
                    decision: Decision::Undecided,
                    decided_after: None,
                    mean_difference: 0.0,
                    lower: interval.lower(),
                    upper: interval.upper(),
                },
                sequence,
                sum: 0.0,
            });
        }
        sets.push(OpenSet {
            evaluation: evaluation_name,
            loaded: LoadedTask { items, ..loaded.clone() },
            cap: limit.map_or(available, |l| l.min(available)),
            available,
            used: 0,
            comparisons,
        });
    }

    // Resume: what each unit kept, cut to the rounds the state counts.
    let state: Rounds = dir.read_rounds()?.unwrap_or_default();
    let mut parts: Vec<BTreeMap<String, ResultPart>> = Vec::with_capacity(units.len());
    for unit in &units {
        let mut kept: BTreeMap<String, ResultPart> = dir.read_unit_part(unit)?.unwrap_or_default();
        kept.retain(|name, part| match state.used.get(name) {
            Some(&n) if n > 0 && part.len() >= n => {
                part.truncate(n);
                true
            }
            _ => false,
        });
        parts.push(kept);
    }
    for set in &mut sets {
        let used = state.used.get(&set.evaluation).copied().unwrap_or(0);
        if used > 0 && parts.iter().all(|p| p.contains_key(&set.evaluation)) {
            // Replayed round by round, so a decision gets the round it was first made in.
            let scores: Vec<Vec<f64>> = parts.iter().map(|p| p[&set.evaluation].correct()).collect();
            let mut start = 0;
            while start < used {
                let end = (start + rule.round).min(used);
                observe(set, &scores, start..end, rule)?;
                start = end;
            }
            set.used = used;
        } else {
            // A set some unit kept no examples of starts again in every unit.
            for p in &mut parts {
                p.remove(&set.evaluation);
            }
        }
    }
    let mut rounds = state.rounds;

    let mut this_run = 0;
    while sets.iter().any(|s| !s.finished()) {
        if max_rounds.is_some_and(|m| this_run >= m) {
            return Ok(None);
        }
        this_run += 1;
        rounds += 1;
        let open: Vec<usize> = (0..sets.len()).filter(|&i| !sets[i].finished()).collect();
        let mut fresh: Vec<Vec<Vec<f64>>> = vec![Vec::new(); units.len()];
        for (u, unit) in units.iter().enumerate() {
            observer.stage(&format!("decided round {rounds}: {} ({} open sets)", unit.id(), open.len()));
            let mut scorer = load_scorer(config, dir, unit)?;
            for &i in &open {
                let set = &sets[i];
                let range = set.used..(set.used + rule.round).min(set.cap);
                let part = LoadedTask { items: set.loaded.items.slice(range), ..set.loaded.clone() };
                let result = ResultPart::from(downstream::evaluate(scorer.as_mut(), &part, None, |_| {})?);
                fresh[u].push(result.correct());
                append(&mut parts[u], &set.evaluation, result)?;
            }
            dir.write_unit_part(unit, &parts[u])?;
        }
        for (k, &i) in open.iter().enumerate() {
            let set = &mut sets[i];
            let end = (set.used + rule.round).min(set.cap);
            let scores: Vec<Vec<f64>> = fresh.iter().map(|f| f[k].clone()).collect();
            observe(set, &scores, 0..end - set.used, rule)?;
            set.used = end;
            if set.finished() {
                let decided = set.comparisons.iter().filter(|c| c.decision.decided_after.is_some()).count();
                observer.note(&format!(
                    "decided round {rounds}: {} stops after {} of {} examples ({decided} of {} comparisons decided)",
                    set.evaluation,
                    set.used,
                    set.available,
                    set.comparisons.len()
                ));
            }
        }
        dir.write_rounds(&Rounds { rounds, used: sets.iter().map(|s| (s.evaluation.clone(), s.used)).collect() })?;
        let open_now = sets.iter().filter(|s| !s.finished()).count();
        observer.note(&format!("decided round {rounds} written: {open_now} of {} task sets still open", sets.len()));
    }

    write_unit_results(config, dir, &units, parts)?;
    let decisions = Decisions {
        margin: rule.margin,
        alpha: rule.alpha.value(),
        round: rule.round,
        sequence: "betting-without-replacement".into(),
        sets: sets
            .into_iter()
            .map(|s| SetDecisions {
                evaluation: s.evaluation,
                examples: s.used,
                cap: s.cap,
                available: s.available,
                comparisons: s.comparisons.into_iter().map(|c| c.decision).collect(),
            })
            .collect(),
    };
    dir.write_decisions(&decisions)?;
    dir.remove_decided_progress()?;
    Ok(Some(decisions))
}

/// Feeds examples `range` (indices into each unit's `scores`) of every comparison of `set`
/// into its sequence, deciding what becomes decided.
fn observe(set: &mut OpenSet, scores: &[Vec<f64>], range: std::ops::Range<usize>, rule: DecidedStop) -> Result<(), UnitError> {
    observe_comparisons(&mut set.comparisons, &set.evaluation, scores, range, rule)
}

/// A decision, once made, stays: the round it was made in is what "decided after" reports, and
/// later rounds (run for the set's other comparisons) only narrow the interval.
fn observe_comparisons(
    comparisons: &mut [Running],
    evaluation: &str,
    scores: &[Vec<f64>],
    range: std::ops::Range<usize>,
    rule: DecidedStop,
) -> Result<(), UnitError> {
    for c in comparisons {
        for k in range.clone() {
            let difference = scores[c.first][k] - scores[c.second][k];
            c.sequence.observe(difference).map_err(|e| UnitError::Decided(format!("{evaluation}: {e}")))?;
            c.sum += difference;
        }
        let seen = c.sequence.observed();
        let interval = c.sequence.interval();
        c.decision.mean_difference = if seen == 0 { 0.0 } else { c.sum / seen as f64 };
        c.decision.lower = interval.lower();
        c.decision.upper = interval.upper();
        if c.decision.decided_after.is_none() {
            if let Some(d) = Decision::against_margin(&interval, rule.margin) {
                c.decision.decision = d;
                c.decision.decided_after = Some(seen);
            }
        }
    }
    Ok(())
}

fn append(parts: &mut BTreeMap<String, ResultPart>, evaluation: &str, more: ResultPart) -> Result<(), UnitError> {
    match parts.remove(evaluation) {
        None => {
            parts.insert(evaluation.to_string(), more);
        }
        Some(before) => {
            let joined = downstream::combine(vec![before.into_result()?, more.into_result()?])?.expect("two parts");
            parts.insert(evaluation.to_string(), ResultPart::from(joined));
        }
    }
    Ok(())
}

/// The unit's scorer: the dense model, or the model with the cell's kept weights (a decoder's
/// or an encoder-decoder's: the rounds go through [`LanguageModel`]).
fn load_scorer(config: &StudyConfig, dir: &StudyDir, unit: &Unit) -> Result<Box<dyn LanguageModel>, UnitError> {
    let spec = config.model(unit.model()).expect("unit of a listed model");
    let model = ModelFolder::open(&spec.path)?;
    let overrides = match unit {
        Unit::Dense(_) => Vec::new(),
        Unit::Cell(c) => dir.read_pruned_weights(&c.id)?,
    };
    Ok(model.scorer(&config.runtime(), &overrides, super::runner::DEFAULT_BATCH_TOKENS)?)
}

/// Each unit's task files, as a full study writes them, on the examples the rounds used.
fn write_unit_results(
    config: &StudyConfig,
    dir: &StudyDir,
    units: &[Unit],
    parts: Vec<BTreeMap<String, ResultPart>>,
) -> Result<(), UnitError> {
    for (unit, kept) in units.iter().zip(parts) {
        let spec = config.model(unit.model()).expect("unit of a listed model");
        let model = ModelFolder::open(&spec.path)?;
        let results: Vec<TaskResult> = kept.into_values().map(ResultPart::into_result).collect::<Result<_, _>>()?;
        let started = std::time::Instant::now();
        let settings = serde_json::json!({ "config_hash": config.hash, "settings": { "plan": config.tasks, "unit": unit.id() } });
        let provenance = Provenance::new("study tasks (decided)", model.identity(), settings, started);
        dir.unit(unit).tasks().write(&results, &provenance)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::config::tests::{parse_ok, GOOD};

    /// The config tests' study with an uncalibrated method beside a calibrated one, decided.
    fn study() -> String {
        let text = GOOD
            .replace(r#"methods = ["wanda", "sparsegpt"]"#, r#"methods = ["magnitude", "wanda"]"#)
            .replace(r#"patterns = ["unstructured", "2:4"]"#, r#"patterns = ["unstructured"]"#);
        format!("{text}stop = \"decided\"\n")
    }

    /// Every cell against dense; German Wanda against English Wanda; nothing for Magnitude
    /// (uncalibrated) against a reference.
    #[test]
    fn cells_are_compared_with_dense_and_with_the_reference_calibration() {
        let config = parse_ok(&study());
        let units = all_units(&Grid::expand(&config));
        let pairs = comparison_pairs(&units, "eng_Latn");
        let named: Vec<(String, String)> = pairs.iter().map(|&(a, b)| (units[a].id().to_string(), label(&units[b]))).collect();
        let cells = units.iter().filter(|u| matches!(u, Unit::Cell(_))).count();
        assert_eq!(named.iter().filter(|(_, b)| b == DENSE).count(), cells, "{named:?}");
        let reference: Vec<&(String, String)> = named.iter().filter(|(_, b)| b != DENSE).collect();
        assert_eq!(reference.len(), 1, "{named:?}");
        assert!(reference[0].0.starts_with("wanda") && reference[0].0.contains("deu_Latn") && reference[0].1 == "eng_Latn", "{named:?}");
    }

    fn running(first: usize, second: usize, population: usize) -> Running {
        let alpha = crate::stats::Alpha::new(0.05).unwrap();
        let sequence = BettingConfidenceSequence::new(-1.0, 1.0, Some(population), alpha, BETTING_GRID_STEPS).unwrap();
        let decision = ComparisonDecision {
            family: "f".into(),
            first: "a".into(),
            second: "b".into(),
            first_unit: "a".into(),
            second_unit: "b".into(),
            decision: Decision::Undecided,
            decided_after: None,
            mean_difference: 0.0,
            lower: -1.0,
            upper: 1.0,
        };
        Running { first, second, decision, sequence, sum: 0.0 }
    }

    /// A unit wrong wherever dense is right is decided worse within the first round of 10; a
    /// unit equal to dense is not decided worse, and is decided not worse only once the
    /// interval clears -margin; a decision stays when later rounds disagree.
    #[test]
    fn decisions_come_at_the_round_the_sequence_clears_the_margin_and_stay() {
        let rule = DecidedStop { margin: 0.05, alpha: crate::stats::Alpha::new(0.05).unwrap(), round: 10 };
        let n = 200;
        let dense = vec![1.0; n];
        let wrong: Vec<f64> = (0..n).map(|k| if k < 10 { 0.0 } else { 1.0 }).collect();
        let same = dense.clone();
        let scores = vec![dense, wrong, same];
        let mut comparisons = vec![running(1, 0, n), running(2, 0, n)];
        observe_comparisons(&mut comparisons, "t/l", &scores, 0..10, rule).unwrap();
        assert_eq!(comparisons[0].decision.decision, Decision::Worse, "ten misses in ten: {:?}", comparisons[0].decision);
        assert_eq!(comparisons[0].decision.decided_after, Some(10));
        assert!((comparisons[0].decision.mean_difference + 1.0).abs() < 1e-12);
        assert_ne!(comparisons[1].decision.decision, Decision::Worse);
        // Later rounds where the first unit matches dense: the decision and its round stay, the
        // interval moves up with the mean.
        let mut rounds = 1;
        while comparisons[1].decision.decided_after.is_none() {
            observe_comparisons(&mut comparisons, "t/l", &scores, rounds * 10..(rounds + 1) * 10, rule).unwrap();
            rounds += 1;
            assert!(rounds * 10 <= n, "equal units must be decided not worse before the set ends");
        }
        let settled = &comparisons[1].decision;
        assert_eq!(settled.decision, Decision::NotWorse);
        assert!(settled.lower > -rule.margin && settled.decided_after == Some(rounds * 10), "{settled:?}");
        assert!(rounds > 1, "no difference in 10 examples does not clear a 0.05 margin: {settled:?}");
        assert_eq!(comparisons[0].decision.decision, Decision::Worse);
        assert_eq!(comparisons[0].decision.decided_after, Some(10));
        assert!(comparisons[0].decision.mean_difference > -1.0);
    }
}
