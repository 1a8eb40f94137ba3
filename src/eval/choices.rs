//! Scoring multiple-choice and partial-choice examples with the model.
//!
//! For each [`Choice`] the model gives the summed log-likelihood of the continuation's
//! tokens given the context (lm-evaluation-harness's `loglikelihood` request). Everything
//! goes through [`Scorer::score_continuations`]: the log-probabilities of the scored tokens and
//! the greedy tokens come back, the vocabulary-sized logits never leave the runtime.
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
//! The choices of an example share their context: it runs once, and its continuations run on
//! its key/value cache, batched with those of the other examples of a round
//! ([`Scorer::score_continuation_groups`]; few-shot demonstrations are part of the context, so
//! they are shared too). The shared part is the
//! longest common prefix of the choices' conditioning tokens, so a choice whose boundary was
//! re-cut by a merge still gets exactly the tokens the rule above scores. Identical
//! continuations of one context run once, and each context is tokenized once per example.
//! Models without cache graphs run each (context + continuation) whole; the scorer decides.

use std::collections::HashMap;

use super::scorer::{ContinuationGroup, Scorer, ScorerError};
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
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Consecutive choices that share a context, as `(shared prefix length, indices)`. A choice
/// joins the current group when the common prefix of its conditioning tokens (`ids[..start]`)
/// with the group's keeps at least half of the group's prefix: the choices of one example
/// (and of a partial-choice example, whose contexts differ after a shared start) stay together,
/// while two examples sharing only a start token or a template's first words do not. The
/// prefix never reaches a scored token, so a choice whose boundary tokens were re-cut by a
/// merge shares only the common prefix.
fn context_groups(choices: &[&PreparedChoice]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, c) in choices.iter().enumerate() {
        let mine = &c.ids[..c.start];
        if let Some((p, members)) = groups.last_mut() {
            let first = choices[members[0]];
            let common = first.ids[..*p].iter().zip(mine).take_while(|(a, b)| a == b).count();
            if common >= 1 && 2 * common >= *p {
                *p = common;
                members.push(i);
                continue;
            }
        }
        groups.push((mine.len(), vec![i]));
    }
    groups
}

/// Runs prepared choices through the model: each group of choices sharing a context
/// ([`context_groups`]) runs that context once, and the distinct continuations of all groups
/// run in batches on their contexts' caches ([`Scorer::score_continuation_groups`]).
pub fn score_prepared(
    scorer: &mut Scorer,
    choices: &[&PreparedChoice],
    stats: &mut ChoiceStats,
) -> Result<Vec<ChoiceOutcome>, TaskEvalError> {
    let groups = context_groups(choices);
    let mut requests = Vec::with_capacity(groups.len());
    let mut slots = Vec::with_capacity(groups.len());
    for (p, members) in &groups {
        let mut slot_of: HashMap<&[u32], usize> = HashMap::new();
        let mut unique: Vec<&[u32]> = Vec::new();
        let mine: Vec<usize> = members
            .iter()
            .map(|&m| {
                let rest = &choices[m].ids[*p..];
                *slot_of.entry(rest).or_insert_with(|| {
                    unique.push(rest);
                    unique.len() - 1
                })
            })
            .collect();
        stats.sequences_run += unique.len();
        requests.push(ContinuationGroup { context: &choices[members[0]].ids[..*p], rests: unique });
        slots.push(mine);
    }
    let (scored, cost) = scorer.score_continuation_groups(&requests)?;
    stats.tokens_run += cost.tokens;
    let mut outcomes: Vec<Option<ChoiceOutcome>> = vec![None; choices.len()];
    for (((p, members), mine), scored) in groups.iter().zip(slots).zip(scored) {
        for (&m, slot) in members.iter().zip(mine) {
            // Back to whole-sequence indexing (logprobs[t] scores ids[t + 1]); positions inside
            // the shared context are not scored by anyone and stay NaN.
            let mut lp = vec![f32::NAN; p - 1];
            lp.extend_from_slice(&scored[slot].logprobs);
            let mut greedy = vec![u32::MAX; p - 1];
            greedy.extend_from_slice(&scored[slot].greedy);
            outcomes[m] = Some(outcome(choices[m], &lp, &greedy));
        }
    }
    stats.requests += choices.len();
    stats.truncated += choices.iter().filter(|c| c.truncated).count();
    Ok(outcomes.into_iter().map(|o| o.expect("every choice is in a group")).collect())
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
