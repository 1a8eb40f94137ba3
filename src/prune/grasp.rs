//! GraSP: gradient signal preservation.
//!
//! Wang, Zhang & Grosse 2020, "Picking Winning Tickets Before Training by Preserving Gradient
//! Flow" (ICLR). Removing a set of weights `δ` changes the gradient norm `‖g‖²` by about
//! `2 δᵀ H g` (Eq. 7, `H` the Hessian of the loss, `g = dL/dw`); removing weight `j` is
//! `δ_j = -w_j`, so Eq. 8 scores `S(-w) = -w ⊙ H g` and the paper removes the weights with the
//! **highest** scores: those whose removal reduces the gradient flow least (or increases it).
//! The authors' code does the same (it keeps the weights whose normalised score is at most the
//! `p`-quantile and scales by `|sum S|`, which does not change the order). Our selection prunes
//! the lowest score, so the score it ranks by is `-S = w ⊙ H g`. `H g` comes from
//! [`crate::model::gradient`] (a central difference of gradients over the prunable weights);
//! the loss is the mean next-token cross-entropy of the calibration set. The paper's softmax
//! temperature (T = 200, for image classifiers at initialisation) is not used: a trained
//! language model is scored at its own temperature.

use super::error::PruneError;
use super::selection::zeros_first;
use super::snip::check_same_shape;
use super::weight::LinearWeight;

/// The paper's score `S = -W ⊙ (H g)` (row-major, f64); the highest are removed.
pub fn grasp_scores(layer: &str, weight: &LinearWeight, hessian_gradient: &[f32]) -> Result<Vec<f64>, PruneError> {
    check_same_shape(layer, "Hessian-gradient product", weight, hessian_gradient)?;
    Ok(weight.data().iter().zip(hessian_gradient).map(|(&w, &hg)| -f64::from(w) * f64::from(hg)).collect())
}

/// What the lowest-first selection ranks by: `-S`, so that the highest `S` goes first, with
/// weights that are already zero before everything. A zero weight's `S` is 0, which sits in the
/// middle of GraSP's signed range, so by score alone it would often be kept.
pub fn grasp_keep_scores(layer: &str, weight: &LinearWeight, hessian_gradient: &[f32]) -> Result<Vec<f64>, PruneError> {
    Ok(zeros_first(weight.data(), grasp_scores(layer, weight, hessian_gradient)?.into_iter().map(|s| -s).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::saliency::{saliency_masks, SaliencyScope, ScoredLayer};
    use super::super::sparsity::{Sparsity, SparsityTarget};
    use super::*;

    #[test]
    fn grasp_removes_the_weights_whose_removal_keeps_the_most_gradient_flow() {
        // L(w) = 1/2 sum_j a_j w_j^2: g = a w, H = diag(a), H g = a^2 w, and the gradient norm
        // after removing w_j alone is ||g||^2 - a_j^2 w_j^2 exactly. GraSP should remove first
        // the weights whose removal costs the least gradient norm: the smallest a_j^2 w_j^2.
        let a = [1.0f64, 3.0, 0.5, 2.0, 1.5, 0.2];
        let w = [0.8f64, -0.1, 2.0, 0.45, -1.2, 3.0];
        let weight = LinearWeight::new("fc", 1, 6, w.iter().map(|&v| v as f32).collect()).unwrap();
        let hg: Vec<f32> = a.iter().zip(&w).map(|(a, w)| (a * a * w) as f32).collect();
        let scores = grasp_scores("fc", &weight, &hg).unwrap();
        // Every S_j = -a_j^2 w_j^2 <= 0; the highest (closest to 0) is the cheapest removal.
        let flow_lost: Vec<f64> = a.iter().zip(&w).map(|(a, w)| a * a * w * w).collect();
        for j in 0..6 {
            assert!((scores[j] + flow_lost[j]).abs() < 1e-5 * flow_lost[j].max(1.0));
        }
        let keep = grasp_keep_scores("fc", &weight, &hg).unwrap();
        let target = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
        let layer = ScoredLayer { name: "fc".into(), rows: 1, cols: 6, scores: keep };
        let mask = &saliency_masks(&[layer], target, SaliencyScope::Layer).unwrap()[0];
        // Brute force: remove the three with the least gradient flow lost.
        let mut order: Vec<usize> = (0..6).collect();
        order.sort_by(|&i, &j| flow_lost[i].total_cmp(&flow_lost[j]));
        for (rank, &j) in order.iter().enumerate() {
            assert_eq!(mask.get(0, j), rank >= 3, "weight {j} (flow lost {})", flow_lost[j]);
        }
        // Flow lost: 0.64, 0.09, 1.0, 0.81, 3.24, 0.36, so weights 1, 5 and 0 go.
        assert!(!mask.get(0, 1) && !mask.get(0, 5) && !mask.get(0, 0) && mask.get(0, 2) && mask.get(0, 3) && mask.get(0, 4));
    }
}
