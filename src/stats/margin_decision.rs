//! What an anytime-valid confidence sequence for a difference (positive = better) says against
//! a margin: worse, not worse, or not yet known. `gate` and studies that stop when decided both
//! decide this way, so a decision means the same in either.

use serde::{Deserialize, Serialize};

use super::ConfidenceInterval;

/// The decision about one difference, or about several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// The sequence lies wholly below −margin.
    Worse,
    /// The sequence lies wholly above −margin.
    NotWorse,
    /// The examples ran out with −margin still inside the sequence.
    Undecided,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Worse => "worse",
            Decision::NotWorse => "not-worse",
            Decision::Undecided => "undecided",
        }
    }

    /// `Worse` or `NotWorse` when the interval lies on one side of −margin, else `None` (an
    /// interval touching −margin decides nothing).
    pub fn against_margin(interval: &ConfidenceInterval, margin: f64) -> Option<Decision> {
        Decision::of_bounds(interval.lower(), interval.upper(), margin)
    }

    /// [`Decision::against_margin`] for an interval given by its ends.
    pub fn of_bounds(lower: f64, upper: f64, margin: f64) -> Option<Decision> {
        if upper < -margin {
            Some(Decision::Worse)
        } else if lower > -margin {
            Some(Decision::NotWorse)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_worse_below_the_margin_not_worse_above_and_undecided_across() {
        assert_eq!(Decision::of_bounds(-0.30, -0.05, 0.02), Some(Decision::Worse));
        assert_eq!(Decision::of_bounds(-0.01, 0.10, 0.02), Some(Decision::NotWorse));
        assert_eq!(Decision::of_bounds(-0.05, 0.10, 0.02), None);
        assert_eq!(Decision::of_bounds(-0.05, -0.02, 0.02), None, "touching -margin decides nothing");
        assert_eq!(serde_json::to_value(Decision::NotWorse).unwrap(), "not-worse");
    }
}
