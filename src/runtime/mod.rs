//! Running graphs. `ort.rs` is the only file that talks to ONNX Runtime; everything else
//! hands it token ids or hidden states and reads back the few outputs it asked for.

mod float_type;
mod ort_backend;

pub use float_type::FloatType;

pub use ort_backend::{
    find_library, Arena, ExecutionProvider, Graph, GraphSource, Input, Output, OutputView, RuntimeError, RuntimeOptions, SharedWeights,
    Value,
};

/// One replacement weight handed to the runtime at session creation (a pruned layer).
#[derive(Clone, Debug)]
pub struct WeightOverride {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: std::sync::Arc<Vec<f32>>,
    /// The type the graph stores this weight in: the override is handed to the runtime in
    /// it (rounded to nearest even from `data`; a pruned zero stays exactly zero).
    pub stored: FloatType,
}
