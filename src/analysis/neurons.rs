//! Language-specific MLP neurons by language activation probability entropy (LAPE).
//!
//! Tang et al. 2024, "Language-Specific Neurons: The Key to Multilingual Capabilities in Large
//! Language Models". For neuron `j` of layer `i` and language `l`, the activation probability
//! `p_{i,j}^l` is the share of language-`l` tokens on which the neuron is active (its activation
//! function's output is positive; for gated GELU/SiLU MLPs that is: gate pre-activation > 0).
//! Normalising `p^l` over languages gives a distribution whose entropy is LAPE: low entropy
//! means the neuron fires for few languages. The method, as in the authors' code:
//! 1. `threshold` = the `filter_percentile` quantile of all probabilities (all neurons, layers
//!    and languages; the k-th smallest with k = round(n * percentile), as `torch.kthvalue`);
//! 2. candidates = neurons with some `p^l > threshold`;
//! 3. selected = the `round(entropy_fraction * all neurons)` candidates of lowest entropy;
//! 4. each selected neuron belongs to every language whose `p^l > threshold`.
//!
//! Counts come from [`super::probe`]; this file is the arithmetic on them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::AnalysisError;

/// Per language: tokens seen, and per (layer, neuron) how many of them activated the neuron.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ActivationCounts {
    pub languages: Vec<String>,
    pub layers: usize,
    pub neurons: usize,
    /// Tokens per language.
    pub tokens: Vec<u64>,
    /// `active[l][layer * neurons + neuron]`.
    pub active: Vec<Vec<u64>>,
}

impl ActivationCounts {
    pub fn new(languages: Vec<String>, layers: usize, neurons: usize) -> Self {
        let n = languages.len();
        ActivationCounts { languages, layers, neurons, tokens: vec![0; n], active: vec![vec![0; layers * neurons]; n] }
    }

    pub fn language_index(&self, language: &str) -> Option<usize> {
        self.languages.iter().position(|l| l == language)
    }

    /// `p[(layer * neurons + neuron) * languages + l]`.
    fn probabilities(&self) -> Result<Vec<f64>, AnalysisError> {
        if let Some(l) = self.tokens.iter().position(|&t| t == 0) {
            return Err(AnalysisError::invalid(
                format!("LAPE counts of {}", self.languages[l]),
                "no tokens were seen for this language; give it some sentences",
            ));
        }
        let k = self.languages.len();
        let mut p = vec![0.0; self.layers * self.neurons * k];
        for (l, counts) in self.active.iter().enumerate() {
            for (cell, &c) in counts.iter().enumerate() {
                p[cell * k + l] = c as f64 / self.tokens[l] as f64;
            }
        }
        Ok(p)
    }
}

/// The method's two knobs; the defaults are the original code's.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct LapeParams {
    /// Quantile of all activation probabilities that a neuron's highest one must clear (0.95).
    pub filter_percentile: f64,
    /// Share of all neurons kept as language-specific, lowest entropy first (0.01).
    pub entropy_fraction: f64,
}

impl Default for LapeParams {
    fn default() -> Self {
        LapeParams { filter_percentile: 0.95, entropy_fraction: 0.01 }
    }
}

impl LapeParams {
    pub fn validated(self) -> Result<Self, AnalysisError> {
        if !(self.filter_percentile > 0.0 && self.filter_percentile < 1.0) {
            return Err(AnalysisError::invalid(
                "--filter-percentile",
                format!("{} is not in (0, 1); the original method uses 0.95", self.filter_percentile),
            ));
        }
        if !(self.entropy_fraction > 0.0 && self.entropy_fraction <= 1.0) {
            return Err(AnalysisError::invalid(
                "--entropy-fraction",
                format!("{} is not in (0, 1]; the original method uses 0.01 to 0.05", self.entropy_fraction),
            ));
        }
        Ok(self)
    }
}

/// One language-specific neuron.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecificNeuron {
    pub layer: usize,
    pub neuron: usize,
    pub entropy: f64,
    /// The languages whose probability clears the threshold.
    pub languages: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LapeResult {
    pub params: LapeParams,
    pub threshold: f64,
    pub candidates: usize,
    pub neurons: Vec<SpecificNeuron>,
}

impl LapeResult {
    /// The (layer, neuron) pairs assigned to `language`.
    pub fn of_language(&self, language: &str) -> BTreeSet<(usize, usize)> {
        self.neurons.iter().filter(|n| n.languages.iter().any(|l| l == language)).map(|n| (n.layer, n.neuron)).collect()
    }
}

/// Entropy (nats) of `probabilities` normalised to sum 1, with 0 ln 0 = 0.
pub fn normalised_entropy(probabilities: &[f64]) -> f64 {
    let total: f64 = probabilities.iter().sum();
    if total <= 0.0 {
        return f64::INFINITY;
    }
    probabilities
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| {
            let q = p / total;
            -q * q.ln()
        })
        .sum()
}

/// The k-th smallest value (1-based k = round(n * quantile), clamped to 1..=n).
fn kth_smallest(values: &[f64], quantile: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = ((sorted.len() as f64 * quantile).round() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// Finds the language-specific neurons in `counts` (see the module documentation).
pub fn lape(counts: &ActivationCounts, params: LapeParams) -> Result<LapeResult, AnalysisError> {
    let params = params.validated()?;
    let k = counts.languages.len();
    if k < 2 {
        return Err(AnalysisError::invalid("LAPE", "needs at least two languages to tell them apart"));
    }
    let p = counts.probabilities()?;
    let threshold = kth_smallest(&p, params.filter_percentile);
    let cells = counts.layers * counts.neurons;
    let mut candidates: Vec<(f64, usize)> = (0..cells)
        .filter(|&c| p[c * k..(c + 1) * k].iter().any(|&x| x > threshold))
        .map(|c| (normalised_entropy(&p[c * k..(c + 1) * k]), c))
        .collect();
    let n_candidates = candidates.len();
    // Ties in entropy are broken by position, so the result is deterministic.
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let keep = (cells as f64 * params.entropy_fraction).round() as usize;
    let neurons = candidates
        .into_iter()
        .take(keep)
        .map(|(entropy, c)| SpecificNeuron {
            layer: c / counts.neurons,
            neuron: c % counts.neurons,
            entropy,
            languages: (0..k).filter(|&l| p[c * k + l] > threshold).map(|l| counts.languages[l].clone()).collect(),
        })
        .collect();
    Ok(LapeResult { params, threshold, candidates: n_candidates, neurons })
}

/// What pruning did to one language's specific neurons.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronChange {
    /// The pruned model's label (e.g. its calibration language).
    pub pruned: String,
    pub language: String,
    pub dense: usize,
    /// Specific to the language in both models.
    pub survive: usize,
    /// Specific in the dense model only.
    pub vanish: usize,
    /// Specific in the pruned model only.
    pub appear: usize,
    /// survive / dense (NaN when the dense model has none).
    pub survival_rate: f64,
}

/// Survive / vanish / appear per language, dense vs one pruned model.
pub fn compare(pruned_label: &str, dense: &LapeResult, pruned: &LapeResult, languages: &[String]) -> Vec<NeuronChange> {
    languages
        .iter()
        .map(|language| {
            let d = dense.of_language(language);
            let p = pruned.of_language(language);
            let survive = d.intersection(&p).count();
            NeuronChange {
                pruned: pruned_label.to_string(),
                language: language.clone(),
                dense: d.len(),
                survive,
                vanish: d.len() - survive,
                appear: p.len() - survive,
                survival_rate: if d.is_empty() { f64::NAN } else { survive as f64 / d.len() as f64 },
            }
        })
        .collect()
}

/// "Does calibrating in L protect L's neurons?": for each pruned model whose label is a
/// language, its own language's survival rate next to the mean over the other languages.
#[derive(Clone, Debug, Serialize)]
pub struct Protection {
    pub calibration: String,
    pub own_survival: f64,
    pub others_survival: f64,
}

/// Whether a pruned model's label names `language` as its calibration: the label is the language
/// itself (`eng_Latn=...` on the command line) or one of its words (a study cell's label,
/// `wanda u50 eng_Latn s0`).
fn calibrated_in(label: &str, language: &str) -> bool {
    label == language || label.split(' ').any(|word| word == language)
}

pub fn protection(changes: &[NeuronChange]) -> Vec<Protection> {
    let mut by_model: BTreeMap<&str, Vec<&NeuronChange>> = BTreeMap::new();
    for c in changes {
        by_model.entry(c.pruned.as_str()).or_default().push(c);
    }
    by_model
        .into_iter()
        .filter_map(|(model, rows)| {
            let own = rows.iter().find(|r| calibrated_in(model, &r.language))?;
            let others: Vec<f64> =
                rows.iter().filter(|r| r.language != own.language && r.survival_rate.is_finite()).map(|r| r.survival_rate).collect();
            let others_survival = if others.is_empty() { f64::NAN } else { others.iter().sum::<f64>() / others.len() as f64 };
            Some(Protection { calibration: model.to_string(), own_survival: own.survival_rate, others_survival })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 layers x 5 neurons, 3 languages (a, b, c), 10 tokens each; probabilities = counts / 10.
    #[test]
    fn lape_on_a_hand_made_table() {
        let rows: [[u64; 3]; 10] =
            [[9, 0, 0], [5, 5, 5], [0, 8, 1], [1, 1, 1], [9, 9, 0], [0, 0, 0], [2, 3, 0], [0, 0, 10], [4, 4, 4], [6, 7, 6]];
        let mut counts = ActivationCounts::new(vec!["a".into(), "b".into(), "c".into()], 2, 5);
        counts.tokens = vec![10, 10, 10];
        for (cell, r) in rows.iter().enumerate() {
            for (l, &count) in r.iter().enumerate() {
                counts.active[l][cell] = count;
            }
        }
        // The 30 probabilities sorted: 0 x10 (ranks 1-10), .1 x4 (11-14), .2 (15), .3 (16),
        // .4 x3 (17-19), .5 x3 (20-22), .6 x2 (23-24), .7, .8, .9 x3, 1.0. With filter 0.8,
        // k = round(30 * 0.8) = 24: the threshold is .6 (and a probability must exceed it).
        let r = lape(&counts, LapeParams { filter_percentile: 0.8, entropy_fraction: 0.3 }).unwrap();
        assert_eq!(r.threshold, 0.6);
        // Candidates (some p > .6): L0N0 (.9), L0N2 (.8), L0N4 (.9,.9), L1N2 (1.0), L1N4 (.7) = 5.
        assert_eq!(r.candidates, 5);
        // Entropies: L0N0 0, L1N2 0 (one language each); L0N2: q = 8/9, 1/9 -> 0.3488;
        // L0N4: ln 2 = 0.6931; L1N4: q = 6/19, 7/19, 6/19 -> 1.0947. keep = round(10 * .3) = 3.
        let got: Vec<(usize, usize, Vec<String>)> = r.neurons.iter().map(|n| (n.layer, n.neuron, n.languages.clone())).collect();
        assert_eq!(got, vec![(0, 0, vec!["a".to_string()]), (1, 2, vec!["c".to_string()]), (0, 2, vec!["b".to_string()])]);
        let q = [8.0 / 9.0, 1.0 / 9.0];
        let h: f64 = q.iter().map(|x: &f64| -x * x.ln()).sum();
        assert!((r.neurons[2].entropy - h).abs() < 1e-12);
        // With a larger share, L0N4 joins and belongs to both a and b.
        let r = lape(&counts, LapeParams { filter_percentile: 0.8, entropy_fraction: 0.4 }).unwrap();
        assert_eq!(r.neurons[3].languages, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(r.of_language("a"), [(0, 0), (0, 4)].into_iter().collect());
    }

    #[test]
    fn dense_versus_pruned_counts_survivors() {
        let n = |layer, neuron, langs: &[&str]| SpecificNeuron {
            layer,
            neuron,
            entropy: 0.0,
            languages: langs.iter().map(|s| s.to_string()).collect(),
        };
        let dense = LapeResult {
            params: LapeParams::default(),
            threshold: 0.5,
            candidates: 3,
            neurons: vec![n(0, 1, &["eng"]), n(0, 2, &["eng"]), n(1, 0, &["deu"])],
        };
        let pruned = LapeResult {
            params: LapeParams::default(),
            threshold: 0.5,
            candidates: 3,
            neurons: vec![n(0, 1, &["eng"]), n(1, 0, &["deu"]), n(1, 1, &["deu"])],
        };
        let langs = vec!["eng".to_string(), "deu".to_string()];
        let c = compare("eng", &dense, &pruned, &langs);
        assert_eq!((c[0].dense, c[0].survive, c[0].vanish, c[0].appear), (2, 1, 1, 0));
        assert_eq!((c[1].dense, c[1].survive, c[1].vanish, c[1].appear), (1, 1, 0, 1));
        let p = protection(&c);
        assert_eq!(p[0].own_survival, 0.5);
        assert_eq!(p[0].others_survival, 1.0);
        // A study cell's label names its calibration language among other parts.
        let c = compare("wanda u50 deu s0", &dense, &pruned, &langs);
        let p = protection(&c);
        assert_eq!((p[0].calibration.as_str(), p[0].own_survival, p[0].others_survival), ("wanda u50 deu s0", 1.0, 0.5));
        assert!(protection(&compare("wanda u50 ita s0", &dense, &pruned, &langs)).is_empty());
    }

    #[test]
    fn bad_parameters_and_empty_languages_are_errors() {
        let mut counts = ActivationCounts::new(vec!["a".into(), "b".into()], 1, 2);
        counts.tokens = vec![4, 0];
        let e = lape(&counts, LapeParams::default()).unwrap_err();
        assert!(e.to_string().contains(" b"), "{e}");
        let e = LapeParams { filter_percentile: 1.5, entropy_fraction: 0.01 }.validated().unwrap_err();
        assert!(e.to_string().contains("--filter-percentile"), "{e}");
    }
}
