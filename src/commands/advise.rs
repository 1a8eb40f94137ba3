//! `polyprune advise`: flags to `polyprune::workflow::advise`, the files it writes, and a
//! summary on stdout.

use std::io::Write;

use anyhow::{anyhow, Result};

use polyprune::calibrate::Objective;
use polyprune::prune::{Method, Pattern, SparseGptConfig, Sparsity};
use polyprune::stats::{Alpha, ComparisonConfig};
use polyprune::workflow::advise::{advise, write_advice, Advice, AdviseOptions, ENGLISH};

use super::{record_sources, runtime_options, Bars};
use crate::cli::AdviseArgs;

pub fn run(args: AdviseArgs) -> Result<()> {
    let sources = record_sources(&args.records, &[args.calib_source.clone(), args.source.clone()])?;
    let method = match args.method.parse::<Method>()? {
        Method::SparseGpt(_) => Method::SparseGpt(SparseGptConfig::new(args.percdamp, args.blocksize)?),
        m => m,
    };
    let options = AdviseOptions {
        model: args.model,
        targets: args.targets,
        candidates: args.candidates,
        method,
        sparsity: args.sparsity.map(Sparsity::new).transpose()?,
        pattern: args.pattern.parse::<Pattern>()?,
        samples: args.samples,
        seqlen: args.seqlen,
        seed: args.seed,
        calib_source: sources[0].clone(),
        source: sources[1].clone(),
        flores: args.flores,
        objective: Objective::parse(&args.objective).ok_or_else(|| anyhow!("--objective {}: expected worst or mean", args.objective))?,
        budget: args.budget,
        validate: args.validate,
        limit: args.limit,
        confirm: !args.no_confirm,
        batch: args.batch,
        runtime: runtime_options(&args.runtime)?,
        comparison: ComparisonConfig::default(),
        alpha: Alpha::FIVE_PERCENT,
    };
    super::announce_memory_plan(&options.model, &options.runtime)?;
    let advice = advise(&options, &mut Bars::default())?;
    let mut written = write_advice(&advice, &args.out)?;
    let html = polyprune::report::advice::render(&advice)?;
    let page = args.out.join("advice.html");
    polyprune::util::write_atomic(&page, html.as_bytes()).map_err(|e| anyhow!("cannot write {}: {e}", page.display()))?;
    written.push(page);
    print_summary(&advice)?;
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn print_summary(a: &Advice) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let weights: Vec<String> = a.recommended.weights.iter().filter(|(_, &w)| w > 0.0).map(|(k, w)| format!("{k} {w:.3}")).collect();
    writeln!(out, "recommended calibration ({} objective): {}", a.objective.name(), weights.join(", "))?;
    writeln!(out, "test bits per byte (dense first):")?;
    write!(out, "{:<14}", "calibration")?;
    for t in &a.targets {
        write!(out, " {t:>10}")?;
    }
    writeln!(out)?;
    let mut row = |name: &str, bpb: &std::collections::BTreeMap<String, f64>| -> std::io::Result<()> {
        write!(out, "{name:<14}")?;
        for t in &a.targets {
            write!(out, " {:>10.4}", bpb.get(t).copied().unwrap_or(f64::NAN))?;
        }
        writeln!(out)
    };
    row("dense", &a.dense_test_bpb)?;
    for (name, bpb) in &a.test_bpb {
        row(name, bpb)?;
    }
    if let Some(c) = &a.confirmation {
        row("sequential", &c.test_bpb)?;
    }
    for c in a.comparisons.iter().filter(|c| c.second == ENGLISH) {
        writeln!(
            out,
            "{}: recommended - English-only = {:+.4} bpb [{:+.4}, {:+.4}], Holm p = {:.4}{}",
            c.target,
            c.mean_difference,
            c.ci_lower,
            c.ci_upper,
            c.adjusted_p,
            if c.first_better { " (better)" } else { "" }
        )?;
    }
    let k = &a.cost;
    writeln!(
        out,
        "cost: {} calibration passes ({} tokens), {} proxy evaluations, {} development + {} test + {} confirmation tokens scored",
        k.calibration_passes, k.calibration_tokens, k.proxy_evaluations, k.dev_tokens, k.test_tokens, k.confirmation_tokens
    )?;
    Ok(())
}
