//! The evaluations of [`super::language_model::LanguageModel`] on an encoder-decoder, as
//! lm-evaluation-harness's seq2seq backend runs them, so that figures compare with theirs.
//!
//! * **Perplexity**: each document's `loglikelihood_rolling` over windows of `context` labels
//!   ([`Seq2SeqScorer::rolling_windows`]: the first window's encoder input is `</s>`, later
//!   windows get the tokens before them). Every token of the document's ids, `</s>` included,
//!   is predicted once; the decoder-only `stride` has no meaning here (lm-eval's windows are
//!   disjoint). The windows of a group of documents go to one `loglikelihood` call, which
//!   encodes each distinct encoder input once.
//! * **Choices**: the context (trailing whitespace moved to the continuation, as lm-eval does)
//!   goes to the encoder with `</s>`, the continuation (no special tokens) is the decoder's
//!   labels. The choices of an example share their context, which is encoded once; its
//!   continuations are decoded in one batch against it. The encoder has no position limit
//!   (relative positions), so nothing is truncated.
//! * **Generation** (MGSM): greedy decoding with the decoder's self-attention cache against
//!   the prompt encoded once, stopping at the first `until` string, `</s>` or the token cap;
//!   the answer is the text before the stop string.

use std::collections::HashMap;

use super::choices::{ChoiceStats, TaskEvalError};
use super::generate::{Generated, GenerationStats, StopReason};
use super::perplexity::DocumentScore;
use super::scorer::ScorerError;
use super::seq2seq::{Seq2SeqError, Seq2SeqScorer};
use crate::tasks::{score_choices, ChoiceOutcome, ChoiceRecord, Example, GenerationRequest};

/// Documents scored per `loglikelihood` call, and examples per round of choices.
const GROUP: usize = 64;

/// Per-document rolling log-likelihood over windows of `max_length` labels (see the module doc).
pub fn score_documents(
    scorer: &mut Seq2SeqScorer,
    docs: &[(String, String)],
    max_length: usize,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<DocumentScore>, ScorerError> {
    let max_length = max_length.max(1);
    let mut results = Vec::with_capacity(docs.len());
    for group in docs.chunks(GROUP) {
        let mut windows = Vec::new();
        let mut owner = Vec::new();
        let mut tokens = Vec::with_capacity(group.len());
        for (d, (id, text)) in group.iter().enumerate() {
            let ids = scorer.encode_context(text)?;
            if ids.is_empty() {
                return Err(ScorerError::EmptyText { what: format!("document '{id}'") });
            }
            let mine = Seq2SeqScorer::rolling_windows(&ids, scorer.spec().eos_token_id, max_length);
            owner.extend(std::iter::repeat_n(d, mine.len()));
            windows.extend(mine);
            tokens.push(ids.len());
        }
        let scores = scorer.loglikelihood(&windows)?;
        let mut nll = vec![0f64; group.len()];
        for (&d, s) in owner.iter().zip(&scores) {
            nll[d] -= s.logprob;
        }
        for (d, (id, text)) in group.iter().enumerate() {
            results.push(DocumentScore { id: id.clone(), nll: nll[d], tokens: tokens[d], bytes: text.len() });
        }
        on_done(results.len());
    }
    Ok(results)
}

/// lm-eval's split of a request: trailing whitespace of the context belongs to the continuation.
pub fn split_request<'a>(context: &'a str, continuation: &str) -> (&'a str, String) {
    let trimmed = context.trim_end();
    (trimmed, format!("{}{continuation}", &context[trimmed.len()..]))
}

/// One record per example (see the module doc).
pub fn score_examples(
    scorer: &mut Seq2SeqScorer,
    examples: &[Example],
    on_progress: &mut dyn FnMut(usize),
) -> Result<(Vec<ChoiceRecord>, ChoiceStats), TaskEvalError> {
    let mut stats = ChoiceStats::default();
    let mut records = Vec::with_capacity(examples.len());
    for round in examples.chunks(GROUP) {
        // Distinct (context, continuation) pairs of the round; choices point at their pair.
        let mut contexts: HashMap<String, Vec<u32>> = HashMap::new();
        let mut pair_of: HashMap<(Vec<u32>, Vec<u32>), usize> = HashMap::new();
        let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
        let mut slots = Vec::new();
        for example in round {
            for choice in &example.choices {
                let (context, continuation) = split_request(choice.context(), choice.continuation());
                if !contexts.contains_key(context) {
                    let ids = scorer.encode_context(context).map_err(ScorerError::from)?;
                    stats.tokens_run += ids.len();
                    contexts.insert(context.to_string(), ids);
                }
                let labels = scorer.encode_continuation(&continuation).map_err(ScorerError::from)?;
                if labels.is_empty() {
                    return Err(ScorerError::EmptyText { what: format!("the continuation of example {}", example.id) }.into());
                }
                let key = (contexts[context].clone(), labels);
                let next = pairs.len();
                let slot = *pair_of.entry(key.clone()).or_insert_with(|| {
                    pairs.push(key);
                    next
                });
                slots.push(slot);
            }
        }
        stats.sequences_run += pairs.len();
        stats.tokens_run += pairs.iter().map(|(_, l)| l.len()).sum::<usize>();
        stats.requests += slots.len();
        let scores = scorer.loglikelihood(&pairs).map_err(ScorerError::from)?;
        let mut slots = slots.into_iter();
        for example in round {
            let outcomes: Vec<ChoiceOutcome> = example
                .choices
                .iter()
                .map(|_| {
                    let p = slots.next().expect("one slot per choice");
                    ChoiceOutcome { log_likelihood: scores[p].logprob, tokens: pairs[p].1.len(), is_greedy: scores[p].greedy }
                })
                .collect();
            records.push(score_choices(example, &outcomes)?);
        }
        on_progress(records.len());
    }
    Ok((records, stats))
}

/// The text before the earliest of `until`, if any occurs.
fn cut_at_stop<'a>(text: &'a str, until: &[String]) -> Option<&'a str> {
    until.iter().filter(|u| !u.is_empty()).filter_map(|u| text.find(u.as_str())).min().map(|at| &text[..at])
}

/// Greedy generation for every request (see the module doc).
pub fn generate(
    scorer: &mut Seq2SeqScorer,
    requests: &[(&str, &GenerationRequest)],
    max_new_tokens: Option<usize>,
    on_progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Generated>, GenerationStats), TaskEvalError> {
    let mut stats = GenerationStats { requests: requests.len(), ..Default::default() };
    let eos = scorer.spec().eos_token_id;
    let tokenizer = scorer.tokenizer().clone();
    let mut out = Vec::with_capacity(requests.len());
    for (_, request) in requests {
        let cap = max_new_tokens.map_or(request.max_new_tokens, |m| m.min(request.max_new_tokens));
        let prompt = scorer.encode_context(&request.context).map_err(ScorerError::from)?;
        if cap == 0 {
            out.push(Generated { text: String::new(), new_tokens: 0, prompt_tokens: prompt.len(), stop: StopReason::MaxTokens });
            on_progress(out.len());
            continue;
        }
        // Stops at the step whose text holds a stop string, as the decoder path does.
        let mut failure = None;
        let tokens = scorer.generate_greedy_until(&prompt, cap, |tokens| match tokenizer.decode(&tokens[1..], true) {
            Ok(text) => cut_at_stop(&text, &request.until).is_some(),
            Err(e) => {
                failure = Some(e.to_string());
                true
            }
        });
        let tokens = tokens.map_err(ScorerError::from)?;
        if let Some(message) = failure {
            return Err(ScorerError::from(Seq2SeqError::Tokenize { model: scorer.name().to_string(), message }).into());
        }
        // The first token is the decoder start token, not generated.
        let new = &tokens[1..];
        let text = scorer.decode_text(new).map_err(ScorerError::from)?;
        let (text, stop) = if let Some(before) = cut_at_stop(&text, &request.until) {
            (before.to_string(), StopReason::Until)
        } else if new.last() == Some(&eos) {
            (text, StopReason::EndOfSequence)
        } else {
            (text, StopReason::MaxTokens)
        };
        stats.runs += 1 + new.len();
        stats.prompt_positions += prompt.len() + 1;
        stats.step_positions += new.len().saturating_sub(1);
        out.push(Generated { text, new_tokens: new.len(), prompt_tokens: prompt.len(), stop });
        on_progress(out.len());
    }
    stats.tokens_run = stats.prompt_positions + stats.step_positions;
    Ok((out, stats))
}
