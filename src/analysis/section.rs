//! What an analysis hands to the report: titled sections of tables and chart *data*.
//!
//! Analyses never draw. They describe a chart as data ([`Chart`]); the report module decides
//! how it looks (as criterion keeps measurement apart from its HTML). This keeps every figure's
//! numbers exportable as CSV/JSON next to the picture.

use serde::{Deserialize, Serialize};

/// One section of the study report, e.g. "Mask overlap".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportSection {
    /// HTML anchor and export file prefix, e.g. `masks`.
    pub id: String,
    pub title: String,
    /// Plain language: what is shown and how to read it.
    pub caption: String,
    pub figures: Vec<Figure>,
    pub tables: Vec<Table>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    pub chart: Chart,
    /// How to read this chart, in a sentence or two.
    pub caption: String,
}

/// A table; `name` is the stem of its CSV/JSON export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<TableCell>>,
}

impl Table {
    /// The table as CSV: a header of column names, numbers as Rust prints them, and an empty
    /// field where a number is not finite (so spreadsheets see a gap, not "NaN").
    pub fn to_csv(&self) -> std::io::Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns).map_err(std::io::Error::other)?;
        for r in &self.rows {
            w.write_record(r.iter().map(|c| match c {
                TableCell::Text(s) => s.clone(),
                TableCell::Number(x) if x.is_finite() => format!("{x}"),
                TableCell::Number(_) => String::new(),
            }))
            .map_err(std::io::Error::other)?;
        }
        w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The table as JSON: name, caption, columns, and rows as objects keyed by column (numbers
    /// stay numbers, a non-finite number becomes null).
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let cells = self.columns.iter().zip(r).map(|(c, cell)| {
                    let v = match cell {
                        TableCell::Text(s) => serde_json::Value::String(s.clone()),
                        TableCell::Number(x) => serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, serde_json::Value::Number),
                    };
                    (c.clone(), v)
                });
                serde_json::Value::Object(cells.collect())
            })
            .collect();
        serde_json::json!({ "name": self.name, "caption": self.caption, "columns": self.columns, "rows": rows })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged, from = "RawCell")]
pub enum TableCell {
    Number(f64),
    Text(String),
}

/// JSON has no NaN: serde_json writes a missing number as `null`. Sections are read back from
/// `section.json` (analyses computed during `study run`), so every number accepts `null` as NaN.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawCell {
    Number(f64),
    Text(String),
    Missing(()),
}

impl From<RawCell> for TableCell {
    fn from(raw: RawCell) -> Self {
        match raw {
            RawCell::Number(x) => TableCell::Number(x),
            RawCell::Text(s) => TableCell::Text(s),
            RawCell::Missing(()) => TableCell::Number(f64::NAN),
        }
    }
}

/// `null`-as-NaN readers for the chart fields (see [`RawCell`]).
mod nan {
    use serde::{Deserialize, Deserializer};

    fn or_nan(x: Option<f64>) -> f64 {
        x.unwrap_or(f64::NAN)
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(or_nan(Option::deserialize(d)?))
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(or_nan).collect())
    }

    pub fn grid<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Ok(Vec::<Vec<Option<f64>>>::deserialize(d)?.into_iter().map(|r| r.into_iter().map(or_nan).collect()).collect())
    }

    pub fn pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        Ok(Vec::<(Option<f64>, Option<f64>)>::deserialize(d)?.into_iter().map(|(x, y)| (or_nan(x), or_nan(y))).collect())
    }

    pub fn named<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        Ok(Vec::<(String, Option<f64>)>::deserialize(d)?.into_iter().map(|(n, x)| (n, or_nan(x))).collect())
    }
}

/// Chart data. `f64::NAN` marks a missing value wherever a number is expected.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    /// A grid of values, rows x columns (e.g. calibration language x evaluation language).
    Heatmap {
        title: String,
        row_label: String,
        column_label: String,
        rows: Vec<String>,
        columns: Vec<String>,
        /// `values[r][c]`.
        #[serde(deserialize_with = "nan::grid")]
        values: Vec<Vec<f64>>,
        value_label: String,
        /// Centre the colour scale on zero (differences) instead of spanning min..max.
        diverging: bool,
    },
    /// Grouped bars with confidence intervals, one group per label, one bar per series.
    Bars {
        title: String,
        labels: Vec<String>,
        series: Vec<BarSeries>,
        value_label: String,
        /// The value a guess scores (accuracy charts), drawn as a dashed line.
        #[serde(default)]
        chance: Option<f64>,
    },
    /// Points coloured by group (e.g. sentences by language), optionally several panels side
    /// by side (e.g. dense next to pruned), each with its own axes unless `shared_axes`.
    Scatter {
        title: String,
        panels: Vec<ScatterPanel>,
        x_label: String,
        y_label: String,
        #[serde(default)]
        shared_axes: bool,
    },
    /// Lines over a numeric x (e.g. a statistic by layer depth).
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<LineSeries>,
        /// The value a guess scores (accuracy charts), drawn as a dashed line.
        #[serde(default)]
        chance: Option<f64>,
    },
    /// Critical-difference diagram: average ranks (1 = best) and groups not told apart.
    CriticalDifference {
        title: String,
        /// `(treatment name, average rank)`, best first.
        #[serde(deserialize_with = "nan::named")]
        ranks: Vec<(String, f64)>,
        #[serde(deserialize_with = "nan::one")]
        critical_difference: f64,
        /// Groups of treatment names joined by a bar.
        groups: Vec<Vec<String>>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BarSeries {
    pub name: String,
    #[serde(deserialize_with = "nan::list")]
    pub values: Vec<f64>,
    /// Interval bounds per label; NaN where there is none.
    #[serde(deserialize_with = "nan::list")]
    pub lower: Vec<f64>,
    #[serde(deserialize_with = "nan::list")]
    pub upper: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScatterPanel {
    pub title: String,
    pub points: Vec<ScatterPoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScatterPoint {
    #[serde(deserialize_with = "nan::one")]
    pub x: f64,
    #[serde(deserialize_with = "nan::one")]
    pub y: f64,
    pub group: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LineSeries {
    pub name: String,
    #[serde(deserialize_with = "nan::pairs")]
    pub points: Vec<(f64, f64)>,
}
