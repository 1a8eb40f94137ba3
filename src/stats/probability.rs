//! Validated probability-like parameters: significance levels and confidence levels.
//!
//! A bare `f64` cannot say whether it means "0.05 significance" or "0.95 coverage",
//! and both must lie strictly inside (0, 1) for quantiles to be finite. These
//! newtypes make the meaning explicit and the invalid values unrepresentable.

use serde::{Deserialize, Serialize};

use super::error::StatsError;

fn check_open_unit_interval(parameter: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange { parameter, value, allowed: "the open interval (0, 1) (e.g. 0.05)" })
    }
}

/// A significance level (type-I error rate) strictly inside (0, 1).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Alpha(f64);

impl Alpha {
    /// The conventional 5 % level.
    pub const FIVE_PERCENT: Alpha = Alpha(0.05);
    /// The 10 % level, common for Nemenyi critical-difference diagrams.
    pub const TEN_PERCENT: Alpha = Alpha(0.10);

    /// Validates that `value` lies strictly between 0 and 1.
    pub fn new(value: f64) -> Result<Self, StatsError> {
        check_open_unit_interval("alpha", value).map(Alpha)
    }

    /// The level as a plain number.
    pub fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Alpha {
    type Error = StatsError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Alpha::new(value)
    }
}

impl From<Alpha> for f64 {
    fn from(alpha: Alpha) -> f64 {
        alpha.0
    }
}

/// The nominal coverage of a two-sided confidence interval, strictly inside (0, 1).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ConfidenceLevel(f64);

impl ConfidenceLevel {
    /// 95 % coverage.
    pub const NINETY_FIVE_PERCENT: ConfidenceLevel = ConfidenceLevel(0.95);
    /// 90 % coverage.
    pub const NINETY_PERCENT: ConfidenceLevel = ConfidenceLevel(0.90);

    /// Validates that `value` lies strictly between 0 and 1.
    pub fn new(value: f64) -> Result<Self, StatsError> {
        check_open_unit_interval("confidence level", value).map(ConfidenceLevel)
    }

    /// The coverage as a plain number.
    pub fn value(self) -> f64 {
        self.0
    }

    /// Probability mass left in each tail of a two-sided interval, `(1 - level) / 2`.
    pub fn tail_probability(self) -> f64 {
        (1.0 - self.0) / 2.0
    }
}

impl Default for ConfidenceLevel {
    fn default() -> Self {
        ConfidenceLevel::NINETY_FIVE_PERCENT
    }
}

impl TryFrom<f64> for ConfidenceLevel {
    type Error = StatsError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        ConfidenceLevel::new(value)
    }
}

impl From<ConfidenceLevel> for f64 {
    fn from(level: ConfidenceLevel) -> f64 {
        level.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_boundaries_and_non_finite_values() {
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(Alpha::new(bad).is_err(), "alpha {bad} accepted");
            assert!(ConfidenceLevel::new(bad).is_err(), "level {bad} accepted");
        }
    }

    #[test]
    fn tail_probability_splits_the_complement_evenly() {
        let level = ConfidenceLevel::new(0.9).unwrap();
        assert!((level.tail_probability() - 0.05).abs() < 1e-15);
    }

    #[test]
    fn deserialising_revalidates() {
        let ok: Alpha = serde_json::from_str("0.05").unwrap();
        assert_eq!(ok.value(), 0.05);
        assert!(serde_json::from_str::<Alpha>("1.5").is_err());
        assert!(serde_json::from_str::<ConfidenceLevel>("0").is_err());
    }
}
