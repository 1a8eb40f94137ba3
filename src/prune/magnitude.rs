//! Magnitude pruning: remove the weights with the smallest absolute value.
//!
//! The classic baseline (Han et al. 2015, "Learning both Weights and Connections for Efficient
//! Neural Networks"; Zhu & Gupta 2017): score `S_ij = |W_ij|`. It ignores the calibration data,
//! which makes it the control condition of a calibration-language benchmark. The scope is the
//! whole matrix by default (as in Sun et al. 2023's magnitude baseline) or each output row; an
//! N:M target always works per group of M inputs in a row. Ties and weights that are already
//! zero follow `selection`'s rules.

use serde::{Deserialize, Serialize};

use super::error::PruneError;
use super::mask::Mask;
use super::selection::{check_group_width, mask_from_matrix_scores, mask_from_row_scores, zeros_first};
use super::sparsity::SparsityTarget;
use super::weight::LinearWeight;

/// Which weights compete with each other for survival in unstructured magnitude pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MagnitudeScope {
    /// The lowest `floor(s * out * in)` of the whole matrix are pruned (ties: lower flat index).
    #[default]
    PerMatrix,
    /// The lowest `floor(s * in)` of each row are pruned (ties: lower column).
    PerRow,
}

/// The magnitude-pruning mask of `weight` for `target`.
pub fn magnitude_mask(layer: &str, weight: &LinearWeight, target: SparsityTarget, scope: MagnitudeScope) -> Result<Mask, PruneError> {
    let (rows, cols) = (weight.out_features(), weight.in_features());
    check_group_width(layer, cols, target)?;
    // |0| is already the lowest score; zeros_first only settles its ties with other zeros.
    let scores = zeros_first(weight.data(), weight.data().iter().map(|w| f64::from(w.abs())).collect());
    Ok(match (target, scope) {
        (SparsityTarget::Unstructured(s), MagnitudeScope::PerMatrix) => {
            mask_from_matrix_scores(&scores, rows, cols, s.pruned_count(rows * cols))
        }
        _ => mask_from_row_scores(&scores, rows, cols, target),
    })
}

#[cfg(test)]
mod tests {
    use super::super::sparsity::Sparsity;
    use super::super::test_support::{brute_force_mask, discrete_layer, nm_targets, unstructured_targets};
    use super::*;

    #[test]
    fn per_row_and_nm_masks_equal_brute_force() {
        for seed in 0..4 {
            let weight = discrete_layer(seed, 6, 24);
            let scores: Vec<f64> = weight.data().iter().map(|w| f64::from(w.abs())).collect();
            for target in unstructured_targets().into_iter().chain(nm_targets()) {
                let mask = magnitude_mask("fc", &weight, target, MagnitudeScope::PerRow).unwrap();
                assert_eq!(mask, brute_force_mask(&scores, 6, 24, target, false), "{target}");
            }
        }
    }

    #[test]
    fn per_matrix_masks_equal_brute_force_with_exact_counts() {
        for seed in 10..14 {
            let weight = discrete_layer(seed, 5, 12);
            let scores: Vec<f64> = weight.data().iter().map(|w| f64::from(w.abs())).collect();
            for target in unstructured_targets() {
                let mask = magnitude_mask("fc", &weight, target, MagnitudeScope::PerMatrix).unwrap();
                assert_eq!(mask, brute_force_mask(&scores, 5, 12, target, true), "{target}");
                let expected = (target.sparsity() * 60.0).floor() as usize;
                assert_eq!(mask.count_pruned(), expected, "{target}");
            }
        }
    }

    #[test]
    fn nm_on_a_width_that_is_not_a_multiple_is_an_error() {
        let weight = discrete_layer(0, 2, 10);
        let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "2:4".parse().unwrap());
        let err = magnitude_mask("attn.o", &weight, target.unwrap(), MagnitudeScope::PerRow);
        assert!(matches!(err, Err(PruneError::InputsNotMultipleOfGroup { .. })));
    }
}
