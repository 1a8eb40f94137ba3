//! The analyses as report sections (chart data + tables, never drawings) and their exports.
//!
//! Every number a chart shows is also in one of the section's tables, and every table is
//! written as `<out>/<section id>/<table name>.csv` and `.json`, with the whole section as
//! `<out>/<section id>/section.json` for the report to pick up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::masks::{DepthOverlap, LayerOverlap, UniqueKept};
use super::neurons::{LapeResult, NeuronChange, Protection};
use super::probes::{ClusterRow, LanguageProbeRow, PcaRow, TopicProbeRow};
use super::pruning_error::LayerError;
use super::section::{BarSeries, Chart, Figure, LineSeries, ReportSection, ScatterPanel, ScatterPoint, Table, TableCell};
use super::significance::{CheckRow, ComparisonRow, Ranking, StudySignificance};
use super::subspace::SubspaceSummary;
use super::AnalysisError;
use crate::store::SectionDir;

fn num(x: f64) -> TableCell {
    TableCell::Number(x)
}
fn txt(s: impl Into<String>) -> TableCell {
    TableCell::Text(s.into())
}
fn opt(x: Option<f64>) -> TableCell {
    x.map(num).unwrap_or_else(|| txt(""))
}
fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Mask overlap: a heatmap per pair (block x projection), IoU by depth, and unique weights.
pub fn masks_section(rows: &[LayerOverlap], depth: &[DepthOverlap], unique: &[UniqueKept]) -> ReportSection {
    let mut figures = Vec::new();
    let pairs: BTreeSet<(String, String)> = rows.iter().map(|r| (r.first.clone(), r.second.clone())).collect();
    let blocks: Vec<usize> = rows.iter().filter_map(|r| r.block).collect::<BTreeSet<_>>().into_iter().collect();
    let projections: Vec<String> = rows.iter().map(|r| r.projection.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    for (a, b) in &pairs {
        let values = blocks
            .iter()
            .map(|&blk| {
                projections
                    .iter()
                    .map(|p| {
                        rows.iter()
                            .find(|r| &r.first == a && &r.second == b && r.block == Some(blk) && &r.projection == p)
                            .map_or(f64::NAN, |r| r.kept_iou)
                    })
                    .collect()
            })
            .collect();
        figures.push(Figure {
            chart: Chart::Heatmap {
                title: format!("Kept-weight overlap, {a} vs {b}"),
                row_label: "block".into(),
                column_label: "projection".into(),
                rows: blocks.iter().map(|b| b.to_string()).collect(),
                columns: projections.clone(),
                values,
                value_label: "IoU of kept weights".into(),
                diverging: false,
            },
            caption: format!(
                "Each cell: of the weights that either the {a}- or the {b}-calibrated mask keeps in that layer, the share both keep (1 = identical masks). Independent random masks at the same sparsity would score about {:.2}.",
                rows.iter().find(|r| &r.first == a && &r.second == b).map_or(f64::NAN, |r| r.chance_kept_iou)
            ),
        });
    }
    let mut series: Vec<LineSeries> = pairs
        .iter()
        .map(|(a, b)| LineSeries {
            name: format!("{a} vs {b}"),
            points: depth.iter().filter(|d| &d.first == a && &d.second == b).map(|d| (d.block as f64, d.kept_iou)).collect(),
        })
        .collect();
    if let Some((a, b)) = pairs.iter().next() {
        series.push(LineSeries {
            name: "chance".into(),
            points: depth.iter().filter(|d| &d.first == a && &d.second == b).map(|d| (d.block as f64, d.chance_kept_iou)).collect(),
        });
    }
    figures.push(Figure {
        chart: Chart::Lines { title: "Mask overlap by depth".into(), x_label: "block".into(), y_label: "IoU of kept weights".into(), series, chance: None },
        caption: "One line per pair of masks: their overlap pooled over each block's projections. Lines well above 'chance' mean the calibration language changes little of what is kept; dips show the blocks where it matters most.".into(),
    });
    let layer_table = Table {
        name: "mask_overlap_layers".into(),
        caption: "Per layer: IoU of kept and of pruned weights, chance level, weights kept by one mask only.".into(),
        columns: columns(&[
            "first",
            "second",
            "layer",
            "block",
            "projection",
            "kept_iou",
            "pruned_iou",
            "chance_kept_iou",
            "kept_only_first",
            "kept_only_second",
            "total",
        ]),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    txt(&r.first),
                    txt(&r.second),
                    txt(&r.layer),
                    r.block.map_or(txt(""), |b| num(b as f64)),
                    txt(&r.projection),
                    num(r.kept_iou),
                    num(r.pruned_iou),
                    num(r.chance_kept_iou),
                    num(r.kept_only_first as f64),
                    num(r.kept_only_second as f64),
                    num(r.total as f64),
                ]
            })
            .collect(),
    };
    let depth_table = Table {
        name: "mask_overlap_depth".into(),
        caption: "Per pair and block: kept-weight IoU pooled over projections.".into(),
        columns: columns(&["first", "second", "block", "kept_iou", "chance_kept_iou"]),
        rows: depth
            .iter()
            .map(|d| vec![txt(&d.first), txt(&d.second), num(d.block as f64), num(d.kept_iou), num(d.chance_kept_iou)])
            .collect(),
    };
    let mut by_label: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for u in unique {
        let e = by_label.entry(&u.label).or_default();
        e.0 += u.kept_only_here;
        e.1 += u.kept;
    }
    let unique_table = Table {
        name: "mask_unique_kept".into(),
        caption: "Weights kept by one mask and pruned by all others, over all layers.".into(),
        columns: columns(&["mask", "kept_only_here", "kept", "share_of_kept"]),
        rows: by_label
            .iter()
            .map(|(l, (only, kept))| vec![txt(*l), num(*only as f64), num(*kept as f64), num(*only as f64 / (*kept).max(1) as f64)])
            .collect(),
    };
    ReportSection {
        id: "masks".into(),
        title: "Mask overlap across calibration languages".into(),
        caption: "Do masks calibrated in different languages keep the same weights? Overlap is the Jaccard index (intersection over union) of the KEPT weights, counted exactly bit by bit; the pruned-set overlap is in the tables.".into(),
        figures,
        tables: vec![depth_table, unique_table, layer_table],
    }
}

/// Subspaces: PCA panels (dense next to each pruned model) and the summary table.
pub fn subspace_section(summaries: &[SubspaceSummary], languages: &[Vec<String>], angles: &[(String, Vec<f64>)]) -> ReportSection {
    let panels = summaries
        .iter()
        .zip(languages)
        .map(|(s, langs)| ScatterPanel {
            title: format!("{} (block {})", s.model, s.layer),
            points: s
                .pca
                .coordinates
                .iter()
                .zip(langs)
                .map(|(c, l)| ScatterPoint { x: c[0], y: c.get(1).copied().unwrap_or(0.0), group: l.clone() })
                .collect(),
        })
        .collect();
    let figure = Figure {
        chart: Chart::Scatter { title: "Sentences on their first two principal components".into(), panels, x_label: "PC 1".into(), y_label: "PC 2".into(), shared_axes: false },
        caption: "Each dot is one sentence, coloured by language; translations of the same sentences in every language. Separate clusters per language mean the representation is dominated by language identity; mixed colours mean it is organised by meaning. Each panel has its own axes.".into(),
    };
    let table = Table {
        name: "subspace_summary".into(),
        caption: "Per model: variance in the language subspace (spanned by the language means), translation retrieval accuracy before and after removing that subspace, chance, mean distance between language centroids, largest principal angle to the dense model's language subspace (degrees).".into(),
        columns: columns(&["model", "block", "language_variance_share", "retrieval", "retrieval_agnostic", "retrieval_chance", "mean_centroid_distance", "max_angle_to_dense_deg"]),
        rows: summaries
            .iter()
            .map(|s| {
                let angle = angles.iter().find(|(m, _)| m == &s.model).and_then(|(_, a)| a.iter().copied().reduce(f64::max)).map(f64::to_degrees);
                vec![txt(&s.model), num(s.layer as f64), num(s.language_variance_share), num(s.retrieval), num(s.retrieval_agnostic), num(s.retrieval_chance), num(s.mean_centroid_distance), opt(angle)]
            })
            .collect(),
    };
    ReportSection {
        id: "subspace".into(),
        title: "Language-specific and language-agnostic structure".into(),
        caption: "Mean-pooled hidden states of parallel sentences. A pruned model that keeps the dense model's geometry has small principal angles to it, similar variance shares, and retrieves translations as well.".into(),
        figures: vec![figure],
        tables: vec![table],
    }
}

/// LAPE: language-specific neurons of the dense model and their fate under each pruning.
pub fn neurons_section(dense: &LapeResult, languages: &[String], changes: &[NeuronChange], protection: &[Protection]) -> ReportSection {
    let mut series = vec![BarSeries {
        name: "dense".into(),
        values: languages.iter().map(|l| dense.of_language(l).len() as f64).collect(),
        lower: vec![f64::NAN; languages.len()],
        upper: vec![f64::NAN; languages.len()],
    }];
    let models: BTreeSet<&str> = changes.iter().map(|c| c.pruned.as_str()).collect();
    for m in &models {
        series.push(BarSeries {
            name: format!("survive in {m}"),
            values: languages
                .iter()
                .map(|l| changes.iter().find(|c| c.pruned == *m && &c.language == l).map_or(f64::NAN, |c| c.survive as f64))
                .collect(),
            lower: vec![f64::NAN; languages.len()],
            upper: vec![f64::NAN; languages.len()],
        });
    }
    let figure = Figure {
        chart: Chart::Bars { title: "Language-specific neurons (LAPE)".into(), labels: languages.to_vec(), series, value_label: "neurons".into(), chance: None },
        caption: "For each language: how many MLP neurons the dense model uses mostly for it, and how many of those are still specific to it after each pruning. A pruning calibrated in language L that protects L keeps more of L's bar.".into(),
    };
    let change_table = Table {
        name: "lape_changes".into(),
        caption: "Per pruned model and language: specific neurons in the dense model, surviving, vanished, newly appeared.".into(),
        columns: columns(&["pruned", "language", "dense", "survive", "vanish", "appear", "survival_rate"]),
        rows: changes
            .iter()
            .map(|c| {
                vec![
                    txt(&c.pruned),
                    txt(&c.language),
                    num(c.dense as f64),
                    num(c.survive as f64),
                    num(c.vanish as f64),
                    num(c.appear as f64),
                    num(c.survival_rate),
                ]
            })
            .collect(),
    };
    let protection_table = Table {
        name: "lape_protection".into(),
        caption: "Does calibrating in L protect L's neurons? Survival of the calibration language's own neurons next to the mean over the other languages.".into(),
        columns: columns(&["calibration", "own_survival", "others_survival"]),
        rows: protection.iter().map(|p| vec![txt(&p.calibration), num(p.own_survival), num(p.others_survival)]).collect(),
    };
    ReportSection {
        id: "neurons".into(),
        title: "Language-specific neurons".into(),
        caption: format!(
            "Language activation probability entropy (Tang et al. 2024): a neuron is specific to a language when its activation probability clears the {:.0}th percentile of all probabilities ({:.3}) and its entropy across languages is among the lowest {:.0}% of neurons.",
            dense.params.filter_percentile * 100.0, dense.threshold, dense.params.entropy_fraction * 100.0
        ),
        figures: vec![figure],
        tables: vec![change_table, protection_table],
    }
}

/// Pruning error: calibration x evaluation grid (mean over layers) and error by depth.
pub fn error_section(rows: &[LayerError]) -> ReportSection {
    let cals: Vec<String> = rows.iter().map(|r| r.calibration.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let evals: Vec<String> = rows.iter().map(|r| r.evaluation.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mean_snr = |c: &str, e: &str| {
        let v: Vec<f64> =
            rows.iter().filter(|r| r.calibration == c && r.evaluation == e && r.snr_db.is_finite()).map(|r| r.snr_db).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let grid = Figure {
        chart: Chart::Heatmap {
            title: "Layer output SNR by calibration and evaluation language".into(),
            row_label: "calibration".into(),
            column_label: "evaluation".into(),
            rows: cals.clone(),
            columns: evals.clone(),
            values: cals.iter().map(|c| evals.iter().map(|e| mean_snr(c, e)).collect()).collect(),
            value_label: "mean SNR over layers (dB)".into(),
            diverging: false,
        },
        caption: "Higher is better: how faithfully the pruned layers reproduce the dense layers' outputs on text of each evaluation language (10 log10 of signal over error, averaged over layers). A bright diagonal means calibrating in a language serves that language best.".into(),
    };
    let blocks: BTreeSet<usize> = rows.iter().filter_map(|r| r.block).collect();
    let series = cals
        .iter()
        .map(|c| LineSeries {
            name: c.clone(),
            points: blocks
                .iter()
                .map(|&b| {
                    let v: Vec<f64> = rows.iter().filter(|r| &r.calibration == c && r.block == Some(b)).map(|r| r.relative_error).collect();
                    (b as f64, v.iter().sum::<f64>() / v.len().max(1) as f64)
                })
                .collect(),
        })
        .collect();
    let depth = Figure {
        chart: Chart::Lines {
            title: "Relative output error by depth".into(),
            x_label: "block".into(),
            y_label: "||WX - W'X||² / ||WX||²".into(),
            series,
            chance: None,
        },
        caption: "Mean over the block's projections and the evaluation languages; one line per calibration.".into(),
    };
    let table = Table {
        name: "pruning_error".into(),
        caption: "Per layer, calibration and evaluation language: relative output error and SNR (dB), from the Gram matrix of the layer input on the evaluation text.".into(),
        columns: columns(&["calibration", "evaluation", "layer", "block", "projection", "relative_error", "snr_db", "tokens"]),
        rows: rows
            .iter()
            .map(|r| vec![txt(&r.calibration), txt(&r.evaluation), txt(&r.layer), r.block.map_or(txt(""), |b| num(b as f64)), txt(&r.projection), num(r.relative_error), num(r.snr_db), num(r.tokens as f64)])
            .collect(),
    };
    ReportSection {
        id: "pruning_error".into(),
        title: "Pruning error per layer and language".into(),
        caption: "How much each pruned layer's output deviates from the dense one on text of each language.".into(),
        figures: vec![grid, depth],
        tables: vec![table],
    }
}

fn comparison_cells(r: &ComparisonRow) -> Vec<TableCell> {
    vec![
        txt(&r.family),
        txt(&r.evaluation_set),
        txt(r.metric.as_str()),
        txt(&r.first),
        txt(&r.second),
        num(r.n as f64),
        num(r.mean_difference),
        num(r.ci_lower),
        num(r.ci_upper),
        num(r.permutation_p),
        num(r.min_p),
        opt(r.wilcoxon_p),
        opt(r.cohens_dz),
        num(r.adjusted_p),
        txt(if r.significant { "yes" } else { "no" }),
    ]
}

const COMPARISON_COLUMNS: [&str; 15] = [
    "family",
    "evaluation_set",
    "metric",
    "first",
    "second",
    "n",
    "mean_difference",
    "ci_lower",
    "ci_upper",
    "permutation_p",
    "min_p",
    "wilcoxon_p",
    "cohens_dz",
    "adjusted_p",
    "significant",
];

fn cd_figure(r: &Ranking) -> Figure {
    let ranks = r.diagram.ranked.iter().map(|t| (r.treatments[t.treatment].clone(), t.average_rank)).collect();
    let groups = r.diagram.cliques.iter().map(|g| g.iter().map(|&i| r.treatments[i].clone()).collect()).collect();
    Figure {
        chart: Chart::CriticalDifference { title: r.group.clone(), ranks, critical_difference: r.diagram.critical_difference, groups },
        caption: format!(
            "Average rank of each calibration over {} evaluation sets (1 = best). Treatments joined by a bar are not significantly different (Nemenyi, CD = {:.2}); Friedman p = {:.3}.",
            r.blocks.len(), r.diagram.critical_difference, r.friedman.p_value
        ),
    }
}

/// Significance: pairwise tables, Friedman/Nemenyi CD diagrams, seeds.
pub fn significance_section(s: &StudySignificance, correction: &str, alpha: f64) -> ReportSection {
    let comparisons = Table {
        name: "comparisons".into(),
        caption: format!(
            "Paired differences (first - second) on the same documents/examples: mean, 95% bootstrap interval, permutation and Wilcoxon p, Cohen's d_z; p corrected with {correction} within each family (one evaluation set of one model/method/sparsity/seed: all calibration pairs and each against dense), significant at {alpha}."
        ),
        columns: columns(&COMPARISON_COLUMNS),
        rows: s.comparisons.iter().map(comparison_cells).collect(),
    };
    let seeds = Table {
        name: "seeds".into(),
        caption: "Across seeds: mean, standard deviation and 95% t-interval of each evaluation set's mean.".into(),
        columns: columns(&["group", "evaluation_set", "seeds", "mean", "std_dev", "t_lower", "t_upper"]),
        rows: s
            .seeds
            .iter()
            .map(|x| {
                vec![
                    txt(&x.group),
                    txt(&x.evaluation_set),
                    num(x.seeds as f64),
                    num(x.mean),
                    num(x.std_dev),
                    num(x.t_lower),
                    num(x.t_upper),
                ]
            })
            .collect(),
    };
    let rankings = Table {
        name: "friedman".into(),
        caption: "Friedman test of calibration languages over evaluation sets, with the Nemenyi critical difference.".into(),
        columns: columns(&["group", "treatments", "blocks", "statistic", "p_value", "critical_difference"]),
        rows: s
            .rankings
            .iter()
            .map(|r| {
                vec![
                    txt(&r.group),
                    txt(r.treatments.join(" ")),
                    num(r.blocks.len() as f64),
                    num(r.friedman.statistic),
                    num(r.friedman.p_value),
                    num(r.nemenyi.critical_difference),
                ]
            })
            .collect(),
    };
    let significant = s.comparisons.iter().filter(|r| r.significant).count();
    let unreachable = s.comparisons.iter().filter(|r| !r.reachable).count();
    let mut caption =
        format!("{significant} of {} paired comparisons are significant after {correction} correction at {alpha}.", s.comparisons.len());
    if unreachable > 0 {
        caption.push_str(&format!(
            " {unreachable} cannot be significant whatever their data: too few of their units differ (min_p above {alpha})."
        ));
    }
    if !s.notes.is_empty() {
        caption.push_str(&format!(" {} notes on left-out or partly paired comparisons are in the notes table.", s.notes.len()));
    }
    let notes = Table {
        name: "notes".into(),
        caption: "Comparisons left out (too few units in common), tested on part of their units, or unable to reach significance.".into(),
        columns: columns(&["note"]),
        rows: s.notes.iter().map(|n| vec![txt(n)]).collect(),
    };
    let mut tables = vec![comparisons, rankings, seeds];
    if !s.notes.is_empty() {
        tables.push(notes);
    }
    ReportSection {
        id: "significance".into(),
        title: "Which differences are real".into(),
        caption,
        figures: s.rankings.iter().map(cd_figure).collect(),
        tables,
    }
}

/// The regression check as a section (for a CI artefact).
pub fn check_section(rows: &[CheckRow], correction: &str, alpha: f64) -> ReportSection {
    let mut cols = vec!["file".to_string(), "verdict".to_string()];
    cols.extend(columns(&COMPARISON_COLUMNS));
    ReportSection {
        id: "check".into(),
        title: "Regression check".into(),
        caption: format!("Candidate - baseline on each evaluation set; one family, {correction} at {alpha}."),
        figures: vec![],
        tables: vec![Table {
            name: "check".into(),
            caption: "Worse: significantly worse beyond the tolerance; better: significantly better.".into(),
            columns: cols,
            rows: rows
                .iter()
                .map(|r| {
                    let mut cells = vec![txt(&r.file), txt(format!("{:?}", r.verdict).to_lowercase())];
                    cells.extend(comparison_cells(&r.comparison));
                    cells
                })
                .collect(),
        }],
    }
}

/// Writes `<out>/<id>/section.json` and each table as CSV and JSON (`Table::to_csv`, `to_json`),
/// where the store puts them.
pub fn export_section(out: &Path, section: &ReportSection) -> Result<(), AnalysisError> {
    export_section_to(&SectionDir::new(out, &section.id), section)
}

/// As [`export_section`], into the folder `dir` itself (`analyze probe --out DIR`).
pub fn export_section_to(files: &SectionDir, section: &ReportSection) -> Result<(), AnalysisError> {
    files.write_section(section)?;
    for t in &section.tables {
        let csv = t.to_csv().map_err(|e| AnalysisError::io(files.path(), e))?;
        files.write_table(&t.name, &csv, &t.to_json())?;
    }
    Ok(())
}

/// Per model, the points `(block, value)` of the rows, in model order of first appearance.
fn series_by_model<R>(rows: &[R], model: impl Fn(&R) -> &str, point: impl Fn(&R) -> Option<(f64, f64)>) -> Vec<LineSeries> {
    let mut out: Vec<LineSeries> = Vec::new();
    for r in rows {
        let Some(p) = point(r) else { continue };
        match out.iter_mut().find(|s| s.name == model(r)) {
            Some(s) => s.points.push(p),
            None => out.push(LineSeries { name: model(r).to_string(), points: vec![p] }),
        }
    }
    out
}

/// The block whose PCA picture the report shows: the middle one of those probed.
pub fn pictured_block(blocks: &BTreeSet<usize>) -> Option<usize> {
    blocks.iter().nth(blocks.len().saturating_sub(1) / 2).copied()
}

/// What guessing scores on the probes' test rows.
#[derive(Clone, Copy, Debug)]
pub struct ProbeChance {
    /// 1 / languages (every language has every test sentence).
    pub language: f64,
    /// Share of the most frequent topic among the test sentences (SIB-200's topics are not
    /// balanced: always answering "science/technology" beats 1 / 7).
    pub topic: f64,
}

/// Probes: language-identity and topic-transfer accuracy by block, cluster agreement by
/// block, and the PCA picture of one block (dense axes shared by every model).
pub fn probes_section(
    language: &[LanguageProbeRow],
    topic: &[TopicProbeRow],
    clusters: &[ClusterRow],
    pca: &[PcaRow],
    explained: &BTreeMap<usize, Vec<f64>>,
    chance: ProbeChance,
) -> ReportSection {
    let mut figures = vec![Figure {
        chart: Chart::Lines {
            title: "Language identity from the sentence state".into(),
            x_label: "block".into(),
            y_label: "probe accuracy (held-apart sentences)".into(),
            series: series_by_model(language, |r| &r.model, |r| Some((r.block as f64, r.accuracy))),
            chance: Some(chance.language),
        },
        caption: "A multinomial logistic probe (linfa-logistic) reads the language from a block's mean-pooled state; tested on sentences none of whose translations were seen in training. Near 1 everywhere: language identity is linearly present; the dashed line is chance (1 / languages). A pruned model close to the dense line keeps the language-specific features.".into(),
    }];
    // Transfer: mean over ordered pairs of different languages; in-language: the diagonal.
    let mean_of = |same: bool| {
        let mut by: BTreeMap<(String, usize), (f64, usize)> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for r in topic.iter().filter(|r| (r.train_language == r.test_language) == same) {
            if !order.contains(&r.model) {
                order.push(r.model.clone());
            }
            let e = by.entry((r.model.clone(), r.block)).or_default();
            e.0 += r.accuracy;
            e.1 += 1;
        }
        order
            .into_iter()
            .map(|m| LineSeries {
                name: m.clone(),
                points: by.iter().filter(|((mm, _), _)| *mm == m).map(|((_, b), (s, n))| (*b as f64, s / *n as f64)).collect(),
            })
            .collect::<Vec<_>>()
    };
    figures.push(Figure {
        chart: Chart::Lines {
            title: "Topic probe transferred across languages".into(),
            x_label: "block".into(),
            y_label: "topic accuracy, other languages".into(),
            series: mean_of(false),
            chance: Some(chance.topic),
        },
        caption: "A 7-topic probe (SIB-200 categories) trained on one language's states and tested on the other languages' translations of held-apart sentences; mean over ordered language pairs. It measures language-agnostic content: a pruned model below the dense line lost meaning that is shared across languages. Dashed: chance, the share of the most frequent topic among the test sentences.".into(),
    });
    figures.push(Figure {
        chart: Chart::Lines {
            title: "Topic probe within its language".into(),
            x_label: "block".into(),
            y_label: "topic accuracy, same language".into(),
            series: mean_of(true),
            chance: Some(chance.topic),
        },
        caption:
            "The same probes tested on their own language's held-apart sentences, the reference for the transfer chart. Dashed: chance."
                .into(),
    });
    for (labels, k_of, what) in [("language", "language", "languages"), ("topic", "topic", "topics")] {
        figures.push(Figure {
            chart: Chart::Lines {
                title: format!("k-means clusters against {what}"),
                x_label: "block".into(),
                y_label: "adjusted Rand index".into(),
                series: series_by_model(clusters, |r| &r.model, |r| (r.labels == labels && r.clusters == k_of).then_some((r.block as f64, r.ari))),
                chance: Some(0.0),
            },
            caption: format!("k-means (linfa-clustering) on standardised states with k = number of {what}, scored against the {labels} labels: 1 = the clusters are the {what}, 0 (dashed) = no more agreement than random labels."),
        });
    }
    let blocks: BTreeSet<usize> = pca.iter().map(|r| r.block).collect();
    if let Some(block) = pictured_block(&blocks) {
        let mut panels: Vec<ScatterPanel> = Vec::new();
        for r in pca.iter().filter(|r| r.block == block) {
            let point = ScatterPoint { x: r.pc1, y: r.pc2, group: r.language.clone() };
            match panels.iter_mut().find(|p| p.title == r.model) {
                Some(p) => p.points.push(point),
                None => panels.push(ScatterPanel { title: r.model.clone(), points: vec![point] }),
            }
        }
        let share = explained.get(&block).map_or(String::new(), |e| {
            format!(
                " The two axes carry {:.1}% and {:.1}% of the dense model's standardised variance.",
                100.0 * e[0],
                100.0 * e.get(1).copied().unwrap_or(f64::NAN)
            )
        });
        figures.push(Figure {
            chart: Chart::Scatter {
                title: format!("Sentence states at block {block}, dense PCA axes"),
                panels,
                x_label: "PC 1".into(),
                y_label: "PC 2".into(),
                shared_axes: true,
            },
            caption: format!("Each dot is one sentence, coloured by language. Channels are standardised first (each centred and divided by its standard deviation on the dense model's states): Gemma's states have a few channels orders of magnitude larger than the rest, which would otherwise be the whole picture; at their raw scale linfa-reduction's LOBPCG cannot meet its absolute stopping test and fails. The axes are fitted on the dense model (linfa-reduction PCA) and every model is projected on them with the dense standardisation, so the panels share coordinates.{share}"),
        });
    }
    let tables = vec![
        Table {
            name: "language_probe".into(),
            caption: "Language-identity probe accuracy per model and block, Wilson 95% interval, test sentences.".into(),
            columns: columns(&["model", "block", "accuracy", "ci_low", "ci_high", "n_test"]),
            rows: language.iter().map(|r| vec![txt(&r.model), num(r.block as f64), num(r.accuracy), num(r.ci_low), num(r.ci_high), num(r.n_test as f64)]).collect(),
        },
        Table {
            name: "topic_probe".into(),
            caption: "Topic probe accuracy per model, block, training and test language.".into(),
            columns: columns(&["model", "block", "train_language", "test_language", "accuracy", "n_test"]),
            rows: topic
                .iter()
                .map(|r| vec![txt(&r.model), num(r.block as f64), txt(&r.train_language), txt(&r.test_language), num(r.accuracy), num(r.n_test as f64)])
                .collect(),
        },
        Table {
            name: "clusters".into(),
            caption: "Adjusted Rand index of k-means clusters (k = languages or topics) against language and topic labels.".into(),
            columns: columns(&["model", "block", "clusters", "k", "labels", "ari"]),
            rows: clusters.iter().map(|r| vec![txt(&r.model), num(r.block as f64), txt(&r.clusters), num(r.k as f64), txt(&r.labels), num(r.ari)]).collect(),
        },
        Table {
            name: "pca".into(),
            caption: "Coordinates of every sentence on the dense model's first two principal components (standardised channels), per model and block.".into(),
            columns: columns(&["model", "block", "language", "id", "topic", "pc1", "pc2"]),
            rows: pca
                .iter()
                .map(|r| vec![txt(&r.model), num(r.block as f64), txt(&r.language), txt(&r.id), txt(&r.topic), num(r.pc1), num(r.pc2)])
                .collect(),
        },
    ];
    ReportSection {
        id: "probes".into(),
        title: "Probes: language identity, cross-lingual topics, clusters".into(),
        caption: "What pruning keeps of language and of meaning. Language-specific features: how well a linear probe tells the language from a sentence state, and whether states cluster by language. Language-agnostic features: whether a topic probe trained on one language works on the others' translations, and whether states cluster by topic. Dense and pruned models on the same parallel SIB-200 test sentences; the train/test split is by FLORES sentence id.".into(),
        figures,
        tables,
    }
}
