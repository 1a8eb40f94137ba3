//! `gate` as a library call: is a candidate model worse than a baseline's results, decided on as
//! few of the baseline's own examples as the data allow.
//!
//! The baseline is a results folder of `eval tasks` and/or `eval ppl`. Each of its evaluation
//! sets (a task in a language; a language's text from one source) is re-evaluated on the
//! candidate with the baseline's settings (split, shots, seed, data; source, window), on the
//! baseline's own examples or documents only, in a seeded random order, a round of examples at a
//! time. After each round the paired differences go into an anytime-valid confidence sequence
//! for the mean difference, oriented so that positive means "the candidate is better":
//!
//! * accuracy (candidate − baseline, in [-1, 1]): the betting sequence for sampling without
//!   replacement from the N examples of the set ([`BettingConfidenceSequence`]); exact at every
//!   sample size, and the exact test-set mean once all N are seen;
//! * bits per byte (baseline − candidate, unbounded): the asymptotic sequence
//!   ([`AsymptoticConfidenceSequence`]), trusted from its [`AsymptoticConfidenceSequence::MIN_OBSERVATIONS`]th document (or
//!   the last, for smaller sets).
//!
//! A set is decided `worse` when its sequence lies wholly below −margin, `not-worse` when it
//! lies wholly above −margin, and `undecided` when its examples run out first. Looking after
//! every round is what the sequences allow: the chance that any one set's decision is wrong
//! stays at most alpha however early it stops. The gate stops when every set is decided;
//! `worse` anywhere makes the whole gate `worse`, and it is `not-worse` only when every set is.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::folder::ModelFolder;
use super::WorkflowError;
use crate::data::Language;
use crate::eval::{combine, downstream, DocumentScore, LanguageModel, LanguageScore, TaskRecords, TaskResult, WindowOptions};
use crate::progress::Progress;
use crate::runtime::RuntimeOptions;
use crate::stats::{Alpha, AsymptoticConfidenceSequence, BettingConfidenceSequence, ConfidenceInterval};
use crate::store::{find_score_files, new_run, read_scores, GateDir, PerplexityDir, Provenance, RunKind, Scores, TasksDir};
use crate::tasks::{load, LoadOptions, LoadedTask, TaskItems, TaskName, TaskSplit};

/// Keeps the gate's example order apart from the other uses of a task's seed.
const ORDER_STREAM: u64 = 0x6a7e_0000_0000_0028;
/// The order seed for perplexity baselines, which record none.
const TEXT_ORDER_SEED: u64 = 28;
/// Grid of candidate means for the betting sequence: a thousandth of the [-1, 1] range.
const BETTING_GRID_STEPS: usize = 1000;

#[derive(Clone, Debug)]
pub struct GateOptions {
    /// A results folder of `eval tasks` and/or `eval ppl` (a run folder or a folder above runs).
    pub baseline: PathBuf,
    pub model: PathBuf,
    /// Saved Magnitude/Wanda masks applied to `model` in memory.
    pub masks: Option<PathBuf>,
    /// The task data folder (task baselines) or FLORES/SIB-200 folder (perplexity baselines);
    /// `None`: the one the baseline used.
    pub data: Option<PathBuf>,
    /// Only these of the baseline's tasks (empty: all).
    pub tasks: Vec<TaskName>,
    /// Only these of the baseline's languages (empty: all).
    pub languages: Vec<String>,
    /// How much worse (accuracy, or bits per byte) still counts as not worse.
    pub margin: f64,
    pub alpha: Alpha,
    /// Examples per evaluation set per round.
    pub round: usize,
    pub batch_tokens: usize,
    pub runtime: RuntimeOptions,
    /// Results root: the run goes to `<results>/gate/<time>-<model>/`.
    pub results: PathBuf,
}

/// What the gate says about one evaluation set, or about all of them.
pub use crate::stats::Decision;

/// A confidence sequence's interval at the moment of decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
}

impl From<ConfidenceInterval> for Bounds {
    fn from(i: ConfidenceInterval) -> Self {
        Bounds { lower: i.lower(), upper: i.upper() }
    }
}

/// One evaluation set's decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetDecision {
    /// `<task>/<language>` or `<language>/<source>`, as `check` names evaluation sets.
    pub evaluation: String,
    /// `accuracy` or `bits_per_byte`.
    pub metric: String,
    pub decision: Decision,
    /// Examples (documents) evaluated, and how many the baseline has.
    pub examples: usize,
    pub available: usize,
    /// Mean difference over the examples used, positive = candidate better.
    pub mean_difference: f64,
    pub interval: Bounds,
    /// Which confidence sequence: `betting-without-replacement` or `asymptotic`.
    pub sequence: String,
}

/// `gate.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub decision: Decision,
    pub examples: usize,
    pub available: usize,
    /// The interval of the set that settles the decision: the worse set's (the highest upper
    /// end among them) when worse, else the set with the lowest lower end.
    pub interval: Bounds,
    /// The set that interval belongs to.
    pub deciding: String,
    /// Differences are candidate − baseline for accuracy and baseline − candidate for bits per
    /// byte, so positive is better for the candidate either way.
    pub margin: f64,
    pub alpha: f64,
    pub round: usize,
    pub baseline: PathBuf,
    pub evaluations: Vec<SetDecision>,
}

pub struct GateRun {
    pub record: GateRecord,
    pub results_dir: PathBuf,
}

/// One evaluation set of the baseline, ready to evaluate.
enum Work {
    Task { loaded: LoadedTask, max_new_tokens: Option<usize> },
    Text { language: String, source: String, window: WindowOptions, documents: Vec<(String, String)> },
}

/// One evaluation set as the gate goes through it.
struct SetState {
    evaluation: String,
    work: Work,
    /// Baseline score per unit, in bits per byte or 0/1.
    baseline: BTreeMap<String, f64>,
    sequence: Sequence,
    used: usize,
    sum_difference: f64,
    decision: Option<Decision>,
    task_parts: Vec<TaskResult>,
    documents: Vec<DocumentScore>,
}

enum Sequence {
    Betting(BettingConfidenceSequence),
    Asymptotic(AsymptoticConfidenceSequence),
}

impl SetState {
    /// A set before its first round.
    fn new(evaluation: String, work: Work, baseline: BTreeMap<String, f64>, sequence: Sequence) -> SetState {
        SetState {
            evaluation,
            work,
            baseline,
            sequence,
            used: 0,
            sum_difference: 0.0,
            decision: None,
            task_parts: Vec::new(),
            documents: Vec::new(),
        }
    }

    fn available(&self) -> usize {
        self.baseline.len()
    }

    fn interval(&self) -> ConfidenceInterval {
        match &self.sequence {
            Sequence::Betting(s) => s.interval(),
            Sequence::Asymptotic(s) => s.interval(),
        }
    }

    fn observe(&mut self, difference: f64) -> Result<(), WorkflowError> {
        let done = match &mut self.sequence {
            Sequence::Betting(s) => s.observe(difference),
            Sequence::Asymptotic(s) => s.observe(difference),
        };
        done.map_err(|e| WorkflowError::Refused(format!("{}: {e}", self.evaluation)))?;
        self.sum_difference += difference;
        Ok(())
    }

    /// The decision after the examples so far, if any.
    fn decide(&self, margin: f64) -> Option<Decision> {
        let trusted = match &self.sequence {
            Sequence::Betting(_) => true,
            Sequence::Asymptotic(s) => s.observed() >= AsymptoticConfidenceSequence::MIN_OBSERVATIONS.min(self.available()),
        };
        let decided = if trusted { Decision::against_margin(&self.interval(), margin) } else { None };
        if decided.is_some() {
            decided
        } else if self.used == self.available() {
            Some(Decision::Undecided)
        } else {
            None
        }
    }

    fn summary(&self) -> SetDecision {
        let (metric, sequence) = match (&self.work, &self.sequence) {
            (Work::Task { .. }, Sequence::Betting(_)) => ("accuracy", "betting-without-replacement"),
            _ => ("bits_per_byte", "asymptotic"),
        };
        SetDecision {
            evaluation: self.evaluation.clone(),
            metric: metric.into(),
            decision: self.decision.unwrap_or(Decision::Undecided),
            examples: self.used,
            available: self.available(),
            mean_difference: if self.used == 0 { 0.0 } else { self.sum_difference / self.used as f64 },
            interval: self.interval().into(),
            sequence: sequence.into(),
        }
    }
}

fn refused(message: String) -> WorkflowError {
    WorkflowError::Refused(message)
}

/// A setting of a baseline run, from its provenance.
fn setting<'a>(provenance: &'a Provenance, key: &str, folder: &Path) -> Result<&'a serde_json::Value, WorkflowError> {
    provenance.settings.get(key).ok_or_else(|| {
        refused(format!(
            "{}: provenance.json has no '{key}' setting; give --baseline a folder written by `polyprune eval tasks` or `eval ppl`",
            folder.display()
        ))
    })
}

/// Whether a narrowing list lets `value` through (an empty list lets everything through).
fn wanted(list: &[String], value: &str, task: Option<TaskName>) -> bool {
    list.is_empty()
        || list.iter().any(|entry| {
            let (for_task, lang) = match entry.split_once(':') {
                Some((t, l)) => (t.parse::<TaskName>().ok(), l),
                None => (None, entry.as_str()),
            };
            let task_matches = for_task.is_none() || for_task == task;
            let same = lang == value || Language::parse(lang).is_ok_and(|l| l.flores_code() == value);
            task_matches && same
        })
}

/// The seeded order in which the gate visits `ids`.
fn shuffled(mut ids: Vec<String>, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(ORDER_STREAM);
    ids.shuffle(&mut rng);
    ids
}

/// The examples of `items` with the given ids, in that order; an error names the first missing.
fn select_items(items: TaskItems, order: &[String], what: &str) -> Result<TaskItems, WorkflowError> {
    fn pick<T: Clone>(v: Vec<T>, id: impl Fn(&T) -> &str, order: &[String], what: &str) -> Result<Vec<T>, WorkflowError> {
        let by_id: BTreeMap<&str, &T> = v.iter().map(|x| (id(x), x)).collect();
        order
            .iter()
            .map(|want| {
                by_id.get(want.as_str()).map(|x| (*x).clone()).ok_or_else(|| {
                    refused(format!(
                        "{what}: the baseline's example '{want}' is not in the data; give --data the task data folder the baseline used"
                    ))
                })
            })
            .collect()
    }
    Ok(match items {
        TaskItems::Choice(v) => TaskItems::Choice(pick(v, |e| e.id.as_str(), order, what)?),
        TaskItems::Generation(v) => TaskItems::Generation(pick(v, |e| e.id.as_str(), order, what)?),
    })
}

/// A task set's rows in a baseline: split, shots and score per example.
type TaskSetRows = (String, usize, BTreeMap<String, f64>);

/// The task sets of one `eval tasks` run folder.
fn task_sets(folder: &Path, opts: &GateOptions, out: &mut Vec<SetState>) -> Result<(), WorkflowError> {
    let dir = TasksDir::at(folder);
    let provenance = dir.read_provenance()?;
    let seed =
        setting(&provenance, "seed", folder)?.as_u64().ok_or_else(|| refused(format!("{}: 'seed' is not a number", folder.display())))?;
    let data = match &opts.data {
        Some(d) => d.clone(),
        None => serde_json::from_value(setting(&provenance, "data", folder)?.clone())
            .map_err(|e| refused(format!("{}: 'data' setting: {e}", folder.display())))?,
    };
    let max_new_tokens = provenance.settings.get("max_new_tokens").and_then(|v| v.as_u64()).map(|v| v as usize);
    // (task, language) -> (split, shots, baseline score per example)
    let mut sets: BTreeMap<(String, String), TaskSetRows> = BTreeMap::new();
    for row in dir.read_examples()? {
        let Some(score) = row.score() else { continue };
        let entry = sets.entry((row.task.clone(), row.language.clone())).or_insert_with(|| (row.split.clone(), row.shots, BTreeMap::new()));
        entry.2.insert(row.example.clone(), f64::from(score));
    }
    for ((task_name, language), (split, shots, baseline)) in sets {
        let task: TaskName = task_name.parse()?;
        if !opts.tasks.is_empty() && !opts.tasks.contains(&task) || !wanted(&opts.languages, &language, Some(task)) {
            continue;
        }
        let split: TaskSplit = split.parse()?;
        let evaluation = format!("{task_name}/{language}");
        let loaded = load(task, &language, &data, &LoadOptions { split, shots, seed })?;
        let order = shuffled(baseline.keys().cloned().collect(), seed);
        let items = select_items(loaded.items, &order, &evaluation)?;
        let sequence = BettingConfidenceSequence::new(-1.0, 1.0, Some(baseline.len()), opts.alpha, BETTING_GRID_STEPS)
            .map_err(|e| refused(format!("{evaluation}: {e}")))?;
        let work = Work::Task { loaded: LoadedTask { items, ..loaded }, max_new_tokens };
        out.push(SetState::new(evaluation, work, baseline, Sequence::Betting(sequence)));
    }
    Ok(())
}

/// The text sets of one `eval ppl` run folder.
fn text_sets(folder: &Path, opts: &GateOptions, out: &mut Vec<SetState>) -> Result<(), WorkflowError> {
    let dir = PerplexityDir::at(folder);
    let provenance = dir.read_provenance()?;
    let number = |key: &str| -> Result<usize, WorkflowError> {
        setting(&provenance, key, folder)?
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| refused(format!("{}: '{key}' is not a number", folder.display())))
    };
    if provenance.settings.get("objective").is_some_and(|o| o.get("span_corruption").is_some()) {
        return Err(refused(format!(
            "{}: the baseline scored T5's span-corruption objective, which the gate does not re-score; \
             give it a baseline of `eval ppl` without --objective",
            folder.display()
        )));
    }
    let window = WindowOptions { context: number("context")?, stride: number("stride")? };
    let source: Option<String> = setting(&provenance, "source", folder)?.as_str().map(str::to_string);
    let limit = provenance.settings.get("limit").and_then(|v| v.as_u64()).map(|v| v as usize);
    // The FLORES folder the baseline read (its reports name the folder as the file read).
    let recorded_root = provenance
        .settings
        .get("text")
        .and_then(|t| t.get(0))
        .and_then(|r| r.get("files"))
        .and_then(|f| f.get(0))
        .and_then(|f| f.as_str())
        .map(PathBuf::from)
        .filter(|p| p.is_dir());
    let mut sets: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for row in dir.read_documents()? {
        if row.bytes == 0 || !row.nll.is_finite() {
            return Err(refused(format!(
                "{}: document {} has {} bytes and NLL {}; re-run the baseline",
                folder.display(),
                row.document,
                row.bytes,
                row.nll
            )));
        }
        let bits_per_byte = row.nll / (row.bytes as f64 * std::f64::consts::LN_2);
        sets.entry((row.language.clone(), row.source.clone())).or_default().insert(row.document.clone(), bits_per_byte);
    }
    for ((language, source_name), baseline) in sets {
        if !opts.tasks.is_empty() || !wanted(&opts.languages, &language, None) {
            continue;
        }
        if language == "file" {
            return Err(refused(format!(
                "{}: a --file baseline cannot be re-read by the gate; evaluate languages (--langs) for a gate baseline",
                folder.display()
            )));
        }
        let evaluation = format!("{language}/{source_name}");
        let flores = opts.data.clone().or_else(|| recorded_root.clone().filter(|_| source_name == "flores"));
        let set = super::perplexity::language_sets(std::slice::from_ref(&language), source.as_deref(), flores.as_deref(), limit)?.remove(0);
        let by_id: BTreeMap<&str, &String> = set.documents.iter().map(|(id, text)| (id.as_str(), text)).collect();
        let order = shuffled(baseline.keys().cloned().collect(), TEXT_ORDER_SEED);
        let documents = order
            .iter()
            .map(|id| {
                by_id.get(id.as_str()).map(|text| (id.clone(), (*text).clone())).ok_or_else(|| {
                    refused(format!("{evaluation}: the baseline's document '{id}' is not in the text read now; give --data the folder the baseline read"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sequence = AsymptoticConfidenceSequence::new(opts.alpha, AsymptoticConfidenceSequence::DEFAULT_OPTIMAL_AT)
            .map_err(|e| refused(format!("{evaluation}: {e}")))?;
        let work = Work::Text { language, source: set.source, window, documents };
        out.push(SetState::new(evaluation, work, baseline, Sequence::Asymptotic(sequence)));
    }
    Ok(())
}

/// Every evaluation set of the baseline, narrowed by the options; refuses an empty result.
fn plan(opts: &GateOptions) -> Result<Vec<SetState>, WorkflowError> {
    if !opts.baseline.is_dir() {
        return Err(refused(format!(
            "--baseline {} is not a folder; give the results folder of `polyprune eval tasks` or `eval ppl`",
            opts.baseline.display()
        )));
    }
    let files = find_score_files(&opts.baseline)?;
    let mut sets = Vec::new();
    let mut with_rows = 0;
    for file in &files {
        let path = opts.baseline.join(file);
        let folder = path.parent().unwrap_or(&opts.baseline).to_path_buf();
        match read_scores(&path)? {
            Scores::Examples(rows) if rows.is_empty() => continue,
            Scores::Documents(rows) if rows.is_empty() => continue,
            Scores::Examples(_) => task_sets(&folder, opts, &mut sets)?,
            Scores::Documents(_) => text_sets(&folder, opts, &mut sets)?,
        }
        with_rows += 1;
    }
    let mut seen = HashSet::new();
    if let Some(twice) = sets.iter().find(|s| !seen.insert(s.evaluation.clone())) {
        return Err(refused(format!(
            "--baseline {} holds two results of {}; pass the run folder of one evaluation",
            opts.baseline.display(),
            twice.evaluation
        )));
    }
    if sets.is_empty() {
        let what =
            if with_rows == 0 { "holds no examples.csv or documents.csv with rows" } else { "has nothing left after --tasks/--langs" };
        return Err(refused(format!(
            "--baseline {} {what}; give a results folder of `polyprune eval tasks` or `eval ppl` (and tasks/languages it evaluated)",
            opts.baseline.display()
        )));
    }
    for t in &opts.tasks {
        if !sets.iter().any(|s| s.evaluation.starts_with(&format!("{t}/"))) {
            return Err(refused(format!(
                "--tasks {t}: the baseline did not evaluate this task; it has {}",
                sets.iter().map(|s| s.evaluation.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(sets)
}

/// Runs one round of the set's next examples on the candidate and feeds the differences in.
fn run_round(set: &mut SetState, scorer: &mut dyn LanguageModel, round: usize) -> Result<(), WorkflowError> {
    let range = set.used..(set.used + round).min(set.available());
    let mut differences = Vec::with_capacity(range.len());
    match &set.work {
        Work::Task { loaded, max_new_tokens } => {
            let part = LoadedTask { items: loaded.items.slice(range.clone()), ..loaded.clone() };
            let result = downstream::evaluate(scorer, &part, *max_new_tokens, |_| {})?;
            let scores: Vec<(String, f64)> = match &result.records {
                TaskRecords::Choice(records) => records.iter().map(|r| (r.id.clone(), f64::from(u8::from(r.pred == r.gold)))).collect(),
                TaskRecords::Generation(records) => records.iter().map(|(r, _)| (r.id.clone(), f64::from(u8::from(r.correct)))).collect(),
            };
            for (id, candidate) in scores {
                differences.push(candidate - set.baseline[&id]);
            }
            set.task_parts.push(result);
        }
        Work::Text { window, documents, .. } => {
            let scored = scorer.score_documents(&documents[range.clone()], *window, &mut |_| {})?;
            for d in &scored {
                let candidate = d.nll / (d.bytes as f64 * std::f64::consts::LN_2);
                differences.push(set.baseline[&d.id] - candidate);
            }
            set.documents.extend(scored);
        }
    }
    for d in differences {
        set.observe(d)?;
    }
    set.used = range.end;
    Ok(())
}

/// The whole gate's decision from the sets' (see the module documentation).
fn overall(sets: &[SetDecision]) -> (Decision, Bounds, String) {
    let worse: Vec<&SetDecision> = sets.iter().filter(|s| s.decision == Decision::Worse).collect();
    let deciding = if !worse.is_empty() {
        worse.into_iter().max_by(|a, b| a.interval.upper.total_cmp(&b.interval.upper))
    } else {
        sets.iter().min_by(|a, b| a.interval.lower.total_cmp(&b.interval.lower))
    }
    .expect("the plan has at least one set");
    let decision = if sets.iter().any(|s| s.decision == Decision::Worse) {
        Decision::Worse
    } else if sets.iter().all(|s| s.decision == Decision::NotWorse) {
        Decision::NotWorse
    } else {
        Decision::Undecided
    };
    (decision, deciding.interval, deciding.evaluation.clone())
}

pub fn gate(opts: &GateOptions, progress: &mut dyn Progress) -> Result<GateRun, WorkflowError> {
    if !(opts.margin.is_finite() && opts.margin >= 0.0) {
        return Err(refused(format!("--margin {} must be a number >= 0 (e.g. 0.02)", opts.margin)));
    }
    if opts.round == 0 {
        return Err(refused("--round must be at least 1 (examples per evaluation set per round)".into()));
    }
    let mut sets = plan(opts)?;
    let model = ModelFolder::open(&opts.model)?;
    let overrides = match &opts.masks {
        Some(dir) => model.mask_overrides(dir)?,
        None => Vec::new(),
    };
    let batch_tokens = opts.batch_tokens.max(1);
    let mut scorer = model.scorer(&opts.runtime, &overrides, batch_tokens)?;
    let started = std::time::Instant::now();
    let available: usize = sets.iter().map(SetState::available).sum();
    progress.stage("gate", available as u64);
    let mut round = 0;
    while sets.iter().any(|s| s.decision.is_none()) {
        round += 1;
        for set in sets.iter_mut().filter(|s| s.decision.is_none()) {
            run_round(set, scorer.as_mut(), opts.round)?;
            set.decision = set.decide(opts.margin);
            if let Some(d) = set.decision {
                let i = set.interval();
                progress.note(&format!(
                    "{}: {} after {} of {} (interval [{:+.4}, {:+.4}], margin -{})",
                    set.evaluation,
                    d.as_str(),
                    set.used,
                    set.available(),
                    i.lower(),
                    i.upper(),
                    opts.margin
                ));
            }
        }
        progress.detail(&format!("round {round}"));
        progress.advance(sets.iter().map(|s| s.used as u64).sum());
    }
    progress.finish();

    let evaluations: Vec<SetDecision> = sets.iter().map(SetState::summary).collect();
    let (decision, interval, deciding) = overall(&evaluations);
    let record = GateRecord {
        decision,
        examples: evaluations.iter().map(|s| s.examples).sum(),
        available,
        interval,
        deciding,
        margin: opts.margin,
        alpha: opts.alpha.value(),
        round: opts.round,
        baseline: opts.baseline.clone(),
        evaluations,
    };
    let settings = serde_json::json!({
        "baseline": opts.baseline, "masks": opts.masks, "data": opts.data, "margin": opts.margin, "alpha": opts.alpha.value(),
        "round": opts.round, "batch_tokens": batch_tokens, "decision": decision,
    });
    let provenance = Provenance::new("gate", model.identity(), settings, started);
    let results_dir = new_run(&opts.results, RunKind::Gate, model.name());
    let out = GateDir::at(&results_dir);
    let mut task_results = Vec::new();
    let mut text_scores = Vec::new();
    for set in sets {
        match set.work {
            Work::Task { .. } => task_results.extend(combine(set.task_parts)?),
            Work::Text { language, source, .. } => text_scores.push(LanguageScore { language, source, documents: set.documents }),
        }
    }
    if !task_results.is_empty() {
        out.tasks().write(&task_results, &provenance)?;
    }
    if !text_scores.is_empty() {
        out.perplexity().write(&text_scores, &provenance)?;
    }
    out.write_decision(&record)?;
    Ok(GateRun { record, results_dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(evaluation: &str, decision: Decision, lower: f64, upper: f64) -> SetDecision {
        SetDecision {
            evaluation: evaluation.into(),
            metric: "accuracy".into(),
            decision,
            examples: 10,
            available: 20,
            mean_difference: (lower + upper) / 2.0,
            interval: Bounds { lower, upper },
            sequence: "betting-without-replacement".into(),
        }
    }

    #[test]
    fn one_worse_set_makes_the_gate_worse_and_all_must_be_not_worse_to_pass() {
        let sets = [set("a", Decision::NotWorse, -0.01, 0.2), set("b", Decision::Worse, -0.5, -0.3), set("c", Decision::Worse, -0.4, -0.1)];
        assert_eq!(overall(&sets), (Decision::Worse, Bounds { lower: -0.4, upper: -0.1 }, "c".to_string()));
        let sets = [set("a", Decision::NotWorse, -0.01, 0.2), set("b", Decision::NotWorse, -0.03, 0.1)];
        assert_eq!(overall(&sets), (Decision::NotWorse, Bounds { lower: -0.03, upper: 0.1 }, "b".to_string()));
        let sets = [set("a", Decision::NotWorse, -0.01, 0.2), set("b", Decision::Undecided, -0.2, 0.1)];
        assert_eq!(overall(&sets).0, Decision::Undecided);
        assert_eq!(serde_json::to_value(Decision::NotWorse).unwrap(), "not-worse");
    }

    #[test]
    fn narrowing_matches_codes_aliases_and_task_prefixes() {
        let langs = vec!["de".to_string(), "sib200:fra_Latn".to_string()];
        assert!(wanted(&langs, "deu_Latn", None));
        assert!(wanted(&langs, "fra_Latn", Some(TaskName::Sib200)));
        assert!(!wanted(&langs, "fra_Latn", Some(TaskName::Xcopa)));
        assert!(!wanted(&langs, "eng_Latn", None));
        assert!(wanted(&[], "eng_Latn", None));
    }

    #[test]
    fn the_order_is_seeded_and_a_permutation() {
        let ids: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        let a = shuffled(ids.clone(), 1);
        assert_eq!(a, shuffled(ids.clone(), 1));
        assert_ne!(a, shuffled(ids.clone(), 2));
        assert_ne!(a, ids);
        let mut sorted = a.clone();
        sorted.sort_by_key(|s| s.parse::<usize>().unwrap());
        assert_eq!(sorted, ids);
    }
}
