//! Wilcoxon signed-rank test for paired data, two-sided (Wilcoxon 1945).
//!
//! Zeros: dropped before ranking ("wilcox" zero method, SciPy's default);
//! n below means the number of non-zero differences. Ties among |d| get
//! average ranks. W⁺ (W⁻) is the rank sum of positive (negative) differences;
//! the reported statistic is min(W⁺, W⁻), as SciPy reports for two-sided tests.
//!
//! p-value, choosing the method the way SciPy's `method="auto"` does:
//! * at most 50 pairs, no zeros and no ties: the exact null distribution of W⁺
//!   (every sign pattern of ranks 1..n equally likely);
//! * at most 13 pairs with zeros or ties: the exact *conditional* distribution,
//!   enumerating every sign pattern of the observed (average) ranks;
//! * otherwise the normal approximation with mean n(n+1)/4 and variance
//!   [n(n+1)(2n+1) - Σ(t³ - t)/2] / 24, optionally with a continuity correction
//!   of 0.5 towards the mean (SciPy's `correction`, off by default).
//!
//! Both exact p-values are 2·min(P(W⁺ ≥ w), P(W⁺ ≤ w)) capped at 1; counts of
//! sign patterns are integers below 2⁵³, so these p-values are exact in f64.
//!
//! Effect size: the matched-pairs rank-biserial correlation
//! r = (W⁺ - W⁻)/(W⁺ + W⁻) (Kerby 2014), in [-1, 1], positive when the first
//! sample tends to be larger.

use serde::{Deserialize, Serialize};

use super::error::StatsError;
use super::normal::normal_sf;
use super::ranks::average_ranks;
use super::sample::PairedSamples;

/// Most pairs for the exact distribution without zeros or ties (as SciPy).
pub const EXACT_MAX_PAIRS: usize = 50;
/// Most pairs for exact conditional enumeration with zeros or ties (as SciPy).
pub const EXACT_CONDITIONAL_MAX_PAIRS: usize = 13;

/// Whether the normal approximation shifts |W⁺ - mean| by 0.5 towards 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinuityCorrection {
    /// No correction (SciPy's default, `correction=False`).
    #[default]
    Off,
    /// Apply the 0.5 correction (`correction=True`).
    On,
}

/// How the Wilcoxon p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// Exact null distribution (no zeros, no ties).
    Exact,
    /// Exact distribution conditional on the observed tied ranks.
    ExactConditional,
    /// Normal approximation with tie correction.
    NormalApproximation,
}

/// Result of the Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WilcoxonTest {
    /// min(W⁺, W⁻).
    pub statistic: f64,
    /// Rank sum of positive differences.
    pub w_plus: f64,
    /// Rank sum of negative differences.
    pub w_minus: f64,
    /// Number of non-zero differences that were ranked.
    pub n_ranked: usize,
    /// Number of zero differences dropped.
    pub zeros_dropped: usize,
    /// Standardised W⁺ (after any continuity correction); only for the normal approximation.
    pub z: Option<f64>,
    /// Two-sided p-value.
    pub p_value: f64,
    /// How the p-value was computed.
    pub method: WilcoxonMethod,
    /// Matched-pairs rank-biserial correlation (W⁺ - W⁻)/(W⁺ + W⁻).
    pub rank_biserial: f64,
}

/// Two-sided Wilcoxon signed-rank test of `pairs.differences()` against 0.
///
/// Fails with [`StatsError::AllDifferencesZero`] when no difference is non-zero.
pub fn wilcoxon_signed_rank(pairs: &PairedSamples, correction: ContinuityCorrection) -> Result<WilcoxonTest, StatsError> {
    let total_pairs = pairs.len();
    let nonzero: Vec<f64> = pairs.differences().iter().copied().filter(|&d| d != 0.0).collect();
    if nonzero.is_empty() {
        return Err(StatsError::AllDifferencesZero { input: pairs.label().to_owned(), count: total_pairs });
    }
    let zeros_dropped = total_pairs - nonzero.len();
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let ranking = average_ranks(&magnitudes);
    let w_plus: f64 = nonzero.iter().zip(&ranking.ranks).filter(|(d, _)| **d > 0.0).map(|(_, r)| r).sum();
    let n = nonzero.len() as f64;
    let w_minus = n * (n + 1.0) / 2.0 - w_plus;

    let method = choose_method(total_pairs, zeros_dropped > 0 || ranking.has_ties());
    let (p_value, z) = match method {
        WilcoxonMethod::Exact | WilcoxonMethod::ExactConditional => (exact_two_sided_p(&ranking.ranks, w_plus), None),
        WilcoxonMethod::NormalApproximation => {
            let z = normal_z(w_plus, n, ranking.tie_term(), correction);
            ((2.0 * normal_sf(z.abs())).min(1.0), Some(z))
        }
    };

    Ok(WilcoxonTest {
        statistic: w_plus.min(w_minus),
        w_plus,
        w_minus,
        n_ranked: nonzero.len(),
        zeros_dropped,
        z,
        p_value,
        method,
        rank_biserial: (w_plus - w_minus) / (w_plus + w_minus),
    })
}

/// SciPy's `method="auto"` rule (see module docs); `total_pairs` counts zeros too.
fn choose_method(total_pairs: usize, has_zeros_or_ties: bool) -> WilcoxonMethod {
    match (has_zeros_or_ties, total_pairs) {
        (false, n) if n <= EXACT_MAX_PAIRS => WilcoxonMethod::Exact,
        (true, n) if n <= EXACT_CONDITIONAL_MAX_PAIRS => WilcoxonMethod::ExactConditional,
        _ => WilcoxonMethod::NormalApproximation,
    }
}

/// Exact two-sided p-value of W⁺ given the (possibly average) ranks in play.
///
/// Average ranks are multiples of 1/2, so doubled ranks are integers and a
/// subset-sum count over doubled ranks gives the distribution of 2W⁺.
fn exact_two_sided_p(ranks: &[f64], w_plus: f64) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
    let observed = (2.0 * w_plus).round() as usize;
    let counts = subset_sum_counts(&doubled);
    let at_most: u64 = counts[..=observed].iter().sum();
    let at_least: u64 = counts[observed..].iter().sum();
    let patterns = (1u64 << ranks.len()) as f64;
    (2.0 * at_most.min(at_least) as f64 / patterns).min(1.0)
}

/// counts[s] = number of subsets of `weights` with sum s.
fn subset_sum_counts(weights: &[usize]) -> Vec<u64> {
    let total: usize = weights.iter().sum();
    let mut counts = vec![0u64; total + 1];
    counts[0] = 1;
    let mut reachable = 0;
    for &w in weights {
        // Downwards so each weight is used at most once.
        for s in (0..=reachable).rev() {
            counts[s + w] += counts[s];
        }
        reachable += w;
    }
    counts
}

/// Standardised W⁺ under H₀ with tie correction and optional continuity correction.
fn normal_z(w_plus: f64, n: f64, tie_term: f64, correction: ContinuityCorrection) -> f64 {
    let expected = n * (n + 1.0) / 4.0;
    let variance = (n * (n + 1.0) * (2.0 * n + 1.0) - tie_term / 2.0) / 24.0;
    let sd = variance.sqrt();
    let z = (w_plus - expected) / sd;
    match correction {
        // No shift at exactly the mean, where the direction is undefined.
        ContinuityCorrection::On if z != 0.0 => z - z.signum() * 0.5 / sd,
        _ => z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(d: &[f64]) -> PairedSamples {
        PairedSamples::from_differences("d", d.to_vec()).unwrap()
    }

    // Data sets P1..P5 and all reference values: scripts/stats_reference.py,
    // section "Wilcoxon signed-rank" (scipy.stats.wilcoxon, exact p cross-checked
    // against a brute-force / polynomial count as an exact Fraction).
    const P1: [f64; 10] = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95];
    const P2: [f64; 12] = [0.5, -0.5, 1.0, 0.0, 1.5, 2.0, -1.0, 0.5, 2.5, 0.0, 3.0, 1.5];
    const P3: [f64; 30] = [
        0.3, -0.1, 0.4, 0.2, 0.0, 0.5, -0.2, 0.3, 0.1, 0.6, -0.3, 0.2, 0.4, 0.1, -0.1, 0.7, 0.2, 0.0, 0.3, -0.4, 0.5, 0.1, 0.2, -0.2, 0.6,
        0.3, 0.8, -0.1, 0.4, 0.2,
    ];
    const P4: [f64; 25] = [
        -4.1, 2.203, -2.224, 4.079, -0.348, 5.955, 1.528, -2.899, 3.404, -1.023, 5.28, 0.853, -3.574, 2.729, -1.698, 4.605, 0.178, 6.481,
        2.054, -2.373, 3.93, -0.497, 5.806, 1.379, -3.048,
    ];
    const P5: [f64; 60] = [
        0.35, 2.2771, 1.381, -1.0255, -1.4169, 0.7802, 2.3471, 0.9882, -1.3057, -1.174, 1.1903, 2.3235, 0.5655, -1.5082, -0.8597, 1.5611,
        2.2076, 0.1327, -1.6238, -0.4887, 1.8751, 2.0047, -0.2899, -1.647, -0.0785, 2.1177, 1.7242, -0.6825, -1.5766, 0.3518, 2.2776,
        1.3795, -1.0268, -1.4161, 0.782, 2.3472, 0.9865, -1.3066, -1.1728, 1.1919, 2.3233, 0.5637, -1.5089, -0.8583, 1.5625, 2.2069, 0.131,
        -1.6241, -0.4871, 1.8763, 2.0037, -0.2916, -1.6469, -0.0768, 2.1186, 1.723, -0.684, -1.5762, 0.3536, 2.2781,
    ];

    #[test]
    fn exact_without_ties_equals_exact_fraction() {
        let t = wilcoxon_signed_rank(&pairs(&P1), ContinuityCorrection::Off).unwrap();
        assert_eq!(t.method, WilcoxonMethod::Exact);
        assert_eq!((t.statistic, t.w_plus), (7.0, 48.0));
        assert_eq!(t.p_value, 19.0 / 512.0);
        assert!((t.rank_biserial - 0.7454545454545455).abs() < 1e-15);

        let t = wilcoxon_signed_rank(&pairs(&P4), ContinuityCorrection::Off).unwrap();
        assert_eq!(t.method, WilcoxonMethod::Exact);
        assert_eq!((t.statistic, t.w_plus), (107.0, 218.0));
        assert_eq!(t.p_value, 2364165.0 / 16777216.0);
        assert!((t.rank_biserial - 0.3415384615384615).abs() < 1e-15);
    }

    #[test]
    fn exact_conditional_with_zeros_and_ties_equals_enumeration() {
        let t = wilcoxon_signed_rank(&pairs(&P2), ContinuityCorrection::Off).unwrap();
        assert_eq!(t.method, WilcoxonMethod::ExactConditional);
        assert_eq!((t.statistic, t.w_plus, t.zeros_dropped, t.n_ranked), (6.5, 48.5, 2, 10));
        assert_eq!(t.p_value, 9.0 / 256.0);
        assert!((t.rank_biserial - 0.7636363636363637).abs() < 1e-15);
    }

    #[test]
    fn normal_approximation_matches_scipy() {
        // p from the normal sf: SciPy (ndtr) and normal.rs both reach ~1e-14
        // relative accuracy, so 1e-12 absolute is a safe margin.
        let cases = [
            (&P3[..], 67.0, 0.0018751025816447216, 0.0019489611615172145, -3.109332991139362),
            (&P5[..], 629.0, 0.03525489842985291, 0.03557626295299877, -2.1054184584651816),
        ];
        for (d, statistic, p_plain, p_corrected, z_scipy) in cases {
            let plain = wilcoxon_signed_rank(&pairs(d), ContinuityCorrection::Off).unwrap();
            let corrected = wilcoxon_signed_rank(&pairs(d), ContinuityCorrection::On).unwrap();
            assert_eq!(plain.method, WilcoxonMethod::NormalApproximation);
            assert_eq!(plain.statistic, statistic);
            assert!((plain.p_value - p_plain).abs() < 1e-12, "{}", plain.p_value);
            assert!((corrected.p_value - p_corrected).abs() < 1e-12, "{}", corrected.p_value);
            // SciPy reports -|z| for two-sided tests.
            assert!((-plain.z.unwrap().abs() - z_scipy).abs() < 1e-12);
        }
    }

    #[test]
    fn subset_sum_counts_match_brute_force() {
        let weights = [2, 3, 3, 5, 8];
        let counts = subset_sum_counts(&weights);
        for (sum, &count) in counts.iter().enumerate() {
            let brute =
                (0u32..32).filter(|mask| (0..5).filter(|i| mask >> i & 1 == 1).map(|i| weights[i]).sum::<usize>() == sum).count() as u64;
            assert_eq!(count, brute, "sum {sum}");
        }
    }

    #[test]
    fn all_zero_differences_are_an_error_and_symmetric_data_gives_p_one() {
        let err = wilcoxon_signed_rank(&pairs(&[0.0, 0.0, 0.0]), ContinuityCorrection::Off).unwrap_err();
        assert!(matches!(err, StatsError::AllDifferencesZero { count: 3, .. }));
        let t = wilcoxon_signed_rank(&pairs(&[1.0, -1.0, 2.0, -2.0]), ContinuityCorrection::Off).unwrap();
        assert_eq!((t.p_value, t.rank_biserial), (1.0, 0.0));
    }
}
