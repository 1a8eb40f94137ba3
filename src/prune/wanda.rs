//! Wanda: prune by weight magnitude times input activation norm.
//!
//! Sun, Liu, Bair & Kolter 2023, "A Simple and Effective Pruning Approach for Large Language
//! Models". Score `S_ij = |W_ij| * ||X_j||_2`, where `||X_j||_2` is the L2 norm of input
//! channel `j` over all calibration tokens. Comparison group ("per output" in the paper): each
//! output row on its own; the `k = floor(s * in_features)` lowest scores of each row are pruned. For N:M
//! targets the `n` lowest of each group of `m` consecutive inputs are pruned. The weights are
//! not updated. Ties follow `selection`'s rule (lower column first), and weights that are already
//! zero are pruned first.

use super::error::PruneError;
use super::mask::Mask;
use super::selection::{check_group_width, mask_from_row_scores, zeros_first};
use super::sparsity::SparsityTarget;
use super::statistics::InputStatistics;
use super::weight::LinearWeight;

/// Wanda's score matrix `|W_ij| * ||X_j||_2` (row-major), in f64.
pub fn wanda_scores(weight: &LinearWeight, column_norms: &[f64]) -> Vec<f64> {
    weight
        .data()
        .chunks(weight.in_features().max(1))
        .flat_map(|row| row.iter().zip(column_norms).map(|(w, n)| f64::from(w.abs()) * n))
        .collect()
}

/// The Wanda mask of `weight` for `target`, given its input's calibration statistics.
pub fn wanda_mask(layer: &str, weight: &LinearWeight, statistics: &InputStatistics, target: SparsityTarget) -> Result<Mask, PruneError> {
    let (rows, cols) = (weight.out_features(), weight.in_features());
    check_group_width(layer, cols, target)?;
    check_statistics(layer, cols, statistics)?;
    // A weight on a dead input scores 0 like a zero weight; the zero weight goes first.
    let scores = zeros_first(weight.data(), wanda_scores(weight, &statistics.column_norms()));
    Ok(mask_from_row_scores(&scores, rows, cols, target))
}

/// Statistics must match the layer's width and hold at least one token.
pub(super) fn check_statistics(layer: &str, in_features: usize, statistics: &InputStatistics) -> Result<(), PruneError> {
    if statistics.width() != in_features {
        return Err(PruneError::StatisticsWidth {
            layer: layer.to_string(),
            statistics: statistics.label().to_string(),
            expected: in_features,
            found: statistics.width(),
        });
    }
    if statistics.tokens() == 0 {
        return Err(PruneError::NoCalibrationTokens { layer: layer.to_string(), statistics: statistics.label().to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{brute_force_mask, discrete_layer, nm_targets, unstructured_targets};
    use super::*;

    /// Activations whose channel norms take few distinct values, so scores tie often.
    fn statistics_with_repeated_norms(width: usize) -> InputStatistics {
        let mut stats = InputStatistics::new("fc.input", width, false);
        let x: Vec<f32> = (0..3 * width).map(|i| ((i % width) % 3) as f32).collect();
        stats.accumulate(&x, 3).unwrap();
        stats
    }

    #[test]
    fn masks_equal_brute_force_per_row() {
        let (rows, cols) = (7, 16);
        let stats = statistics_with_repeated_norms(cols);
        // Independent score: |w| * sqrt(3 * c^2) with c = col % 3 (three tokens of value c),
        // below everything for a weight that is already zero (then a dead input's weight, whose
        // score is also 0, must not go first by its lower column).
        let norms: Vec<f64> = (0..cols).map(|j| (3.0 * ((j % 3) as f64).powi(2)).sqrt()).collect();
        for seed in 0..4 {
            let weight = discrete_layer(seed, rows, cols);
            let scores: Vec<f64> = weight
                .data()
                .iter()
                .enumerate()
                .map(|(i, &w)| if w == 0.0 { f64::NEG_INFINITY } else { f64::from(w.abs()) * norms[i % cols] })
                .collect();
            for target in unstructured_targets().into_iter().chain(nm_targets()) {
                let mask = wanda_mask("fc", &weight, &stats, target).unwrap();
                assert_eq!(mask, brute_force_mask(&scores, rows, cols, target, false), "{target}");
                if let SparsityTarget::Unstructured(s) = target {
                    for row in 0..rows {
                        assert_eq!(mask.count_pruned_in_row(row), s.pruned_count(cols));
                    }
                }
            }
        }
    }

    #[test]
    fn mismatched_or_empty_statistics_are_errors() {
        let weight = discrete_layer(0, 2, 8);
        let target = unstructured_targets()[2];
        let wrong_width = statistics_with_repeated_norms(9);
        assert!(matches!(wanda_mask("fc", &weight, &wrong_width, target), Err(PruneError::StatisticsWidth { expected: 8, found: 9, .. })));
        let empty = InputStatistics::new("fc.input", 8, false);
        assert!(matches!(wanda_mask("fc", &weight, &empty, target), Err(PruneError::NoCalibrationTokens { .. })));
    }
}
