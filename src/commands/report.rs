//! `polyprune report`: a study's results as one HTML file (plus exports and LaTeX tables).

use anyhow::Result;

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.study.join("report.html"));
    // The analyses (mask overlap, significance) read the finished cells and hand the report
    // their sections as data; the report module itself knows nothing of them.
    let analyses = polyprune::analysis::study::analyze_study(&args.study, &polyprune::analysis::significance::TestSettings::default())?;
    let written = polyprune::report::write_report(&args.study, &out, args.latex.as_deref(), analyses)?;
    let exports = polyprune::store::StudyDir::new(&args.study).report();
    eprintln!("{} figures; {} table exports in {}", written.figures, written.exports.len(), exports.display());
    if let Some(dir) = &args.latex {
        eprintln!("LaTeX tables: {} (compile {})", dir.display(), dir.join("tables.tex").display());
    }
    println!("{}", written.html.display());
    Ok(())
}
