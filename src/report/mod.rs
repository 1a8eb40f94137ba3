//! The study report: HTML (tera templates, inline SVG charts), LaTeX tables, CSV/JSON exports.

pub mod section;

pub use section::{BarSeries, Chart, Figure, LineSeries, ReportSection, ScatterPanel, ScatterPoint, Table, TableCell};
