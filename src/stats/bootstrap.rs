//! Paired bootstrap confidence interval for a mean difference.
//!
//! Resampling pairs with replacement (Efron 1979) and resampling their
//! differences are the same thing for the mean, so each replicate is the mean
//! of n differences drawn with replacement. From B replicates we report the
//! percentile interval (replicate quantiles at α/2 and 1 - α/2, linear
//! interpolation as in SciPy) and, where defined, the BCa interval (see
//! [`bca`](super::bca)), which corrects the percentile interval for median bias
//! and skewness. Replicates come from [`replicate_in_parallel`], so the result
//! depends only on the data, the seed and B, never on the thread count.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bca::bca_interval;
use super::descriptive::{mean, sample_std_dev};
use super::interval::ConfidenceInterval;
use super::probability::ConfidenceLevel;
use super::quantile::{linear_quantile, sorted_ascending};
use super::resampling::{replicate_in_parallel, Resamples, ResamplingConfig};
use super::sample::{PairedSamples, Sample};

/// Bootstrap intervals for a mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInterval {
    /// The mean of the original data.
    pub estimate: f64,
    /// Standard deviation of the replicates (the bootstrap standard error).
    pub std_error: f64,
    /// Percentile interval.
    pub percentile: ConfidenceInterval,
    /// BCa interval; `None` when BCa is undefined (e.g. all values equal, or
    /// every replicate on one side of the estimate).
    pub bca: Option<ConfidenceInterval>,
    /// Number of replicates used.
    pub resamples: Resamples,
    /// Seed used.
    pub seed: u64,
}

/// Bootstrap intervals for the mean of `pairs.differences()` (first - second).
pub fn bootstrap_mean_difference(pairs: &PairedSamples, level: ConfidenceLevel, config: &ResamplingConfig) -> BootstrapInterval {
    bootstrap_mean_of(pairs.differences(), level, config)
}

/// Bootstrap intervals for the mean of a single sample.
pub fn bootstrap_mean(sample: &Sample, level: ConfidenceLevel, config: &ResamplingConfig) -> BootstrapInterval {
    bootstrap_mean_of(sample.values(), level, config)
}

fn bootstrap_mean_of(values: &[f64], level: ConfidenceLevel, config: &ResamplingConfig) -> BootstrapInterval {
    let estimate = mean(values);
    let replicates = sorted_ascending(replicate_in_parallel(config, |rng| resampled_mean(values, rng)));
    let tail = level.tail_probability();
    let percentile =
        ConfidenceInterval::from_endpoints(linear_quantile(&replicates, tail), linear_quantile(&replicates, 1.0 - tail), level);
    let std_error = if replicates.len() > 1 { sample_std_dev(&replicates, mean(&replicates)) } else { 0.0 };
    BootstrapInterval {
        estimate,
        std_error,
        percentile,
        bca: bca_interval(&replicates, estimate, &leave_one_out_means(values), level),
        resamples: config.resamples,
        seed: config.seed,
    }
}

/// Mean of `values.len()` draws with replacement.
fn resampled_mean<R: Rng>(values: &[f64], rng: &mut R) -> f64 {
    let n = values.len();
    let total: f64 = (0..n).map(|_| values[rng.gen_range(0..n)]).sum();
    total / n as f64
}

/// Jackknife means θ₍ᵢ₎ = (Σx - x_i)/(n - 1), in O(n) instead of O(n²).
fn leave_one_out_means(values: &[f64]) -> Vec<f64> {
    let total: f64 = values.iter().sum();
    let others = (values.len() - 1) as f64;
    values.iter().map(|v| (total - v) / others).collect()
}

#[cfg(test)]
mod tests {
    use super::super::descriptive::{t_interval, Descriptives};
    use super::super::sample::Sample;
    use super::*;
    use statrs::distribution::{ContinuousCDF, Normal};

    fn config(resamples: usize, seed: u64) -> ResamplingConfig {
        ResamplingConfig { resamples: Resamples::new(resamples).unwrap(), seed }
    }

    /// A deterministic sample that is exactly the normal quantiles at (i+0.5)/n,
    /// interleaved so its order carries no trend.
    fn normal_scores(n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let normal = Normal::new(mean, sd).unwrap();
        (0..n).map(|i| normal.inverse_cdf((((i * 7) % n) as f64 + 0.5) / n as f64)).collect()
    }

    #[test]
    fn same_seed_same_output_and_thread_count_irrelevant() {
        let pairs = PairedSamples::from_differences("d", normal_scores(50, 0.1, 1.0)).unwrap();
        let c = config(3000, 11);
        let level = ConfidenceLevel::NINETY_FIVE_PERCENT;
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let a = one_thread.install(|| bootstrap_mean_difference(&pairs, level, &c));
        let b = bootstrap_mean_difference(&pairs, level, &c);
        assert_eq!(a, b);
        let other_seed = bootstrap_mean_difference(&pairs, level, &config(3000, 12));
        assert_ne!(a.percentile, other_seed.percentile);
    }

    #[test]
    fn large_normal_sample_agrees_with_t_interval_within_monte_carlo_error() {
        // For n = 400 normal data the bootstrap distribution of the mean is close
        // to N(m, s²(n-1)/n²); both endpoints should sit near the t-interval.
        // Monte-Carlo SE of the 2.5 % quantile of B replicates is
        // sqrt(p(1-p)/B) / φ(z_p) · se ≈ 0.060·se for B = 4000; we allow 4 MC SE
        // plus the known systematic gap (t vs z quantile and the (n-1)/n variance
        // factor, together < 0.01·se here).
        let n = 400;
        let values = normal_scores(n, 0.3, 2.0);
        let sample = Sample::new("normal", values).unwrap();
        let level = ConfidenceLevel::NINETY_FIVE_PERCENT;
        let se = Descriptives::of(&sample).std_error;
        let boot = bootstrap_mean(&sample, level, &config(4000, 3));
        let t = t_interval(&sample, level);
        let allowed = 4.0 * 0.060 * se + 0.01 * se;
        assert!((boot.percentile.lower() - t.lower()).abs() < allowed, "{boot:?} vs {t:?}");
        assert!((boot.percentile.upper() - t.upper()).abs() < allowed, "{boot:?} vs {t:?}");
        let bca = boot.bca.expect("BCa defined for spread-out data");
        assert!((bca.lower() - t.lower()).abs() < allowed, "{bca:?} vs {t:?}");
        assert!((bca.upper() - t.upper()).abs() < allowed, "{bca:?} vs {t:?}");
        // Bootstrap SE estimates s·sqrt((n-1)/n)/sqrt(n); its relative MC error is
        // about 1/sqrt(2B) ≈ 1.1 %, so 5 % is a > 4-sigma bound.
        let expected_se = se * ((n - 1) as f64 / n as f64).sqrt();
        assert!((boot.std_error / expected_se - 1.0).abs() < 0.05, "{}", boot.std_error);
    }

    #[test]
    fn constant_differences_give_degenerate_percentile_and_no_bca() {
        let pairs = PairedSamples::from_differences("d", vec![0.25; 6]).unwrap();
        let boot = bootstrap_mean_difference(&pairs, ConfidenceLevel::NINETY_PERCENT, &config(200, 1));
        assert_eq!((boot.percentile.lower(), boot.percentile.upper()), (0.25, 0.25));
        assert!(boot.bca.is_none());
        assert_eq!(boot.std_error, 0.0);
    }

    #[test]
    fn leave_one_out_means_match_brute_force() {
        let values = [0.61, -0.23, 1.42, 0.88, -0.07];
        for (i, fast) in leave_one_out_means(&values).iter().enumerate() {
            let kept: Vec<f64> = values.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &v)| v).collect();
            let slow = kept.iter().sum::<f64>() / kept.len() as f64;
            assert!((fast - slow).abs() < 1e-15);
        }
    }
}
