//! Descriptive statistics across repeated runs (seeds) and the Student-t interval.
//!
//! For observations x_1..x_n: mean m = Σx/n, sample standard deviation
//! s = sqrt(Σ(x - m)² / (n - 1)), standard error s/√n, and the two-sided
//! interval m ± t_{1-α/2, n-1} · s/√n (Student 1908), which is exact for
//! normally distributed runs and the usual choice for a handful of seeds.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::interval::ConfidenceInterval;
use super::probability::ConfidenceLevel;
use super::sample::Sample;

/// Mean, spread and standard error of a [`Sample`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Descriptives {
    /// Number of observations.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (denominator n - 1).
    pub std_dev: f64,
    /// Standard error of the mean, `std_dev / sqrt(n)`.
    pub std_error: f64,
}

impl Descriptives {
    /// Computes the descriptives of `sample`.
    pub fn of(sample: &Sample) -> Self {
        let values = sample.values();
        let n = values.len();
        let mean = mean(values);
        let std_dev = sample_std_dev(values, mean);
        Descriptives { n, mean, std_dev, std_error: std_dev / (n as f64).sqrt() }
    }
}

/// Arithmetic mean, in input order; NaN for an empty slice (a gap in a table, not a zero).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation given the mean; two passes, because the
/// one-pass Σx² - n·m² formula cancels catastrophically for values like
/// bits-per-byte that differ only in the third decimal.
pub(crate) fn sample_std_dev(values: &[f64], mean: f64) -> f64 {
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (squares / (values.len() - 1) as f64).sqrt()
}

/// Upper `1 - tail` quantile of Student's t with `degrees_of_freedom`.
pub(crate) fn student_t_quantile(upper_probability: f64, degrees_of_freedom: usize) -> f64 {
    let t = StudentsT::new(0.0, 1.0, degrees_of_freedom as f64).expect("degrees of freedom >= 1 are guaranteed by Sample (n >= 2)");
    t.inverse_cdf(upper_probability)
}

/// Two-sided Student-t confidence interval for the mean of `sample`.
///
/// With zero spread the interval collapses to the mean (a width of zero is the
/// honest answer when every seed gave the same number).
pub fn t_interval(sample: &Sample, level: ConfidenceLevel) -> ConfidenceInterval {
    let d = Descriptives::of(sample);
    let t = student_t_quantile(1.0 - level.tail_probability(), d.n - 1);
    let half_width = t * d.std_error;
    ConfidenceInterval::from_endpoints(d.mean - half_width, d.mean + half_width, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: scripts/stats_reference.py, section "descriptives"
    // (numpy mean/std(ddof=1), scipy.stats.sem, scipy.stats.t.interval).
    // Tolerance 1e-10: closed forms; the only approximation is the t quantile,
    // which statrs (inverse regularised beta) and SciPy agree on to ~1e-12.
    const TOL: f64 = 1e-10;

    fn accuracy() -> Sample {
        Sample::new("accuracy", vec![0.712, 0.698, 0.705, 0.721, 0.690]).unwrap()
    }

    fn bpb() -> Sample {
        Sample::new("bpb", vec![3.41, 3.38, 3.45]).unwrap()
    }

    #[test]
    fn descriptives_match_numpy() {
        let d = Descriptives::of(&accuracy());
        assert_eq!(d.n, 5);
        assert!((d.mean - 0.7051999999999999).abs() < TOL);
        assert!((d.std_dev - 0.012029131306956469).abs() < TOL);
        assert!((d.std_error - 0.0053795910625251105).abs() < TOL);
        let d = Descriptives::of(&bpb());
        assert!((d.mean - 3.4133333333333336).abs() < TOL);
        assert!((d.std_dev - 0.0351188458428426).abs() < TOL);
        assert!((d.std_error - 0.020275875100994146).abs() < TOL);
    }

    #[test]
    fn t_interval_matches_scipy() {
        let cases = [
            (accuracy(), 0.95, 0.6902638607264863, 0.7201361392735136),
            (accuracy(), 0.90, 0.6937315360816042, 0.7166684639183957),
            (bpb(), 0.95, 3.326093283981982, 3.500573382684685),
            (bpb(), 0.90, 3.3541280704093777, 3.4725385962572894),
        ];
        for (sample, level, lower, upper) in cases {
            let ci = t_interval(&sample, ConfidenceLevel::new(level).unwrap());
            assert!((ci.lower() - lower).abs() < TOL, "{} {level}: {}", sample.label(), ci.lower());
            assert!((ci.upper() - upper).abs() < TOL, "{} {level}: {}", sample.label(), ci.upper());
        }
    }

    #[test]
    fn constant_sample_gives_zero_width_interval() {
        let s = Sample::new("same", vec![2.5; 4]).unwrap();
        let ci = t_interval(&s, ConfidenceLevel::NINETY_FIVE_PERCENT);
        assert_eq!((ci.lower(), ci.upper()), (2.5, 2.5));
    }
}
