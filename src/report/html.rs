//! The HTML report: one self-contained file rendered with tera from `templates/report.html.tera`
//! (compiled in). Charts are inline SVG, styles inline, no scripts, no external assets, so the
//! file reads offline and prints. The template receives pre-formatted strings only.

use serde::Serialize;

use super::charts::{draw, ChartError};
use super::grid::{Grid, RowRole};
use super::study_grids::SectionGrid;
use crate::analysis::section::{ReportSection, TableCell};

const TEMPLATE: &str = include_str!("../../templates/report.html.tera");

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("the report template failed: {0}")]
    Template(String),
}

#[derive(Serialize)]
struct CellView {
    text: String,
    numeric: bool,
}

#[derive(Serialize)]
struct TableView {
    name: String,
    export: String,
    caption: String,
    columns: Vec<String>,
    /// Empty when the table is too long to read in the page ([`MAX_INLINE_ROWS`]).
    rows: Vec<Vec<CellView>>,
    /// Rows left to the exports, which the page links instead.
    folded_rows: usize,
}

/// Longer tables are data, not reading: the page shows their caption and links their CSV and
/// JSON exports (the section's figures summarise them).
pub const MAX_INLINE_ROWS: usize = 40;

#[derive(Serialize)]
struct GridCellView {
    /// The value as printed, or a dash.
    value: String,
    sd: Option<String>,
    mark: Option<&'static str>,
    bold: bool,
}

#[derive(Serialize)]
struct GridRowView {
    label: String,
    dense: bool,
    cells: Vec<GridCellView>,
}

/// A paper table with the bold, spread and marks the LaTeX and Markdown show.
#[derive(Serialize)]
struct GridView {
    name: String,
    caption: String,
    row_header: String,
    columns: Vec<String>,
    rows: Vec<GridRowView>,
    notes: String,
}

fn grid_view(g: &Grid) -> GridView {
    let rows = g
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| GridRowView {
            label: g.row_label(r),
            dense: row.role == RowRole::Dense,
            cells: row
                .cells
                .iter()
                .enumerate()
                .map(|(c, cell)| GridCellView {
                    value: g.format_value(cell.mean, g.is_signed(c)).unwrap_or_else(|| "–".into()),
                    sd: g.format_sd(cell),
                    mark: cell.mark.map(|m| m.arrow()),
                    bold: g.is_bold(r, c),
                })
                .collect(),
        })
        .collect();
    GridView {
        name: g.name.clone(),
        caption: g.caption.clone(),
        row_header: g.row_header.clone(),
        columns: g.columns.iter().map(|c| c.name.clone()).collect(),
        rows,
        notes: g.notes.join(" "),
    }
}

#[derive(Serialize)]
struct FigureView {
    svg: String,
    caption: String,
}

#[derive(Serialize)]
struct SectionView {
    id: String,
    title: String,
    caption: String,
    figures: Vec<FigureView>,
    grids: Vec<GridView>,
    tables: Vec<TableView>,
}

/// What the page says about itself.
pub struct PageInfo<'a> {
    pub title: &'a str,
    pub study_dir: &'a str,
    pub config_hash: &'a str,
    pub export_dir: &'a str,
    /// The export folder relative to the page, for links.
    pub export_href: &'a str,
}

/// A number as the tables show it: 4 significant decimals, integers plain, NaN as a dash.
pub fn format_cell(cell: &TableCell) -> (String, bool) {
    match cell {
        TableCell::Text(s) => (s.clone(), false),
        TableCell::Number(x) if !x.is_finite() => ("–".into(), true),
        TableCell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => (format!("{x:.0}"), true),
        TableCell::Number(x) if x.abs() >= 100.0 => (format!("{x:.1}"), true),
        TableCell::Number(x) => (format!("{x:.4}"), true),
    }
}

/// The export stem of a table: `<section>-<table>`.
pub fn export_stem(section: &str, table: &str) -> String {
    let raw = format!("{section}-{table}");
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || "-_+.".contains(c) { c } else { '_' }).collect()
}

/// The page: each section's figures, then its paper tables (`grids` of that section), then its
/// data tables.
pub fn render(info: &PageInfo, sections: &[ReportSection], grids: &[SectionGrid]) -> Result<String, HtmlError> {
    let mut views = Vec::new();
    for s in sections {
        let figures = s
            .figures
            .iter()
            .map(|f| Ok(FigureView { svg: draw(&f.chart)?, caption: f.caption.clone() }))
            .collect::<Result<Vec<_>, ChartError>>()?;
        let tables = s
            .tables
            .iter()
            .map(|t| TableView {
                name: t.name.clone(),
                export: export_stem(&s.id, &t.name),
                caption: t.caption.clone(),
                columns: t.columns.clone(),
                folded_rows: if t.rows.len() > MAX_INLINE_ROWS { t.rows.len() } else { 0 },
                rows: t
                    .rows
                    .iter()
                    .take(if t.rows.len() > MAX_INLINE_ROWS { 0 } else { t.rows.len() })
                    .map(|r| {
                        r.iter()
                            .map(|c| {
                                let (text, numeric) = format_cell(c);
                                CellView { text, numeric }
                            })
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        let grids = grids.iter().filter(|g| g.section == s.id).map(|g| grid_view(&g.grid)).collect();
        views.push(SectionView { id: s.id.clone(), title: s.title.clone(), caption: s.caption.clone(), figures, grids, tables });
    }
    let mut tera = tera::Tera::default();
    // The name ends in .html, so tera escapes every value except the SVG marked `safe`.
    tera.add_raw_template("report.html", TEMPLATE).map_err(|e| HtmlError::Template(e.to_string()))?;
    let mut context = tera::Context::new();
    context.insert("title", info.title);
    context.insert("version", env!("CARGO_PKG_VERSION"));
    context.insert("study_dir", info.study_dir);
    context.insert("config_hash", info.config_hash);
    context.insert("export_dir", info.export_dir);
    context.insert("export_href", info.export_href);
    context.insert("sections", &views);
    tera.render("report.html", &context).map_err(|e| HtmlError::Template(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::section::{Chart, Figure, Table};

    #[test]
    fn sections_render_generically_with_escaped_text_and_inline_svg() {
        let section = ReportSection {
            id: "masks".into(),
            title: "Mask overlap <IoU>".into(),
            caption: "How to read & use it.".into(),
            figures: vec![Figure {
                chart: Chart::Lines { title: "IoU".into(), x_label: "block".into(), y_label: "IoU".into(), series: vec![], chance: None },
                caption: "by depth".into(),
            }],
            tables: vec![Table {
                name: "iou".into(),
                caption: "IoU".into(),
                columns: vec!["layer".into(), "iou".into()],
                rows: vec![vec![TableCell::Text("blk.0".into()), TableCell::Number(0.5)]],
            }],
        };
        let info = PageInfo { title: "t", study_dir: "d", config_hash: "h", export_dir: "e", export_href: "e" };
        let html = render(&info, &[section], &[]).unwrap();
        assert!(html.contains("<section id=\"masks\">"));
        assert!(html.contains("Mask overlap &lt;IoU&gt;"), "titles are escaped");
        assert!(html.contains("How to read &amp; use it."));
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("<td class=\"num\">0.5000</td>"));
        assert!(html.contains("masks-iou.csv"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=") && !html.contains("<link") && !html.contains("url("), "no external assets");
    }

    /// The hand-made grid in its section: the same bold cells and marks as the LaTeX.
    #[test]
    fn grids_render_with_bold_spread_and_marks() {
        let section = ReportSection { id: "tasks".into(), title: "Tasks".into(), caption: String::new(), figures: vec![], tables: vec![] };
        let grid = SectionGrid { section: "tasks".into(), grid: crate::report::grid::tests::downstream() };
        let info = PageInfo { title: "t", study_dir: "d", config_hash: "h", export_dir: "e", export_href: "e" };
        let html = render(&info, &[section], &[grid]).unwrap();
        assert!(html.contains("<table class=\"grid\" id=\"tasks-sib200_acc_m_wanda_u50\">"), "{html}");
        assert_eq!(html.matches("<strong>").count(), 3, "{html}");
        assert!(
            html.contains("<td class=\"num\"><strong>62.0</strong> <span class=\"sd\">± 0.5</span> <span class=\"mark\">↑</span></td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"num\"><strong>58.0</strong> <span class=\"sd\">± 0.3</span> <span class=\"mark\">↓</span></td>"),
            "{html}"
        );
        assert!(html.contains("<tr class=\"dense\"><th scope=\"row\">Dense</th><td class=\"num\">70.0</td>"), "{html}");
        assert!(html.contains("Wanda 50% &amp; co_ok"), "captions are escaped: {html}");
        assert!(html.contains("<p class=\"note\">Mean ± sd over 3 seeds.</p>"), "{html}");
    }

    /// A table longer than the page can show is linked, not inlined.
    #[test]
    fn long_tables_are_linked_to_their_exports() {
        let row = |i: usize| vec![TableCell::Text(format!("blk.{i}")), TableCell::Number(i as f64)];
        let table = |name: &str, n: usize| Table {
            name: name.into(),
            caption: format!("{name}."),
            columns: vec!["layer".into(), "x".into()],
            rows: (0..n).map(row).collect(),
        };
        let section = ReportSection {
            id: "masks".into(),
            title: "Masks".into(),
            caption: String::new(),
            figures: vec![],
            tables: vec![table("short", MAX_INLINE_ROWS), table("long", MAX_INLINE_ROWS + 1)],
        };
        let info = PageInfo { title: "t", study_dir: "d", config_hash: "h", export_dir: "/abs/report", export_href: "../report" };
        let html = render(&info, &[section], &[]).unwrap();
        assert!(html.contains("<table id=\"masks-short\">"), "{html}");
        assert!(!html.contains("<table id=\"masks-long\">"), "{html}");
        // Tera escapes '/' in attribute values as &#x2F;, which browsers decode.
        assert!(html.contains("41 rows, too many to read here: <a href=\"..&#x2F;report/masks-long.csv\">"), "{html}");
        assert_eq!(html.matches("<tr><td>blk.").count(), MAX_INLINE_ROWS, "only the short table's rows are in the page");
    }
}
