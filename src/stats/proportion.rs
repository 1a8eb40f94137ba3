//! Wilson's score interval for a binomial proportion, e.g. an accuracy over n examples.
//!
//! For p̂ = k/n and z = Φ⁻¹(1 - α/2) the interval is (Wilson 1927; Agresti & Coull 1998)
//!
//! ```text
//! (p̂ + z²/2n ± z·sqrt(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)
//! ```
//!
//! Unlike p̂ ± z·sqrt(p̂(1-p̂)/n) (Wald), it never leaves [0, 1] and does not collapse to a
//! point at 0/n or n/n: with 12 of 12 correct it is [n/(n+z²), 1] = [0.758, 1], where Wald
//! gives [1, 1]. It keeps close to nominal coverage down to the dozen-example task sets a quick
//! study scores.

use super::error::StatsError;
use super::interval::ConfidenceInterval;
use super::normal::normal_quantile;
use super::probability::ConfidenceLevel;

/// Wilson's interval for `proportion` (successes / n) observed over `n` trials.
pub fn wilson_interval(proportion: f64, n: usize, level: ConfidenceLevel) -> Result<ConfidenceInterval, StatsError> {
    if !(0.0..=1.0).contains(&proportion) {
        return Err(StatsError::OutOfRange { parameter: "proportion", value: proportion, allowed: "[0, 1] (successes / trials)" });
    }
    if n == 0 {
        return Err(StatsError::TooFewValues { input: "trials of a proportion".into(), required: 1, actual: 0 });
    }
    let z = normal_quantile(1.0 - level.tail_probability());
    let (p, n) = (proportion, n as f64);
    let z2n = z * z / n;
    let centre = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z / (1.0 + z2n) * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt();
    // At p = 0 (p = 1) the lower (upper) end is exactly 0 (1); the two terms cancel only up to
    // rounding, so the ends are set rather than computed.
    let lower = if p == 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let upper = if p == 1.0 { 1.0 } else { (centre + half).min(1.0) };
    Ok(ConfidenceInterval::from_endpoints(lower, upper, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-12;

    /// Reference values from Python's `statistics.NormalDist().inv_cdf(0.975)` and the closed
    /// form above, evaluated independently of this code; the all-correct and all-wrong cases
    /// also against their own closed forms n/(n+z²) and z²/(n+z²).
    #[test]
    fn matches_independently_computed_values() {
        let level = ConfidenceLevel::NINETY_FIVE_PERCENT;
        let cases = [
            (12, 12, 0.7575059933447593, 1.0),
            (0, 12, 0.0, 0.2424940066552408),
            (7, 12, 0.3195113125495498, 0.8067396863412434),
            (3, 40, 0.025836025774588198, 0.19864233524310543),
        ];
        for (k, n, lower, upper) in cases {
            let ci = wilson_interval(k as f64 / n as f64, n, level).unwrap();
            assert!((ci.lower() - lower).abs() < TOL && (ci.upper() - upper).abs() < TOL, "{k}/{n}: {ci:?}");
            assert!(ci.lower() >= 0.0 && ci.upper() <= 1.0);
        }
        let z = 1.959963984540054_f64;
        let all = wilson_interval(1.0, 12, level).unwrap();
        assert!((all.lower() - 12.0 / (12.0 + z * z)).abs() < TOL);
        let none = wilson_interval(0.0, 12, level).unwrap();
        assert!((none.upper() - z * z / (12.0 + z * z)).abs() < TOL);
    }

    #[test]
    fn rejects_what_is_not_a_proportion() {
        let level = ConfidenceLevel::NINETY_FIVE_PERCENT;
        assert!(wilson_interval(1.5, 10, level).is_err());
        assert!(wilson_interval(f64::NAN, 10, level).is_err());
        assert!(wilson_interval(0.5, 0, level).is_err());
    }
}
