//! The float type the decoder graphs compute in (`--compute`): f32, or the 16-bit type a
//! folder stores its matrices in. In half compute the matrix products, embeddings and
//! elementwise ops run in that type while norm statistics, the attention softmax and the final
//! log-softmax stay in f32 (`model::compute` rewrites the graphs).
//!
//! Chosen automatically: half where the provider is CUDA and the matrices are 16-bit (there
//! the products run on tensor cores and the activations take half the memory); f32 on the CPU,
//! whose provider lacks bf16 kernels for most ops ([`CPU_OPS_WITHOUT_BF16`]) and where every
//! result the project has measured was computed in f32 (an explicit `half` runs f16 there).

use std::path::PathBuf;
use std::sync::OnceLock;

use super::{ExecutionProvider, FloatType, GraphSource, RuntimeOptions};

/// A graph rebuilt in the compute type `opts` resolve to, with the folder its weights are read
/// from; `None` to load it as it is; `Err` says why an explicit `--compute half` cannot be
/// honoured.
pub type GraphRebuild = fn(&GraphSource, &RuntimeOptions) -> Result<Option<(Vec<u8>, PathBuf)>, String>;

static REBUILD: OnceLock<GraphRebuild> = OnceLock::new();

/// Installs the model layer's rebuild (`model::compute`), which reading a model card does: the
/// runtime may not name the layer above it, and every graph polyprune builds is loaded from a
/// folder whose card was read first. Later calls keep the first.
pub fn install_rebuild(rebuild: GraphRebuild) {
    let _ = REBUILD.set(rebuild);
}

/// The installed rebuild of `source` for `opts`; without one (no model card read yet) graphs
/// load as they are, and an explicit half is refused.
pub(super) fn rebuild_for_compute(source: &GraphSource, opts: &RuntimeOptions) -> Result<Option<(Vec<u8>, PathBuf)>, String> {
    match REBUILD.get() {
        Some(rebuild) => rebuild(source, opts),
        None if opts.compute == ComputeChoice::Half => {
            Err("half compute rebuilds the decoder graphs of a polyprune model folder; open the folder as a model (its card.json) or use --compute f32".into())
        }
        None => Ok(None),
    }
}

/// Ops of the half-compute graphs that ONNX Runtime's CPU provider (1.31.1) has no bf16 kernel
/// for, as `tests/half_compute.rs` probes them op by op; every op of those graphs runs in f16.
pub const CPU_OPS_WITHOUT_BF16: &[&str] = &["MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Sigmoid", "Tanh"];

/// What the user asked the graphs to compute in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeChoice {
    /// Half on CUDA when the folder's matrices are 16-bit, f32 otherwise.
    #[default]
    Auto,
    F32,
    /// The folder's stored 16-bit type, wherever the provider can run it.
    Half,
}

impl std::str::FromStr for ComputeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(ComputeChoice::Auto),
            "f32" => Ok(ComputeChoice::F32),
            "half" => Ok(ComputeChoice::Half),
            other => Err(format!("compute '{other}': expected auto, f32 or half")),
        }
    }
}

impl std::fmt::Display for ComputeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ComputeChoice::Auto => "auto",
            ComputeChoice::F32 => "f32",
            ComputeChoice::Half => "half",
        })
    }
}

impl ComputeChoice {
    /// The type graphs compute in on `provider` for a folder whose matrices are stored in
    /// `stored`; `Err` says why an explicit `half` cannot be honoured, naming the fix.
    pub fn resolve(self, provider: ExecutionProvider, stored: FloatType) -> Result<FloatType, String> {
        match self {
            ComputeChoice::F32 => Ok(FloatType::F32),
            ComputeChoice::Auto => {
                Ok(if matches!(provider, ExecutionProvider::Cuda(_)) && stored != FloatType::F32 { stored } else { FloatType::F32 })
            }
            ComputeChoice::Half => match (provider, stored) {
                (_, FloatType::F32) => Err(
                    "the folder stores its matrices in f32, and half compute runs in the stored 16-bit type: import it with `--dtype bf16` or `--dtype f16`, or use --compute f32"
                        .into(),
                ),
                (ExecutionProvider::Cpu, FloatType::Bf16) => Err(format!(
                    "ONNX Runtime's CPU provider has no bf16 kernel for {}, which half compute runs in bf16: use --compute f32 (the default on the CPU), --device cuda, or a folder imported with --dtype f16 (the CPU runs every op of it in f16)",
                    CPU_OPS_WITHOUT_BF16.join(", ")
                )),
                (_, half) => Ok(half),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_half_only_on_cuda_with_16_bit_matrices() {
        let (cpu, cuda) = (ExecutionProvider::Cpu, ExecutionProvider::Cuda(1));
        for t in [FloatType::F32, FloatType::F16, FloatType::Bf16] {
            assert_eq!(ComputeChoice::Auto.resolve(cpu, t), Ok(FloatType::F32), "{t}");
            assert_eq!(ComputeChoice::Auto.resolve(cuda, t), Ok(t), "{t}");
            assert_eq!(ComputeChoice::F32.resolve(cuda, t), Ok(FloatType::F32), "{t}");
        }
        assert_eq!(ComputeChoice::Half.resolve(cpu, FloatType::F16), Ok(FloatType::F16));
        assert_eq!(ComputeChoice::Half.resolve(cuda, FloatType::Bf16), Ok(FloatType::Bf16));
        let bf16_cpu = ComputeChoice::Half.resolve(cpu, FloatType::Bf16).unwrap_err();
        assert!(bf16_cpu.contains("no bf16 kernel for MatMul") && bf16_cpu.contains("--compute f32"), "{bf16_cpu}");
        let f32_folder = ComputeChoice::Half.resolve(cuda, FloatType::F32).unwrap_err();
        assert!(f32_folder.contains("--dtype bf16"), "{f32_folder}");
        assert_eq!("half".parse::<ComputeChoice>(), Ok(ComputeChoice::Half));
        assert!("f16".parse::<ComputeChoice>().unwrap_err().contains("auto, f32 or half"));
    }
}
