//! `model synth`: a model folder with random weights in the shape of a real model.
//!
//! Speed and memory depend on shapes, not on trained values, so the paper's 8B models can be
//! measured without their weights. A synthetic folder is written by the same code as an
//! imported one (the decoder spec, `decoder.rs`'s graphs, the card), so every command treats
//! it exactly as an imported folder; only the weights (seeded uniform noise) and, where the
//! project lacks the real one, the tokenizer (byte-level, padded to the real vocabulary) differ.
//!
//! Weights are scaled so activations stay O(1) through every block: each linear layer
//! `[in, out]` is drawn with variance `1/in` (it keeps the variance of a normalised input),
//! norm gains near 1, small biases, and an embedding whose standard deviation makes the
//! logits of a normalised hidden state O(1). Each tensor has its own ChaCha stream, keyed by
//! the seed and the tensor's name, so a truncated model (`--blocks`) holds exactly the first
//! blocks of the full one, and the weight file is written tensor by tensor, chunk by chunk:
//! the model never exists in memory.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::builder::WeightFile;
use super::card::{ModelCard, SourceFile, SyntheticOrigin};
use super::decoder::{Activation, DecoderSpec, Norm, WeightTable};
use super::import::{self, TOKENIZER_FILE, WEIGHTS_FILE};
use super::rope::RopeScaling;
use super::ModelError;
use crate::progress::Progress;
use crate::runtime::FloatType;

/// The architecture family of a shape: which switches of [`DecoderSpec`] it sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    /// Gemma 3: sliding-window layers with a local rope base, every `global_every`-th layer
    /// global with the global base; q/k norms, sandwich norms, GELU, embeddings x sqrt(d).
    Gemma3 { window: usize, local_rope_base: f64, global_every: usize },
    /// Llama 3: pre-norm, SiLU gating, grouped-query attention.
    Llama,
    /// Qwen2: Llama with biases on the q/k/v projections.
    Qwen2,
    /// Cohere Command-R (Aya 23): parallel attention and MLP on one LayerNorm, logits scaled.
    CommandR { logit_scale: f32 },
    /// BLOOM: ALiBi instead of rotary (the rotary fields are unused), LayerNorms with biases
    /// (one on the embeddings), fused q/k/v, ungated GELU MLP, biases on every linear layer.
    Bloom,
}

/// How the shape's tokenizer is obtained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenizerPlan {
    /// The real tokenizer, copied from an imported folder of this model (by default
    /// `<cache>/models/<name>`); the byte-level one when none is found.
    CopyFrom { model: &'static str },
    /// Bytes, the model's special tokens at their real ids, and unused pieces up to the vocabulary.
    ByteLevel,
}

/// A real model's shape, with the numbers of its published configuration.
#[derive(Clone, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub family: Family,
    pub blocks: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub vocab_size: usize,
    /// RMSNorm (or LayerNorm) epsilon.
    pub norm_eps: f32,
    /// The (global) rotary base.
    pub rope_base: f64,
    /// The configuration's rotary scaling (`rope_scaling`); Gemma 3 applies it to the global
    /// layers only.
    pub rope_scaling: Option<RopeScaling>,
    /// The context length of the configuration (the rotary tables are capped below it).
    pub context: usize,
    pub tied_output: bool,
    /// Special tokens `(id, piece)` at their real ids; the first is the start token.
    pub bos: Option<(u32, &'static str)>,
    pub eos: (u32, &'static str),
    pub tokenizer: TokenizerPlan,
    /// Where the numbers come from.
    pub source: &'static str,
}

/// Gemma 3's local layers: window and rotary base (the gemma3 importer's constants), one
/// global layer in six.
const GEMMA3_LOCAL_BASE: f64 = 10_000.0;
const GEMMA3_GLOBAL_EVERY: usize = 6;

/// Every shape `model synth` knows. The numbers are the models' own `config.json` fields
/// (`num_hidden_layers`, `hidden_size`, `num_attention_heads`, `num_key_value_heads`,
/// `head_dim`, `intermediate_size`, `vocab_size`, `rms_norm_eps`/`layer_norm_eps`,
/// `rope_theta`, `max_position_embeddings`, `tie_word_embeddings`).
pub const SHAPES: &[Shape] = &[
    Shape {
        name: "gemma-3-270m",
        family: Family::Gemma3 { window: 512, local_rope_base: GEMMA3_LOCAL_BASE, global_every: GEMMA3_GLOBAL_EVERY },
        blocks: 18,
        d_model: 640,
        n_heads: 4,
        n_kv_heads: 1,
        head_dim: 256,
        ffn_dim: 2048,
        vocab_size: 262_144,
        norm_eps: 1e-6,
        rope_base: 1_000_000.0,
        rope_scaling: None,
        context: 32_768,
        tied_output: true,
        bos: Some((2, "<bos>")),
        eos: (1, "<eos>"),
        tokenizer: TokenizerPlan::CopyFrom { model: "gemma-3-270m" },
        source: "google/gemma-3-270m config.json (and its GGUF, as imported into .cache/models/gemma-3-270m)",
    },
    Shape {
        name: "gemma-3-1b",
        family: Family::Gemma3 { window: 512, local_rope_base: GEMMA3_LOCAL_BASE, global_every: GEMMA3_GLOBAL_EVERY },
        blocks: 26,
        d_model: 1152,
        n_heads: 4,
        n_kv_heads: 1,
        head_dim: 256,
        ffn_dim: 6912,
        vocab_size: 262_144,
        norm_eps: 1e-6,
        rope_base: 1_000_000.0,
        rope_scaling: None,
        context: 32_768,
        tied_output: true,
        bos: Some((2, "<bos>")),
        eos: (1, "<eos>"),
        tokenizer: TokenizerPlan::CopyFrom { model: "gemma-3-270m" },
        source: "google/gemma-3-1b-pt config.json",
    },
    Shape {
        // The 4B's global layers scale rotary positions by 8 (rope_scaling linear, factor 8).
        // Its vocabulary is the 262,144 pieces padded to 262,208 embedding rows.
        name: "gemma-3-4b",
        family: Family::Gemma3 { window: 1024, local_rope_base: GEMMA3_LOCAL_BASE, global_every: GEMMA3_GLOBAL_EVERY },
        blocks: 34,
        d_model: 2560,
        n_heads: 8,
        n_kv_heads: 4,
        head_dim: 256,
        ffn_dim: 10_240,
        vocab_size: 262_208,
        norm_eps: 1e-6,
        rope_base: 1_000_000.0,
        rope_scaling: Some(RopeScaling::Linear { factor: 8.0 }),
        context: 131_072,
        tied_output: true,
        bos: Some((2, "<bos>")),
        eos: (1, "<eos>"),
        tokenizer: TokenizerPlan::CopyFrom { model: "gemma-3-270m" },
        source: "google/gemma-3-4b-pt config.json (text_config)",
    },
    Shape {
        name: "llama-3-8b",
        family: Family::Llama,
        blocks: 32,
        d_model: 4096,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        ffn_dim: 14_336,
        vocab_size: 128_256,
        norm_eps: 1e-5,
        rope_base: 500_000.0,
        rope_scaling: None,
        context: 8192,
        tied_output: false,
        bos: Some((128_000, "<|begin_of_text|>")),
        eos: (128_001, "<|end_of_text|>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "meta-llama/Meta-Llama-3-8B config.json",
    },
    Shape {
        name: "llama-3-70b",
        family: Family::Llama,
        blocks: 80,
        d_model: 8192,
        n_heads: 64,
        n_kv_heads: 8,
        head_dim: 128,
        ffn_dim: 28_672,
        vocab_size: 128_256,
        norm_eps: 1e-5,
        rope_base: 500_000.0,
        rope_scaling: None,
        context: 8192,
        tied_output: false,
        bos: Some((128_000, "<|begin_of_text|>")),
        eos: (128_001, "<|end_of_text|>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "meta-llama/Meta-Llama-3-70B config.json",
    },
    Shape {
        name: "llama-3.1-8b",
        family: Family::Llama,
        blocks: 32,
        d_model: 4096,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        ffn_dim: 14_336,
        vocab_size: 128_256,
        norm_eps: 1e-5,
        rope_base: 500_000.0,
        rope_scaling: Some(RopeScaling::llama_3_1()),
        context: 131_072,
        tied_output: false,
        bos: Some((128_000, "<|begin_of_text|>")),
        eos: (128_001, "<|end_of_text|>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "meta-llama/Llama-3.1-8B config.json (rope_scaling: llama3, factor 8, low 1, high 4, original 8192)",
    },
    Shape {
        name: "qwen2.5-0.5b",
        family: Family::Qwen2,
        blocks: 24,
        d_model: 896,
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        ffn_dim: 4864,
        vocab_size: 151_936,
        norm_eps: 1e-6,
        rope_base: 1_000_000.0,
        rope_scaling: None,
        context: 32_768,
        tied_output: true,
        bos: None,
        eos: (151_643, "<|endoftext|>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "Qwen/Qwen2.5-0.5B config.json",
    },
    Shape {
        name: "aya-23-8b",
        family: Family::CommandR { logit_scale: 0.0625 },
        blocks: 32,
        d_model: 4096,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        ffn_dim: 14_336,
        vocab_size: 256_000,
        norm_eps: 1e-5,
        rope_base: 10_000.0,
        rope_scaling: None,
        context: 8192,
        tied_output: true,
        bos: Some((5, "<BOS_TOKEN>")),
        eos: (255_001, "<|END_OF_TURN_TOKEN|>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "CohereForAI/aya-23-8B config.json (model_type cohere)",
    },
    Shape {
        name: "bloom-560m",
        family: Family::Bloom,
        blocks: 24,
        d_model: 1024,
        n_heads: 16,
        n_kv_heads: 16,
        head_dim: 64,
        ffn_dim: 4096,
        vocab_size: 250_880,
        norm_eps: 1e-5,
        rope_base: 0.0,
        rope_scaling: None,
        context: 2048,
        tied_output: true,
        bos: Some((1, "<s>")),
        eos: (2, "</s>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "bigscience/bloom-560m config.json (n_layer, n_embed, n_head, layer_norm_epsilon; MLP 4 x n_embed; trained on 2048-token sequences)",
    },
    Shape {
        name: "bloom-7b1",
        family: Family::Bloom,
        blocks: 30,
        d_model: 4096,
        n_heads: 32,
        n_kv_heads: 32,
        head_dim: 128,
        ffn_dim: 16_384,
        vocab_size: 250_880,
        norm_eps: 1e-5,
        rope_base: 0.0,
        rope_scaling: None,
        context: 2048,
        tied_output: true,
        bos: Some((1, "<s>")),
        eos: (2, "</s>"),
        tokenizer: TokenizerPlan::ByteLevel,
        source: "bigscience/bloom-7b1 config.json (n_layer, hidden_size, n_head, layer_norm_epsilon; MLP 4 x hidden_size; trained on 2048-token sequences)",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("unknown model shape '{name}'{}; known shapes: {}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default(), known.join(", "))]
    UnknownShape { name: String, suggestion: Option<String>, known: Vec<String> },
    #[error("--blocks {blocks}: {shape} has {max} blocks; give 1 to {max}")]
    BadBlocks { shape: String, blocks: usize, max: usize },
    #[error(
        "{shape} needs {} on disk but {path} has {} free; write fewer blocks (--blocks N keeps the first N at full width, \
         `--plan` shows each size) or choose a folder on a larger disk with -o",
        gib(*need), gib(*free)
    )]
    NoSpace { shape: String, path: PathBuf, need: u64, free: u64 },
    #[error("{path}: cannot use this tokenizer for {shape}: {reason}")]
    BadTokenizer { shape: String, path: PathBuf, reason: String },
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// What `model synth` is asked to write.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// A name from [`SHAPES`].
    pub like: String,
    pub out: PathBuf,
    pub seed: u64,
    /// Keep only the first N blocks, every width unchanged.
    pub blocks: Option<usize>,
    /// A model folder (or a `tokenizer.json`) whose tokenizer to copy instead of the default.
    pub tokenizer_from: Option<PathBuf>,
    /// Cap on the rotary tables' length, as `model import --max-positions`.
    pub max_positions: usize,
    /// The type the weight matrices are stored in (`--dtype`); vectors stay f32.
    pub dtype: FloatType,
}

impl SynthOptions {
    pub fn new(like: &str, out: &Path) -> Self {
        SynthOptions {
            like: like.to_string(),
            out: out.to_path_buf(),
            seed: 0,
            blocks: None,
            tokenizer_from: None,
            max_positions: import::ImportOptions::default().max_positions,
            dtype: FloatType::F32,
        }
    }
}

/// Parameters of one role across the model.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleSize {
    /// `embedding`, `output`, a linear role (`q`, `k`, ... `down`), `norms` or `biases`.
    pub role: String,
    pub tensors: usize,
    pub params: u64,
}

/// A shape resolved for writing: the spec, its parameters by role, and its size on disk.
#[derive(Clone, Debug)]
pub struct SynthPlan {
    pub like: String,
    pub spec: DecoderSpec,
    /// Blocks of the real model (the spec holds the blocks written).
    pub shape_blocks: usize,
    pub roles: Vec<RoleSize>,
    /// Parameters written (the rotary tables are not parameters).
    pub params: u64,
    /// The type the matrices are stored in.
    pub dtype: FloatType,
    /// The weight file's size: every matrix in `dtype`, every vector in f32, aligned, plus
    /// the rotary tables.
    pub weight_bytes: u64,
    /// Space the folder needs: the weights plus the graph files.
    pub disk_bytes: u64,
}

/// What `model synth` wrote.
#[derive(Clone, Debug)]
pub struct SynthReport {
    pub out: PathBuf,
    pub card: ModelCard,
    pub plan: SynthPlan,
    /// Where the tokenizer came from, as the card records it.
    pub tokenizer: String,
}

/// The shape called `name`, or an error suggesting the nearest name.
pub fn shape(name: &str) -> Result<&'static Shape, SynthError> {
    if let Some(s) = SHAPES.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
        return Ok(s);
    }
    let nearest = SHAPES
        .iter()
        .map(|s| (strsim::jaro_winkler(&name.to_ascii_lowercase(), s.name), s.name))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.7)
        .map(|(_, n)| n.to_string());
    Err(SynthError::UnknownShape { name: name.into(), suggestion: nearest, known: SHAPES.iter().map(|s| s.name.to_string()).collect() })
}

impl Shape {
    /// The decoder of this shape with its first `blocks` blocks (all when `None`).
    pub fn spec(&self, blocks: Option<usize>, max_positions: usize) -> Result<DecoderSpec, SynthError> {
        let n = blocks.unwrap_or(self.blocks);
        if n == 0 || n > self.blocks {
            return Err(SynthError::BadBlocks { shape: self.name.into(), blocks: n, max: self.blocks });
        }
        let mut spec = DecoderSpec {
            architecture: String::new(),
            blocks: n,
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            ffn_dim: self.ffn_dim,
            vocab_size: self.vocab_size,
            norm: Norm::Rms,
            norm_eps: self.norm_eps,
            activation: Activation::Silu,
            parallel_block: false,
            qk_norm: false,
            sandwich_norms: false,
            qkv_bias: false,
            embed_scale: None,
            tied_output: self.tied_output,
            logit_scale: None,
            attn_scale: 1.0 / (self.head_dim as f32).sqrt(),
            rope_base: vec![self.rope_base; n],
            rope_scaling: vec![self.rope_scaling.clone(); n],
            sliding_window: vec![None; n],
            max_positions: self.context.min(max_positions),
            gpt: Default::default(),
        };
        match self.family {
            Family::Gemma3 { window, local_rope_base, global_every } => {
                // As the gemma3 importer: layers 6, 12, ... (1-based) are global.
                let global = |i: usize| (i + 1).is_multiple_of(global_every);
                spec.architecture = "gemma3".into();
                spec.activation = Activation::GeluTanh;
                spec.qk_norm = true;
                spec.sandwich_norms = true;
                spec.embed_scale = Some((self.d_model as f32).sqrt());
                spec.rope_base = (0..n).map(|i| if global(i) { self.rope_base } else { local_rope_base }).collect();
                spec.rope_scaling = (0..n).map(|i| if global(i) { self.rope_scaling.clone() } else { None }).collect();
                // query_pre_attn_scalar is the head size in every shape here (not the 27B).
                spec.attn_scale = super::import::gemma3_attn_scale(self.blocks, self.d_model, self.n_heads, self.head_dim);
                spec.sliding_window = (0..n).map(|i| if global(i) { None } else { Some(window) }).collect();
            }
            Family::Llama => spec.architecture = "llama".into(),
            Family::Qwen2 => {
                spec.architecture = "qwen2".into();
                spec.qkv_bias = true;
            }
            Family::CommandR { logit_scale } => {
                // As the command-r importer: one LayerNorm feeding attention and MLP in parallel.
                spec.architecture = "command-r".into();
                spec.norm = Norm::Layer;
                spec.parallel_block = true;
                spec.logit_scale = Some(logit_scale);
            }
            Family::Bloom => {
                // As the BLOOM importers build it.
                spec.architecture = "bloom".into();
                spec.norm = Norm::Layer;
                spec.activation = Activation::GeluTanh;
                spec.rope_base = Vec::new();
                spec.rope_scaling = Vec::new();
                spec.gpt = super::decoder::GptSwitches {
                    alibi: true,
                    fused_qkv: true,
                    plain_mlp: true,
                    linear_bias: true,
                    norm_bias: true,
                    embed_norm: true,
                };
            }
        }
        Ok(spec)
    }
}

/// The plan for a shape, without writing anything: `model synth --plan`.
pub fn plan(like: &str, blocks: Option<usize>, max_positions: usize) -> Result<SynthPlan, ModelError> {
    plan_typed(like, blocks, max_positions, FloatType::F32)
}

/// As [`plan`], with the matrices stored in `dtype`.
pub fn plan_typed(like: &str, blocks: Option<usize>, max_positions: usize, dtype: FloatType) -> Result<SynthPlan, ModelError> {
    let shape = shape(like)?;
    let spec = shape.spec(blocks, max_positions)?;
    let weights = spec.weight_shapes();
    let mut roles: Vec<RoleSize> = Vec::new();
    let linear: std::collections::HashMap<String, &'static str> =
        spec.linear_layers().into_iter().map(|l| (l.name, l.role.as_str())).collect();
    let mut weight_bytes = 0u64;
    for (name, dims) in &weights {
        let role = role_of(name, &linear);
        let params: u64 = dims.iter().map(|&d| d as u64).product();
        let width = if dims.len() == 2 { dtype.bytes() } else { 4 } as u64;
        weight_bytes = aligned(weight_bytes) + params * width;
        match roles.iter_mut().find(|r| r.role == role) {
            Some(r) => {
                r.tensors += 1;
                r.params += params;
            }
            None => roles.push(RoleSize { role, tensors: 1, params }),
        }
    }
    for _ in 0..2 * spec.distinct_rotaries().len() {
        weight_bytes = aligned(weight_bytes) + (spec.max_positions * spec.head_dim * 4) as u64;
    }
    let params = roles.iter().map(|r| r.params).sum();
    // Graphs reference the weights, so each is small; a margin covers them and the tokenizer.
    let disk_bytes = weight_bytes + GRAPH_MARGIN_BYTES + spec.blocks as u64 * GRAPH_MARGIN_PER_BLOCK;
    Ok(SynthPlan { like: shape.name.into(), shape_blocks: shape.blocks, spec, roles, params, dtype, weight_bytes, disk_bytes })
}

/// Room reserved for the graphs, tokenizer and card beyond the weight file.
const GRAPH_MARGIN_BYTES: u64 = 64 << 20;
const GRAPH_MARGIN_PER_BLOCK: u64 = 2 << 20;

fn aligned(offset: u64) -> u64 {
    offset.div_ceil(64) * 64
}

fn role_of(name: &str, linear: &std::collections::HashMap<String, &'static str>) -> String {
    if let Some(r) = linear.get(name) {
        return r.to_string();
    }
    match name {
        "token_embd.weight" => "embedding".into(),
        "output.weight" => "output".into(),
        n if n.ends_with(".bias") => "biases".into(),
        _ => "norms".into(),
    }
}

impl std::fmt::Display for SynthPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.spec;
        let truncated =
            if s.blocks < self.shape_blocks { format!(" (first {} of {})", s.blocks, self.shape_blocks) } else { String::new() };
        writeln!(f, "{} ({}): {} blocks{truncated}", self.like, s.architecture, s.blocks)?;
        writeln!(
            f,
            "d_model {}  heads {}/{} kv x {}  ffn {}  vocabulary {}  tied output: {}  rotary tables: {} positions",
            s.d_model,
            s.n_heads,
            s.n_kv_heads,
            s.head_dim,
            s.ffn_dim,
            s.vocab_size,
            if s.tied_output { "yes" } else { "no" },
            s.max_positions
        )?;
        let bytes_header = format!("{} bytes", self.dtype);
        writeln!(f, "{:<10} {:>8} {:>16} {:>12}", "role", "tensors", "parameters", bytes_header)?;
        // Norms and biases are vectors, stored in f32 whatever the matrices' type.
        let width = |role: &str| if role == "norms" || role == "biases" { 4 } else { self.dtype.bytes() as u64 };
        for r in &self.roles {
            writeln!(f, "{:<10} {:>8} {:>16} {:>12}", r.role, r.tensors, r.params, human_bytes(r.params * width(&r.role)))?;
        }
        writeln!(
            f,
            "{:<10} {:>8} {:>16} {:>12}",
            "total",
            self.roles.iter().map(|r| r.tensors).sum::<usize>(),
            self.params,
            human_bytes(self.roles.iter().map(|r| r.params * width(&r.role)).sum())
        )?;
        write!(f, "weight file {} (with rotary tables); needs {} on disk", human_bytes(self.weight_bytes), human_bytes(self.disk_bytes))
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Writes a synthetic model folder at `opts.out` (replaced atomically when it exists).
pub fn synthesize(opts: &SynthOptions, progress: &mut dyn Progress) -> Result<SynthReport, ModelError> {
    let shape = shape(&opts.like)?;
    let plan = plan_typed(&opts.like, opts.blocks, opts.max_positions, opts.dtype)?;
    check_free_space(&plan, &opts.out)?;
    let tokenizer = TokenizerSource::resolve(shape, opts)?;
    let staged = crate::util::StagedDir::begin(&opts.out).map_err(|e| ModelError::io(&opts.out, e))?;
    let dir = staged.path();
    let weights = write_weights(shape, &plan.spec, opts.seed, opts.dtype, dir, progress)?;
    progress.stage("writing graphs", 0);
    let parts = import::write_graphs(&plan.spec, &weights, dir)?;
    progress.finish();
    let (tokenizer_label, bos, eos) = tokenizer.write(shape, &plan.spec, &dir.join(TOKENIZER_FILE))?;
    let origin = SyntheticOrigin {
        like: shape.name.into(),
        seed: opts.seed,
        blocks: plan.spec.blocks,
        shape_blocks: shape.blocks,
        truncated: plan.spec.blocks < shape.blocks,
        tokenizer: tokenizer_label.clone(),
    };
    let spec = plan.spec.clone();
    let source = SourceFile { file: format!("synth:{}", shape.name), sha256: identity_hash(&origin, &spec) };
    let tokens = import::SpecialTokens { bos, eos, start: bos.or(eos) };
    let mut card = import::decoder_card(card_name(&origin), source, spec, parts, tokens, Some(origin));
    card.weight_dtype = import::card_dtype(opts.dtype);
    card.write(dir)?;
    staged.commit().map_err(|e| ModelError::io(&opts.out, e))?;
    Ok(SynthReport { out: opts.out.clone(), card, plan, tokenizer: tokenizer_label })
}

fn card_name(o: &SyntheticOrigin) -> String {
    let blocks = if o.truncated { format!(", first {} of {} blocks", o.blocks, o.shape_blocks) } else { String::new() };
    format!("synthetic {} (random weights, seed {}{blocks})", o.like, o.seed)
}

/// A checksum of everything that decides the weights, standing in for a source file's: two
/// folders with the same identity hold the same weights.
fn identity_hash(o: &SyntheticOrigin, spec: &DecoderSpec) -> String {
    let text = format!("{WEIGHTS_FORMAT}|{}|{}|{}", o.like, o.seed, serde_json::to_string(spec).expect("spec serialises"));
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Bumped whenever the drawing of weights changes, so identities of older folders differ.
const WEIGHTS_FORMAT: &str = "polyprune-synth/1";

/// Refuses before writing when the target's file system lacks the room.
fn check_free_space(plan: &SynthPlan, out: &Path) -> Result<(), ModelError> {
    let probe = out.ancestors().find(|p| p.exists() && !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(free) = free_bytes(probe) else { return Ok(()) };
    if free < plan.disk_bytes {
        return Err(SynthError::NoSpace { shape: plan.like.clone(), path: probe.to_path_buf(), need: plan.disk_bytes, free }.into());
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// How a tensor's values are drawn: uniform with this mean and standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Init {
    pub mean: f32,
    pub std: f32,
}

/// The draw for one weight of `spec`: see the module head for why these scales.
pub fn init_of(name: &str, dims: &[usize], spec: &DecoderSpec, logit_scale: f32) -> Init {
    let d = spec.d_model as f32;
    if name == "token_embd.weight" {
        // Tied: the output layer, so logits of a unit-RMS hidden state get std ~1 after scaling.
        // Untied: the input only, whose scale the first norm removes.
        let std = if spec.tied_output { 1.0 / (d.sqrt() * logit_scale) } else { 1.0 / d.sqrt() };
        return Init { mean: 0.0, std };
    }
    if name == "output.weight" {
        return Init { mean: 0.0, std: 1.0 / (d.sqrt() * logit_scale) };
    }
    if name.ends_with(".bias") {
        return Init { mean: 0.0, std: 0.02 };
    }
    if dims.len() == 1 {
        // Norm gains (GGUF's Gemma norms already hold the `1 +`).
        return Init { mean: 1.0, std: 0.02 };
    }
    Init { mean: 0.0, std: 1.0 / (dims[0] as f32).sqrt() }
}

/// The ChaCha stream of one tensor: its own, so each tensor's values depend only on the seed
/// and its name.
/// Fills `chunk` with values uniform around `mean` with standard deviation `std` (uniform on
/// [mean - a, mean + a) has standard deviation a / sqrt(3)), from 24 random bits each, so every
/// value is exactly representable in f32.
pub(crate) fn fill_uniform(rng: &mut impl RngCore, mean: f32, std: f32, chunk: &mut [f32]) {
    let half_width = std * 3f32.sqrt();
    for v in chunk.iter_mut() {
        let u = (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
        *v = mean + (2.0 * u - 1.0) * half_width;
    }
}

pub(crate) fn tensor_rng(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = Sha256::digest(name.as_bytes());
    rng.set_stream(u64::from_le_bytes(h[..8].try_into().expect("8 bytes")));
    rng
}

fn logit_scale_of(shape: &Shape) -> f32 {
    match shape.family {
        Family::CommandR { logit_scale } => logit_scale,
        _ => 1.0,
    }
}

fn write_weights(
    shape: &Shape,
    spec: &DecoderSpec,
    seed: u64,
    dtype: FloatType,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<WeightTable, ModelError> {
    let path = dir.join(WEIGHTS_FILE);
    let io = |e| ModelError::io(&path, e);
    // A 16-bit folder holds the f32 draw rounded to nearest even: the same model as the f32
    // folder of the seed, rounded once.
    let mut file = WeightFile::create(dir, WEIGHTS_FILE).map_err(io)?.with_matrix_type(dtype);
    let mut table = WeightTable::new();
    let shapes = spec.weight_shapes();
    let total: u64 = shapes.iter().map(|(_, d)| d.iter().product::<usize>() as u64).sum();
    progress.stage("drawing weights (parameters)", total);
    let mut done = 0u64;
    for (name, dims) in shapes {
        progress.detail(&name);
        let init = init_of(&name, &dims, spec, logit_scale_of(shape));
        let mut rng = tensor_rng(seed, &name);
        let t = file.append_weight_with(&name, &dims, |chunk| fill_uniform(&mut rng, init.mean, init.std, chunk)).map_err(io)?;
        done += dims.iter().product::<usize>() as u64;
        progress.advance(done);
        table.insert(name, t);
    }
    import::append_rope_tables(&mut file, spec, &mut table).map_err(io)?;
    file.finish().map_err(io)?;
    progress.finish();
    Ok(table)
}

/// Where the folder's `tokenizer.json` comes from.
enum TokenizerSource {
    Copy(PathBuf),
    ByteLevel,
}

impl TokenizerSource {
    fn resolve(shape: &Shape, opts: &SynthOptions) -> Result<Self, ModelError> {
        let as_file = |p: &Path| if p.is_dir() { p.join(TOKENIZER_FILE) } else { p.to_path_buf() };
        if let Some(from) = &opts.tokenizer_from {
            let file = as_file(from);
            if !file.is_file() {
                return Err(SynthError::BadTokenizer { shape: shape.name.into(), path: file, reason: "no such file".into() }.into());
            }
            return Ok(TokenizerSource::Copy(file));
        }
        Ok(match shape.tokenizer {
            TokenizerPlan::CopyFrom { model } => {
                let file = crate::util::cache_dir().join("models").join(model).join(TOKENIZER_FILE);
                if file.is_file() {
                    TokenizerSource::Copy(file)
                } else {
                    TokenizerSource::ByteLevel
                }
            }
            TokenizerPlan::ByteLevel => TokenizerSource::ByteLevel,
        })
    }

    /// Writes `tokenizer.json` at `dest`; returns its description and the BOS and EOS ids.
    fn write(&self, shape: &Shape, spec: &DecoderSpec, dest: &Path) -> Result<(String, Option<u32>, Option<u32>), ModelError> {
        let (label, json) = match self {
            TokenizerSource::Copy(src) => {
                let text = std::fs::read_to_string(src).map_err(|e| ModelError::io(src, e))?;
                let bad = |reason: String| SynthError::BadTokenizer { shape: shape.name.into(), path: src.clone(), reason };
                let tok: tokenizers::Tokenizer = text.parse().map_err(|e: tokenizers::Error| bad(e.to_string()))?;
                let pieces = tok.get_vocab_size(true);
                if pieces > spec.vocab_size {
                    return Err(
                        bad(format!("it has {pieces} pieces, more than the {} rows of the shape's embedding", spec.vocab_size)).into()
                    );
                }
                (format!("copied from {}", src.display()), text)
            }
            TokenizerSource::ByteLevel => {
                let json = byte_level_tokenizer(shape, spec.vocab_size);
                (format!("byte-level, padded to {} pieces", spec.vocab_size), serde_json::to_string(&json).expect("json serialises"))
            }
        };
        crate::util::write_atomic(dest, json.as_bytes()).map_err(|e| ModelError::io(dest, e))?;
        // A tokenizer copied from a model folder keeps that folder's special tokens.
        let source_card = match self {
            TokenizerSource::Copy(src) => src.parent().and_then(|d| ModelCard::read(d).ok()),
            TokenizerSource::ByteLevel => None,
        };
        Ok(match source_card {
            Some(c) => (label, c.bos_token_id, c.eos_token_id),
            None => (label, shape.bos.map(|b| b.0), Some(shape.eos.0)),
        })
    }
}

/// GPT-2's printable stand-in for each byte, as byte-level tokenizers spell pieces.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return b as char;
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("a valid code point")
}

/// A byte-level tokenizer of exactly `vocab` pieces: the model's special tokens at their real
/// ids, the 256 bytes at the first free ids, and `<unused_N>` for every other id. With no
/// merges, every byte of text is one token: real text of any script tokenizes.
pub fn byte_level_tokenizer(shape: &Shape, vocab: usize) -> Value {
    let specials: Vec<(u32, &str)> = shape.bos.into_iter().chain([shape.eos]).collect();
    byte_level_tokenizer_with(shape.bos, &specials, vocab)
}

/// As [`byte_level_tokenizer`], with the special tokens given (`bos`, if any, among them).
pub fn byte_level_tokenizer_with(bos: Option<(u32, &str)>, specials: &[(u32, &str)], vocab: usize) -> Value {
    let mut bytes = (0u8..=255).map(byte_char);
    let tokens: Vec<String> = (0..vocab as u32)
        .map(|id| match specials.iter().find(|s| s.0 == id) {
            Some((_, piece)) => piece.to_string(),
            None => bytes.next().map(String::from).unwrap_or_else(|| format!("<unused_{id}>")),
        })
        .collect();
    let bos = bos.map(|(id, piece)| (id, piece.to_string()));
    let mut json = import::tokenizer::byte_level_bpe(&tokens, &[], "default", bos).expect("the default pre-tokenizer is supported");
    json["added_tokens"] = Value::Array(
        specials
            .iter()
            .map(|(id, piece)| {
                json!({"id": id, "content": piece, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": true})
            })
            .collect(),
    );
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_are_distinct_and_match_gpt2() {
        let chars: std::collections::HashSet<char> = (0u8..=255).map(byte_char).collect();
        assert_eq!(chars.len(), 256);
        // GPT-2's table: space is U+0120, newline U+010A, 'a' itself.
        assert_eq!((byte_char(b' '), byte_char(b'\n'), byte_char(b'a')), ('\u{120}', '\u{10A}', 'a'));
    }

    #[test]
    fn byte_level_tokenizer_has_the_vocabulary_and_round_trips() {
        let shape = shape("llama-3-8b").unwrap();
        let json = byte_level_tokenizer(shape, shape.vocab_size);
        let tok: tokenizers::Tokenizer = serde_json::to_string(&json).unwrap().parse().unwrap();
        assert_eq!(tok.get_vocab_size(true), 128_256);
        let text = "Héllo, wörld — ሰላም";
        let enc = tok.encode(text, true).unwrap();
        assert_eq!(enc.get_ids()[0], 128_000, "BOS first");
        assert_eq!(enc.len(), 1 + text.len(), "one token per byte after BOS");
        assert_eq!(tok.decode(&enc.get_ids()[1..], false).unwrap(), text);
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let err = shape("lama-3-8b").unwrap_err().to_string();
        assert!(err.contains("did you mean 'llama-3-8b'"), "{err}");
        assert!(shape("GEMMA-3-1B").is_ok());
    }

    #[test]
    fn a_disk_without_room_is_refused_with_the_sizes_and_the_fix() {
        let mut p = plan("llama-3-8b", None, 8192).unwrap();
        p.disk_bytes = u64::MAX / 4;
        let out = std::env::temp_dir().join("polyprune-synth-never-written");
        let err = check_free_space(&p, &out).unwrap_err().to_string();
        assert!(err.contains("llama-3-8b needs 4294967296.00 GiB on disk") && err.contains("free"), "{err}");
        assert!(err.contains("--blocks N") && err.contains("-o"), "{err}");
        assert!(!out.exists());
        p.disk_bytes = 1;
        assert!(check_free_space(&p, &out).is_ok());
    }

    #[test]
    fn gemma_3_4b_carries_linear_scaling_on_its_global_layers() {
        let spec = shape("gemma-3-4b").unwrap().spec(Some(12), 8192).unwrap();
        for i in 0..12 {
            let global = (i + 1) % 6 == 0;
            let rotary = spec.rotary(i);
            let (base, scaling) = if global { (1e6, Some(RopeScaling::Linear { factor: 8.0 })) } else { (1e4, None) };
            assert_eq!((rotary.base, rotary.scaling), (base, scaling), "block {i}");
        }
        // query_pre_attn_scalar = head size 256.
        assert_eq!(spec.attn_scale, 1.0 / 16.0);
        // Two tables (local; scaled global), and the card's spec keeps the scaling.
        assert_eq!(spec.distinct_rotaries().len(), 2);
        let back: DecoderSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back.rope_scaling, spec.rope_scaling);
        // The global tables are transformers' (tests/fixtures/rope_reference.json, case gemma3-4b):
        // inverse frequencies 1e6^(-2j/256) / 8, so at pair 1: 1e6^(-1/128) / 8.
        let inv = spec.rotary(5).inverse_frequencies(256);
        assert!((inv[1] / (1e6f64.powf(-1.0 / 128.0) / 8.0) - 1.0).abs() < 1e-15);
        let (cos, _) = crate::model::decoder::rope_tables(&spec.rotary(5), 256, 3);
        assert_eq!(cos[2 * 256 + 1], ((2.0 * inv[1]).cos()) as f32);
    }

    #[test]
    fn llama_3_1_8b_carries_llama3_scaling_and_llama_3_8b_none() {
        let spec = shape("llama-3.1-8b").unwrap().spec(Some(2), 8192).unwrap();
        assert_eq!(spec.rope_base, vec![500_000.0; 2]);
        let want = RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_positions: 8192 };
        assert_eq!(spec.rope_scaling, vec![Some(want); 2]);
        assert_eq!((spec.blocks, spec.d_model, spec.head_dim, spec.vocab_size), (2, 4096, 128, 128_256));
        let card = serde_json::to_value(&spec).unwrap();
        assert_eq!(card["rope_scaling"][1]["type"], "llama3");
        // Llama 3 (8B) has none, and its spec serialises as before scaling existed.
        let plain = shape("llama-3-8b").unwrap().spec(Some(2), 8192).unwrap();
        assert!(plain.rope_scaling.iter().all(Option::is_none));
        assert!(serde_json::to_value(&plain).unwrap().get("rope_scaling").is_none());
        // And a card written before scaling existed reads as unscaled.
        let mut old = serde_json::to_value(&plain).unwrap();
        old.as_object_mut().unwrap().remove("rope_scaling");
        let read: DecoderSpec = serde_json::from_value(old).unwrap();
        assert_eq!(read.rotary(1), crate::model::rope::Rotary::plain(500_000.0));
    }

    /// A 16-bit plan stores the matrices in two bytes each and the vectors in four: the
    /// weight file shrinks by exactly two bytes per matrix parameter (alignment padding aside,
    /// at most 63 bytes a tensor).
    #[test]
    fn a_16_bit_plan_halves_the_matrices_only() {
        let full = plan_typed("llama-3-8b", None, 4096, FloatType::F32).unwrap();
        let half = plan_typed("llama-3-8b", None, 4096, FloatType::Bf16).unwrap();
        let matrix_params: u64 =
            full.spec.weight_shapes().iter().filter(|(_, d)| d.len() == 2).map(|(_, d)| d.iter().product::<usize>() as u64).sum();
        let tensors = full.spec.weight_shapes().len() as u64 + 2;
        let saved = full.weight_bytes - half.weight_bytes;
        assert!(saved.abs_diff(2 * matrix_params) <= 64 * tensors, "saved {saved}, matrices {matrix_params}");
        assert!(half.to_string().contains("bf16 bytes"), "{half}");
    }

    #[test]
    fn bloom_shapes_have_their_published_parameter_counts() {
        // transformers' BloomForCausalLM of these configs (n_layer, hidden_size, n_head, vocab
        // 250,880) has 559,214,592 and 7,069,016,064 parameters, counting the tied head once.
        for (name, params) in [("bloom-560m", 559_214_592u64), ("bloom-7b1", 7_069_016_064)] {
            let p = plan(name, None, 2048).unwrap();
            assert_eq!(p.params, params, "{name}");
            assert!(p.spec.gpt.alibi && p.spec.gpt.fused_qkv && p.spec.distinct_rotaries().is_empty(), "{name}");
            assert_eq!(
                p.roles.iter().find(|r| r.role == "qkv").unwrap().params,
                (p.spec.blocks * p.spec.d_model * 3 * p.spec.d_model) as u64
            );
        }
    }

    /// Meta-Llama-3-70B (80 blocks, hidden 8192, 64/8 heads, FFN 28,672, untied 128,256
    /// vocabulary) has 70,553,706,496 parameters: 80 x 855,654,400 per block (2 x 8192^2 +
    /// 2 x 8192 x 1024 + 3 x 8192 x 28672 + two norms) + 2 x 128256 x 8192 + the final norm.
    #[test]
    fn llama_3_70b_has_its_published_parameter_count() {
        assert_eq!(plan("llama-3-70b", None, 8192).unwrap().params, 70_553_706_496);
        assert_eq!(plan("llama-3-70b", Some(1), 8192).unwrap().params, 855_654_400 + 2 * 128_256 * 8192 + 8192);
    }

    #[test]
    fn blocks_out_of_range_are_refused() {
        let s = shape("gemma-3-270m").unwrap();
        assert!(s.spec(Some(0), 8192).is_err());
        assert!(s.spec(Some(19), 8192).unwrap_err().to_string().contains("has 18 blocks"));
        let spec = s.spec(Some(7), 8192).unwrap();
        // The seventh block (index 6) is local again after the global sixth.
        assert_eq!(spec.sliding_window[5], None);
        assert_eq!(spec.sliding_window[6], Some(512));
    }
}
