//! `polyprune report`: flags to `polyprune::report::build_study_report`, and where it wrote.

use anyhow::Result;

use polyprune::report::{build_study_report, ReportOptions};

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> Result<()> {
    let options = ReportOptions {
        study: args.study,
        html: args.out,
        latex: args.latex.clone(),
        markdown: args.markdown.clone(),
        config: args.config,
        tests: Default::default(),
    };
    let written = build_study_report(&options)?;
    eprintln!("{} figures; {} table exports in {}", written.figures, written.exports.len(), written.exports_dir.display());
    eprintln!("{} paper tables, {} cells marked significant against the reference calibration", written.grids, written.marks);
    if let Some(dir) = &args.latex {
        eprintln!("LaTeX tables: {} (compile {})", dir.display(), dir.join("tables.tex").display());
    }
    if let Some(dir) = &args.markdown {
        eprintln!("Markdown tables: {}", dir.join("tables.md").display());
    }
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    println!("{}", written.html.display());
    Ok(())
}
