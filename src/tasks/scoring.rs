//! Scoring: from model outputs to per-example records and aggregate metrics.
//!
//! This is the only place where answers are judged. For choice tasks, with ℓᵢ the summed
//! log-likelihood of choice i's continuation (Gao et al., 2021, lm-evaluation-harness):
//! * `acc`: prediction = argmax ℓᵢ;
//! * `acc_norm`: prediction = argmax ℓᵢ / charsᵢ, chars counted in Unicode scalar values
//!   of the target (the continuation without its delimiter), which removes the bias
//!   towards short answers (Brown et al., 2020 normalise per token; the harness per
//!   character, which does not depend on the tokenizer);
//! * `acc_bytes`: prediction = argmax ℓᵢ / bytesᵢ, bytes of the target in UTF-8, which
//!   weighs scripts by their encoded size rather than their character count.
//!
//! Ties go to the lowest index, as numpy's argmax does. For generation tasks
//! `exact_match` compares the last number of the output with the gold number
//! (answer.rs). Aggregates are the mean and its standard error, the sample standard
//! deviation (n - 1 in the denominator) over √n, as the harness reports.

use serde::Serialize;

use super::answer::last_number;
use super::error::{Result, TaskError};
use super::example::{Example, GenerationExample};
use super::spec::{Metric, TaskName, TaskSpec};

/// Log-likelihoods above this are rejected as impossible; the slack absorbs rounding in a
/// log-softmax that should give exactly 0 for a certain token.
const MAX_LOG_LIKELIHOOD: f64 = 1e-6;

/// What the model reports for one (context, continuation) pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChoiceOutcome {
    /// Summed log-likelihood (natural log) of the continuation's tokens.
    pub log_likelihood: f64,
    /// Number of continuation tokens.
    pub tokens: usize,
    /// Whether greedy decoding would have produced the continuation.
    pub is_greedy: bool,
}

/// The scored form of one choice example.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChoiceRecord {
    /// Example id.
    pub id: String,
    /// Log-likelihood per choice.
    pub lls: Vec<f64>,
    /// Target length per choice, in characters.
    pub chars: Vec<usize>,
    /// Target length per choice, in UTF-8 bytes.
    pub bytes: Vec<usize>,
    /// Continuation tokens per choice.
    pub tokens: Vec<usize>,
    /// Whether each continuation is the greedy one.
    pub greedy: Vec<bool>,
    /// Gold index.
    pub gold: usize,
    /// Prediction by raw log-likelihood (`acc`).
    pub pred: usize,
    /// Prediction by log-likelihood per character (`acc_norm`).
    pub pred_norm: usize,
    /// Prediction by log-likelihood per byte (`acc_bytes`).
    pub pred_bytes: usize,
}

impl ChoiceRecord {
    /// Whether the prediction for `metric` is right; `None` for metrics of generation.
    pub fn correct(&self, metric: Metric) -> Option<bool> {
        match metric {
            Metric::Acc => Some(self.pred == self.gold),
            Metric::AccNorm => Some(self.pred_norm == self.gold),
            Metric::AccBytes => Some(self.pred_bytes == self.gold),
            Metric::ExactMatch => None,
        }
    }

    /// Probability of being right by guessing uniformly.
    pub fn chance(&self) -> f64 {
        1.0 / self.lls.len() as f64
    }
}

/// The scored form of one generation example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GenerationRecord {
    /// Example id.
    pub id: String,
    /// What the model generated.
    pub output: String,
    /// The number read from the output, if any.
    pub extracted: Option<String>,
    /// Gold answer.
    pub gold: String,
    /// Whether `extracted` equals `gold`.
    pub correct: bool,
}

/// A metric over a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSummary {
    /// Which metric.
    pub metric: Metric,
    /// Number of examples.
    pub n: usize,
    /// Mean of the per-example scores (0/1), i.e. the accuracy.
    pub mean: f64,
    /// Standard error of the mean; `None` below two examples.
    pub stderr: Option<f64>,
}

/// Scores one choice example from the model's outcomes, one per choice in order.
pub fn score_choices(example: &Example, outcomes: &[ChoiceOutcome]) -> Result<ChoiceRecord> {
    if outcomes.len() != example.choices.len() {
        return Err(TaskError::OutcomeCount { id: example.id.clone(), outcomes: outcomes.len(), choices: example.choices.len() });
    }
    if let Some((index, o)) =
        outcomes.iter().enumerate().find(|(_, o)| !o.log_likelihood.is_finite() || o.log_likelihood > MAX_LOG_LIKELIHOOD)
    {
        return Err(TaskError::BadLogLikelihood { id: example.id.clone(), index, value: o.log_likelihood });
    }
    let lls: Vec<f64> = outcomes.iter().map(|o| o.log_likelihood).collect();
    // Targets are non-empty (Example::new checks), so the lengths are at least 1.
    let chars: Vec<usize> = example.choices.iter().map(|c| c.target().chars().count()).collect();
    let bytes: Vec<usize> = example.choices.iter().map(|c| c.target().len()).collect();
    let per = |lengths: &[usize]| -> Vec<f64> { lls.iter().zip(lengths).map(|(ll, &n)| ll / n as f64).collect() };
    Ok(ChoiceRecord {
        id: example.id.clone(),
        pred: argmax(&lls),
        pred_norm: argmax(&per(&chars)),
        pred_bytes: argmax(&per(&bytes)),
        lls,
        chars,
        bytes,
        tokens: outcomes.iter().map(|o| o.tokens).collect(),
        greedy: outcomes.iter().map(|o| o.is_greedy).collect(),
        gold: example.gold,
    })
}

/// Scores one generation example from the generated text.
pub fn score_generation(example: &GenerationExample, output: &str) -> GenerationRecord {
    let extracted = last_number(output);
    GenerationRecord {
        id: example.id.clone(),
        output: output.to_string(),
        correct: extracted.as_deref() == Some(example.gold.as_str()),
        extracted,
        gold: example.gold.clone(),
    }
}

/// Index of the largest value; the first one on ties. Values are finite (checked).
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate().skip(1) {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Every metric of a task over its records, with the chance level to compare against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    /// Which task.
    pub task: TaskName,
    /// Number of examples scored.
    pub n: usize,
    /// Accuracy of uniform guessing (mean of 1/choices; 0 for generation tasks).
    pub chance: f64,
    /// One summary per metric the task reports, in the task's order.
    pub metrics: Vec<MetricSummary>,
}

/// The task's metrics over choice records.
pub fn summarize_task_choices(spec: &TaskSpec, records: &[ChoiceRecord]) -> Result<TaskSummary> {
    let metrics = spec.metrics.iter().map(|&m| summarize_choices(records, m)).collect::<Result<Vec<_>>>()?;
    let chance = if records.is_empty() { 0.0 } else { records.iter().map(ChoiceRecord::chance).sum::<f64>() / records.len() as f64 };
    Ok(TaskSummary { task: spec.name, n: records.len(), chance, metrics })
}

/// The task's metric over generation records.
pub fn summarize_task_generations(spec: &TaskSpec, records: &[GenerationRecord]) -> TaskSummary {
    TaskSummary { task: spec.name, n: records.len(), chance: 0.0, metrics: vec![summarize_generations(records)] }
}

/// `metric` over choice records.
pub fn summarize_choices(records: &[ChoiceRecord], metric: Metric) -> Result<MetricSummary> {
    let scores: Option<Vec<f64>> = records.iter().map(|r| r.correct(metric).map(f64::from)).collect();
    match scores {
        Some(scores) => Ok(summary(metric, &scores)),
        None => Err(TaskError::MetricNotApplicable {
            metric: metric.to_string(),
            kind: "multiple-choice".into(),
            applicable: "acc, acc_norm, acc_bytes".into(),
        }),
    }
}

/// `exact_match` over generation records.
pub fn summarize_generations(records: &[GenerationRecord]) -> MetricSummary {
    let scores: Vec<f64> = records.iter().map(|r| f64::from(r.correct)).collect();
    summary(Metric::ExactMatch, &scores)
}

fn summary(metric: Metric, scores: &[f64]) -> MetricSummary {
    let (mean, stderr) = mean_and_stderr(scores);
    MetricSummary { metric, n: scores.len(), mean, stderr }
}

/// Mean and standard error (sample standard deviation / √n). The mean of no values is
/// NaN; the standard error needs two values.
pub fn mean_and_stderr(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, None);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some((variance / n).sqrt()))
}

/// Accuracy expected from uniform guessing: the mean of 1/choices over the examples
/// (1/K when every example has K choices). Zero for no examples.
pub fn chance_level(examples: &[Example]) -> f64 {
    if examples.is_empty() {
        return 0.0;
    }
    examples.iter().map(Example::chance).sum::<f64>() / examples.len() as f64
}

#[cfg(test)]
mod tests {
    use super::super::example::{Choice, GenerationRequest};
    use super::*;

    fn outcome(ll: f64) -> ChoiceOutcome {
        ChoiceOutcome { log_likelihood: ll, tokens: 1, is_greedy: false }
    }

    /// Hand-worked case: targets "a" (1 char), "bbbb" (4), "ccccc" (5) and
    /// "日本" (2 chars, 6 bytes); gold is 1.
    /// ll:        -3.0   -6.0   -9.0   -5.0
    /// ll/char:   -3.0   -1.5   -1.8   -2.5   -> argmax 1
    /// ll/byte:   -3.0   -1.5   -1.8   -0.833 -> argmax 3
    /// raw:       argmax 0.
    #[test]
    fn acc_acc_norm_and_acc_bytes_on_a_hand_worked_case() {
        let choices = ["a", "bbbb", "ccccc", "日本"].iter().map(|t| Choice::new("ctx", " ", t)).collect();
        let example = Example::new("t/1".into(), 1, choices).unwrap();
        let r = score_choices(&example, &[outcome(-3.0), outcome(-6.0), outcome(-9.0), outcome(-5.0)]).unwrap();
        assert_eq!((r.pred, r.pred_norm, r.pred_bytes), (0, 1, 3));
        assert_eq!(r.chars, vec![1, 4, 5, 2]);
        assert_eq!(r.bytes, vec![1, 4, 5, 6]);
        assert_eq!(r.correct(Metric::Acc), Some(false));
        assert_eq!(r.correct(Metric::AccNorm), Some(true));
        assert_eq!(r.correct(Metric::ExactMatch), None);
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        assert_eq!(argmax(&[-1.0, -0.5, -0.5]), 1);
        assert_eq!(argmax(&[-2.0, -2.0]), 0);
    }

    #[test]
    fn bad_model_outputs_are_errors_not_panics() {
        let choices = vec![Choice::new("c", " ", "x"), Choice::new("c", " ", "y")];
        let example = Example::new("t/2".into(), 0, choices).unwrap();
        let err = score_choices(&example, &[outcome(-1.0)]).unwrap_err().to_string();
        assert_eq!(err, "example t/2: got 1 scores for 2 choices; score every choice of the example once, in order");
        let err = score_choices(&example, &[outcome(-1.0), outcome(f64::NAN)]).unwrap_err().to_string();
        assert!(err.starts_with("example t/2, choice 1: log-likelihood NaN"), "{err}");
        assert!(score_choices(&example, &[outcome(0.5), outcome(-1.0)]).is_err());
    }

    #[test]
    fn stderr_is_sample_sd_over_root_n() {
        // 0,1,1,1: mean 0.75; squared deviations 0.5625 + 3 * 0.0625 = 0.75; sample
        // variance 0.75 / 3 = 0.25; stderr sqrt(0.25 / 4) = 0.25.
        let (mean, se) = mean_and_stderr(&[0.0, 1.0, 1.0, 1.0]);
        assert_eq!(mean, 0.75);
        assert!((se.unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(mean_and_stderr(&[1.0]).1, None);
    }

    #[test]
    fn summaries_and_chance() {
        let two =
            |gold: usize| Example::new(format!("t/{gold}"), gold, vec![Choice::new("c", " ", "x"), Choice::new("c", " ", "yy")]).unwrap();
        let examples = vec![two(0), two(1)];
        let records: Vec<ChoiceRecord> = examples.iter().map(|e| score_choices(e, &[outcome(-1.0), outcome(-1.5)]).unwrap()).collect();
        // acc: pred 0 both times -> 1 of 2. acc_norm: -1.0 vs -0.75 -> pred 1 -> 1 of 2.
        let acc = summarize_choices(&records, Metric::Acc).unwrap();
        assert_eq!((acc.n, acc.mean), (2, 0.5));
        // Scores 1,0: sample sd = sqrt(0.5) = 0.7071; / sqrt(2) = 0.5.
        assert!((acc.stderr.unwrap() - 0.5).abs() < 1e-15);
        assert!(summarize_choices(&records, Metric::ExactMatch).is_err());
        assert_eq!(chance_level(&examples), 0.5);
        // SIB-200 reports acc then acc_norm; chance is 1/2 here because of two choices.
        let spec = super::super::spec::Catalog::get().spec(TaskName::Sib200);
        let task = summarize_task_choices(spec, &records).unwrap();
        assert_eq!((task.n, task.chance), (2, 0.5));
        assert_eq!(task.metrics.iter().map(|m| (m.metric, m.mean)).collect::<Vec<_>>(), vec![(Metric::Acc, 0.5), (Metric::AccNorm, 0.5)]);
    }

    #[test]
    fn generation_is_right_only_when_the_last_number_matches() {
        let example = GenerationExample {
            id: "mgsm/en/test/line1".into(),
            request: GenerationRequest { context: "Q".into(), until: vec![], max_new_tokens: 8 },
            gold: "18".into(),
            delimiter: " ".into(),
        };
        assert!(score_generation(&example, " She makes 9 * 2 = $18.").correct);
        assert!(!score_generation(&example, " 18 eggs, so 16").correct);
        let r = score_generation(&example, " eighteen");
        assert_eq!((r.correct, r.extracted.as_deref()), (false, None));
        let s = summarize_generations(&[score_generation(&example, "18"), r]);
        assert_eq!((s.metric, s.n, s.mean), (Metric::ExactMatch, 2, 0.5));
    }
}
