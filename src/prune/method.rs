//! [`Method`]: the single entry point that dispatches to the pruning methods. SNIP and GraSP
//! score with gradients of the whole model's loss, which the model-facing code computes and
//! turns into masks through [`crate::prune::saliency`]; [`Method::prune`] handles the per-layer
//! methods.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::PruneError;
use super::magnitude::{magnitude_mask, MagnitudeScope};
use super::mask::Mask;
use super::saliency::SaliencyScope;
use super::sparsegpt::{sparsegpt_prune, SparseGptConfig};
use super::sparsity::SparsityTarget;
use super::statistics::InputStatistics;
use super::wanda::wanda_mask;
use super::weight::LinearWeight;

/// A pruning method with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Method {
    /// `|W_ij|`, no calibration data.
    Magnitude {
        /// Which weights compete (unstructured targets only).
        #[serde(default)]
        scope: MagnitudeScope,
    },
    /// `|W_ij| * ||X_j||_2` per output row.
    Wanda,
    /// OBS-based pruning with weight reconstruction.
    #[serde(rename = "sparsegpt")]
    SparseGpt(SparseGptConfig),
    /// `|W_ij * dL/dW_ij|` (Lee et al. 2019), the lowest pruned.
    Snip {
        #[serde(default)]
        scope: SaliencyScope,
    },
    /// `-W_ij * (H g)_ij` (Wang et al. 2020), the highest pruned.
    Grasp {
        #[serde(default)]
        scope: SaliencyScope,
    },
}

/// What calibration data a method needs, so the caller collects only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatisticsNeed {
    /// No calibration pass.
    None,
    /// Per-channel sums of squares ([`InputStatistics::new`] with `collect_gram = false`).
    ChannelNorms,
    /// Sums of squares and the Gram matrix (`collect_gram = true`).
    Gram,
    /// The loss gradient with respect to every pruned weight (SNIP).
    Gradient,
    /// The gradient and the Hessian-gradient product (GraSP).
    HessianGradient,
}

/// A layer's pruning result.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunedLayer {
    /// Which weights survive.
    pub mask: Mask,
    /// Replacement weights for methods that update the survivors (SparseGPT); `None` means
    /// "apply the mask to the original weights".
    pub new_weights: Option<Vec<f32>>,
    /// SparseGPT: the Hessian dampening the layer was solved with.
    pub damping: Option<super::sparsegpt::DampingUsed>,
}

impl Method {
    /// Every method once, with default settings (help texts and tests name them from here).
    pub fn all() -> [Method; 5] {
        let all = [
            Method::Magnitude { scope: MagnitudeScope::PerMatrix },
            Method::Wanda,
            Method::SparseGpt(SparseGptConfig::default()),
            Method::Snip { scope: SaliencyScope::Layer },
            Method::Grasp { scope: SaliencyScope::Layer },
        ];
        // Exhaustive on purpose: a new method fails to compile here until it is listed above.
        for method in &all {
            match method {
                Method::Magnitude { .. } | Method::Wanda | Method::SparseGpt(_) | Method::Snip { .. } | Method::Grasp { .. } => {}
            }
        }
        all
    }

    /// Short stable name: "magnitude", "wanda", "sparsegpt", "snip" or "grasp" (plus
    /// "-global" for a gradient saliency ranked over all layers).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Magnitude { .. } => "magnitude",
            Method::Wanda => "wanda",
            Method::SparseGpt(_) => "sparsegpt",
            Method::Snip { scope: SaliencyScope::Layer } => "snip",
            Method::Snip { scope: SaliencyScope::Global } => "snip-global",
            Method::Grasp { scope: SaliencyScope::Layer } => "grasp",
            Method::Grasp { scope: SaliencyScope::Global } => "grasp-global",
        }
    }

    /// The scope of a gradient saliency; `None` for the per-layer methods.
    pub fn saliency_scope(&self) -> Option<SaliencyScope> {
        match self {
            Method::Snip { scope } | Method::Grasp { scope } => Some(*scope),
            _ => None,
        }
    }

    /// The same method with another saliency scope (unchanged for the per-layer methods).
    pub fn with_scope(self, scope: SaliencyScope) -> Self {
        match self {
            Method::Snip { .. } => Method::Snip { scope },
            Method::Grasp { .. } => Method::Grasp { scope },
            other => other,
        }
    }

    /// Which statistics [`Method::prune`] will need.
    pub fn statistics_need(&self) -> StatisticsNeed {
        match self {
            Method::Magnitude { .. } => StatisticsNeed::None,
            Method::Wanda => StatisticsNeed::ChannelNorms,
            Method::SparseGpt(_) => StatisticsNeed::Gram,
            Method::Snip { .. } => StatisticsNeed::Gradient,
            Method::Grasp { .. } => StatisticsNeed::HessianGradient,
        }
    }

    /// Prunes one layer. `layer` names it in errors; `statistics` are its input's calibration
    /// statistics (ignored by magnitude, required by Wanda and SparseGPT). SNIP and GraSP need
    /// the model's gradients instead and are refused here.
    pub fn prune(
        &self,
        layer: &str,
        weight: &LinearWeight,
        statistics: Option<&InputStatistics>,
        target: SparsityTarget,
    ) -> Result<PrunedLayer, PruneError> {
        let require = || statistics.ok_or(PruneError::MissingStatistics { layer: layer.to_string(), method: self.name() });
        match self {
            Method::Magnitude { scope } => {
                Ok(PrunedLayer { mask: magnitude_mask(layer, weight, target, *scope)?, new_weights: None, damping: None })
            }
            Method::Wanda => Ok(PrunedLayer { mask: wanda_mask(layer, weight, require()?, target)?, new_weights: None, damping: None }),
            Method::SparseGpt(config) => {
                let result = sparsegpt_prune(layer, weight, require()?, target, *config)?;
                Ok(PrunedLayer { mask: result.mask, new_weights: Some(result.weights), damping: Some(result.damping) })
            }
            Method::Snip { .. } | Method::Grasp { .. } => {
                Err(PruneError::MissingStatistics { layer: layer.to_string(), method: self.name() })
            }
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = PruneError;

    /// Parses a method name with default settings: "magnitude" (per matrix), "magnitude-row",
    /// "wanda", "sparsegpt", "snip", "grasp" (per layer), "snip-global", "grasp-global".
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "magnitude" => Ok(Method::Magnitude { scope: MagnitudeScope::PerMatrix }),
            "magnitude-row" => Ok(Method::Magnitude { scope: MagnitudeScope::PerRow }),
            "wanda" => Ok(Method::Wanda),
            "sparsegpt" => Ok(Method::SparseGpt(SparseGptConfig::default())),
            "snip" => Ok(Method::Snip { scope: SaliencyScope::Layer }),
            "snip-global" => Ok(Method::Snip { scope: SaliencyScope::Global }),
            "grasp" => Ok(Method::Grasp { scope: SaliencyScope::Layer }),
            "grasp-global" => Ok(Method::Grasp { scope: SaliencyScope::Global }),
            _ => Err(PruneError::UnknownMethod { text: text.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{correlated_inputs, normal_layer};
    use super::*;

    #[test]
    fn dispatch_requires_statistics_where_needed() {
        let weight = normal_layer(3, 4, 8);
        let target = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
        for name in ["wanda", "sparsegpt"] {
            let method: Method = name.parse().unwrap();
            let err = method.prune("mlp.up", &weight, None, target).unwrap_err();
            assert!(matches!(err, PruneError::MissingStatistics { .. }), "{name}");
        }
        let magnitude: Method = "magnitude".parse().unwrap();
        let result = magnitude.prune("mlp.up", &weight, None, target).unwrap();
        assert_eq!(result.mask.count_pruned(), 16);
        assert!(result.new_weights.is_none());

        let mut stats = InputStatistics::new("mlp.up", 8, true);
        stats.accumulate(&correlated_inputs(4, 32, 8), 32).unwrap();
        let sparsegpt: Method = "sparsegpt".parse().unwrap();
        let result = sparsegpt.prune("mlp.up", &weight, Some(&stats), target).unwrap();
        assert!(result.mask.is_nm_valid(match target {
            SparsityTarget::NM(nm) => nm,
            _ => unreachable!(),
        }));
        assert_eq!(result.new_weights.map(|w| w.len()), Some(32));
        assert!("obs".parse::<Method>().is_err());
        for name in ["snip", "grasp", "snip-global", "grasp-global"] {
            let method: Method = name.parse().unwrap();
            assert_eq!(method.name(), name);
            assert!(method.prune("mlp.up", &weight, None, target).is_err(), "{name} needs gradients");
        }
        let global = "snip".parse::<Method>().unwrap().with_scope(SaliencyScope::Global);
        assert_eq!(serde_json::to_string(&global).unwrap(), r#"{"method":"snip","scope":"global"}"#);
    }

    #[test]
    fn method_serialises_with_defaults() {
        let method: Method = serde_json::from_str(r#"{"method":"sparsegpt"}"#).unwrap();
        assert_eq!(method, Method::SparseGpt(SparseGptConfig::default()));
        let json = serde_json::to_string(&Method::Magnitude { scope: MagnitudeScope::PerRow });
        assert_eq!(json.unwrap(), r#"{"method":"magnitude","scope":"per-row"}"#);
        let bad = r#"{"method":"sparsegpt","percdamp":-1.0,"block_size":128}"#;
        assert!(serde_json::from_str::<Method>(bad).is_err());
    }
}
