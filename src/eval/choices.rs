//! Scoring multiple-choice and partial-choice examples with the model.
//!
//! For each [`Choice`] the model gives the summed log-likelihood of the continuation's
//! tokens given the context (lm-evaluation-harness's `loglikelihood` request). Everything
//! goes through [`Scorer::token_logprobs_and_greedy`], i.e. the graph's `token_logprobs`
//! and `argmax` heads: the vocabulary-sized logits never leave the runtime.
//!
//! # Where the continuation starts (the boundary rule)
//!
//! Tokenizers do not split text additively: `tok(context) ++ tok(continuation)` is often
//! not `tok(context + continuation)` (a word-initial space, or a merge across the
//! boundary), and the model only ever saw the second form. So each choice is tokenized
//! twice, the context alone and the whole string (both with the start token first), and
//! **the continuation's tokens are the whole string's tokens after the longest common
//! prefix of the two**. When the tokenizer keeps the context's tokens intact (the usual
//! case with a delimiter such as a space, which SentencePiece attaches to the next word),
//! that prefix is exactly the context and the scored tokens are exactly the continuation.
//! When a merge crosses the boundary, the context's last token(s) are re-cut and scored
//! too, so no character of the continuation goes unscored and no character of it is
//! conditioned on. The start token is never scored, and at least one token always is.
//!
//! # Length limit
//!
//! A sequence longer than the model's `max_positions` loses tokens from the *left* of its
//! context (as the harness does); if even the continuation does not fit, that is an error
//! naming the example. Truncations are counted in [`ChoiceStats`].
//!
//! # Sharing work
//!
//! The graph has no key/value cache, so a context shared by several choices cannot be run
//! once and continued: each (context + continuation) is a full run. What is shared:
//! * identical token sequences (the same request from two examples, or two choices whose
//!   texts tokenize alike) are run once;
//! * each context is tokenized once per example;
//! * the requests of many examples are sorted by length and packed into right-padded
//!   batches bounded by `Scorer::batch_tokens`, so the choices of one example, which have
//!   similar lengths, land in the same batch and padding stays small. ONNX Runtime spreads
//!   each batch over all cores (intra-op threads); a second session running another batch
//!   at the same time would double the memory of the weights for no gain on the same cores.

use std::collections::HashMap;

use super::scorer::{Scorer, ScorerError};
use crate::tasks::{score_choices, Choice, ChoiceOutcome, ChoiceRecord, Example, TaskError};

/// Examples sent to the model per round; bounds memory held for tokenized requests and
/// sets how often progress is reported, while still giving the batcher enough to sort.
const EXAMPLES_PER_ROUND: usize = 64;

/// Errors of model-side task evaluation.
#[derive(Debug, thiserror::Error)]
pub enum TaskEvalError {
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("example {id}: the continuation alone has {tokens} tokens, more than the model's {max} positions allow; this example cannot be scored with this model")]
    ContinuationTooLong { id: String, tokens: usize, max: usize },
    #[error("example {id}: the prompt has no room left to generate in the model's {max} positions; use a model with a longer context or fewer shots")]
    PromptTooLong { id: String, max: usize },
}

/// One choice as the model sees it: the whole string's ids (possibly left-truncated)
/// and where the scored continuation tokens start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedChoice {
    /// Token ids of context + continuation, start token first unless truncated away.
    pub ids: Vec<u32>,
    /// Index in `ids` of the first continuation token; at least 1.
    pub start: usize,
    /// Whether tokens were dropped from the left to fit the model.
    pub truncated: bool,
}

impl PreparedChoice {
    /// The continuation's tokens.
    pub fn continuation(&self) -> &[u32] {
        &self.ids[self.start..]
    }
}

/// Counters of one scoring run, for the log and the provenance record.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChoiceStats {
    /// Choices scored.
    pub requests: usize,
    /// Distinct token sequences run through the model.
    pub sequences_run: usize,
    /// Token positions run (sum of the distinct sequences' lengths).
    pub tokens_run: usize,
    /// Requests whose context was cut from the left to fit.
    pub truncated: usize,
}

/// Index where the continuation starts in `whole`, by the boundary rule in the module
/// documentation: the length of the longest common prefix of `context` and `whole`,
/// kept within `1..whole.len()` so that the start token is never scored and at least
/// one token always is. `whole` must have at least two tokens.
pub fn continuation_start(context: &[u32], whole: &[u32]) -> usize {
    let common = context.iter().zip(whole).take_while(|(a, b)| a == b).count();
    common.clamp(1, whole.len().saturating_sub(1).max(1))
}

/// Tokenizes one choice and finds its continuation; `context_ids` is the context's own
/// tokenization (shared by the choices of an example), `id` names the example in errors.
fn prepare_with_context(scorer: &Scorer, context_ids: &[u32], choice: &Choice, id: &str) -> Result<PreparedChoice, TaskEvalError> {
    let whole = scorer.encode(&format!("{}{}", choice.context(), choice.continuation()))?;
    if whole.len() < 2 {
        // Only possible with a tokenizer that drops the text entirely.
        return Err(ScorerError::EmptyText { what: format!("example {id}") }.into());
    }
    let start = continuation_start(context_ids, &whole);
    fit(whole, start, scorer.model.card.max_positions, id)
}

/// Cuts tokens from the left so that the sequence fits `max` positions.
fn fit(ids: Vec<u32>, start: usize, max: usize, id: &str) -> Result<PreparedChoice, TaskEvalError> {
    if ids.len() <= max {
        return Ok(PreparedChoice { ids, start, truncated: false });
    }
    let drop = ids.len() - max;
    // The first kept token is the condition for the first scored one, so it must precede it.
    if drop >= start {
        return Err(TaskEvalError::ContinuationTooLong { id: id.to_string(), tokens: ids.len() - start, max });
    }
    Ok(PreparedChoice { ids: ids[drop..].to_vec(), start: start - drop, truncated: true })
}

/// Tokenizes one choice on its own (the context is tokenized here too).
pub fn prepare_choice(scorer: &Scorer, choice: &Choice, id: &str) -> Result<PreparedChoice, TaskEvalError> {
    let context_ids = scorer.encode(choice.context())?;
    prepare_with_context(scorer, &context_ids, choice, id)
}

/// Tokenizes every choice of an example, each distinct context once.
fn prepare_example(scorer: &Scorer, example: &Example) -> Result<Vec<PreparedChoice>, TaskEvalError> {
    let mut contexts: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut out = Vec::with_capacity(example.choices.len());
    for choice in &example.choices {
        if !contexts.contains_key(choice.context()) {
            contexts.insert(choice.context(), scorer.encode(choice.context())?);
        }
        out.push(prepare_with_context(scorer, &contexts[choice.context()], choice, &example.id)?);
    }
    Ok(out)
}

/// The outcome of one prepared choice from its sequence's log-probs and greedy tokens.
fn outcome(choice: &PreparedChoice, logprobs: &[f32], greedy: &[u32]) -> ChoiceOutcome {
    // logprobs[t] scores ids[t + 1], so the continuation ids[start..] is logprobs[start - 1..].
    let range = choice.start - 1..choice.ids.len() - 1;
    let log_likelihood = logprobs[range.clone()].iter().map(|&x| x as f64).sum();
    let is_greedy = greedy.len() >= range.end && greedy[range] == choice.ids[choice.start..];
    ChoiceOutcome { log_likelihood, tokens: choice.ids.len() - choice.start, is_greedy }
}

/// Runs prepared choices through the model, each distinct sequence once.
pub fn score_prepared(
    scorer: &mut Scorer,
    choices: &[&PreparedChoice],
    stats: &mut ChoiceStats,
) -> Result<Vec<ChoiceOutcome>, TaskEvalError> {
    let mut slot_of: HashMap<&[u32], usize> = HashMap::new();
    let mut unique: Vec<&[u32]> = Vec::new();
    let slots: Vec<usize> = choices
        .iter()
        .map(|c| {
            *slot_of.entry(c.ids.as_slice()).or_insert_with(|| {
                unique.push(c.ids.as_slice());
                unique.len() - 1
            })
        })
        .collect();
    let scored = scorer.token_logprobs_and_greedy(&unique)?;
    stats.requests += choices.len();
    stats.sequences_run += unique.len();
    stats.tokens_run += unique.iter().map(|s| s.len()).sum::<usize>();
    stats.truncated += choices.iter().filter(|c| c.truncated).count();
    Ok(choices.iter().zip(slots).map(|(c, slot)| outcome(c, &scored[slot].logprobs, &scored[slot].greedy)).collect())
}

/// Scores every example, returning one record per example in order. `on_progress` gets
/// the number of examples done after each round.
pub fn score_examples(
    scorer: &mut Scorer,
    examples: &[Example],
    mut on_progress: impl FnMut(usize),
) -> Result<(Vec<ChoiceRecord>, ChoiceStats), TaskEvalError> {
    let mut stats = ChoiceStats::default();
    let mut records = Vec::with_capacity(examples.len());
    for round in examples.chunks(EXAMPLES_PER_ROUND) {
        let prepared: Vec<Vec<PreparedChoice>> = round.iter().map(|e| prepare_example(scorer, e)).collect::<Result<_, _>>()?;
        let flat: Vec<&PreparedChoice> = prepared.iter().flatten().collect();
        let outcomes = score_prepared(scorer, &flat, &mut stats)?;
        let mut rest = outcomes.as_slice();
        for example in round {
            let (mine, tail) = rest.split_at(example.choices.len());
            records.push(score_choices(example, mine)?);
            rest = tail;
        }
        on_progress(records.len());
    }
    Ok((records, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continuation_starts_after_the_common_prefix() {
        // Context kept intact: the continuation is what follows it.
        assert_eq!(continuation_start(&[2, 10, 11], &[2, 10, 11, 12, 13]), 3);
        // A merge across the boundary re-cuts the context's last token: it is scored too.
        assert_eq!(continuation_start(&[2, 10, 11], &[2, 10, 99, 13]), 2);
        // Never the start token, always at least one token.
        assert_eq!(continuation_start(&[7], &[2, 5]), 1);
        assert_eq!(continuation_start(&[2, 5, 6], &[2, 5]), 1);
    }

    #[test]
    fn long_sequences_lose_context_from_the_left() {
        let p = fit((0..10).collect(), 7, 8, "t/1").unwrap();
        assert_eq!((p.ids, p.start, p.truncated), ((2..10).collect::<Vec<u32>>(), 5, true));
        let p = fit((0..4).collect(), 2, 8, "t/1").unwrap();
        assert!(!p.truncated);
        let err = fit((0..10).collect(), 2, 8, "t/1").unwrap_err().to_string();
        assert!(err.starts_with("example t/1: the continuation alone has 8 tokens"), "{err}");
    }

    #[test]
    fn outcome_sums_the_continuation_and_checks_greedy() {
        let c = PreparedChoice { ids: vec![2, 5, 6, 7], start: 2, truncated: false };
        let lp = [-1.0f32, -0.5, -0.25];
        let o = outcome(&c, &lp, &[5, 6, 7]);
        assert_eq!((o.log_likelihood, o.tokens, o.is_greedy), (-0.75, 2, true));
        assert!(!outcome(&c, &lp, &[5, 6, 8]).is_greedy);
    }
}
