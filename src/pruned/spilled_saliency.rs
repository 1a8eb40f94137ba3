//! SNIP and GraSP within a memory budget: the gradients (and GraSP's `H g`) wait in a spill
//! folder ([`crate::calibrate::spill_gradients`]), and each layer is scored and masked from its
//! weight (read from the model folder) and its gradient (read back from the spill), one layer
//! at a time; each block's pruned weights are spilled as the other methods spill them.
//!
//! Global scope ranks every weight of every selected layer at once. Holding all scores (8 bytes
//! per weight) is what the budget forbids, so the cut is found by counting instead: the k-th
//! smallest score is selected digit by digit over the scores' order-preserving 64-bit patterns
//! (four passes of 16 bits, every layer scored again on each pass: a histogram of 65,536 counts
//! is all that is held), then each layer is masked in order with `saliency_masks`'s rule (all
//! below the cut, and as many equal to it as remain, in (layer, flat index) order). The masks
//! are those of the resident ranking, bit for bit.

use crate::calibrate::{CalibrationError, SpilledSaliency};
use crate::model::weights::WeightStore;
use crate::model::{LinearLayer, ModelDir};
use crate::prune::{saliency_masks, LinearWeight, Mask, Method, PruneError, SaliencyScope, ScoredLayer, SparsityTarget};
use crate::runtime::spill::SpillDir;

use super::model::{layers_by_block, masked_layer, saliency_timings, score_layer, LayerFilter, PruneJob, PrunedModel};

/// One selected layer's weight `[out][in]` and its keep-scores, from the spilled gradients.
fn spilled_saliency_of(
    store: &WeightStore,
    saliency: &SpilledSaliency,
    layer: &LinearLayer,
    method: &Method,
) -> Result<(LinearWeight, ScoredLayer), CalibrationError> {
    let [d_in, d_out] = layer.shape;
    let weight = LinearWeight::new(&layer.name, d_out, d_in, store.read_rows(layer)?)?;
    let direction = match method {
        Method::Grasp { .. } => match &saliency.hessian_gradient {
            Some(hg) => hg.rows(layer)?,
            None => {
                return Err(CalibrationError::Invalid(format!("GraSP on {} has no Hessian-gradient product; this is a bug", layer.name)))
            }
        },
        _ => saliency.gradient.rows(layer)?,
    };
    score_layer(layer, weight, &direction, method)
}

/// `job` on the selected layers from spilled gradients, each block's pruned weights written to
/// `spill` as `<prefix>-block-NNN` when the block is done.
pub(super) fn prune_by_spilled_saliency(
    model: &ModelDir,
    saliency: &SpilledSaliency,
    job: &PruneJob,
    filter: &LayerFilter,
    spill: &SpillDir,
    prefix: &str,
) -> Result<PrunedModel, CalibrationError> {
    let t0 = std::time::Instant::now();
    let store = WeightStore::open(&model.dir, &model.card.graph)?;
    let layers: Vec<LinearLayer> = model.card.layers.iter().filter(|l| filter.selects(l)).cloned().collect();
    let scope = job.method.saliency_scope().unwrap_or_default();
    let score = |l: &LinearLayer| spilled_saliency_of(&store, saliency, l, &job.method);
    let mut cut = match job.target {
        SparsityTarget::Unstructured(s) if scope == SaliencyScope::Global => {
            let total: usize = layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
            Some(GlobalCut::find(&layers, s.pruned_count(total), |l| Ok(score(l)?.1))?)
        }
        _ => None,
    };
    let mut overrides = Vec::new();
    let mut outputs = Vec::with_capacity(layers.len());
    for (block, in_block) in layers_by_block(&layers) {
        let mut replacements = Vec::with_capacity(in_block.len());
        for layer in in_block {
            let (weight, scored) = score(&layer)?;
            let mask = match &mut cut {
                Some(cut) => cut.mask(&scored),
                // Layer scope, and N:M under either scope (an N:M mask is local to its groups).
                None => saliency_masks(std::slice::from_ref(&scored), job.target, scope)?.remove(0),
            };
            drop(scored);
            let (o, out) = masked_layer(layer, weight, mask, job.target, model.card.matrix_type())?;
            replacements.push(o);
            outputs.push(out);
        }
        overrides.extend(spill.spill(&format!("{prefix}-block-{block:03}"), replacements)?);
    }
    let timings = saliency_timings(saliency.gradient_s, saliency.hessian_gradient_s, t0);
    Ok(PrunedModel { overrides, layers: outputs, timings })
}

/// The global cut: scores whose key is below `threshold` are pruned, and the first
/// `ties_left` equal to it met in (layer, flat index) order. `None`: nothing is pruned.
struct GlobalCut {
    cut: Option<(u64, usize)>,
}

/// `v`'s place in `f64::total_cmp`'s order as an unsigned integer (the order `saliency_masks`
/// ranks by): negative values flipped whole, non-negative ones above them.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Bits selected per counting pass: 4 passes of a 65,536-entry histogram cover 64 bits.
const DIGIT_BITS: u32 = 16;

impl GlobalCut {
    /// The cut that prunes the `k` lowest of all `layers`' scores, `scores(layer)` giving each
    /// layer's (called four times per layer, in layer order).
    fn find(
        layers: &[LinearLayer],
        k: usize,
        mut scores: impl FnMut(&LinearLayer) -> Result<ScoredLayer, CalibrationError>,
    ) -> Result<Self, CalibrationError> {
        let total: usize = layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
        let k = k.min(total);
        if k == 0 {
            return Ok(GlobalCut { cut: None });
        }
        // Invariant: the k-th smallest key starts with `prefix` (its bits above `shift + 16`),
        // and is the `rank`-th smallest of the keys that do; `below` keys are smaller than it.
        let (mut prefix, mut rank, mut below) = (0u64, k, 0usize);
        for pass in 0..64 / DIGIT_BITS {
            let shift = 64 - DIGIT_BITS * (pass + 1);
            let high = if pass == 0 { 0 } else { u64::MAX << (shift + DIGIT_BITS) };
            let mut counts = vec![0usize; 1 << DIGIT_BITS];
            for layer in layers {
                let scored = scores(layer)?;
                check_scores(&scored)?;
                for &s in &scored.scores {
                    let key = order_key(s);
                    if key & high == prefix {
                        counts[((key >> shift) & ((1 << DIGIT_BITS) - 1)) as usize] += 1;
                    }
                }
            }
            let mut digit = 0;
            while counts[digit] < rank {
                rank -= counts[digit];
                below += counts[digit];
                digit += 1;
            }
            prefix |= (digit as u64) << shift;
        }
        Ok(GlobalCut { cut: Some((prefix, k - below)) })
    }

    /// The next layer's mask (layers must come in the order `find` saw them).
    fn mask(&mut self, scored: &ScoredLayer) -> Mask {
        let mut mask = Mask::all_kept(scored.rows, scored.cols);
        let Some((threshold, ties_left)) = &mut self.cut else { return mask };
        for (index, &s) in scored.scores.iter().enumerate() {
            let key = order_key(s);
            let prune = key < *threshold || (key == *threshold && *ties_left > 0);
            if key == *threshold && prune {
                *ties_left -= 1;
            }
            if prune {
                mask.set(index / scored.cols, index % scored.cols, false);
            }
        }
        mask
    }
}

/// The check `saliency_masks` makes before ranking: one finite-or-infinite score per weight.
fn check_scores(l: &ScoredLayer) -> Result<(), PruneError> {
    if l.scores.len() != l.rows * l.cols || l.scores.iter().any(|s| s.is_nan()) {
        return Err(PruneError::BadSaliency {
            layer: l.name.clone(),
            what: "scores",
            reason: format!("{} values (NaN?) for {} x {}", l.scores.len(), l.rows, l.cols),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::Sparsity;

    fn layer(name: &str, block: usize, rows: usize, cols: usize) -> LinearLayer {
        let role = crate::model::decoder::Role::Up;
        LinearLayer { name: name.into(), block, role, shape: [cols, rows], input: "ffn_in".into(), transposed: false }
    }

    /// The order key sorts exactly as `total_cmp`, across signs, zeros and infinities.
    #[test]
    fn order_keys_sort_as_total_cmp() {
        let values = [f64::NEG_INFINITY, -3.5, -1e-300, -0.0, 0.0, 1e-300, 2.0, 2.0000000000000004, f64::INFINITY];
        for a in values {
            for b in values {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} vs {b}");
            }
        }
    }

    /// Scores full of ties (few distinct values, zeros pruned first as -inf, both signs) across
    /// three layers: the counted cut gives `saliency_masks`' global masks at every sparsity.
    #[test]
    fn the_counted_cut_equals_the_resident_global_ranking() {
        let shapes = [(3usize, 8usize), (2, 8), (4, 4)];
        let layers: Vec<LinearLayer> = shapes.iter().enumerate().map(|(i, &(r, c))| layer(&format!("l{i}"), i / 2, r, c)).collect();
        let mut seed = 12345u64;
        let scored: Vec<ScoredLayer> = layers
            .iter()
            .zip(shapes)
            .map(|(l, (r, c))| {
                let scores = (0..r * c)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        match seed >> 61 {
                            0 => f64::NEG_INFINITY,
                            1 => -0.0,
                            2 => 0.0,
                            v => (v as f64 - 4.5) * 0.25,
                        }
                    })
                    .collect();
                ScoredLayer { name: l.name.clone(), rows: r, cols: c, scores }
            })
            .collect();
        let copy = |s: &ScoredLayer| ScoredLayer { name: s.name.clone(), rows: s.rows, cols: s.cols, scores: s.scores.clone() };
        for sparsity in [0.0, 0.1, 0.25, 0.5, 0.7, 0.99] {
            let s = Sparsity::new(sparsity).unwrap();
            let resident =
                saliency_masks(&scored.iter().map(copy).collect::<Vec<_>>(), SparsityTarget::Unstructured(s), SaliencyScope::Global)
                    .unwrap();
            let total = scored.iter().map(|l| l.scores.len()).sum();
            let mut passes = 0;
            let mut cut = GlobalCut::find(&layers, s.pruned_count(total), |l| {
                passes += 1;
                Ok(copy(scored.iter().find(|x| x.name == l.name).unwrap()))
            })
            .unwrap();
            assert!(passes == 0 || passes == 4 * layers.len(), "{passes}");
            let counted: Vec<Mask> = scored.iter().map(|l| cut.mask(l)).collect();
            assert_eq!(counted, resident, "sparsity {sparsity}");
        }
    }
}
