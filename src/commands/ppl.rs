//! `polyprune eval ppl`: perplexity and bits per byte per language or file.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use polyprune::eval::{LanguageScore, Scorer, TextSet, WindowOptions};
use polyprune::model::ModelDir;
use polyprune::store::{new_run, PerplexityDir, Provenance, RunKind};

use super::{bar, runtime_options};
use crate::cli::{Format, PplArgs};

/// The evaluation documents of each language (see `polyprune::eval::evaluation_sets`).
pub fn language_sets(langs: &[String], source: Option<&str>, flores: Option<&Path>) -> Result<Vec<TextSet>> {
    Ok(polyprune::eval::evaluation_sets(langs, source, &polyprune::eval::registry(flores))?)
}

/// Scores every set with a progress bar per set.
pub fn score_sets(scorer: &mut Scorer, sets: &[TextSet], limit: Option<usize>, window: WindowOptions) -> Result<Vec<LanguageScore>> {
    let mut pb: Option<(usize, indicatif::ProgressBar)> = None;
    let scores = polyprune::eval::score_sets(scorer, sets, limit, window, |i, n| {
        if pb.as_ref().map(|(j, _)| *j) != Some(i) {
            if let Some((_, old)) = pb.take() {
                old.finish_and_clear();
            }
            let len = limit.unwrap_or(usize::MAX).min(sets[i].documents.len());
            pb = Some((i, bar(len as u64, &sets[i].language)));
        }
        if let Some((_, b)) = &pb {
            b.set_position(n as u64);
        }
    })?;
    if let Some((_, b)) = pb {
        b.finish_and_clear();
    }
    Ok(scores)
}

/// Non-empty lines of a file, each with its 1-based line number.
fn read_lines(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --file {}", path.display()))?;
    let lines: Vec<(String, String)> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| ((i + 1).to_string(), l.to_string())).collect();
    if lines.is_empty() {
        bail!("--file {} has no non-empty lines; give a file with text", path.display());
    }
    Ok(lines)
}

pub fn run(args: PplArgs) -> Result<()> {
    let model = ModelDir::open(&args.model)?;
    let opts = runtime_options(&args.runtime)?;
    let overrides = match &args.masks {
        Some(dir) => polyprune::pruning::overrides_from_mask_dir(&model, dir)?,
        None => Vec::new(),
    };
    let mut scorer = Scorer::load(&model, &opts, &overrides)?;
    scorer.batch_tokens = args.batch_tokens;
    let window = WindowOptions { context: args.context.min(model.card.max_positions), stride: args.stride };
    let mut sets: Vec<TextSet> = Vec::new();
    if let Some(file) = &args.file {
        let docs = if args.per_line {
            read_lines(file)?
        } else {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read --file {}", file.display()))?;
            if text.trim().is_empty() {
                bail!("--file {} is empty; give a file with text", file.display());
            }
            vec![("1".to_string(), text)]
        };
        sets.push(TextSet { language: "file".into(), source: file.display().to_string(), documents: docs });
    }
    sets.extend(language_sets(&args.langs, args.source.as_deref(), args.flores.as_deref())?);
    if sets.is_empty() {
        bail!("nothing to score: give --file <path> or --langs <codes>");
    }
    let started = std::time::Instant::now();
    let scores = score_sets(&mut scorer, &sets, args.limit, window)?;
    print_ppl(&scores, args.format, args.per_line)?;
    let settings = serde_json::json!({
        "langs": args.langs, "source": args.source, "file": args.file, "per_line": args.per_line,
        "limit": args.limit, "masks": args.masks, "context": window.context, "stride": window.stride,
    });
    let provenance = Provenance::new("eval ppl", model.identity(), settings, started);
    let dir = new_run(&args.results, RunKind::Perplexity, &model.card.name);
    PerplexityDir::at(&dir).write(&scores, &provenance).context("check --results")?;
    eprintln!("results: {}", dir.display());
    Ok(())
}

fn print_ppl(scores: &[LanguageScore], format: Format, per_line: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Csv if per_line => {
            writeln!(out, "line,nll,tokens,bytes")?;
            for s in scores {
                for d in &s.documents {
                    writeln!(out, "{},{:.6},{},{}", d.id, d.nll, d.tokens, d.bytes)?;
                }
            }
        }
        Format::Csv => {
            writeln!(out, "language,source,documents,tokens,bytes,nll,perplexity,bits_per_byte")?;
            for s in scores {
                writeln!(
                    out,
                    "{},{},{},{},{},{:.6},{:.4},{:.5}",
                    s.language,
                    s.source,
                    s.documents.len(),
                    s.tokens(),
                    s.bytes(),
                    s.nll(),
                    s.perplexity(),
                    s.bits_per_byte()
                )?;
            }
        }
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(scores)?)?,
        Format::Table => {
            writeln!(out, "{:<12} {:>6} {:>8} {:>9} {:>11} {:>9}", "language", "docs", "tokens", "bytes", "perplexity", "bits/byte")?;
            for s in scores {
                writeln!(
                    out,
                    "{:<12} {:>6} {:>8} {:>9} {:>11.3} {:>9.4}",
                    s.language,
                    s.documents.len(),
                    s.tokens(),
                    s.bytes(),
                    s.perplexity(),
                    s.bits_per_byte()
                )?;
            }
        }
    }
    Ok(())
}
