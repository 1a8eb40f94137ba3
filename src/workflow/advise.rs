//! `advise`: which mixture of calibration languages to prune with, for a set of target
//! languages, with the evidence.
//!
//! How it stays cheap:
//! 1. **One calibration pass per language.** Each candidate (and each target, and English, the
//!    baselines) is calibrated once, one-shot (all statistics from the dense model), and its
//!    per-layer input statistics are kept. Wanda's squared input norms and SparseGPT's Gram
//!    matrices are sums over calibration tokens, so a mixture's statistics are the weighted
//!    sum of the languages' ([`InputStatistics::scaled_sum`]); the weights are the window
//!    counts a real calibration of `--samples` windows on that mixture would draw
//!    ([`crate::calibrate::Mix::shares`]), divided by each language's own window count.
//! 2. **A layer-error proxy per target.** For a mixture, every layer is pruned from the mixed
//!    statistics; the change `D` (mask, and for SparseGPT the OBS update) moves the layer's
//!    outputs on target `t` by `tr(D H_t D^T)` with `H_t` the target's per-token Gram matrix
//!    ([`ColumnGram`]). The proxy for `t` is that error relative to the layer's own output
//!    energy `tr(W H_t W^T)`, averaged over layers: scale-free, so comparable across targets.
//!    The targets' Gram matrices come from their calibration-split statistics (in-sample for
//!    mixtures that include the target: the validation below uses held-out text).
//! 3. **A search of the simplex** on the proxy ([`search_mixtures`]; the method and why are
//!    documented there).
//! 4. **Validation on text.** The best few mixtures and every single-language calibration are
//!    pruned (from the same statistics) and scored in bits per byte on a development half of
//!    each target's evaluation split; the recommendation is the best on that half under the
//!    objective, applied to each target's bits per byte relative to the dense model's.
//! 5. **Test.** The recommendation, English-only and each target-only calibration are scored
//!    on the other half, compared per document with paired intervals and permutation tests
//!    (Holm over targets for "beats English-only"). Optionally, the recommendation is confirmed
//!    with one real sequential calibration on the mixture (as `prune --mix weights:..`).
//!
//! The development/test halves split each target's evaluation documents by a hash of the
//! document id ([`is_development_document`]), so a parallel corpus (FLORES) puts the same
//! sentences in the same half for every language, and neither half meets calibration text.
//!
//! Memory: per language, every layer input's statistics; with Gram matrices (targets, and
//! every candidate for SparseGPT) that is `8 d^2` bytes per distinct layer input, about 0.9 GB
//! per language for Gemma 3 270M (18 blocks, inputs of width 640, 1024, 640 and 2048). Wanda
//! candidates that are not targets keep only their norms (`8 d` bytes per input).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{score_sets, WorkflowError};
use crate::calibrate::{
    capture_and_prune, search_mixtures, CalibrationError, CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, EvaluatedMixture,
    LayerPruner, Mix, Objective,
};
use crate::data::Language;
use crate::eval::{LanguageScore, Scorer, TextSet, WindowOptions};
use crate::model::weights::WeightStore;
use crate::model::{LinearLayer, ModelDir};
use crate::progress::Progress;
use crate::prune::{ColumnGram, InputStatistics, LinearWeight, Method, Pattern, PruneError, Sparsity, SparsityTarget};
use crate::pruned::{prune_model, LayerFilter};
use crate::runtime::{RuntimeOptions, WeightOverride};
use crate::stats::{compare_paired, holm, spearman, Alpha, ComparisonConfig, PValues, PairedSamples};

/// The baseline every recommendation is compared with.
pub const ENGLISH: &str = "eng_Latn";

#[derive(Clone, Debug)]
pub struct AdviseOptions {
    pub model: PathBuf,
    /// Languages the pruned model will serve.
    pub targets: Vec<String>,
    /// Languages the calibration may mix; empty = the targets plus English.
    pub candidates: Vec<String>,
    /// Wanda or SparseGPT (the methods whose statistics are sums over tokens).
    pub method: Method,
    pub sparsity: Option<Sparsity>,
    pub pattern: Pattern,
    /// Calibration windows per set and tokens per window (capped at the model's positions).
    pub samples: usize,
    pub seqlen: usize,
    pub seed: u64,
    /// Calibration text source (`--calib-source`); `None` = each language's default.
    pub calib_source: Option<String>,
    /// Evaluation text source (`--source`); `None` = each language's default.
    pub source: Option<String>,
    /// Another SIB-200/FLORES folder than the project's.
    pub flores: Option<PathBuf>,
    pub objective: Objective,
    /// Proxy evaluations the search may spend.
    pub budget: usize,
    /// How many of the best searched mixtures (besides the single languages) are validated.
    pub validate: usize,
    /// Documents per target in each of the development and test halves (`None` = all).
    pub limit: Option<usize>,
    /// Confirm the recommendation with one sequential calibration on the mixture.
    pub confirm: bool,
    /// Calibration windows per runtime call.
    pub batch: usize,
    pub runtime: RuntimeOptions,
    pub comparison: ComparisonConfig,
    pub alpha: Alpha,
}

/// One calibration's per-target bits per byte.
pub type BitsPerByte = BTreeMap<String, f64>;

/// A searched mixture, as reported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchPoint {
    /// A language code, or `mix:<lang>=<weight>+..`.
    pub calibration: String,
    pub weights: BTreeMap<String, f64>,
    pub shares: BTreeMap<String, usize>,
    /// Per-target proxy: mean relative layer output error.
    pub proxy: BTreeMap<String, f64>,
    pub proxy_score: f64,
    /// Per-target development bits per byte, when validated.
    pub dev_bpb: Option<BitsPerByte>,
    /// The objective on the development half (bits per byte relative to the dense model's).
    pub dev_score: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recommendation {
    pub calibration: String,
    pub weights: BTreeMap<String, f64>,
    pub shares: BTreeMap<String, usize>,
    pub proxy: BTreeMap<String, f64>,
    pub dev_bpb: BitsPerByte,
    pub dev_score: f64,
}

/// A paired comparison on one target's test documents (`first - second`, bits per byte).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestComparison {
    pub target: String,
    pub first: String,
    pub second: String,
    pub documents: usize,
    pub mean_first: f64,
    pub mean_second: f64,
    pub mean_difference: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub permutation_p: f64,
    /// Holm-adjusted over the targets of the same pair of calibrations.
    pub adjusted_p: f64,
    /// Adjusted p at most alpha and the first calibration lower (better).
    pub first_better: bool,
}

/// How well the proxy ranked the validated calibrations, against development bits per byte.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Agreement {
    pub calibrations: usize,
    /// Spearman's rho per target: proxy error vs development bits per byte.
    pub per_target: BTreeMap<String, Option<f64>>,
    /// Spearman's rho of the objective: proxy score vs development score.
    pub objective: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Confirmation {
    /// `prune --calib <languages> --mix weights:<..>` with the recommendation's windows.
    pub calib: Vec<String>,
    pub mix: String,
    pub test_bpb: BitsPerByte,
    /// Sequential mixture vs the one-shot recommendation, per target.
    pub comparisons: Vec<TestComparison>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cost {
    /// One-shot passes (one per language) plus the confirmation's sequential pass.
    pub calibration_passes: usize,
    pub calibration_tokens: usize,
    pub proxy_evaluations: usize,
    pub dev_tokens: usize,
    pub test_tokens: usize,
    pub confirmation_tokens: usize,
    pub statistics_s: f64,
    pub search_s: f64,
    pub validation_s: f64,
    pub test_s: f64,
    pub confirmation_s: f64,
}

/// Everything `advise` found, as `advice.json` holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Advice {
    pub model: String,
    pub method: String,
    pub sparsity: String,
    pub objective: Objective,
    pub samples: usize,
    pub seqlen: usize,
    pub seed: u64,
    pub targets: Vec<String>,
    pub candidates: Vec<String>,
    pub recommended: Recommendation,
    /// Every searched mixture, best proxy score first.
    pub search: Vec<SearchPoint>,
    pub dense_dev_bpb: BitsPerByte,
    pub dense_test_bpb: BitsPerByte,
    /// Per target, the ids of its test-half documents (what `test_bpb` is measured on), so a
    /// study's report can measure its grid on the same documents. Empty in files written
    /// before it was kept.
    #[serde(default)]
    pub test_documents: BTreeMap<String, Vec<String>>,
    /// Per calibration (`recommended` or a language code), per target.
    pub test_bpb: BTreeMap<String, BitsPerByte>,
    pub comparisons: Vec<TestComparison>,
    /// Whether the recommendation is significantly better than English-only, per target.
    pub beats_english: BTreeMap<String, bool>,
    pub agreement: Agreement,
    pub confirmation: Option<Confirmation>,
    pub cost: Cost,
    pub split_rule: String,
    pub confidence_level: f64,
    pub alpha: f64,
}

/// Whether an evaluation document belongs to the development half (else the test half):
/// the lowest bit of the FNV-1a hash of its id.
pub fn is_development_document(id: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & 1 == 0
}

/// Keeps the statistics capture hands each block, and prunes nothing.
struct KeepStatistics {
    keep_gram: bool,
    blocks: Vec<BTreeMap<String, InputStatistics>>,
}

impl LayerPruner for KeepStatistics {
    fn prune_block(
        &mut self,
        block: usize,
        _layers: &[LinearLayer],
        statistics: &mut BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        if self.blocks.len() <= block {
            self.blocks.resize_with(block + 1, BTreeMap::new);
        }
        self.blocks[block] =
            statistics.iter().map(|(tap, s)| (tap.clone(), if self.keep_gram { s.clone() } else { s.without_gram() })).collect();
        Ok(Vec::new())
    }
}

/// One language's one-shot calibration statistics: per block, per layer input.
pub struct LanguageStatistics {
    pub language: String,
    pub windows: usize,
    pub blocks: Vec<BTreeMap<String, InputStatistics>>,
}

/// Calibrates on one language's set, one-shot, and keeps every layer input's statistics
/// (with Gram matrices when `gram`).
pub fn language_statistics(
    model: &ModelDir,
    set: &CalibrationSet,
    gram: bool,
    batch: usize,
    runtime: &RuntimeOptions,
) -> Result<LanguageStatistics, CalibrationError> {
    let opts = CaptureOptions { mode: CaptureMode::OneShot, batch, runtime: runtime.clone(), gram };
    let mut keep = KeepStatistics { keep_gram: gram, blocks: Vec::new() };
    capture_and_prune(model, set, &opts, &mut keep, |_, _| {})?;
    let language = set.spec.languages.iter().map(|l| l.flores_code()).collect::<Vec<_>>().join("+");
    Ok(LanguageStatistics { language, windows: set.windows.len(), blocks: keep.blocks })
}

/// The statistics of a mixture of `languages` with `shares[k]` windows from language `k`, for
/// the layer input `tap` of `block`: each language's statistics scaled by its share of its own
/// windows.
pub fn mixture_statistics(
    languages: &[&LanguageStatistics],
    shares: &[usize],
    block: usize,
    tap: &str,
) -> Result<InputStatistics, PruneError> {
    let mut parts = Vec::new();
    for (l, &share) in languages.iter().zip(shares) {
        if share == 0 {
            continue;
        }
        let stats = l.blocks.get(block).and_then(|b| b.get(tap)).ok_or_else(|| PruneError::StatisticsMismatch {
            target: tap.to_string(),
            other: l.language.clone(),
            reason: format!("no statistics for block {block}"),
        })?;
        parts.push((stats, share as f64 / l.windows.max(1) as f64));
    }
    InputStatistics::scaled_sum(tap, &parts)
}

/// The layers to prune, their weights, and each target's output energy per layer.
struct Layers {
    layers: Vec<LinearLayer>,
    weights: Vec<LinearWeight>,
    /// `energy[layer][target]`: mean squared output of the dense layer on the target.
    energy: Vec<Vec<f64>>,
}

fn target_statistics<'a>(targets: &[&'a LanguageStatistics], layer: &LinearLayer) -> Vec<&'a InputStatistics> {
    targets.iter().filter_map(|t| t.blocks.get(layer.block).and_then(|b| b.get(&layer.input))).collect()
}

impl Layers {
    fn load(model: &ModelDir, store: &WeightStore, targets: &[&LanguageStatistics]) -> Result<Layers, WorkflowError> {
        let layers: Vec<LinearLayer> = model.card.layers.clone();
        let weights = layers
            .iter()
            .map(|l| {
                let [d_in, d_out] = l.shape;
                let rows = store.read_rows(l)?;
                Ok(LinearWeight::new(&l.name, d_out, d_in, rows).map_err(CalibrationError::from)?)
            })
            .collect::<Result<Vec<_>, WorkflowError>>()?;
        let energy = layers
            .par_iter()
            .zip(&weights)
            .map(|(l, w)| {
                let wide: Vec<f64> = w.data().iter().map(|&v| f64::from(v)).collect();
                let gram = ColumnGram::of(&wide, w.out_features(), w.in_features());
                let stats = target_statistics(targets, l);
                stats.iter().map(|s| gram.mean_squared_output(s).unwrap_or(f64::NAN)).collect::<Vec<f64>>()
            })
            .collect();
        Ok(Layers { layers, weights, energy })
    }
}

/// What pruning from one mixture's statistics gives: per-target proxy errors, and the weight
/// overrides when asked.
struct Pruning<'a> {
    method: Method,
    target: SparsityTarget,
    languages: Vec<&'a LanguageStatistics>,
    targets: Vec<&'a LanguageStatistics>,
    layers: &'a Layers,
    store: &'a WeightStore,
}

impl Pruning<'_> {
    fn prune(&self, shares: &[usize], want_overrides: bool) -> Result<(Vec<f64>, Vec<WeightOverride>), WorkflowError> {
        let nt = self.targets.len();
        let mut sums = vec![0.0; nt];
        let mut counted = vec![0usize; nt];
        let mut overrides = Vec::new();
        let blocks = self.layers.layers.iter().map(|l| l.block + 1).max().unwrap_or(0);
        for block in 0..blocks {
            let indices: Vec<usize> = (0..self.layers.layers.len()).filter(|&i| self.layers.layers[i].block == block).collect();
            let mut taps: BTreeMap<String, InputStatistics> = BTreeMap::new();
            for &i in &indices {
                let tap = &self.layers.layers[i].input;
                if !taps.contains_key(tap) {
                    taps.insert(tap.clone(), mixture_statistics(&self.languages, shares, block, tap).map_err(CalibrationError::from)?);
                }
            }
            let results = indices
                .par_iter()
                .map(|&i| {
                    let layer = &self.layers.layers[i];
                    let weight = &self.layers.weights[i];
                    let pruned = self.method.prune(&layer.name, weight, taps.get(&layer.input), self.target)?;
                    let new = match pruned.new_weights {
                        Some(w) => w,
                        None => {
                            let mut data = weight.data().to_vec();
                            pruned.mask.apply(&mut data)?;
                            data
                        }
                    };
                    let change = ColumnGram::of_change(weight.data(), &new, weight.out_features(), weight.in_features());
                    let errors: Vec<f64> = target_statistics(&self.targets, layer)
                        .iter()
                        .zip(&self.layers.energy[i])
                        .map(|(s, &energy)| change.mean_squared_output(s).map_or(f64::NAN, |e| e / energy))
                        .collect();
                    Ok((i, errors, want_overrides.then_some(new)))
                })
                .collect::<Result<Vec<_>, PruneError>>()
                .map_err(CalibrationError::from)?;
            for (i, errors, new) in results {
                for (t, e) in errors.iter().enumerate() {
                    if e.is_finite() {
                        sums[t] += e;
                        counted[t] += 1;
                    }
                }
                if let Some(new) = new {
                    overrides.push(self.store.override_of(&self.layers.layers[i], new));
                }
            }
        }
        Ok((sums.iter().zip(&counted).map(|(s, &c)| s / c.max(1) as f64).collect(), overrides))
    }
}

/// A calibration's label: a language code for a single language, else `mix:<lang>=<w>+..`
/// (no commas, so it stays one CSV cell).
fn mixture_label(candidates: &[String], shares: &[usize]) -> String {
    let n: usize = shares.iter().sum();
    let parts: Vec<(usize, &String)> = shares.iter().copied().zip(candidates).filter(|(s, _)| *s > 0).collect();
    if parts.len() == 1 {
        return parts[0].1.clone();
    }
    let body: Vec<String> = parts.iter().map(|(s, c)| format!("{c}={:.3}", *s as f64 / n.max(1) as f64)).collect();
    format!("mix:{}", body.join("+"))
}

fn by_language<T: Copy>(names: &[String], values: &[T]) -> BTreeMap<String, T> {
    names.iter().cloned().zip(values.iter().copied()).collect()
}

/// Per-target bits per byte of scored sets.
fn bpb_of(scores: &[LanguageScore]) -> BitsPerByte {
    scores.iter().map(|s| (s.language.clone(), s.bits_per_byte())).collect()
}

fn tokens_of(scores: &[LanguageScore]) -> usize {
    scores.iter().map(|s| s.tokens()).sum()
}

/// The objective on text: each target's bits per byte relative to the dense model's.
fn dev_score(objective: Objective, targets: &[String], bpb: &BitsPerByte, dense: &BitsPerByte) -> f64 {
    let ratios: Vec<f64> = targets.iter().map(|t| bpb[t] / dense[t]).collect();
    objective.score(&ratios)
}

/// Per-document bits per byte by document id.
fn document_bpb(score: &LanguageScore) -> BTreeMap<String, f64> {
    score.documents.iter().map(|d| (d.id.clone(), d.nll / (d.bytes.max(1) as f64 * std::f64::consts::LN_2))).collect()
}

/// `first - second` on each target's documents, Holm-adjusted over the targets.
fn compare_on_targets(
    names: (&str, &str),
    first: &[LanguageScore],
    second: &[LanguageScore],
    config: &ComparisonConfig,
    alpha: Alpha,
) -> Result<Vec<TestComparison>, WorkflowError> {
    let refused = |e: crate::stats::StatsError| WorkflowError::Refused(format!("{} vs {}: {e}", names.0, names.1));
    let mut rows = Vec::new();
    for (a, b) in first.iter().zip(second) {
        let (da, db) = (document_bpb(a), document_bpb(b));
        let (x, y): (Vec<f64>, Vec<f64>) = da.iter().filter_map(|(id, &v)| db.get(id).map(|&w| (v, w))).unzip();
        let pairs = PairedSamples::new(names.0, x, names.1, y).map_err(refused)?;
        let c = compare_paired(&pairs, config);
        rows.push(TestComparison {
            target: a.language.clone(),
            first: names.0.to_string(),
            second: names.1.to_string(),
            documents: c.n,
            mean_first: c.mean_first,
            mean_second: c.mean_second,
            mean_difference: c.mean_difference,
            ci_lower: c.bootstrap_lower,
            ci_upper: c.bootstrap_upper,
            permutation_p: c.permutation_p,
            adjusted_p: c.permutation_p,
            first_better: false,
        });
    }
    let p = PValues::new("permutation p", rows.iter().map(|r| r.permutation_p).collect()).map_err(refused)?;
    let adjusted = holm(&p, alpha);
    for (r, (&q, &reject)) in rows.iter_mut().zip(adjusted.adjusted.iter().zip(&adjusted.reject)) {
        r.adjusted_p = q;
        r.first_better = reject && r.mean_difference < 0.0;
    }
    Ok(rows)
}

/// Each target's evaluation documents, split into the development and test halves.
fn evaluation_halves(opts: &AdviseOptions, targets: &[String]) -> Result<(Vec<TextSet>, Vec<TextSet>), WorkflowError> {
    let registry = crate::eval::registry(opts.flores.as_deref());
    // Twice the limit and a margin, so both halves can fill up without reading a whole large source.
    let read_limit = opts.limit.map(|l| 2 * l + 64);
    let sets = crate::eval::evaluation_sets_limited(targets, opts.source.as_deref(), &registry, read_limit)?;
    let mut dev = Vec::new();
    let mut test = Vec::new();
    for set in sets {
        let (d, t): (Vec<_>, Vec<_>) = set.documents.iter().cloned().partition(|(id, _)| is_development_document(id));
        let take = |mut docs: Vec<(String, String)>| {
            docs.truncate(opts.limit.unwrap_or(usize::MAX));
            docs
        };
        let (d, t) = (take(d), take(t));
        if d.len() < 2 || t.len() < 2 {
            return Err(WorkflowError::Refused(format!(
                "{} has {} development and {} test documents in its evaluation split; paired tests need at least 2 in each: \
                 give a source with more text (--source) or a larger --limit",
                set.language,
                d.len(),
                t.len()
            )));
        }
        dev.push(TextSet { documents: d, ..set.clone() });
        test.push(TextSet { documents: t, ..set });
    }
    Ok((dev, test))
}

fn parse_languages(codes: &[String]) -> Result<Vec<String>, WorkflowError> {
    let mut out: Vec<String> = Vec::new();
    for c in codes {
        let code = Language::parse(c)?.flores_code().to_string();
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

fn score(
    model: &ModelDir,
    runtime: &RuntimeOptions,
    overrides: &[WeightOverride],
    sets: &[TextSet],
    window: WindowOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<LanguageScore>, WorkflowError> {
    let mut scorer = Scorer::load(model, runtime, overrides)?;
    Ok(score_sets(&mut scorer, sets, None, window, progress)?)
}

pub fn advise(opts: &AdviseOptions, progress: &mut dyn Progress) -> Result<Advice, WorkflowError> {
    if !matches!(opts.method, Method::Wanda | Method::SparseGpt(_)) {
        return Err(WorkflowError::Refused(format!(
            "--method {}: advise mixes calibration statistics, which works for wanda and sparsegpt only",
            opts.method.name()
        )));
    }
    if opts.targets.is_empty() {
        return Err(WorkflowError::Refused("--targets is empty; give the languages the pruned model will serve".into()));
    }
    let target = SparsityTarget::new(opts.sparsity, opts.pattern).map_err(|e| WorkflowError::Refused(e.to_string()))?;
    let targets = parse_languages(&opts.targets)?;
    let mut candidates = parse_languages(&opts.candidates)?;
    if candidates.is_empty() {
        candidates = parse_languages(&[targets.clone(), vec![ENGLISH.to_string()]].concat())?;
    }
    // Everything calibrated once: candidates, then the baselines (targets, English) not among them.
    let mut languages = candidates.clone();
    for l in targets.iter().chain(std::iter::once(&ENGLISH.to_string())) {
        if !languages.contains(l) {
            languages.push(l.clone());
        }
    }
    let gram_for = |l: &str| matches!(opts.method, Method::SparseGpt(_)) || targets.iter().any(|t| t == l);

    let model = ModelDir::open(&opts.model)?;
    let (dev_sets, test_sets) = evaluation_halves(opts, &targets)?;
    let seqlen = opts.seqlen.min(model.card.max_positions);
    let registry = crate::eval::registry(opts.flores.as_deref());
    let tokenizer = model.tokenizer()?;
    let start = model.calibration_start_token()?;
    let mut cost = Cost::default();

    // 1. One one-shot calibration pass per language.
    let t0 = Instant::now();
    let mut statistics = Vec::new();
    progress.stage("calibration statistics", languages.len() as u64);
    for (i, code) in languages.iter().enumerate() {
        progress.detail(code);
        progress.note(&format!("calibrating {code} (one-shot statistics)"));
        let spec = CalibrationSpec {
            languages: vec![Language::parse(code)?],
            mix: Mix::Even,
            samples: opts.samples,
            seqlen,
            seed: opts.seed,
            source: opts.calib_source.clone(),
        };
        let set = CalibrationSet::draw(&spec, &registry, &tokenizer, start)?;
        cost.calibration_tokens += set.tokens();
        statistics.push(language_statistics(&model, &set, gram_for(code), opts.batch, &opts.runtime)?);
        progress.advance(i as u64 + 1);
    }
    progress.finish();
    cost.calibration_passes = languages.len();
    cost.statistics_s = t0.elapsed().as_secs_f64();
    let stats_of = |code: &str| statistics.iter().find(|s| s.language == code).expect("calibrated");

    // 2. Weights, energies, and the proxy.
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let target_stats: Vec<&LanguageStatistics> = targets.iter().map(|t| stats_of(t)).collect();
    let layers = Layers::load(&model, &store, &target_stats)?;
    let pruning = Pruning {
        method: opts.method,
        target,
        languages: candidates.iter().map(|c| stats_of(c)).collect(),
        targets: target_stats.clone(),
        layers: &layers,
        store: &store,
    };

    // 3. The search.
    let t0 = Instant::now();
    progress.stage("mixture search (proxy)", opts.budget as u64);
    let mut done = 0;
    let searched = search_mixtures(candidates.len(), opts.samples, opts.objective, opts.budget, |shares| {
        done += 1;
        progress.detail(&mixture_label(&candidates, shares));
        let errors = pruning.prune(shares, false).map(|(e, _)| e);
        progress.advance(done);
        errors
    })?;
    progress.finish();
    cost.proxy_evaluations = searched.len();
    cost.search_s = t0.elapsed().as_secs_f64();
    progress.note(&format!("searched {} mixtures in {:.0} s", searched.len(), cost.search_s));

    // 4. Validation on the development half: the best few mixtures and every single language.
    let t0 = Instant::now();
    let window = WindowOptions { context: WindowOptions::default().context.min(model.card.max_positions), ..WindowOptions::default() };
    let dense_dev = score(&model, &opts.runtime, &[], &dev_sets, window, progress)?;
    cost.dev_tokens += tokens_of(&dense_dev);
    let dense_dev_bpb = bpb_of(&dense_dev);
    // Single-language calibrations of the baselines that are not candidates are pruned from
    // their own statistics.
    let mut to_validate: Vec<(String, Vec<usize>, Option<String>)> = Vec::new();
    for m in searched.iter().filter(|m| m.single_language().is_none()).take(opts.validate) {
        to_validate.push((mixture_label(&candidates, &m.shares), m.shares.clone(), None));
    }
    for code in &languages {
        match candidates.iter().position(|c| c == code) {
            Some(k) => {
                let mut shares = vec![0; candidates.len()];
                shares[k] = opts.samples;
                to_validate.push((code.clone(), shares, None));
            }
            None => to_validate.push((code.clone(), vec![opts.samples], Some(code.clone()))),
        }
    }
    let mut validated: BTreeMap<String, (Vec<usize>, Vec<f64>, BitsPerByte)> = BTreeMap::new();
    let mut overrides_of: BTreeMap<String, Vec<WeightOverride>> = BTreeMap::new();
    for (label, shares, own) in &to_validate {
        progress.note(&format!("validating {label}"));
        let (errors, overrides) = match own {
            None => pruning.prune(shares, true)?,
            Some(code) => Pruning { languages: vec![stats_of(code)], ..pruning_clone(&pruning) }.prune(shares, true)?,
        };
        let scores = score(&model, &opts.runtime, &overrides, &dev_sets, window, progress)?;
        cost.dev_tokens += tokens_of(&scores);
        validated.insert(label.clone(), (shares.clone(), errors, bpb_of(&scores)));
        overrides_of.insert(label.clone(), overrides);
    }
    cost.validation_s = t0.elapsed().as_secs_f64();
    let candidates_only: Vec<&String> = to_validate.iter().filter(|(_, _, own)| own.is_none()).map(|(label, _, _)| label).collect();
    let best_label = candidates_only
        .iter()
        .min_by(|a, b| {
            let sa = dev_score(opts.objective, &targets, &validated[**a].2, &dense_dev_bpb);
            let sb = dev_score(opts.objective, &targets, &validated[**b].2, &dense_dev_bpb);
            sa.total_cmp(&sb)
        })
        .map(|l| (*l).clone())
        .ok_or_else(|| WorkflowError::Refused("nothing was validated; raise --budget".into()))?;
    let (best_shares, best_errors, best_dev) = validated[&best_label].clone();
    let n: usize = best_shares.iter().sum();
    let recommended = Recommendation {
        calibration: best_label.clone(),
        weights: candidates.iter().cloned().zip(best_shares.iter().map(|&s| s as f64 / n.max(1) as f64)).collect(),
        shares: by_language(&candidates, &best_shares),
        proxy: by_language(&targets, &best_errors),
        dev_score: dev_score(opts.objective, &targets, &best_dev, &dense_dev_bpb),
        dev_bpb: best_dev,
    };

    // 5. Test: the recommendation, English-only and each target-only calibration.
    let t0 = Instant::now();
    let dense_test = score(&model, &opts.runtime, &[], &test_sets, window, progress)?;
    cost.test_tokens += tokens_of(&dense_test);
    let mut test_scores: BTreeMap<String, Vec<LanguageScore>> = BTreeMap::new();
    let mut test_names: Vec<(String, String)> = vec![("recommended".into(), best_label.clone())];
    for code in std::iter::once(&ENGLISH.to_string()).chain(&targets) {
        if !test_names.iter().any(|(name, _)| name == code) {
            test_names.push((code.clone(), code.clone()));
        }
    }
    let mut scored: BTreeMap<&String, Vec<LanguageScore>> = BTreeMap::new();
    for (name, label) in &test_names {
        // A recommendation that is one language's calibration is scored once.
        let scores = match scored.get(label) {
            Some(scores) => scores.clone(),
            None => {
                progress.note(&format!("test: {name}"));
                let scores = score(&model, &opts.runtime, &overrides_of[label], &test_sets, window, progress)?;
                cost.test_tokens += tokens_of(&scores);
                scored.insert(label, scores.clone());
                scores
            }
        };
        test_scores.insert(name.clone(), scores);
    }
    let mut comparisons = Vec::new();
    // A baseline that is the recommendation itself is not compared with it.
    for (name, label) in test_names.iter().skip(1).filter(|(_, label)| *label != best_label) {
        comparisons.extend(compare_on_targets(
            ("recommended", name),
            &test_scores["recommended"],
            &test_scores[label],
            &opts.comparison,
            opts.alpha,
        )?);
    }
    let beats_english = targets
        .iter()
        .map(|t| (t.clone(), comparisons.iter().any(|c| c.second == ENGLISH && &c.target == t && c.first_better)))
        .collect::<BTreeMap<_, _>>();
    cost.test_s = t0.elapsed().as_secs_f64();

    // 6. Sequential confirmation with the mixture.
    let t0 = Instant::now();
    let confirmation = if opts.confirm {
        let chosen: Vec<usize> = (0..candidates.len()).filter(|&k| best_shares[k] > 0).collect();
        let weights: Vec<f64> = chosen.iter().map(|&k| best_shares[k] as f64).collect();
        let spec = CalibrationSpec {
            languages: chosen.iter().map(|&k| Language::parse(&candidates[k])).collect::<Result<_, _>>()?,
            mix: Mix::Weights(weights.clone()),
            samples: opts.samples,
            seqlen,
            seed: opts.seed,
            source: opts.calib_source.clone(),
        };
        let set = CalibrationSet::draw(&spec, &registry, &tokenizer, start)?;
        cost.calibration_tokens += set.tokens();
        cost.calibration_passes += 1;
        progress.note("confirming with a sequential calibration on the mixture");
        let capture = CaptureOptions { mode: CaptureMode::Sequential, batch: opts.batch, runtime: opts.runtime.clone(), gram: false };
        let pruned = prune_model(&model, &opts.method, target, &LayerFilter::default(), Some(&set), &capture, |_, _| {})?;
        let scores = score(&model, &opts.runtime, &pruned.overrides, &test_sets, window, progress)?;
        cost.confirmation_tokens = tokens_of(&scores);
        let comparisons =
            compare_on_targets(("sequential", "recommended"), &scores, &test_scores["recommended"], &opts.comparison, opts.alpha)?;
        Some(Confirmation {
            calib: chosen.iter().map(|&k| candidates[k].clone()).collect(),
            mix: format!("weights:{}", weights.iter().map(|w| format!("{w}")).collect::<Vec<_>>().join(",")),
            test_bpb: bpb_of(&scores),
            comparisons,
        })
    } else {
        None
    };
    cost.confirmation_s = t0.elapsed().as_secs_f64();

    // How well the proxy ranked the validated calibrations (those it can score: the candidates').
    let ranked: Vec<&String> = candidates_only.clone();
    let per_target = targets
        .iter()
        .enumerate()
        .map(|(t, name)| {
            let proxy: Vec<f64> = ranked.iter().map(|l| validated[*l].1[t]).collect();
            let dev: Vec<f64> = ranked.iter().map(|l| validated[*l].2[name]).collect();
            (name.clone(), spearman(&proxy, &dev))
        })
        .collect();
    let proxy_scores: Vec<f64> = ranked.iter().map(|l| opts.objective.score(&validated[*l].1)).collect();
    let dev_scores: Vec<f64> = ranked.iter().map(|l| dev_score(opts.objective, &targets, &validated[*l].2, &dense_dev_bpb)).collect();
    let agreement = Agreement { calibrations: ranked.len(), per_target, objective: spearman(&proxy_scores, &dev_scores) };

    let search = searched
        .iter()
        .map(|m: &EvaluatedMixture| {
            let label = mixture_label(&candidates, &m.shares);
            let dev = validated.get(&label).map(|v| v.2.clone());
            SearchPoint {
                dev_score: dev.as_ref().map(|d| dev_score(opts.objective, &targets, d, &dense_dev_bpb)),
                dev_bpb: dev,
                weights: by_language(&candidates, &m.weights()),
                shares: by_language(&candidates, &m.shares),
                proxy: by_language(&targets, &m.errors),
                proxy_score: m.score,
                calibration: label,
            }
        })
        .collect();
    Ok(Advice {
        model: model.identity(),
        method: opts.method.name().to_string(),
        sparsity: target.to_string(),
        objective: opts.objective,
        samples: opts.samples,
        seqlen,
        seed: opts.seed,
        targets,
        candidates,
        recommended,
        search,
        dense_dev_bpb,
        dense_test_bpb: bpb_of(&dense_test),
        test_documents: dense_test.iter().map(|s| (s.language.clone(), s.documents.iter().map(|d| d.id.clone()).collect())).collect(),
        test_bpb: test_scores.iter().map(|(k, v)| (k.clone(), bpb_of(v))).collect(),
        comparisons,
        beats_english,
        agreement,
        confirmation,
        cost,
        split_rule: "each target's evaluation split, halved by the lowest bit of the FNV-1a hash of the document id \
                     (even: development, odd: test)"
            .into(),
        confidence_level: opts.comparison.level.value(),
        alpha: opts.alpha.value(),
    })
}

fn pruning_clone<'a>(p: &Pruning<'a>) -> Pruning<'a> {
    Pruning {
        method: p.method,
        target: p.target,
        languages: p.languages.clone(),
        targets: p.targets.clone(),
        layers: p.layers,
        store: p.store,
    }
}

/// `advice.json`, `advice.csv` (per calibration and target: bits per byte on both halves, the
/// proxy, and the test comparison with the recommendation) and `search.csv` (every searched
/// mixture), written atomically into `out`.
pub fn write_advice(advice: &Advice, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    std::fs::create_dir_all(out).map_err(|source| WorkflowError::Read { path: out.to_path_buf(), source })?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, WorkflowError> {
        let path = out.join(name);
        crate::util::write_atomic(&path, bytes).map_err(|source| WorkflowError::Read { path: path.clone(), source })?;
        Ok(path)
    };
    let json = serde_json::to_vec_pretty(advice).map_err(|e| WorkflowError::Refused(format!("cannot encode advice.json: {e}")))?;
    let mut paths = vec![write("advice.json", &json)?];

    let mut csv = String::from("calibration,weights,target,dev_bpb,test_bpb,proxy,vs_recommended_diff,vs_recommended_ci_lower,vs_recommended_ci_upper,vs_recommended_adjusted_p\n");
    let fmt = |x: Option<f64>| x.map(|v| format!("{v:.6}")).unwrap_or_default();
    /// One calibration's rows of `advice.csv`.
    struct CsvRow<'a> {
        name: String,
        weights: String,
        dev: Option<&'a BitsPerByte>,
        test: Option<&'a BitsPerByte>,
        proxy: Option<&'a BTreeMap<String, f64>>,
    }
    let weights_text =
        |w: &BTreeMap<String, f64>| w.iter().filter(|(_, &v)| v > 0.0).map(|(k, v)| format!("{k}:{v:.4}")).collect::<Vec<_>>().join(" ");
    let mut rows = vec![
        CsvRow {
            name: "dense".into(),
            weights: String::new(),
            dev: Some(&advice.dense_dev_bpb),
            test: Some(&advice.dense_test_bpb),
            proxy: None,
        },
        CsvRow {
            name: "recommended".into(),
            weights: weights_text(&advice.recommended.weights),
            dev: Some(&advice.recommended.dev_bpb),
            test: advice.test_bpb.get("recommended"),
            proxy: Some(&advice.recommended.proxy),
        },
    ];
    for p in advice.search.iter().filter(|p| p.dev_bpb.is_some()) {
        rows.push(CsvRow {
            name: p.calibration.clone(),
            weights: weights_text(&p.weights),
            dev: p.dev_bpb.as_ref(),
            test: advice.test_bpb.get(&p.calibration),
            proxy: Some(&p.proxy),
        });
    }
    for (name, bpb) in advice.test_bpb.iter().filter(|(k, _)| *k != "recommended" && !advice.search.iter().any(|p| &p.calibration == *k)) {
        rows.push(CsvRow { name: name.clone(), weights: format!("{name}:1.0000"), dev: None, test: Some(bpb), proxy: None });
    }
    for CsvRow { name, weights, dev, test, proxy } in rows {
        for t in &advice.targets {
            let c = advice.comparisons.iter().find(|c| c.second == name && &c.target == t);
            csv.push_str(&format!(
                "{name},{weights},{t},{},{},{},{},{},{},{}\n",
                fmt(dev.and_then(|d| d.get(t).copied())),
                fmt(test.and_then(|d| d.get(t).copied())),
                fmt(proxy.and_then(|d| d.get(t).copied())),
                fmt(c.map(|c| -c.mean_difference)),
                fmt(c.map(|c| -c.ci_upper)),
                fmt(c.map(|c| -c.ci_lower)),
                fmt(c.map(|c| c.adjusted_p)),
            ));
        }
    }
    paths.push(write("advice.csv", csv.as_bytes())?);

    let mut search = String::from("calibration,");
    search.push_str(&advice.candidates.iter().map(|c| format!("w_{c}")).collect::<Vec<_>>().join(","));
    search.push(',');
    search.push_str(&advice.targets.iter().map(|t| format!("proxy_{t}")).collect::<Vec<_>>().join(","));
    search.push_str(",proxy_score,dev_score\n");
    for p in &advice.search {
        let mut line = vec![p.calibration.clone()];
        line.extend(advice.candidates.iter().map(|c| format!("{:.4}", p.weights[c])));
        line.extend(advice.targets.iter().map(|t| format!("{:.6}", p.proxy[t])));
        line.push(format!("{:.6}", p.proxy_score));
        line.push(fmt(p.dev_score));
        search.push_str(&format!("{}\n", line.join(",")));
    }
    paths.push(write("search.csv", search.as_bytes())?);
    Ok(paths)
}
