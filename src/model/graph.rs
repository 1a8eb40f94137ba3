//! Reading an exported ONNX decoder: find its prunable linear layers and the inputs it needs,
//! and give it the scoring heads polyprune's imported graphs have built in.
//!
//! A prunable layer is a `MatMul` or `Gemm` whose weight operand is a 2-D float initializer,
//! directly or through `Identity`/`Transpose` (exporters write GPT-2 linears as `Gemm` on `[in, out]`,
//! Llama's as `MatMul` on a transposed `[out, in]` weight). Embedding tables (read by `Gather`) and
//! the output layer (the one producing vocabulary-sized outputs) are never pruned.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

use super::builder::{Dim, GraphBuilder};
use super::card::{ModelCard, CARD_FORMAT};
use super::decoder::{emit_scoring_heads, LinearLayer, Role};
use super::onnx::{data_type, GraphProto, ModelProto, NodeProto, TensorProto};
use super::ModelError;

/// Inputs polyprune knows how to feed: token ids, an all-ones attention mask, positions.
pub const FEEDABLE_INPUTS: &[&str] = &["input_ids", "attention_mask", "position_ids"];

pub fn read_model(path: &Path) -> Result<ModelProto, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    ModelProto::decode(bytes.as_slice()).map_err(|e| ModelError::BadGraph { path: path.to_path_buf(), reason: e.to_string() })
}

fn graph_of<'a>(model: &'a ModelProto, path: &Path) -> Result<&'a GraphProto, ModelError> {
    model.graph.as_ref().ok_or_else(|| ModelError::BadGraph { path: path.to_path_buf(), reason: "no graph".into() })
}

/// A weight operand traced back to its initializer.
struct WeightOperand<'a> {
    init: &'a TensorProto,
    /// The initializer is `[out, in]` and the graph transposes it before use.
    transposed: bool,
}

fn trace_weight<'a>(
    name: &str,
    inits: &HashMap<&str, &'a TensorProto>,
    producers: &HashMap<&str, &NodeProto>,
) -> Option<WeightOperand<'a>> {
    let mut name = name.to_string();
    let mut transposed = false;
    for _ in 0..4 {
        if let Some(t) = inits.get(name.as_str()) {
            let matrix = t.dims.len() == 2 && t.dims.iter().all(|&d| d > 0) && t.data_type == Some(data_type::FLOAT);
            return matrix.then_some(WeightOperand { init: t, transposed });
        }
        let node = producers.get(name.as_str())?;
        match node.op_type() {
            "Identity" => {}
            "Transpose" => transposed = !transposed,
            _ => return None,
        }
        name = node.input.first()?.clone();
    }
    None
}

fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name() == name).and_then(|a| a.i)
}

/// Rows of a table read by `Gather` (embeddings, positions): its first dim, when it has one
/// that is not negative.
fn table_rows(t: &TensorProto) -> Option<usize> {
    t.dims.first().and_then(|&d| usize::try_from(d).ok())
}

/// The first integer that follows a layer-ish word in a tensor or node name (`h.3`, `layers.3`).
fn block_number(names: &[&str]) -> Option<usize> {
    for name in names {
        let parts: Vec<&str> = name.split(['.', '/', '_']).collect();
        for w in parts.windows(2) {
            if matches!(w[0], "h" | "layers" | "layer" | "blocks" | "block" | "blk" | "decoder") {
                // u32: a block count that fits, so `block + 1` cannot overflow.
                if let Ok(n) = w[1].parse::<u32>() {
                    return Some(n as usize);
                }
            }
        }
    }
    None
}

/// The role a layer plays, from the names exporters commonly use.
fn role_from_names(names: &[&str]) -> Option<Role> {
    let joined = names.join(" ").to_ascii_lowercase();
    let has = |s: &str| joined.contains(s);
    Some(if has("q_proj") || has("attn_q") || has("query.") {
        Role::Q
    } else if has("k_proj") || has("attn_k") || has("key.") {
        Role::K
    } else if has("v_proj") || has("attn_v") || has("value.") {
        Role::V
    } else if has("c_attn") || has("query_key_value") || has("qkv") {
        Role::Qkv
    } else if has("o_proj")
        || has("attn_output")
        || has("attn/c_proj")
        || has("attn.c_proj")
        || has("self_attention.dense")
        || has("out_proj")
    {
        Role::O
    } else if has("gate_proj") || has("ffn_gate") {
        Role::Gate
    } else if has("up_proj") || has("ffn_up") || has("c_fc") || has("dense_h_to_4h") || has("fc1") {
        Role::Up
    } else if has("down_proj") || has("ffn_down") || has("mlp/c_proj") || has("mlp.c_proj") || has("dense_4h_to_h") || has("fc2") {
        Role::Down
    } else {
        return None;
    })
}

/// Builds a card for an exported model by reading its graph.
pub fn inspect(dir: &Path) -> Result<ModelCard, ModelError> {
    let path = dir.join("model.onnx");
    let model = read_model(&path)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    card_of_model(&model, &path, name)
}

/// The card of an exported model already decoded; `path` names its graph file in errors.
pub fn card_of_model(model: &ModelProto, path: &Path, name: String) -> Result<ModelCard, ModelError> {
    let path = path.to_path_buf();
    let g = graph_of(model, &path)?;
    let inits: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name(), t)).collect();
    let producers: HashMap<&str, &NodeProto> = g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let gathered: Vec<&str> =
        g.node.iter().filter(|n| n.op_type() == "Gather").filter_map(|n| n.input.first().map(|s| s.as_str())).collect();
    let vocab = gathered.iter().filter_map(|n| inits.get(n)).filter_map(|t| table_rows(t)).max().unwrap_or(0);

    let mut layers = Vec::new();
    let mut unnamed = 0usize;
    for node in g.node.iter().filter(|n| n.op_type() == "MatMul" || n.op_type() == "Gemm") {
        let Some(w) = node.input.get(1).and_then(|i| trace_weight(i, &inits, &producers)) else { continue };
        if gathered.contains(&w.init.name()) {
            continue; // a tied output layer reads the embedding table
        }
        let transposed = w.transposed ^ (node.op_type() == "Gemm" && attr_i(node, "transB") == Some(1));
        let (d0, d1) = (w.init.dims[0] as usize, w.init.dims[1] as usize);
        let shape = if transposed { [d1, d0] } else { [d0, d1] };
        if vocab > 0 && shape[1] == vocab {
            continue; // the output layer
        }
        let names = [w.init.name(), node.name()];
        let block = block_number(&names).unwrap_or_else(|| {
            unnamed += 1;
            usize::MAX
        });
        let role = role_from_names(&names).ok_or_else(|| ModelError::Unusable {
            path: path.clone(),
            reason: format!("cannot tell the role of linear layer '{}' (node '{}') from its name", w.init.name(), node.name()),
        })?;
        layers.push(LinearLayer { name: w.init.name().to_string(), block, role, shape, input: node.input[0].clone(), transposed });
    }
    if unnamed > 0 {
        return Err(ModelError::Unusable {
            path,
            reason: format!("{unnamed} linear layers carry no block number in their names; re-export keeping module names"),
        });
    }
    let inputs: Vec<String> = g.input.iter().map(|i| i.name().to_string()).filter(|n| !inits.contains_key(n.as_str())).collect();
    if let Some(bad) = inputs.iter().find(|n| !FEEDABLE_INPUTS.contains(&n.as_str())) {
        return Err(ModelError::Unusable {
            path,
            reason: format!(
                "graph input '{bad}' cannot be fed (polyprune feeds {}); export without the key/value cache (use_cache=False)",
                FEEDABLE_INPUTS.join(", ")
            ),
        });
    }
    if !inputs.iter().any(|n| n == "input_ids") {
        return Err(ModelError::Unusable { path, reason: "the graph has no 'input_ids' input".into() });
    }
    if !g.output.iter().any(|o| o.name() == "logits") {
        return Err(ModelError::Unusable { path, reason: "the graph has no 'logits' output".into() });
    }
    let blocks = layers.iter().map(|l| l.block + 1).max().unwrap_or(0);
    let positions =
        gathered.iter().filter_map(|n| inits.get(n)).filter_map(|t| table_rows(t)).filter(|&n| n != vocab).min().unwrap_or(2048);
    Ok(ModelCard {
        format: CARD_FORMAT.into(),
        name,
        architecture: format!("onnx ({})", model.producer_name()),
        source: None,
        graph: "model.onnx".into(),
        tokenizer: "tokenizer.json".into(),
        bos_token_id: None,
        eos_token_id: None,
        start_token_id: None,
        max_positions: positions,
        vocab_size: vocab,
        blocks,
        inputs,
        has_scoring_heads: g.output.iter().any(|o| o.name() == "token_logprobs"),
        layers,
        spec: None,
        parts: None,
        synthetic: None,
        hf: None,
        weight_dtype: None,
    })
}

/// The model with `token_logprobs`/`argmax` heads and, optionally, extra outputs (calibration
/// taps), ready to be handed to the runtime from memory.
pub fn with_heads_and_outputs(model: &ModelProto, add_heads: bool, extra_outputs: &[String]) -> ModelProto {
    let mut model = model.clone();
    let graph = model.graph.take().unwrap_or_default();
    let mut b = GraphBuilder::wrap(graph);
    if add_heads {
        // Flatten to [B*T, V] (a copy, since `logits` stays a graph output) for the shared heads.
        let shape = b.op("Shape", &["logits"], vec![super::onnx::AttributeProto::int("start", -1)]);
        let minus_one = b.vec_i64(&[-1]);
        let flat_shape = b.op("Concat", &[&minus_one, &shape], vec![super::onnx::AttributeProto::int("axis", 0)]);
        let flat = b.op("Reshape", &["logits", &flat_shape], vec![]);
        emit_scoring_heads(&mut b, &flat, "input_ids");
        b.output("token_logprobs", data_type::FLOAT, &[Dim::Named("batch"), Dim::Named("sequence_minus_1")]);
        b.output("argmax", data_type::INT64, &[Dim::Named("batch"), Dim::Named("sequence")]);
    }
    let mut graph = b.into_graph();
    for name in extra_outputs {
        if !graph.output.iter().any(|o| o.name() == name) {
            let vi = graph.value_info.iter().find(|v| v.name() == name).cloned();
            graph.output.push(vi.unwrap_or_else(|| super::onnx::ValueInfoProto { name: Some(name.clone()), ..Default::default() }));
        }
    }
    model.graph = Some(graph);
    model
}

/// Graphs the fuzzer (`fuzz/fuzz_targets/onnx_model.rs`) or its review found mishandled.
#[cfg(test)]
mod fuzz_regressions {
    use super::*;
    use crate::model::builder::Dim;

    /// input_ids -> Gather(table) -> MatMul(weight named `h.<block>.mlp.c_fc`) -> logits.
    fn exported(table_dims: &[i64], weight_dims: &[i64], block: &str) -> ModelProto {
        let mut b = GraphBuilder::new("g");
        b.input("input_ids", data_type::INT64, &[Dim::Named("batch"), Dim::Named("sequence")]);
        let tensor = |name: &str, dims: &[i64]| TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(data_type::FLOAT),
            ..Default::default()
        };
        b.initializer(tensor("wte", table_dims));
        let weight = format!("h.{block}.mlp.c_fc.weight");
        b.initializer(tensor(&weight, weight_dims));
        b.op_named("Gather", &["wte", "input_ids"], "hidden", vec![]);
        b.op_named("MatMul", &["hidden", &weight], "logits", vec![]);
        b.output("logits", data_type::FLOAT, &[Dim::Named("batch")]);
        b.finish("test", &[])
    }

    fn card(model: &ModelProto) -> Result<ModelCard, ModelError> {
        card_of_model(model, Path::new("model.onnx"), "m".into())
    }

    #[test]
    fn a_gather_table_without_dims_or_with_negative_ones_is_not_a_vocabulary() {
        for table in [&[][..], &[-3, 4][..]] {
            let c = card(&exported(table, &[4, 8], "0")).unwrap();
            assert_eq!((c.vocab_size, c.max_positions), (0, 2048), "table dims {table:?}");
            assert_eq!(c.layers.len(), 1);
        }
        assert_eq!(card(&exported(&[32, 4], &[4, 8], "0")).unwrap().vocab_size, 32);
    }

    #[test]
    fn a_weight_with_a_negative_or_zero_dim_is_not_a_prunable_layer() {
        for dims in [[-4, 8], [4, 0]] {
            assert!(card(&exported(&[32, 4], &dims, "0")).unwrap().layers.is_empty(), "{dims:?}");
        }
    }

    #[test]
    fn a_block_number_past_u32_is_no_block_number() {
        let c = card(&exported(&[32, 4], &[4, 8], "3")).unwrap();
        assert_eq!((c.blocks, c.layers[0].block), (4, 3));
        let err = card(&exported(&[32, 4], &[4, 8], &usize::MAX.to_string())).unwrap_err().to_string();
        assert!(err.contains("carry no block number"), "{err}");
    }
}
