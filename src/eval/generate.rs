//! Greedy generation for generation tasks (MGSM).
//!
//! Each step appends to every unfinished sequence the argmax token at its last position
//! ([`Scorer::greedy_step`]). A sequence stops at the
//! first of: one of the request's `until` strings appearing in the generated text (the
//! answer is the text before it, as in lm-evaluation-harness), the end-of-sequence token,
//! `max_new_tokens` generated tokens, or the model's `max_positions`.
//!
//! # Cost
//!
//! On the cached path ([`Scorer::greedy_step`]) the prompt runs once and each step runs
//! only the token appended, against the key/value cache: a P-token prompt that generates T
//! tokens costs `P + T - 1` token positions, linear in T (each step's attention still reads
//! the whole cache). Models without cache graphs run the whole sequence again at every step,
//! `T·P + T(T−1)/2` positions, batched by length. Either way the cost is bounded by the cap
//! on T (the task's `max_new_tokens`, lowered with `--max-new-tokens`) and by the number of
//! examples (`--limit`).

use super::choices::TaskEvalError;
use super::scorer::{DecodeState, Scorer};
use crate::tasks::GenerationRequest;

/// Why a generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// One of the request's stop strings was generated.
    Until,
    /// The end-of-sequence token was generated.
    EndOfSequence,
    /// The cap on new tokens was reached.
    MaxTokens,
    /// The model's longest input was reached.
    ContextFull,
}

/// The result of one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Generated {
    /// Generated text, cut before the first stop string.
    pub text: String,
    /// Tokens generated.
    pub new_tokens: usize,
    /// Tokens of the prompt (after any truncation).
    pub prompt_tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Counters of one generation run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GenerationStats {
    /// Requests served.
    pub requests: usize,
    /// Model runs (batches), over all steps.
    pub runs: usize,
    /// Token positions run, the quantity the cost bound above is about.
    pub tokens_run: usize,
    /// Prompts cut from the left to leave room for generation.
    pub truncated: usize,
}

struct Active {
    index: usize,
    prompt: usize,
    cap: usize,
}

/// The text before the earliest stop string, if any stop string occurs.
fn cut_at_stop<'a>(text: &'a str, until: &[String]) -> Option<&'a str> {
    until.iter().filter(|u| !u.is_empty()).filter_map(|u| text.find(u.as_str())).min().map(|at| &text[..at])
}

/// Generates greedily for every request; `max_new_tokens` (if given) lowers each
/// request's own cap. `on_progress` gets the number of finished requests after each step.
pub fn generate(
    scorer: &mut Scorer,
    requests: &[(&str, &GenerationRequest)],
    max_new_tokens: Option<usize>,
    mut on_progress: impl FnMut(usize),
) -> Result<(Vec<Generated>, GenerationStats), TaskEvalError> {
    let max_positions = scorer.model.card.max_positions;
    let eos = scorer.model.card.eos_token_id;
    let mut stats = GenerationStats { requests: requests.len(), ..Default::default() };
    let mut done: Vec<Option<Generated>> = vec![None; requests.len()];
    let mut active = Vec::with_capacity(requests.len());
    let mut states = Vec::with_capacity(requests.len());
    for (index, (id, request)) in requests.iter().enumerate() {
        let cap = max_new_tokens.map_or(request.max_new_tokens, |m| m.min(request.max_new_tokens));
        let mut ids = scorer.encode(&request.context)?;
        // Keep room for at least one new token; a longer prompt loses its left end
        // (few-shot demonstrations first), as in the harness.
        if ids.len() >= max_positions {
            if max_positions < 2 {
                return Err(TaskEvalError::PromptTooLong { id: id.to_string(), max: max_positions });
            }
            ids.drain(..ids.len() + 1 - max_positions);
            stats.truncated += 1;
        }
        let prompt = ids.len();
        if cap == 0 {
            done[index] = Some(Generated { text: String::new(), new_tokens: 0, prompt_tokens: prompt, stop: StopReason::MaxTokens });
            continue;
        }
        active.push(Active { index, prompt, cap });
        states.push(DecodeState::new(ids));
    }
    let mut finished = requests.len() - active.len();
    while !active.is_empty() {
        let (next, cost) = scorer.greedy_step(&mut states)?;
        stats.runs += cost.runs;
        stats.tokens_run += cost.tokens;
        let mut still = Vec::with_capacity(active.len());
        let mut still_states = Vec::with_capacity(active.len());
        for ((a, mut state), token) in active.into_iter().zip(states).zip(next) {
            state.ids.push(token);
            let new = &state.ids[a.prompt..];
            let request = requests[a.index].1;
            let text = scorer
                .tokenizer()
                .decode(new, true)
                .map_err(|e| crate::eval::ScorerError::Tokenizer { path: scorer.model.tokenizer_path(), message: e.to_string() })?;
            let stop = if let Some(before) = cut_at_stop(&text, &request.until) {
                Some((before.to_string(), StopReason::Until))
            } else if Some(token) == eos {
                Some((text, StopReason::EndOfSequence))
            } else if new.len() >= a.cap {
                Some((text, StopReason::MaxTokens))
            } else if state.ids.len() >= max_positions {
                Some((text, StopReason::ContextFull))
            } else {
                None
            };
            match stop {
                Some((text, stop)) => {
                    done[a.index] = Some(Generated { text, new_tokens: new.len(), prompt_tokens: a.prompt, stop });
                    finished += 1;
                }
                None => {
                    still.push(a);
                    still_states.push(state);
                }
            }
        }
        active = still;
        states = still_states;
        on_progress(finished);
    }
    // Every request was either finished at once or left the active set with a result.
    Ok((done.into_iter().map(|g| g.expect("every request finishes")).collect(), stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_cut_before_the_earliest_stop_string() {
        let until = vec!["\n\n".to_string(), "Question:".to_string()];
        assert_eq!(cut_at_stop(" 18\n\nQuestion: x", &until), Some(" 18"));
        assert_eq!(cut_at_stop(" 18 Question:\n\n", &until), Some(" 18 "));
        assert_eq!(cut_at_stop(" 18\n", &until), None);
        assert_eq!(cut_at_stop("abc", &["".to_string()]), None);
    }
}
