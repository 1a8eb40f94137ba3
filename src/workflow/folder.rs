//! The one dispatch between the two kinds of model folder the workflows take: a decoder-only
//! model ([`ModelDir`]) or an encoder-decoder ([`Seq2SeqFolder`], mT5/T5). Everything past
//! loading goes through [`crate::eval::LanguageModel`], so each workflow is written once.

use std::path::Path;

use super::WorkflowError;
use crate::eval::seq2seq::Seq2SeqScorer;
use crate::eval::{LanguageModel, Scorer, ScorerError};
use crate::model::seq2seq::{is_seq2seq_folder, Seq2SeqFolder};
use crate::model::{ModelDir, ModelError};
use crate::runtime::{RuntimeOptions, WeightOverride};

// One per workflow run: boxing the larger variant would save nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ModelFolder {
    Decoder(ModelDir),
    EncoderDecoder(Seq2SeqFolder),
}

impl ModelFolder {
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        if is_seq2seq_folder(dir) {
            Ok(ModelFolder::EncoderDecoder(Seq2SeqFolder::open(dir)?))
        } else {
            Ok(ModelFolder::Decoder(ModelDir::open(dir)?))
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ModelFolder::Decoder(m) => &m.card.name,
            ModelFolder::EncoderDecoder(f) => &f.card.name,
        }
    }

    pub fn identity(&self) -> String {
        match self {
            ModelFolder::Decoder(m) => m.identity(),
            ModelFolder::EncoderDecoder(f) => f.identity(),
        }
    }

    /// The longest input the model takes; `None` for relative positions (T5), which have none.
    pub fn max_positions(&self) -> Option<usize> {
        match self {
            ModelFolder::Decoder(m) => Some(m.card.max_positions),
            ModelFolder::EncoderDecoder(_) => None,
        }
    }

    /// The overrides that apply the masks saved in `dir` to the dense weights.
    pub fn mask_overrides(&self, dir: &Path) -> Result<Vec<WeightOverride>, ModelError> {
        match self {
            ModelFolder::Decoder(m) => crate::pruned::overrides_from_mask_dir(m, dir),
            ModelFolder::EncoderDecoder(f) => crate::pruned::seq2seq::overrides_from_mask_dir_seq2seq(f, dir),
        }
    }

    /// The model loaded for evaluation with `overrides` applied; `batch_tokens` bounds a
    /// decoder's batches (an encoder-decoder decodes a context's continuations together).
    pub fn scorer(
        &self,
        runtime: &RuntimeOptions,
        overrides: &[WeightOverride],
        batch_tokens: usize,
    ) -> Result<Box<dyn LanguageModel>, WorkflowError> {
        Ok(match self {
            ModelFolder::Decoder(m) => {
                let mut scorer = Scorer::load(m, runtime, overrides)?;
                scorer.batch_tokens = batch_tokens.max(1);
                Box::new(scorer)
            }
            ModelFolder::EncoderDecoder(f) => Box::new(Seq2SeqScorer::load_with(f, runtime, overrides, &[]).map_err(ScorerError::from)?),
        })
    }
}
