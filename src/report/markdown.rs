//! The paper tables ([`Grid`]) as GitHub-flavoured Markdown, for READMEs and issue trackers:
//! the caption in bold above, a pipe table with numbers right-aligned, bold and marks as in the
//! LaTeX, the notes in italics below. Text is escaped so a name cannot break the table.

use super::grid::Grid;

/// Backslash-escapes what Markdown would read as markup (emphasis, code, links, HTML and
/// entities, the table's own `|`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>|#&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One cell: the value (bold when the grid says), `± sd`, and the mark.
fn cell_text(grid: &Grid, r: usize, c: usize) -> String {
    let cell = &grid.rows[r].cells[c];
    let Some(value) = grid.format_value(cell.mean, grid.is_signed(c)) else { return "–".to_string() };
    let mut out = if grid.is_bold(r, c) { format!("**{value}**") } else { value };
    if let Some(sd) = grid.format_sd(cell) {
        out.push_str(&format!(" ± {sd}"));
    }
    if let Some(mark) = cell.mark {
        out.push_str(&format!(" {}", mark.arrow()));
    }
    out
}

/// One grid as a Markdown block.
pub fn table(grid: &Grid) -> String {
    let mut out = format!("**{}**\n\n", escape(&grid.caption));
    let header: Vec<String> = std::iter::once(escape(&grid.row_header)).chain(grid.columns.iter().map(|c| escape(&c.name))).collect();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|:--{}|\n", "|--:".repeat(grid.columns.len())));
    for r in 0..grid.rows.len() {
        let cells: Vec<String> =
            std::iter::once(escape(&grid.row_label(r))).chain((0..grid.columns.len()).map(|c| cell_text(grid, r, c))).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if !grid.notes.is_empty() {
        out.push_str(&format!("\n_{}_\n", grid.notes.iter().map(|n| escape(n)).collect::<Vec<_>>().join(" ")));
    }
    out
}

/// Every grid in one document, each under its own anchor-friendly heading.
pub fn document(title: &str, grids: &[&Grid]) -> String {
    let mut out = format!("# {}\n", escape(title));
    for g in grids {
        out.push_str(&format!("\n<a id=\"{}\"></a>\n\n{}", g.name, table(g)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::grid::tests::downstream;

    #[test]
    fn a_grid_becomes_a_pipe_table_with_the_same_bold_and_marks() {
        let md = table(&downstream());
        let expected = "**SIB-200 accuracy (%) of m, Wanda 50% \\& co\\_ok**\n\n\
            | Calibration | en | de | Avg. | Δ vs dense |\n\
            |:--|--:|--:|--:|--:|\n\
            | Dense | 70.0 | 66.0 | 68.0 | – |\n\
            | en (ref.) | 55.0 ± 1.0 | 50.0 ± 2.0 | 52.5 ± 1.5 | -15.5 ± 1.5 |\n\
            | de | **62.0** ± 0.5 ↑ | 56.0 ± 1.0 | **59.0** ± 0.7 | -9.0 ± 0.7 |\n\
            | zh | 48.0 ± 3.0 | **58.0** ± 0.3 ↓ | 53.0 ± 1.2 | -15.0 ± 1.2 |\n\
            \n_Mean ± sd over 3 seeds._\n";
        assert_eq!(md, expected);
    }

    #[test]
    fn names_cannot_break_the_table() {
        let mut g = downstream();
        g.rows[2].label = "de|x *y*".into();
        let md = table(&g);
        assert!(md.contains("| de\\|x \\*y\\* | **62.0**"), "{md}");
        // Every row has as many cells as the header: the escaped | is not a separator.
        for line in md.lines().filter(|l| l.starts_with('|')) {
            assert_eq!(line.replace("\\|", "").matches('|').count(), 6, "{line}");
        }
        let doc = document("Tables of s", &[&g]);
        assert!(doc.starts_with("# Tables of s\n\n<a id=\"tasks-sib200_acc_m_wanda_u50\"></a>\n\n**SIB-200"), "{doc}");
    }
}
