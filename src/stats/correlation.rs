//! Spearman's rank correlation: Pearson's correlation of the average ranks (ties share the
//! mean of their ranks, as SciPy's `spearmanr` does).

use super::ranks::average_ranks;

/// Spearman's rho of paired values; `None` for fewer than two pairs, unequal lengths, a
/// non-finite value, or a sample whose values are all equal (rho undefined).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (average_ranks(x).ranks, average_ranks(y).ranks);
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}
