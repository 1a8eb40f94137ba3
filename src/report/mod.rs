//! The study report: HTML (tera templates, inline SVG charts), LaTeX tables, CSV/JSON exports.
//!
//! Everything in the report is a [`ReportSection`] of tables and chart data (the analyses'
//! type): the built-in sections come from `study_sections` (setup, perplexity change, tasks,
//! sparsity, timings), analyses add theirs through [`write_report`]'s `extra`; `html` renders
//! them all alike and `charts` is the only drawing code. The report reads what the store holds
//! ([`StudyResults`]) and shows numbers `stats` computed; it neither runs a model nor computes
//! a statistic of its own.

pub mod charts;
pub mod html;
pub mod latex;
pub mod study_sections;

use std::path::{Path, PathBuf};

pub use crate::analysis::section::{BarSeries, Chart, Figure, LineSeries, ReportSection, ScatterPanel, ScatterPoint, Table, TableCell};
pub use crate::store::StudyResults;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Html(#[from] html::HtmlError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Analysis(#[from] crate::analysis::AnalysisError),
}

/// `polyprune report`: which study, and where the HTML and LaTeX go.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub study: PathBuf,
    /// The HTML file; `None` = `<study>/report.html`.
    pub html: Option<PathBuf>,
    /// Booktabs tables and a document including them, when given.
    pub latex: Option<PathBuf>,
    /// The paired tests behind the significance section.
    pub tests: crate::analysis::significance::TestSettings,
}

/// The whole report of a finished study: the stored-results analyses (mask overlap, paired
/// tests) run first and hand over their sections, then the HTML, exports and LaTeX are written.
pub fn build_study_report(opts: &ReportOptions) -> Result<ReportOutput, ReportError> {
    let html = opts.html.clone().unwrap_or_else(|| opts.study.join("report.html"));
    let analyses = crate::analysis::study::analyze_study(&opts.study, &opts.tests)?;
    write_report(&opts.study, &html, opts.latex.as_deref(), analyses)
}

/// What a report run wrote.
#[derive(Debug, Default)]
pub struct ReportOutput {
    pub html: PathBuf,
    /// Where the table exports went (`<study>/report/`).
    pub exports_dir: PathBuf,
    pub exports: Vec<PathBuf>,
    pub latex: Vec<PathBuf>,
    pub figures: usize,
}

/// Writes every table of every section as `<dir>/<section>-<table>.csv` and `.json`, and every
/// figure's data as `<dir>/<section>-figure<k>.json`.
pub fn export_tables(dir: &Path, sections: &[ReportSection]) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let write = |path: PathBuf, bytes: &[u8]| {
        crate::util::write_atomic(&path, bytes).map(|_| path.clone()).map_err(|source| ReportError::Write { path, source })
    };
    for s in sections {
        for t in &s.tables {
            let stem = html::export_stem(&s.id, &t.name);
            written.push(write(
                dir.join(format!("{stem}.csv")),
                &t.to_csv().map_err(|source| ReportError::Write { path: dir.join(&stem), source })?,
            )?);
            written.push(write(dir.join(format!("{stem}.json")), &serde_json::to_vec_pretty(&t.to_json()).expect("json"))?);
        }
        for (k, f) in s.figures.iter().enumerate() {
            let stem = html::export_stem(&s.id, &format!("figure{}", k + 1));
            written.push(write(dir.join(format!("{stem}.json")), &serde_json::to_vec_pretty(&f.chart).expect("json"))?);
        }
    }
    Ok(written)
}

/// The main grids as LaTeX: Δ bits per byte (lower is better) and downstream accuracy (higher).
pub fn write_latex(dir: &Path, sections: &[ReportSection]) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let mut inputs = Vec::new();
    for s in sections {
        for t in &s.tables {
            let better = if t.name.starts_with("bpb_change") || t.name == "dense_bpb" {
                latex::Better::Lower
            } else if t.name == "downstream" {
                latex::Better::Higher
            } else {
                continue;
            };
            let stem = html::export_stem(&s.id, &t.name);
            let path = dir.join(format!("{stem}.tex"));
            crate::util::write_atomic(&path, latex::booktabs(t, better, &stem).as_bytes())
                .map_err(|source| ReportError::Write { path: path.clone(), source })?;
            inputs.push(format!("{stem}.tex"));
            written.push(path);
        }
    }
    let path = dir.join("tables.tex");
    crate::util::write_atomic(&path, latex::document(&inputs).as_bytes())
        .map_err(|source| ReportError::Write { path: path.clone(), source })?;
    written.push(path);
    Ok(written)
}

/// Renders the report of the study in `study_dir` to `html_out`, with `extra` sections after the
/// built-in ones; exports every table next to the study (`<study>/report/`), and LaTeX when asked.
pub fn write_report(
    study_dir: &Path,
    html_out: &Path,
    latex_dir: Option<&Path>,
    extra: Vec<ReportSection>,
) -> Result<ReportOutput, ReportError> {
    let results = StudyResults::load(study_dir)?;
    let mut sections = study_sections::sections(&results);
    sections.extend(extra);
    let export_dir = results.dir.report();
    let info = html::PageInfo {
        title: &format!("polyprune study: {}", results.record.study),
        study_dir: &study_dir.display().to_string(),
        config_hash: &results.record.config_hash[..16.min(results.record.config_hash.len())],
        export_dir: &export_dir.display().to_string(),
    };
    let page = html::render(&info, &sections)?;
    crate::util::write_atomic(html_out, page.as_bytes()).map_err(|source| ReportError::Write { path: html_out.to_path_buf(), source })?;
    let exports = export_tables(&export_dir, &sections)?;
    let latex = match latex_dir {
        Some(d) => write_latex(d, &sections)?,
        None => Vec::new(),
    };
    Ok(ReportOutput {
        html: html_out.to_path_buf(),
        exports_dir: export_dir.clone(),
        exports,
        latex,
        figures: sections.iter().map(|s| s.figures.len()).sum(),
    })
}
