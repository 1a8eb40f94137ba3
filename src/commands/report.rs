//! `polyprune report`: a study's results as one HTML file (plus exports and LaTeX tables).

use anyhow::Result;

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.study.join("report.html"));
    let written = polyprune::report::write_report(&args.study, &out, args.latex.as_deref(), Vec::new())?;
    eprintln!("{} figures; {} table exports in {}", written.figures, written.exports.len(), args.study.join("report").display());
    if let Some(dir) = &args.latex {
        eprintln!("LaTeX tables: {} (compile {})", dir.display(), dir.join("tables.tex").display());
    }
    println!("{}", written.html.display());
    Ok(())
}
