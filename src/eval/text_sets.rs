//! Evaluation text per language: which documents a perplexity measurement scores.

use std::path::Path;

use crate::data::{CorpusSplit, DataError, Language, Take, TextRegistry, TextReport};

use super::language_model::LanguageModel;
use super::perplexity::{LanguageScore, WindowOptions};
use super::scorer::ScorerError;

/// One language's evaluation documents from one source.
#[derive(Clone, Debug)]
pub struct TextSet {
    /// FLORES-style code (`deu_Latn`) or another label (`file`).
    pub language: String,
    pub source: String,
    /// `(id, text)` pairs in a stable order.
    pub documents: Vec<(String, String)>,
    /// What was read (files, documents, skipped records); `None` for a scored file.
    pub report: Option<TextReport>,
}

/// The evaluation-split documents of each language from `source` (default per language).
pub fn evaluation_sets(langs: &[String], source: Option<&str>, registry: &TextRegistry) -> Result<Vec<TextSet>, DataError> {
    evaluation_sets_limited(langs, source, registry, None)
}

/// As [`evaluation_sets`], reading only the first `limit` documents of each language's split
/// (which keeps a multi-GB JSON-lines or Parquet source from being read whole).
pub fn evaluation_sets_limited(
    langs: &[String],
    source: Option<&str>,
    registry: &TextRegistry,
    limit: Option<usize>,
) -> Result<Vec<TextSet>, DataError> {
    let take = limit.map_or(Take::All, Take::First);
    let mut sets = Vec::new();
    for code in langs {
        let lang = Language::parse(code)?;
        let source = match source {
            Some(spec) => registry.source(spec)?,
            None => registry.default_for(lang),
        };
        let read = registry.read(lang, &source, CorpusSplit::Evaluation, take)?;
        let documents = read.documents.into_iter().map(|d| (d.id, d.text)).collect();
        sets.push(TextSet {
            language: lang.flores_code().to_string(),
            source: source.name().to_string(),
            documents,
            report: Some(read.report),
        });
    }
    Ok(sets)
}

/// The project's text registry, with the `flores` source moved to `flores` when given.
pub fn registry(flores: Option<&Path>) -> TextRegistry {
    let registry = TextRegistry::for_project(&crate::util::project_root());
    match flores {
        Some(root) => registry.with_flores_root(root),
        None => registry,
    }
}

/// Scores the first `limit` documents of every set; `progress(set index, documents done)`.
pub fn score_sets(
    scorer: &mut dyn LanguageModel,
    sets: &[TextSet],
    limit: Option<usize>,
    window: WindowOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<LanguageScore>, ScorerError> {
    let mut scores = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let docs = &set.documents[..limit.unwrap_or(usize::MAX).min(set.documents.len())];
        let documents = scorer.score_documents(docs, window, &mut |n| progress(i, n))?;
        scores.push(LanguageScore { language: set.language.clone(), source: set.source.clone(), documents });
    }
    Ok(scores)
}
