//! The `advise` page: one self-contained HTML file (tera, `templates/advice.html.tera`) with
//! the recommendation, the test table with paired intervals, the trade-off pictures (inline
//! SVG from `charts`) and the cost. Numbers come formatted from here; the page computes nothing.

use serde::Serialize;

use super::charts::draw;
use super::html::HtmlError;
use crate::analysis::section::{BarSeries, Chart, ScatterPanel, ScatterPoint};
use crate::workflow::advise::{Advice, ENGLISH};

const TEMPLATE: &str = include_str!("../../templates/advice.html.tera");

#[derive(Serialize)]
struct Row {
    name: String,
    cells: Vec<String>,
}

fn percent_over_dense(a: &Advice, bpb: &std::collections::BTreeMap<String, f64>, target: &str) -> f64 {
    100.0 * (bpb[target] / a.dense_test_bpb[target] - 1.0)
}

/// The page for `advice`.
pub fn render(a: &Advice) -> Result<String, HtmlError> {
    let weights = a
        .recommended
        .weights
        .iter()
        .filter(|(_, &w)| w > 0.0)
        .map(|(k, w)| format!("{k} {:.1} %", 100.0 * w))
        .collect::<Vec<_>>()
        .join(", ");
    let mut test_rows =
        vec![Row { name: "dense".into(), cells: a.targets.iter().map(|t| format!("{:.4}", a.dense_test_bpb[t])).collect() }];
    for (name, bpb) in &a.test_bpb {
        test_rows.push(Row { name: name.clone(), cells: a.targets.iter().map(|t| format!("{:.4}", bpb[t])).collect() });
    }
    if let Some(c) = &a.confirmation {
        test_rows.push(Row {
            name: format!("sequential ({})", c.mix),
            cells: a.targets.iter().map(|t| format!("{:.4}", c.test_bpb[t])).collect(),
        });
    }
    let comparison_rows: Vec<Row> = a
        .comparisons
        .iter()
        .map(|c| Row {
            name: format!("recommended − {}", c.second),
            cells: vec![
                c.target.clone(),
                c.documents.to_string(),
                format!("{:+.4}", c.mean_difference),
                format!("[{:+.4}, {:+.4}]", c.ci_lower, c.ci_upper),
                format!("{:.4}", c.adjusted_p),
                if c.first_better { "yes".into() } else { "no".into() },
            ],
        })
        .collect();
    let search_rows: Vec<Row> = a
        .search
        .iter()
        .map(|p| Row {
            name: p.calibration.clone(),
            cells: [format!("{:.5}", p.proxy_score), p.dev_score.map(|s| format!("{s:.5}")).unwrap_or_default()]
                .into_iter()
                .chain(a.targets.iter().map(|t| format!("{:.5}", p.proxy[t])))
                .collect(),
        })
        .collect();

    let mut series = Vec::new();
    for (name, bpb) in &a.test_bpb {
        series.push(BarSeries {
            name: name.clone(),
            values: a.targets.iter().map(|t| percent_over_dense(a, bpb, t)).collect(),
            lower: vec![f64::NAN; a.targets.len()],
            upper: vec![f64::NAN; a.targets.len()],
        });
    }
    let trade_off = Chart::Bars {
        title: "Test bits per byte over the dense model, per target".into(),
        labels: a.targets.clone(),
        series,
        value_label: "bits per byte increase (%)".into(),
        chance: None,
    };
    let mut differences = Vec::new();
    let mut seconds: Vec<&str> = a.comparisons.iter().map(|c| c.second.as_str()).collect();
    seconds.dedup();
    for second in seconds {
        let rows: Vec<_> = a.targets.iter().map(|t| a.comparisons.iter().find(|c| c.second == second && &c.target == t)).collect();
        differences.push(BarSeries {
            name: format!("recommended − {second}"),
            values: rows.iter().map(|c| c.map_or(f64::NAN, |c| c.mean_difference)).collect(),
            lower: rows.iter().map(|c| c.map_or(f64::NAN, |c| c.ci_lower)).collect(),
            upper: rows.iter().map(|c| c.map_or(f64::NAN, |c| c.ci_upper)).collect(),
        });
    }
    let paired = Chart::Bars {
        title: "Recommendation minus each baseline, per target (test, paired 95% intervals)".into(),
        labels: a.targets.clone(),
        series: differences,
        value_label: "bits per byte difference (below 0: recommendation better)".into(),
        chance: None,
    };
    let points: Vec<ScatterPoint> = a
        .search
        .iter()
        .filter_map(|p| {
            p.dev_score.map(|d| ScatterPoint {
                x: p.proxy_score,
                y: d,
                group: if p.calibration.starts_with("mix:") { "mixture".into() } else { "single language".into() },
            })
        })
        .collect();
    let agreement = Chart::Scatter {
        title: "Proxy against development bits per byte (validated calibrations)".into(),
        panels: vec![ScatterPanel { title: String::new(), points }],
        x_label: format!("proxy ({} relative layer error)", a.objective.name()),
        y_label: format!("development bits per byte / dense ({})", a.objective.name()),
        shared_axes: false,
    };
    let figures: Vec<String> = [trade_off, paired, agreement].iter().map(draw).collect::<Result<_, _>>()?;

    let rho = |r: Option<f64>| r.map(|v| format!("{v:.2}")).unwrap_or_else(|| "undefined".into());
    let agreement_text = format!(
        "Spearman's rho over {} validated calibrations: objective {}; {}",
        a.agreement.calibrations,
        rho(a.agreement.objective),
        a.agreement.per_target.iter().map(|(t, r)| format!("{t} {}", rho(*r))).collect::<Vec<_>>().join(", ")
    );
    let k = &a.cost;
    let cost = format!(
        "{} calibration passes ({} tokens), {} proxy evaluations, {} development, {} test and {} confirmation tokens scored; \
         statistics {:.0} s, search {:.0} s, validation {:.0} s, test {:.0} s, confirmation {:.0} s",
        k.calibration_passes,
        k.calibration_tokens,
        k.proxy_evaluations,
        k.dev_tokens,
        k.test_tokens,
        k.confirmation_tokens,
        k.statistics_s,
        k.search_s,
        k.validation_s,
        k.test_s,
        k.confirmation_s
    );
    let beats: Vec<String> = a
        .beats_english
        .iter()
        .map(|(t, &b)| format!("{t}: {}", if b { "significantly better than English-only" } else { "not shown better than English-only" }))
        .collect();

    let mut tera = tera::Tera::default();
    tera.add_raw_template("advice.html", TEMPLATE).map_err(|e| HtmlError::Template(e.to_string()))?;
    let mut context = tera::Context::new();
    context.insert("version", env!("CARGO_PKG_VERSION"));
    context.insert("model", &a.model);
    context.insert(
        "setup",
        &format!(
            "{} at {}, {} windows of {} tokens (seed {}), objective: {}; targets {}; candidates {}",
            a.method,
            a.sparsity,
            a.samples,
            a.seqlen,
            a.seed,
            a.objective.name(),
            a.targets.join(", "),
            a.candidates.join(", ")
        ),
    );
    context.insert("weights", &weights);
    context.insert("english", ENGLISH);
    context.insert("beats", &beats);
    context.insert("targets", &a.targets);
    context.insert("test_rows", &test_rows);
    context.insert("comparison_rows", &comparison_rows);
    context.insert("search_rows", &search_rows);
    context.insert("figures", &figures);
    context.insert("agreement", &agreement_text);
    context.insert("cost", &cost);
    context.insert("split_rule", &a.split_rule);
    context.insert("level", &format!("{:.0}", 100.0 * a.confidence_level));
    tera.render("advice.html", &context).map_err(|e| HtmlError::Template(format!("{e:?}")))
}
