//! Gemma 3 (`general.architecture = gemma3`).
//!
//! Differences from Llama that the graph must honour: embeddings scaled by sqrt(d); RMS norms
//! on each head's queries and keys; "sandwich" norms on the attention and MLP outputs; GELU
//! (tanh) gating; five sliding-window layers (rope base 10,000) then one global layer (rope base
//! from the file, 1,000,000) repeating; the norm weights already include Gemma's `1 +` offset
//! in GGUF files, so they are used as they are.
//!
//! Two settings that change the maths are not stored as such in GGUF, and are read as
//! llama.cpp reads them:
//! * rotary scaling (`gemma3.rope.scaling.*`; linear, factor 8 for the 4B and larger) applies
//!   to the global layers only, as in transformers (`rope_scaling` updates only the
//!   `full_attention` parameters) and llama.cpp (no scaling on the sliding-window layers);
//! * the attention scale is `query_pre_attn_scalar^-0.5` in transformers. That scalar is the
//!   head size (256) for every Gemma 3 but the 27B, whose 168 is `d_model / heads` (head size
//!   128); GGUF does not carry it, and llama.cpp recognises the 27B by its 62 blocks. So do we.

use super::super::decoder::{Activation, DecoderSpec, Norm};
use super::super::gguf::{GgufError, GgufFile};
use super::super::rope::RopeScaling;
use super::{Architecture, ImportOptions};

pub struct Gemma3;

/// Every sixth layer attends globally; the others use the sliding window.
const GLOBAL_EVERY: usize = 6;
/// The local layers' rotary base is fixed by the architecture, not stored in GGUF.
const LOCAL_ROPE_BASE: f64 = 10_000.0;
/// Gemma 3 27B's block count: its `query_pre_attn_scalar` is `d_model / heads`, not the head size.
const GEMMA3_27B_BLOCKS: usize = 62;

/// `query_pre_attn_scalar^-0.5` as Gemma 3's published configs set the scalar (see the module head).
pub fn attn_scale(blocks: usize, d_model: usize, n_heads: usize, head_dim: usize) -> f32 {
    let scalar = if blocks == GEMMA3_27B_BLOCKS { d_model / n_heads } else { head_dim };
    1.0 / (scalar as f32).sqrt()
}

impl Architecture for Gemma3 {
    fn spec(&self, g: &GgufFile, opts: &ImportOptions) -> Result<DecoderSpec, GgufError> {
        let k = |s: &str| format!("gemma3.{s}");
        let blocks = g.metadata().get_u32(&k("block_count"))? as usize;
        let d_model = g.metadata().get_u32(&k("embedding_length"))? as usize;
        let n_heads = g.metadata().get_u32(&k("attention.head_count"))? as usize;
        let head_dim = g.metadata().get_u32(&k("attention.key_length"))? as usize;
        let window = g.metadata().get_u32(&k("attention.sliding_window"))? as usize;
        let global_base = g.metadata().get_opt::<f32>(&k("rope.freq_base"))?.unwrap_or(1_000_000.0) as f64;
        let context = g.metadata().get_opt::<u32>(&k("context_length"))?.map(|c| c as usize).unwrap_or(opts.max_positions);
        let is_global = |i: usize| (i + 1).is_multiple_of(GLOBAL_EVERY);
        let global_scaling = super::gguf_rope_scaling(g, "gemma3", head_dim)?;
        if matches!(global_scaling, Some(RopeScaling::FrequencyDivisors { .. })) {
            return Err(GgufError::UnsupportedVariant {
                path: g.path().to_path_buf(),
                feature: "Gemma 3 with per-frequency rotary divisors (rope_freqs.weight)".into(),
                hint: "Gemma 3 checkpoints scale their global layers linearly; re-convert with a current llama.cpp converter",
            });
        }
        Ok(DecoderSpec {
            architecture: "gemma3".into(),
            blocks,
            d_model,
            n_heads,
            n_kv_heads: g.metadata().get_u32(&k("attention.head_count_kv"))? as usize,
            head_dim,
            ffn_dim: g.metadata().get_u32(&k("feed_forward_length"))? as usize,
            vocab_size: super::vocab_rows(g)?,
            norm: Norm::Rms,
            norm_eps: g.metadata().get_f32(&k("attention.layer_norm_rms_epsilon"))?,
            activation: Activation::GeluTanh,
            parallel_block: false,
            qk_norm: true,
            sandwich_norms: true,
            qkv_bias: false,
            embed_scale: Some((d_model as f32).sqrt()),
            tied_output: g.tensor_info("output.weight").is_none(),
            logit_scale: None,
            attn_scale: attn_scale(blocks, d_model, n_heads, head_dim),
            rope_base: (0..blocks).map(|i| if is_global(i) { global_base } else { LOCAL_ROPE_BASE }).collect(),
            rope_scaling: (0..blocks).map(|i| if is_global(i) { global_scaling.clone() } else { None }).collect(),
            sliding_window: (0..blocks).map(|i| if is_global(i) { None } else { Some(window) }).collect(),
            max_positions: context.min(opts.max_positions),
            gpt: Default::default(),
        })
    }
}
