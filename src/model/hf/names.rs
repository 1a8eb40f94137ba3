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

use super::config::HfArchitecture;
use crate::model::decoder::DecoderSpec;
pub use crate::model::import::llama::unpermute_rotary_rows;

/// The checkpoint's name for the graph's tensor `graph_name`.
pub fn hf_name(arch: HfArchitecture, graph_name: &str) -> String {
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
}

pub fn layout(arch: HfArchitecture, spec: &DecoderSpec, graph_name: &str) -> Layout {
    let linear = spec.linear_layers().iter().any(|l| l.name == graph_name);
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
        Layout::Linear { .. } => vec![shape[1], shape[0]],
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
