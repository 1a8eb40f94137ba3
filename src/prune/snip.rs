//! SNIP: connection sensitivity.
//!
//! Lee, Ajanthan & Torr 2019, "SNIP: Single-shot Network Pruning based on Connection
//! Sensitivity" (ICLR). Eq. 6 scores each weight by `s_j = |g_j(w; D)|`, the magnitude of the
//! derivative of the loss with respect to a multiplicative gate on the connection, which at
//! gate 1 is `|w_j * dL/dw_j|`. Here `L` is the mean next-token cross-entropy over the whole
//! calibration set (the gradient accumulated over every window, then the product taken once, as
//! the paper does for its batch); the lowest scores are pruned (the paper keeps the top `κ`,
//! normalising by the sum, which does not change the order). The weights are not updated.

use super::error::PruneError;
use super::selection::zeros_first;
use super::weight::LinearWeight;

/// `|W_ij * G_ij|` (row-major, f64) for a layer and its loss gradient in the same layout.
pub fn snip_scores(layer: &str, weight: &LinearWeight, gradient: &[f32]) -> Result<Vec<f64>, PruneError> {
    check_same_shape(layer, "gradient", weight, gradient)?;
    Ok(weight.data().iter().zip(gradient).map(|(&w, &g)| (f64::from(w) * f64::from(g)).abs()).collect())
}

/// What the lowest-first selection ranks by: the score, with weights that are already zero first
/// (a nonzero weight whose gradient is 0 also scores 0, and must not take a zero's place).
pub fn snip_keep_scores(layer: &str, weight: &LinearWeight, gradient: &[f32]) -> Result<Vec<f64>, PruneError> {
    Ok(zeros_first(weight.data(), snip_scores(layer, weight, gradient)?))
}

/// `values` must be finite and as many as the layer's weights.
pub(super) fn check_same_shape(layer: &str, what: &'static str, weight: &LinearWeight, values: &[f32]) -> Result<(), PruneError> {
    let reason = if values.len() != weight.data().len() {
        format!("{} values for a {} x {} layer", values.len(), weight.out_features(), weight.in_features())
    } else if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        format!("value {} at flat index {i}", values[i])
    } else {
        return Ok(());
    };
    Err(PruneError::BadSaliency { layer: layer.to_string(), what, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snip_is_the_first_order_change_of_the_loss_when_a_weight_is_removed() {
        // L(w) = sum_j a_j w_j (linear, so the first-order estimate is exact): removing w_j
        // changes L by -a_j w_j, whose magnitude SNIP's score is.
        let a = [0.5f32, -2.0, 0.25, 1.0];
        let w = LinearWeight::new("fc", 1, 4, vec![2.0, 0.1, -4.0, 0.3]).unwrap();
        let scores = snip_scores("fc", &w, &a).unwrap();
        for j in 0..4 {
            let mut removed = w.data().to_vec();
            removed[j] = 0.0;
            let change: f64 = a.iter().zip(&removed).zip(w.data()).map(|((&a, &r), &w)| f64::from(a) * (f64::from(r) - f64::from(w))).sum();
            assert!((scores[j] - change.abs()).abs() < 1e-12);
        }
        assert!(snip_scores("fc", &w, &a[..3]).is_err());
        assert!(snip_scores("fc", &w, &[f32::NAN, 0.0, 0.0, 0.0]).is_err());
    }
}
