//! A study's paper tables as [`Grid`]s, pivoted like the perplexity heatmaps: per model,
//! method and sparsity target, rows are the calibration sets (after the dense model where it
//! is a value of its own), columns the evaluation languages and their average.
//!
//! * Perplexity: the dense models' bits per byte, then per condition the change against dense.
//! * Downstream: per task and condition, accuracy in percent with a Δ-vs-dense column.
//!
//! Seeds are summarised by `stats` (mean, sample standard deviation). Significance marks come
//! from the paired comparisons the significance analysis computed (`ComparisonRow`): a cell is
//! marked when its difference from the reference calibration on the same evaluation set is
//! significant after the study's correction, in the same direction, in every seed.

use crate::analysis::records::task_set;
use crate::analysis::significance::{ComparisonRow, Correction, StudyCell, TestSettings};
use crate::design::{target_tag, Cell, ReportPlan};
use crate::prune::Pattern;
use crate::stats::{mean, Descriptives, Sample};
use crate::store::{Decisions, StudyResults, UnitResults};

use super::grid::{Better, Column, ColumnKind, Grid, GridCell, GridRow, Mark, RowRole};
use super::names::Names;

/// What the grids are built from.
pub struct GridInputs<'a> {
    pub results: &'a StudyResults,
    /// The significance analysis' paired comparisons (empty: no marks).
    pub comparisons: &'a [ComparisonRow],
    pub plan: &'a ReportPlan,
    /// The settings the comparisons were made with, for the tables' notes.
    pub tests: &'a TestSettings,
    /// A study whose tasks stopped when decided: its marks come from confidence sequences.
    pub decisions: Option<&'a Decisions>,
}

/// A grid and the report section (`perplexity`, `tasks`) it belongs to.
#[derive(Clone, Debug)]
pub struct SectionGrid {
    pub section: String,
    pub grid: Grid,
}

/// The calibration the marks compare against when the study file names none.
const DEFAULT_REFERENCE: &str = "eng_Latn";

/// The metric downstream grids show: the one the paired tests score (acc, else exact match).
const TESTED_METRICS: [&str; 2] = ["acc", "exact_match"];

type Entry = (Cell, UnitResults);

/// Cells of one method and target on one model, with its rows.
struct Condition<'a> {
    model: String,
    method: String,
    tag: String,
    /// Calibration label -> its cells (one per seed), in the study's order.
    rows: Vec<(String, Vec<&'a Entry>)>,
}

fn conditions(results: &StudyResults) -> Vec<Condition<'_>> {
    let mut out: Vec<Condition> = Vec::new();
    for entry in results.cells.iter().filter(|(_, u)| u.is_done()) {
        let c = &entry.0;
        let (method, tag) = (c.method.name().to_string(), target_tag(c.pattern, c.sparsity));
        let label = c.calibration.as_ref().map(|k| k.languages_label()).unwrap_or_default();
        let i = match out.iter().position(|k| k.model == c.model && k.method == method && k.tag == tag) {
            Some(i) => i,
            None => {
                out.push(Condition { model: c.model.clone(), method, tag, rows: Vec::new() });
                out.len() - 1
            }
        };
        match out[i].rows.iter_mut().find(|(l, _)| *l == label) {
            Some((_, cells)) => cells.push(entry),
            None => out[i].rows.push((label, vec![entry])),
        }
    }
    out
}

/// `50% unstructured` or `2:4`.
fn target_name(cell: &Cell) -> String {
    match cell.pattern {
        Pattern::Unstructured => {
            let pct = format!("{:.2}", cell.sparsity * 100.0);
            format!("{}% unstructured", pct.trim_end_matches('0').trim_end_matches('.'))
        }
        Pattern::NM(nm) => format!("{}:{}", nm.n(), nm.m()),
    }
}

/// Mean and, over two or more seeds, standard deviation of the finite values; missing if none.
fn over_seeds(values: &[f64]) -> GridCell {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    match Sample::new("seeds", finite.clone()) {
        Ok(sample) => {
            let d = Descriptives::of(&sample);
            GridCell { mean: d.mean, sd: Some(d.std_dev), mark: None }
        }
        Err(_) => GridCell::value(mean(&finite)),
    }
}

/// Per seed, the measured values, then their average and (with a dense average) the Δ.
fn summarise_row(per_seed: &[Vec<f64>], dense_average: Option<f64>) -> Vec<GridCell> {
    let measured = per_seed.first().map_or(0, Vec::len);
    let averages: Vec<f64> = per_seed.iter().map(|v| if v.iter().all(|x| x.is_finite()) { mean(v) } else { f64::NAN }).collect();
    let mut cells: Vec<GridCell> = (0..measured).map(|j| over_seeds(&per_seed.iter().map(|v| v[j]).collect::<Vec<_>>())).collect();
    cells.push(over_seeds(&averages));
    if let Some(dense) = dense_average {
        cells.push(over_seeds(&averages.iter().map(|a| a - dense).collect::<Vec<_>>()));
    }
    cells
}

fn correction_name(c: Correction) -> &'static str {
    match c {
        Correction::Holm => "Holm",
        Correction::BenjaminiHochberg => "Benjamini-Hochberg",
    }
}

struct Builder<'a> {
    inputs: &'a GridInputs<'a>,
    names: Names,
}

impl Builder<'_> {
    /// The reference row's label in a condition, if it has one and something to compare it with.
    fn reference<'c>(&self, condition: &'c Condition) -> Option<&'c str> {
        if condition.rows.iter().filter(|(l, _)| !l.is_empty()).count() < 2 {
            return None;
        }
        let wanted = self.inputs.plan.reference_calibration.as_deref().unwrap_or(DEFAULT_REFERENCE);
        condition.rows.iter().map(|(l, _)| l.as_str()).find(|l| *l == wanted)
    }

    /// Marks each language column of a calibration's row from the paired comparisons of its
    /// cells with the reference calibration's; `set_of(unit, language)` names the column's
    /// evaluation set. Nothing is marked without reference cells.
    fn mark_columns(
        &self,
        row: &mut GridRow,
        cells: &[&Entry],
        reference_cells: &[&Entry],
        languages: &[String],
        set_of: impl Fn(&UnitResults, &str) -> Option<String>,
    ) {
        if reference_cells.is_empty() {
            return;
        }
        for (j, lang) in languages.iter().enumerate() {
            row.cells[j].mark = self.mark(cells, reference_cells, &|u: &UnitResults| set_of(u, lang));
        }
    }

    /// The mark of a row's cell: significant against the reference on `set_of(unit)`, the same
    /// way in every seed.
    fn mark(&self, row: &[&Entry], reference: &[&Entry], set_of: &dyn Fn(&UnitResults) -> Option<String>) -> Option<Mark> {
        let mut direction = None;
        for (cell, unit) in row.iter().map(|e| (&e.0, &e.1)) {
            let set = set_of(unit)?;
            let theirs = StudyCell::of(&reference.iter().find(|e| e.0.seed == cell.seed)?.0);
            let mine = StudyCell::of(cell);
            let family = mine.family(&set);
            let comparison = self.inputs.comparisons.iter().find(|r| {
                r.family == family
                    && r.evaluation_set == set
                    && ((r.first == mine.calibration && r.second == theirs.calibration)
                        || (r.first == theirs.calibration && r.second == mine.calibration))
            })?;
            if !comparison.significant {
                return None;
            }
            let difference = if comparison.first == mine.calibration { comparison.mean_difference } else { -comparison.mean_difference };
            let this = if difference > 0.0 {
                Mark::Higher
            } else if difference < 0.0 {
                Mark::Lower
            } else {
                return None;
            };
            if direction.is_some_and(|d| d != this) {
                return None;
            }
            direction = Some(this);
        }
        direction
    }

    /// The notes every grid of a condition carries: spread, bold, marks.
    fn notes(
        &self,
        grid: &Grid,
        condition: &Condition,
        units: &str,
        value_note: Option<String>,
        sequential: Option<String>,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(v) = value_note {
            notes.push(v);
        }
        let seeds = condition.rows.iter().map(|(_, cells)| cells.len()).max().unwrap_or(1);
        if grid.has_spread() {
            notes.push(format!("Mean ± standard deviation over {seeds} seeds."));
        }
        if (0..grid.rows.len()).any(|r| (0..grid.columns.len()).any(|c| grid.is_bold(r, c))) {
            let way = if grid.better == Better::Higher { "higher" } else { "lower" };
            notes.push(format!("Bold: the best pruned value per column ({way} is better)."));
        }
        let calibrated = condition.rows.iter().filter(|(l, _)| !l.is_empty()).count();
        if calibrated < 2 {
            return notes;
        }
        let tests = self.inputs.tests;
        match self.reference(condition) {
            Some(reference) => {
                let tested = condition.rows.iter().flat_map(|(_, c)| c.iter()).any(|e| {
                    let prefix = StudyCell::of(&e.0).family("");
                    self.inputs.comparisons.iter().any(|r| r.family.starts_with(&prefix))
                });
                if !tested {
                    notes.push("No significance marks: no paired tests were found for these cells.".into());
                } else {
                    let every = if seeds > 1 { format!(", in each of the {seeds} seeds") } else { String::new() };
                    let reference_name = self
                        .names
                        .calibration(condition.rows.iter().find(|(l, _)| l == reference).and_then(|(_, c)| c[0].0.calibration.as_ref()));
                    let test = sequential.unwrap_or_else(|| {
                        format!(
                            "paired permutation test on the same {units}, {} correction within each evaluation set, α = {}{every}",
                            correction_name(tests.correction),
                            tests.alpha.value(),
                        )
                    });
                    let marked = grid.rows.iter().any(|r| r.cells.iter().any(|c| c.mark.is_some()));
                    notes.push(if marked {
                        format!("↑/↓: significantly higher/lower than calibration on {reference_name} ({test}).")
                    } else {
                        format!("No difference from calibration on {reference_name} is significant ({test}).")
                    });
                }
            }
            None => notes.push(format!(
                "No significance marks: no row is calibrated on {}; set [report] reference_calibration in the study file.",
                self.inputs.plan.reference_calibration.as_deref().unwrap_or(DEFAULT_REFERENCE)
            )),
        }
        notes
    }

    fn rows_of(&self, condition: &Condition, reference: Option<&str>) -> Vec<(String, RowRole)> {
        condition
            .rows
            .iter()
            .map(|(label, cells)| {
                let name = self.names.calibration(cells[0].0.calibration.as_ref());
                let role = if Some(label.as_str()) == reference { RowRole::Reference } else { RowRole::Pruned };
                (name, role)
            })
            .collect()
    }

    fn columns(&self, codes: &[String], delta: Option<&str>) -> Vec<Column> {
        let mut columns: Vec<Column> = codes.iter().map(|c| Column { name: self.names.language(c), kind: ColumnKind::Measured }).collect();
        columns.push(Column { name: "Avg.".into(), kind: ColumnKind::Average });
        if let Some(d) = delta {
            columns.push(Column { name: d.into(), kind: ColumnKind::Delta });
        }
        columns
    }

    fn perplexity(&self, out: &mut Vec<SectionGrid>) {
        let results = self.inputs.results;
        let languages = results.perplexity_languages();
        if languages.is_empty() {
            return;
        }
        let dense_rows: Vec<GridRow> = results
            .dense
            .iter()
            .filter(|(_, u)| u.is_done())
            .map(|(d, u)| {
                let values: Vec<f64> = languages.iter().map(|l| u.bits_per_byte(l).unwrap_or(f64::NAN)).collect();
                GridRow { label: self.names.model(&d.model), role: RowRole::Dense, cells: summarise_row(&[values], None) }
            })
            .collect();
        if !dense_rows.is_empty() {
            let grid = Grid {
                name: "perplexity-dense_bpb".into(),
                caption: "Bits per byte of the dense model on each evaluation language (lower is better).".into(),
                row_header: "Model".into(),
                columns: self.columns(&languages, None),
                rows: dense_rows,
                better: Better::Lower,
                signed: false,
                notes: Vec::new(),
            };
            out.push(SectionGrid { section: "perplexity".into(), grid });
        }
        for condition in conditions(results) {
            let Some(dense) = results.dense_of(&condition.model) else { continue };
            let reference = self.reference(&condition);
            let reference_cells: &[&Entry] = reference.and_then(|r| condition.rows.iter().find(|(l, _)| l == r)).map_or(&[], |(_, c)| c);
            let mut rows = Vec::new();
            for ((label, cells), (name, role)) in condition.rows.iter().zip(self.rows_of(&condition, reference)) {
                let per_seed: Vec<Vec<f64>> = cells
                    .iter()
                    .map(|e| {
                        languages
                            .iter()
                            .map(|l| e.1.bits_per_byte(l).zip(dense.bits_per_byte(l)).map_or(f64::NAN, |(p, d)| p - d))
                            .collect()
                    })
                    .collect();
                let mut row = GridRow { label: name, role, cells: summarise_row(&per_seed, None) };
                if Some(label.as_str()) != reference {
                    self.mark_columns(&mut row, cells, reference_cells, &languages, |u, lang| {
                        u.perplexity.iter().find(|r| r.language == lang).map(|r| format!("{}/{}", r.language, r.source))
                    });
                }
                rows.push(row);
            }
            let first = &condition.rows[0].1[0].0;
            let mut grid = Grid {
                name: format!("perplexity-bpb_change_{}_{}_{}", condition.model, condition.method, condition.tag),
                caption: format!(
                    "{} at {} on {}: change in bits per byte against the dense model (lower is better), by calibration set (rows) and evaluation language (columns).",
                    self.names.method(&condition.method),
                    target_name(first),
                    self.names.model(&condition.model)
                ),
                row_header: "Calibration".into(),
                columns: self.columns(&languages, None),
                rows,
                better: Better::Lower,
                signed: true,
                notes: Vec::new(),
            };
            grid.notes = self.notes(&grid, &condition, "documents", None, None);
            out.push(SectionGrid { section: "perplexity".into(), grid });
        }
    }

    fn downstream(&self, out: &mut Vec<SectionGrid>) {
        let results = self.inputs.results;
        let pairs = results.task_languages();
        let mut tasks: Vec<&String> = Vec::new();
        for (t, _) in &pairs {
            if !tasks.contains(&t) {
                tasks.push(t);
            }
        }
        let metric_of = |u: &UnitResults, task: &str| {
            TESTED_METRICS.into_iter().find(|m| u.tasks.iter().any(|r| r.task == task && r.metric == *m)).map(str::to_string)
        };
        // Accuracy in percent: the scale papers print it in.
        let value =
            |u: &UnitResults, task: &str, lang: &str, metric: &str| u.task(task, lang, metric).map_or(f64::NAN, |r| 100.0 * r.value);
        for task in tasks {
            let languages: Vec<String> = pairs.iter().filter(|(t, _)| t == task).map(|(_, l)| l.clone()).collect();
            for condition in conditions(results) {
                let dense = results.dense_of(&condition.model);
                let Some(metric) = condition.rows.iter().flat_map(|(_, c)| c.iter()).find_map(|e| metric_of(&e.1, task)) else { continue };
                let dense_values: Option<Vec<f64>> = dense.map(|d| languages.iter().map(|l| value(d, task, l, &metric)).collect());
                let dense_average = dense_values.as_ref().filter(|v| v.iter().all(|x| x.is_finite())).map(|v| mean(v));
                let mut rows = Vec::new();
                if let Some(v) = &dense_values {
                    let mut cells = summarise_row(std::slice::from_ref(v), None);
                    cells.push(GridCell::missing());
                    rows.push(GridRow { label: "Dense".into(), role: RowRole::Dense, cells });
                }
                let reference = self.reference(&condition);
                let reference_cells: &[&Entry] =
                    reference.and_then(|r| condition.rows.iter().find(|(l, _)| l == r)).map_or(&[], |(_, c)| c);
                for ((label, cells), (name, role)) in condition.rows.iter().zip(self.rows_of(&condition, reference)) {
                    let per_seed: Vec<Vec<f64>> =
                        cells.iter().map(|e| languages.iter().map(|l| value(&e.1, task, l, &metric)).collect()).collect();
                    let mut summary = summarise_row(&per_seed, dense_average);
                    if dense_average.is_none() {
                        summary.push(GridCell::missing());
                    }
                    let mut row = GridRow { label: name, role, cells: summary };
                    if Some(label.as_str()) != reference {
                        self.mark_columns(&mut row, cells, reference_cells, &languages, |_, lang| Some(task_set(task, lang)));
                    }
                    rows.push(row);
                }
                let first = &condition.rows[0].1[0].0;
                let mut grid = Grid {
                    name: format!("tasks-{task}_{metric}_{}_{}_{}", condition.model, condition.method, condition.tag),
                    caption: format!(
                        "{} {} (%) of {} pruned with {} at {}, by calibration set (rows) and evaluation language (columns); higher is better.",
                        self.names.task(task),
                        if metric == "acc" { "accuracy" } else { "exact match" },
                        self.names.model(&condition.model),
                        self.names.method(&condition.method),
                        target_name(first),
                    ),
                    row_header: "Calibration".into(),
                    columns: self.columns(&languages, Some("Δ vs dense")),
                    rows,
                    better: Better::Higher,
                    signed: false,
                    notes: Vec::new(),
                };
                let delta = "Δ vs dense: the average minus the dense model's average, in percentage points.".to_string();
                let (sequential, stopped) = match self.inputs.decisions {
                    Some(d) => (Some(sequence_test(d)), stopped_note(d, task, &languages, |l| self.names.language(l))),
                    None => (None, None),
                };
                grid.notes = self.notes(&grid, &condition, "examples", Some(delta), sequential);
                grid.notes.extend(stopped);
                out.push(SectionGrid { section: "tasks".into(), grid });
            }
        }
    }
}

/// How a decided study's task marks were made, for the marks note.
fn sequence_test(d: &Decisions) -> String {
    format!(
        "anytime-valid confidence sequence of the paired accuracy difference ({}, α = {} per comparison), excluding 0 when the set stopped",
        d.sequence, d.alpha
    )
}

/// "Scored until decided: Italian 150 of 500 examples, ..." for one task's columns.
fn stopped_note(d: &Decisions, task: &str, languages: &[String], name: impl Fn(&str) -> String) -> Option<String> {
    let parts: Vec<String> = languages
        .iter()
        .filter_map(|l| {
            let set = d.sets.iter().find(|s| s.evaluation == task_set(task, l))?;
            let undecided = set.comparisons.iter().filter(|c| c.decided_after.is_none()).count();
            let tail =
                if undecided == 0 { String::new() } else { format!(", {undecided} of {} comparisons undecided", set.comparisons.len()) };
            Some(format!("{} {} of {}{tail}", name(l), set.examples, set.available))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Scored in rounds of {} until every comparison with dense and with the reference calibration was decided (margin {}): decided after {}.",
            d.round,
            d.margin,
            parts.join("; ")
        )
    })
}

/// Every paper table of the study: perplexity grids first, then downstream grids per task.
pub fn study_grids(inputs: &GridInputs) -> Vec<SectionGrid> {
    let results = inputs.results;
    let mut languages = results.perplexity_languages();
    languages.extend(results.task_languages().into_iter().map(|(_, l)| l));
    for (c, _) in &results.cells {
        if let Some(k) = &c.calibration {
            languages.extend(k.languages.iter().map(|l| l.flores_code().to_string()));
        }
    }
    let builder = Builder { inputs, names: Names::new(inputs.plan.names.clone(), &languages) };
    let mut out = Vec::new();
    builder.perplexity(&mut out);
    builder.downstream(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::records::Metric;
    use crate::calibrate::{CaptureMode, Mix};
    use crate::data::Language;
    use crate::design::{AnalysisPlan, CalibrationChoice, DenseBaseline};
    use crate::prune::Method;
    use crate::store::{EvaluationRecord, MachineRecord, StudyDir, StudyRecord, TaskSummaryRow, UnitRecord, UnitStatus};

    fn done(id: &str, seed: Option<u64>) -> UnitRecord {
        UnitRecord {
            id: id.into(),
            status: UnitStatus::Done,
            runs: 1,
            model: "m".into(),
            model_hash: String::new(),
            config_hash: String::new(),
            tool_version: String::new(),
            seed,
            started_unix: 0,
            timings: Default::default(),
            eval_tokens: 0,
            calibration_tokens: 0,
            overall_sparsity: None,
            machine: MachineRecord { hostname: String::new(), cores: 1, os: String::new(), device: String::new(), compute: String::new() },
        }
    }

    fn accuracies(values: &[(&str, f64)]) -> Vec<TaskSummaryRow> {
        values
            .iter()
            .map(|&(language, value)| TaskSummaryRow {
                task: "sib200".into(),
                language: language.into(),
                split: "test".into(),
                shots: 0,
                metric: "acc".into(),
                value,
                stderr: None,
                n: 50,
                chance: 1.0 / 7.0,
                seconds: 0.0,
            })
            .collect()
    }

    fn cell(calibration: &str, seed: u64) -> Cell {
        Cell {
            id: format!("wanda-u50-{calibration}-s{seed}"),
            model: "m".into(),
            method: Method::Wanda,
            pattern: Pattern::Unstructured,
            sparsity: 0.5,
            calibration: Some(CalibrationChoice {
                languages: vec![Language::parse(calibration).unwrap()],
                mix: Mix::Even,
                samples: 4,
                seqlen: 8,
                source: None,
            }),
            seed: Some(seed),
            mode: CaptureMode::Sequential,
        }
    }

    /// `first - second = difference` on `set`, in the family of `first`'s condition and seed.
    fn comparison(first: &Cell, second: &Cell, set: &str, difference: f64, significant: bool) -> ComparisonRow {
        let (a, b) = (StudyCell::of(first), StudyCell::of(second));
        ComparisonRow {
            family: a.family(set),
            evaluation_set: set.into(),
            metric: Metric::Accuracy,
            first: a.calibration,
            second: b.calibration,
            n: 50,
            mean_first: 0.0,
            mean_second: 0.0,
            mean_difference: difference,
            ci_lower: 0.0,
            ci_upper: 0.0,
            permutation_p: 0.001,
            min_p: 1e-15,
            reachable: true,
            wilcoxon_p: None,
            cohens_dz: None,
            adjusted_p: if significant { 0.003 } else { 0.2 },
            correction: "holm",
            significant,
        }
    }

    /// Two seeds of English and German calibration. German beats English on the English test
    /// set significantly in both seeds (a mark), on the German test set in seed 0 only (none);
    /// English is the default reference.
    #[test]
    fn downstream_grids_pivot_seeds_and_mark_what_every_seed_agrees_on() {
        let units: Vec<(Cell, UnitResults)> =
            [("eng_Latn", 0, [0.50, 0.40]), ("eng_Latn", 1, [0.54, 0.44]), ("deu_Latn", 0, [0.60, 0.70]), ("deu_Latn", 1, [0.64, 0.66])]
                .iter()
                .map(|&(cal, seed, [en, de])| {
                    let c = cell(cal, seed);
                    let u = UnitResults {
                        record: Some(done(&c.id, Some(seed))),
                        tasks: accuracies(&[("eng_Latn", en), ("deu_Latn", de)]),
                        ..Default::default()
                    };
                    (c, u)
                })
                .collect();
        let dense = UnitResults {
            record: Some(done("dense-m", None)),
            tasks: accuracies(&[("eng_Latn", 0.80), ("deu_Latn", 0.75)]),
            ..Default::default()
        };
        let record = StudyRecord {
            study: "s".into(),
            config_hash: "h".into(),
            tool_version: "t".into(),
            cells: units.iter().map(|(c, _)| c.clone()).collect(),
            dense: vec![DenseBaseline::for_model("m")],
            models: vec![("m".into(), "m".into())],
            evaluation: EvaluationRecord { perplexity: None, tasks: None },
            analysis: AnalysisPlan::default(),
        };
        let (en0, en1, de0, de1) = (&units[0].0, &units[1].0, &units[2].0, &units[3].0);
        let comparisons = vec![
            comparison(de0, en0, "sib200/eng_Latn", 0.10, true),
            // Written the other way round: English minus German.
            comparison(en1, de1, "sib200/eng_Latn", -0.10, true),
            comparison(de0, en0, "sib200/deu_Latn", 0.30, true),
            comparison(de1, en1, "sib200/deu_Latn", 0.22, false),
        ];
        let results =
            StudyResults { dir: StudyDir::new("/nonexistent"), record, dense: vec![(DenseBaseline::for_model("m"), dense)], cells: units };
        let plan = ReportPlan::default();
        let tests = TestSettings::default();
        let grids = study_grids(&GridInputs { results: &results, comparisons: &comparisons, plan: &plan, tests: &tests, decisions: None });
        assert_eq!(grids.len(), 1);
        let g = &grids[0].grid;
        assert_eq!(grids[0].section, "tasks");
        assert_eq!(g.name, "tasks-sib200_acc_m_wanda_u50");
        let names: Vec<&str> = g.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["en", "de", "Avg.", "Δ vs dense"]);
        let labels: Vec<(&str, RowRole)> = g.rows.iter().map(|r| (r.label.as_str(), r.role)).collect();
        assert_eq!(labels, [("Dense", RowRole::Dense), ("en", RowRole::Reference), ("de", RowRole::Pruned)]);
        let german = &g.rows[2].cells;
        assert!((german[0].mean - 62.0).abs() < 1e-9 && (german[0].sd.unwrap() - 8f64.sqrt()).abs() < 1e-9, "{german:?}");
        // Both seeds average 65; dense averages 77.5.
        assert!((german[2].mean - 65.0).abs() < 1e-9 && german[2].sd.unwrap().abs() < 1e-9);
        assert!((german[3].mean + 12.5).abs() < 1e-9);
        assert_eq!(german[0].mark, Some(Mark::Higher), "significant and higher in both seeds");
        assert_eq!(german[1].mark, None, "significant in one seed of two");
        assert!(g.rows[1].cells.iter().all(|c| c.mark.is_none()), "the reference is not compared with itself");
        assert!(g.rows[0].cells[0].sd.is_none() && g.rows[0].cells[3].mean.is_nan());
        assert!(g.is_bold(2, 0) && g.is_bold(2, 1) && !g.is_bold(0, 0) && !g.is_bold(2, 3));
        let notes = g.notes.join(" ");
        assert!(notes.contains("Mean ± standard deviation over 2 seeds."), "{notes}");
        assert!(notes.contains("than calibration on en") && notes.contains("Holm") && notes.contains("α = 0.05"), "{notes}");
        assert!(notes.contains("in each of the 2 seeds"), "{notes}");
        // Nothing significant: no marks, and the note says so rather than explaining arrows.
        let none: Vec<ComparisonRow> = comparisons.iter().cloned().map(|c| ComparisonRow { significant: false, ..c }).collect();
        let grids = study_grids(&GridInputs { results: &results, comparisons: &none, plan: &plan, tests: &tests, decisions: None });
        let notes = grids[0].grid.notes.join(" ");
        assert!(grids[0].grid.rows.iter().all(|r| r.cells.iter().all(|c| c.mark.is_none())));
        assert!(
            notes.contains("No difference from calibration on en is significant (paired permutation test") && !notes.contains("↑"),
            "{notes}"
        );
        // Naming another reference moves the marks (German is now compared with nobody).
        let plan = ReportPlan { reference_calibration: Some("deu_Latn".into()), ..Default::default() };
        let grids = study_grids(&GridInputs { results: &results, comparisons: &comparisons, plan: &plan, tests: &tests, decisions: None });
        let g = &grids[0].grid;
        assert_eq!(g.rows[1].role, RowRole::Pruned);
        assert_eq!(g.rows[1].cells[0].mark, Some(Mark::Lower));
        assert_eq!(g.rows[2].role, RowRole::Reference);
    }
}
