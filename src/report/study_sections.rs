//! The report's built-in sections, built as data from a study's stored results: setup,
//! perplexity change, downstream tasks, achieved sparsity, timings. Analyses add their own
//! sections the same way; `html.rs` draws them all alike. Means and intervals come from
//! `stats` (the seed mean, Wilson's interval for accuracies), not from here.

use crate::analysis::section::{BarSeries, Chart, Figure, ReportSection, Table, TableCell};
use crate::design::target_tag;
use crate::design::Cell;
use crate::stats::{mean, wilson_interval, ConfidenceLevel};
use crate::store::{PerplexitySettings, StudyResults, TaskSettings, TaskSummaryRow, UnitResults, UnitStatus};

fn text(s: impl Into<String>) -> TableCell {
    TableCell::Text(s.into())
}

fn num(x: f64) -> TableCell {
    TableCell::Number(x)
}

/// Every built-in section, in reading order.
pub fn sections(results: &StudyResults) -> Vec<ReportSection> {
    let mut out = vec![setup(results)];
    if !results.perplexity_languages().is_empty() {
        out.push(perplexity(results));
    }
    if !results.task_languages().is_empty() {
        out.push(downstream(results));
    }
    out.push(sparsity(results));
    out.push(timings(results));
    out
}

fn setup(results: &StudyResults) -> ReportSection {
    let r = &results.record;
    let mut methods: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut sets: Vec<String> = Vec::new();
    let mut seeds: Vec<String> = Vec::new();
    let mut modes: Vec<String> = Vec::new();
    let add = |list: &mut Vec<String>, s: String| {
        if !list.contains(&s) {
            list.push(s)
        }
    };
    for c in &r.cells {
        add(&mut methods, c.method.name().to_string());
        add(&mut targets, format!("{} ({})", c.pattern, target_tag(c.pattern, c.sparsity)));
        if let Some(k) = &c.calibration {
            add(
                &mut sets,
                format!(
                    "{} ({} x {} tokens, {})",
                    k.languages_label(),
                    k.samples,
                    k.seqlen,
                    k.source.as_deref().unwrap_or("default source")
                ),
            );
        }
        if let Some(s) = c.seed {
            add(&mut seeds, s.to_string());
        }
        add(&mut modes, format!("{:?}", c.mode).to_lowercase());
    }
    let done = results.cells.iter().filter(|(_, u)| u.is_done()).count();
    let rows = vec![
        vec![text("study"), text(&r.study)],
        vec![text("config hash"), text(&r.config_hash[..16.min(r.config_hash.len())])],
        vec![text("tool version"), text(format!("polyprune {}", r.tool_version))],
        vec![text("methods"), text(methods.join(", "))],
        vec![text("sparsity targets"), text(targets.join(", "))],
        vec![text("calibration sets"), text(sets.join("; "))],
        vec![text("seeds"), text(seeds.join(", "))],
        vec![text("statistics capture"), text(modes.join(", "))],
        vec![text("cells done"), text(format!("{done} of {}", r.cells.len()))],
        vec![text("perplexity"), text(describe_perplexity(r.evaluation.perplexity.as_ref()))],
        vec![text("tasks"), text(describe_tasks(r.evaluation.tasks.as_ref()))],
    ];
    let mut models = Vec::new();
    for (name, path) in &r.models {
        let dense = results.dense.iter().find(|(d, _)| &d.model == name).and_then(|(_, u)| u.record.as_ref());
        let machine = dense
            .map(|d| format!("{} ({} cores, {}, {})", d.machine.hostname, d.machine.cores, d.machine.os, d.machine.device))
            .unwrap_or_default();
        models.push(vec![
            text(name),
            text(path.display().to_string()),
            text(dense.map(|d| d.model_hash.clone()).unwrap_or_else(|| "not run".into())),
            text(machine),
        ]);
    }
    let mut tables = vec![
        Table { name: "setup".into(), caption: "What was run.".into(), columns: vec!["item".into(), "value".into()], rows },
        Table {
            name: "models".into(),
            caption: "Models and where their dense baseline ran (model hash = source file checksum).".into(),
            columns: vec!["model".into(), "path".into(), "model hash".into(), "machine".into()],
            rows: models,
        },
    ];
    let failed: Vec<Vec<TableCell>> = results
        .dense
        .iter()
        .map(|(d, u)| (d.id.clone(), u))
        .chain(results.cells.iter().map(|(c, u)| (c.id.clone(), u)))
        .filter_map(|(id, u)| match &u.record {
            Some(rec) => match &rec.status {
                UnitStatus::Failed { error } => Some(vec![text(id), text("failed"), text(error.clone())]),
                UnitStatus::Done => None,
            },
            None => Some(vec![text(id), text("not run"), text("")]),
        })
        .collect();
    if !failed.is_empty() {
        tables.push(Table {
            name: "incomplete".into(),
            caption: "Cells without results, and why.".into(),
            columns: vec!["cell".into(), "status".into(), "cause".into()],
            rows: failed,
        });
    }
    ReportSection {
        id: "setup".into(),
        title: "Setup".into(),
        caption: "The grid this report covers: models, pruning methods and targets, calibration sets and seeds, and where it ran.".into(),
        figures: Vec::new(),
        tables,
    }
}

fn describe_perplexity(p: Option<&PerplexitySettings>) -> String {
    let Some(p) = p else { return "none".into() };
    let langs: Vec<&str> = p.languages.iter().map(|l| l.flores_code()).collect();
    let limit = p.limit.map_or("all".to_string(), |n| n.to_string());
    format!(
        "{} ({} documents each, source {}, windows of {} tokens)",
        langs.join(", "),
        limit,
        p.source.as_deref().unwrap_or("default"),
        p.context
    )
}

fn describe_tasks(t: Option<&TaskSettings>) -> String {
    let Some(t) = t else { return "none".into() };
    let limit = t.limit.map_or("all".to_string(), |n| n.to_string());
    format!("{} in {} ({} examples each, {} shots, split {})", t.names.join(", "), t.languages.join(", "), limit, t.shots, t.split.as_str())
}

/// The cells of one heatmap, keyed by (model, method, target tag).
type HeatmapGroup<'a> = ((String, String, String), Vec<&'a (Cell, UnitResults)>);

/// Cells grouped for one heatmap: same model, method and target.
fn heatmap_groups(results: &StudyResults) -> Vec<HeatmapGroup<'_>> {
    let mut groups: Vec<HeatmapGroup<'_>> = Vec::new();
    for entry in results.cells.iter().filter(|(_, u)| u.is_done()) {
        let c = &entry.0;
        let key = (c.model.clone(), c.method.name().to_string(), target_tag(c.pattern, c.sparsity));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(entry),
            None => groups.push((key, vec![entry])),
        }
    }
    groups
}

fn calibration_label(c: &Cell) -> String {
    c.calibration.as_ref().map(|k| k.languages_label()).unwrap_or_else(|| "(no calibration)".into())
}

fn perplexity(results: &StudyResults) -> ReportSection {
    let languages = results.perplexity_languages();
    let mut figures = Vec::new();
    let mut tables = Vec::new();
    let mut dense_rows = Vec::new();
    for (d, u) in &results.dense {
        if u.is_done() {
            let mut row = vec![text(&d.model)];
            row.extend(languages.iter().map(|l| num(u.bits_per_byte(l).unwrap_or(f64::NAN))));
            dense_rows.push(row);
        }
    }
    let mut columns = vec!["model".to_string()];
    columns.extend(languages.iter().cloned());
    tables.push(Table {
        name: "dense_bpb".into(),
        caption: "Bits per byte of the dense models (lower is better).".into(),
        columns: columns.clone(),
        rows: dense_rows,
    });
    for ((model, method, tag), cells) in heatmap_groups(results) {
        let Some(dense) = results.dense_of(&model) else { continue };
        let mut rows: Vec<String> = Vec::new();
        for (c, _) in &cells {
            let l = calibration_label(c);
            if !rows.contains(&l) {
                rows.push(l);
            }
        }
        let values: Vec<Vec<f64>> = rows
            .iter()
            .map(|row| {
                languages
                    .iter()
                    .map(|lang| {
                        let per_seed: Vec<f64> = cells
                            .iter()
                            .filter(|(c, _)| calibration_label(c) == *row)
                            .filter_map(|(_, u)| Some(u.bits_per_byte(lang)? - dense.bits_per_byte(lang)?))
                            .collect();
                        mean(&per_seed)
                    })
                    .collect()
            })
            .collect();
        // Cells without calibration (Magnitude) have no seed: one run.
        let seeds = cells.iter().filter_map(|(c, _)| c.seed).collect::<std::collections::BTreeSet<_>>().len().max(1);
        let title = format!("{method} {tag} on {model}: Δ bits per byte vs dense");
        let name = format!("bpb_change_{model}_{method}_{tag}");
        let mut columns = vec!["calibration".to_string()];
        columns.extend(languages.iter().cloned());
        tables.push(Table {
            name,
            caption: format!("{title} (rows: calibration set; columns: evaluation language; mean over {seeds} seed(s); lower is better)."),
            columns,
            rows: rows.iter().zip(&values).map(|(r, vs)| std::iter::once(text(r)).chain(vs.iter().map(|&v| num(v))).collect()).collect(),
        });
        figures.push(Figure {
            chart: Chart::Heatmap {
                title,
                row_label: "calibration".into(),
                column_label: "evaluation language".into(),
                rows,
                columns: languages.clone(),
                values,
                value_label: "Δ bits/byte".into(),
                diverging: true,
            },
            caption: format!(
                "Each cell: bits per byte of the model pruned with {method} at {tag} after calibrating on the row's text, minus the dense model's, on the column's evaluation text (mean over {seeds} seed(s)). Red = worse than dense, darker = more. A row whose diagonal is lighter than the rest of its column suggests calibrating in a language protects it."
            ),
        });
    }
    ReportSection {
        id: "perplexity".into(),
        title: "Language modelling: change against the dense model".into(),
        caption: "How much each pruned model loses in bits per byte (tokenizer-independent) per evaluation language, by calibration set."
            .into(),
        figures,
        tables,
    }
}

/// The 95% Wilson interval of an accuracy (`value` is the proportion correct of `n` examples);
/// NaN when the row holds no proportion to bound.
fn interval(r: &TaskSummaryRow) -> (f64, f64) {
    match wilson_interval(r.value, r.n, ConfidenceLevel::NINETY_FIVE_PERCENT) {
        Ok(ci) => (ci.lower(), ci.upper()),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The chance level a chart draws for a task: the rows' common level, or none when they
/// disagree (languages with different numbers of choices) or score generation (chance 0).
fn common_chance(levels: impl Iterator<Item = f64>) -> Option<f64> {
    let mut common = None;
    for c in levels {
        match common {
            None => common = Some(c),
            Some(k) if (k - c).abs() > 1e-9 => return None,
            Some(_) => {}
        }
    }
    common.filter(|c| c.is_finite() && *c > 0.0)
}

/// The accuracy metric the report shows per task: acc where present.
const METRIC: &str = "acc";

fn downstream(results: &StudyResults) -> ReportSection {
    let pairs = results.task_languages();
    let mut rows = Vec::new();
    let mut units: Vec<(String, &UnitResults)> =
        results.dense.iter().filter(|(_, u)| u.is_done()).map(|(d, u)| (format!("dense {}", d.model), u)).collect();
    units.extend(results.cells.iter().filter(|(_, u)| u.is_done()).map(|(c, u)| (c.label(), u)));
    for (task, language) in &pairs {
        for (label, u) in &units {
            let Some(r) = u.task(task, language, METRIC).or_else(|| u.tasks.iter().find(|r| &r.task == task && &r.language == language))
            else {
                continue;
            };
            let (low, high) = interval(r);
            rows.push(vec![
                text(task),
                text(language),
                text(label),
                text(&r.metric),
                num(r.value),
                num(low),
                num(high),
                num(r.n as f64),
                num(r.chance),
            ]);
        }
    }
    let mut figures = Vec::new();
    let tasks: Vec<&String> = pairs.iter().map(|(t, _)| t).fold(Vec::new(), |mut v, t| {
        if !v.contains(&t) {
            v.push(t)
        }
        v
    });
    for task in tasks {
        let langs: Vec<String> = pairs.iter().filter(|(t, _)| t == task).map(|(_, l)| l.clone()).collect();
        let series = units
            .iter()
            .map(|(label, u)| {
                let rows: Vec<Option<_>> = langs.iter().map(|l| u.task(task, l, METRIC)).collect();
                BarSeries {
                    name: label.clone(),
                    values: rows.iter().map(|r| r.map_or(f64::NAN, |r| r.value)).collect(),
                    lower: rows.iter().map(|r| r.map_or(f64::NAN, |r| interval(r).0)).collect(),
                    upper: rows.iter().map(|r| r.map_or(f64::NAN, |r| interval(r).1)).collect(),
                }
            })
            .collect();
        let chance = common_chance(units.iter().flat_map(|(_, u)| langs.iter().filter_map(|l| u.task(task, l, METRIC))).map(|r| r.chance));
        figures.push(Figure {
            chart: Chart::Bars { title: format!("{task}: accuracy by language"), labels: langs, series, value_label: "accuracy".into(), chance },
            caption: "Bars: accuracy per evaluation language for the dense model and each pruned cell; whiskers: 95% Wilson confidence intervals over the examples (inside [0, 1] even for a handful of examples); dashed line: chance (one over the number of choices). Overlapping whiskers mean the difference is not established by this sample.".into(),
        });
    }
    ReportSection {
        id: "tasks".into(),
        title: "Downstream tasks".into(),
        caption: "Accuracy per task and language with 95% confidence intervals.".into(),
        figures,
        tables: vec![Table {
            name: "downstream".into(),
            caption: "Accuracy per task, language and model (ci_low/ci_high: 95% Wilson interval over the n examples).".into(),
            columns: ["task", "language", "model", "metric", "value", "ci_low", "ci_high", "n", "chance"].map(String::from).to_vec(),
            rows,
        }],
    }
}

fn sparsity(results: &StudyResults) -> ReportSection {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut achieved = Vec::new();
    for (c, u) in results.cells.iter().filter(|(_, u)| u.is_done()) {
        let Some((pruned, total)) = u.sparsity else { continue };
        let a = pruned as f64 / total.max(1) as f64;
        rows.push(vec![text(&c.id), text(c.label()), num(c.sparsity), num(a), num(pruned as f64), num(total as f64)]);
        labels.push(c.label());
        achieved.push(a);
    }
    let n = achieved.len();
    let figures = if n == 0 {
        Vec::new()
    } else {
        vec![Figure {
            chart: Chart::Bars {
                title: "Achieved sparsity".into(),
                labels,
                series: vec![BarSeries { name: "achieved".into(), values: achieved, lower: vec![f64::NAN; n], upper: vec![f64::NAN; n] }],
                value_label: "pruned / total weights".into(),
                chance: None,
            },
            caption:
                "Fraction of the pruned layers' weights set to zero, counted in the saved masks; it should equal the requested sparsity."
                    .into(),
        }]
    };
    ReportSection {
        id: "sparsity".into(),
        title: "Achieved sparsity".into(),
        caption: "Requested against achieved sparsity over the layers each cell pruned.".into(),
        figures,
        tables: vec![Table {
            name: "sparsity".into(),
            caption: "Sparsity per cell, counted in its masks.".into(),
            columns: ["cell", "label", "requested", "achieved", "pruned", "total"].map(String::from).to_vec(),
            rows,
        }],
    }
}

fn timings(results: &StudyResults) -> ReportSection {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let stages = ["calibration", "statistics", "solve", "perplexity", "tasks"];
    let mut series: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
    let units = results
        .dense
        .iter()
        .map(|(d, u)| (d.id.clone(), "dense".to_string(), u))
        .chain(results.cells.iter().map(|(c, u)| (c.id.clone(), c.label(), u)));
    for (id, label, u) in units {
        let Some(r) = u.record.as_ref().filter(|_| u.is_done()) else { continue };
        let t = &r.timings;
        let values = [t.calibration_draw_s + t.calibration_forward_s, t.statistics_s, t.prune_solve_s, t.perplexity_s, t.tasks_s];
        rows.push(
            std::iter::once(text(&id))
                .chain(std::iter::once(text(&label)))
                .chain(values.iter().map(|&v| num(v)))
                .chain([num(t.total_s), num(r.runs as f64)])
                .collect(),
        );
        for (s, v) in series.iter_mut().zip(values) {
            s.push(v);
        }
        labels.push(label);
    }
    let n = labels.len();
    let figures = if n == 0 {
        Vec::new()
    } else {
        vec![Figure {
            chart: Chart::Bars {
                title: "Seconds per stage".into(),
                labels,
                series: stages
                    .iter()
                    .zip(series)
                    .map(|(s, v)| BarSeries { name: s.to_string(), values: v, lower: vec![f64::NAN; n], upper: vec![f64::NAN; n] })
                    .collect(),
                value_label: "seconds".into(),
                chance: None,
            },
            caption: "Wall-clock seconds of each stage per cell (calibration = drawing the set plus the forward passes).".into(),
        }]
    };
    let mut columns = vec!["unit".to_string(), "label".to_string()];
    columns.extend(stages.iter().map(|s| format!("{s}_s")));
    columns.extend(["total_s".to_string(), "runs".to_string()]);
    ReportSection {
        id: "timings".into(),
        title: "Timings".into(),
        caption: "Where the time went, per unit of work (runs: how many times the unit was computed; 1 unless it failed and was retried)."
            .into(),
        figures,
        tables: vec![Table { name: "timings".into(), caption: "Seconds per stage.".into(), columns, rows }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracy(value: f64, n: usize) -> TaskSummaryRow {
        TaskSummaryRow {
            task: "xcopa".into(),
            language: "it".into(),
            split: "test".into(),
            shots: 0,
            metric: "acc".into(),
            value,
            // The scorer's standard error; the interval no longer uses it.
            stderr: Some(0.0),
            n,
            chance: 0.5,
            seconds: 0.0,
        }
    }

    /// 12 of 12 and 0 of 12: the shown interval stays in [0, 1], keeps a width (the old
    /// value ± 1.96 standard errors collapsed to a point there), and equals Wilson's closed
    /// form n/(n+z²) .. 1 and 0 .. z²/(n+z²).
    #[test]
    fn accuracy_intervals_are_wilson_and_stay_in_the_unit_interval() {
        let z2 = 1.959_963_984_540_054_f64.powi(2);
        let (low, high) = interval(&accuracy(1.0, 12));
        assert!((low - 12.0 / (12.0 + z2)).abs() < 1e-12 && high == 1.0, "{low} {high}");
        let (low, high) = interval(&accuracy(0.0, 12));
        assert!(low == 0.0 && (high - z2 / (12.0 + z2)).abs() < 1e-12, "{low} {high}");
        for k in 0..=12 {
            let (low, high) = interval(&accuracy(k as f64 / 12.0, 12));
            assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high) && low < high, "{k}/12: {low} {high}");
        }
        // No examples: nothing to bound, a gap rather than a made-up interval.
        assert!(interval(&accuracy(0.0, 0)).0.is_nan());
    }

    /// SIB-200's seven topics give 1/7 in every language; mixed choice counts or a generation
    /// task (chance 0) draw no line rather than a wrong one.
    #[test]
    fn a_chart_draws_the_chance_level_only_when_its_rows_agree() {
        assert_eq!(common_chance([1.0 / 7.0; 3].into_iter()), Some(1.0 / 7.0));
        assert_eq!(common_chance([0.5, 0.25].into_iter()), None);
        assert_eq!(common_chance([0.0, 0.0].into_iter()), None);
        assert_eq!(common_chance(std::iter::empty()), None);
    }
}
