//! LaTeX tables (booktabs) of the report's main grids, best value per column in bold.

use crate::analysis::section::{Table, TableCell};

/// Which end of a column is best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// Escapes LaTeX's special characters in running text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '<' => out.push_str(r"\textless{}"),
            '>' => out.push_str(r"\textgreater{}"),
            'Δ' => out.push_str(r"$\Delta$"),
            '±' => out.push_str(r"$\pm$"),
            '–' => out.push_str("--"),
            _ => out.push(c),
        }
    }
    out
}

fn number(x: f64) -> String {
    if !x.is_finite() {
        "--".into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// Row index of the best finite number in each column (`None` for text columns).
fn best_per_column(table: &Table, better: Better) -> Vec<Option<usize>> {
    (0..table.columns.len())
        .map(|c| {
            let mut best: Option<(usize, f64)> = None;
            for (r, row) in table.rows.iter().enumerate() {
                if let Some(TableCell::Number(x)) = row.get(c) {
                    if !x.is_finite() {
                        continue;
                    }
                    let wins = match best {
                        None => true,
                        Some((_, b)) => match better {
                            Better::Lower => *x < b,
                            Better::Higher => *x > b,
                        },
                    };
                    if wins {
                        best = Some((r, *x));
                    }
                }
            }
            best.map(|(r, _)| r)
        })
        .collect()
}

/// A `table` environment with a booktabs `tabular`; numbers right-aligned, the best per column bold.
pub fn booktabs(table: &Table, better: Better, label: &str) -> String {
    let numeric: Vec<bool> =
        (0..table.columns.len()).map(|c| table.rows.iter().any(|r| matches!(r.get(c), Some(TableCell::Number(_))))).collect();
    let spec: String = numeric.iter().map(|&n| if n { 'r' } else { 'l' }).collect();
    let best = best_per_column(table, better);
    let mut out = String::new();
    out.push_str("\\begin{table}[t]\n\\centering\n\\small\n");
    out.push_str(&format!("\\caption{{{}}}\n\\label{{tab:{}}}\n", escape(&table.caption), escape(label).replace('\\', "")));
    out.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
    out.push_str(&table.columns.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" & "));
    out.push_str(" \\\\\n\\midrule\n");
    for (r, row) in table.rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| match cell {
                TableCell::Text(s) => escape(s),
                TableCell::Number(x) if best.get(c) == Some(&Some(r)) => format!("\\textbf{{{}}}", number(*x)),
                TableCell::Number(x) => number(*x),
            })
            .collect();
        out.push_str(&cells.join(" & "));
        out.push_str(" \\\\\n");
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

/// A standalone document that `\input`s the given table files (for checking they compile).
pub fn document(inputs: &[String]) -> String {
    let mut out = String::from(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n\\begin{document}\n",
    );
    for i in inputs {
        out.push_str(&format!("\\input{{{i}}}\n"));
    }
    out.push_str("\\end{document}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            name: "bpb_change".into(),
            caption: "Δ bits per byte, wanda_u50 (lower is better)".into(),
            columns: vec!["calibration".into(), "eng_Latn".into(), "deu_Latn".into()],
            rows: vec![
                vec![TableCell::Text("eng_Latn".into()), TableCell::Number(0.10), TableCell::Number(0.30)],
                vec![TableCell::Text("deu_Latn".into()), TableCell::Number(0.20), TableCell::Number(0.15)],
                vec![TableCell::Text("a&b%".into()), TableCell::Number(f64::NAN), TableCell::Number(0.25)],
            ],
        }
    }

    #[test]
    fn the_best_value_per_column_is_bold_and_specials_are_escaped() {
        let tex = booktabs(&table(), Better::Lower, "bpb_change");
        assert!(tex.contains("\\begin{tabular}{lrr}\n\\toprule\ncalibration & eng\\_Latn & deu\\_Latn \\\\\n\\midrule\n"), "{tex}");
        assert!(tex.contains("eng\\_Latn & \\textbf{0.100} & 0.300 \\\\"), "{tex}");
        assert!(tex.contains("deu\\_Latn & 0.200 & \\textbf{0.150} \\\\"), "{tex}");
        assert!(tex.contains("a\\&b\\% & -- & 0.250 \\\\"), "{tex}");
        assert!(tex.contains("\\caption{$\\Delta$ bits per byte, wanda\\_u50 (lower is better)}"), "{tex}");
        assert!(tex.contains("\\label{tab:bpb_change}"), "labels keep underscores: {tex}");
        assert!(tex.trim_end().ends_with("\\bottomrule\n\\end{tabular}\n\\end{table}"));
        let higher = booktabs(&table(), Better::Higher, "x");
        assert!(higher.contains("deu\\_Latn & \\textbf{0.200} & 0.150"), "{higher}");
        assert_eq!(higher.matches("\\textbf").count(), 2);
    }
}
