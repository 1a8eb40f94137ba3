//! One flat, serialisable record summarising a paired comparison.
//!
//! A study compares, for example, a model pruned after calibrating on language A
//! against one calibrated on language B, on the same documents. This record puts
//! everything a results table needs in one row: the mean difference (first -
//! second), its Student-t and bootstrap intervals, permutation and Wilcoxon
//! p-values, and effect sizes. Fields that are undefined for degenerate data
//! (e.g. Wilcoxon when every difference is zero) are `None`, which becomes an
//! empty CSV cell or JSON `null`, so one odd comparison never stops a whole report.

use serde::{Deserialize, Serialize};

use super::bootstrap::bootstrap_mean_difference;
use super::descriptive::{mean, t_interval, Descriptives};
use super::effect_size::{cohens_dz, hedges_gz};
use super::permutation::{sign_flip_test, PermutationMethod};
use super::probability::ConfidenceLevel;
use super::resampling::ResamplingConfig;
use super::sample::PairedSamples;
use super::wilcoxon::{wilcoxon_signed_rank, ContinuityCorrection, WilcoxonMethod};

/// Settings for [`compare_paired`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ComparisonConfig {
    /// Coverage of the t and bootstrap intervals (default 95 %).
    pub level: ConfidenceLevel,
    /// Resamples and seed for the bootstrap and the Monte-Carlo permutation test.
    pub resampling: ResamplingConfig,
    /// Continuity correction for the Wilcoxon normal approximation (default off, as SciPy).
    pub continuity: ContinuityCorrection,
}

/// Flat summary of a paired comparison; differences are first - second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Label of the comparison, `"first - second"`.
    pub label: String,
    /// Number of pairs.
    pub n: usize,
    /// Mean of the first sample.
    pub mean_first: f64,
    /// Mean of the second sample.
    pub mean_second: f64,
    /// Mean difference.
    pub mean_difference: f64,
    /// Sample standard deviation of the differences.
    pub std_dev_difference: f64,
    /// Standard error of the mean difference.
    pub std_error_difference: f64,
    /// Coverage of all intervals below.
    pub confidence_level: f64,
    /// Student-t interval, lower end.
    pub t_lower: f64,
    /// Student-t interval, upper end.
    pub t_upper: f64,
    /// Bootstrap percentile interval, lower end.
    pub bootstrap_lower: f64,
    /// Bootstrap percentile interval, upper end.
    pub bootstrap_upper: f64,
    /// Bootstrap BCa interval, lower end (None where BCa is undefined).
    pub bca_lower: Option<f64>,
    /// Bootstrap BCa interval, upper end.
    pub bca_upper: Option<f64>,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Seed for bootstrap and Monte-Carlo permutations.
    pub seed: u64,
    /// The smallest permutation p-value these |differences| allow, 2^(1-k) for k non-zero
    /// pairs: above a family's threshold, the comparison cannot be significant there.
    pub permutation_min_p: f64,
    /// Two-sided sign-flip permutation p-value.
    pub permutation_p: f64,
    /// Exact enumeration or Monte-Carlo.
    pub permutation_method: PermutationMethod,
    /// Wilcoxon min(W⁺, W⁻) (None when all differences are zero).
    pub wilcoxon_statistic: Option<f64>,
    /// Wilcoxon two-sided p-value.
    pub wilcoxon_p: Option<f64>,
    /// How the Wilcoxon p-value was computed.
    pub wilcoxon_method: Option<WilcoxonMethod>,
    /// Matched-pairs rank-biserial correlation.
    pub rank_biserial: Option<f64>,
    /// Cohen's d_z (None when all differences are equal).
    pub cohens_dz: Option<f64>,
    /// Hedges' g_z (None when d_z is undefined or n < 3).
    pub hedges_gz: Option<f64>,
}

/// Runs every paired analysis of this module on `pairs` and flattens the results.
pub fn compare_paired(pairs: &PairedSamples, config: &ComparisonConfig) -> PairedComparison {
    let differences = pairs.differences_sample();
    let descriptives = Descriptives::of(&differences);
    let t = t_interval(&differences, config.level);
    let bootstrap = bootstrap_mean_difference(pairs, config.level, &config.resampling);
    let permutation = sign_flip_test(pairs, &config.resampling);
    let wilcoxon = wilcoxon_signed_rank(pairs, config.continuity).ok();
    PairedComparison {
        label: pairs.label().to_owned(),
        n: pairs.len(),
        mean_first: mean(pairs.first()),
        mean_second: mean(pairs.second()),
        mean_difference: descriptives.mean,
        std_dev_difference: descriptives.std_dev,
        std_error_difference: descriptives.std_error,
        confidence_level: config.level.value(),
        t_lower: t.lower(),
        t_upper: t.upper(),
        bootstrap_lower: bootstrap.percentile.lower(),
        bootstrap_upper: bootstrap.percentile.upper(),
        bca_lower: bootstrap.bca.map(|ci| ci.lower()),
        bca_upper: bootstrap.bca.map(|ci| ci.upper()),
        resamples: config.resampling.resamples.get(),
        seed: config.resampling.seed,
        permutation_min_p: permutation.min_p,
        permutation_p: permutation.p_value,
        permutation_method: permutation.method,
        wilcoxon_statistic: wilcoxon.map(|w| w.statistic),
        wilcoxon_p: wilcoxon.map(|w| w.p_value),
        wilcoxon_method: wilcoxon.map(|w| w.method),
        rank_biserial: wilcoxon.map(|w| w.rank_biserial),
        cohens_dz: cohens_dz(pairs).ok(),
        hedges_gz: hedges_gz(pairs).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::resampling::Resamples;
    use super::*;

    const P1: [f64; 10] = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95];

    fn config() -> ComparisonConfig {
        ComparisonConfig {
            resampling: ResamplingConfig { resamples: Resamples::new(2000).unwrap(), seed: 5 },
            ..ComparisonConfig::default()
        }
    }

    #[test]
    fn summary_of_p1_matches_reference_values() {
        // P1 values from scripts/stats_reference.py: exact permutation and
        // Wilcoxon p-values (exact equality), t interval (1e-10, closed form),
        // effect sizes (1e-12, closed form).
        let pairs = PairedSamples::from_differences("P1", P1.to_vec()).unwrap();
        let s = compare_paired(&pairs, &config());
        assert_eq!(s.n, 10);
        assert_eq!(s.permutation_p, 32.0 / 1024.0);
        assert_eq!(s.permutation_method, PermutationMethod::ExactEnumeration);
        assert_eq!(s.wilcoxon_p, Some(19.0 / 512.0));
        assert_eq!(s.wilcoxon_statistic, Some(7.0));
        assert!((s.t_lower - 0.08062139797875867).abs() < 1e-10, "{}", s.t_lower);
        assert!((s.t_upper - 0.9433786020212414).abs() < 1e-10, "{}", s.t_upper);
        assert!((s.cohens_dz.unwrap() - 0.8490517010830901).abs() < 1e-12);
        assert!((s.hedges_gz.unwrap() - 0.7759270314535914).abs() < 1e-12);
        assert!((s.mean_difference - 0.512).abs() < 1e-12);
        assert!(s.bootstrap_lower < s.mean_difference && s.mean_difference < s.bootstrap_upper);
        assert!(s.bca_lower.is_some() && s.bca_upper.is_some());
    }

    #[test]
    fn identical_samples_leave_undefined_fields_empty() {
        let x = vec![1.5, 2.5, 3.0];
        let pairs = PairedSamples::new("a", x.clone(), "b", x).unwrap();
        let s = compare_paired(&pairs, &config());
        assert_eq!(s.permutation_p, 1.0);
        assert_eq!((s.wilcoxon_p, s.cohens_dz, s.hedges_gz, s.bca_lower), (None, None, None, None));
        assert_eq!((s.t_lower, s.t_upper), (0.0, 0.0));
    }

    #[test]
    fn round_trips_through_json_and_csv() {
        let pairs = PairedSamples::from_differences("P1", P1.to_vec()).unwrap();
        let with_all = compare_paired(&pairs, &config());
        let zeros = PairedSamples::from_differences("zeros", vec![0.0; 4]).unwrap();
        let with_gaps = compare_paired(&zeros, &config());

        // Neither serde_json (without its float_roundtrip feature) nor csv promises
        // bit-exact float parsing; they may land one ulp away, hence a 1e-15
        // relative comparison field by field.
        let json = serde_json::to_string(&with_all).unwrap();
        assert_same_fields(&serde_json::from_str::<PairedComparison>(&json).unwrap(), &with_all);

        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&with_all).unwrap();
        writer.serialize(&with_gaps).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert!(text.starts_with("label,n,mean_first,"), "{text}");
        assert!(text.contains(",exact_enumeration,7.0,"), "{text}");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<PairedComparison> = reader.deserialize().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_same_fields(&rows[0], &with_all);
        assert_same_fields(&rows[1], &with_gaps);
    }

    fn assert_same_fields(actual: &PairedComparison, expected: &PairedComparison) {
        let actual = serde_json::to_value(actual).unwrap();
        let expected = serde_json::to_value(expected).unwrap();
        let (actual, expected) = (actual.as_object().unwrap(), expected.as_object().unwrap());
        assert_eq!(actual.len(), expected.len());
        for (key, want) in expected {
            let got = &actual[key];
            match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() <= 1e-15 * w.abs(), "{key}: {g} vs {w}")
                }
                _ => assert_eq!(got, want, "{key}"),
            }
        }
    }
}
