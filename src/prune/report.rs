//! [`SparsityReport`]: what was asked of a layer and what its mask actually achieves.
//!
//! Achieved sparsity is counted from the mask to the element (pruned / total), never derived
//! from the request, because floors, N:M groups and SparseGPT's per-block selection make the two
//! differ slightly and the benchmark reports the true figure.

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
    /// SparseGPT: the Hessian dampening the layer was solved with (absent for other methods,
    /// and in reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping: Option<DampingUsed>,
}

impl SparsityReport {
    /// Measures `mask` against the request `target`.
    pub fn new(layer: &str, target: SparsityTarget, mask: &Mask) -> Self {
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
            damping: None,
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
        let report = SparsityReport::new("fc", target, &mask);
        assert_eq!((report.pruned, report.total), (3, 8));
        assert_eq!(report.achieved, 0.375);
        assert_eq!(report.requested, 0.5);
        assert_eq!(report.nm_valid, Some(false));
        let unstructured = SparsityTarget::Unstructured(Sparsity::new(0.4).unwrap());
        let report = SparsityReport::new("fc", unstructured, &mask);
        assert_eq!(report.nm_valid, None);
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("damping"), "no dampening field for methods without one: {json}");
        assert_eq!(serde_json::from_str::<SparsityReport>(&json).unwrap(), report);
        let damped = report.with_damping(Some(DampingUsed { requested: 0.01, used: 0.1, attempts: 2 }));
        let json = serde_json::to_string(&damped).unwrap();
        assert!(json.contains(r#""damping":{"requested":0.01,"used":0.1,"attempts":2}"#), "{json}");
        assert_eq!(serde_json::from_str::<SparsityReport>(&json).unwrap(), damped);
    }
}
