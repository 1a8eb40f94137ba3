//! What the evaluations ask of a model, whatever its architecture: per-document perplexity,
//! multiple-choice log-likelihoods and greedy generation. The decoder-only [`Scorer`] answers
//! with its shared-prefix cache; the encoder-decoder [`Seq2SeqScorer`] as lm-evaluation-harness's
//! seq2seq backend does ([`super::seq2seq_tasks`]). `eval ppl`, `eval tasks`, `prune` and the
//! study take a `&mut dyn LanguageModel`, so each workflow exists once.

use super::choices::{ChoiceStats, TaskEvalError};
use super::generate::{Generated, GenerationStats};
use super::perplexity::{DocumentScore, WindowOptions};
use super::scorer::{Scorer, ScorerError};
use super::seq2seq::Seq2SeqScorer;
use crate::tasks::{ChoiceRecord, Example, GenerationRequest};

pub trait LanguageModel {
    /// Scores documents `(id, text)`; `on_done(documents finished)`.
    fn score_documents(
        &mut self,
        docs: &[(String, String)],
        window: WindowOptions,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<DocumentScore>, ScorerError>;

    /// One record per multiple- or partial-choice example; `on_progress(examples done)`.
    fn score_examples(
        &mut self,
        examples: &[Example],
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<ChoiceRecord>, ChoiceStats), TaskEvalError>;

    /// Greedy generation for every `(id, request)`; `max_new_tokens` lowers each request's cap.
    fn generate(
        &mut self,
        requests: &[(&str, &GenerationRequest)],
        max_new_tokens: Option<usize>,
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Generated>, GenerationStats), TaskEvalError>;
}

impl LanguageModel for Scorer {
    fn score_documents(
        &mut self,
        docs: &[(String, String)],
        window: WindowOptions,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<DocumentScore>, ScorerError> {
        super::perplexity::score_documents(self, docs, window, on_done)
    }

    fn score_examples(
        &mut self,
        examples: &[Example],
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<ChoiceRecord>, ChoiceStats), TaskEvalError> {
        super::choices::score_examples(self, examples, on_progress)
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationRequest)],
        max_new_tokens: Option<usize>,
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Generated>, GenerationStats), TaskEvalError> {
        super::generate::generate(self, requests, max_new_tokens, on_progress)
    }
}

impl LanguageModel for Seq2SeqScorer {
    fn score_documents(
        &mut self,
        docs: &[(String, String)],
        window: WindowOptions,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<DocumentScore>, ScorerError> {
        super::seq2seq_tasks::score_documents(self, docs, window.context, on_done)
    }

    fn score_examples(
        &mut self,
        examples: &[Example],
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<ChoiceRecord>, ChoiceStats), TaskEvalError> {
        super::seq2seq_tasks::score_examples(self, examples, on_progress)
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationRequest)],
        max_new_tokens: Option<usize>,
        on_progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Generated>, GenerationStats), TaskEvalError> {
        super::seq2seq_tasks::generate(self, requests, max_new_tokens, on_progress)
    }
}
