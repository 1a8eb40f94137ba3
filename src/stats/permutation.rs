//! Paired permutation (sign-flip) test of a mean difference, two-sided.
//!
//! Under H₀ "the two conditions are exchangeable within each pair", each
//! difference d_i is as likely to be +|d_i| as -|d_i| (Fisher 1935; Good 2005,
//! ch. 3). The test statistic is T = |Σ s_i d_i| (equivalent to the absolute
//! mean difference); the p-value is the share of sign vectors s with
//! T(s) ≥ T(observed).
//!
//! A p-value has to be fine enough for the family it enters: Holm over m comparisons needs
//! p ≤ α/m at its first step, so a Monte-Carlo floor of 1/(B+1) would hide every difference
//! once m > α(B+1) (500 comparisons at B = 10,000). The p-value is therefore exact wherever
//! that is cheap, and comes from a tail approximation where resampling cannot resolve it:
//!
//! * n ≤ 20: all 2ⁿ sign vectors are enumerated, so the p-value is exact.
//! * Differences on a lattice (every |d_i| an integer multiple of the smallest one; accuracy
//!   differences are -1, 0 or 1): the distribution of Σ s_i d_i is computed exactly by dynamic
//!   programming over the lattice, so the p-value is exact at any n.
//! * Otherwise B random sign vectors; p = (count + 1) / (B + 1), which counts the
//!   observed assignment as one of the permutations and so never returns 0 and
//!   keeps the test valid (Phipson & Smyth 2010). When fewer than
//!   [`MONTE_CARLO_MIN_EXTREME`] resamples are as extreme, that estimate is no longer
//!   informative (relative error above 30 %, and it cannot go below 1/(B+1)), and the p-value
//!   is the Lugannani-Rice saddlepoint approximation of the sign-flip distribution (Daniels
//!   1954; Robinson 1982, "Saddlepoint approximations for permutation tests and confidence
//!   intervals", JRSS-B): its relative error in the tail is O(1/n), and the tests below check
//!   it against exact distributions.
//!
//! Whatever the method, no sign vector gives a larger |Σ s_i d_i| than the one with every sign
//! aligned, so the smallest p-value a comparison can reach is 2^(1-k) for k non-zero
//! differences ([`PermutationTest::min_p`]): a comparison whose floor is above a family's
//! threshold cannot be significant there, and callers say so.
//!
//! Floating-point sums of the same multiset in different orders can differ in
//! the last bits, which would wrongly break mathematical ties with the observed
//! statistic; values within 1e-12·Σ|d_i| of it therefore count as "as extreme".

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::descriptive::mean;
use super::normal::{normal_pdf, normal_sf};
use super::resampling::{replicate_in_parallel, ResamplingConfig};
use super::sample::PairedSamples;

/// Largest number of pairs for which all 2ⁿ sign vectors are enumerated.
pub const EXACT_ENUMERATION_MAX_PAIRS: usize = 20;

/// Largest n × (lattice span) the exact lattice distribution is computed for (a few tens of
/// milliseconds); wider lattices fall back to resampling.
const LATTICE_MAX_WORK: usize = 50_000_000;

/// Units tried for a lattice: the smallest |d_i| divided by 1, 2, ..., this.
const LATTICE_MAX_DIVISOR: usize = 1000;

/// How close |d_i| / unit must be to an integer for the differences to lie on a lattice.
const LATTICE_RELATIVE_TOLERANCE: f64 = 1e-9;

/// Below this many as-extreme resamples the Monte-Carlo p-value gives way to the saddlepoint.
pub const MONTE_CARLO_MIN_EXTREME: u64 = 10;

/// Relative slack for treating a permuted statistic as tied with the observed one.
const TIE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// How the permutation p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermutationMethod {
    /// All 2ⁿ sign vectors enumerated; the p-value is exact.
    ExactEnumeration,
    /// The exact distribution of the lattice-valued differences; the p-value is exact.
    ExactLattice,
    /// Random sign vectors; p = (count + 1) / (B + 1).
    MonteCarlo,
    /// Lugannani-Rice tail approximation (the observed statistic lies beyond what the
    /// resamples resolve).
    Saddlepoint,
}

/// Result of the sign-flip test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// Observed mean of the differences (first - second).
    pub mean_difference: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The smallest p-value any data with these |d_i| could give: 2^(1-k), k non-zero pairs.
    pub min_p: f64,
    /// How `p_value` was computed.
    pub method: PermutationMethod,
    /// Sign vectors examined: 2ⁿ for exact enumeration, B for Monte-Carlo (and for the
    /// saddlepoint, which follows a Monte-Carlo pass), 0 for the lattice distribution.
    pub permutations: u64,
}

/// Two-sided sign-flip permutation test of the mean of `pairs.differences()`.
///
/// `config` is used only when neither exact method applies.
pub fn sign_flip_test(pairs: &PairedSamples, config: &ResamplingConfig) -> PermutationTest {
    let differences = pairs.differences();
    let min_p = min_attainable_p(differences);
    let (p_value, method, permutations) = if differences.len() <= EXACT_ENUMERATION_MAX_PAIRS {
        let threshold = extremeness_threshold(differences);
        let (count, total) = exact_extreme_count(differences, threshold);
        (count as f64 / total as f64, PermutationMethod::ExactEnumeration, total)
    } else if let Some(p) = Lattice::of(differences).map(|l| l.two_sided_p()) {
        (p, PermutationMethod::ExactLattice, 0)
    } else {
        let threshold = extremeness_threshold(differences);
        let count = monte_carlo_extreme_count(differences, threshold, config);
        let b = config.resamples.get();
        if count < MONTE_CARLO_MIN_EXTREME {
            let p = saddlepoint_two_sided_p(differences).clamp(min_p, 1.0);
            (p, PermutationMethod::Saddlepoint, b as u64)
        } else {
            ((count + 1) as f64 / (b + 1) as f64, PermutationMethod::MonteCarlo, b as u64)
        }
    };
    PermutationTest { mean_difference: mean(differences), p_value, min_p, method, permutations }
}

/// 2^(1-k) for k non-zero differences (1 when there are none): the share of sign vectors that
/// reach the largest |Σ s_i d_i|, the all-aligned one and its mirror image.
pub fn min_attainable_p(differences: &[f64]) -> f64 {
    let k = differences.iter().filter(|d| **d != 0.0).count();
    if k == 0 {
        1.0
    } else {
        0.5f64.powi(k as i32 - 1)
    }
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

/// Differences that are integer multiples of one unit: |d_i| = k_i · unit.
struct Lattice {
    /// k_i of the non-zero differences.
    steps: Vec<usize>,
    /// Σ sign(d_i) k_i, the observed statistic in units.
    observed: i64,
}

impl Lattice {
    /// `None` when the |d_i| share no unit (the smallest of them divided by 1 to
    /// [`LATTICE_MAX_DIVISOR`]; so 0.5 and 0.75 share 0.25), or the exact distribution would
    /// cost more than [`LATTICE_MAX_WORK`].
    fn of(differences: &[f64]) -> Option<Lattice> {
        let smallest = differences.iter().map(|d| d.abs()).filter(|a| *a > 0.0).fold(f64::INFINITY, f64::min);
        if !smallest.is_finite() {
            return Some(Lattice { steps: Vec::new(), observed: 0 });
        }
        (1..=LATTICE_MAX_DIVISOR).find_map(|q| Lattice::with_unit(differences, smallest / q as f64))
    }

    fn with_unit(differences: &[f64], unit: f64) -> Option<Lattice> {
        let mut steps = Vec::new();
        let mut observed = 0i64;
        let mut span = 0usize;
        for &d in differences.iter().filter(|d| **d != 0.0) {
            let ratio = d.abs() / unit;
            let k = ratio.round();
            if (ratio - k).abs() > LATTICE_RELATIVE_TOLERANCE * ratio {
                return None;
            }
            steps.push(k as usize);
            span += k as usize;
            observed += if d > 0.0 { k as i64 } else { -(k as i64) };
        }
        (steps.len().saturating_mul(span) <= LATTICE_MAX_WORK).then_some(Lattice { steps, observed })
    }

    /// P(|Σ s_i k_i| ≥ |observed|). With N the sum of the k_i whose sign is flipped to
    /// negative, Σ s_i k_i = K - 2N, and N's distribution is built one difference at a time
    /// (each flipped with probability 1/2). Only positive terms are added, so the tail keeps
    /// its relative precision however small it is.
    fn two_sided_p(&self) -> f64 {
        let total: usize = self.steps.iter().sum();
        let mut dist = vec![0.0f64; total + 1];
        dist[0] = 1.0;
        let mut reach = 0;
        for &k in &self.steps {
            for n in (0..=reach).rev() {
                let p = dist[n] * 0.5;
                dist[n] = p;
                dist[n + k] += p;
            }
            reach += k;
        }
        let observed = self.observed.unsigned_abs() as i64;
        dist.iter().enumerate().filter(|(n, _)| (total as i64 - 2 * *n as i64).abs() >= observed).map(|(_, p)| p).sum::<f64>().min(1.0)
    }
}

/// Two-sided p ≈ 2 P(T ≥ t), t = |Σ d_i|, T = Σ s_i |d_i|, by Lugannani-Rice on the cumulant
/// generating function K(θ) = Σ ln cosh(θ a_i) of the sign-flip distribution.
fn saddlepoint_two_sided_p(differences: &[f64]) -> f64 {
    let a: Vec<f64> = differences.iter().map(|d| d.abs()).filter(|a| *a > 0.0).collect();
    let t = differences.iter().sum::<f64>().abs();
    let reach: f64 = a.iter().sum();
    let variance: f64 = a.iter().map(|x| x * x).sum();
    if a.is_empty() || t <= 0.0 {
        return 1.0;
    }
    if t >= reach * (1.0 - TIE_RELATIVE_TOLERANCE) {
        return min_attainable_p(differences);
    }
    let k = |theta: f64| a.iter().map(|x| ln_cosh(theta * x)).sum::<f64>();
    let k1 = |theta: f64| a.iter().map(|x| x * (theta * x).tanh()).sum::<f64>();
    let k2 = |theta: f64| a.iter().map(|x| x * x / (theta * x).cosh().powi(2)).sum::<f64>();
    let theta = solve_increasing(k1, k2, t, t / variance);
    let w = (2.0 * (theta * t - k(theta))).max(0.0).sqrt();
    let u = theta * k2(theta).sqrt();
    if w < 1e-6 || u < 1e-12 {
        // At the centre the formula is 0/0; the normal approximation is exact to first order.
        return (2.0 * normal_sf(t / variance.sqrt())).min(1.0);
    }
    let tail = normal_sf(w) + normal_pdf(w) * (1.0 / u - 1.0 / w);
    (2.0 * tail).clamp(0.0, 1.0)
}

/// ln cosh(x) without overflow: |x| + ln(1 + e^(-2|x|)) - ln 2.
fn ln_cosh(x: f64) -> f64 {
    let x = x.abs();
    x + (-2.0 * x).exp().ln_1p() - std::f64::consts::LN_2
}

/// θ ≥ 0 with f(θ) = target for f increasing from f(0) = 0 with derivative `slope`: Newton
/// steps kept inside a bisection bracket.
fn solve_increasing(f: impl Fn(f64) -> f64, slope: impl Fn(f64) -> f64, target: f64, guess: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, guess.max(f64::MIN_POSITIVE));
    while f(hi) < target {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return lo;
        }
    }
    let mut theta = 0.5 * (lo + hi);
    for _ in 0..200 {
        let value = f(theta) - target;
        if value.abs() <= 1e-14 * target {
            break;
        }
        if value > 0.0 {
            hi = theta;
        } else {
            lo = theta;
        }
        let step = slope(theta);
        let newton = theta - value / step;
        theta = if step > 0.0 && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        if hi - lo <= 1e-15 * hi {
            break;
        }
    }
    theta
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
        // One pair more: the lattice distribution takes over, still exact.
        let t = sign_flip_test(&pairs(&[1.0; 21]), &config(100, 0));
        assert_eq!(t.method, PermutationMethod::ExactLattice);
        assert_eq!(t.p_value, 2.0 / 2097152.0);
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
        // Exact p for P6 (n = 22) = 162866 / 2^22 from the reference script. P6 lies on a
        // lattice of 0.001, so its distribution is computed exactly.
        let exact = 162866.0 / 4194304.0;
        let t = sign_flip_test(&pairs(&P6), &config(100, 2024));
        assert_eq!(t.method, PermutationMethod::ExactLattice);
        assert!((t.p_value - exact).abs() < 1e-12, "{}", t.p_value);
        // Off the lattice (each value nudged by an irrational amount far below the tie
        // tolerance's scale but far above the lattice's), Monte-Carlo with B = 20,000: the MC SE
        // is sqrt(p(1-p)/B) ≈ 0.00137; allow 4 SE plus the 1/(B+1) shift of the (count+1)/(B+1)
        // estimator.
        let nudged: Vec<f64> = P6.iter().enumerate().map(|(i, d)| d + 1e-7 * (i as f64 * std::f64::consts::SQRT_2).fract()).collect();
        let b = 20_000;
        let t = sign_flip_test(&pairs(&nudged), &config(b, 2024));
        assert_eq!(t.method, PermutationMethod::MonteCarlo);
        let se = (exact * (1.0 - exact) / b as f64).sqrt();
        assert!((t.p_value - exact).abs() < 4.0 * se + 1.0 / b as f64, "{}", t.p_value);
    }

    #[test]
    fn monte_carlo_is_reproducible_and_p_never_zero() {
        let far: Vec<f64> = (0..25).map(|i| 5.0 + (i as f64 * std::f64::consts::SQRT_2).fract()).collect();
        let c = config(1000, 9);
        let a = sign_flip_test(&pairs(&far), &c);
        assert_eq!(a, sign_flip_test(&pairs(&far), &c));
        // All-positive large differences: no random sign vector reaches T_obs, so the p-value
        // is not the Monte-Carlo floor 1/1001 but the saddlepoint's, which the all-aligned
        // vector's exact share 2^(1-25) bounds from below.
        assert_eq!(a.method, PermutationMethod::Saddlepoint);
        assert!(a.p_value < 1.0 / 1001.0 && a.p_value >= a.min_p, "{}", a.p_value);
        assert_eq!(a.min_p, 0.5f64.powi(24));
    }

    /// P(|2X - k| ≥ |s|) for X ~ Binomial(k, 1/2), from log-binomial coefficients: the sign
    /// test's closed form, which the sign-flip test of ±1 differences must equal.
    fn binomial_two_sided(k: u64, s: i64) -> f64 {
        let ln_choose = |n: u64, r: u64| -> f64 {
            let ln_fact = |m: u64| (1..=m).map(|i| (i as f64).ln()).sum::<f64>();
            ln_fact(n) - ln_fact(r) - ln_fact(n - r)
        };
        (0..=k).filter(|x| (2 * *x as i64 - k as i64).abs() >= s.abs()).map(|x| (ln_choose(k, x) - k as f64 * 2f64.ln()).exp()).sum()
    }

    #[test]
    fn accuracy_differences_get_the_exact_sign_test_p_at_any_n() {
        // 204 examples (SIB-200's test split): 31 won, 9 lost, the rest tied.
        let mut d = vec![0.0; 204];
        d[..31].fill(1.0);
        d[31..40].fill(-1.0);
        let t = sign_flip_test(&pairs(&d), &config(1000, 3));
        assert_eq!(t.method, PermutationMethod::ExactLattice);
        let expected = binomial_two_sided(40, 22);
        assert!((t.p_value - expected).abs() <= 1e-12 * expected, "{} vs {expected}", t.p_value);
        // Far below any Monte-Carlo floor, as a family of hundreds needs: 300 won, none lost.
        let far = sign_flip_test(&pairs(&[1.0; 300]), &config(1000, 3));
        assert_eq!(far.p_value, 0.5f64.powi(299));
        assert_eq!(far.min_p, far.p_value);
    }

    #[test]
    fn lattice_distribution_equals_enumeration() {
        // Integer differences with ties and zeros, n = 18: both exact methods must agree.
        let d: Vec<f64> = (0..18).map(|i| ((i * 7 + 3) % 7) as f64 - 2.0).collect();
        for flip in 0..4 {
            let mut d = d.clone();
            d[flip] = -d[flip] * 2.0;
            let lattice = Lattice::of(&d).unwrap().two_sided_p();
            let (count, total) = exact_extreme_count(&d, extremeness_threshold(&d));
            assert!((lattice - count as f64 / total as f64).abs() < 1e-15, "{d:?}: {lattice} vs {count}/{total}");
        }
        assert_eq!(Lattice::of(&[1.0, -1.5, 2.25, 0.5]).map(|l| (l.steps, l.observed)), Some((vec![4, 6, 9, 2], 9)));
        assert!(Lattice::of(&[1.0, std::f64::consts::PI, std::f64::consts::E]).is_none());
    }

    #[test]
    fn saddlepoint_tracks_the_exact_tail_down_to_1e_10() {
        // 80 differences with magnitudes spread over 500..1499 (a fine lattice, so the exact
        // distribution is computable and behaves like a continuous one). Lugannani-Rice's
        // relative error is O(1/n); the observed error is under 0.15 % here, 1 % leaves margin.
        let magnitudes: Vec<f64> = (0..80).map(|i| 500.0 + ((i * 379) % 1000) as f64).collect();
        for negatives in [30usize, 24, 18, 12] {
            let d: Vec<f64> = magnitudes.iter().enumerate().map(|(i, &a)| if i % 80 < negatives { -a } else { a }).collect();
            let exact = Lattice::of(&d).unwrap().two_sided_p();
            let approx = saddlepoint_two_sided_p(&d);
            assert!(exact < 0.05 && exact > 1e-13, "{negatives}: exact {exact}");
            assert!((approx / exact - 1.0).abs() < 0.01, "{negatives} negatives: saddlepoint {approx} vs exact {exact}");
        }
    }

    #[test]
    fn continuous_differences_resolve_below_the_monte_carlo_floor() {
        // 100 differences around +0.3 with noise: p is far below 1/(B+1) = 1e-3, which is
        // where Holm over 500+ comparisons needs it to be.
        let d: Vec<f64> = (0..100).map(|i| 0.3 + ((i as f64 * 0.7548776662).fract() - 0.5) * std::f64::consts::SQRT_2).collect();
        let t = sign_flip_test(&pairs(&d), &config(999, 4));
        assert_eq!(t.method, PermutationMethod::Saddlepoint);
        assert!(t.p_value < 1e-4 && t.p_value > t.min_p, "{}", t.p_value);
    }
}
