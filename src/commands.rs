//! What each subcommand does: glue between the command line and the library.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use polyprune::data::{Language, Split, TextRegistry};
use polyprune::results::{Machine, Provenance};
use polyprune::eval::{score_documents, LanguageScore, Scorer, WindowOptions};
use polyprune::model::{fetch, import, ModelDir};
use polyprune::runtime::{ExecutionProvider, RuntimeOptions};

use crate::cli::{Cli, Command, EvalCommand, Format, ModelCommand, PplArgs, RuntimeArgs};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Model(m) => model(m),
        Command::Eval(EvalCommand::Ppl(args)) => eval_ppl(args),
    }
}

fn model(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { name } => {
            let known = fetch::known(&name)?;
            let path = fetch::fetch(known, &polyprune::util::cache_dir())?;
            println!("{}", path.display());
            eprintln!("licence: {}", known.licence);
        }
        ModelCommand::Import { gguf, out, max_positions } => {
            let spinner = spinner(&format!("importing {}", gguf.display()));
            let card = import::import_gguf(&gguf, &out, &import::ImportOptions { max_positions })?;
            spinner.finish_and_clear();
            println!(
                "imported {} ({}, {} blocks, {} prunable layers) into {}",
                card.name,
                card.architecture,
                card.blocks,
                card.layers.len(),
                out.display()
            );
        }
        ModelCommand::Inspect { dir } => {
            let card = ModelDir::card_of(&dir)?;
            let c = &card;
            println!("model: {} ({})", c.name, c.architecture);
            println!("inputs: {}", c.inputs.join(", "));
            println!("vocabulary: {}   blocks: {}   max positions: {}", c.vocab_size, c.blocks, c.max_positions);
            println!("{:<44} {:>5} {:>6} {:>14} {}", "layer", "block", "role", "shape [in,out]", "input");
            for l in &c.layers {
                let shape = format!("{}x{}", l.shape[0], l.shape[1]);
                println!("{:<44} {:>5} {:>6} {:>14} {}", l.name, l.block, l.role.as_str(), shape, l.input);
            }
            let params: usize = c.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
            println!("{} prunable layers, {} prunable weights", c.layers.len(), params);
        }
    }
    Ok(())
}

pub fn runtime_options(args: &RuntimeArgs) -> Result<RuntimeOptions> {
    let provider = match args.device.as_str() {
        "cpu" => ExecutionProvider::Cpu,
        "cuda" => ExecutionProvider::Cuda(0),
        d if d.starts_with("cuda:") => ExecutionProvider::Cuda(d[5..].parse().with_context(|| format!("--device {d}: expected cuda:N"))?),
        other => bail!("--device {other}: expected cpu, cuda or cuda:N"),
    };
    Ok(RuntimeOptions { provider, intra_threads: args.threads })
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed} < {eta}]").expect("template"));
    pb.set_message(msg.to_string());
    pb
}

/// Non-empty lines of a file, each with its 1-based line number.
fn read_lines(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --file {}", path.display()))?;
    let lines: Vec<(String, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| ((i + 1).to_string(), l.to_string()))
        .collect();
    if lines.is_empty() {
        bail!("--file {} has no non-empty lines; give a file with text", path.display());
    }
    Ok(lines)
}

fn eval_ppl(args: PplArgs) -> Result<()> {
    let model = ModelDir::open(&args.model)?;
    let opts = runtime_options(&args.runtime)?;
    let mut scorer = Scorer::load(&model, &opts, &[])?;
    scorer.batch_tokens = args.batch_tokens;
    let window = WindowOptions { context: args.context.min(model.card.max_positions), stride: args.stride };
    let mut sets: Vec<(String, String, Vec<(String, String)>)> = Vec::new();
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
        sets.push(("file".into(), file.display().to_string(), docs));
    }
    if !args.langs.is_empty() {
        let mut registry = TextRegistry::for_project(&polyprune::util::project_root());
        if let Some(root) = &args.flores {
            registry = registry.with_flores_root(root);
        }
        for code in &args.langs {
            let lang = Language::parse(code)?;
            let source = match &args.source {
                Some(spec) => registry.source(spec)?,
                None => registry.default_for(lang),
            };
            let docs = registry.documents(lang, &source, Split::Evaluation)?;
            let docs = docs.into_iter().map(|d| (d.id, d.text)).collect();
            sets.push((lang.flores_code().to_string(), source.name().to_string(), docs));
        }
    }
    if sets.is_empty() {
        bail!("nothing to score: give --file <path> or --langs <codes>");
    }
    let started = std::time::Instant::now();
    let mut scores = Vec::new();
    for (lang, source, mut docs) in sets {
        if let Some(n) = args.limit {
            docs.truncate(n);
        }
        let pb = bar(docs.len() as u64, &lang);
        let documents = score_documents(&mut scorer, &docs, window, |n| pb.set_position(n as u64))?;
        pb.finish_and_clear();
        scores.push(LanguageScore { language: lang, source, documents });
    }
    print_ppl(&scores, args.format, args.per_line)?;
    let settings = serde_json::json!({
        "langs": args.langs, "source": args.source, "file": args.file, "per_line": args.per_line,
        "limit": args.limit, "context": window.context, "stride": window.stride,
    });
    let provenance = Provenance {
        tool: "polyprune".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        command: "eval ppl".into(),
        model: model.identity(),
        settings,
        machine: Machine::this(),
        started_unix: polyprune::results::unix_now(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let dir = polyprune::results::run_dir(&args.results, "ppl", &model.card.name);
    polyprune::results::write_perplexity(&dir, &scores, &provenance)
        .with_context(|| format!("cannot write results to {}; check --results", dir.display()))?;
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
