//! Empirical quantiles by linear interpolation between order statistics.
//!
//! This is definition 7 of Hyndman & Fan (1996), the default of NumPy and of
//! `scipy.stats.quantile`: for sorted x_0..x_{B-1} and probability p,
//! h = (B - 1)p and Q(p) = x_⌊h⌋ + (h - ⌊h⌋)(x_⌊h⌋+1 - x_⌊h⌋).
//! Using the same definition as SciPy keeps bootstrap intervals comparable.

/// Quantile `probability` (clamped to [0, 1]) of an ascending, non-empty slice.
pub(crate) fn linear_quantile(sorted: &[f64], probability: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of an empty replicate set");
    let last = sorted.len() - 1;
    let position = probability.clamp(0.0, 1.0) * last as f64;
    let below = (position.floor() as usize).min(last);
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// Sorts replicate values ascending; they are finite by construction.
pub(crate) fn sorted_ascending(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear_definition_by_hand() {
        // numpy.percentile([1, 2, 4, 8], [0, 25, 50, 90, 100]) = [1, 1.75, 3, 6.8, 8]
        let x = [1.0, 2.0, 4.0, 8.0];
        let expected = [(0.0, 1.0), (0.25, 1.75), (0.5, 3.0), (0.9, 6.8), (1.0, 8.0)];
        for (p, q) in expected {
            assert!((linear_quantile(&x, p) - q).abs() < 1e-12, "p={p}");
        }
    }

    #[test]
    fn single_value_is_every_quantile() {
        assert_eq!(linear_quantile(&[3.5], 0.025), 3.5);
        assert_eq!(linear_quantile(&[3.5], 0.975), 3.5);
    }
}
