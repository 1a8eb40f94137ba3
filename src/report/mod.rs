//! The study report: HTML (tera templates, inline SVG charts), paper tables as LaTeX and
//! Markdown, CSV/JSON exports.
//!
//! Everything in the report is a [`ReportSection`] of tables and chart data (the analyses'
//! type): the built-in sections come from `study_sections` (setup, perplexity change, tasks,
//! sparsity, timings), analyses add theirs through [`write_report`]'s `analyses`; `html`
//! renders them all alike and `charts` is the only drawing code. The paper tables are
//! [`grid::Grid`]s built by `study_grids` (names from `names`, the study file's `[report]`);
//! `latex`, `markdown` and `html` render the same grid with the same bold cells and marks.
//! The report reads what the store holds ([`StudyResults`]) and shows numbers `stats` and the
//! significance analysis computed; it neither runs a model nor computes a test of its own.

pub mod advice;
pub mod charts;
mod figure_pdf;
pub mod grid;
pub mod html;
pub mod junit;
pub mod latex;
pub mod markdown;
pub mod names;
pub mod study_advice;
pub mod study_grids;
pub mod study_sections;

use std::path::{Path, PathBuf};

use crate::analysis::significance::TestSettings;
use crate::analysis::study::StudyAnalyses;
use crate::design::ReportPlan;
use crate::store::StudyDir;
use study_grids::SectionGrid;

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
    #[error("{0} (the report takes names and the reference calibration from the study file's [report])")]
    Config(#[from] crate::design::ConfigError),
}

/// `polyprune report`: which study, and where the HTML, LaTeX and Markdown go.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub study: PathBuf,
    /// The HTML file; `None` = `<study>/report.html`.
    pub html: Option<PathBuf>,
    /// The paper tables as LaTeX, and a document including them, when given.
    pub latex: Option<PathBuf>,
    /// The paper tables as GitHub-flavoured Markdown, when given.
    pub markdown: Option<PathBuf>,
    /// A study file whose `[report]` to use instead of the copy kept in the study folder.
    pub config: Option<PathBuf>,
    /// The paired tests behind the significance section and the tables' marks.
    pub tests: TestSettings,
}

/// Where a report goes.
#[derive(Clone, Copy, Debug)]
pub struct ReportTargets<'a> {
    pub html: &'a Path,
    pub latex: Option<&'a Path>,
    pub markdown: Option<&'a Path>,
}

/// The `[report]` of `config` when given, else of the study file kept in `study` (defaults
/// for a folder without one).
pub fn report_plan(study: &Path, config: Option<&Path>) -> Result<ReportPlan, ReportError> {
    let (path, text) = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| crate::design::ConfigError::Io { path: p.to_path_buf(), source })?;
            (p.to_path_buf(), text)
        }
        None => {
            let dir = StudyDir::new(study);
            match dir.read_config_text()? {
                Some(text) => (dir.config_path(), text),
                None => return Ok(ReportPlan::default()),
            }
        }
    };
    Ok(ReportPlan::from_study_file(&text, &path)?)
}

/// The whole report of a finished study: the stored-results analyses (mask overlap, paired
/// tests) run first and hand over their sections and comparisons, then the HTML, exports,
/// LaTeX and Markdown are written.
pub fn build_study_report(opts: &ReportOptions) -> Result<ReportOutput, ReportError> {
    let html = opts.html.clone().unwrap_or_else(|| opts.study.join("report.html"));
    let plan = report_plan(&opts.study, opts.config.as_deref())?;
    let analyses = crate::analysis::study::analyze_study(&opts.study, &opts.tests)?;
    let targets = ReportTargets { html: &html, latex: opts.latex.as_deref(), markdown: opts.markdown.as_deref() };
    write_report(&opts.study, &targets, analyses, &plan, &opts.tests)
}

/// What a report run wrote.
#[derive(Debug, Default)]
pub struct ReportOutput {
    pub html: PathBuf,
    /// Where the table exports went (`<study>/report/`).
    pub exports_dir: PathBuf,
    pub exports: Vec<PathBuf>,
    pub latex: Vec<PathBuf>,
    pub markdown: Vec<PathBuf>,
    pub figures: usize,
    /// Paper tables (grids) in the report.
    pub grids: usize,
    /// Grid cells carrying a significance mark.
    pub marks: usize,
    /// Lines the user should read (e.g. why the LaTeX figures are boxes).
    pub notes: Vec<String>,
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    crate::util::write_atomic(&path, bytes).map(|_| path.clone()).map_err(|source| ReportError::Write { path, source })
}

/// Fills the folder `dir` through `fill` in a staging sibling and swaps it in whole (see
/// [`crate::util::StagedDir`]): a killed report leaves the previous exports, never a mix. The
/// paths returned are the files' final places.
fn staged(dir: &Path, fill: impl FnOnce(&Path) -> Result<Vec<PathBuf>, ReportError>) -> Result<Vec<PathBuf>, ReportError> {
    let failed = |source| ReportError::Write { path: dir.to_path_buf(), source };
    let stage = crate::util::StagedDir::begin(dir).map_err(failed)?;
    let written = fill(stage.path())?;
    let moved = written.iter().map(|p| p.strip_prefix(stage.path()).map(|rel| dir.join(rel)).unwrap_or_else(|_| p.clone())).collect();
    stage.commit().map_err(failed)?;
    Ok(moved)
}

/// Writes every table of every section as `<dir>/<section>-<table>.csv` and `.json`, and every
/// figure as `<dir>/<section>-figure<k>.svg` (the drawing, standalone for papers) and `.json`
/// (its data).
pub fn export_tables(dir: &Path, sections: &[ReportSection]) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
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
            let svg = charts::draw(&f.chart)
                .map_err(|e| ReportError::Write { path: dir.join(format!("{stem}.svg")), source: std::io::Error::other(e) })?;
            written.push(write(dir.join(format!("{stem}.svg")), svg.as_bytes())?);
        }
    }
    Ok(written)
}

/// The paper tables as LaTeX: one `<name>.tex` per grid, `figures.tex` with a float per
/// report figure (drawn as `figures/<stem>.pdf` from its standalone SVG in `figures_dir` when
/// rsvg-convert is installed), and `tables.tex`, a document that inputs them all.
pub fn write_latex(dir: &Path, grids: &[SectionGrid], sections: &[ReportSection], figures_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let mut inputs = Vec::new();
    for g in grids {
        let file = format!("{}.tex", html::export_stem("", &g.grid.name).trim_start_matches('-'));
        written.push(write(dir.join(&file), latex::table(&g.grid).as_bytes())?);
        inputs.push(file);
    }
    let converter = figure_pdf::converter();
    let mut figures = Vec::new();
    for s in sections {
        for (k, f) in s.figures.iter().enumerate() {
            let stem = html::export_stem(&s.id, &format!("figure{}", k + 1));
            let svg = figures_dir.join(format!("{stem}.svg"));
            let pdf = format!("figures/{stem}.pdf");
            if let Some(converter) = &converter {
                let path = dir.join(&pdf);
                figure_pdf::convert(converter, &svg, &path).map_err(|source| ReportError::Write { path: path.clone(), source })?;
                written.push(path);
            }
            figures.push(latex::FigureFile { svg, pdf, caption: f.caption.clone() });
        }
    }
    if !figures.is_empty() {
        written.push(write(dir.join("figures.tex"), latex::figures(&figures).as_bytes())?);
        inputs.push("figures.tex".into());
    }
    written.push(write(dir.join("tables.tex"), latex::document(&inputs).as_bytes())?);
    Ok(written)
}

/// The paper tables as Markdown: one `<name>.md` per grid and `tables.md` with all of them.
pub fn write_markdown(dir: &Path, title: &str, grids: &[SectionGrid]) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for g in grids {
        let file = format!("{}.md", html::export_stem("", &g.grid.name).trim_start_matches('-'));
        written.push(write(dir.join(file), markdown::table(&g.grid).as_bytes())?);
    }
    let all: Vec<&grid::Grid> = grids.iter().map(|g| &g.grid).collect();
    written.push(write(dir.join("tables.md"), markdown::document(title, &all).as_bytes())?);
    Ok(written)
}

/// `to` as a link from a page in the folder `from` ('/'-separated; absolute when the two share
/// no root).
fn relative_href(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (absolute(from), absolute(to));
    let (a, b): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let shared = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if shared == 0 {
        return to.display().to_string();
    }
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - shared];
    parts.extend(b[shared..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Renders the report of the study in `study_dir`: the built-in sections, then the analyses'
/// (`analyses`, whose comparisons mark the paper tables); exports every table next to the
/// study (`<study>/report/`), and LaTeX and Markdown where `targets` ask for them.
pub fn write_report(
    study_dir: &Path,
    targets: &ReportTargets,
    analyses: StudyAnalyses,
    plan: &ReportPlan,
    tests: &TestSettings,
) -> Result<ReportOutput, ReportError> {
    let results = StudyResults::load(study_dir)?;
    let mut sections = study_sections::sections(&results);
    // Beside the grid: right after the perplexity section (or after setup when it has none).
    if let Some(advice) = study_advice::section(&results)? {
        let at = sections.iter().position(|s| s.id == "perplexity").map_or(1.min(sections.len()), |i| i + 1);
        sections.insert(at, advice);
    }
    sections.extend(analyses.sections);
    let decisions: Option<crate::store::Decisions> = results.dir.read_decisions()?;
    let grids = study_grids::study_grids(&study_grids::GridInputs {
        results: &results,
        comparisons: &analyses.comparisons,
        plan,
        tests,
        decisions: decisions.as_ref(),
    });
    let export_dir = results.dir.report();
    let info = html::PageInfo {
        title: &format!("polyprune study: {}", results.record.study),
        study_dir: &study_dir.display().to_string(),
        config_hash: &results.record.config_hash[..16.min(results.record.config_hash.len())],
        export_dir: &export_dir.display().to_string(),
        export_href: &relative_href(targets.html.parent().unwrap_or(Path::new(".")), &export_dir),
    };
    let page = html::render(&info, &sections, &grids)?;
    let exports = staged(&export_dir, |dir| {
        let mut exports = export_tables(dir, &sections)?;
        // The paper tables' data, next to the other exports (`paper-<grid name>.csv` / `.json`).
        for g in &grids {
            let table = g.grid.to_table();
            let stem = html::export_stem("paper", &table.name);
            let csv = table.to_csv().map_err(|source| ReportError::Write { path: dir.join(&stem), source })?;
            exports.push(write(dir.join(format!("{stem}.csv")), &csv)?);
            exports.push(write(dir.join(format!("{stem}.json")), &serde_json::to_vec_pretty(&table.to_json()).expect("json"))?);
        }
        Ok(exports)
    })?;
    let latex = match targets.latex {
        Some(d) => staged(d, |dir| write_latex(dir, &grids, &sections, &std::path::absolute(&export_dir).unwrap_or(export_dir.clone())))?,
        None => Vec::new(),
    };
    let markdown = match targets.markdown {
        Some(d) => staged(d, |dir| write_markdown(dir, &format!("Tables of the study {}", results.record.study), &grids))?,
        None => Vec::new(),
    };
    // The page last: it links the exports, which are then complete.
    let html_out = write(targets.html.to_path_buf(), page.as_bytes())?;
    Ok(ReportOutput {
        html: html_out,
        exports_dir: export_dir.clone(),
        exports,
        latex,
        markdown,
        figures: sections.iter().map(|s| s.figures.len()).sum(),
        grids: grids.len(),
        marks: grids.iter().flat_map(|g| g.grid.rows.iter().flat_map(|r| &r.cells)).filter(|c| c.mark.is_some()).count(),
        notes: if targets.latex.is_some() && figure_pdf::converter().is_none() {
            vec![figure_pdf::MISSING_CONVERTER.into()]
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::relative_href;
    use std::path::Path;

    #[test]
    fn export_links_are_relative_to_the_page() {
        assert_eq!(relative_href(Path::new("/s/study"), Path::new("/s/study/report")), "report");
        assert_eq!(relative_href(Path::new("/s/pages"), Path::new("/s/study/report")), "../study/report");
        assert_eq!(relative_href(Path::new("/s/study/report"), Path::new("/s/study/report")), ".");
    }
}
