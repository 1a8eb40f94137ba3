//! `polyprune prune`: calibrate, prune, report sparsity, optionally save and compare perplexity.

use std::io::Write;

use anyhow::Result;

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::Language;
use polyprune::eval::{LanguageScore, Scorer, WindowOptions};
use polyprune::model::ModelDir;
use polyprune::prune::{Method, Pattern, SparseGptConfig, Sparsity, SparsityTarget};
use polyprune::pruning::{prune_many, save_pruned, LayerFilter, PruneJob, PrunedModel};
use polyprune::store::{new_run, Provenance, ResultsDir, RunKind};

use super::ppl::{language_sets, score_sets};
use super::{bar, runtime_options};
use crate::cli::PruneArgs;

/// One or more methods (`wanda,sparsegpt`): several share one calibration pass in one-shot mode.
fn parse_methods(args: &PruneArgs) -> Result<Vec<Method>> {
    let mut methods = Vec::new();
    for name in args.method.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let method: Method = name.parse()?;
        methods.push(match method {
            Method::SparseGpt(_) => Method::SparseGpt(SparseGptConfig::new(args.percdamp, args.blocksize)?),
            m => m,
        });
    }
    if methods.is_empty() {
        anyhow::bail!("--method is empty; give magnitude, magnitude-row, wanda or sparsegpt (comma-separated for several)");
    }
    Ok(methods)
}

fn parse_target(args: &PruneArgs) -> Result<SparsityTarget> {
    let pattern: Pattern = args.pattern.parse()?;
    let sparsity = args.sparsity.map(Sparsity::new).transpose()?;
    Ok(SparsityTarget::new(sparsity, pattern)?)
}

pub fn run(args: PruneArgs) -> Result<()> {
    let model = ModelDir::open(&args.model)?;
    let methods = parse_methods(&args)?;
    let target = parse_target(&args)?;
    let opts = runtime_options(&args.runtime)?;
    let started = std::time::Instant::now();
    let set = draw_calibration_set(&args, &model)?;
    let capture = CaptureOptions {
        mode: if args.one_shot { CaptureMode::OneShot } else { CaptureMode::Sequential },
        batch: args.batch,
        runtime: opts.clone(),
        gram: false,
    };
    let filter = LayerFilter { include: args.include.clone(), exclude: args.exclude.clone() };
    let jobs: Vec<PruneJob> = methods.iter().map(|m| PruneJob { method: m.clone(), target }).collect();
    let calib_label = set.as_ref().map(|s| s.spec.label()).unwrap_or_default();
    let pb = bar((model.card.blocks * jobs.len()) as u64, &calib_label);
    let all = prune_many(&model, &jobs, &filter, set.as_ref(), &capture, |job, k, stage| {
        pb.set_position((job * model.card.blocks + k) as u64);
        pb.set_message(format!("{} block {k}: {stage}", jobs[job].method.name()));
    })?;
    pb.finish_and_clear();

    let mut pruned_models = Vec::new();
    for (method, pruned) in methods.iter().zip(all) {
        println!("{} ({})", method.name(), if calib_label.is_empty() { "no calibration".to_string() } else { calib_label.clone() });
        print_sparsity(&pruned)?;
        let record = serde_json::json!({
            "method": method, "target": format!("{target:?}"), "pattern": args.pattern, "sparsity": args.sparsity,
            "calibration": set.as_ref().map(|s| &s.spec), "mode": capture.mode, "include": filter.include, "exclude": filter.exclude,
            "model": model.identity(), "timings": pruned.timings,
            "overall_sparsity": pruned.overall_sparsity(),
        });
        let dir = new_run(&args.results, RunKind::Prune, &format!("{}-{}", method.name(), calib_label));
        write_prune_results(&dir, &model, &pruned, set.as_ref(), &record, started)?;
        eprintln!("results: {}", dir.display());
        if let Some(out) = &args.save {
            let out = if methods.len() > 1 { out.join(method.name()) } else { out.clone() };
            save_pruned(&model, &pruned, &out, &record)?;
            eprintln!("pruned model and masks: {}", out.display());
        }
        pruned_models.push((method.name(), pruned));
    }
    if !args.eval_ppl.is_empty() {
        let sets = language_sets(&args.eval_ppl, args.eval_source.as_deref(), args.flores.as_deref())?;
        let window = WindowOptions::default();
        let mut dense = Scorer::load(&model, &opts, &[])?;
        let before = score_sets(&mut dense, &sets, args.eval_limit, window)?;
        drop(dense);
        for (name, pruned) in &pruned_models {
            let mut sparse = Scorer::load(&model, &opts, &pruned.overrides)?;
            let after = score_sets(&mut sparse, &sets, args.eval_limit, window)?;
            println!("{name} ({calib_label}):");
            print_before_after(&before, &after)?;
        }
    }
    Ok(())
}

fn draw_calibration_set(args: &PruneArgs, model: &ModelDir) -> Result<Option<CalibrationSet>> {
    if args.calib.is_empty() {
        return Ok(None);
    }
    let languages = args.calib.iter().map(|c| Language::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let spec = CalibrationSpec {
        mix: Mix::parse(&args.mix, languages.len())?,
        languages,
        samples: args.samples,
        seqlen: args.seqlen.min(model.card.max_positions),
        seed: args.seed,
        source: args.calib_source.clone(),
    };
    let registry = polyprune::eval::registry(args.flores.as_deref());
    let tokenizer = tokenizers::Tokenizer::from_file(model.tokenizer_path())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", model.tokenizer_path().display()))?;
    let start = model.card.start_token().unwrap_or(0);
    Ok(Some(CalibrationSet::draw(&spec, &registry, &tokenizer, start)?))
}

fn print_sparsity(pruned: &PrunedModel) -> Result<()> {
    let mut by_role: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for l in &pruned.layers {
        let e = by_role.entry(l.layer.role.as_str()).or_default();
        e.0 += l.report.pruned;
        e.1 += l.report.total;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<6} {:>12} {:>12} {:>9}", "role", "pruned", "weights", "sparsity")?;
    for (role, (p, t)) in &by_role {
        writeln!(out, "{:<6} {:>12} {:>12} {:>9.5}", role, p, t, *p as f64 / *t as f64)?;
    }
    let invalid = pruned.layers.iter().filter(|l| l.report.nm_valid == Some(false)).count();
    writeln!(
        out,
        "overall sparsity {:.6} over {} layers{}",
        pruned.overall_sparsity(),
        pruned.layers.len(),
        if pruned.layers.iter().any(|l| l.report.nm_valid.is_some()) {
            format!("; N:M groups invalid in {invalid} layers")
        } else {
            String::new()
        }
    )?;
    let t = &pruned.timings;
    writeln!(out, "time: calibration forward {:.1} s, statistics {:.1} s, pruning solve {:.1} s", t.forward_s, t.statistics_s, t.solve_s)?;
    Ok(())
}

fn write_prune_results(
    dir: &std::path::Path,
    model: &ModelDir,
    pruned: &PrunedModel,
    set: Option<&CalibrationSet>,
    record: &serde_json::Value,
    started: std::time::Instant,
) -> Result<()> {
    let out = ResultsDir::at(dir);
    out.write_sparsity(pruned)?;
    if let Some(set) = set {
        out.write_manifest(&set.manifest)?;
    }
    out.write_provenance(&Provenance::new("prune", model.identity(), record.clone(), started))?;
    Ok(())
}

fn print_before_after(before: &[LanguageScore], after: &[LanguageScore]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8}", "language", "ppl dense", "ppl pruned", "bpb dense", "bpb pruned", "Δbpb")?;
    for (b, a) in before.iter().zip(after) {
        writeln!(
            out,
            "{:<10} {:>10.3} {:>10.3} {:>10.4} {:>10.4} {:>+8.4}",
            b.language,
            b.perplexity(),
            a.perplexity(),
            b.bits_per_byte(),
            a.bits_per_byte(),
            a.bits_per_byte() - b.bits_per_byte()
        )?;
    }
    Ok(())
}
