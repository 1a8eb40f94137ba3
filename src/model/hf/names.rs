//! The graph's (GGUF-style) tensor names against a Hugging Face checkpoint's, and the layout
//! differences between the two:
//!
//! * linear layers: the graph keeps `[in, out]` (MatMul), checkpoints `[out, in]` (nn.Linear);
//! * Cohere rotates adjacent pairs of each head (`x[2j], x[2j+1]`); the graph rotates
//!   `(j, j + hd/2)`, so its q/k rows are reordered within each head ([`unpermute_rotary_rows`],
//!   the reordering the GGUF import applies); Llama, Qwen2 and Gemma 3 checkpoints already
//!   rotate halves and need nothing (llama.cpp's converter permutes Llama's rows, which is
//!   why the GGUF import undoes it);
//! * Gemma 3's norms compute `x * (1 + w)` and checkpoints store `w`; the graph (like GGUF)
//!   stores `1 + w`, added in f32 as transformers does.
//! * BLOOM's fused `query_key_value` interleaves its rows per head (`[q_h; k_h; v_h]`); the graph
//!   keeps them as [all Q; all K; all V], as llama.cpp's converter stores them
//!   ([`qkv_heads_to_blocks`], [`qkv_blocks_to_heads`]).

use super::config::HfArchitecture;
use crate::model::decoder::DecoderSpec;
pub use crate::model::import::llama::unpermute_rotary_rows;

/// The checkpoint's name for the graph's tensor `graph_name`.
pub fn hf_name(arch: HfArchitecture, graph_name: &str) -> String {
    if arch == HfArchitecture::Bloom {
        return bloom_name(graph_name);
    }
    match graph_name {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let Some(rest) = graph_name.strip_prefix("blk.") else { return graph_name.into() };
    let (block, local) = rest.split_once('.').unwrap_or((rest, ""));
    let (stem, suffix) = local.rsplit_once('.').unwrap_or((local, "weight"));
    let hf = match stem {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "post_attention_norm" => "post_attention_layernorm",
        "post_ffw_norm" => "post_feedforward_layernorm",
        "ffn_norm" if arch == HfArchitecture::Gemma3 => "pre_feedforward_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        other => other,
    };
    format!("model.layers.{block}.{hf}.{suffix}")
}

/// BLOOM's names, as `save_pretrained` writes them (under `transformer.`; checkpoints saved
/// from the bare model lack the prefix, which import also accepts).
fn bloom_name(graph_name: &str) -> String {
    let (stem, suffix) = graph_name.rsplit_once('.').unwrap_or((graph_name, "weight"));
    let global = match stem {
        "token_embd" => Some("word_embeddings"),
        "token_embd_norm" => Some("word_embeddings_layernorm"),
        "output_norm" => Some("ln_f"),
        "output" => return "lm_head.weight".into(),
        _ => None,
    };
    if let Some(g) = global {
        return format!("{BLOOM_PREFIX}{g}.{suffix}");
    }
    let Some(rest) = stem.strip_prefix("blk.") else { return graph_name.into() };
    let (block, local) = rest.split_once('.').unwrap_or((rest, ""));
    let hf = match local {
        "attn_norm" => "input_layernorm",
        "attn_qkv" => "self_attention.query_key_value",
        "attn_output" => "self_attention.dense",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_up" => "mlp.dense_h_to_4h",
        "ffn_down" => "mlp.dense_4h_to_h",
        other => other,
    };
    format!("{BLOOM_PREFIX}h.{block}.{hf}.{suffix}")
}

/// The prefix of BLOOM's base-model tensors in a `BloomForCausalLM` checkpoint.
pub const BLOOM_PREFIX: &str = "transformer.";

/// How one tensor's values differ between the checkpoint and the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Same values, same order.
    Same,
    /// A linear layer: `[out, in]` in the checkpoint, `[in, out]` in the graph; `heads` is set
    /// (query or key/value head count) when the rows are also reordered for rotary.
    Linear { rotary_heads: Option<usize> },
    /// Gemma's `1 + w` norm.
    OffsetNorm,
    /// BLOOM's fused q/k/v weight (`linear`, also transposed) or bias: the checkpoint
    /// interleaves its rows per head, `[q_h; k_h; v_h]` for each head `h`, the graph keeps
    /// `[all Q; all K; all V]` ([`qkv_heads_to_blocks`]).
    InterleavedQkv { heads: usize, linear: bool },
}

pub fn layout(arch: HfArchitecture, spec: &DecoderSpec, graph_name: &str) -> Layout {
    let linear = spec.linear_layers().iter().any(|l| l.name == graph_name);
    if arch == HfArchitecture::Bloom && graph_name.contains(".attn_qkv.") {
        return Layout::InterleavedQkv { heads: spec.n_heads, linear };
    }
    if linear {
        let rotary_heads = match arch {
            HfArchitecture::Cohere if graph_name.ends_with(".attn_q.weight") => Some(spec.n_heads),
            HfArchitecture::Cohere if graph_name.ends_with(".attn_k.weight") => Some(spec.n_kv_heads),
            _ => None,
        };
        return Layout::Linear { rotary_heads };
    }
    if arch == HfArchitecture::Gemma3 && graph_name.ends_with("norm.weight") {
        return Layout::OffsetNorm;
    }
    Layout::Same
}

/// The checkpoint's shape for a graph tensor of `shape`.
pub fn hf_shape(layout: Layout, shape: &[usize]) -> Vec<usize> {
    match layout {
        Layout::Linear { .. } | Layout::InterleavedQkv { linear: true, .. } => vec![shape[1], shape[0]],
        _ => shape.to_vec(),
    }
}

/// The inverse of [`unpermute_rotary_rows`]: back to adjacent rotary pairs.
pub fn permute_rotary_rows(data: &[f32], heads: usize, hd: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    let half = hd / 2;
    for head in 0..heads {
        for h in 0..2 {
            for j in 0..half {
                let src = head * hd + h * half + j;
                let dst = head * hd + 2 * j + h;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Keeping BLOOM's fused layer as [Q; K; V] does not change what pruning it does: every method
/// decides from per-row scores (Wanda, N:M, magnitude per row) or from one threshold over the
/// whole layer's scores (magnitude per matrix, SNIP and GraSP per layer), and SparseGPT's
/// threshold covers all rows of a column block while its weight updates act on each row
/// alone. A permutation of the rows therefore permutes the mask and the updated weights and
/// changes nothing else (up to the tie rule among exactly equal scores), so pruning the one
/// `attn_qkv` layer here is pruning `query_key_value` as the reference SparseGPT code does
/// (the test `pruning_the_fused_layer_commutes_with_its_row_order` checks it).
///
/// BLOOM's fused q/k/v rows from the checkpoint's per-head interleaving (row
/// `h*3*hd + j*hd + e` holds part `j` in {q, k, v} of head `h`) to the graph's blocks (row
/// `j*heads*hd + h*hd + e`); `data` is `[3 * heads * hd][cols]` (cols = 1 for the bias).
pub fn qkv_heads_to_blocks(data: &[f32], heads: usize, hd: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for h in 0..heads {
        for j in 0..3 {
            let src = (h * 3 + j) * hd * cols;
            let dst = (j * heads + h) * hd * cols;
            out[dst..dst + hd * cols].copy_from_slice(&data[src..src + hd * cols]);
        }
    }
    out
}

/// The inverse of [`qkv_heads_to_blocks`]: back to the checkpoint's per-head interleaving.
pub fn qkv_blocks_to_heads(data: &[f32], heads: usize, hd: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for h in 0..heads {
        for j in 0..3 {
            let dst = (h * 3 + j) * hd * cols;
            let src = (j * heads + h) * hd * cols;
            out[dst..dst + hd * cols].copy_from_slice(&data[src..src + hd * cols]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_each_architecture() {
        assert_eq!(hf_name(HfArchitecture::Llama, "blk.3.ffn_norm.weight"), "model.layers.3.post_attention_layernorm.weight");
        assert_eq!(hf_name(HfArchitecture::Gemma3, "blk.3.ffn_norm.weight"), "model.layers.3.pre_feedforward_layernorm.weight");
        assert_eq!(hf_name(HfArchitecture::Gemma3, "blk.0.post_attention_norm.weight"), "model.layers.0.post_attention_layernorm.weight");
        assert_eq!(hf_name(HfArchitecture::Qwen2, "blk.1.attn_k.bias"), "model.layers.1.self_attn.k_proj.bias");
        assert_eq!(hf_name(HfArchitecture::Cohere, "blk.10.attn_output.weight"), "model.layers.10.self_attn.o_proj.weight");
        assert_eq!(hf_name(HfArchitecture::Llama, "output.weight"), "lm_head.weight");
        assert_eq!(hf_name(HfArchitecture::Bloom, "token_embd_norm.bias"), "transformer.word_embeddings_layernorm.bias");
        assert_eq!(hf_name(HfArchitecture::Bloom, "blk.2.attn_qkv.weight"), "transformer.h.2.self_attention.query_key_value.weight");
        assert_eq!(hf_name(HfArchitecture::Bloom, "blk.0.ffn_down.bias"), "transformer.h.0.mlp.dense_4h_to_h.bias");
        assert_eq!(hf_name(HfArchitecture::Bloom, "blk.1.ffn_norm.weight"), "transformer.h.1.post_attention_layernorm.weight");
        assert_eq!(hf_name(HfArchitecture::Bloom, "output_norm.weight"), "transformer.ln_f.weight");
    }

    #[test]
    fn bloom_qkv_rows_go_from_heads_to_blocks_and_back() {
        // Two heads of size 2, one column: the checkpoint's rows are q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1.
        let labels = ["q0a", "q0b", "k0a", "k0b", "v0a", "v0b", "q1a", "q1b", "k1a", "k1b", "v1a", "v1b"];
        let rows: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let blocks = qkv_heads_to_blocks(&rows, 2, 2, 1);
        let named: Vec<&str> = blocks.iter().map(|&v| labels[v as usize]).collect();
        assert_eq!(named, ["q0a", "q0b", "q1a", "q1b", "k0a", "k0b", "k1a", "k1b", "v0a", "v0b", "v1a", "v1b"]);
        assert_eq!(qkv_blocks_to_heads(&blocks, 2, 2, 1), rows);
        // Whole rows move: with three columns each row keeps its values together.
        let wide: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let moved = qkv_heads_to_blocks(&wide, 2, 2, 3);
        assert_eq!(&moved[3..6], &[3.0, 4.0, 5.0]);
        assert_eq!(&moved[6..9], &[18.0, 19.0, 20.0], "row 2 of the blocks is head 1's first q row");
        assert_eq!(qkv_blocks_to_heads(&moved, 2, 2, 3), wide);
    }

    #[test]
    fn rotary_row_orders_are_inverse_and_move_pairs_to_halves() {
        // Two heads of size 4, one column: adjacent pairs (0,1),(2,3) become halves (0,2),(1,3).
        let rows: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let halves = unpermute_rotary_rows(&rows, 2, 4, 1);
        assert_eq!(halves, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(permute_rotary_rows(&halves, 2, 4, 1), rows);
    }
}
