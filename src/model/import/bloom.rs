//! BLOOM (`general.architecture = bloom`).
//!
//! Pre-LayerNorm blocks with biases on every norm and linear layer, a LayerNorm on the word
//! embeddings, ALiBi attention biases instead of rotary embeddings, one fused q/k/v projection,
//! a 4x-wide GELU (tanh) MLP without a gate, and the output layer tied to the embeddings.
//! llama.cpp's converter stores the fused q/k/v rows as [all Q; all K; all V] (the checkpoint
//! interleaves them per head), the layout the graph keeps, so nothing is reordered here. It also
//! writes the embeddings a second time as `output.weight`; a copy with the same bytes is read as
//! the tied head it is, so the weight file holds the vocabulary-sized table once.

use super::super::decoder::{Activation, DecoderSpec, GptSwitches, Norm};
use super::super::gguf::{GgufError, GgufFile};
use super::{Architecture, ImportOptions};

pub struct Bloom;

const ARCH: &str = "bloom";

impl Architecture for Bloom {
    fn spec(&self, g: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, GgufError> {
        let k = |s: &str| format!("{ARCH}.{s}");
        let m = g.metadata();
        let blocks = m.get_u32(&k("block_count"))? as usize;
        let d_model = m.get_u32(&k("embedding_length"))? as usize;
        let (n_heads, n_kv_heads) = super::head_counts(g, ARCH, d_model)?;
        if n_kv_heads != n_heads {
            return Err(GgufError::ValueOutOfRange {
                path: g.path().to_path_buf(),
                key: k("attention.head_count_kv"),
                expected: "as many key/value heads as query heads (BLOOM has no grouped-query attention)",
                value: format!("{n_kv_heads} key/value heads for {n_heads} heads"),
            });
        }
        let head_dim = d_model / n_heads;
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
            activation: Activation::GeluTanh,
            parallel_block: false,
            qk_norm: false,
            sandwich_norms: false,
            qkv_bias: false,
            embed_scale: None,
            tied_output: head_is_the_embedding(g)?,
            logit_scale: None,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            rope_base: Vec::new(),
            rope_scaling: Vec::new(),
            sliding_window: vec![None; blocks],
            // ALiBi extrapolates; the context only bounds what a card advertises.
            max_positions: context.min(opts.max_positions),
            gpt: GptSwitches { alibi: true, fused_qkv: true, plain_mlp: true, linear_bias: true, norm_bias: true, embed_norm: true },
        })
    }
}

/// True when the file has no `output.weight` or one with the embeddings' very type, shape and bytes.
fn head_is_the_embedding(g: &GgufFile) -> Result<bool, GgufError> {
    if g.tensor_info("output.weight").is_none() {
        return Ok(true);
    }
    let (head, embed) = (g.tensor("output.weight")?, g.tensor("token_embd.weight")?);
    Ok(head.ggml_type() == embed.ggml_type() && head.info().dims() == embed.info().dims() && head.raw_bytes() == embed.raw_bytes())
}
