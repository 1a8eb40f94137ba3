//! What a task hands to the model: scored choices or a generation request.
//!
//! Following lm-evaluation-harness (Gao et al., 2021), a scored request is the pair
//! (context, continuation) where continuation = target_delimiter + target; the model
//! returns the summed log-likelihood of the continuation's tokens given the context.
//! The delimiter (usually one space) sits at the *start of the continuation*, so that
//! word-initial tokens carry their leading space the way they do in running text.
//! Length normalisation uses the target alone, without the delimiter, as the harness does.

use serde::Serialize;

/// One candidate of a choice example: what the model scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    context: String,
    continuation: String,
    /// Byte offset in `continuation` where the target starts (after the delimiter).
    target_start: usize,
}

impl Choice {
    /// A choice whose continuation is `delimiter` followed by `target`.
    pub fn new(context: impl Into<String>, delimiter: &str, target: &str) -> Self {
        Self { context: context.into(), continuation: format!("{delimiter}{target}"), target_start: delimiter.len() }
    }

    /// Text the model conditions on.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Text whose log-likelihood is summed: delimiter + target.
    pub fn continuation(&self) -> &str {
        &self.continuation
    }

    /// The target alone (continuation without the delimiter); lengths are taken from it.
    pub fn target(&self) -> &str {
        &self.continuation[self.target_start..]
    }

    /// Prepends few-shot demonstrations (already joined with their separator) to the context.
    pub(super) fn with_prefix(&self, prefix: &str) -> Self {
        Self { context: format!("{prefix}{}", self.context), ..self.clone() }
    }
}

/// A multiple-choice or partial-choice example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// Stable id: task/language/split/record.
    pub id: String,
    /// Index of the right choice.
    pub gold: usize,
    /// The candidates, in the data set's order.
    pub choices: Vec<Choice>,
}

impl Example {
    /// Builds an example. Fails, saying why, when there are fewer than two choices, a
    /// target is empty (nothing to score or to normalise by), or `gold` is out of range;
    /// the loaders turn the reason into an error naming the record.
    pub fn new(id: String, gold: usize, choices: Vec<Choice>) -> Result<Self, String> {
        if choices.len() < 2 {
            return Err(format!("{} choice(s); at least two are needed", choices.len()));
        }
        if let Some(i) = choices.iter().position(|c| c.target().trim().is_empty()) {
            return Err(format!("choice {} has empty text", i + 1));
        }
        if gold >= choices.len() {
            return Err(format!("the gold answer (index {gold}) is outside the {} choices", choices.len()));
        }
        Ok(Self { id, gold, choices })
    }

    /// The gold choice written out as a solved demonstration for few-shot prompts.
    pub fn demonstration(&self) -> String {
        let gold = &self.choices[self.gold];
        format!("{}{}", gold.context(), gold.continuation())
    }

    /// Probability of being right by guessing uniformly.
    pub fn chance(&self) -> f64 {
        1.0 / self.choices.len() as f64
    }
}

/// What the model is asked to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationRequest {
    /// Prompt.
    pub context: String,
    /// Generation stops at the first of these strings (not included in the answer).
    pub until: Vec<String>,
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
}

/// A generation example with its gold answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationExample {
    /// Stable id: task/language/split/record.
    pub id: String,
    /// The request.
    pub request: GenerationRequest,
    /// The gold answer in normalised form (for MGSM: a plain decimal number).
    pub gold: String,
    /// Text between the prompt and the gold answer in demonstrations.
    pub(super) delimiter: String,
}

impl GenerationExample {
    /// The example written out with its gold answer, for few-shot prompts.
    pub fn demonstration(&self) -> String {
        format!("{}{}{}", self.request.context, self.delimiter, self.gold)
    }
}

/// The examples of one loaded task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "examples", rename_all = "snake_case")]
pub enum TaskItems {
    /// Examples scored by log-likelihood (multiple or partial choice).
    Choice(Vec<Example>),
    /// Examples scored on generated text.
    Generation(Vec<GenerationExample>),
}

impl TaskItems {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            TaskItems::Choice(v) => v.len(),
            TaskItems::Generation(v) => v.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Examples `range`, in order (a round of a sequential evaluation).
    pub fn slice(&self, range: std::ops::Range<usize>) -> TaskItems {
        match self {
            TaskItems::Choice(v) => TaskItems::Choice(v[range].to_vec()),
            TaskItems::Generation(v) => TaskItems::Generation(v[range].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_starts_the_continuation_but_not_the_target() {
        let c = Choice::new("The man turned on the faucet therefore", " ", "water flowed.");
        assert_eq!(c.continuation(), " water flowed.");
        assert_eq!(c.target(), "water flowed.");
        let joined = format!("{}{}", c.context(), c.continuation());
        assert_eq!(joined, "The man turned on the faucet therefore water flowed.");
    }

    #[test]
    fn examples_need_two_choices_and_a_gold_in_range() {
        let c = || Choice::new("q", " ", "a");
        assert!(Example::new("x".into(), 2, vec![c(), c()]).unwrap_err().contains("index 2"));
        assert!(Example::new("x".into(), 0, vec![c()]).is_err());
        assert!(Example::new("x".into(), 0, vec![c(), Choice::new("q", " ", " ")]).unwrap_err().contains("choice 2"));
        let e = Example::new("x".into(), 1, vec![c(), Choice::new("q", " ", "b")]).unwrap();
        assert_eq!(e.demonstration(), "q b");
        assert_eq!(e.chance(), 0.5);
    }
}
