//! [`SparsityReport`]: what was asked of a layer and what its mask actually achieves.
//!
//! Achieved sparsity is counted from the mask to the element (pruned / total), never derived
//! from the request, because floors, N:M groups and SparseGPT's per-block selection make the two
//! differ slightly and the benchmark reports the true figure. The zeros of the pruned weights
//! are counted too: the methods prune weights that are already zero first, so the two agree
//! unless a row or N:M group already held more zeros than its share, or a weight SparseGPT
//! kept came out exactly zero; then the zeros are the model's true sparsity.

use serde::{Deserialize, Serialize};

use super::mask::Mask;
use super::sparsegpt::DampingUsed;
use super::sparsity::{Pattern, SparsityTarget};

/// Per-layer summary of a pruning result; serialisable for the run's index files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparsityReport {
    /// Layer name.
    pub layer: String,
    /// Requested fraction of pruned weights (N/M for N:M patterns).
    pub requested: f64,
    /// The requested pattern.
    pub pattern: Pattern,
    /// Number of weights the mask prunes.
    pub pruned: u64,
    /// Number of weights in the layer.
    pub total: u64,
    /// `pruned / total` (0 for an empty layer).
    pub achieved: f64,
    /// For N:M requests, whether every group satisfies the pattern; `None` for unstructured.
    pub nm_valid: Option<bool>,
    /// Weights exactly zero after pruning: the pruned ones plus any zero the mask kept. `None`
    /// in mask indexes written before these were counted.
    #[serde(default)]
    pub zeros: Option<u64>,
    /// SparseGPT: the Hessian dampening the layer was solved with (absent for other methods,
    /// and in reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping: Option<DampingUsed>,
}

impl SparsityReport {
    /// Measures `mask` against the request `target`, and counts the zeros of `pruned_weights`
    /// (the layer's weights after pruning, row-major like the mask).
    pub fn new(layer: &str, target: SparsityTarget, mask: &Mask, pruned_weights: &[f32]) -> Self {
        assert_eq!(pruned_weights.len(), mask.len(), "one weight per mask entry");
        let zeros = pruned_weights.iter().filter(|&&w| w == 0.0).count() as u64;
        let pruned = mask.count_pruned() as u64;
        let total = mask.len() as u64;
        let achieved = if total == 0 { 0.0 } else { pruned as f64 / total as f64 };
        let nm_valid = match target {
            SparsityTarget::Unstructured(_) => None,
            SparsityTarget::NM(nm) => Some(mask.is_nm_valid(nm)),
        };
        Self {
            layer: layer.to_string(),
            requested: target.sparsity(),
            pattern: target.pattern(),
            pruned,
            total,
            achieved,
            nm_valid,
            zeros: Some(zeros),
            damping: None,
        }
    }

    /// Weights that are zero after pruning (the mask's count where they were not recorded).
    pub fn zero_count(&self) -> u64 {
        self.zeros.unwrap_or(self.pruned)
    }

    /// `zero_count / total` (0 for an empty layer): the sparsity the pruned layer really has.
    pub fn zero_fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.zero_count() as f64 / self.total as f64
        }
    }

    /// The report with the dampening SparseGPT used on the layer recorded.
    pub fn with_damping(mut self, damping: Option<DampingUsed>) -> Self {
        self.damping = damping;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::sparsity::Sparsity;
    use super::*;

    #[test]
    fn report_counts_the_mask() {
        let mut mask = Mask::all_kept(2, 4);
        for (r, c) in [(0, 0), (0, 1), (1, 2)] {
            mask.set(r, c, false);
        }
        let target = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
        // The pruned weights: the mask's three zeros, plus one the mask kept at (1, 3).
        let mut weights = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -0.0];
        mask.apply(&mut weights).unwrap();
        let report = SparsityReport::new("fc", target, &mask, &weights);
        assert_eq!((report.pruned, report.total, report.zeros), (3, 8, Some(4)));
        assert_eq!((report.zero_count(), report.zero_fraction()), (4, 0.5));
        assert_eq!(report.achieved, 0.375);
        assert_eq!(report.requested, 0.5);
        assert_eq!(report.nm_valid, Some(false));
        let unstructured = SparsityTarget::Unstructured(Sparsity::new(0.4).unwrap());
        let report = SparsityReport::new("fc", unstructured, &mask, &weights);
        assert_eq!(report.nm_valid, None);
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("damping"), "no dampening field for methods without one: {json}");
        assert_eq!(serde_json::from_str::<SparsityReport>(&json).unwrap(), report);
        // A mask index written before zeros were counted still reads; the mask's count stands in.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("zeros");
        let old: SparsityReport = serde_json::from_value(old).unwrap();
        assert_eq!((old.zeros, old.zero_count(), old.zero_fraction()), (None, 3, 0.375));
        let damped = report.with_damping(Some(DampingUsed { requested: 0.01, used: 0.1, attempts: 2 }));
        let json = serde_json::to_string(&damped).unwrap();
        assert!(json.contains(r#""damping":{"requested":0.01,"used":0.1,"attempts":2}"#), "{json}");
        assert_eq!(serde_json::from_str::<SparsityReport>(&json).unwrap(), damped);
    }
}
