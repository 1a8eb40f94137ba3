//! Masks from gradient saliencies (SNIP, GraSP): one matrix at a time or all layers together.
//!
//! Both papers rank every weight of the network at once ([`SaliencyScope::Global`]); LLM pruning
//! studies give each layer the same sparsity ([`SaliencyScope::Layer`], the default, as Wanda
//! and magnitude do here). With global scope layers end at different sparsities, which the
//! run's sparsity report records per layer. An N:M target is local by nature: the `n`
//! lowest of each group of `m` inputs are pruned whatever the scope, so both scopes give the
//! same N:M mask. Ties follow `selection`'s rule; across layers, the earlier layer (in the
//! order given) is pruned first.

use serde::{Deserialize, Serialize};

use super::error::PruneError;
use super::mask::Mask;
use super::selection::{check_group_width, mask_from_matrix_scores, mask_from_row_scores};
use super::sparsity::SparsityTarget;

/// Which weights compete for survival under a gradient saliency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaliencyScope {
    /// Each matrix pruned to the target on its own.
    #[default]
    Layer,
    /// One ranking over every pruned layer (the papers' setting).
    Global,
}

impl SaliencyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SaliencyScope::Layer => "layer",
            SaliencyScope::Global => "global",
        }
    }
}

impl std::str::FromStr for SaliencyScope {
    type Err = PruneError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "layer" => Ok(SaliencyScope::Layer),
            "global" => Ok(SaliencyScope::Global),
            _ => Err(PruneError::UnknownScope { text: text.to_string() }),
        }
    }
}

/// One layer's scores, row-major `[out][in]`: the lowest are pruned.
pub struct ScoredLayer {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub scores: Vec<f64>,
}

/// The masks of `layers` (same order) for `target` under `scope`.
pub fn saliency_masks(layers: &[ScoredLayer], target: SparsityTarget, scope: SaliencyScope) -> Result<Vec<Mask>, PruneError> {
    for l in layers {
        check_group_width(&l.name, l.cols, target)?;
        if l.scores.len() != l.rows * l.cols || l.scores.iter().any(|s| s.is_nan()) {
            return Err(PruneError::BadSaliency {
                layer: l.name.clone(),
                what: "scores",
                reason: format!("{} values (NaN?) for {} x {}", l.scores.len(), l.rows, l.cols),
            });
        }
    }
    Ok(match (target, scope) {
        (SparsityTarget::Unstructured(s), SaliencyScope::Layer) => {
            layers.iter().map(|l| mask_from_matrix_scores(&l.scores, l.rows, l.cols, s.pruned_count(l.rows * l.cols))).collect()
        }
        (SparsityTarget::Unstructured(s), SaliencyScope::Global) => {
            let total: usize = layers.iter().map(|l| l.scores.len()).sum();
            global_masks(layers, s.pruned_count(total))
        }
        (SparsityTarget::NM(_), _) => layers.iter().map(|l| mask_from_row_scores(&l.scores, l.rows, l.cols, target)).collect(),
    })
}

/// Prunes the `k` lowest scores over all layers: everything below the k-th smallest value, then
/// as many of the scores equal to it as remain, in (layer, flat index) order.
fn global_masks(layers: &[ScoredLayer], k: usize) -> Vec<Mask> {
    let mut masks: Vec<Mask> = layers.iter().map(|l| Mask::all_kept(l.rows, l.cols)).collect();
    if k == 0 {
        return masks;
    }
    let mut all: Vec<f64> = layers.iter().flat_map(|l| l.scores.iter().copied()).collect();
    let k = k.min(all.len());
    let (_, kth, _) = all.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    let threshold = *kth;
    drop(all);
    let below: usize = layers.iter().map(|l| l.scores.iter().filter(|s| s.total_cmp(&threshold).is_lt()).count()).sum();
    let mut ties_left = k - below;
    for (l, mask) in layers.iter().zip(&mut masks) {
        for (index, s) in l.scores.iter().enumerate() {
            let prune = match s.total_cmp(&threshold) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal if ties_left > 0 => {
                    ties_left -= 1;
                    true
                }
                _ => false,
            };
            if prune {
                mask.set(index / l.cols, index % l.cols, false);
            }
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::super::sparsity::Sparsity;
    use super::*;

    fn layer(name: &str, rows: usize, cols: usize, scores: Vec<f64>) -> ScoredLayer {
        ScoredLayer { name: name.into(), rows, cols, scores }
    }

    #[test]
    fn global_scope_prunes_the_lowest_over_all_layers_with_ties_in_order() {
        // Brute force: sort (score, layer, index) and take the first k.
        let a = layer("a", 2, 4, vec![5.0, 1.0, 1.0, 9.0, 0.5, 7.0, 1.0, 3.0]);
        let b = layer("b", 1, 4, vec![1.0, 0.1, 8.0, 2.0]);
        for k_frac in [0.25, 0.5, 0.75] {
            let s = Sparsity::new(k_frac).unwrap();
            let masks = saliency_masks(&[a_clone(&a), a_clone(&b)], SparsityTarget::Unstructured(s), SaliencyScope::Global).unwrap();
            let mut order: Vec<(f64, usize, usize)> = Vec::new();
            for (li, l) in [&a, &b].iter().enumerate() {
                order.extend(l.scores.iter().enumerate().map(|(i, &v)| (v, li, i)));
            }
            order.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
            let k = s.pruned_count(12);
            for (rank, &(_, li, i)) in order.iter().enumerate() {
                let cols = 4;
                assert_eq!(masks[li].get(i / cols, i % cols), rank >= k, "k {k}, layer {li}, index {i}");
            }
        }
    }

    fn a_clone(l: &ScoredLayer) -> ScoredLayer {
        layer(&l.name, l.rows, l.cols, l.scores.clone())
    }

    #[test]
    fn layer_scope_gives_every_matrix_the_target_and_nm_ignores_scope() {
        let a = layer("a", 2, 4, vec![5.0, 1.0, 1.0, 9.0, 0.5, 7.0, 1.0, 3.0]);
        let b = layer("b", 1, 4, vec![1.0, 0.1, 8.0, 2.0]);
        let half = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
        let masks = saliency_masks(&[a_clone(&a), a_clone(&b)], half, SaliencyScope::Layer).unwrap();
        assert_eq!((masks[0].count_pruned(), masks[1].count_pruned()), (4, 2));
        // a: the four lowest are 0.5 (4), then the 1.0s at 1, 2, 6 -> all three.
        assert!(!masks[0].get(1, 0) && !masks[0].get(0, 1) && !masks[0].get(0, 2) && !masks[0].get(1, 2));
        let nm = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
        let layer_nm = saliency_masks(&[a_clone(&a), a_clone(&b)], nm, SaliencyScope::Layer).unwrap();
        let global_nm = saliency_masks(&[a_clone(&a), a_clone(&b)], nm, SaliencyScope::Global).unwrap();
        assert_eq!(layer_nm, global_nm);
        // b row [1, 0.1, 8, 2]: the two lowest are columns 1 and 0.
        assert!(!layer_nm[1].get(0, 0) && !layer_nm[1].get(0, 1) && layer_nm[1].get(0, 2));
    }
}
