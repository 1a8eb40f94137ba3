//! `polyprune gate`: flags to `polyprune::workflow::gate`, the decisions printed, the exit status.

use anyhow::{Context, Result};

use polyprune::report::junit;
use polyprune::stats::Alpha;
use polyprune::tasks::TaskName;
use polyprune::util::write_atomic;
use polyprune::workflow::gate::{gate, Decision, GateOptions};

use super::check::BadInput;
use super::{runtime_options, Bars};
use crate::cli::GateArgs;

/// Exit status: 0 not worse, 1 worse, 3 undecided; any error is bad input, exit 2 (1 would
/// read as "worse").
pub fn run(args: GateArgs) -> Result<i32> {
    inner(args).map_err(|e| anyhow::Error::new(BadInput(format!("{e:#}"))))
}

fn inner(args: GateArgs) -> Result<i32> {
    let tasks = args.tasks.iter().map(|t| t.parse::<TaskName>()).collect::<Result<Vec<_>, _>>()?;
    let alpha = Alpha::new(args.alpha).context("--alpha")?;
    let options = GateOptions {
        baseline: args.baseline,
        model: args.model,
        masks: args.masks,
        data: args.data,
        tasks,
        languages: args.langs,
        margin: args.margin,
        alpha,
        round: args.round,
        batch_tokens: args.batch_tokens,
        runtime: runtime_options(&args.runtime)?,
        results: args.results,
    };
    let run = gate(&options, &mut Bars::default())?;
    let r = &run.record;
    println!("{:<32} {:<14} {:>10} {:>11} {:>23}  decision", "evaluation set", "metric", "examples", "difference", "confidence sequence");
    for s in &r.evaluations {
        println!(
            "{:<32} {:<14} {:>10} {:>+11.5} [{:>+10.5}, {:>+10.5}]  {}",
            s.evaluation,
            s.metric,
            format!("{}/{}", s.examples, s.available),
            s.mean_difference,
            s.interval.lower,
            s.interval.upper,
            s.decision.as_str()
        );
    }
    println!(
        "{}: {} of {} examples ({:.0}%), margin {}, alpha {} (differences: positive = candidate better); deciding set {} [{:+.5}, {:+.5}]",
        r.decision.as_str().to_uppercase(),
        r.examples,
        r.available,
        100.0 * r.examples as f64 / r.available.max(1) as f64,
        r.margin,
        r.alpha,
        r.deciding,
        r.interval.lower,
        r.interval.upper
    );
    if let Some(path) = &args.junit {
        write_atomic(path, junit::gate_report(r).as_bytes()).with_context(|| format!("cannot write --junit {}", path.display()))?;
    }
    eprintln!("results: {}", run.results_dir.display());
    Ok(match r.decision {
        Decision::NotWorse => 0,
        Decision::Worse => 1,
        Decision::Undecided => 3,
    })
}
