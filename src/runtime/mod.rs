//! Running graphs. `ort.rs` is the only file that talks to ONNX Runtime; everything else
//! hands it token ids or hidden states and reads back the few outputs it asked for.

mod compute;
mod float_type;
mod ort_backend;
pub mod spill;
mod weight_override;

pub use compute::{install_rebuild, ComputeChoice, GraphRebuild, CPU_OPS_WITHOUT_BF16};
pub use float_type::FloatType;

pub use ort_backend::{
    find_library, Arena, ExecutionProvider, Graph, GraphSource, Input, Output, OutputView, RuntimeError, RuntimeOptions, SharedWeights,
    Value,
};

pub use weight_override::{
    override_bytes_in_memory, reset_override_high_water, CountedValues, OverrideData, SpillFile, SpillReadError, WeightOverride,
};
