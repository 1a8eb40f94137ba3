//! Drawing [`Chart`] data as SVG with plotters (SVG backend only; text is written as SVG
//! `<text>` in a generic sans-serif family, so no font files are needed and none are embedded).
//!
//! Every variant of [`Chart`] is drawn here and nowhere else: analyses hand over numbers, the
//! report decides how they look.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::section::{BarSeries, Chart, LineSeries, ScatterPanel};

#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart '{title}': {message}")]
pub struct ChartError {
    pub title: String,
    pub message: String,
}

/// Ten distinguishable colours (colour-blind-safe order after Okabe and Ito, extended).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(90, 90, 90),
    RGBColor(150, 75, 160),
    RGBColor(120, 170, 60),
];

const FONT: &str = "sans-serif";
const MISSING: RGBColor = RGBColor(220, 220, 220);

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws `chart` as an SVG document (a string starting with `<svg`).
pub fn draw(chart: &Chart) -> Result<String, ChartError> {
    let title = chart_title(chart).to_string();
    let fail = |e: String| ChartError { title: title.clone(), message: e };
    let (w, h) = size(chart);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let result = match chart {
            Chart::Heatmap { title, row_label, column_label, rows, columns, values, value_label, diverging } => {
                heatmap(&root, title, row_label, column_label, rows, columns, values, value_label, *diverging)
            }
            Chart::Bars { title, labels, series, value_label, chance } => bars(&root, title, labels, series, value_label, *chance),
            Chart::Scatter { title, panels, x_label, y_label, shared_axes } => {
                scatter(&root, title, panels, x_label, y_label, *shared_axes)
            }
            Chart::Lines { title, x_label, y_label, series, chance } => lines(&root, title, x_label, y_label, series, *chance),
            Chart::CriticalDifference { title, ranks, critical_difference, groups } => {
                cd_diagram(&root, title, ranks, *critical_difference, groups)
            }
        };
        result.map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

fn chart_title(chart: &Chart) -> &str {
    match chart {
        Chart::Heatmap { title, .. }
        | Chart::Bars { title, .. }
        | Chart::Scatter { title, .. }
        | Chart::Lines { title, .. }
        | Chart::CriticalDifference { title, .. } => title,
    }
}

/// Pixels: wide enough for the labels the chart carries.
fn size(chart: &Chart) -> (u32, u32) {
    match chart {
        Chart::Heatmap { rows, columns, .. } => {
            ((220 + HEAT_CELL_W * columns.len()).clamp(420, 1300) as u32, (140 + HEAT_CELL_H * rows.len()).clamp(220, 1000) as u32)
        }
        Chart::Bars { labels, series, .. } => {
            let legend = if series.len() > 1 { legend_width(series.iter().map(|s| s.name.as_str())) } else { 0 };
            let w = (160 + legend as usize + labels.len() * (24 * series.len().max(1) + 20)).clamp(480, 1300) as u32;
            // Wide enough that the longest word of a label fits its slot (words do not break).
            let longest_word = labels.iter().flat_map(|l| l.split_whitespace()).map(|w| w.chars().count()).max().unwrap_or(1);
            let min_slot = longest_word as f64 * LABEL_CHAR_PX / 0.92 + 2.0;
            let w = w.max(BAR_AXIS_PX + legend + (labels.len() as f64 * min_slot).ceil() as u32);
            let lines = label_lines(labels, bar_slot(w, legend, labels.len())).iter().map(Vec::len).max().unwrap_or(1);
            (w, 360 + LABEL_LINE * lines as u32)
        }
        Chart::Scatter { panels, .. } => ((380 * panels.len().max(1) + 140).min(1500) as u32, 420),
        Chart::Lines { series, .. } => (600 + legend_width(series.iter().map(|s| s.name.as_str())), 380),
        Chart::CriticalDifference { ranks, .. } => (720, (150 + 18 * ranks.len()) as u32),
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Heatmap cell size in pixels: room for a 4-digit value in [`HEAT_FONT`] at print size.
const HEAT_CELL_W: usize = 84;
const HEAT_CELL_H: usize = 38;
const HEAT_FONT: u32 = 13;
/// Category labels under bars: font size, pixels per line and per character (sans-serif at
/// 11 px averages under 6.5 px a character).
const LABEL_FONT: u32 = 11;
const LABEL_LINE: u32 = 14;
const LABEL_CHAR_PX: f64 = 6.5;
/// Fixed parts of a bar chart's width: the value axis and the margins.
const BAR_AXIS_PX: u32 = 60 + 24;
/// Legend rows: pixels between entries and where the first one sits.
const LEGEND_ROW: i32 = 18;
const LEGEND_TOP: i32 = 48;

/// Width of a legend column beside the plot: never over the data.
fn legend_width<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    let longest = names.map(|n| n.chars().count()).max().unwrap_or(0).max("chance".len());
    ((longest as f64 * LABEL_CHAR_PX) as u32 + 44).clamp(90, 320)
}

/// Pixels each bar group gets along the x axis.
fn bar_slot(width: u32, legend: u32, groups: usize) -> f64 {
    width.saturating_sub(BAR_AXIS_PX + legend) as f64 / groups.max(1) as f64
}

/// Each label broken at spaces into lines that fit `slot` pixels (a word longer than the slot
/// keeps its own line), so neighbouring labels never overlap.
fn label_lines(labels: &[String], slot: f64) -> Vec<Vec<String>> {
    let fit = ((slot * 0.92) / LABEL_CHAR_PX).floor().max(1.0) as usize;
    labels
        .iter()
        .map(|label| {
            let mut lines: Vec<String> = Vec::new();
            for word in label.split_whitespace() {
                match lines.last_mut() {
                    Some(line) if line.chars().count() + 1 + word.chars().count() <= fit => {
                        line.push(' ');
                        line.push_str(word);
                    }
                    _ => lines.push(word.to_string()),
                }
            }
            if lines.is_empty() {
                lines.push(String::new());
            }
            lines
        })
        .collect()
}

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    Swatch(RGBColor),
    Line(RGBColor),
    Dot(RGBColor),
    Dashed,
}

/// A legend in its own column (`area` is beside the plot, never on it).
fn draw_legend(area: &Area, entries: &[(String, Mark)]) -> Result<(), String> {
    for (i, (name, mark)) in entries.iter().enumerate() {
        let y = LEGEND_TOP + LEGEND_ROW * i as i32;
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        match *mark {
            Mark::Swatch(c) => area.draw(&Rectangle::new([(6, y - 5), (18, y + 5)], c.filled())).map_err(e)?,
            Mark::Line(c) => {
                area.draw(&PathElement::new(vec![(4, y), (20, y)], c.stroke_width(2))).map_err(e)?;
                area.draw(&Circle::new((12, y), 3, c.filled())).map_err(e)?;
            }
            Mark::Dot(c) => area.draw(&Circle::new((12, y), 4, c.filled())).map_err(e)?,
            Mark::Dashed => {
                for x in [4, 10, 16] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 4, y)], CHANCE.stroke_width(2))).map_err(e)?;
                }
            }
        }
        area.draw(&Text::new(name.clone(), (26, y), text_style(LABEL_FONT).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(e)?;
    }
    Ok(())
}

/// Colour of the chance line.
const CHANCE: RGBColor = RGBColor(110, 110, 110);

fn text_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Linear blend of two colours.
fn blend(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Blue for negative, white at zero, red for positive (diverging); white to blue otherwise.
fn heat_colour(v: f64, lo: f64, hi: f64, diverging: bool) -> RGBColor {
    const BLUE: RGBColor = RGBColor(33, 102, 172);
    const RED: RGBColor = RGBColor(178, 24, 43);
    if !v.is_finite() {
        return MISSING;
    }
    if diverging {
        let m = lo.abs().max(hi.abs()).max(1e-12);
        if v < 0.0 {
            blend(WHITE, BLUE, -v / m)
        } else {
            blend(WHITE, RED, v / m)
        }
    } else {
        blend(RGBColor(247, 251, 255), BLUE, if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
    }
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn format_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[allow(clippy::too_many_arguments)]
fn heatmap(
    root: &Area,
    title: &str,
    row_label: &str,
    column_label: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<f64>],
    value_label: &str,
    diverging: bool,
) -> Result<(), String> {
    let (nr, nc) = (rows.len().max(1), columns.len().max(1));
    let at = |r: usize, c: usize| values.get(r).and_then(|row| row.get(c)).copied().unwrap_or(f64::NAN);
    let (lo, hi) = finite_range(values.iter().flatten().copied()).unwrap_or((0.0, 0.0));
    let longest = rows.iter().map(|r| r.chars().count()).max().unwrap_or(4);
    let scale = if diverging {
        format!("{value_label}: blue < 0 < red, |max| = {}", format_value(lo.abs().max(hi.abs())))
    } else {
        format!("{value_label}: {} (light) to {} (dark)", format_value(lo), format_value(hi))
    };
    let area = root.titled(title, text_style(16)).map_err(|e| e.to_string())?;
    let area = area.titled(&scale, text_style(11)).map_err(|e| e.to_string())?;
    // Cell (r, c) spans [c, c+1] x [nr-1-r, nr-r]: the first row on top.
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size((longest * 7 + 34).clamp(60, 280) as u32)
        .build_cartesian_2d(0f64..nc as f64, 0f64..nr as f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        .x_desc(column_label)
        .y_desc(row_label)
        .axis_desc_style(text_style(12))
        .draw()
        .map_err(|e| e.to_string())?;
    let cells = (0..nr).flat_map(|r| (0..nc).map(move |c| (r, c)));
    let top = |r: usize| (nr - 1 - r) as f64;
    chart
        .draw_series(cells.clone().map(|(r, c)| {
            let fill = heat_colour(at(r, c), lo, hi, diverging);
            Rectangle::new([(c as f64, top(r)), (c as f64 + 1.0, top(r) + 1.0)], fill.filled())
        }))
        .map_err(|e| e.to_string())?;
    let span = if diverging { lo.abs().max(hi.abs()).max(1e-12) } else { (hi - lo).max(1e-12) };
    chart
        .draw_series(cells.map(|(r, c)| {
            let v = at(r, c);
            let strength = if diverging { v.abs() / span } else { (v - lo) / span };
            let style = text_style(HEAT_FONT)
                .color(if v.is_finite() && strength > 0.55 { &WHITE } else { &BLACK })
                .pos(Pos::new(HPos::Center, VPos::Center));
            Text::new(format_value(v), (c as f64 + 0.5, top(r) + 0.5), style)
        }))
        .map_err(|e| e.to_string())?;
    // Category labels centred on their cells: backend pixels, so drawn on the unshifted root.
    for (c, label) in columns.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
        root.draw(&Text::new(label.clone(), (px, py + 6), text_style(11).pos(Pos::new(HPos::Center, VPos::Top))))
            .map_err(|e| e.to_string())?;
    }
    for (r, label) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(0.0, top(r) + 0.5));
        root.draw(&Text::new(label.clone(), (px - 6, py), text_style(11).pos(Pos::new(HPos::Right, VPos::Center))))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn bars(root: &Area, title: &str, labels: &[String], series: &[BarSeries], value_label: &str, chance: Option<f64>) -> Result<(), String> {
    let n = labels.len().max(1);
    let s = series.len().max(1);
    let all = series.iter().flat_map(|b| b.values.iter().chain(&b.lower).chain(&b.upper)).copied();
    let (lo, hi) = finite_range(all.chain([0.0]).chain(chance)).unwrap_or((0.0, 1.0));
    let pad = ((hi - lo) * 0.08).max(1e-9);
    let y_min = if lo >= 0.0 { 0.0 } else { lo - pad };
    let (w, _) = root.dim_in_pixel();
    let legend_w = if series.len() > 1 || chance.is_some() { legend_width(series.iter().map(|b| b.name.as_str())) } else { 0 };
    let wrapped = label_lines(labels, bar_slot(w, legend_w, n));
    let label_rows = wrapped.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let (plot, legend) = root.split_horizontally(w.saturating_sub(legend_w) as i32);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, text_style(16))
        .margin(12)
        .x_label_area_size(16 + LABEL_LINE * label_rows)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, y_min..hi + pad)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc(value_label)
        .label_style(text_style(12))
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / s as f64;
    let mut entries = Vec::new();
    for (j, b) in series.iter().enumerate() {
        let c = colour(j);
        entries.push((b.name.clone(), Mark::Swatch(c)));
        let x0 = |i: usize| i as f64 + 0.1 + j as f64 * width;
        chart
            .draw_series(
                b.values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(i, &v)| Rectangle::new([(x0(i), 0f64.max(y_min)), (x0(i) + width * 0.9, v)], c.filled())),
            )
            .map_err(|e| e.to_string())?;
        // Confidence intervals: a vertical whisker with caps.
        let whiskers = b.values.iter().enumerate().filter_map(|(i, _)| {
            let (l, u) = (*b.lower.get(i)?, *b.upper.get(i)?);
            (l.is_finite() && u.is_finite()).then(|| {
                let xm = x0(i) + width * 0.45;
                let cap = width * 0.2;
                PathElement::new(vec![(xm - cap, l), (xm + cap, l), (xm, l), (xm, u), (xm - cap, u), (xm + cap, u)], BLACK.stroke_width(1))
            })
        });
        chart.draw_series(whiskers).map_err(|e| e.to_string())?;
    }
    if let Some(c) = chance.filter(|c| c.is_finite()) {
        chart
            .draw_series(plotters::series::DashedLineSeries::new(vec![(0.0, c), (n as f64, c)], 6, 4, CHANCE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        entries.push(("chance".into(), Mark::Dashed));
    }
    if legend_w > 0 {
        draw_legend(&legend, &entries)?;
    }
    for (i, lines) in wrapped.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y_min));
        for (k, line) in lines.iter().enumerate() {
            let y = py + 8 + (LABEL_LINE * k as u32) as i32;
            plot.draw(&Text::new(line.clone(), (px, y), text_style(LABEL_FONT).pos(Pos::new(HPos::Center, VPos::Top))))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Group names in first-seen order across panels, so colours agree between panels.
fn groups_of(panels: &[ScatterPanel]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for p in panels.iter().flat_map(|p| &p.points) {
        if !groups.contains(&p.group) {
            groups.push(p.group.clone());
        }
    }
    groups
}

fn scatter(root: &Area, title: &str, panels: &[ScatterPanel], x_label: &str, y_label: &str, shared_axes: bool) -> Result<(), String> {
    let groups = groups_of(panels);
    let titled = root.titled(title, text_style(16)).map_err(|e| e.to_string())?;
    let (w, _) = titled.dim_in_pixel();
    let legend_w = legend_width(groups.iter().map(String::as_str));
    let (plots, legend) = titled.split_horizontally(w.saturating_sub(legend_w) as i32);
    let areas = plots.split_evenly((1, panels.len().max(1)));
    let every = || panels.iter().flat_map(|p| &p.points);
    let shared = (finite_range(every().map(|p| p.x)), finite_range(every().map(|p| p.y)));
    for (panel, area) in panels.iter().zip(&areas) {
        let (x_range, y_range) = if shared_axes {
            shared
        } else {
            (finite_range(panel.points.iter().map(|p| p.x)), finite_range(panel.points.iter().map(|p| p.y)))
        };
        let ((xl, xh), (yl, yh)) = (x_range.unwrap_or((0.0, 1.0)), y_range.unwrap_or((0.0, 1.0)));
        let (px, py) = (((xh - xl) * 0.05).max(1e-9), ((yh - yl) * 0.05).max(1e-9));
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, text_style(13))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(54)
            .build_cartesian_2d(xl - px..xh + px, yl - py..yh + py)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(5)
            .y_labels(6)
            .label_style(text_style(10))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(panel.points.iter().filter(|p| p.x.is_finite() && p.y.is_finite()).map(|p| {
                let g = groups.iter().position(|g| *g == p.group).unwrap_or(0);
                Circle::new((p.x, p.y), 3, colour(g).mix(0.8).filled())
            }))
            .map_err(|e| e.to_string())?;
    }
    let entries: Vec<(String, Mark)> = groups.iter().enumerate().map(|(g, name)| (name.clone(), Mark::Dot(colour(g)))).collect();
    draw_legend(&legend, &entries)
}

fn lines(root: &Area, title: &str, x_label: &str, y_label: &str, series: &[LineSeries], chance: Option<f64>) -> Result<(), String> {
    let (xl, xh) = finite_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0))).unwrap_or((0.0, 1.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(chance);
    let (yl, yh) = finite_range(ys).unwrap_or((0.0, 1.0));
    let py = ((yh - yl) * 0.08).max(1e-9);
    let (w, _) = root.dim_in_pixel();
    let legend_w = legend_width(series.iter().map(|s| s.name.as_str()));
    let (plot, legend) = root.split_horizontally(w.saturating_sub(legend_w) as i32);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, text_style(16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xl..xh.max(xl + 1e-9), yl - py..yh + py)
        .map_err(|e| e.to_string())?;
    // Blocks, layers and other counts on the x axis are tick-marked as whole numbers only.
    let whole_x = series.iter().flat_map(|s| &s.points).all(|p| p.0.fract() == 0.0);
    let x_ticks = |x: &f64| if whole_x { format!("{x:.0}") } else { format!("{x}") };
    let x_count = if whole_x { ((xh - xl) as usize + 1).clamp(2, 12) } else { 10 };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(x_count)
        .x_label_formatter(&x_ticks)
        .label_style(text_style(11))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for (j, s) in series.iter().enumerate() {
        let c = colour(j);
        entries.push((s.name.clone(), Mark::Line(c)));
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        chart.draw_series(plotters::series::LineSeries::new(pts.clone(), c.stroke_width(2))).map_err(|e| e.to_string())?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled()))).map_err(|e| e.to_string())?;
    }
    if let Some(c) = chance.filter(|c| c.is_finite()) {
        chart
            .draw_series(plotters::series::DashedLineSeries::new(vec![(xl, c), (xh.max(xl + 1e-9), c)], 6, 4, CHANCE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        entries.push(("chance".into(), Mark::Dashed));
    }
    draw_legend(&legend, &entries)
}

/// Demšar's diagram: an axis of average ranks (1 = best, on the left), each treatment's name
/// tied to its rank, bars joining treatments not told apart, and the critical difference.
fn cd_diagram(root: &Area, title: &str, ranks: &[(String, f64)], cd: f64, groups: &[Vec<String>]) -> Result<(), String> {
    let k = ranks.len().max(2) as f64;
    let rows = ranks.len() as f64;
    let height = 4.0 + rows.max(2.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, text_style(16))
        .margin(20)
        .build_cartesian_2d(0.5f64..k + 0.5, 0f64..height)
        .map_err(|e| e.to_string())?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let axis_y = height - 1.5;
    chart.draw_series([PathElement::new(vec![(1.0, axis_y), (k, axis_y)], BLACK.stroke_width(1))]).map_err(e)?;
    for r in 1..=ranks.len().max(2) {
        let x = r as f64;
        chart.draw_series([PathElement::new(vec![(x, axis_y), (x, axis_y + 0.25)], BLACK.stroke_width(1))]).map_err(e)?;
        chart
            .draw_series([Text::new(r.to_string(), (x, axis_y + 0.35), text_style(11).pos(Pos::new(HPos::Center, VPos::Bottom)))])
            .map_err(e)?;
    }
    // The critical difference as a bar from rank 1.
    chart.draw_series([PathElement::new(vec![(1.0, height - 0.3), (1.0 + cd, height - 0.3)], BLACK.stroke_width(2))]).map_err(e)?;
    chart
        .draw_series([Text::new(
            format!("CD = {cd:.3}"),
            (1.0 + cd / 2.0, height - 0.45),
            text_style(11).pos(Pos::new(HPos::Center, VPos::Top)),
        )])
        .map_err(e)?;
    // Treatments: the better half labelled on the left, the rest on the right.
    let half = ranks.len().div_ceil(2);
    for (i, (name, rank)) in ranks.iter().enumerate() {
        let (line_y, x_end, anchor) = if i < half {
            (axis_y - 1.0 - i as f64 * 0.8, 0.6, HPos::Left)
        } else {
            (axis_y - 1.0 - (ranks.len() - 1 - i) as f64 * 0.8, k + 0.4, HPos::Right)
        };
        chart.draw_series([PathElement::new(vec![(*rank, axis_y), (*rank, line_y), (x_end, line_y)], BLACK.stroke_width(1))]).map_err(e)?;
        chart.draw_series([Circle::new((*rank, axis_y), 3, BLACK.filled())]).map_err(e)?;
        chart
            .draw_series([Text::new(
                format!("{name} ({rank:.2})"),
                (x_end, line_y + 0.1),
                text_style(11).pos(Pos::new(anchor, VPos::Bottom)),
            )])
            .map_err(e)?;
    }
    // Groups not told apart: thick bars just under the axis.
    for (g, members) in groups.iter().enumerate() {
        let rs: Vec<f64> = members.iter().filter_map(|m| ranks.iter().find(|(n, _)| n == m).map(|(_, r)| *r)).collect();
        if let Some((lo, hi)) = finite_range(rs.into_iter()) {
            let y = axis_y - 0.35 - g as f64 * 0.2;
            chart.draw_series([PathElement::new(vec![(lo - 0.03, y), (hi + 0.03, y)], BLACK.stroke_width(4))]).map_err(e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::section::ScatterPoint;

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn a_heatmap_has_one_rect_per_cell_and_its_labels() {
        let chart = Chart::Heatmap {
            title: "Δ bits per byte".into(),
            row_label: "calibration".into(),
            column_label: "evaluation".into(),
            rows: vec!["eng_Latn".into(), "deu_Latn".into(), "zho_Hans".into()],
            columns: vec!["eng_Latn".into(), "deu_Latn".into()],
            values: vec![vec![0.1, 0.2], vec![-0.05, f64::NAN], vec![0.0, 0.4]],
            value_label: "Δ bpb".into(),
            diverging: true,
        };
        let svg = draw(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // One background rect plus one per cell.
        assert_eq!(count(&svg, "<rect"), 1 + 6, "{svg}");
        for label in ["eng_Latn", "deu_Latn", "zho_Hans", "calibration", "evaluation", "Δ bits per byte", "0.200", "–"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }

    #[test]
    fn bars_draw_one_rect_per_finite_value_and_whiskers_for_intervals() {
        let chart = Chart::Bars {
            title: "accuracy".into(),
            labels: vec!["xcopa it".into(), "sib200 deu".into()],
            series: vec![
                BarSeries { name: "dense".into(), values: vec![0.6, 0.5], lower: vec![0.5, 0.4], upper: vec![0.7, 0.6] },
                BarSeries {
                    name: "wanda eng".into(),
                    values: vec![0.55, f64::NAN],
                    lower: vec![0.45, f64::NAN],
                    upper: vec![0.65, f64::NAN],
                },
            ],
            value_label: "acc".into(),
            chance: None,
        };
        let svg = draw(&chart).unwrap();
        // Background + 3 bars + 2 legend swatches (the legend has its own column, no box).
        assert_eq!(count(&svg, "<rect"), 1 + 3 + 2, "{svg}");
        // Three whiskers: polylines of six points (low cap, stem, high cap).
        let six_points = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| p.split("points=\"").nth(1).map_or(0, |pts| pts.split('"').next().unwrap().split_whitespace().count()) == 6)
            .count();
        assert_eq!(six_points, 3, "{svg}");
        for label in ["xcopa it", "sib200 deu", "dense", "wanda eng", "accuracy", "acc"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }

    #[test]
    fn scatter_panels_draw_every_point_and_a_shared_legend() {
        let pts = |dx: f64| {
            (0..5)
                .map(|i| ScatterPoint { x: i as f64 + dx, y: (i * i) as f64, group: if i % 2 == 0 { "eng".into() } else { "deu".into() } })
                .collect()
        };
        let chart = Chart::Scatter {
            title: "PCA".into(),
            panels: vec![
                ScatterPanel { title: "dense".into(), points: pts(0.0) },
                ScatterPanel { title: "pruned".into(), points: pts(0.5) },
            ],
            x_label: "PC1".into(),
            y_label: "PC2".into(),
            shared_axes: false,
        };
        let svg = draw(&chart).unwrap();
        assert_eq!(count(&svg, "<circle"), 10 + 2, "10 points and 2 legend marks");
        for label in ["dense", "pruned", "PC1", "PC2", "eng", "deu"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }

    #[test]
    fn lines_and_cd_diagrams_draw_their_marks() {
        let chart = Chart::Lines {
            title: "IoU by depth".into(),
            x_label: "block".into(),
            y_label: "IoU".into(),
            series: vec![
                LineSeries { name: "wanda".into(), points: vec![(0.0, 0.8), (1.0, 0.7), (2.0, 0.75)] },
                LineSeries { name: "sparsegpt".into(), points: vec![(0.0, 0.6), (1.0, 0.65)] },
            ],
            chance: None,
        };
        let svg = draw(&chart).unwrap();
        // 5 points and one mark per legend entry.
        assert_eq!(count(&svg, "<circle"), 5 + 2);
        assert!(svg.contains("wanda") && svg.contains("sparsegpt") && svg.contains("IoU by depth"));
        let cd = Chart::CriticalDifference {
            title: "ranks".into(),
            ranks: vec![("eng".into(), 1.4), ("deu".into(), 2.1), ("zho".into(), 2.5)],
            critical_difference: 0.9,
            groups: vec![vec!["eng".into(), "deu".into()], vec!["deu".into(), "zho".into()]],
        };
        let svg = draw(&cd).unwrap();
        assert_eq!(count(&svg, "<circle"), 3);
        for label in ["eng (1.40)", "deu (2.10)", "zho (2.50)", "CD = 0.900"] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
    }

    /// `(x, y, anchor, text)` of every `<text>` element.
    fn texts(svg: &str) -> Vec<(f64, f64, String, String)> {
        let attr = |tag: &str, name: &str| {
            tag.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next()).map(str::to_string).unwrap_or_default()
        };
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let (tag, rest) = t.split_once('>').unwrap();
                let body = rest.split("</text>").next().unwrap().trim().to_string();
                (attr(tag, "x").parse().unwrap_or(0.0), attr(tag, "y").parse().unwrap_or(0.0), attr(tag, "text-anchor"), body)
            })
            .collect()
    }

    /// Right edge of every coloured `<rect>` (the bars; not the white background).
    fn bar_right_edges(svg: &str) -> Vec<f64> {
        svg.split("<rect")
            .skip(1)
            .filter(|r| !r.contains("fill=\"#FFFFFF\""))
            .map(|r| {
                let get = |n: &str| r.split(&format!(" {n}=\"")).nth(1).unwrap().split('"').next().unwrap().parse::<f64>().unwrap();
                get("x") + get("width")
            })
            .collect()
    }

    #[test]
    fn legends_sit_beside_the_data_labels_never_overlap_and_chance_is_drawn() {
        // A study's sparsity/accuracy chart: many cells with long labels, two series.
        let labels: Vec<String> = (0..10).map(|i| format!("wanda unstructured 50% eng_Latn+deu_Latn seed {i}")).collect();
        let values = vec![0.5; labels.len()];
        let nan = vec![f64::NAN; labels.len()];
        let series = ["dense", "wanda eng_Latn"]
            .iter()
            .map(|n| BarSeries { name: n.to_string(), values: values.clone(), lower: nan.clone(), upper: nan.clone() })
            .collect();
        let chart =
            Chart::Bars { title: "accuracy".into(), labels: labels.clone(), series, value_label: "accuracy".into(), chance: Some(0.25) };
        let svg = draw(&chart).unwrap();
        let texts = texts(&svg);
        // The legend's names start right of every bar (legend swatches are the last two rects).
        let edges = bar_right_edges(&svg);
        let data_right = edges[..edges.len() - 2].iter().copied().fold(0.0, f64::max);
        for name in ["dense", "wanda eng_Latn", "chance"] {
            let (x, ..) = texts.iter().find(|t| t.3 == name).unwrap_or_else(|| panic!("legend entry {name} missing"));
            assert!(*x > data_right, "legend '{name}' at x={x} overlaps bars reaching {data_right}");
        }
        // Label lines on the same baseline never overlap (width at the font's average advance).
        let mut lines: Vec<(f64, f64, f64)> = texts
            .iter()
            .filter(|t| t.2 == "middle" && labels.iter().any(|l| l.contains(t.3.as_str())))
            .map(|t| {
                let half = t.3.chars().count() as f64 * LABEL_CHAR_PX / 2.0;
                (t.1, t.0 - half, t.0 + half)
            })
            .collect();
        assert!(lines.len() >= labels.len() * 2, "labels should wrap onto several lines: {lines:?}");
        lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for w in lines.windows(2) {
            if w[0].0 == w[1].0 {
                assert!(w[0].2 <= w[1].1, "labels overlap: {w:?}");
            }
        }
        // The chance level: a dashed line is drawn as separate short segments.
        assert!(count(&svg, "<polyline") >= 10, "no dashed chance line");
    }
}
