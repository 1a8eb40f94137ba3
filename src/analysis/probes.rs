//! What linear read-outs and clusters find in sentence states: a language-identity probe, a
//! cross-lingual topic probe, k-means clusters scored by adjusted Rand index, and 2-D PCA
//! pictures, on the mean-pooled states of parallel FLORES/SIB-200 sentences ([`super::probe`]).
//!
//! * **Split by sentence id.** The FLORES ids are shuffled with a fixed seed and a share of them
//!   is held apart for testing; every translation of a held-apart sentence is a test row, so no
//!   probe ever sees a translation of a sentence it is tested on.
//! * **Standardised channels.** Every read-out first centres each channel and divides it by its
//!   standard deviation, both taken on the training rows (StandardScaler's population variance).
//!   Gemma's residual stream has a few channels far larger than the rest; on the raw states the
//!   logistic loss is badly scaled and k-means and PCA see little but those channels. A channel
//!   with no spread keeps scale 1.
//! * **Probes** are multinomial logistic regression (linfa-logistic, L-BFGS) with the L2 penalty
//!   `alpha / 2 ||W||^2` on a *summed* log-loss, i.e. scikit-learn's `C = 1 / alpha`.
//!   Accuracy has Wilson's 95% interval over the test rows.
//! * **Clusters**: k-means (linfa-clustering, k-means++ start, best of several runs, fixed seed)
//!   with k = the number of languages and k = the number of topics; each partition is scored
//!   against the language labels and the topic labels with the adjusted Rand index (Hubert &
//!   Arabie 1985): 1 = the clusters are the labels, 0 = what random labels would give.
//! * **PCA pictures** (linfa-reduction): the axes are fitted on the *dense* model's standardised
//!   states at a block and every model is projected on those axes with the dense model's
//!   standardisation, so dense and pruned share coordinates.
//!
//! **Why linfa-reduction's PCA gave NaN on Gemma states, and why standardising fixes it.**
//! linfa-reduction 0.8 computes PCA as a truncated SVD by LOBPCG (linfa-linalg 0.2.1) on the
//! Gram matrix of the centred data. Its stopping test is *absolute*: a Ritz vector is done when
//! its residual norm is below precision^2 = 1e-10. Gemma 3's block-9 states reach |x| ~ 7e3
//! (a few massive channels), so sigma_1^2 ~ 1.7e7 and rounding alone leaves residuals of
//! ~eps * sigma_1^2 ~ 4e-9: the test can never pass. LOBPCG keeps iterating on converged
//! vectors whose residual block is rounding noise, the Gram matrix of [X, R, P] turns singular,
//! the generalized eigen-solve's `1 / sqrt(max(mu, 1e-10))` amplifies the noise until NaN
//! appears, and sorting the eigenvalues panics ("NaN values in array"). It is the scale, not
//! the conditioning: the same states divided by 10 (same condition number) converge
//! (tests/probes_gemma.rs pins both). Standardised channels have variance 1, so
//! sigma_1^2 ~ n * d * share ~ 5e3 and rounding stays far below the tolerance; they also keep
//! the picture from being nothing but the massive channels. The call is still guarded: a panic
//! inside linfa, or a non-finite result, is returned as an [`AnalysisError`] naming the block.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::KMeans;
use linfa_logistic::MultiLogisticRegression;
use linfa_reduction::Pca;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::AnalysisError;
use crate::stats::{wilson_interval, ConfidenceLevel};

/// The L2 weight of the probes' penalty (scikit-learn's `C = 1 / alpha = 1`, its default).
pub const PROBE_ALPHA: f64 = 1.0;
/// L-BFGS stops when the gradient norm is below this, or after [`PROBE_MAX_ITERATIONS`].
const PROBE_GRADIENT_TOLERANCE: f64 = 1e-5;
const PROBE_MAX_ITERATIONS: u64 = 500;
/// k-means restarts (the best inertia is kept) and iteration cap.
const KMEANS_RUNS: usize = 10;
const KMEANS_MAX_ITERATIONS: u64 = 300;

/// One sentence state with everything a probe reads about it.
#[derive(Clone, Debug)]
pub struct LabelledStates {
    pub languages: Vec<String>,
    /// FLORES ids, shared by translations.
    pub ids: Vec<String>,
    /// SIB-200 topic of each row.
    pub topics: Vec<String>,
    pub states: Array2<f64>,
}

impl LabelledStates {
    pub fn new(languages: Vec<String>, ids: Vec<String>, topics: Vec<String>, states: Array2<f64>) -> Result<Self, AnalysisError> {
        let n = states.nrows();
        if languages.len() != n || ids.len() != n || topics.len() != n {
            return Err(AnalysisError::invalid("probe states", "one language, id and topic per row are needed"));
        }
        if states.iter().any(|x| !x.is_finite()) {
            return Err(AnalysisError::invalid("probe states", "some values are NaN or infinite; the model's hidden states overflowed"));
        }
        Ok(LabelledStates { languages, ids, topics, states })
    }

    fn rows_where(&self, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.states.nrows()).filter(|&i| keep(i)).collect()
    }
}

/// The ids held apart for testing: a seeded shuffle of the distinct ids, the first
/// `round(share * n)` of it (at least one, and at least one left for training).
pub fn test_ids(ids: &[String], share: f64, seed: u64) -> Result<BTreeSet<String>, AnalysisError> {
    let mut distinct: Vec<&String> = ids.iter().collect::<BTreeSet<_>>().into_iter().collect();
    if distinct.len() < 2 || !(share > 0.0 && share < 1.0) {
        return Err(AnalysisError::invalid(
            "probe split",
            format!(
                "cannot hold apart a share {share} of {} sentence ids; give at least 2 sentences and a share in (0, 1)",
                distinct.len()
            ),
        ));
    }
    distinct.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let n_test = ((share * distinct.len() as f64).round() as usize).clamp(1, distinct.len() - 1);
    Ok(distinct[..n_test].iter().map(|s| s.to_string()).collect())
}

/// Per-channel centring and scaling, fitted on training rows.
#[derive(Clone, Debug)]
pub struct Standardiser {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

impl Standardiser {
    /// Mean and population standard deviation of each column; a column with no spread keeps
    /// scale 1 (as scikit-learn's StandardScaler does).
    pub fn fit(x: ArrayView2<f64>) -> Standardiser {
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
        let scale = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 });
        Standardiser { mean, scale }
    }

    pub fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &self.mean) / &self.scale
    }
}

/// Class indices of `labels` (sorted names) and the names.
fn encode(labels: &[&String]) -> (Vec<usize>, Vec<String>) {
    let names: Vec<String> = labels.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
    let codes = labels.iter().map(|l| names.iter().position(|n| n == *l).expect("listed")).collect();
    (codes, names)
}

/// Fits a multinomial logistic probe on standardised `train` rows and predicts `test`.
pub fn fit_predict(train: ArrayView2<f64>, labels: &[usize], test: ArrayView2<f64>) -> Result<Vec<usize>, AnalysisError> {
    if labels.iter().collect::<BTreeSet<_>>().len() < 2 {
        return Err(AnalysisError::invalid("probe training rows", "only one class among them; give sentences of at least two classes"));
    }
    let scaler = Standardiser::fit(train);
    let data = DatasetBase::new(scaler.apply(train), Array1::from(labels.to_vec()));
    let model = MultiLogisticRegression::default()
        .alpha(PROBE_ALPHA)
        .gradient_tolerance(PROBE_GRADIENT_TOLERANCE)
        .max_iterations(PROBE_MAX_ITERATIONS)
        .fit(&data)
        .map_err(|e| AnalysisError::invalid("logistic probe", format!("linfa-logistic could not fit: {e}")))?;
    Ok(model.predict(&scaler.apply(test)).to_vec())
}

/// Accuracy of a probe on one test set.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeAccuracy {
    pub accuracy: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n_test: usize,
}

fn accuracy(predicted: &[usize], truth: &[usize]) -> Result<ProbeAccuracy, AnalysisError> {
    let n = truth.len();
    let hits = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    let acc = hits as f64 / n.max(1) as f64;
    let ci = wilson_interval(acc, n, ConfidenceLevel::NINETY_FIVE_PERCENT)?;
    Ok(ProbeAccuracy { accuracy: acc, ci_low: ci.lower(), ci_high: ci.upper(), n_test: n })
}

/// Language identity from a state: trained on the training ids in every language, tested on the
/// held-apart ids in every language. Chance is 1 / languages.
pub fn language_probe(s: &LabelledStates, held: &BTreeSet<String>) -> Result<ProbeAccuracy, AnalysisError> {
    let train = s.rows_where(|i| !held.contains(&s.ids[i]));
    let test = s.rows_where(|i| held.contains(&s.ids[i]));
    let (codes, _) = encode(&s.languages.iter().collect::<Vec<_>>());
    let pick = |rows: &[usize]| rows.iter().map(|&i| codes[i]).collect::<Vec<_>>();
    let predicted = fit_predict(s.states.select(Axis(0), &train).view(), &pick(&train), s.states.select(Axis(0), &test).view())?;
    accuracy(&predicted, &pick(&test))
}

/// Topic accuracy of a probe trained on one language, tested on one language.
#[derive(Clone, Debug, Serialize)]
pub struct TopicTransfer {
    pub train_language: String,
    pub test_language: String,
    pub accuracy: ProbeAccuracy,
}

/// A topic probe per training language (its training ids), tested on the held-apart ids in
/// every language, the training language itself included (the in-language reference).
pub fn topic_transfer(s: &LabelledStates, held: &BTreeSet<String>) -> Result<Vec<TopicTransfer>, AnalysisError> {
    let (codes, _) = encode(&s.topics.iter().collect::<Vec<_>>());
    let languages: Vec<String> = s.languages.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let mut out = Vec::new();
    for train_language in &languages {
        let train = s.rows_where(|i| &s.languages[i] == train_language && !held.contains(&s.ids[i]));
        let labels: Vec<usize> = train.iter().map(|&i| codes[i]).collect();
        let x = s.states.select(Axis(0), &train);
        let scaler = Standardiser::fit(x.view());
        if labels.iter().collect::<BTreeSet<_>>().len() < 2 {
            return Err(AnalysisError::invalid(
                format!("topic probe on {train_language}"),
                "its training sentences have one topic only; give more sentences",
            ));
        }
        let data = DatasetBase::new(scaler.apply(x.view()), Array1::from(labels));
        let model = MultiLogisticRegression::default()
            .alpha(PROBE_ALPHA)
            .gradient_tolerance(PROBE_GRADIENT_TOLERANCE)
            .max_iterations(PROBE_MAX_ITERATIONS)
            .fit(&data)
            .map_err(|e| {
                AnalysisError::invalid(format!("topic probe on {train_language}"), format!("linfa-logistic could not fit: {e}"))
            })?;
        for test_language in &languages {
            let test = s.rows_where(|i| &s.languages[i] == test_language && held.contains(&s.ids[i]));
            let predicted = model.predict(&scaler.apply(s.states.select(Axis(0), &test).view())).to_vec();
            let truth: Vec<usize> = test.iter().map(|&i| codes[i]).collect();
            out.push(TopicTransfer {
                train_language: train_language.clone(),
                test_language: test_language.clone(),
                accuracy: accuracy(&predicted, &truth)?,
            });
        }
    }
    Ok(out)
}

/// Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985): the Rand
/// index corrected for the agreement expected between random partitions with the same sizes.
/// Two partitions that are both a single cluster (or both all singletons) agree fully: 1.
pub fn adjusted_rand_index<A: Ord, B: Ord>(a: &[A], b: &[B]) -> f64 {
    let pairs = |n: u64| (n * n.saturating_sub(1)) as f64 / 2.0;
    let mut table: BTreeMap<(&A, &B), u64> = BTreeMap::new();
    let mut rows: BTreeMap<&A, u64> = BTreeMap::new();
    let mut cols: BTreeMap<&B, u64> = BTreeMap::new();
    for (x, y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let index: f64 = table.values().map(|&n| pairs(n)).sum();
    let sum_a: f64 = rows.values().map(|&n| pairs(n)).sum();
    let sum_b: f64 = cols.values().map(|&n| pairs(n)).sum();
    let expected = sum_a * sum_b / pairs(a.len().min(b.len()) as u64).max(f64::MIN_POSITIVE);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// k-means cluster of each row of `x` (standardised here), k clusters, fixed seed.
pub fn kmeans(x: ArrayView2<f64>, k: usize) -> Result<Vec<usize>, AnalysisError> {
    if k < 2 || k > x.nrows() {
        return Err(AnalysisError::invalid("k-means", format!("cannot make {k} clusters of {} sentences", x.nrows())));
    }
    let z = Standardiser::fit(x).apply(x);
    let data = DatasetBase::from(z.clone());
    let model = KMeans::params(k)
        .n_runs(KMEANS_RUNS)
        .max_n_iterations(KMEANS_MAX_ITERATIONS)
        .tolerance(1e-6)
        .fit(&data)
        .map_err(|e| AnalysisError::invalid("k-means", format!("linfa-clustering could not fit: {e}")))?;
    Ok(model.predict(&z).to_vec())
}

/// Adjusted Rand index of one k-means partition against one kind of label.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterAgreement {
    /// `language` or `topic`: what k was set to the number of.
    pub clusters: &'static str,
    pub k: usize,
    /// `language` or `topic`: the labels the partition is scored against.
    pub labels: &'static str,
    pub ari: f64,
}

/// k-means with k = languages and with k = topics, each scored against both label kinds.
pub fn cluster_agreement(s: &LabelledStates) -> Result<Vec<ClusterAgreement>, AnalysisError> {
    let count = |v: &[String]| v.iter().collect::<BTreeSet<_>>().len();
    let mut out = Vec::new();
    for (clusters, k) in [("language", count(&s.languages)), ("topic", count(&s.topics))] {
        let partition = kmeans(s.states.view(), k)?;
        out.push(ClusterAgreement { clusters, k, labels: "language", ari: adjusted_rand_index(&partition, &s.languages) });
        out.push(ClusterAgreement { clusters, k, labels: "topic", ari: adjusted_rand_index(&partition, &s.topics) });
    }
    Ok(out)
}

/// Two PCA axes of standardised states, to project several models' states on.
pub struct PcaAxes {
    scaler: Standardiser,
    pca: Pca<f64>,
    /// Share of the standardised data's total variance on each axis.
    pub explained: Vec<f64>,
}

impl PcaAxes {
    /// Fits the axes on `x` (rows = sentences); `what` names the data in errors.
    pub fn fit(x: ArrayView2<f64>, what: &str) -> Result<PcaAxes, AnalysisError> {
        if x.nrows() < 3 || x.ncols() < 2 {
            return Err(AnalysisError::invalid(
                what,
                format!("PCA needs at least 3 rows and 2 columns, got {} x {}", x.nrows(), x.ncols()),
            ));
        }
        let scaler = Standardiser::fit(x);
        let z = scaler.apply(x);
        let data = DatasetBase::from(z.clone());
        let fitted = catch_unwind(AssertUnwindSafe(|| Pca::params(2).fit(&data)))
            .map_err(|_| {
                AnalysisError::invalid(what, "linfa-reduction's PCA (LOBPCG) did not converge and panicked; probe fewer or other blocks")
            })?
            .map_err(|e| AnalysisError::invalid(what, format!("linfa-reduction's PCA failed: {e}")))?;
        if fitted.components().iter().any(|v| !v.is_finite()) {
            return Err(AnalysisError::invalid(
                what,
                "linfa-reduction's PCA returned NaN axes (LOBPCG did not converge); probe fewer or other blocks",
            ));
        }
        let total: f64 = z.iter().map(|v| v * v).sum();
        let explained = fitted.singular_values().iter().map(|s| if total > 0.0 { s * s / total } else { 0.0 }).collect();
        Ok(PcaAxes { scaler, pca: fitted, explained })
    }

    /// Coordinates of `x`'s rows on the axes, standardised as the fitted data was.
    pub fn project(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let z = self.scaler.apply(x);
        let centred = &z - self.pca.mean();
        centred.dot(&self.pca.components().t())
    }
}

/// `language_probe.csv`: one row per model and block.
#[derive(Clone, Debug, Serialize)]
pub struct LanguageProbeRow {
    pub model: String,
    pub block: usize,
    pub accuracy: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n_test: usize,
}

/// `topic_probe.csv`: one row per model, block and (training, test) language pair.
#[derive(Clone, Debug, Serialize)]
pub struct TopicProbeRow {
    pub model: String,
    pub block: usize,
    pub train_language: String,
    pub test_language: String,
    pub accuracy: f64,
    pub n_test: usize,
}

/// `clusters.csv`: one row per model, block, k and label kind.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterRow {
    pub model: String,
    pub block: usize,
    pub clusters: String,
    pub k: usize,
    pub labels: String,
    pub ari: f64,
}

/// `pca.csv`: one row per model, block and sentence, on the dense model's axes at that block.
#[derive(Clone, Debug, Serialize)]
pub struct PcaRow {
    pub model: String,
    pub block: usize,
    pub language: String,
    pub id: String,
    pub topic: String,
    pub pc1: f64,
    pub pc2: f64,
}

/// Everything the probes find for one model at one block. `axes` are the dense model's at this
/// block (fitted from `states` when `None`, i.e. for the dense model itself).
pub fn probe_block(
    model: &str,
    block: usize,
    states: &LabelledStates,
    held: &BTreeSet<String>,
    axes: Option<&PcaAxes>,
) -> Result<(BlockProbes, Option<PcaAxes>), AnalysisError> {
    let lang = language_probe(states, held)?;
    let language = LanguageProbeRow {
        model: model.to_string(),
        block,
        accuracy: lang.accuracy,
        ci_low: lang.ci_low,
        ci_high: lang.ci_high,
        n_test: lang.n_test,
    };
    let topic = topic_transfer(states, held)?
        .into_iter()
        .map(|t| TopicProbeRow {
            model: model.to_string(),
            block,
            train_language: t.train_language,
            test_language: t.test_language,
            accuracy: t.accuracy.accuracy,
            n_test: t.accuracy.n_test,
        })
        .collect();
    let clusters = cluster_agreement(states)?
        .into_iter()
        .map(|c| ClusterRow { model: model.to_string(), block, clusters: c.clusters.into(), k: c.k, labels: c.labels.into(), ari: c.ari })
        .collect();
    let fitted = match axes {
        Some(_) => None,
        None => Some(PcaAxes::fit(states.states.view(), &format!("PCA of {model} at block {block}"))?),
    };
    let coordinates = axes.or(fitted.as_ref()).expect("fitted or given").project(states.states.view());
    let pca = (0..states.states.nrows())
        .map(|i| PcaRow {
            model: model.to_string(),
            block,
            language: states.languages[i].clone(),
            id: states.ids[i].clone(),
            topic: states.topics[i].clone(),
            pc1: coordinates[(i, 0)],
            pc2: coordinates[(i, 1)],
        })
        .collect();
    Ok((BlockProbes { language, topic, clusters, pca }, fitted))
}

/// The rows of [`probe_block`].
pub struct BlockProbes {
    pub language: LanguageProbeRow,
    pub topic: Vec<TopicProbeRow>,
    pub clusters: Vec<ClusterRow>,
    pub pca: Vec<PcaRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_rand_index_closed_forms() {
        // Identical partitions (up to renaming): 1. One cluster against two halves: 0.
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1, 2], &["a", "a", "b", "b", "c"]), 1.0);
        assert!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 0, 1, 1]).abs() < 1e-12);
        // Hand count for a=[0,0,1,1], b=[0,1,0,1]: index 0, expected 2*2/6, max 2 -> -0.5.
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn split_holds_apart_whole_ids() {
        let ids: Vec<String> = (0..10).flat_map(|i| [i.to_string(), i.to_string()]).collect();
        let held = test_ids(&ids, 0.3, 7).unwrap();
        assert_eq!(held.len(), 3);
        assert_eq!(held, test_ids(&ids, 0.3, 7).unwrap());
        assert!(test_ids(&ids, 1.0, 7).is_err());
    }

    #[test]
    fn pca_on_a_channel_a_million_times_larger_is_finite() {
        // The shape of Gemma's states: one channel 1e6 times the others.
        let x = Array2::from_shape_fn((40, 12), |(i, j)| {
            let v = (0.37 * (i as f64 + 1.0) * (j as f64 + 1.0)).sin();
            if j == 3 {
                v * 1e6
            } else {
                v
            }
        });
        let axes = PcaAxes::fit(x.view(), "test").unwrap();
        let p = axes.project(x.view());
        assert!(p.iter().all(|v| v.is_finite()));
        assert!(axes.explained.iter().all(|e| *e > 0.0 && *e < 1.0));
    }
}
