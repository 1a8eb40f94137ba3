//! Bias-corrected and accelerated (BCa) bootstrap interval endpoints.
//!
//! Efron (1987), Efron & Tibshirani (1993, §14.3, eq. 14.14-14.15):
//! with θ̂ the estimate and θ*_b the bootstrap replicates,
//!
//! * bias correction z₀ = Φ⁻¹(p̂), p̂ = (#{θ* < θ̂} + #{θ* ≤ θ̂}) / (2B)
//!   (the mid-rank form that SciPy uses, so ties at θ̂ count half);
//! * acceleration â = Σ U_i³ / (6 (Σ U_i²)^{3/2}), U_i = θ̄₍.₎ - θ₍ᵢ₎ from the
//!   leave-one-out (jackknife) estimates θ₍ᵢ₎;
//! * the interval takes the replicate quantiles at
//!   α_j = Φ(z₀ + (z₀ + z_j) / (1 - â (z₀ + z_j))) for z_j = Φ⁻¹(α/2), Φ⁻¹(1 - α/2).
//!
//! The interval is undefined when z₀ is infinite (every replicate on one side of
//! θ̂), when the jackknife has no spread, or when 1 - â(z₀ + z_j) ≤ 0 (the
//! transformation stops being monotone); those cases return `None`.

use super::interval::ConfidenceInterval;
use super::normal::{normal_cdf, normal_quantile};
use super::probability::ConfidenceLevel;
use super::quantile::linear_quantile;

/// z₀ from the share of replicates below the estimate (mid-rank for ties).
fn bias_correction(sorted_replicates: &[f64], estimate: f64) -> f64 {
    let below = sorted_replicates.partition_point(|&v| v < estimate);
    let at_or_below = sorted_replicates.partition_point(|&v| v <= estimate);
    let share = (below + at_or_below) as f64 / (2 * sorted_replicates.len()) as f64;
    normal_quantile(share)
}

/// Jackknife acceleration â, or `None` when the jackknife values have no spread.
pub(crate) fn acceleration(jackknife: &[f64]) -> Option<f64> {
    let n = jackknife.len() as f64;
    let jackknife_mean = jackknife.iter().sum::<f64>() / n;
    let (squares, cubes) = jackknife.iter().fold((0.0, 0.0), |(s2, s3), &theta| {
        let u = jackknife_mean - theta;
        (s2 + u * u, s3 + u * u * u)
    });
    if squares > 0.0 {
        Some(cubes / (6.0 * squares.powf(1.5)))
    } else {
        None
    }
}

/// The BCa-adjusted tail probability for normal quantile `z_tail`.
fn adjusted_tail(z0: f64, acceleration: f64, z_tail: f64) -> Option<f64> {
    let shifted = z0 + z_tail;
    let denominator = 1.0 - acceleration * shifted;
    if denominator > 0.0 {
        Some(normal_cdf(z0 + shifted / denominator))
    } else {
        None
    }
}

/// BCa interval from ascending replicates, the full-data estimate and the
/// jackknife estimates, or `None` where BCa is undefined (see module docs).
pub(crate) fn bca_interval(
    sorted_replicates: &[f64],
    estimate: f64,
    jackknife: &[f64],
    level: ConfidenceLevel,
) -> Option<ConfidenceInterval> {
    let z0 = bias_correction(sorted_replicates, estimate);
    if !z0.is_finite() {
        return None;
    }
    let a = acceleration(jackknife)?;
    let z_lower = normal_quantile(level.tail_probability());
    let lower_tail = adjusted_tail(z0, a, z_lower)?;
    let upper_tail = adjusted_tail(z0, a, -z_lower)?;
    Some(ConfidenceInterval::from_endpoints(
        linear_quantile(sorted_replicates, lower_tail),
        linear_quantile(sorted_replicates, upper_tail),
        level,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::quantile::sorted_ascending;
    use super::*;

    /// Data set P1 of scripts/stats_reference.py.
    const P1: [f64; 10] = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95];

    /// The fixed, skewed "bootstrap distribution" of the reference script; the
    /// same float operations in the same order give identical values in Python.
    fn fixed_replicates() -> Vec<f64> {
        let b = 200usize;
        let values = (0..b)
            .map(|i| {
                let u = (((i * 37) % b) as f64 + 0.5) / b as f64;
                0.5 + 0.3 * (u - 0.5) + 0.2 * u * u * u
            })
            .collect();
        sorted_ascending(values)
    }

    fn jackknife_means(values: &[f64]) -> Vec<f64> {
        // Brute force, independent of the closed form used in bootstrap.rs.
        (0..values.len())
            .map(|skip| {
                let kept: Vec<f64> = values.iter().enumerate().filter(|&(i, _)| i != skip).map(|(_, &v)| v).collect();
                kept.iter().sum::<f64>() / kept.len() as f64
            })
            .collect()
    }

    #[test]
    fn acceleration_of_mean_is_skewness_formula() {
        // For the mean, U_i ∝ (x_i - x̄), so â = Σ(x-x̄)³ / (6 (Σ(x-x̄)²)^{3/2}).
        // Reference: scripts/stats_reference.py `P1.bca_acceleration`; 1e-12
        // allows for rounding in the leave-one-out means.
        let a = acceleration(&jackknife_means(&P1)).unwrap();
        assert!((a - -0.008641149560011654).abs() < 1e-12, "{a}");
    }

    #[test]
    fn bca_matches_scipy_on_a_fixed_replicate_distribution() {
        // scipy.stats.bootstrap(method="BCa", n_resamples=0, bootstrap_result=<the
        // fixed replicates>) on data P1. Tolerance 1e-12: both sides use the same
        // formulas; differences come only from Φ/Φ⁻¹ rounding (~1e-16) amplified by
        // the replicate spacing (~1e-3 per unit of probability).
        let replicates = fixed_replicates();
        let jackknife = jackknife_means(&P1);
        let estimate = P1.iter().sum::<f64>() / P1.len() as f64;
        let cases = [(0.95, 0.3554971579903685, 0.8150244393767754), (0.90, 0.3609915970756685, 0.7878422771840092)];
        for (level, lower, upper) in cases {
            let level = ConfidenceLevel::new(level).unwrap();
            let ci = bca_interval(&replicates, estimate, &jackknife, level).unwrap();
            assert!((ci.lower() - lower).abs() < 1e-12, "{}", ci.lower());
            assert!((ci.upper() - upper).abs() < 1e-12, "{}", ci.upper());
        }
    }

    #[test]
    fn percentile_endpoints_of_fixed_distribution_match_scipy() {
        // scipy.stats.bootstrap(method="percentile") on the same fixed replicates.
        let replicates = fixed_replicates();
        let cases = [(0.95, 0.35821661234374996, 0.8258083876562502), (0.90, 0.36570356531250003, 0.8045851846875)];
        for (level, lower, upper) in cases {
            let tail = (1.0 - level) / 2.0;
            assert!((linear_quantile(&replicates, tail) - lower).abs() < 1e-12);
            assert!((linear_quantile(&replicates, 1.0 - tail) - upper).abs() < 1e-12);
        }
    }

    #[test]
    fn undefined_cases_return_none() {
        let level = ConfidenceLevel::NINETY_FIVE_PERCENT;
        // Every replicate above the estimate: z0 = -inf.
        assert!(bca_interval(&[1.0, 2.0], 0.0, &[0.1, 0.2], level).is_none());
        // Jackknife without spread.
        assert!(bca_interval(&[1.0, 2.0], 1.5, &[0.3, 0.3], level).is_none());
    }
}
