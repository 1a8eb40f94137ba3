//! Llama and Qwen2 (`general.architecture = llama | qwen2`).
//!
//! Both are pre-norm decoders with SiLU gating and grouped-query attention; Qwen2 adds biases to
//! the q/k/v projections. One detail matters for exactness: the usual HF-to-GGUF converter
//! reorders the rows of Llama's q and k projections so that rotary pairs are adjacent
//! (interleaved layout). Our graph uses the rotate-half layout, so import undoes that reorder;
//! attention scores are unchanged because q and k get the same permutation within each head.
//! Qwen2 files keep the rotate-half order and need nothing.
//!
//! Rotary scaling (Llama 3.1's `rope_freqs.weight`, Qwen's YaRN, linear) is read by
//! [`super::gguf_rope_scaling`] and applies to every block.

use super::super::decoder::{Activation, DecoderSpec, Norm};
use super::super::gguf::{GgufError, GgufFile};
use super::{Architecture, ImportOptions};

pub struct Llama {
    pub qwen2: bool,
}

impl Llama {
    fn prefix(&self) -> &'static str {
        if self.qwen2 {
            "qwen2"
        } else {
            "llama"
        }
    }
}

impl Architecture for Llama {
    fn spec(&self, g: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, GgufError> {
        let k = |s: &str| format!("{}.{s}", self.prefix());
        let blocks = g.metadata().get_u32(&k("block_count"))? as usize;
        let d_model = g.metadata().get_u32(&k("embedding_length"))? as usize;
        let (n_heads, n_kv_heads) = super::head_counts(g, self.prefix(), d_model)?;
        let head_dim = g.metadata().get_opt::<u32>(&k("attention.key_length"))?.map(|v| v as usize).unwrap_or(d_model / n_heads);
        let base = g.metadata().get_opt::<f32>(&k("rope.freq_base"))?.unwrap_or(10_000.0) as f64;
        let context = g.metadata().get_opt::<u32>(&k("context_length"))?.map(|c| c as usize).unwrap_or(opts.max_positions);
        Ok(DecoderSpec {
            architecture: self.prefix().into(),
            blocks,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: g.metadata().get_u32(&k("feed_forward_length"))? as usize,
            vocab_size: super::vocab_rows(g)?,
            norm: Norm::Rms,
            norm_eps: g.metadata().get_f32(&k("attention.layer_norm_rms_epsilon"))?,
            activation: Activation::Silu,
            parallel_block: false,
            qk_norm: false,
            sandwich_norms: false,
            qkv_bias: g.tensor_info("blk.0.attn_q.bias").is_some(),
            embed_scale: None,
            tied_output: g.tensor_info("output.weight").is_none(),
            logit_scale: None,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            rope_base: vec![base; blocks],
            rope_scaling: vec![super::gguf_rope_scaling(g, self.prefix(), head_dim)?; blocks],
            sliding_window: vec![None; blocks],
            max_positions: context.min(opts.max_positions),
            gpt: Default::default(),
        })
    }

    fn adjust(&self, name: &str, spec: &DecoderSpec, data: Vec<f32>) -> Vec<f32> {
        if self.qwen2 {
            return data;
        }
        if name.ends_with(".attn_q.weight") {
            unpermute_rotary_rows(&data, spec.n_heads, spec.head_dim, spec.d_model)
        } else if name.ends_with(".attn_k.weight") {
            unpermute_rotary_rows(&data, spec.n_kv_heads, spec.head_dim, spec.d_model)
        } else {
            data
        }
    }
}

/// Within each head the converter stored row `2j + h` for the rotate-half row `h * hd/2 + j`
/// (`h` in {0, 1}); this puts every row back. `data` is `[heads * hd][cols]`.
pub fn unpermute_rotary_rows(data: &[f32], heads: usize, hd: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    let half = hd / 2;
    for head in 0..heads {
        for h in 0..2 {
            for j in 0..half {
                let dst = head * hd + h * half + j;
                let src = head * hd + 2 * j + h;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}
