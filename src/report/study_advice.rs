//! The `[advice]` section of a study's report: per model, the mixture `advise` searched
//! (`<study>/advice/<model>/advice.json`) beside the grid's best calibration for each target
//! language, in bits per byte against the dense model, and the recommended weights.
//!
//! The grid scores the first `[perplexity] limit` documents of each language; `advise` scores
//! the test half of them (a hash of the document id picks the half). So the grid's best cell
//! is shown twice: on the grid's documents (as the perplexity section has it), and recomputed
//! from its per-document rows on exactly the documents `advice.json` lists as its test half,
//! where the two figures compare like with like. That second figure is left empty where the
//! grid did not score every one of those documents.

use std::collections::{BTreeMap, BTreeSet};

use super::ReportError;
use crate::analysis::section::{ReportSection, Table, TableCell};
use crate::design::Cell;
use crate::prune::Pattern;
use crate::stats::mean;
use crate::store::{DocumentRow, StudyResults, UnitResults};
use crate::study::advice::AdviceRecord;
use crate::workflow::advise::{Advice, ENGLISH};

fn text(s: impl Into<String>) -> TableCell {
    TableCell::Text(s.into())
}

fn num(x: f64) -> TableCell {
    TableCell::Number(x)
}

/// Bits per byte of `language`'s documents among `rows` whose id is in `ids`; `None` unless
/// every id was scored.
fn bits_per_byte_on(rows: &[DocumentRow], language: &str, ids: &BTreeSet<&str>) -> Option<f64> {
    let chosen: Vec<&DocumentRow> = rows.iter().filter(|r| r.language == language && ids.contains(r.document.as_str())).collect();
    let found: BTreeSet<&str> = chosen.iter().map(|r| r.document.as_str()).collect();
    if found.len() != ids.len() || ids.is_empty() {
        return None;
    }
    let nll: f64 = chosen.iter().map(|r| r.nll).sum();
    let bytes: usize = chosen.iter().map(|r| r.bytes).sum();
    Some(nll / std::f64::consts::LN_2 / bytes as f64)
}

/// The section, or `None` when no model has a finished `[advice]` search.
pub fn section(results: &StudyResults) -> Result<Option<ReportSection>, ReportError> {
    let mut tables = Vec::new();
    for (dense_unit, dense) in &results.dense {
        let model = &dense_unit.model;
        let Some(record) = results.dir.read_advice_record::<AdviceRecord>(model)? else { continue };
        let Some(advice) = results.dir.read_advice::<Advice>(model)? else { continue };
        tables.extend(model_tables(results, model, dense, &record, &advice)?);
    }
    if tables.is_empty() {
        return Ok(None);
    }
    Ok(Some(ReportSection {
        id: "advice".into(),
        title: "Searched calibration mixture beside the grid".into(),
        caption: "The study's [advice] step searched the mixture of calibration languages that keeps the target languages' \
                  language modelling best (polyprune advise: one-shot statistics per language, a layer-error proxy, validation \
                  on the development half of each target's documents). Each row sets the grid's best calibration for that \
                  target beside the searched mixture, as the change in bits per byte against the dense model (lower is better)."
            .into(),
        figures: Vec::new(),
        tables,
    }))
}

fn model_tables(
    results: &StudyResults,
    model: &str,
    dense: &UnitResults,
    record: &AdviceRecord,
    advice: &Advice,
) -> Result<Vec<Table>, ReportError> {
    let pattern: Option<Pattern> = serde_json::from_value(record.settings["pattern"].clone()).ok();
    let sparsity = record.settings["sparsity"].as_f64();
    let matches = |c: &Cell| {
        c.model == model
            && c.method.name() == advice.method
            && Some(c.pattern) == pattern
            && (matches!(c.pattern, Pattern::NM(_)) || sparsity.is_some_and(|s| (c.sparsity - s).abs() < 1e-9))
    };
    let cells: Vec<&(Cell, UnitResults)> = results.cells.iter().filter(|(c, u)| matches(c) && u.is_done()).collect();
    let label = |c: &Cell| c.calibration.as_ref().map(|k| k.languages_label()).unwrap_or_default();
    let mut labels: Vec<String> = Vec::new();
    for (c, _) in &cells {
        if !labels.contains(&label(c)) {
            labels.push(label(c));
        }
    }
    let dense_docs = if dense.is_done() { results.dir.dense(model).perplexity().read_documents().ok() } else { None };
    let mut doc_cache: BTreeMap<String, Option<Vec<DocumentRow>>> = BTreeMap::new();
    let mut rows = Vec::new();
    for target in &advice.targets {
        // The grid's best calibration for this target, by the seed-mean change on its documents.
        let change_on_grid = |l: &String| -> f64 {
            let per_seed: Vec<f64> = cells
                .iter()
                .filter(|(c, _)| label(c) == *l)
                .filter_map(|(_, u)| Some(u.bits_per_byte(target)? - dense.bits_per_byte(target)?))
                .collect();
            mean(&per_seed)
        };
        let best = labels.iter().map(|l| (l, change_on_grid(l))).filter(|(_, d)| d.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1));
        let ids: BTreeSet<&str> = advice.test_documents.get(target).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
        let best_on_test = match (best, &dense_docs) {
            (Some((l, _)), Some(dense_docs)) => {
                let dense_bpb = bits_per_byte_on(dense_docs, target, &ids);
                let mut per_seed = Vec::new();
                let mut complete = dense_bpb.is_some();
                for (c, _) in cells.iter().filter(|(c, _)| label(c) == *l) {
                    let docs = doc_cache.entry(c.id.clone()).or_insert_with(|| results.dir.cell(&c.id).perplexity().read_documents().ok());
                    match (docs.as_deref().and_then(|d| bits_per_byte_on(d, target, &ids)), dense_bpb) {
                        (Some(cell), Some(d)) => per_seed.push(cell - d),
                        _ => complete = false,
                    }
                }
                if complete && !per_seed.is_empty() {
                    mean(&per_seed)
                } else {
                    f64::NAN
                }
            }
            _ => f64::NAN,
        };
        let searched = |calibration: &str| -> f64 {
            match (advice.test_bpb.get(calibration).and_then(|b| b.get(target)), advice.dense_test_bpb.get(target)) {
                (Some(p), Some(d)) => p - d,
                _ => f64::NAN,
            }
        };
        rows.push(vec![
            text(target),
            text(best.map(|(l, _)| l.clone()).unwrap_or_else(|| "(no finished cell)".into())),
            num(best.map_or(f64::NAN, |(_, d)| d)),
            num(best_on_test),
            num(searched("recommended")),
            num(searched(ENGLISH)),
            num(advice.test_documents.get(target).map_or(f64::NAN, |v| v.len() as f64)),
        ]);
    }
    let tag = format!("{} {} ({} objective)", advice.method, advice.sparsity, advice.objective.name());
    let comparison = Table {
        name: format!("advice_vs_grid_{model}"),
        caption: format!(
            "{tag} on {model}: Δ bits per byte against the dense model per target language. 'grid best' is the grid's \
             calibration set with the lowest change for that target (mean over seeds); 'on grid documents' uses the grid's \
             [perplexity] documents, 'on advice test documents' recomputes it from the grid's per-document scores on exactly \
             the test-half documents that advice.json lists (empty where the grid did not score them all). 'searched mixture' \
             and 'English-only' come from advice.json (one-shot calibration from per-language statistics) on those same \
             test-half documents. Lower is better."
        ),
        columns: [
            "target",
            "grid best calibration",
            "grid best: on grid documents",
            "grid best: on advice test documents",
            "searched mixture: on advice test documents",
            "English-only: on advice test documents",
            "advice test documents",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    let weights = Table {
        name: format!("advice_weights_{model}"),
        caption: format!(
            "{tag} on {model}: the recommended calibration mixture ({}), as weights summing to 1 and as windows of the \
             {} calibration windows.",
            advice.recommended.calibration, advice.samples
        ),
        columns: ["language", "weight", "windows"].map(String::from).to_vec(),
        rows: advice
            .recommended
            .weights
            .iter()
            .map(|(l, &w)| vec![text(l), num(w), num(advice.recommended.shares.get(l).copied().unwrap_or(0) as f64)])
            .collect(),
    };
    Ok(vec![comparison, weights])
}
