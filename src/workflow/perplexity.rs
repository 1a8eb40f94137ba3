//! `eval ppl` as a library call: perplexity and bits per byte of a model (dense, or with saved
//! masks applied) on each language's evaluation text and/or a file, written to a results folder.

use std::path::{Path, PathBuf};

use super::folder::ModelFolder;
use super::{score_sets, WorkflowError};
use crate::eval::seq2seq::Seq2SeqScorer;
use crate::eval::span_corruption::SpanCorruption;
use crate::eval::{LanguageScore, ScorerError, TextSet, WindowOptions};
use crate::progress::Progress;
use crate::runtime::RuntimeOptions;
use crate::store::{new_run, PerplexityDir, Provenance, RunKind};

/// A text file to score: whole, or each non-empty line as its own document.
#[derive(Clone, Debug)]
pub struct FileText {
    pub path: PathBuf,
    pub per_line: bool,
}

/// What the NLL measures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Objective {
    /// The text's own likelihood: next-token windows for a decoder, lm-eval's
    /// `loglikelihood_rolling` for an encoder-decoder.
    #[default]
    Text,
    /// T5's pre-training loss on noised text (encoder-decoders only; see
    /// `crate::eval::span_corruption`).
    SpanCorruption(SpanCorruption),
}

#[derive(Clone, Debug)]
pub struct PerplexityOptions {
    pub model: PathBuf,
    /// Saved Magnitude/Wanda masks applied to `model` in memory.
    pub masks: Option<PathBuf>,
    pub file: Option<FileText>,
    /// Languages whose evaluation split is scored (FLORES codes or aliases).
    pub languages: Vec<String>,
    /// Text source for `languages` (`flores`, `handbook`, `udhr`, `jsonl:...`, `parquet:...`);
    /// `None` = per-language default.
    pub source: Option<String>,
    /// Another SIB-200/FLORES folder than the project's.
    pub flores: Option<PathBuf>,
    /// Score only the first `limit` documents of each language.
    pub limit: Option<usize>,
    /// Window and stride; the context is capped at the model's maximum positions.
    pub window: WindowOptions,
    pub objective: Objective,
    pub batch_tokens: usize,
    pub runtime: RuntimeOptions,
    /// Results root: the run goes to `<results>/ppl/<time>-<model>/`.
    pub results: PathBuf,
}

pub struct PerplexityRun {
    pub scores: Vec<LanguageScore>,
    pub results_dir: PathBuf,
}

/// Non-empty lines of a file, each with its 1-based line number.
fn file_documents(file: &FileText) -> Result<Vec<(String, String)>, WorkflowError> {
    let path = &file.path;
    let text = std::fs::read_to_string(path).map_err(|source| WorkflowError::Read { path: path.clone(), source })?;
    let documents: Vec<(String, String)> = if file.per_line {
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| ((i + 1).to_string(), l.to_string())).collect()
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        vec![("1".to_string(), text)]
    };
    if documents.is_empty() {
        let what = if file.per_line { "has no non-empty lines" } else { "is empty" };
        return Err(WorkflowError::Refused(format!("--file {} {what}; give a file with text", path.display())));
    }
    Ok(documents)
}

/// The first `limit` evaluation documents of each language (see
/// `crate::eval::evaluation_sets_limited`).
pub fn language_sets(
    languages: &[String],
    source: Option<&str>,
    flores: Option<&Path>,
    limit: Option<usize>,
) -> Result<Vec<TextSet>, WorkflowError> {
    Ok(crate::eval::evaluation_sets_limited(languages, source, &crate::eval::registry(flores), limit)?)
}

/// Scores the text with a decoder-only model (windows of `context` tokens advancing by
/// `stride`) or an encoder-decoder (lm-eval's `loglikelihood_rolling` over windows of `context`
/// labels; see `crate::eval::seq2seq_tasks`).
pub fn perplexity(opts: &PerplexityOptions, progress: &mut dyn Progress) -> Result<PerplexityRun, WorkflowError> {
    let model = ModelFolder::open(&opts.model)?;
    let mut sets: Vec<TextSet> = Vec::new();
    if let Some(file) = &opts.file {
        sets.push(TextSet {
            language: "file".into(),
            source: file.path.display().to_string(),
            documents: file_documents(file)?,
            report: None,
        });
    }
    sets.extend(language_sets(&opts.languages, opts.source.as_deref(), opts.flores.as_deref(), opts.limit)?);
    if sets.is_empty() {
        return Err(WorkflowError::Refused("nothing to score: give --file <path> or --langs <codes>".into()));
    }
    let overrides = match &opts.masks {
        Some(dir) => model.mask_overrides(dir)?,
        None => Vec::new(),
    };
    let context = model.max_positions().map_or(opts.window.context, |max| opts.window.context.min(max));
    let window = WindowOptions { context, stride: opts.window.stride };
    let started = std::time::Instant::now();
    let scores = match (&opts.objective, &model) {
        (Objective::Text, _) => {
            let mut scorer = model.scorer(&opts.runtime, &overrides, opts.batch_tokens)?;
            score_sets(scorer.as_mut(), &sets, opts.limit, window, progress)?
        }
        (Objective::SpanCorruption(noise), ModelFolder::EncoderDecoder(folder)) => {
            let mut scorer = Seq2SeqScorer::load_with(folder, &opts.runtime, &overrides, &[]).map_err(ScorerError::from)?;
            span_corruption_sets(&mut scorer, &sets, opts.limit, context, noise, progress)?
        }
        (Objective::SpanCorruption(_), ModelFolder::Decoder(_)) => {
            return Err(WorkflowError::Refused(format!(
                "--objective span-corruption is T5's encoder-decoder loss; {} is a decoder-only model: drop the flag",
                opts.model.display()
            )))
        }
    };
    let settings = serde_json::json!({
        "langs": opts.languages, "source": opts.source, "file": opts.file.as_ref().map(|f| &f.path),
        "per_line": opts.file.as_ref().is_some_and(|f| f.per_line),
        "limit": opts.limit, "masks": opts.masks, "context": window.context, "stride": window.stride,
        "objective": objective_of(&model, &opts.objective),
        "text": sets.iter().filter_map(|s| s.report.as_ref()).collect::<Vec<_>>(),
    });
    let provenance = Provenance::new("eval ppl", model.identity(), settings, started);
    let results_dir = new_run(&opts.results, RunKind::Perplexity, model.name());
    PerplexityDir::at(&results_dir).write(&scores, &provenance)?;
    Ok(PerplexityRun { scores, results_dir })
}

/// How the NLL was computed, for the provenance record.
fn objective_of(model: &ModelFolder, objective: &Objective) -> serde_json::Value {
    match (objective, model) {
        (Objective::SpanCorruption(noise), _) => serde_json::json!({"span_corruption": noise}),
        (Objective::Text, ModelFolder::Decoder(_)) => "next-token".into(),
        (Objective::Text, ModelFolder::EncoderDecoder(_)) => "loglikelihood-rolling".into(),
    }
}

/// [`crate::eval::span_corruption::score_documents`] over every set, one progress stage each.
fn span_corruption_sets(
    scorer: &mut Seq2SeqScorer,
    sets: &[TextSet],
    limit: Option<usize>,
    context: usize,
    noise: &SpanCorruption,
    progress: &mut dyn Progress,
) -> Result<Vec<LanguageScore>, WorkflowError> {
    let mut scores = Vec::new();
    for set in sets {
        let docs = &set.documents[..limit.unwrap_or(usize::MAX).min(set.documents.len())];
        progress.stage(&set.language, docs.len() as u64);
        let documents = crate::eval::span_corruption::score_documents(scorer, docs, context, noise, &mut |n| progress.advance(n as u64));
        progress.finish();
        scores.push(LanguageScore { language: set.language.clone(), source: set.source.clone(), documents: documents? });
    }
    Ok(scores)
}
