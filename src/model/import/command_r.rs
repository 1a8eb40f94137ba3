//! Command-R (`general.architecture = command-r`): Cohere's decoder, the architecture of Aya-23
//! and Command-R.
//!
//! Against Llama it differs in four ways the spec carries: one LayerNorm per block (mean
//! subtracted, weight, no bias) feeds attention and the MLP in parallel, `x + attn(ln(x)) +
//! mlp(ln(x))`, so the file has no `ffn_norm`; the final norm is a LayerNorm too; the output
//! layer is the embedding table (tied) and its logits are multiplied by `logit_scale`.
//!
//! Rotary embeddings: Cohere rotates adjacent pairs `(2j, 2j+1)` of each head (the interleaved
//! form), and llama.cpp's converter stores the q/k rows in that order unchanged. The graph
//! rotates the pairs `(j, j + hd/2)`, so import moves each head's rows into that order, the
//! same reordering Llama import applies ([`unpermute_rotary_rows`]); q and k get the same
//! permutation within each head, so every attention score is unchanged.
//!
//! Command-R+'s optional per-head q/k LayerNorms (`use_qk_norm`, tensors `attn_q_norm` /
//! `attn_k_norm`) are refused with a clear error: Aya-23 and Command-R do not use them.

use super::super::decoder::{Activation, DecoderSpec, Norm};
use super::super::gguf::{GgufError, GgufFile};
use super::llama::unpermute_rotary_rows;
use super::{Architecture, ImportOptions};

pub struct CommandR;

const ARCH: &str = "command-r";

/// llama.cpp's rotary base when a file does not record one.
const DEFAULT_ROPE_BASE: f32 = 10_000.0;

impl Architecture for CommandR {
    fn spec(&self, g: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, GgufError> {
        let k = |s: &str| format!("{ARCH}.{s}");
        let m = g.metadata();
        let blocks = m.get_u32(&k("block_count"))? as usize;
        let d_model = m.get_u32(&k("embedding_length"))? as usize;
        let (n_heads, n_kv_heads) = super::head_counts(g, ARCH, d_model)?;
        let head_dim = d_model / n_heads;
        // Rotary pairs need an even head size.
        if !head_dim.is_multiple_of(2) {
            return Err(GgufError::ValueOutOfRange {
                path: g.path().to_path_buf(),
                key: k("attention.head_count"),
                expected: "a head count that divides the embedding length into an even head size",
                value: format!("{n_heads} heads for embedding length {d_model}"),
            });
        }
        if g.tensor_info("blk.0.attn_q_norm.weight").is_some() {
            return Err(GgufError::UnsupportedVariant {
                path: g.path().to_path_buf(),
                feature: "Command-R with q/k LayerNorms (`use_qk_norm`, Command-R+)".into(),
                hint: "Aya-23 and Command-R (35B) files import; this checkpoint needs q/k norm support added to the graph",
            });
        }
        let base = m.get_opt::<f32>(&k("rope.freq_base"))?.unwrap_or(DEFAULT_ROPE_BASE) as f64;
        let context = m.get_opt::<u32>(&k("context_length"))?.map(|c| c as usize).unwrap_or(opts.max_positions);
        Ok(DecoderSpec {
            architecture: ARCH.into(),
            blocks,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: m.get_u32(&k("feed_forward_length"))? as usize,
            vocab_size: super::vocab_rows(g)?,
            norm: Norm::Layer,
            norm_eps: m.get_f32(&k("attention.layer_norm_epsilon"))?,
            activation: Activation::Silu,
            parallel_block: true,
            qk_norm: false,
            sandwich_norms: false,
            qkv_bias: false,
            embed_scale: None,
            tied_output: g.tensor_info("output.weight").is_none(),
            logit_scale: Some(m.get_f32(&k("logit_scale"))?),
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            rope_base: vec![base; blocks],
            rope_scaling: vec![super::gguf_rope_scaling(g, ARCH, head_dim)?; blocks],
            sliding_window: vec![None; blocks],
            max_positions: context.min(opts.max_positions),
            gpt: Default::default(),
        })
    }

    fn adjust(&self, name: &str, spec: &DecoderSpec, data: Vec<f32>) -> Vec<f32> {
        if name.ends_with(".attn_q.weight") {
            unpermute_rotary_rows(&data, spec.n_heads, spec.head_dim, spec.d_model)
        } else if name.ends_with(".attn_k.weight") {
            unpermute_rotary_rows(&data, spec.n_kv_heads, spec.head_dim, spec.d_model)
        } else {
            data
        }
    }
}
