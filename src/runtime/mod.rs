//! Running graphs. `ort.rs` is the only file that talks to ONNX Runtime; everything else
//! hands it token ids or hidden states and reads back the few outputs it asked for.

mod ort_backend;

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
}
