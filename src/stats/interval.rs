//! A two-sided confidence interval with its nominal coverage.

use serde::{Deserialize, Serialize};

use super::probability::ConfidenceLevel;

/// A two-sided interval `[lower, upper]` with `lower <= upper`, and the
/// coverage it was built for. Constructed only by this module's estimators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    lower: f64,
    upper: f64,
    level: ConfidenceLevel,
}

impl ConfidenceInterval {
    /// Builds an interval from two endpoints in either order.
    ///
    /// Ordering here, rather than trusting callers, keeps `lower <= upper` an invariant.
    pub(crate) fn from_endpoints(a: f64, b: f64, level: ConfidenceLevel) -> Self {
        ConfidenceInterval { lower: a.min(b), upper: a.max(b), level }
    }

    /// Lower endpoint.
    pub fn lower(&self) -> f64 {
        self.lower
    }

    /// Upper endpoint.
    pub fn upper(&self) -> f64 {
        self.upper
    }

    /// Nominal coverage.
    pub fn level(&self) -> ConfidenceLevel {
        self.level
    }

    /// Whether `value` lies inside the closed interval.
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }

    /// `upper - lower`.
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}
