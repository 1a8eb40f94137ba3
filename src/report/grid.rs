//! A results table as a paper prints it: one row per model variant (the dense model, then each
//! calibration set), one column per evaluation language plus their average (and, where it
//! helps, a signed Δ against the dense model), each cell a mean with its standard deviation
//! over seeds and a significance mark.
//!
//! The rules every renderer (LaTeX, Markdown, HTML) shares live here, once: which cells are
//! bold (the best *pruned* value of a measured column, only when there is a choice: never a
//! dense row, a Δ column, a single candidate or a tie of all candidates) and how many decimals
//! a table shows (one precision per table, from the spread of its values). The numbers
//! themselves arrive computed.

/// Which end of a column is best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// What a row is, for the bold rule and for renderers that set the dense row apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRole {
    /// The unpruned model: shown for reference, never a candidate for bold.
    Dense,
    /// A pruned model.
    Pruned,
    /// The pruned model calibrated on the reference calibration, which marks compare against.
    Reference,
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// One evaluation set (a language): marks are possible.
    Measured,
    /// The mean over the row's measured columns.
    Average,
    /// A difference (row minus dense), always printed with its sign and never bold.
    Delta,
}

/// A significant paired difference against the reference calibration, by direction of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Higher,
    Lower,
}

impl Mark {
    pub fn arrow(self) -> &'static str {
        match self {
            Mark::Higher => "↑",
            Mark::Lower => "↓",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridCell {
    /// NaN where there is no value.
    pub mean: f64,
    /// Standard deviation over seeds, where there were at least two.
    pub sd: Option<f64>,
    pub mark: Option<Mark>,
}

impl GridCell {
    pub fn value(mean: f64) -> GridCell {
        GridCell { mean, sd: None, mark: None }
    }
    pub fn missing() -> GridCell {
        GridCell::value(f64::NAN)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GridRow {
    pub label: String,
    pub role: RowRole,
    pub cells: Vec<GridCell>,
}

/// One table. `name` is its file stem; `caption` and `notes` are plain text (renderers escape).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub name: String,
    pub caption: String,
    /// Header of the row-label column (`Calibration`).
    pub row_header: String,
    pub columns: Vec<Column>,
    pub rows: Vec<GridRow>,
    pub better: Better,
    /// The values are differences themselves (Δ bits per byte): every value carries its sign.
    pub signed: bool,
    /// Sentences under the table: what ±, bold and the marks mean, and the test behind them.
    pub notes: Vec<String>,
}

impl Grid {
    /// Decimals shown for every value of the table: three significant digits of the spread of
    /// its measured and average values (a spread of 0.2 shows 0.123, of 12 shows 51.2), between
    /// 1 and 4; a table of one distinct value takes them from the value's size.
    pub fn decimals(&self) -> usize {
        let values: Vec<f64> = self
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().zip(&self.columns).filter(|(_, c)| c.kind != ColumnKind::Delta).map(|(cell, _)| cell.mean))
            .filter(|x| x.is_finite())
            .collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let scale = if hi > lo {
            hi - lo
        } else if hi.is_finite() && hi != 0.0 {
            hi.abs()
        } else {
            return 3;
        };
        (2 - scale.log10().floor() as i64).clamp(1, 4) as usize
    }

    /// Whether row `r`'s value in column `c` is printed bold: the column is measured or the
    /// average, the row is pruned, at least two pruned rows have a value there, the row's value
    /// (as printed) is the best, and not every candidate has it.
    pub fn is_bold(&self, r: usize, c: usize) -> bool {
        if self.columns.get(c).is_none_or(|col| col.kind == ColumnKind::Delta) {
            return false;
        }
        let decimals = self.decimals();
        let shown = |x: f64| (x * 10f64.powi(decimals as i32)).round();
        let candidates: Vec<(usize, f64)> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, row)| row.role != RowRole::Dense)
            .filter_map(|(i, row)| row.cells.get(c).map(|cell| (i, cell.mean)))
            .filter(|(_, x)| x.is_finite())
            .map(|(i, x)| (i, shown(x)))
            .collect();
        if candidates.len() < 2 {
            return false;
        }
        let best = match self.better {
            Better::Lower => candidates.iter().map(|&(_, x)| x).fold(f64::INFINITY, f64::min),
            Better::Higher => candidates.iter().map(|&(_, x)| x).fold(f64::NEG_INFINITY, f64::max),
        };
        let winners = candidates.iter().filter(|&&(_, x)| x == best).count();
        winners < candidates.len() && candidates.iter().any(|&(i, x)| i == r && x == best)
    }

    /// A row's label as printed: the reference row says that it is one.
    pub fn row_label(&self, r: usize) -> String {
        let row = &self.rows[r];
        if row.role == RowRole::Reference {
            format!("{} (ref.)", row.label)
        } else {
            row.label.clone()
        }
    }

    /// Whether any cell has a standard deviation (then every value column shows one slot for it).
    pub fn has_spread(&self) -> bool {
        self.rows.iter().any(|r| r.cells.iter().any(|c| c.sd.is_some()))
    }

    /// Whether column `c` holds signed values.
    pub fn is_signed(&self, c: usize) -> bool {
        self.signed || self.columns.get(c).is_some_and(|col| col.kind == ColumnKind::Delta)
    }

    /// A value as printed at the table's precision, with `+` on positive values of signed
    /// columns; `None` when there is no value.
    pub fn format_value(&self, x: f64, signed: bool) -> Option<String> {
        if !x.is_finite() {
            return None;
        }
        let d = self.decimals();
        let text = format!("{x:.d$}");
        // "-0.000" is a zero: print it without a sign that would claim a direction.
        let zero = text.trim_start_matches('-').chars().all(|ch| ch == '0' || ch == '.');
        Some(match (signed, zero) {
            (_, true) => text.trim_start_matches('-').to_string(),
            (true, false) if x > 0.0 => format!("+{text}"),
            _ => text,
        })
    }

    /// The grid as a data table for the CSV/JSON exports: the row label, then per column its
    /// mean, its standard deviation (when the grid has any) and its mark (`higher`/`lower`).
    pub fn to_table(&self) -> crate::analysis::section::Table {
        use crate::analysis::section::TableCell;
        let spread = self.has_spread();
        let mut columns = vec![self.row_header.clone()];
        for c in &self.columns {
            columns.push(c.name.clone());
            if spread {
                columns.push(format!("{} sd", c.name));
            }
            columns.push(format!("{} mark", c.name));
        }
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let mut cells = vec![TableCell::Text(self.row_label(r))];
                for cell in &row.cells {
                    cells.push(TableCell::Number(cell.mean));
                    if spread {
                        cells.push(TableCell::Number(cell.sd.unwrap_or(f64::NAN)));
                    }
                    let mark = match cell.mark {
                        Some(Mark::Higher) => "higher",
                        Some(Mark::Lower) => "lower",
                        None => "",
                    };
                    cells.push(TableCell::Text(mark.into()));
                }
                cells
            })
            .collect();
        crate::analysis::section::Table { name: self.name.clone(), caption: self.caption.clone(), columns, rows }
    }

    /// The standard deviation as printed (no sign), `None` without one.
    pub fn format_sd(&self, cell: &GridCell) -> Option<String> {
        cell.sd.filter(|s| s.is_finite()).map(|s| format!("{s:.d$}", d = self.decimals()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn cell(mean: f64, sd: Option<f64>, mark: Option<Mark>) -> GridCell {
        GridCell { mean, sd, mark }
    }

    /// A hand-made downstream grid: dense, English (the reference), German, Chinese; columns en,
    /// de, average, Δ vs dense. German is best on en (0.62) and on the average; Chinese is best
    /// on de (0.58), where German ties with nobody; German's en cell is significantly higher
    /// than English's and Chinese's de cell significantly lower.
    pub(crate) fn downstream() -> Grid {
        let columns = vec![
            Column { name: "en".into(), kind: ColumnKind::Measured },
            Column { name: "de".into(), kind: ColumnKind::Measured },
            Column { name: "Avg.".into(), kind: ColumnKind::Average },
            Column { name: "Δ vs dense".into(), kind: ColumnKind::Delta },
        ];
        let row = |label: &str, role, cells| GridRow { label: label.into(), role, cells };
        Grid {
            name: "tasks-sib200_acc_m_wanda_u50".into(),
            caption: "SIB-200 accuracy (%) of m, Wanda 50% & co_ok".into(),
            row_header: "Calibration".into(),
            columns,
            rows: vec![
                row(
                    "Dense",
                    RowRole::Dense,
                    vec![cell(70.0, None, None), cell(66.0, None, None), cell(68.0, None, None), GridCell::missing()],
                ),
                row(
                    "en",
                    RowRole::Reference,
                    vec![
                        cell(55.0, Some(1.0), None),
                        cell(50.0, Some(2.0), None),
                        cell(52.5, Some(1.5), None),
                        cell(-15.5, Some(1.5), None),
                    ],
                ),
                row(
                    "de",
                    RowRole::Pruned,
                    vec![
                        cell(62.0, Some(0.5), Some(Mark::Higher)),
                        cell(56.0, Some(1.0), None),
                        cell(59.0, Some(0.7), None),
                        cell(-9.0, Some(0.7), None),
                    ],
                ),
                row(
                    "zh",
                    RowRole::Pruned,
                    vec![
                        cell(48.0, Some(3.0), None),
                        cell(58.0, Some(0.3), Some(Mark::Lower)),
                        cell(53.0, Some(1.2), None),
                        cell(-15.0, Some(1.2), None),
                    ],
                ),
            ],
            better: Better::Higher,
            signed: false,
            notes: vec!["Mean ± sd over 3 seeds.".into()],
        }
    }

    #[test]
    fn bold_goes_to_the_best_pruned_value_of_each_measured_column_only() {
        let g = downstream();
        // The dense row is the column maximum of en and de, but never bold.
        let bold: Vec<(usize, usize)> =
            (0..g.rows.len()).flat_map(|r| (0..g.columns.len()).map(move |c| (r, c))).filter(|&(r, c)| g.is_bold(r, c)).collect();
        assert_eq!(bold, vec![(2, 0), (2, 2), (3, 1)], "de on en and on the average, zh on de; no Δ, no dense");
        let lower = Grid { better: Better::Lower, ..g.clone() };
        assert!(lower.is_bold(3, 0) && lower.is_bold(1, 1) && !lower.is_bold(3, 1));
    }

    #[test]
    fn a_single_candidate_or_a_tie_of_all_is_never_bold() {
        let mut g = downstream();
        g.rows.truncate(2);
        assert!((0..4).all(|c| !g.is_bold(1, c)), "one pruned row: nothing to choose");
        let mut tie = downstream();
        for r in 1..4 {
            tie.rows[r].cells[0].mean = 60.0;
        }
        assert!((1..4).all(|r| !tie.is_bold(r, 0)), "all pruned rows equal: nothing stands out");
        // Equal as printed counts as a tie of the two best.
        tie.rows[1].cells[0].mean = 61.04;
        tie.rows[2].cells[0].mean = 61.02;
        assert!(tie.is_bold(1, 0) && tie.is_bold(2, 0) && !tie.is_bold(3, 0));
    }

    #[test]
    fn precision_follows_the_spread_and_signs_are_explicit_where_asked() {
        let g = downstream();
        // Spread 70 - 48 = 22: one decimal.
        assert_eq!(g.decimals(), 1);
        assert_eq!(g.format_value(-15.5, true).as_deref(), Some("-15.5"));
        assert_eq!(g.format_value(2.26, true).as_deref(), Some("+2.3"));
        assert_eq!(g.format_value(-0.01, true).as_deref(), Some("0.0"), "a printed zero has no sign");
        assert_eq!(g.format_value(f64::NAN, true), None);
        let mut small = g.clone();
        for r in &mut small.rows {
            for c in &mut r.cells {
                c.mean /= 100.0;
            }
        }
        // Spread 0.22: three decimals.
        assert_eq!(small.decimals(), 3);
        assert_eq!(small.format_sd(&small.rows[1].cells[0]).as_deref(), Some("1.000"));
        assert!(g.is_signed(3) && !g.is_signed(0));
    }

    #[test]
    fn the_export_keeps_means_spreads_and_marks_as_data() {
        let t = downstream().to_table();
        assert_eq!(t.columns[..4], ["Calibration", "en", "en sd", "en mark"].map(String::from));
        assert_eq!(t.columns.len(), 1 + 4 * 3);
        let csv = String::from_utf8(t.to_csv().unwrap()).unwrap();
        assert!(csv.lines().any(|l| l.starts_with("de,62,0.5,higher,56,1,,59,0.7,,-9,0.7,")), "{csv}");
        assert!(csv.lines().any(|l| l.starts_with("Dense,70,,,66,,,68,,,,,")), "{csv}");
    }
}
