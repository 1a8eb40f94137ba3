//! Adjusted p-values for families of tests: Holm and Benjamini-Hochberg.
//!
//! With m raw p-values sorted ascending, p₍₁₎ ≤ … ≤ p₍ₘ₎:
//! * Holm (1979), controls the family-wise error rate:
//!   p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m - j + 1) p₍ⱼ₎);
//! * Benjamini & Hochberg (1995), controls the false discovery rate:
//!   p̃₍ᵢ₎ = min_{j ≥ i} min(1, m p₍ⱼ₎ / j).
//!
//! The running max/min makes the adjusted values monotone in the raw ones;
//! they are returned in the caller's original order, and a hypothesis is
//! rejected when its adjusted p-value is ≤ α (as in statsmodels `multipletests`).

use serde::{Deserialize, Serialize};

use super::error::StatsError;
use super::probability::Alpha;

/// A non-empty list of p-values, each in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct PValues {
    values: Vec<f64>,
}

impl PValues {
    /// Validates the list; `label` names it in error messages.
    pub fn new(label: &str, values: Vec<f64>) -> Result<Self, StatsError> {
        if values.is_empty() {
            return Err(StatsError::TooFewValues { input: label.to_owned(), required: 1, actual: 0 });
        }
        if let Some(index) = values.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Err(StatsError::InvalidPValue { input: label.to_owned(), index, value: values[index] });
        }
        Ok(PValues { values })
    }

    /// The raw p-values in input order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Which adjustment was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// Holm-Bonferroni step-down (family-wise error rate).
    Holm,
    /// Benjamini-Hochberg step-up (false discovery rate).
    BenjaminiHochberg,
}

/// Adjusted p-values and decisions, in the order of the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustedPValues {
    /// The adjustment used.
    pub adjustment: Adjustment,
    /// The level decisions were taken at.
    pub alpha: Alpha,
    /// Adjusted p-values, capped at 1.
    pub adjusted: Vec<f64>,
    /// `adjusted[i] <= alpha`.
    pub reject: Vec<bool>,
}

/// Holm-Bonferroni adjusted p-values.
pub fn holm(p_values: &PValues, alpha: Alpha) -> AdjustedPValues {
    let m = p_values.values.len() as f64;
    let adjusted = adjust_in_sorted_order(&p_values.values, |sorted| {
        let mut running_max: f64 = 0.0;
        for (j, p) in sorted.iter_mut().enumerate() {
            running_max = running_max.max(((m - j as f64) * *p).min(1.0));
            *p = running_max;
        }
    });
    decide(Adjustment::Holm, alpha, adjusted)
}

/// Benjamini-Hochberg adjusted p-values.
pub fn benjamini_hochberg(p_values: &PValues, alpha: Alpha) -> AdjustedPValues {
    let m = p_values.values.len() as f64;
    let adjusted = adjust_in_sorted_order(&p_values.values, |sorted| {
        let mut running_min: f64 = 1.0;
        for (j, p) in sorted.iter_mut().enumerate().rev() {
            // p·(m/i) rather than m·p/i: the factor is exactly 1 at i = m, so the
            // largest p-value is never rounded below its raw value.
            running_min = running_min.min((*p * (m / (j + 1) as f64)).min(1.0));
            *p = running_min;
        }
    });
    decide(Adjustment::BenjaminiHochberg, alpha, adjusted)
}

/// Sorts ascending (stably, so equal p-values keep input order), lets `adjust`
/// rewrite the sorted values in place, and scatters them back to input order.
fn adjust_in_sorted_order(raw: &[f64], adjust: impl FnOnce(&mut [f64])) -> Vec<f64> {
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]));
    let mut sorted: Vec<f64> = order.iter().map(|&i| raw[i]).collect();
    adjust(&mut sorted);
    let mut adjusted = vec![0.0; raw.len()];
    for (&original_index, value) in order.iter().zip(sorted) {
        adjusted[original_index] = value;
    }
    adjusted
}

fn decide(adjustment: Adjustment, alpha: Alpha, adjusted: Vec<f64>) -> AdjustedPValues {
    let reject = adjusted.iter().map(|&p| p <= alpha.value()).collect();
    AdjustedPValues { adjustment, alpha, adjusted, reject }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference: scripts/stats_reference.py, statsmodels multipletests(alpha=0.05).
    // Tolerance 1e-12: closed forms (a product and a running max/min).
    const RAW: [f64; 7] = [0.01, 0.04, 0.03, 0.005, 0.20, 0.04, 0.5];

    fn raw() -> PValues {
        PValues::new("raw", RAW.to_vec()).unwrap()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn holm_matches_statsmodels() {
        let h = holm(&raw(), Alpha::FIVE_PERCENT);
        assert_close(&h.adjusted, &[0.06, 0.16, 0.15, 0.035, 0.4, 0.16, 0.5]);
        assert_eq!(h.reject, vec![false, false, false, true, false, false, false]);
    }

    #[test]
    fn bh_matches_statsmodels() {
        let bh = benjamini_hochberg(&raw(), Alpha::FIVE_PERCENT);
        assert_close(&bh.adjusted, &[0.035, 0.056, 0.056, 0.035, 0.23333333333333336, 0.056, 0.5]);
        assert_eq!(bh.reject, vec![true, false, false, true, false, false, false]);
    }

    #[test]
    fn properties_hold_on_many_pseudo_random_families() {
        // Holm >= raw, BH >= raw, BH <= Holm, both <= 1, and both monotone in raw p.
        let mut state: u64 = 12345;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for size in 1..40 {
            let raw: Vec<f64> = (0..size).map(|_| next().powi(3)).collect();
            let p = PValues::new("random", raw.clone()).unwrap();
            let h = holm(&p, Alpha::FIVE_PERCENT).adjusted;
            let bh = benjamini_hochberg(&p, Alpha::FIVE_PERCENT).adjusted;
            for i in 0..size {
                assert!(h[i] >= raw[i] && bh[i] >= raw[i] && bh[i] <= h[i] + 1e-15);
                assert!(h[i] <= 1.0 && bh[i] <= 1.0);
                for j in 0..size {
                    if raw[i] <= raw[j] {
                        assert!(h[i] <= h[j] && bh[i] <= bh[j]);
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_invalid_lists() {
        assert!(matches!(PValues::new("p", vec![]), Err(StatsError::TooFewValues { .. })));
        assert!(matches!(PValues::new("p", vec![0.2, 1.5]), Err(StatsError::InvalidPValue { index: 1, .. })));
        assert!(PValues::new("p", vec![f64::NAN]).is_err());
    }
}
