//! `polyprune eval ppl`: flags to `polyprune::workflow::perplexity`, and the table it prints.

use std::io::Write;

use anyhow::Result;

use polyprune::eval::span_corruption::SpanCorruption;
use polyprune::eval::{LanguageScore, WindowOptions};
use polyprune::workflow::perplexity::{perplexity, FileText, Objective, PerplexityOptions};

use super::{record_sources, runtime_options, Bars};
use crate::cli::{Format, PplArgs, PplObjective};

pub fn run(args: PplArgs) -> Result<()> {
    let source = record_sources(&args.records, std::slice::from_ref(&args.source))?.remove(0);
    let options = PerplexityOptions {
        model: args.model,
        masks: args.masks,
        file: args.file.map(|path| FileText { path, per_line: args.per_line }),
        languages: args.langs,
        source,
        flores: args.flores,
        limit: args.limit,
        window: WindowOptions { context: args.context, stride: args.stride },
        objective: match args.objective {
            PplObjective::Text => Objective::Text,
            PplObjective::SpanCorruption => Objective::SpanCorruption(SpanCorruption::t5(args.noise_seed)),
        },
        batch_tokens: args.batch_tokens,
        runtime: runtime_options(&args.runtime)?,
        results: args.results,
    };
    super::announce_memory_plan(&options.model, &options.runtime)?;
    let run = perplexity(&options, &mut Bars::default())?;
    print_ppl(&run.scores, args.format, args.per_line)?;
    eprintln!("results: {}", run.results_dir.display());
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
