//! One downstream task in one language, end to end: the loaded examples go through the
//! model (`choices.rs` or `generate.rs`) and come back as per-example records and
//! mean ± standard error per metric (`tasks::scoring`).
//!
//! Metrics: those `tasks.toml` lists for the task and, for multiple-choice tasks, always
//! both `acc` (argmax of the summed log-likelihood) and `acc_norm` (argmax of the
//! log-likelihood divided by the target's length in Unicode characters, delimiter
//! excluded; see `tasks::scoring`). Partial-choice tasks (XWinograd) score one shared
//! continuation, so their `acc_norm` would equal `acc` and is not reported.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::choices::{ChoiceStats, TaskEvalError};
use super::generate::{Generated, GenerationStats};
use super::language_model::LanguageModel;
use crate::tasks::{
    score_generation, summarize_choices, summarize_generations, Catalog, ChoiceRecord, GenerationRecord, LoadedTask, Metric, OutputType,
    TaskItems, TaskName, TaskSpec, TaskSplit, TaskSummary,
};

/// Keeps the subsample draw apart from the other uses of the user's seed (few-shot
/// demonstrations, translation distractors).
const SUBSAMPLE_STREAM: u64 = 0x5ab5_a3b1_e000_0001;

/// Per-example results of one task and language.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "records", rename_all = "snake_case")]
pub enum TaskRecords {
    Choice(Vec<ChoiceRecord>),
    Generation(Vec<(GenerationRecord, Generated)>),
}

/// What the model did, counted.
// Untagged: a choice run's counters have `sequences_run`, which a generation run's lack, so
// reading back picks the right variant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunStats {
    Choice(ChoiceStats),
    Generation(GenerationStats),
}

/// One task in one language (or pair), scored.
#[derive(Clone, Debug, Serialize)]
pub struct TaskResult {
    pub task: TaskName,
    /// FLORES code, or "source-target" for translation pairs.
    pub language: String,
    pub split: TaskSplit,
    pub shots: usize,
    pub summary: TaskSummary,
    pub records: TaskRecords,
    pub stats: RunStats,
    pub seconds: f64,
}

/// The metrics reported for `spec` (see the module documentation).
pub fn reported_metrics(spec: &TaskSpec) -> Vec<Metric> {
    let mut metrics = spec.metrics.clone();
    if spec.output == OutputType::MultipleChoice {
        for m in [Metric::Acc, Metric::AccNorm] {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
    }
    metrics
}

/// At most `n` examples, drawn with a seeded generator and kept in file order. The draw
/// depends only on (seed, number of examples), so languages with equally long files
/// (SIB-200, FLORES, XCOPA, MGSM are parallel) get the same rows, and every model gets
/// the same rows: per-example results stay paired. A prefix would not do: some files are
/// sorted by label (SIB-200's test split starts with 50 science/technology rows).
pub fn limit_items(items: TaskItems, n: usize, seed: u64) -> TaskItems {
    fn pick<T>(v: Vec<T>, n: usize, seed: u64) -> Vec<T> {
        if n >= v.len() {
            return v;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SUBSAMPLE_STREAM);
        let mut keep = sample(&mut rng, v.len(), n).into_vec();
        keep.sort_unstable();
        let mut keep = keep.into_iter().peekable();
        v.into_iter()
            .enumerate()
            .filter_map(|(i, x)| {
                (keep.peek() == Some(&i)).then(|| {
                    keep.next();
                    x
                })
            })
            .collect()
    }
    match items {
        TaskItems::Choice(v) => TaskItems::Choice(pick(v, n, seed)),
        TaskItems::Generation(v) => TaskItems::Generation(pick(v, n, seed)),
    }
}

/// Runs a loaded task through the model. `max_new_tokens` lowers the task's own cap on
/// generated tokens; `on_progress` gets the number of examples done.
pub fn evaluate(
    scorer: &mut dyn LanguageModel,
    loaded: &LoadedTask,
    max_new_tokens: Option<usize>,
    mut on_progress: impl FnMut(usize),
) -> Result<TaskResult, TaskEvalError> {
    let started = std::time::Instant::now();
    let (records, stats) = match &loaded.items {
        TaskItems::Choice(examples) => {
            let (records, stats) = scorer.score_examples(examples, &mut on_progress)?;
            (TaskRecords::Choice(records), RunStats::Choice(stats))
        }
        TaskItems::Generation(examples) => {
            let requests: Vec<(&str, _)> = examples.iter().map(|e| (e.id.as_str(), &e.request)).collect();
            let (outputs, stats) = scorer.generate(&requests, max_new_tokens, &mut on_progress)?;
            let records: Vec<(GenerationRecord, Generated)> =
                examples.iter().zip(outputs).map(|(e, g)| (score_generation(e, &g.text), g)).collect();
            (TaskRecords::Generation(records), RunStats::Generation(stats))
        }
    };
    let summary = summarize(loaded.task, &records)?;
    Ok(TaskResult {
        task: loaded.task,
        language: loaded.language.label(),
        split: loaded.split,
        shots: loaded.shots,
        summary,
        records,
        stats,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A task result as a resumable evaluation keeps it between runs: everything but the summary,
/// which [`ResultPart::into_result`] recomputes from the records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultPart {
    pub task: TaskName,
    pub language: String,
    pub split: TaskSplit,
    pub shots: usize,
    pub records: TaskRecords,
    pub stats: RunStats,
    pub seconds: f64,
}

impl From<TaskResult> for ResultPart {
    fn from(r: TaskResult) -> Self {
        ResultPart {
            task: r.task,
            language: r.language,
            split: r.split,
            shots: r.shots,
            records: r.records,
            stats: r.stats,
            seconds: r.seconds,
        }
    }
}

impl ResultPart {
    pub fn into_result(self) -> Result<TaskResult, TaskEvalError> {
        let summary = summarize(self.task, &self.records)?;
        Ok(TaskResult {
            task: self.task,
            language: self.language,
            split: self.split,
            shots: self.shots,
            summary,
            records: self.records,
            stats: self.stats,
            seconds: self.seconds,
        })
    }

    /// Examples scored.
    pub fn len(&self) -> usize {
        match &self.records {
            TaskRecords::Choice(r) => r.len(),
            TaskRecords::Generation(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `n` examples (a resumed run drops what a killed round left half-written).
    pub fn truncate(&mut self, n: usize) {
        match &mut self.records {
            TaskRecords::Choice(r) => r.truncate(n),
            TaskRecords::Generation(r) => r.truncate(n),
        }
    }

    /// 1 for a correct example and 0 for a wrong one, in order: what paired accuracy tests compare.
    pub fn correct(&self) -> Vec<f64> {
        match &self.records {
            TaskRecords::Choice(r) => r.iter().map(|r| f64::from(u8::from(r.pred == r.gold))).collect(),
            TaskRecords::Generation(r) => r.iter().map(|(r, _)| f64::from(u8::from(r.correct))).collect(),
        }
    }
}

/// Mean ± standard error per reported metric of a task's records.
fn summarize(task: TaskName, records: &TaskRecords) -> Result<TaskSummary, TaskEvalError> {
    Ok(match records {
        TaskRecords::Choice(records) => {
            let spec = Catalog::get().spec(task);
            let metrics = reported_metrics(spec).into_iter().map(|m| summarize_choices(records, m)).collect::<Result<Vec<_>, _>>()?;
            let chance =
                if records.is_empty() { 0.0 } else { records.iter().map(ChoiceRecord::chance).sum::<f64>() / records.len() as f64 };
            TaskSummary { task, n: records.len(), chance, metrics }
        }
        TaskRecords::Generation(records) => {
            let plain: Vec<GenerationRecord> = records.iter().map(|(r, _)| r.clone()).collect();
            TaskSummary { task, n: plain.len(), chance: 0.0, metrics: vec![summarize_generations(&plain)] }
        }
    })
}

/// One result from the results of consecutive parts of the same task and language (the
/// rounds of a sequential evaluation): records in order, counters and seconds added, the
/// summary recomputed over all records. `None` for no parts.
pub fn combine(parts: Vec<TaskResult>) -> Result<Option<TaskResult>, TaskEvalError> {
    let mut parts = parts.into_iter();
    let Some(mut whole) = parts.next() else { return Ok(None) };
    for part in parts {
        match (&mut whole.records, part.records) {
            (TaskRecords::Choice(all), TaskRecords::Choice(more)) => all.extend(more),
            (TaskRecords::Generation(all), TaskRecords::Generation(more)) => all.extend(more),
            _ => unreachable!("one task's parts are all choice or all generation"),
        }
        match (&mut whole.stats, part.stats) {
            (RunStats::Choice(all), RunStats::Choice(more)) => {
                all.requests += more.requests;
                all.sequences_run += more.sequences_run;
                all.tokens_run += more.tokens_run;
                all.truncated += more.truncated;
            }
            (RunStats::Generation(all), RunStats::Generation(more)) => {
                all.requests += more.requests;
                all.runs += more.runs;
                all.tokens_run += more.tokens_run;
                all.prompt_positions += more.prompt_positions;
                all.step_positions += more.step_positions;
                all.truncated += more.truncated;
            }
            _ => unreachable!("one task's parts are all choice or all generation"),
        }
        whole.seconds += part.seconds;
    }
    whole.summary = summarize(whole.task, &whole.records)?;
    Ok(Some(whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ChoiceStats;
    use crate::tasks::{Choice, Example};

    fn examples(n: usize) -> TaskItems {
        TaskItems::Choice(
            (0..n)
                .map(|i| Example::new(format!("t/{i}"), 0, vec![Choice::new("c", " ", "a"), Choice::new("c", " ", "b")]).unwrap())
                .collect(),
        )
    }

    fn ids(items: &TaskItems) -> Vec<String> {
        match items {
            TaskItems::Choice(v) => v.iter().map(|e| e.id.clone()).collect(),
            TaskItems::Generation(v) => v.iter().map(|e| e.id.clone()).collect(),
        }
    }

    #[test]
    fn the_subsample_is_seeded_ordered_and_the_same_for_equal_sizes() {
        let a = ids(&limit_items(examples(200), 10, 7));
        let b = ids(&limit_items(examples(200), 10, 7));
        let c = ids(&limit_items(examples(200), 10, 8));
        assert_eq!(a.len(), 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let pos: Vec<usize> = a.iter().map(|s| s[2..].parse().unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        // Not a prefix: label-sorted files would otherwise give one label only.
        assert_ne!(pos, (0..10).collect::<Vec<_>>());
        assert_eq!(ids(&limit_items(examples(5), 10, 7)).len(), 5);
    }

    #[test]
    fn multiple_choice_always_reports_acc_and_acc_norm() {
        let catalog = Catalog::get();
        assert_eq!(reported_metrics(catalog.spec(TaskName::Xcopa)), vec![Metric::Acc, Metric::AccNorm]);
        assert_eq!(reported_metrics(catalog.spec(TaskName::Xwinograd)), vec![Metric::Acc]);
        assert_eq!(reported_metrics(catalog.spec(TaskName::Mgsm)), vec![Metric::ExactMatch]);
    }

    fn part(ids: &[(&str, usize)], seconds: f64) -> TaskResult {
        // Two choices, gold 0; `pred` is the given index (so correct iff it is 0).
        let records: Vec<ChoiceRecord> = ids
            .iter()
            .map(|&(id, pred)| ChoiceRecord {
                id: id.into(),
                lls: vec![-1.0, -2.0],
                chars: vec![1, 1],
                bytes: vec![1, 1],
                tokens: vec![1, 1],
                greedy: vec![true, false],
                gold: 0,
                pred,
                pred_norm: pred,
                pred_bytes: pred,
            })
            .collect();
        let summary = summarize(TaskName::Sib200, &TaskRecords::Choice(records.clone())).unwrap();
        let stats = ChoiceStats { requests: 2 * ids.len(), sequences_run: ids.len(), tokens_run: 10 * ids.len(), truncated: 0 };
        TaskResult {
            task: TaskName::Sib200,
            language: "eng_Latn".into(),
            split: TaskSplit::Test,
            shots: 0,
            summary,
            records: TaskRecords::Choice(records),
            stats: RunStats::Choice(stats),
            seconds,
        }
    }

    /// Rounds put together: records in order, counters and seconds added, and the accuracy
    /// recomputed over all of them (3 right of 5 = 0.6, not the mean of the parts' 1/2 and 2/3).
    #[test]
    fn combined_rounds_are_one_result_over_all_their_examples() {
        let whole = combine(vec![part(&[("a", 0), ("b", 1)], 1.0), part(&[("c", 0), ("d", 0), ("e", 1)], 2.0)]).unwrap().unwrap();
        let TaskRecords::Choice(records) = &whole.records else { panic!("choice records") };
        assert_eq!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
        assert_eq!(whole.summary.n, 5);
        let acc = whole.summary.metrics.iter().find(|m| m.metric == Metric::Acc).unwrap();
        assert!((acc.mean - 0.6).abs() < 1e-12, "{}", acc.mean);
        let RunStats::Choice(stats) = &whole.stats else { panic!("choice stats") };
        assert_eq!((stats.requests, stats.sequences_run, stats.tokens_run), (10, 5, 50));
        assert_eq!(whole.seconds, 3.0);
        assert!(combine(Vec::new()).unwrap().is_none());
    }
}
