//! Paired permutation (sign-flip) test of a mean difference, two-sided.
//!
//! Under H₀ "the two conditions are exchangeable within each pair", each
//! difference d_i is as likely to be +|d_i| as -|d_i| (Fisher 1935; Good 2005,
//! ch. 3). The test statistic is T = |Σ s_i d_i| (equivalent to the absolute
//! mean difference); the p-value is the share of sign vectors s with
//! T(s) ≥ T(observed).
//!
//! * n ≤ 20: all 2ⁿ sign vectors are enumerated, so the p-value is exact.
//! * n > 20: B random sign vectors; p = (count + 1) / (B + 1), which counts the
//!   observed assignment as one of the permutations and so never returns 0 and
//!   keeps the test valid (Phipson & Smyth 2010).
//!
//! Floating-point sums of the same multiset in different orders can differ in
//! the last bits, which would wrongly break mathematical ties with the observed
//! statistic; values within 1e-12·Σ|d_i| of it therefore count as "as extreme".

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::descriptive::mean;
use super::resampling::{replicate_in_parallel, ResamplingConfig};
use super::sample::PairedSamples;

/// Largest number of pairs for which all 2ⁿ sign vectors are enumerated.
pub const EXACT_ENUMERATION_MAX_PAIRS: usize = 20;

/// Relative slack for treating a permuted statistic as tied with the observed one.
const TIE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// How the permutation p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermutationMethod {
    /// All 2ⁿ sign vectors enumerated; the p-value is exact.
    ExactEnumeration,
    /// Random sign vectors; p = (count + 1) / (B + 1).
    MonteCarlo,
}

/// Result of the sign-flip test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// Observed mean of the differences (first - second).
    pub mean_difference: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Exact or Monte-Carlo.
    pub method: PermutationMethod,
    /// Sign vectors examined: 2ⁿ for exact enumeration, B for Monte-Carlo.
    pub permutations: u64,
}

/// Two-sided sign-flip permutation test of the mean of `pairs.differences()`.
///
/// `config` is used only when there are more than
/// [`EXACT_ENUMERATION_MAX_PAIRS`] pairs.
pub fn sign_flip_test(pairs: &PairedSamples, config: &ResamplingConfig) -> PermutationTest {
    let differences = pairs.differences();
    let threshold = extremeness_threshold(differences);
    let (p_value, method, permutations) = if differences.len() <= EXACT_ENUMERATION_MAX_PAIRS {
        let (count, total) = exact_extreme_count(differences, threshold);
        (count as f64 / total as f64, PermutationMethod::ExactEnumeration, total)
    } else {
        let count = monte_carlo_extreme_count(differences, threshold, config);
        let b = config.resamples.get();
        let p = (count + 1) as f64 / (b + 1) as f64;
        (p, PermutationMethod::MonteCarlo, b as u64)
    };
    PermutationTest { mean_difference: mean(differences), p_value, method, permutations }
}

/// Permuted |Σ s_i d_i| at or above this value counts as at least as extreme.
fn extremeness_threshold(differences: &[f64]) -> f64 {
    let observed = differences.iter().sum::<f64>().abs();
    let scale: f64 = differences.iter().map(|d| d.abs()).sum();
    observed - TIE_RELATIVE_TOLERANCE * scale
}

fn signed_sum(differences: &[f64], negative_mask: u64) -> f64 {
    differences.iter().enumerate().map(|(i, &d)| if negative_mask >> i & 1 == 1 { -d } else { d }).sum()
}

/// (number of sign vectors at least as extreme, 2ⁿ). The sign of d_0 is kept
/// positive and each vector counted twice, because s and -s give the same |T|.
fn exact_extreme_count(differences: &[f64], threshold: f64) -> (u64, u64) {
    let n = differences.len();
    assert!(n <= EXACT_ENUMERATION_MAX_PAIRS, "exact enumeration limited to 2^20 sign vectors");
    let half = 1u64 << (n - 1);
    let extreme_halves = (0..half).filter(|&mask| signed_sum(differences, mask << 1).abs() >= threshold).count() as u64;
    (2 * extreme_halves, 2 * half)
}

fn monte_carlo_extreme_count(differences: &[f64], threshold: f64, config: &ResamplingConfig) -> u64 {
    let statistics =
        replicate_in_parallel(config, |rng| differences.iter().map(|&d| if rng.gen::<bool>() { -d } else { d }).sum::<f64>().abs());
    statistics.iter().filter(|&&t| t >= threshold).count() as u64
}

#[cfg(test)]
mod tests {
    use super::super::resampling::Resamples;
    use super::*;

    fn pairs(d: &[f64]) -> PairedSamples {
        PairedSamples::from_differences("d", d.to_vec()).unwrap()
    }

    fn config(resamples: usize, seed: u64) -> ResamplingConfig {
        ResamplingConfig { resamples: Resamples::new(resamples).unwrap(), seed }
    }

    // Data sets and counts from scripts/stats_reference.py (brute-force count over
    // all sign vectors with Python's exact fsum, cross-checked against
    // scipy.stats.permutation_test(permutation_type="samples")).
    const P1: [f64; 10] = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95];
    const P2: [f64; 12] = [0.5, -0.5, 1.0, 0.0, 1.5, 2.0, -1.0, 0.5, 2.5, 0.0, 3.0, 1.5];
    const P6: [f64; 22] = [
        1.92, 1.382, 0.406, -0.549, -1.035, -0.822, -0.011, 1.017, 1.778, 1.915, 1.363, 0.381, -0.568, -1.038, -0.809, 0.013, 1.04, 1.79,
        1.909, 1.342, 0.356, -0.586,
    ];

    #[test]
    fn exact_p_values_equal_brute_force_counts() {
        let t = sign_flip_test(&pairs(&P1), &ResamplingConfig::default());
        assert_eq!(t.method, PermutationMethod::ExactEnumeration);
        assert_eq!(t.permutations, 1 << 10);
        assert_eq!(t.p_value, 32.0 / 1024.0);
        let t = sign_flip_test(&pairs(&P2), &ResamplingConfig::default());
        assert_eq!(t.p_value, 144.0 / 4096.0);
    }

    #[test]
    fn largest_exact_case_matches_closed_form() {
        // n = 20 identical positive differences: only s = ±(1, …, 1) reach
        // |Σ s_i d_i| = 20, so p = 2 / 2^20 exactly.
        let t = sign_flip_test(&pairs(&[1.0; 20]), &ResamplingConfig::default());
        assert_eq!(t.method, PermutationMethod::ExactEnumeration);
        assert_eq!(t.p_value, 2.0 / 1048576.0);
        let t = sign_flip_test(&pairs(&[1.0; 21]), &config(100, 0));
        assert_eq!(t.method, PermutationMethod::MonteCarlo);
    }

    #[test]
    fn zero_shift_gives_p_one() {
        // Data compared with itself: every sign vector ties with T = 0.
        let x = vec![3.2, 3.5, 3.1, 3.9];
        let same = PairedSamples::new("x", x.clone(), "x again", x).unwrap();
        assert_eq!(sign_flip_test(&same, &ResamplingConfig::default()).p_value, 1.0);
        let many = PairedSamples::from_differences("zeros", vec![0.0; 30]).unwrap();
        assert_eq!(sign_flip_test(&many, &config(500, 1)).p_value, 1.0);
    }

    #[test]
    fn monte_carlo_p_is_within_error_of_exact_p() {
        // Exact p for P6 (n = 22) = 162866 / 2^22 from the reference script.
        // With B = 20,000 the MC SE is sqrt(p(1-p)/B) ≈ 0.00137; allow 4 SE plus
        // the 1/(B+1) shift of the (count+1)/(B+1) estimator.
        let exact = 162866.0 / 4194304.0;
        let b = 20_000;
        let t = sign_flip_test(&pairs(&P6), &config(b, 2024));
        assert_eq!(t.method, PermutationMethod::MonteCarlo);
        let se = (exact * (1.0 - exact) / b as f64).sqrt();
        assert!((t.p_value - exact).abs() < 4.0 * se + 1.0 / b as f64, "{}", t.p_value);
    }

    #[test]
    fn monte_carlo_is_reproducible_and_p_never_zero() {
        let far: Vec<f64> = (0..25).map(|i| 5.0 + i as f64 * 0.01).collect();
        let c = config(1000, 9);
        let a = sign_flip_test(&pairs(&far), &c);
        assert_eq!(a, sign_flip_test(&pairs(&far), &c));
        // All-positive large differences: no random sign vector reaches T_obs.
        assert_eq!(a.p_value, 1.0 / 1001.0);
    }
}
