//! `polyprune check`: paired tests between two result folders, as a CI gate.

use anyhow::{bail, Context, Result};

use polyprune::analysis::sections::{check_section, export_section};
use polyprune::analysis::significance::{check, Tolerance, Verdict};
use polyprune::report::junit;
use polyprune::util::write_atomic;

use super::analyze::test_settings;
use crate::cli::CheckArgs;

/// Bad input: the command exits 2 (a regression exits 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Exit status: 0 fine, 1 something significantly worse; bad input is an error that `main`
/// turns into 2.
pub fn run(args: CheckArgs) -> Result<i32> {
    inner(&args).map_err(|e| anyhow::Error::new(BadInput(format!("{e:#}"))))
}

fn inner(args: &CheckArgs) -> Result<i32> {
    if args.tolerance < 0.0 || args.accuracy_tolerance < 0.0 {
        bail!("--tolerance and --accuracy-tolerance must be >= 0");
    }
    let settings = test_settings(&args.tests)?;
    let tolerance = Tolerance { bits_per_byte: args.tolerance, accuracy: args.accuracy_tolerance };
    let pb = super::spinner("paired tests");
    let outcome = check(&args.baseline, &args.candidate, &settings, tolerance)?;
    pb.finish_and_clear();
    let rows = &outcome.rows;
    println!("{:<40} {:<28} {:>6} {:>11} {:>23} {:>9} {:>9}  verdict", "file", "evaluation set", "n", "diff", "95% CI", "p", "p adj");
    for r in rows {
        let c = &r.comparison;
        println!(
            "{:<40} {:<28} {:>6} {:>+11.5} [{:>+10.5}, {:>+10.5}] {:>9.4} {:>9.4}  {:?}",
            r.file, c.evaluation_set, c.n, c.mean_difference, c.ci_lower, c.ci_upper, c.permutation_p, c.adjusted_p, r.verdict
        );
    }
    let worse: Vec<_> = rows.iter().filter(|r| r.verdict == Verdict::Worse).collect();
    let better = rows.iter().filter(|r| r.verdict == Verdict::Better).count();
    println!(
        "{} comparisons ({} correction at {}, one family): {} significantly worse, {} significantly better",
        rows.len(),
        settings.correction.as_str(),
        settings.alpha.value(),
        worse.len(),
        better
    );
    for r in &worse {
        println!(
            "WORSE: {} {} ({}: {:+.5})",
            r.file,
            r.comparison.evaluation_set,
            r.comparison.metric.as_str(),
            r.comparison.mean_difference
        );
    }
    for note in &outcome.notes {
        println!("note: {note}");
    }
    if let Some(out) = &args.out {
        export_section(out, &check_section(rows, settings.correction.as_str(), settings.alpha.value()))?;
    }
    if let Some(path) = &args.junit {
        let xml = junit::check_report(rows, settings.correction.as_str(), settings.alpha.value());
        write_atomic(path, xml.as_bytes()).with_context(|| format!("cannot write --junit {}", path.display()))?;
    }
    Ok(if worse.is_empty() { 0 } else { 1 })
}
