//! Standardised effect sizes for paired differences.
//!
//! * Cohen's d_z = mean(d) / sd(d) (Cohen 1988, eq. 2.3.5; Lakens 2013): the
//!   mean difference in units of the spread of the differences.
//! * Hedges' small-sample correction g_z = J(ν)·d_z with ν = n - 1 and
//!   J(ν) = Γ(ν/2) / (√(ν/2) Γ((ν-1)/2)) (Hedges 1981), the exact factor that
//!   makes g unbiased under normality; J → 1 as n grows and is ≈ 1 - 3/(4ν - 1).
//!
//! The rank-based effect size (matched-pairs rank-biserial) comes with the
//! Wilcoxon test, see [`WilcoxonTest::rank_biserial`](super::wilcoxon::WilcoxonTest).

use statrs::function::gamma::ln_gamma;

use super::descriptive::{mean, sample_std_dev};
use super::error::StatsError;
use super::sample::PairedSamples;

/// Cohen's d_z of the differences; an error when all differences are equal.
pub fn cohens_dz(pairs: &PairedSamples) -> Result<f64, StatsError> {
    let d = pairs.differences();
    // Test equality rather than sd > 0: identical values like 0.1 leave a
    // rounding-level sd (~1e-17) that would turn d_z into a meaningless 1e16.
    if d.iter().any(|&v| v != d[0]) {
        let m = mean(d);
        Ok(m / sample_std_dev(d, m))
    } else {
        Err(StatsError::ZeroVariance {
            input: pairs.label().to_owned(),
            value: d[0],
            what: "Cohen's d_z (mean / standard deviation of the differences)",
        })
    }
}

/// Hedges' exact correction factor J(ν) for ν ≥ 2 degrees of freedom.
///
/// Computed through log-gamma so large ν does not overflow Γ.
pub fn hedges_correction(degrees_of_freedom: usize) -> Result<f64, StatsError> {
    if degrees_of_freedom < 2 {
        return Err(StatsError::InvalidCount {
            parameter: "degrees of freedom",
            value: degrees_of_freedom,
            requirement: "Hedges' J needs at least 2 (three pairs); with fewer, report d_z uncorrected",
        });
    }
    let half = degrees_of_freedom as f64 / 2.0;
    Ok((ln_gamma(half) - ln_gamma(half - 0.5)).exp() / half.sqrt())
}

/// Hedges' g_z = J(n - 1)·d_z.
pub fn hedges_gz(pairs: &PairedSamples) -> Result<f64, StatsError> {
    let correction = hedges_correction(pairs.len() - 1)?;
    Ok(correction * cohens_dz(pairs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference: scripts/stats_reference.py, section "effect sizes" (numpy and
    // scipy.special.gamma). Tolerance 1e-12: closed forms; ln_gamma in statrs
    // (Lanczos) is accurate to ~1e-15 relative.
    const P1: [f64; 10] = [0.61, -0.23, 1.42, 0.88, -0.07, 0.35, 1.10, 0.52, -0.41, 0.95];

    #[test]
    fn matches_reference_values() {
        let pairs = PairedSamples::from_differences("P1", P1.to_vec()).unwrap();
        assert!((cohens_dz(&pairs).unwrap() - 0.8490517010830901).abs() < 1e-12);
        assert!((hedges_correction(9).unwrap() - 0.9138748917925523).abs() < 1e-12);
        assert!((hedges_gz(&pairs).unwrap() - 0.7759270314535914).abs() < 1e-12);
        assert!((hedges_correction(29).unwrap() - 0.9738749845967184).abs() < 1e-12);
    }

    #[test]
    fn correction_approaches_one_and_matches_approximation() {
        // Hedges' approximation 1 - 3/(4ν - 1) has error O(ν⁻²); at ν = 1000 the
        // two agree to better than 1e-6, and J < 1 always.
        let j = hedges_correction(1000).unwrap();
        assert!(j < 1.0 && (j - (1.0 - 3.0 / 3999.0)).abs() < 1e-6, "{j}");
        // ν = 2: Γ(1)/(1·Γ(1/2)) = 1/√π exactly.
        assert!((hedges_correction(2).unwrap() - 1.0 / std::f64::consts::PI.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn zero_spread_is_an_error() {
        let pairs = PairedSamples::from_differences("same", vec![0.1, 0.1, 0.1]).unwrap();
        assert!(matches!(cohens_dz(&pairs), Err(StatsError::ZeroVariance { .. })));
        let two = PairedSamples::from_differences("two", vec![0.1, 0.5]).unwrap();
        assert!(matches!(hedges_gz(&two), Err(StatsError::InvalidCount { .. })));
    }
}
