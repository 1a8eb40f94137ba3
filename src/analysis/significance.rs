//! Which differences between calibration languages (and against the dense model) are real.
//!
//! * **Paired comparisons** on the same units (documents: bits per byte; examples: accuracy):
//!   mean difference with a paired bootstrap interval, sign-flip permutation p, Wilcoxon p and
//!   Cohen's d_z, from [`crate::stats::compare_paired`]. The permutation p is the one corrected
//!   and decided on (it assumes nothing about the shape of the differences).
//! * **Families**: in a study, one family is one evaluation set (one language's text, or one
//!   task in one language) within one model/method/pattern/sparsity/seed: every pair of
//!   calibration languages plus each of them against the dense model. In `polyprune check`, the
//!   family is every comparison of the run. Holm (family-wise error) by default, or
//!   Benjamini-Hochberg (false discovery rate).
//! * **Across evaluation sets**: Friedman test of calibration languages (treatments) over
//!   evaluation sets (blocks) on each set's mean, with the Nemenyi post-hoc test and the data of
//!   a critical-difference diagram.
//! * **Across seeds**: mean, standard deviation and Student-t interval.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::records::{find_score_files, read_scores, Metric, ScoreFile, UnitScores};
use super::AnalysisError;
use crate::calibrate::Mix;
use crate::design::Cell;
use crate::prune::Method;
use crate::stats::{
    benjamini_hochberg, compare_paired, critical_difference_diagram, friedman_test, holm, nemenyi, t_interval, Alpha, BlockDesign,
    ComparisonConfig, ConfidenceLevel, CriticalDifferenceDiagram, Descriptives, FriedmanTest, NemenyiTest, PValues, PairedComparison,
    PairedSamples, RankDirection, Sample,
};
use crate::store::{Decisions, ResultsDir, StudyDir};

/// How p-values of one family are corrected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    Holm,
    BenjaminiHochberg,
}

impl Correction {
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Holm => "holm",
            Correction::BenjaminiHochberg => "benjamini_hochberg",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TestSettings {
    pub comparison: ComparisonConfig,
    pub alpha: Alpha,
    pub correction: Correction,
}

impl Default for TestSettings {
    fn default() -> Self {
        TestSettings { comparison: ComparisonConfig::default(), alpha: Alpha::new(0.05).expect("0.05"), correction: Correction::Holm }
    }
}

/// One paired comparison, `first - second`, with its corrected decision.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRow {
    pub family: String,
    pub evaluation_set: String,
    pub metric: Metric,
    pub first: String,
    pub second: String,
    pub n: usize,
    pub mean_first: f64,
    pub mean_second: f64,
    pub mean_difference: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub permutation_p: f64,
    /// The smallest permutation p these units allow (2^(1-k), k differing units).
    pub min_p: f64,
    /// Whether the comparison can be significant in its family at all: `min_p` at most α, the
    /// most lenient threshold of Holm and Benjamini-Hochberg. `false` says "too few differing
    /// units to tell", not "no difference".
    pub reachable: bool,
    pub wilcoxon_p: Option<f64>,
    pub cohens_dz: Option<f64>,
    pub adjusted_p: f64,
    pub correction: &'static str,
    pub significant: bool,
}

/// Pairs the units both score tables have and compares them (first - second); `names` label
/// the two in messages.
pub fn compare_units(
    names: (&str, &str),
    first: &UnitScores,
    second: &UnitScores,
    config: &ComparisonConfig,
) -> Result<PairedComparison, AnalysisError> {
    let (a, b): (Vec<f64>, Vec<f64>) = first.iter().filter_map(|(unit, &x)| second.get(unit).map(|&y| (x, y))).unzip();
    if a.len() < 2 {
        return Err(AnalysisError::invalid(
            format!("{} vs {}", names.0, names.1),
            format!("only {} unit(s) in common; paired tests need the same documents or examples in both results", a.len()),
        ));
    }
    let pairs = PairedSamples::new(names.0, a, names.1, b)?;
    Ok(compare_paired(&pairs, config))
}

fn row(family: &str, set: &str, metric: Metric, first: &str, second: &str, c: &PairedComparison, correction: Correction) -> ComparisonRow {
    ComparisonRow {
        family: family.to_string(),
        evaluation_set: set.to_string(),
        metric,
        first: first.to_string(),
        second: second.to_string(),
        n: c.n,
        mean_first: c.mean_first,
        mean_second: c.mean_second,
        mean_difference: c.mean_difference,
        ci_lower: c.bootstrap_lower,
        ci_upper: c.bootstrap_upper,
        permutation_p: c.permutation_p,
        min_p: c.permutation_min_p,
        reachable: true,
        wilcoxon_p: c.wilcoxon_p,
        cohens_dz: c.cohens_dz,
        adjusted_p: c.permutation_p,
        correction: correction.as_str(),
        significant: false,
    }
}

/// Corrects the permutation p-values of `rows`, which form one family.
pub fn adjust_family(rows: &mut [ComparisonRow], settings: &TestSettings) -> Result<(), AnalysisError> {
    if rows.is_empty() {
        return Ok(());
    }
    let family = rows[0].family.clone();
    let p = PValues::new(&family, rows.iter().map(|r| r.permutation_p).collect())?;
    let adjusted = match settings.correction {
        Correction::Holm => holm(&p, settings.alpha),
        Correction::BenjaminiHochberg => benjamini_hochberg(&p, settings.alpha),
    };
    for ((r, q), reject) in rows.iter_mut().zip(adjusted.adjusted).zip(adjusted.reject) {
        r.adjusted_p = q;
        r.significant = reject;
        r.reachable = r.min_p <= settings.alpha.value();
    }
    Ok(())
}

/// What a reader must know about a family beyond its rows: comparisons that cannot be
/// significant whatever their data, and a family where nothing can be (no comparison reaches
/// the first Holm / Benjamini-Hochberg threshold α/m).
pub fn family_notes(rows: &[ComparisonRow], settings: &TestSettings) -> Vec<String> {
    let Some(first) = rows.first() else { return Vec::new() };
    let alpha = settings.alpha.value();
    let first_step = alpha / rows.len() as f64;
    let mut notes = Vec::new();
    if rows.iter().all(|r| r.min_p > first_step) {
        notes.push(format!(
            "{}: none of its {} comparisons can be significant: each has too few differing units for the first {} threshold {alpha}/{} (the smallest p of k differing units is 2^(1-k)); evaluate more examples or documents",
            first.family,
            rows.len(),
            settings.correction.as_str(),
            rows.len()
        ));
        return notes;
    }
    for r in rows.iter().filter(|r| !r.reachable) {
        notes.push(format!(
            "{}: {} vs {} cannot be significant at {alpha}: its smallest possible p is {:.3e} ({} units, too few of them differ); evaluate more",
            r.family, r.first, r.second, r.min_p, r.n
        ));
    }
    notes
}

/// The corrected comparisons of one family and what the reader must be told about them.
#[derive(Clone, Debug, Default)]
pub struct FamilyComparisons {
    pub rows: Vec<ComparisonRow>,
    /// Pairs left out (too few units in common), pairs tested on a part of their units only,
    /// and comparisons that cannot be significant ([`family_notes`]).
    pub notes: Vec<String>,
}

/// Every pair of treatments on one evaluation set, as one corrected family. A pair is tested
/// on the units both scored; when they scored different units, or too few in common to test,
/// a note says so.
pub fn compare_treatments(
    family: &str,
    set: &str,
    metric: Metric,
    treatments: &[(String, &UnitScores)],
    settings: &TestSettings,
) -> Result<FamilyComparisons, AnalysisError> {
    let mut out = FamilyComparisons::default();
    for i in 0..treatments.len() {
        for j in i + 1..treatments.len() {
            let (a, b) = (&treatments[i], &treatments[j]);
            let names = (format!("{set}: {}", a.0), format!("{set}: {}", b.0));
            match compare_units((&names.0, &names.1), a.1, b.1, &settings.comparison) {
                Ok(c) => {
                    let union = a.1.keys().chain(b.1.keys().filter(|k| !a.1.contains_key(*k))).count();
                    if c.n < union {
                        out.notes.push(format!(
                            "{family}: {} vs {} tested on the {} units both scored, of {} scored by either; evaluate both on the same examples",
                            a.0, b.0, c.n, union
                        ));
                    }
                    out.rows.push(row(family, set, metric, &a.0, &b.0, &c, settings.correction));
                }
                Err(e) => out.notes.push(format!("{family}: {} vs {} left out: {e}", a.0, b.0)),
            }
        }
    }
    adjust_family(&mut out.rows, settings)?;
    out.notes.extend(family_notes(&out.rows, settings));
    Ok(out)
}

/// Friedman + Nemenyi over evaluation sets, with the critical-difference diagram data.
#[derive(Clone, Debug, Serialize)]
pub struct Ranking {
    pub group: String,
    pub treatments: Vec<String>,
    pub blocks: Vec<String>,
    pub friedman: FriedmanTest,
    pub nemenyi: NemenyiTest,
    pub diagram: CriticalDifferenceDiagram,
}

/// Ranks treatments over the evaluation sets all of them have; `means[t][set]` = treatment
/// t's mean score on that set.
pub fn rank_treatments(
    group: &str,
    names: &[String],
    means: &[BTreeMap<String, f64>],
    metric: Metric,
    alpha: Alpha,
) -> Result<Ranking, AnalysisError> {
    let blocks: Vec<String> =
        means.first().map(|m| m.keys().filter(|k| means.iter().all(|t| t.contains_key(*k))).cloned().collect()).unwrap_or_default();
    let design = BlockDesign::new(group, blocks.iter().map(|b| means.iter().map(|t| t[b]).collect()).collect())?;
    let direction = if metric.lower_is_better() { RankDirection::LowerIsBetter } else { RankDirection::HigherIsBetter };
    let friedman = friedman_test(&design, direction)?;
    let nemenyi = nemenyi(&friedman, alpha)?;
    let diagram = critical_difference_diagram(&nemenyi);
    Ok(Ranking { group: group.to_string(), treatments: names.to_vec(), blocks, friedman, nemenyi, diagram })
}

/// Mean, standard deviation and t-interval of one quantity over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct SeedSummary {
    pub group: String,
    pub evaluation_set: String,
    pub seeds: usize,
    pub mean: f64,
    pub std_dev: f64,
    pub t_lower: f64,
    pub t_upper: f64,
}

pub fn across_seeds(group: &str, set: &str, values: &[f64], level: ConfidenceLevel) -> Result<SeedSummary, AnalysisError> {
    let sample = Sample::new(&format!("{group} {set} over seeds"), values.to_vec())?;
    let d = Descriptives::of(&sample);
    let t = t_interval(&sample, level);
    Ok(SeedSummary {
        group: group.to_string(),
        evaluation_set: set.to_string(),
        seeds: d.n,
        mean: d.mean,
        std_dev: d.std_dev,
        t_lower: t.lower(),
        t_upper: t.upper(),
    })
}

fn set_mean(units: &UnitScores) -> f64 {
    mean(&units.values().copied().collect::<Vec<_>>())
}

/// The arithmetic mean (NaN for none), as `stats` computes it.
fn mean(values: &[f64]) -> f64 {
    crate::stats::mean(values)
}

// ---------------------------------------------------------------------------------------------
// Regression check: two result folders, cell by cell.

/// What a comparison says about the candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly worse by more than the tolerance.
    Worse,
    /// Significantly better.
    Better,
    /// Not significant, or within the tolerance.
    Same,
}

/// How much worse is tolerated before a significant change fails the check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tolerance {
    /// Bits per byte the candidate may rise by.
    pub bits_per_byte: f64,
    /// Accuracy (0..1) the candidate may lose.
    pub accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    /// The baseline's results file, relative to `--baseline`.
    pub file: String,
    /// The candidate's results file it was paired with, relative to `--candidate`.
    pub candidate_file: String,
    pub verdict: Verdict,
    #[serde(flatten)]
    pub comparison: ComparisonRow,
}

/// One evaluation set of one results file: the thing a regression check pairs.
struct Evaluated {
    /// Relative to the folder it was found in.
    file: PathBuf,
    /// `documents.csv` or `examples.csv`: what kind of evaluation.
    kind: String,
    /// The file's place with run folder names (time stamps, labels) left out.
    place: String,
    set: String,
    metric: Metric,
    units: UnitScores,
    /// The evaluation settings that change the figures (from the `provenance.json` beside the
    /// file; empty for a folder without one).
    settings: BTreeMap<String, String>,
}

impl Evaluated {
    fn describe(&self) -> String {
        format!("{} in {}", self.set, self.file.display())
    }
}

fn evaluated(root: &Path, flag: &str) -> Result<Vec<Evaluated>, AnalysisError> {
    let files = find_score_files(root)?;
    if files.is_empty() {
        return Err(AnalysisError::invalid(
            format!("{flag} {}", root.display()),
            "holds no documents.csv or examples.csv; give a folder written by `polyprune eval` or `polyprune study run`",
        ));
    }
    let mut out = Vec::new();
    for file in files {
        let scores = read_scores(&root.join(&file))?;
        let metric = scores.metric.expect("read_scores sets the metric");
        let kind = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let place = crate::store::run_free_path(&file);
        let settings = crate::store::read_provenance_beside(&root.join(&file))?.map(|p| p.evaluation_settings()).unwrap_or_default();
        for (set, units) in scores.sets {
            let mut settings = settings.clone();
            settings.extend(scores.set_settings.get(&set).cloned().unwrap_or_default());
            out.push(Evaluated { file: file.clone(), kind: kind.clone(), place: place.clone(), set, metric, units, settings });
        }
    }
    Ok(out)
}

/// Pairs each baseline evaluation with the candidate's evaluation of the same thing: the same
/// kind of file and evaluation set (task/language or language/source), found by that alone when
/// each folder has one, else also by the file's place with run folder names left out (a study
/// folder has one per cell). Refuses when the two did not evaluate the same things.
fn pair_evaluations(baseline: Vec<Evaluated>, candidate: Vec<Evaluated>) -> Result<Vec<(Evaluated, Evaluated)>, AnalysisError> {
    let what = |e: &Evaluated| (e.kind.clone(), e.set.clone());
    let count = |list: &[Evaluated], key: &(String, String)| list.iter().filter(|e| &what(e) == key).count();
    let keyed = |list: &[Evaluated], e: &Evaluated| -> (String, String, String) {
        let (kind, set) = what(e);
        let unique = count(list, &(kind.clone(), set.clone())) == 1;
        (kind, set, if unique { String::new() } else { e.place.clone() })
    };
    let base_keys: Vec<_> = baseline.iter().map(|e| keyed(&baseline, e)).collect();
    let cand_keys: Vec<_> = candidate.iter().map(|e| keyed(&candidate, e)).collect();
    for (list, keys, flag) in [(&baseline, &base_keys, "--baseline"), (&candidate, &cand_keys, "--candidate")] {
        for (i, k) in keys.iter().enumerate() {
            if let Some(j) = keys[..i].iter().position(|other| other == k) {
                return Err(AnalysisError::invalid(
                    flag,
                    format!(
                        "holds two results of the same evaluation ({} and {}); give each run its own --results folder, or pass the run folder itself",
                        list[j].describe(),
                        list[i].describe()
                    ),
                ));
            }
        }
    }
    // A key that is unique on one side but not on the other still names the same evaluation.
    let matches = |b: &(String, String, String), c: &(String, String, String)| {
        b.0 == c.0 && b.1 == c.1 && (b.2.is_empty() || c.2.is_empty() || b.2 == c.2)
    };
    let mut candidate: Vec<Option<Evaluated>> = candidate.into_iter().map(Some).collect();
    let mut pairs = Vec::new();
    let mut only_baseline = Vec::new();
    for (b, bk) in baseline.into_iter().zip(&base_keys) {
        let found = cand_keys.iter().enumerate().find(|(j, ck)| candidate[*j].is_some() && matches(bk, ck)).map(|(j, _)| j);
        match found.and_then(|j| candidate[j].take()) {
            Some(c) => pairs.push((b, c)),
            None => only_baseline.push(b.describe()),
        }
    }
    let only_candidate: Vec<String> = candidate.iter().flatten().map(Evaluated::describe).collect();
    if !only_baseline.is_empty() || !only_candidate.is_empty() {
        let list = |v: &[String]| if v.is_empty() { "nothing".to_string() } else { v.join(", ") };
        return Err(AnalysisError::invalid(
            "check",
            format!(
                "the two folders did not evaluate the same things: only the baseline has {}; only the candidate has {}; run the same evaluation command for both",
                list(&only_baseline),
                list(&only_candidate)
            ),
        ));
    }
    for (b, c) in &pairs {
        same_settings(b, c)?;
        same_units(b, c)?;
    }
    Ok(pairs)
}

/// Paired units are only the same measurement under the same settings: a 0-shot baseline
/// against a 5-shot candidate, or perplexity over other windows, differs by design.
fn same_settings(b: &Evaluated, c: &Evaluated) -> Result<(), AnalysisError> {
    let differing: Vec<String> = b
        .settings
        .iter()
        .filter_map(|(key, value)| c.settings.get(key).filter(|other| *other != value).map(|other| format!("{key} {value} vs {other}")))
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(AnalysisError::invalid(
        format!("{} vs {}", b.describe(), c.describe()),
        format!(
            "were evaluated with different settings (baseline vs candidate: {}); evaluate the candidate with the baseline's settings",
            differing.join(", ")
        ),
    ))
}

/// A paired test needs the same documents or examples on both sides.
fn same_units(b: &Evaluated, c: &Evaluated) -> Result<(), AnalysisError> {
    let missing: Vec<&String> = b.units.keys().filter(|u| !c.units.contains_key(*u)).collect();
    let extra: Vec<&String> = c.units.keys().filter(|u| !b.units.contains_key(*u)).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let first = |v: &[&String]| v.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(AnalysisError::invalid(
        format!("{} vs {}", b.describe(), c.describe()),
        format!(
            "scored different units: {} only in the baseline ({}), {} only in the candidate ({}); evaluate the same documents or examples (same --limit, split and data)",
            missing.len(),
            first(&missing),
            extra.len(),
            first(&extra)
        ),
    ))
}

/// Compares `candidate` with `baseline` on every evaluation both made, paired by what was
/// evaluated (see [`pair_evaluations`]); differences are candidate - baseline. All comparisons
/// form one family.
pub fn check(baseline: &Path, candidate: &Path, settings: &TestSettings, tolerance: Tolerance) -> Result<CheckOutcome, AnalysisError> {
    let pairs = pair_evaluations(evaluated(baseline, "--baseline")?, evaluated(candidate, "--candidate")?)?;
    if pairs.iter().all(|(b, _)| b.units.is_empty()) {
        return Err(AnalysisError::invalid(
            format!("--baseline {} and --candidate {}", baseline.display(), candidate.display()),
            "hold no scored documents or examples, so there is nothing to compare; re-run the evaluations (a --limit of 0, or tasks whose every example was skipped, leave empty files)",
        ));
    }
    let mut rows = Vec::new();
    for (b, c) in &pairs {
        let names = (format!("candidate {}", c.describe()), format!("baseline {}", b.describe()));
        let comparison = compare_units((&names.0, &names.1), &c.units, &b.units, &settings.comparison)?;
        rows.push(CheckRow {
            file: b.file.display().to_string(),
            candidate_file: c.file.display().to_string(),
            verdict: Verdict::Same,
            comparison: row("check", &b.set, b.metric, "candidate", "baseline", &comparison, settings.correction),
        });
    }
    let mut comparisons: Vec<ComparisonRow> = rows.iter().map(|r| r.comparison.clone()).collect();
    adjust_family(&mut comparisons, settings)?;
    for (r, c) in rows.iter_mut().zip(comparisons) {
        let d = c.mean_difference;
        let worse = if c.metric.lower_is_better() { d > tolerance.bits_per_byte } else { -d > tolerance.accuracy };
        let better = if c.metric.lower_is_better() { d < 0.0 } else { d > 0.0 };
        r.verdict = match (c.significant, worse, better) {
            (true, true, _) => Verdict::Worse,
            (true, false, true) => Verdict::Better,
            _ => Verdict::Same,
        };
        r.comparison = c;
    }
    let comparisons: Vec<ComparisonRow> = rows.iter().map(|r| r.comparison.clone()).collect();
    let notes = family_notes(&comparisons, settings);
    Ok(CheckOutcome { rows, notes })
}

/// The rows of a regression check and what cannot be read from them alone.
#[derive(Clone, Debug)]
pub struct CheckOutcome {
    pub rows: Vec<CheckRow>,
    /// Comparisons that cannot be significant at this family size ([`family_notes`]).
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// A whole study: cells from its `study.json`, their scores read through the store.

/// What the significance analysis needs to know about a cell.
#[derive(Clone, Debug, Serialize)]
pub struct StudyCell {
    pub id: String,
    pub model: String,
    pub method: Method,
    /// `<pattern> <sparsity>`.
    pub target: String,
    /// Method, pattern and sparsity: cells of one condition differ only in calibration and seed.
    pub condition: String,
    /// The calibration languages joined by `+` (with the mix when not even), `none` without.
    pub calibration: String,
    /// `None` for cells without calibration (Magnitude).
    pub seed: Option<u64>,
}

impl StudyCell {
    pub fn of(cell: &Cell) -> StudyCell {
        // `{:?}`-free, stable spellings: they name families in the exported tables.
        let sparsity = serde_json::to_string(&cell.sparsity).expect("a finite sparsity");
        let calibration = match &cell.calibration {
            None => "none".to_string(),
            Some(k) => {
                let languages: Vec<&str> = k.languages.iter().map(|l| l.flores_code()).collect();
                let joined = languages.join("+");
                match &k.mix {
                    _ if languages.len() < 2 => joined,
                    Mix::Even => joined,
                    Mix::Concat => format!("{joined} (concat)"),
                    Mix::Weights(w) => format!("{joined} ({})", w.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(":")),
                }
            }
        };
        StudyCell {
            id: cell.id.clone(),
            model: cell.model.clone(),
            method: cell.method,
            target: format!("{} {sparsity}", cell.pattern),
            condition: format!("{} {} {sparsity}", cell.method.name(), cell.pattern),
            calibration,
            seed: cell.seed,
        }
    }

    /// ` seed <n>`, or nothing for a cell without a seed.
    pub fn seed_label(&self) -> String {
        self.seed.map(|s| format!(" seed {s}")).unwrap_or_default()
    }

    /// The family this cell's comparisons on evaluation set `set` belong to: its condition and
    /// seed on that set (every calibration of the condition, and dense, compared pairwise).
    pub fn family(&self, set: &str) -> String {
        format!("{} {}{}: {set}", self.model, self.condition, self.seed_label())
    }
}

/// The cells of the study in `study` (its `study.json`, read by the store).
pub fn read_study_cells(study: &StudyDir) -> Result<Vec<StudyCell>, AnalysisError> {
    Ok(study.read_study()?.cells.iter().map(StudyCell::of).collect())
}

/// Everything the significance section shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StudySignificance {
    pub comparisons: Vec<ComparisonRow>,
    /// Comparisons left out, tested on part of their units, or unable to reach significance.
    pub notes: Vec<String>,
    pub rankings: Vec<Ranking>,
    pub seeds: Vec<SeedSummary>,
}

/// Which per-unit scores of a unit's folder a pass of the tests reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Perplexity,
    Tasks,
}

/// The unit's scores of `measure`, `None` when it has none.
fn unit_scores(unit: &ResultsDir, measure: Measure) -> Result<Option<ScoreFile>, AnalysisError> {
    match measure {
        Measure::Perplexity => {
            let ppl = unit.perplexity();
            if !ppl.exists() {
                return Ok(None);
            }
            super::records::documents(ppl.path(), ppl.read_documents()?).map(Some)
        }
        Measure::Tasks => {
            let tasks = unit.tasks();
            if !tasks.exists() {
                return Ok(None);
            }
            Ok(Some(super::records::examples(tasks.read_examples()?)))
        }
    }
}

/// In a study whose tasks stopped when decided, a fixed-n test on the examples used is not
/// valid (when to stop depended on the data), so each task comparison's interval and mark come
/// from its confidence sequence: marked when the sequence excludes 0. Pairs the rounds did not
/// decide (two calibrations, neither the reference) are left unmarked. Returns the note saying so.
fn apply_sequences(rows: &mut [ComparisonRow], decisions: &Decisions) -> String {
    for row in rows.iter_mut().filter(|r| r.metric == Metric::Accuracy) {
        let found = decisions.sets.iter().filter(|s| s.evaluation == row.evaluation_set).flat_map(|s| &s.comparisons).find_map(|c| {
            if c.family != row.family {
                None
            } else if c.first == row.first && c.second == row.second {
                Some((c, 1.0))
            } else if c.first == row.second && c.second == row.first {
                Some((c, -1.0))
            } else {
                None
            }
        });
        match found {
            Some((c, sign)) => {
                let (a, b) = (sign * c.lower, sign * c.upper);
                row.ci_lower = a.min(b);
                row.ci_upper = a.max(b);
                row.significant = c.excludes_zero();
                row.reachable = true;
                row.correction = "confidence-sequence";
            }
            None => {
                row.significant = false;
                row.correction = "not-decided";
            }
        }
    }
    format!(
        "Tasks stopped when decided (margin {}, rounds of {}): a task comparison's interval is its anytime-valid confidence sequence \
         ({}, alpha = {} per comparison) and it is significant when that excludes 0; its p-values are fixed-n and descriptive only. \
         Pairs of two calibrations neither of which is the reference were not decided and are never marked.",
        decisions.margin, decisions.round, decisions.sequence, decisions.alpha
    )
}

/// Runs the study's families of tests.
pub fn study_significance(study: &Path, settings: &TestSettings) -> Result<StudySignificance, AnalysisError> {
    let dir = StudyDir::new(study);
    let cells = read_study_cells(&dir)?;
    let mut out = StudySignificance::default();
    for measure in [Measure::Perplexity, Measure::Tasks] {
        // (model, condition, seed) -> [(calibration, scores)]
        type Group = (String, String, Option<u64>);
        let mut groups: BTreeMap<Group, Vec<(String, ScoreFile)>> = BTreeMap::new();
        let mut family_cells: BTreeMap<Group, &StudyCell> = BTreeMap::new();
        for c in &cells {
            if let Some(scores) = unit_scores(&dir.cell(&c.id), measure)? {
                let key = (c.model.clone(), c.condition.clone(), c.seed);
                family_cells.insert(key.clone(), c);
                groups.entry(key).or_default().push((c.calibration.clone(), scores));
            }
        }
        // Pairwise families per evaluation set, with the dense model as one more treatment.
        for (key, members) in &groups {
            let (model, _, _) = key;
            let dense = unit_scores(&dir.dense(model), measure)?;
            let metric = members[0].1.metric.expect("set by reader");
            let sets: Vec<&String> = members[0].1.sets.keys().collect();
            for set in sets {
                let mut treatments: Vec<(String, &UnitScores)> =
                    members.iter().filter_map(|(cal, s)| s.sets.get(set).map(|u| (cal.clone(), u))).collect();
                if let Some(d) = dense.as_ref().and_then(|d| d.sets.get(set)) {
                    treatments.push(("dense".to_string(), d));
                }
                let family = family_cells[key].family(set);
                let tested = compare_treatments(&family, set, metric, &treatments, settings)?;
                out.comparisons.extend(tested.rows);
                out.notes.extend(tested.notes);
            }
        }
        if measure == Measure::Tasks {
            if let Some(decisions) = dir.read_decisions::<Decisions>()? {
                out.notes.push(apply_sequences(&mut out.comparisons, &decisions));
            }
        }
        // Across seeds: per (model, condition, calibration, set) the set mean of each seed.
        let mut per_seed: BTreeMap<(String, String, String, String), Vec<f64>> = BTreeMap::new();
        for ((model, condition, _), members) in &groups {
            for (cal, scores) in members {
                for (set, units) in &scores.sets {
                    per_seed.entry((model.clone(), condition.clone(), cal.clone(), set.clone())).or_default().push(set_mean(units));
                }
            }
        }
        let mut seed_means: BTreeMap<(String, String), BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
        for ((model, condition, cal, set), values) in &per_seed {
            let group = format!("{model} {condition} {cal}");
            if values.len() >= 2 {
                out.seeds.push(across_seeds(&group, set, values, settings.comparison.level)?);
            }
            seed_means
                .entry((model.clone(), condition.clone()))
                .or_default()
                .entry(cal.clone())
                .or_default()
                .insert(set.clone(), mean(values));
        }
        // Friedman + Nemenyi: calibration languages over evaluation sets, seeds averaged.
        for ((model, condition), by_cal) in seed_means {
            if by_cal.len() < 2 {
                continue;
            }
            let metric = if measure == Measure::Perplexity { Metric::BitsPerByte } else { Metric::Accuracy };
            let names: Vec<String> = by_cal.keys().cloned().collect();
            let means: Vec<BTreeMap<String, f64>> = by_cal.into_values().collect();
            let group = format!("{model} {condition} ({})", metric.as_str());
            if let Ok(r) = rank_treatments(&group, &names, &means, metric, settings.alpha) {
                out.rankings.push(r);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(values: &[f64]) -> UnitScores {
        values.iter().enumerate().map(|(i, &v)| (format!("d{i:02}"), v)).collect()
    }

    #[test]
    fn a_clear_difference_is_significant_and_none_is_not() {
        let settings = TestSettings::default();
        let base: Vec<f64> = (0..30).map(|i| 1.0 + 0.1 * ((i * 7 % 11) as f64)).collect();
        let shifted: Vec<f64> = base.iter().enumerate().map(|(i, x)| x + 0.2 + 0.01 * (i % 3) as f64).collect();
        let (a, b, c) = (units(&base), units(&shifted), units(&base));
        let rows =
            compare_treatments("f", "eng", Metric::BitsPerByte, &[("eng".into(), &a), ("deu".into(), &b), ("fra".into(), &c)], &settings)
                .unwrap()
                .rows;
        // Pairs in order: eng-deu, eng-fra, deu-fra.
        assert_eq!(rows.len(), 3);
        assert!(rows[0].significant && rows[0].mean_difference < 0.0, "{:?}", rows[0]);
        assert!(!rows[1].significant && rows[1].mean_difference == 0.0, "identical scores: {:?}", rows[1]);
        assert!(rows[2].significant && rows[2].mean_difference > 0.0, "{:?}", rows[2]);
        // Holm: the adjusted p is at least the raw one, and at most 1.
        for r in &rows {
            assert!(r.adjusted_p >= r.permutation_p && r.adjusted_p <= 1.0);
        }
    }

    #[test]
    fn units_are_joined_by_id() {
        let a: UnitScores = [("x".to_string(), 1.0), ("y".to_string(), 2.0), ("z".to_string(), 3.0)].into();
        let b: UnitScores = [("y".to_string(), 1.0), ("z".to_string(), 1.0), ("w".to_string(), 9.0)].into();
        let c = compare_units(("a", "b"), &a, &b, &ComparisonConfig::default()).unwrap();
        assert_eq!(c.n, 2);
        assert!((c.mean_difference - 1.5).abs() < 1e-12);
        let lonely: UnitScores = [("q".to_string(), 1.0)].into();
        assert!(compare_units(("a", "lonely"), &a, &lonely, &ComparisonConfig::default()).unwrap_err().to_string().contains("in common"));
    }

    #[test]
    fn friedman_ranks_a_consistently_best_treatment_first() {
        let names: Vec<String> = ["eng", "deu", "zho"].iter().map(|s| s.to_string()).collect();
        let sets = ["a", "b", "c", "d", "e", "f"];
        let means: Vec<BTreeMap<String, f64>> =
            (0..3).map(|t| sets.iter().enumerate().map(|(i, s)| (s.to_string(), 1.0 + t as f64 * 0.1 + i as f64)).collect()).collect();
        let r = rank_treatments("g", &names, &means, Metric::BitsPerByte, Alpha::new(0.05).unwrap()).unwrap();
        assert_eq!(r.friedman.average_ranks, vec![1.0, 2.0, 3.0]);
        // Closed form: chi2_F = 12 N / (k (k+1)) * sum (R_j - (k+1)/2)^2 = 12*6/12 * 2 = 12.
        assert!((r.friedman.statistic - 12.0).abs() < 1e-10);
        assert_eq!(r.diagram.ranked[0].treatment, 0);
    }

    #[test]
    fn seeds_summary_matches_the_closed_form() {
        let s = across_seeds("g", "eng", &[1.0, 2.0, 3.0], ConfidenceLevel::new(0.95).unwrap()).unwrap();
        assert_eq!(s.mean, 2.0);
        assert!((s.std_dev - 1.0).abs() < 1e-12);
        // t_{0.975, 2} = 4.302652729911275 (SciPy), se = 1/sqrt(3).
        let half = 4.302652729911275 / 3f64.sqrt();
        assert!((s.t_upper - (2.0 + half)).abs() < 1e-10, "{}", s.t_upper);
    }

    fn varied(n: usize, shift: f64) -> Vec<f64> {
        (0..n).map(|i| 1.0 + shift + 0.3 * ((i as f64 * 0.618_033_988_7).fract() - 0.5)).collect()
    }

    /// The family `check` forms over a study folder: 600 clear regressions must all be flagged.
    /// With p from 2,000 sign flips alone the smallest p is 1/2001, above Holm's first step
    /// 0.05/600, and not one would be.
    #[test]
    fn a_family_of_hundreds_still_flags_clear_differences() {
        let settings = TestSettings {
            comparison: ComparisonConfig {
                resampling: crate::stats::ResamplingConfig { resamples: crate::stats::Resamples::new(2000).unwrap(), seed: 1 },
                ..ComparisonConfig::default()
            },
            ..TestSettings::default()
        };
        let (base, worse) = (units(&varied(40, 0.0)), units(&varied(40, 0.05)));
        let c = compare_units(("worse", "base"), &worse, &base, &settings.comparison).unwrap();
        let mut rows: Vec<ComparisonRow> =
            (0..600).map(|i| row("check", &format!("set{i}"), Metric::BitsPerByte, "a", "b", &c, settings.correction)).collect();
        adjust_family(&mut rows, &settings).unwrap();
        assert!(rows.iter().all(|r| r.significant && r.reachable), "{:?}", rows[0]);
        assert!(rows[0].permutation_p < 0.05 / 600.0, "{}", rows[0].permutation_p);
        assert!(family_notes(&rows, &settings).is_empty());
    }

    /// Accuracy differences on few differing examples cannot reach significance; the notes say
    /// so per comparison, and for the whole family when none can.
    #[test]
    fn comparisons_that_cannot_be_significant_are_named() {
        let settings = TestSettings::default();
        let score = |flips: usize| -> UnitScores { (0..50).map(|i| (format!("e{i:02}"), if i < flips { 1.0 } else { 0.0 })).collect() };
        let (none, few, many) = (score(0), score(3), score(30));
        let out = compare_treatments("fam", "xcopa/it", Metric::Accuracy, &[("a".into(), &none), ("b".into(), &few)], &settings).unwrap();
        // 3 differing examples: the smallest possible p is 2^(1-3) = 0.25.
        assert_eq!(out.rows[0].min_p, 0.25);
        assert!(!out.rows[0].reachable);
        assert!(out.notes.iter().any(|n| n.contains("none of its 1 comparisons can be significant")), "{:?}", out.notes);
        let out = compare_treatments(
            "fam",
            "xcopa/it",
            Metric::Accuracy,
            &[("a".into(), &none), ("b".into(), &few), ("c".into(), &many)],
            &settings,
        )
        .unwrap();
        assert!(out.rows.iter().any(|r| r.significant));
        assert!(out.notes.iter().any(|n| n.contains("a vs b cannot be significant")), "{:?}", out.notes);
    }

    /// Pairs on different units are tested on what they share, with a note; pairs with too few
    /// units in common are left out, with a note.
    #[test]
    fn partly_paired_and_left_out_comparisons_are_noted() {
        let settings = TestSettings::default();
        let all = units(&varied(30, 0.0));
        let half: UnitScores = units(&varied(30, 0.1)).into_iter().take(15).collect();
        let other: UnitScores = [("zz".to_string(), 1.0)].into();
        let out = compare_treatments(
            "fam",
            "eng",
            Metric::BitsPerByte,
            &[("a".into(), &all), ("b".into(), &half), ("c".into(), &other)],
            &settings,
        )
        .unwrap();
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].n, 15);
        assert!(out.notes.iter().any(|n| n.contains("a vs b tested on the 15 units both scored, of 30")), "{:?}", out.notes);
        assert!(out.notes.iter().any(|n| n.contains("a vs c left out")), "{:?}", out.notes);
        assert!(out.notes.iter().any(|n| n.contains("b vs c left out")), "{:?}", out.notes);
    }
}
