//! `polyprune prune`: flags to `polyprune::workflow::prune`, and the tables it prints.

use std::io::Write;

use anyhow::Result;

use polyprune::calibrate::{CalibrationSpec, CaptureMode, Mix};
use polyprune::data::Language;
use polyprune::eval::LanguageScore;
use polyprune::prune::{Method, Pattern, SaliencyScope, SparseGptConfig, Sparsity};
use polyprune::pruned::{LayerFilter, PrunedModel};
use polyprune::workflow::prune::{prune, PerplexityCheck, PruneOptions};

use super::{record_sources, runtime_options, Bars};
use crate::cli::PruneArgs;

/// One or more methods (`wanda,sparsegpt`); SparseGPT takes its knobs from the flags.
fn parse_methods(args: &PruneArgs) -> Result<Vec<Method>> {
    let scope: SaliencyScope = args.scope.parse()?;
    let mut methods = Vec::new();
    for name in args.method.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let method: Method = name.parse()?;
        methods.push(match method {
            Method::SparseGpt(_) => Method::SparseGpt(SparseGptConfig::new(args.percdamp, args.blocksize)?),
            // "snip-global" stays global whatever --scope says.
            m if m.saliency_scope() == Some(SaliencyScope::Layer) => m.with_scope(scope),
            m => m,
        });
    }
    Ok(methods)
}

fn calibration(args: &PruneArgs, source: Option<String>) -> Result<Option<CalibrationSpec>> {
    if args.calib.is_empty() {
        return Ok(None);
    }
    let languages = args.calib.iter().map(|c| Language::parse(c)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(CalibrationSpec {
        mix: Mix::parse(&args.mix, languages.len())?,
        languages,
        samples: args.samples,
        seqlen: args.seqlen,
        seed: args.seed,
        source,
    }))
}

pub fn run(args: PruneArgs) -> Result<()> {
    let sources = record_sources(&args.records, &[args.calib_source.clone(), args.eval_source.clone()])?;
    let (calib_source, eval_source) = (sources[0].clone(), sources[1].clone());
    let options = PruneOptions {
        methods: parse_methods(&args)?,
        sparsity: args.sparsity.map(Sparsity::new).transpose()?,
        pattern: args.pattern.parse::<Pattern>()?,
        calibration: calibration(&args, calib_source)?,
        flores: args.flores.clone(),
        mode: if args.one_shot { CaptureMode::OneShot } else { CaptureMode::Sequential },
        batch: args.batch,
        filter: LayerFilter { include: args.include.clone(), exclude: args.exclude.clone() },
        runtime: runtime_options(&args.runtime)?,
        results: args.results.clone(),
        save: args.save.clone(),
        evaluate: (!args.eval_ppl.is_empty()).then(|| PerplexityCheck {
            languages: args.eval_ppl.clone(),
            source: eval_source,
            limit: args.eval_limit,
        }),
        model: args.model,
    };
    super::announce_memory_plan(&options.model, &options.runtime)?;
    if let Ok(polyprune::workflow::folder::ModelFolder::Decoder(dir)) = polyprune::workflow::folder::ModelFolder::open(&options.model) {
        if let Some(plan) = polyprune::workflow::prune::prune_memory_plan(&options, &dir)? {
            eprintln!("{plan}");
        }
    }
    let outcome = prune(&options, &mut Bars::default())?;
    let calibration = if outcome.calibration.is_empty() { "no calibration".to_string() } else { outcome.calibration.clone() };
    for run in &outcome.runs {
        println!("{} ({calibration})", run.method.name());
        print_sparsity(&run.pruned, run.method.saliency_scope() == Some(SaliencyScope::Global))?;
        eprintln!("results: {}", run.results_dir.display());
        if let Some(out) = &run.saved {
            eprintln!("pruned model and masks: {}", out.display());
        }
    }
    if !outcome.dense.is_empty() {
        for run in &outcome.runs {
            println!("{} ({}):", run.method.name(), outcome.calibration);
            print_before_after(&outcome.dense, &run.perplexity)?;
        }
    }
    Ok(())
}

/// Sparsity by role; with `per_layer` (a global ranking, where layers end unequal) every layer's too.
/// Sparsity is the zeros in the pruned weights; `pruned` counts the masks, which prune weights
/// that were already zero first, so the two differ only where a row or group held more zeros.
fn print_sparsity(pruned: &PrunedModel, per_layer: bool) -> Result<()> {
    let mut by_role: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for l in &pruned.layers {
        let e = by_role.entry(l.layer.role.as_str()).or_default();
        e.0 += l.report.pruned;
        e.1 += l.report.zero_count();
        e.2 += l.report.total;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<6} {:>12} {:>12} {:>12} {:>9}", "role", "pruned", "zeros", "weights", "sparsity")?;
    for (role, (p, z, t)) in &by_role {
        writeln!(out, "{:<6} {:>12} {:>12} {:>12} {:>9.5}", role, p, z, t, *z as f64 / *t as f64)?;
    }
    if per_layer {
        writeln!(out, "{:<28} {:>12} {:>12} {:>12} {:>9}", "layer", "pruned", "zeros", "weights", "sparsity")?;
        for l in &pruned.layers {
            let r = &l.report;
            writeln!(out, "{:<28} {:>12} {:>12} {:>12} {:>9.5}", l.layer.name, r.pruned, r.zero_count(), r.total, r.zero_fraction())?;
        }
    }
    let invalid = pruned.layers.iter().filter(|l| l.report.nm_valid == Some(false)).count();
    let (zeros, mask) = (pruned.overall_sparsity(), pruned.mask_sparsity());
    writeln!(
        out,
        "overall sparsity {zeros:.6} (zeros in the pruned weights) over {} layers{}{}",
        pruned.layers.len(),
        if zeros != mask {
            format!("; the masks prune {mask:.6} (some rows or groups held more zeros than their share)")
        } else {
            String::new()
        },
        if pruned.layers.iter().any(|l| l.report.nm_valid.is_some()) {
            format!("; N:M groups invalid in {invalid} layers")
        } else {
            String::new()
        }
    )?;
    let raised: Vec<_> =
        pruned.layers.iter().filter_map(|l| l.report.damping.filter(|d| d.attempts > 1).map(|d| (&l.layer.name, d))).collect();
    if let Some((_, first)) = raised.first() {
        let worst = raised.iter().map(|(_, d)| d.used).fold(0.0, f64::max);
        writeln!(
            out,
            "SparseGPT: the Hessian was not positive definite at --percdamp {} in {} layers (first {}); \
             dampening raised up to {worst} (per layer in sparsity.csv); more calibration tokens avoid this",
            first.requested,
            raised.len(),
            raised[0].0
        )?;
    }
    let t = &pruned.timings;
    if t.gradient_s > 0.0 {
        writeln!(out, "time: gradient {:.1} s, H g {:.1} s, masks {:.1} s", t.gradient_s, t.hessian_gradient_s, t.solve_s)?;
    } else {
        writeln!(
            out,
            "time: calibration forward {:.1} s, statistics {:.1} s, pruning solve {:.1} s",
            t.forward_s, t.statistics_s, t.solve_s
        )?;
    }
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
