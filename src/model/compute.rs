//! Half compute: the decoder graphs of a folder with 16-bit matrices, rebuilt to compute in
//! that type (`--compute`, [`ComputeChoice`]).
//!
//! Import writes f32-compute graphs (a 16-bit matrix is widened where it is loaded). When the
//! options resolve to half, the runtime hands every graph it loads here first
//! ([`graph_for_compute`]), and a graph polyprune built for a decoder is rebuilt from its own
//! weights in the stored type ([`decoder::part_graph`]), in memory, reading the same weight
//! file. What runs in which type:
//! * in the 16-bit type: the matrix products (linear layers, q·k, attention times values, the
//!   output layer), the embedding lookup and its scale, the residual stream, activations, the
//!   rotary rotation. Its tables are computed in f64, stored in f32 and narrowed once per graph,
//!   as transformers narrows its cos/sin to the activations' type: an angle is never formed in
//!   16 bits (where position times frequency would lose the position), and the narrowed cos and
//!   sin err by half a unit in the last place, as q and k themselves do;
//!   The attention scale multiplies the queries before q·k (f16 tops out at 65504);
//! * in f32: every norm (statistics and gain: the gains are stored in f32), the attention's
//!   mask and softmax, and the logits from the output layer on (log-softmax, argmax, the
//!   log-likelihoods the caller sums).
//!
//! Inputs and outputs stay f32 (a 16-bit value widens exactly), so callers are unchanged.

use std::path::{Path, PathBuf};

use prost::Message;

use super::card::ModelCard;
use super::decoder::{self, DecoderSpec, Part, WeightTable, COMPUTE_KEY};
use super::onnx::ModelProto;
use crate::runtime::{ComputeChoice, ExecutionProvider, FloatType, GraphSource, RuntimeOptions};

/// The graph `model` (one polyprune's decoder builder wrote, read back) rebuilt to compute in
/// `compute`, from the weights it references; `None` for graphs it did not build (exported
/// models, encoder-decoders) and graphs already in a compute type other than f32.
pub fn in_compute(model: &ModelProto, spec: &DecoderSpec, compute: FloatType) -> Option<ModelProto> {
    let meta = |key: &str| model.metadata_props.iter().find(|p| p.key() == key).map(|p| p.value());
    if model.producer_name() != "polyprune" || meta(COMPUTE_KEY).is_some() {
        return None;
    }
    let part = Part::from_metadata(meta("polyprune.part")?)?;
    let graph = model.graph.as_ref()?;
    // The model's weights are the external initializers; inline ones are the builder's own
    // constants, which the rebuild writes again.
    let weights: WeightTable = graph.initializer.iter().filter(|t| t.is_external()).map(|t| (t.name().to_string(), t.clone())).collect();
    Some(decoder::part_graph(spec, &weights, part, compute))
}

/// The graph `source` rebuilt in the compute type `opts` resolve to for its folder, with the
/// folder its weights are read from; `None` to load it as it is. `Err` says why an explicit
/// `--compute half` cannot be honoured.
pub fn graph_for_compute(source: &GraphSource, opts: &RuntimeOptions) -> Result<Option<(Vec<u8>, PathBuf)>, String> {
    // f32 is what the files hold: nothing to read (Auto on the CPU is f32, see ComputeChoice).
    if opts.compute == ComputeChoice::F32 || (opts.compute == ComputeChoice::Auto && opts.provider == ExecutionProvider::Cpu) {
        return Ok(None);
    }
    let explicit = opts.compute == ComputeChoice::Half;
    // Auto leaves alone whatever is not a decoder folder polyprune wrote; Half says so.
    let not_ours = |why: String| {
        if explicit {
            Err(format!("{why}; half compute applies to the decoder graphs polyprune imports or synthesises: use --compute f32"))
        } else {
            Ok(None)
        }
    };
    let folder: &Path = match source {
        GraphSource::File(path) => path.parent().unwrap_or(Path::new(".")),
        GraphSource::Memory { folder, .. } => folder,
    };
    let card = match ModelCard::read(folder) {
        Ok(card) => card,
        Err(e) => return not_ours(format!("no model card beside the graph ({e})")),
    };
    let compute = opts.compute.resolve(opts.provider, card.matrix_type())?;
    if compute == FloatType::F32 {
        return Ok(None);
    }
    let Some(spec) = &card.spec else { return not_ours(format!("the card in {} describes no decoder", folder.display())) };
    let model = match source {
        GraphSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ModelProto::decode(bytes.as_slice())
        }
        GraphSource::Memory { bytes, .. } => ModelProto::decode(*bytes),
    }
    .map_err(|e| format!("cannot parse the graph: {e}"))?;
    match in_compute(&model, spec, compute) {
        Some(rebuilt) => Ok(Some((rebuilt.encode_to_vec(), folder.to_path_buf()))),
        None if model.metadata_props.iter().any(|p| p.key() == COMPUTE_KEY) => Ok(None),
        None => not_ours("the graph is not one polyprune's decoder builder wrote".into()),
    }
}
