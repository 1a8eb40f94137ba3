//! Greedy generation for generation tasks (MGSM).
//!
//! Requests decode in batches of similar prompt length (bounded by [`DECODE_KEYS`]); each step
//! appends to every unfinished sequence of the batch the argmax token at its last position
//! ([`Scorer::greedy_step`]), and finished sequences leave the batch. A sequence stops at the
//! first of: one of the request's `until` strings appearing in the generated text (the
//! answer is the text before it, as in lm-evaluation-harness), the end-of-sequence token,
//! `max_new_tokens` generated tokens, or the model's `max_positions`.
//!
//! # Cost
//!
//! On the cached path ([`Scorer::greedy_step`]) the prompts run once and each step runs
//! only the token appended, against the key/value cache: a P-token prompt that generates T
//! tokens costs `P + T - 1` token positions, linear in T (each step's attention still reads
//! the whole cache). Models without cache graphs run the whole sequence again at every step,
//! `T·P + T(T−1)/2` positions, batched by length. Either way the cost is bounded by the cap
//! on T (the task's `max_new_tokens`, lowered with `--max-new-tokens`) and by the number of
//! examples (`--limit`).

use super::choices::TaskEvalError;
use super::scorer::{DecodeBatch, Scorer};
use crate::tasks::GenerationRequest;

/// Why a generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Keys (rows x (prompt + new tokens)) per decoding batch: bounds the batch's key/value cache,
/// 36 KiB per key on Gemma 3 270M (18 blocks, k and v, 256 floats each), 144 MiB at this bound
/// (twice that while a step writes the grown cache).
const DECODE_KEYS: usize = 4096;

/// The result of one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenerationStats {
    /// Requests served.
    pub requests: usize,
    /// Model runs (batches), over all steps.
    pub runs: usize,
    /// Token positions run, the quantity the cost bound above is about: `prompt_positions +
    /// step_positions`.
    pub tokens_run: usize,
    /// Positions run by each batch's first step (the prompts, right-padded to the batch's
    /// longest).
    pub prompt_positions: usize,
    /// Positions run by the later steps: one per row and step on the cached path (linear in new
    /// tokens), whole sequences again on the full-sequence path.
    pub step_positions: usize,
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
        states.push(ids);
    }
    let mut finished = requests.len() - active.len();
    // Longest prompts first, so that a batch's rows pad little.
    let mut order: Vec<usize> = (0..active.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(states[i].len()));
    let mut active: Vec<Option<(Active, Vec<u32>)>> = active.into_iter().zip(states).map(Some).collect();
    let mut start = 0;
    while start < order.len() {
        let first = active[order[start]].as_ref().expect("not taken yet");
        let width = first.1.len() + first.0.cap;
        let take = (DECODE_KEYS / width).max(1).min(order.len() - start);
        let (mut rows, prompts): (Vec<Active>, Vec<Vec<u32>>) =
            order[start..start + take].iter().map(|&i| active[i].take().expect("each row once")).unzip();
        start += take;
        let mut batch = DecodeBatch::new(prompts);
        let mut first = true;
        while !batch.is_empty() {
            let (next, cost) = scorer.greedy_step(&mut batch)?;
            stats.runs += cost.runs;
            stats.tokens_run += cost.tokens;
            if std::mem::take(&mut first) {
                stats.prompt_positions += cost.tokens;
            } else {
                stats.step_positions += cost.tokens;
            }
            let mut keep = Vec::with_capacity(rows.len());
            for (i, (a, token)) in rows.iter().zip(next).enumerate() {
                let ids = batch.ids(i);
                let new = &ids[a.prompt..];
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
                } else if ids.len() >= max_positions {
                    Some((text, StopReason::ContextFull))
                } else {
                    None
                };
                if let Some((text, stop)) = stop {
                    done[a.index] = Some(Generated { text, new_tokens: new.len(), prompt_tokens: a.prompt, stop });
                    finished += 1;
                }
                keep.push(done[a.index].is_none());
            }
            let mut k = keep.iter();
            rows.retain(|_| *k.next().expect("one flag per row"));
            batch.retain(&keep);
            on_progress(finished);
        }
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
