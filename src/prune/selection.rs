//! Turning importance scores into a mask, with one deterministic tie rule.
//!
//! Every method here prunes the lowest-scoring weights of some scope (a row, an N:M group, a
//! whole matrix or a SparseGPT block). Equal scores are common (zero weights, dead input
//! channels), so the order is made total: **among equal scores, the element with the lower index
//! within the scope is pruned first**. Within a row that index is the column; within a whole
//! matrix or a SparseGPT block it is the row-major flat index (lower row first, then lower
//! column). Selection uses `select_nth_unstable_by`, O(len) on average, with that total order,
//! so the result equals what a full stable sort would give.
//!
//! **A weight that is already zero is pruned before any other** ([`zeros_first`]). Models arrive
//! with exact zeros (quantised checkpoints dequantise some weights to 0), and a zero weight
//! costs nothing to prune whatever its score says: GraSP scores it 0, in the middle of its
//! range, and SNIP and Wanda give it the same 0 as a weight on a dead input. Left to the score,
//! such zeros can be kept while other weights are pruned, and the layer ends with more zeros
//! than the target (on Gemma 3 270M, GraSP at 50% left 52.2%). Pruned first, they count toward
//! the target, so a scope ends with exactly its share of zeros unless it already held more.

use rayon::prelude::*;

use super::error::PruneError;
use super::mask::Mask;
use super::sparsity::SparsityTarget;

/// `scores` with every score of an exact-zero weight (`-0.0` included) lowered to `-inf`, so the
/// selection prunes those weights first; ties among them keep the lower-index rule.
pub(super) fn zeros_first(weights: &[f32], mut scores: Vec<f64>) -> Vec<f64> {
    assert_eq!(weights.len(), scores.len(), "one score per weight");
    for (score, _) in scores.iter_mut().zip(weights).filter(|(_, &w)| w == 0.0) {
        *score = f64::NEG_INFINITY;
    }
    scores
}

/// Indices (ascending) of the `k` lowest `scores` under the module's tie rule. Scores must not be
/// NaN (callers only pass scores built from validated finite weights and statistics).
pub(super) fn lowest_k(scores: &[f64], k: usize) -> Vec<usize> {
    let k = k.min(scores.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if k > 0 && k < scores.len() {
        order.select_nth_unstable_by(k - 1, |&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    }
    order.truncate(k);
    order.sort_unstable();
    order
}

/// Columns of one row to prune: the `k` lowest for unstructured targets, the `n` lowest of each
/// group of `m` for N:M targets (the caller has checked `cols % m == 0`).
pub(super) fn pruned_columns_of_row(row_scores: &[f64], target: SparsityTarget) -> Vec<usize> {
    match target {
        SparsityTarget::Unstructured(s) => lowest_k(row_scores, s.pruned_count(row_scores.len())),
        SparsityTarget::NM(nm) => row_scores
            .chunks(nm.m())
            .enumerate()
            .flat_map(|(group, group_scores)| lowest_k(group_scores, nm.n()).into_iter().map(move |c| group * nm.m() + c))
            .collect(),
    }
}

/// A mask pruning each row independently (per-row scope), rows processed in parallel.
pub(super) fn mask_from_row_scores(scores: &[f64], rows: usize, cols: usize, target: SparsityTarget) -> Mask {
    assert_eq!(scores.len(), rows * cols, "score matrix shape");
    let mut mask = Mask::all_kept(rows, cols);
    if cols == 0 {
        return mask;
    }
    let pruned: Vec<Vec<usize>> = scores.par_chunks(cols).map(|row_scores| pruned_columns_of_row(row_scores, target)).collect();
    for (row, columns) in pruned.iter().enumerate() {
        for &col in columns {
            mask.set(row, col, false);
        }
    }
    mask
}

/// A mask pruning the `k` lowest scores of the whole matrix (per-matrix scope).
pub(super) fn mask_from_matrix_scores(scores: &[f64], rows: usize, cols: usize, k: usize) -> Mask {
    assert_eq!(scores.len(), rows * cols, "score matrix shape");
    let mut mask = Mask::all_kept(rows, cols);
    for index in lowest_k(scores, k) {
        mask.set(index / cols, index % cols, false);
    }
    mask
}

/// Rejects N:M targets on layers whose width is not a multiple of M.
pub(super) fn check_group_width(layer: &str, in_features: usize, target: SparsityTarget) -> Result<(), PruneError> {
    match target {
        SparsityTarget::NM(nm) if !in_features.is_multiple_of(nm.m()) => {
            Err(PruneError::InputsNotMultipleOfGroup { layer: layer.to_string(), in_features, n: nm.n(), m: nm.m() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_k_breaks_ties_by_lower_index() {
        let scores = [3.0, 1.0, 2.0, 1.0, 0.5, 2.0, 1.0];
        assert_eq!(lowest_k(&scores, 0), Vec::<usize>::new());
        assert_eq!(lowest_k(&scores, 1), vec![4]);
        // 0.5 then the three 1.0s at 1, 3, 6: k = 3 takes 4, 1, 3.
        assert_eq!(lowest_k(&scores, 3), vec![1, 3, 4]);
        assert_eq!(lowest_k(&scores, 5), vec![1, 2, 3, 4, 6]);
        assert_eq!(lowest_k(&scores, 99), (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn group_width_is_checked() {
        let target = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
        let err = check_group_width("mlp.down", 10, target).unwrap_err();
        assert!(matches!(err, PruneError::InputsNotMultipleOfGroup { in_features: 10, m: 4, .. }));
        assert!(err.to_string().contains("mlp.down"));
        assert!(check_group_width("mlp.down", 12, target).is_ok());
    }
}
