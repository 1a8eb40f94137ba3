//! The decoder-only transformer, written once as an ONNX graph for every imported architecture.
//!
//! Gemma 3, Llama, Qwen2, Command-R (Cohere, Aya-23) and BLOOM differ in a handful of switches
//! (norm kind and placement, parallel or sequential blocks, q/k norms, activation, biases,
//! embedding and logit scales, sliding windows, rope bases; BLOOM's ALiBi, fused q/k/v, ungated
//! MLP and embedding norm in [`GptSwitches`]), collected in [`DecoderSpec`]. Tensor names
//! are the GGUF checkpoint's own (`blk.3.ffn_up.weight`), so a pruned weight is found by the
//! name a user sees in the checkpoint. Rotary embeddings are always applied in the rotate-half
//! layout; import reorders the q/k rows of models that rotate adjacent pairs (Llama files,
//! Command-R), which leaves every attention score unchanged.
//!
//! Conventions of the emitted graphs:
//! * `input_ids`: int64 `[batch, sequence]`. Batches are RIGHT-padded. Attention is causal, so a
//!   padding token can only influence positions after it: outputs at real positions are exact and
//!   outputs at padded positions are ignored. No attention mask input is needed.
//! * Linear layers are `MatMul(x, W)` with `W` a 2-D float initializer of shape `[in, out]`.
//! * `model.onnx` outputs `token_logprobs` `[batch, seq-1]`, where entry `[b, t]` is
//!   `log p(input_ids[b, t+1] | input_ids[b, ..=t])`, computed inside the runtime so scoring
//!   never copies the vocabulary-sized logits out, and `argmax` `[batch, seq]` (int64), the greedy
//!   next token at every position, for generation. The variant `model.logits.onnx` outputs
//!   `logits` `[batch, seq, vocab]` instead (same weights).
//! * Key/value-cache graphs ([`cached_body`], [`head_model`]): `model.prefix.onnx` runs a context
//!   and returns `hidden` (last block output) plus every block's `present.N.key/value` (keys
//!   after rotary); `model.continuation.onnx` also takes `past.N.key/value` `[E, kv, P, hd]`,
//!   `past_rows` `[B]` (which past row each new row continues, so the continuations of many
//!   contexts run in one batch) and `key_positions` `[B, P+T]` (the absolute position of every
//!   past and new key, -1 for padding): rotary angles come from the new tokens' positions, and the
//!   causal and local-window mask compares absolute positions, so right-padded pasts of different
//!   lengths stay exact; `model.head.onnx` is the output layer on the
//!   `[N, d]` rows a caller scores, returning `target_logprobs` and `argmax`. Nothing
//!   vocabulary-wide exists outside the head, and the head sees only the rows asked for.
//! * Per-block parts (`model.blockNN.onnx`) take `hidden` `[batch, seq, d]` and give `hidden_out`
//!   plus the input of every linear layer (the "taps" calibration needs), sharing the weight file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::builder::{onnx_type, Dim, GraphBuilder};
use super::onnx::{data_type, AttributeProto as A, ModelProto, TensorProto};
use super::rope::{RopeScaling, Rotary};
use crate::runtime::FloatType;

/// Additive mask value for disallowed attention: large enough that exp() underflows to exactly 0.
const MASKED: f32 = -1.0e9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// GELU with the tanh approximation (Gemma).
    GeluTanh,
    /// x * sigmoid(x) (Llama, Qwen2).
    Silu,
}

/// The normalisation every norm of a model applies (before its elementwise weight).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// `x / sqrt(mean(x^2) + eps)` (Llama, Qwen2, Gemma).
    #[default]
    Rms,
    /// `(x - mean(x)) / sqrt(var(x) + eps)`, without a bias (Command-R / Cohere).
    Layer,
}

/// Everything that distinguishes one decoder architecture from another in the graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecoderSpec {
    pub architecture: String,
    pub blocks: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub vocab_size: usize,
    /// Which norm every norm of the model is (absent in cards written before Command-R: RMS).
    #[serde(default)]
    pub norm: Norm,
    /// Epsilon inside every norm's square root.
    #[serde(alias = "rms_eps")]
    pub norm_eps: f32,
    pub activation: Activation,
    /// Attention and MLP both read the block's one norm, and both outputs join the residual
    /// together: `x + attn(norm(x)) + mlp(norm(x))` (Command-R). No `ffn_norm` weight then.
    #[serde(default)]
    pub parallel_block: bool,
    /// RMS norms on each head's queries and keys (Gemma 3).
    pub qk_norm: bool,
    /// Norms on the attention and MLP outputs before the residual add (Gemma 2/3 "sandwich").
    pub sandwich_norms: bool,
    /// Biases on the q/k/v projections (Qwen2).
    pub qkv_bias: bool,
    /// Multiply token embeddings by this (Gemma: sqrt(d_model)).
    pub embed_scale: Option<f32>,
    /// The output layer reuses `token_embd.weight` when true, else `output.weight`.
    pub tied_output: bool,
    /// Multiply the logits by this (Command-R's `logit_scale`).
    #[serde(default)]
    pub logit_scale: Option<f32>,
    /// Scale applied to q·k (`head_dim^-0.5`, or Gemma 3's `query_pre_attn_scalar^-0.5`).
    pub attn_scale: f32,
    /// Rotary base of each block.
    pub rope_base: Vec<f64>,
    /// Rotary scaling of each block, `None` for plain rotary (see `rope.rs`). Empty in cards
    /// written before scaling was read, and when no block is scaled, so those cards and
    /// their identities stay as they were.
    #[serde(default, skip_serializing_if = "no_scaling")]
    pub rope_scaling: Vec<Option<RopeScaling>>,
    /// Sliding-window length of each block, `None` for global attention.
    pub sliding_window: Vec<Option<usize>>,
    /// Longest sequence the precomputed rotary tables cover.
    pub max_positions: usize,
    /// BLOOM's switches (ALiBi, fused q/k/v, ungated MLP, biases everywhere); all off for
    /// the other architectures, whose cards then read and write as before.
    #[serde(flatten)]
    pub gpt: GptSwitches,
}

/// Switches of the GPT-2 / BLOOM lineage. Each is left out of a card when off, so the cards of
/// the other architectures (and the identities computed from them) stay as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptSwitches {
    /// Attention biases from ALiBi instead of rotary embeddings: head `h` adds
    /// `slope_h * (key position - query position)` to its scaled scores ([`alibi_slopes`]).
    /// Transformers adds `slope_h * key position`; the two differ by a constant per query row,
    /// which softmax ignores, and the difference form keeps the added numbers small.
    #[serde(default, skip_serializing_if = "is_false")]
    pub alibi: bool,
    /// One fused `attn_qkv` projection whose outputs are laid out [all Q; all K; all V] (the
    /// layout llama.cpp's converter gives BLOOM's per-head interleaved rows).
    #[serde(default, skip_serializing_if = "is_false")]
    pub fused_qkv: bool,
    /// An MLP without a gate: `down(act(up(x)))`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub plain_mlp: bool,
    /// A bias on every linear layer (`<layer>.bias`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub linear_bias: bool,
    /// Every norm adds a bias after its weight (`<norm>.bias`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub norm_bias: bool,
    /// A norm on the token embeddings (`token_embd_norm`) before the first block.
    #[serde(default, skip_serializing_if = "is_false")]
    pub embed_norm: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// ALiBi's per-head slopes (Press et al. 2022, as BLOOM computes them): with `p` the largest
/// power of two not above `n_heads`, `(2^(-8/p))^i` for `i = 1..=p`, then, when `n_heads` is
/// not a power of two, `(2^(-4/p))^k` for the odd `k = 1, 3, 5, ...` (`n_heads - p` of them:
/// every other slope of the `2p`-head sequence).
pub fn alibi_slopes(n_heads: usize) -> Vec<f64> {
    if n_heads == 0 {
        return Vec::new();
    }
    let p = 1usize << (usize::BITS - 1 - n_heads.leading_zeros());
    let base = 2f64.powf(-8.0 / p as f64);
    let mut slopes: Vec<f64> = (1..=p).map(|i| base.powi(i as i32)).collect();
    let extra = 2f64.powf(-4.0 / p as f64);
    slopes.extend((0..n_heads - p).map(|k| extra.powi(2 * k as i32 + 1)));
    slopes
}

fn no_scaling(per_block: &[Option<RopeScaling>]) -> bool {
    per_block.iter().all(Option::is_none)
}

/// The role of a linear layer inside a block, as the pruning literature names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
    /// A fused q/k/v projection (GPT-2 style exports).
    Qkv,
    /// An encoder-decoder's cross-attention (queries from the decoder, keys and values from
    /// the encoder's output); its self-attention and MLP layers take the roles above.
    CrossQ,
    CrossK,
    CrossV,
    CrossO,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Q => "q",
            Role::K => "k",
            Role::V => "v",
            Role::O => "o",
            Role::Gate => "gate",
            Role::Up => "up",
            Role::Down => "down",
            Role::Qkv => "qkv",
            Role::CrossQ => "cross_q",
            Role::CrossK => "cross_k",
            Role::CrossV => "cross_v",
            Role::CrossO => "cross_o",
        }
    }
}

/// One prunable linear layer: a 2-D initializer `[in, out]` consumed by a MatMul.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearLayer {
    /// The initializer's name (the checkpoint's tensor name).
    pub name: String,
    pub block: usize,
    pub role: Role,
    /// `[in_features, out_features]`, the initializer's shape.
    pub shape: [usize; 2],
    /// The graph tensor feeding this layer; layers sharing it share calibration statistics.
    pub input: String,
    /// True when the initializer holds `[out, in]` and the graph transposes it (some exports).
    #[serde(default)]
    pub transposed: bool,
}

impl DecoderSpec {
    fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Names and shapes of every weight the graph reads, in the layout the graph expects.
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.d_model;
        let mut out = vec![("token_embd.weight".to_string(), vec![self.vocab_size, d])];
        // A norm's weight, and its bias when norms have one.
        let norm = |out: &mut Vec<(String, Vec<usize>)>, stem: String, width: usize| {
            out.push((format!("{stem}.weight"), vec![width]));
            if self.gpt.norm_bias {
                out.push((format!("{stem}.bias"), vec![width]));
            }
        };
        if self.gpt.embed_norm {
            norm(&mut out, "token_embd_norm".into(), d);
        }
        for i in 0..self.blocks {
            let p = |s: &str| format!("blk.{i}.{s}");
            norm(&mut out, p("attn_norm"), d);
            for l in self.linear_layers_of_block(i) {
                out.push((l.name.clone(), l.shape.to_vec()));
                if self.gpt.linear_bias {
                    out.push((linear_bias_name(&l.name), vec![l.shape[1]]));
                }
            }
            if self.qkv_bias && !self.gpt.linear_bias {
                out.push((p("attn_q.bias"), vec![self.q_dim()]));
                out.push((p("attn_k.bias"), vec![self.kv_dim()]));
                out.push((p("attn_v.bias"), vec![self.kv_dim()]));
            }
            if self.qk_norm {
                out.push((p("attn_q_norm.weight"), vec![self.head_dim]));
                out.push((p("attn_k_norm.weight"), vec![self.head_dim]));
            }
            if self.sandwich_norms {
                out.push((p("post_attention_norm.weight"), vec![d]));
                out.push((p("post_ffw_norm.weight"), vec![d]));
            }
            if !self.parallel_block {
                norm(&mut out, p("ffn_norm"), d);
            }
        }
        norm(&mut out, "output_norm".into(), d);
        if !self.tied_output {
            out.push(("output.weight".to_string(), vec![self.vocab_size, d]));
        }
        out
    }

    /// The bias added after the linear layer `layer`, when the model has one there.
    pub fn bias_of(&self, layer: &LinearLayer) -> Option<String> {
        let qkv = matches!(layer.role, Role::Q | Role::K | Role::V | Role::Qkv);
        (self.gpt.linear_bias || (self.qkv_bias && qkv)).then(|| linear_bias_name(&layer.name))
    }

    /// The prunable layers of block `i`, with the tap that feeds each.
    pub fn linear_layers_of_block(&self, i: usize) -> Vec<LinearLayer> {
        let (d, f) = (self.d_model, self.ffn_dim);
        // A parallel block's MLP reads the attention's input: one tap, one set of statistics.
        let ffn_tap = if self.parallel_block { "attn_in" } else { "ffn_in" };
        let layer = |role: Role, gguf: &str, shape: [usize; 2], tap: &str| LinearLayer {
            name: format!("blk.{i}.{gguf}.weight"),
            block: i,
            role,
            shape,
            input: format!("blk.{i}.{tap}"),
            transposed: false,
        };
        let mut layers = if self.gpt.fused_qkv {
            vec![layer(Role::Qkv, "attn_qkv", [d, self.q_dim() + 2 * self.kv_dim()], "attn_in")]
        } else {
            vec![
                layer(Role::Q, "attn_q", [d, self.q_dim()], "attn_in"),
                layer(Role::K, "attn_k", [d, self.kv_dim()], "attn_in"),
                layer(Role::V, "attn_v", [d, self.kv_dim()], "attn_in"),
            ]
        };
        layers.push(layer(Role::O, "attn_output", [self.q_dim(), d], "attn_output_in"));
        if !self.gpt.plain_mlp {
            layers.push(layer(Role::Gate, "ffn_gate", [d, f], ffn_tap));
        }
        layers.push(layer(Role::Up, "ffn_up", [d, f], ffn_tap));
        layers.push(layer(Role::Down, "ffn_down", [f, d], "ffn_down_in"));
        layers
    }

    pub fn linear_layers(&self) -> Vec<LinearLayer> {
        (0..self.blocks).flat_map(|i| self.linear_layers_of_block(i)).collect()
    }

    /// Block `i`'s rotary embedding: its base and scaling.
    pub fn rotary(&self, i: usize) -> Rotary {
        Rotary { base: self.rope_base[i], scaling: self.rope_scaling.get(i).cloned().flatten() }
    }

    /// Distinct rotary embeddings, each of which gets one pair of cos/sin tables (none with
    /// ALiBi).
    pub fn distinct_rotaries(&self) -> Vec<Rotary> {
        let mut out: Vec<Rotary> = Vec::new();
        if self.gpt.alibi {
            return out;
        }
        for i in 0..self.blocks {
            let r = self.rotary(i);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

/// `blk.3.attn_qkv.weight` -> `blk.3.attn_qkv.bias`.
fn linear_bias_name(weight: &str) -> String {
    format!("{}.bias", weight.strip_suffix(".weight").unwrap_or(weight))
}

/// Rotary tables `[max_positions, head_dim]` of one block's rotary embedding: cos and sin of
/// each position's angles (times YaRN's attention factor), each half repeated, computed in
/// f64 then rounded (the rotate-half layout: pairs are (j, j + head_dim/2)).
pub fn rope_tables(rotary: &Rotary, head_dim: usize, max_positions: usize) -> (Vec<f32>, Vec<f32>) {
    rotary.tables(head_dim, max_positions, |v| v as f32)
}

/// The external weight tensors, by name, shared by all graphs written for one model.
pub type WeightTable = BTreeMap<String, TensorProto>;

/// Emits graph pieces for one decoder into a [`GraphBuilder`].
struct Emitter<'a> {
    g: GraphBuilder,
    spec: &'a DecoderSpec,
    weights: &'a WeightTable,
    /// Sequence length as a 1-D int64 tensor `[T]`, computed once per graph.
    seq_len: Option<String>,
    masks: BTreeMap<Option<usize>, String>,
    /// Key/value cache mode: `None` for the full-sequence graph (no cache in or out);
    /// `Some(false)` for the prefix graph (cache out); `Some(true)` for the continuation graph
    /// (cache in and out).
    cache: Option<bool>,
    /// Past length `[P]` as int64 (0 without a past), computed once per graph.
    offset: Option<String>,
    /// Continuation graph: the new tokens' absolute positions `[B, T]` (as given, -1 for
    /// padding), computed once per graph.
    new_positions: Option<String>,
    /// The type the graph computes in: f32, or a 16-bit type ("half compute", see
    /// `model::compute`): matrix products, embeddings and elementwise ops run in it, while
    /// norm statistics, the attention softmax and the final log-softmax run in f32.
    compute: FloatType,
    /// The tensor each weight was cast to, by weight name and target ONNX type.
    casts: BTreeMap<(String, i32), String>,
    /// The block whose past keys give the past length (0 in the whole-body continuation graph;
    /// the block itself in a one-block graph, which has no other past).
    past_block: usize,
}

impl<'a> Emitter<'a> {
    fn new(name: &str, spec: &'a DecoderSpec, weights: &'a WeightTable) -> Self {
        Emitter {
            g: GraphBuilder::new(name),
            spec,
            weights,
            seq_len: None,
            masks: BTreeMap::new(),
            cache: None,
            offset: None,
            new_positions: None,
            compute: FloatType::F32,
            casts: BTreeMap::new(),
            past_block: 0,
        }
    }

    fn with_compute(mut self, compute: FloatType) -> Self {
        self.compute = compute;
        self
    }

    fn half(&self) -> bool {
        self.compute != FloatType::F32
    }

    /// `x` cast to `to` when the graph computes in half (no node in f32 compute, so f32
    /// graphs stay exactly as they were).
    fn cast_if_half(&mut self, x: &str, to: i32) -> String {
        if !self.half() {
            return x.to_string();
        }
        self.g.op("Cast", &[x], vec![A::int("to", i64::from(to))])
    }

    /// A tensor of the compute type in f32, for what must be accumulated in f32.
    fn as_f32(&mut self, x: &str) -> String {
        self.cast_if_half(x, data_type::FLOAT)
    }

    /// An f32 tensor back in the compute type.
    fn as_compute(&mut self, x: &str) -> String {
        let t = onnx_type(self.compute);
        self.cast_if_half(x, t)
    }

    /// A scalar constant of the compute type, for arithmetic on compute-type tensors.
    fn scalar(&mut self, v: f32) -> String {
        if self.half() {
            self.g.scalar_typed(v, self.compute)
        } else {
            self.g.scalar_f32(v)
        }
    }

    /// The absolute position of the first new token, `[P]`: the past's length, read from the
    /// first block's past keys, so that rotary angles and the mask continue where the past ended.
    fn offset(&mut self) -> String {
        if let Some(o) = &self.offset {
            return o.clone();
        }
        let o = if self.cache == Some(true) {
            self.g.op("Shape", &[&past_name(self.past_block, "key")], vec![A::int("start", 2), A::int("end", 3)])
        } else {
            self.g.vec_i64(&[0])
        };
        self.offset = Some(o.clone());
        o
    }

    /// The continuation graph's new tokens' positions: the last T columns of `key_positions`.
    fn new_positions(&mut self) -> String {
        if let Some(p) = &self.new_positions {
            return p.clone();
        }
        let p = self.offset();
        let (end, ax1) = (self.g.vec_i64(&[i64::MAX]), self.g.vec_i64(&[1]));
        let pos = self.g.op("Slice", &[KEY_POSITIONS, &p, &end, &ax1], vec![]);
        self.new_positions = Some(pos.clone());
        pos
    }

    /// Weight `name` in the compute type.
    fn w(&mut self, name: &str) -> String {
        let t = onnx_type(self.compute);
        self.w_as(name, t)
    }

    /// Weight `name` as ONNX type `to`: as stored, or cast once per graph. In f32 compute a
    /// 16-bit matrix is widened (ONNX Runtime folds the Cast into the session's own f32 copy
    /// when it loads the graph); in half compute the f32 vectors and rotary tables are
    /// narrowed the same way, and norm gains are read in f32, where the norm multiplies them.
    fn w_as(&mut self, name: &str, to: i32) -> String {
        let t = self.weights.get(name).unwrap_or_else(|| panic!("weight table lacks {name}"));
        let stored = self.g.initializer(t.clone());
        if t.data_type == Some(to) {
            return stored;
        }
        let key = (name.to_string(), to);
        if let Some(cast) = self.casts.get(&key) {
            return cast.clone();
        }
        let suffix = super::builder::float_type_of(to).map_or("cast", FloatType::flag_name);
        let cast = format!("{name}.{suffix}");
        self.g.op_named("Cast", &[&stored], &cast, vec![A::int("to", i64::from(to))]);
        self.casts.insert(key, cast.clone());
        cast
    }

    /// The model's norm over the last axis, times `weight`; the result is named `out` when given.
    /// In half compute the whole norm runs in f32 (the mean of squares of a wide row loses
    /// too much in 16 bits, and f16 squares overflow past 256) and only its output is narrowed.
    fn norm(&mut self, x: &str, weight: &str, out: Option<&str>) -> String {
        let mean_last = || vec![A::ints("axes", &[-1]), A::int("keepdims", 1)];
        let x = &self.as_f32(x);
        let centred = match self.spec.norm {
            Norm::Rms => x.to_string(),
            Norm::Layer => {
                let mean = self.g.op("ReduceMean", &[x], mean_last());
                self.g.op("Sub", &[x, &mean], vec![])
            }
        };
        let sq = self.g.op("Mul", &[&centred, &centred], vec![]);
        let ms = self.g.op("ReduceMean", &[&sq], mean_last());
        let eps = self.g.scalar_f32(self.spec.norm_eps);
        let ms = self.g.op("Add", &[&ms, &eps], vec![]);
        let rms = self.g.op("Sqrt", &[&ms], vec![]);
        let y = self.g.op("Div", &[&centred, &rms], vec![]);
        let w = self.w_as(weight, data_type::FLOAT);
        let (last, inputs) = if !self.spec.gpt.norm_bias {
            ("Mul", [y, w])
        } else {
            let scaled = self.g.op("Mul", &[&y, &w], vec![]);
            let bias = self.w_as(&format!("{}.bias", weight.strip_suffix(".weight").unwrap_or(weight)), data_type::FLOAT);
            ("Add", [scaled, bias])
        };
        if !self.half() {
            return self.op_maybe_named(last, &[&inputs[0], &inputs[1]], out);
        }
        let normed = self.g.op(last, &[&inputs[0], &inputs[1]], vec![]);
        let to = onnx_type(self.compute);
        let cast = vec![A::int("to", i64::from(to))];
        match out {
            Some(name) => {
                self.g.op_named("Cast", &[&normed], name, cast);
                name.to_string()
            }
            None => self.g.op("Cast", &[&normed], cast),
        }
    }

    /// `op` on `inputs`, its output named `out` when given.
    fn op_maybe_named(&mut self, op: &str, inputs: &[&str], out: Option<&str>) -> String {
        match out {
            Some(name) => {
                self.g.op_named(op, inputs, name, vec![]);
                name.to_string()
            }
            None => self.g.op(op, inputs, vec![]),
        }
    }

    /// The linear layer `layer` of block `i` (by role) on `x`, with its bias when it has one.
    fn linear_of(&mut self, i: usize, role: Role, x: &str) -> String {
        let layer = self.spec.linear_layers_of_block(i).into_iter().find(|l| l.role == role).expect("the block has this layer");
        let bias = self.spec.bias_of(&layer);
        self.linear(x, &layer.name, bias.as_deref())
    }

    fn linear(&mut self, x: &str, weight: &str, bias: Option<&str>) -> String {
        let w = self.w(weight);
        let y = self.g.op("MatMul", &[x, &w], vec![]);
        match bias {
            Some(b) => {
                let b = self.w(b);
                self.g.op("Add", &[&y, &b], vec![])
            }
            None => y,
        }
    }

    /// `[T]` as int64, from the sequence axis of `like` (`[B, T, ...]`).
    fn seq_len(&mut self, like: &str) -> String {
        if let Some(t) = &self.seq_len {
            return t.clone();
        }
        let t = self.g.op("Shape", &[like], vec![A::int("start", 1), A::int("end", 2)]);
        self.seq_len = Some(t.clone());
        t
    }

    /// Additive `[T, P+T]` mask over past and new keys: causal, and limited to `window`
    /// positions back when given. Rows and columns are absolute positions, so a local window
    /// reaches into the past exactly as it would in one full-sequence run.
    fn mask(&mut self, like: &str, window: Option<usize>) -> String {
        if let Some(m) = self.masks.get(&window) {
            return m.clone();
        }
        if self.cache == Some(true) {
            let m = self.mask_by_key_positions(window);
            self.masks.insert(window, m.clone());
            return m;
        }
        let t = self.seq_len(like);
        let p = self.offset();
        let end = self.g.op("Add", &[&p, &t], vec![]);
        let zero_axis = self.g.vec_i64(&[0]);
        let p_scalar = self.g.op("Squeeze", &[&p, &zero_axis], vec![]);
        let end_scalar = self.g.op("Squeeze", &[&end, &zero_axis], vec![]);
        let (zero_s, step) = (self.g.scalar_i64(0), self.g.scalar_i64(1));
        let q_pos = self.g.op("Range", &[&p_scalar, &end_scalar, &step], vec![]);
        let k_pos = self.g.op("Range", &[&zero_s, &end_scalar, &step], vec![]);
        let (ax1, ax0) = (self.g.vec_i64(&[1]), self.g.vec_i64(&[0]));
        let rows = self.g.op("Unsqueeze", &[&q_pos, &ax1], vec![]);
        let cols = self.g.op("Unsqueeze", &[&k_pos, &ax0], vec![]);
        let back = self.g.op("Sub", &[&rows, &cols], vec![]); // row - col: how far back a key is
        let zero = self.g.scalar_i64(0);
        let future = self.g.op("Less", &[&back, &zero], vec![]);
        let mut m = self.additive_mask(future, &back, window);
        if self.spec.gpt.alibi {
            // [T, P+T] -> [kv, group, T, P+T], broadcast over the batch.
            let bias = self.alibi_bias(&back);
            m = self.g.op("Add", &[&m, &bias], vec![]);
        }
        self.masks.insert(window, m.clone());
        m
    }

    /// ALiBi's biases `-slope_h * back` for `back` = query position - key position
    /// (`[..., T, P+T]`, int64), shaped `[kv, group, T, P+T]` after the leading axes of `back`
    /// the way grouped-query scores are (`[B, kv, group, T, P+T]`).
    fn alibi_bias(&mut self, back: &str) -> String {
        let s = self.spec;
        let group = s.n_heads / s.n_kv_heads;
        let slopes = TensorProto {
            name: Some("alibi_slopes".into()),
            dims: vec![s.n_kv_heads as i64, group as i64, 1, 1],
            data_type: Some(data_type::FLOAT),
            float_data: alibi_slopes(s.n_heads).into_iter().map(|v| -v as f32).collect(),
            ..Default::default()
        };
        let slopes = self.g.initializer(slopes);
        let back = self.g.op("Cast", &[back], vec![A::int("to", data_type::FLOAT as i64)]);
        self.g.op("Mul", &[&back, &slopes], vec![])
    }

    /// `MASKED` where `blocked` holds or (with a local `window`) the key lies `window` or more
    /// positions back (`back` = query position - key position), else 0.
    fn additive_mask(&mut self, blocked: String, back: &str, window: Option<usize>) -> String {
        let mut blocked = blocked;
        if let Some(w) = window {
            let w = self.g.scalar_i64(w as i64);
            let too_old = self.g.op("GreaterOrEqual", &[back, &w], vec![]);
            blocked = self.g.op("Or", &[&blocked, &too_old], vec![]);
        }
        let (neg, z) = (self.g.scalar_f32(MASKED), self.g.scalar_f32(0.0));
        self.g.op("Where", &[&blocked, &neg, &z], vec![])
    }

    /// Additive `[B, 1, 1, T, P+T]` mask of the continuation graph, per row from
    /// `key_positions`: a key is visible when it is real (position >= 0), not after the query,
    /// and within `window` positions back when given. A padded query (position -1) sees no key;
    /// its output is finite and ignored.
    fn mask_by_key_positions(&mut self, window: Option<usize>) -> String {
        let q = self.new_positions();
        let (ax2, ax1) = (self.g.vec_i64(&[2]), self.g.vec_i64(&[1]));
        let rows = self.g.op("Unsqueeze", &[&q, &ax2], vec![]); // [B, T, 1]
        let cols = self.g.op("Unsqueeze", &[KEY_POSITIONS, &ax1], vec![]); // [B, 1, P+T]
        let back = self.g.op("Sub", &[&rows, &cols], vec![]);
        let zero = self.g.scalar_i64(0);
        let future = self.g.op("Less", &[&back, &zero], vec![]);
        let padding = self.g.op("Less", &[&cols, &zero], vec![]);
        let blocked = self.g.op("Or", &[&future, &padding], vec![]);
        let m = self.additive_mask(blocked, &back, window);
        // Scores are [B, kv, group, T, P+T] (grouped-query attention).
        let axes = self.g.vec_i64(&[1, 2]);
        let m = self.g.op("Unsqueeze", &[&m, &axes], vec![]);
        if !self.spec.gpt.alibi {
            return m;
        }
        let back = self.g.op("Unsqueeze", &[&back, &axes], vec![]);
        let bias = self.alibi_bias(&back);
        self.g.op("Add", &[&m, &bias], vec![])
    }

    /// Rotary embedding on `[B, heads, T, head_dim]`, rotate-half layout.
    fn rope(&mut self, x: &str, rotary: &Rotary, like: &str) -> String {
        let hd = self.spec.head_dim as i64;
        let (cos_name, sin_name) = rotary.table_names();
        let (cos_t, sin_t) = (self.w(&cos_name), self.w(&sin_name));
        let (cos, sin) = if self.cache == Some(true) {
            // Each row's own positions: [B, T, hd] tables, broadcast over heads. Padding (-1)
            // reads position 0; its outputs are ignored.
            let pos = self.new_positions();
            let zero = self.g.scalar_i64(0);
            let pos = self.g.op("Max", &[&pos, &zero], vec![]);
            let ax1 = self.g.vec_i64(&[1]);
            let cos = self.g.op("Gather", &[&cos_t, &pos], vec![A::int("axis", 0)]);
            let sin = self.g.op("Gather", &[&sin_t, &pos], vec![A::int("axis", 0)]);
            (self.g.op("Unsqueeze", &[&cos, &ax1], vec![]), self.g.op("Unsqueeze", &[&sin, &ax1], vec![]))
        } else {
            let t = self.seq_len(like);
            let s0 = self.offset();
            let end = self.g.op("Add", &[&s0, &t], vec![]);
            let ax0 = self.g.vec_i64(&[0]);
            (self.g.op("Slice", &[&cos_t, &s0, &end, &ax0], vec![]), self.g.op("Slice", &[&sin_t, &s0, &end, &ax0], vec![]))
        };
        let (h0, h1, h2, ax3) = (self.g.vec_i64(&[0]), self.g.vec_i64(&[hd / 2]), self.g.vec_i64(&[hd]), self.g.vec_i64(&[3]));
        let x1 = self.g.op("Slice", &[x, &h0, &h1, &ax3], vec![]);
        let x2 = self.g.op("Slice", &[x, &h1, &h2, &ax3], vec![]);
        let neg_x2 = self.g.op("Neg", &[&x2], vec![]);
        let rotated = self.g.op("Concat", &[&neg_x2, &x1], vec![A::int("axis", 3)]);
        let a = self.g.op("Mul", &[x, &cos], vec![]);
        let b = self.g.op("Mul", &[&rotated, &sin], vec![]);
        self.g.op("Add", &[&a, &b], vec![])
    }

    /// Past keys or values `[E, kv, P, hd]`, row `past_rows[b]` for new row b, followed by the new
    /// ones `[B, kv, T, hd]`: many continuations share one context's cache, and the continuations
    /// of many contexts run in one batch.
    fn with_past(&mut self, past: &str, new: &str) -> String {
        let past = self.g.op("Gather", &[past, PAST_ROWS], vec![A::int("axis", 0)]);
        // The cache crosses graph boundaries in f32 (see `f32_boundary`).
        let past = self.as_compute(&past);
        self.g.op("Concat", &[&past, new], vec![A::int("axis", 2)])
    }

    /// `[B, T, heads*hd]` -> `[B, heads, T, hd]`.
    fn split_heads(&mut self, x: &str, heads: usize) -> String {
        let shape = self.g.vec_i64(&[0, 0, heads as i64, self.spec.head_dim as i64]);
        let r = self.g.op("Reshape", &[x, &shape], vec![]);
        self.g.op("Transpose", &[&r], vec![A::ints("perm", &[0, 2, 1, 3])])
    }

    /// Self-attention on the normed input `h` (`[B, T, d]`, the `attn_in` tap).
    fn attention(&mut self, i: usize, h: &str) -> String {
        let s = self.spec;
        let p = |n: &str| format!("blk.{i}.{n}");
        let (q, k, v) = if s.gpt.fused_qkv {
            // [all Q; all K; all V] along the output axis.
            let qkv = self.linear_of(i, Role::Qkv, h);
            let (qd, kvd) = (s.q_dim() as i64, s.kv_dim() as i64);
            let ax2 = self.g.vec_i64(&[2]);
            let mut part = |from: i64, to: i64| {
                let (a, b) = (self.g.vec_i64(&[from]), self.g.vec_i64(&[to]));
                self.g.op("Slice", &[&qkv, &a, &b, &ax2], vec![])
            };
            (part(0, qd), part(qd, qd + kvd), part(qd + kvd, qd + 2 * kvd))
        } else {
            (self.linear_of(i, Role::Q, h), self.linear_of(i, Role::K, h), self.linear_of(i, Role::V, h))
        };
        let mut q = self.split_heads(&q, s.n_heads);
        let mut k = self.split_heads(&k, s.n_kv_heads);
        let v = self.split_heads(&v, s.n_kv_heads);
        if s.qk_norm {
            q = self.norm(&q, &p("attn_q_norm.weight"), None);
            k = self.norm(&k, &p("attn_k_norm.weight"), None);
        }
        let (q, mut k) = if s.gpt.alibi {
            (q, k)
        } else {
            let rotary = s.rotary(i);
            (self.rope(&q, &rotary, h), self.rope(&k, &rotary, h))
        };
        let mut v = v;
        if let Some(with_past) = self.cache {
            if with_past {
                k = self.with_past(&past_name(i, "key"), &k);
                v = self.with_past(&past_name(i, "value"), &v);
            }
            self.g.op_named("Identity", &[&k], &present_name(i, "key"), vec![]);
            self.g.op_named("Identity", &[&v], &present_name(i, "value"), vec![]);
        }
        // Grouped-query attention: queries [B, kv, group, T, hd] against keys [B, kv, 1, T, hd].
        let (kv, group, hd) = (s.n_kv_heads as i64, (s.n_heads / s.n_kv_heads) as i64, s.head_dim as i64);
        let q_shape = self.g.vec_i64(&[0, kv, group, -1, hd]);
        let q5 = self.g.op("Reshape", &[&q, &q_shape], vec![]);
        let ax2 = self.g.vec_i64(&[2]);
        let k5 = self.g.op("Unsqueeze", &[&k, &ax2], vec![]);
        let v5 = self.g.op("Unsqueeze", &[&v, &ax2], vec![]);
        let kt = self.g.op("Transpose", &[&k5], vec![A::ints("perm", &[0, 1, 2, 4, 3])]);
        let scores = if self.half() {
            // Half compute scales the queries before the product, as PyTorch's attention does:
            // unscaled q·k of wide heads can pass f16's 65504, and the usual scales (a power
            // of two: head_dim^-0.5 for 16, 64, 256) are exact. Masking and the softmax run in
            // f32: the mask's -1e9 is beyond f16's range, and the sum over keys needs f32's
            // mantissa.
            let scale = self.scalar(s.attn_scale);
            let q5 = self.g.op("Mul", &[&q5, &scale], vec![]);
            let scores = self.g.op("MatMul", &[&q5, &kt], vec![]);
            self.as_f32(&scores)
        } else {
            let scores = self.g.op("MatMul", &[&q5, &kt], vec![]);
            let scale = self.g.scalar_f32(s.attn_scale);
            self.g.op("Mul", &[&scores, &scale], vec![])
        };
        let mask = self.mask(h, s.sliding_window[i]);
        let scores = self.g.op("Add", &[&scores, &mask], vec![]);
        let probs = self.g.op("Softmax", &[&scores], vec![A::int("axis", -1)]);
        let probs = self.as_compute(&probs);
        let ctx = self.g.op("MatMul", &[&probs, &v5], vec![]);
        let heads_shape = self.g.vec_i64(&[0, s.n_heads as i64, -1, hd]);
        let ctx = self.g.op("Reshape", &[&ctx, &heads_shape], vec![]);
        let ctx = self.g.op("Transpose", &[&ctx], vec![A::ints("perm", &[0, 2, 1, 3])]);
        let flat = self.g.vec_i64(&[0, 0, (s.n_heads * s.head_dim) as i64]);
        let tap = p("attn_output_in");
        self.g.op_named("Reshape", &[&ctx, &flat], &tap, vec![]);
        self.linear_of(i, Role::O, &tap)
    }

    fn activation(&mut self, x: &str) -> String {
        match self.spec.activation {
            Activation::Silu => {
                let sig = self.g.op("Sigmoid", &[x], vec![]);
                self.g.op("Mul", &[x, &sig], vec![])
            }
            Activation::GeluTanh => {
                let x2 = self.g.op("Mul", &[x, x], vec![]);
                let x3 = self.g.op("Mul", &[&x2, x], vec![]);
                let c = self.scalar(0.044715);
                let cx3 = self.g.op("Mul", &[&x3, &c], vec![]);
                let inner = self.g.op("Add", &[x, &cx3], vec![]);
                let k = self.scalar((2.0 / std::f64::consts::PI).sqrt() as f32);
                let inner = self.g.op("Mul", &[&inner, &k], vec![]);
                let t = self.g.op("Tanh", &[&inner], vec![]);
                let one = self.scalar(1.0);
                let t1 = self.g.op("Add", &[&t, &one], vec![]);
                let half = self.scalar(0.5);
                let hx = self.g.op("Mul", &[x, &half], vec![]);
                self.g.op("Mul", &[&hx, &t1], vec![])
            }
        }
    }

    /// The MLP on the normed input `h`: gated, `down(act(gate(h)) * up(h))`, or plain,
    /// `down(act(up(h)))`.
    fn mlp(&mut self, i: usize, h: &str) -> String {
        let tap = format!("blk.{i}.ffn_down_in");
        let up = self.linear_of(i, Role::Up, h);
        if self.spec.gpt.plain_mlp {
            let act = self.activation(&up);
            self.g.op_named("Identity", &[&act], &tap, vec![]);
        } else {
            let gate = self.linear_of(i, Role::Gate, h);
            let act = self.activation(&gate);
            self.g.op_named("Mul", &[&act, &up], &tap, vec![]);
        }
        self.linear_of(i, Role::Down, &tap)
    }

    /// One transformer block from hidden state `x`; its output gets the name `out`.
    fn block(&mut self, i: usize, x: &str, out: &str) {
        let p = |n: &str| format!("blk.{i}.{n}");
        let h = self.norm(x, &p("attn_norm.weight"), Some(&p("attn_in")));
        let mut a = self.attention(i, &h);
        if self.spec.parallel_block {
            // Command-R: x + attn(norm(x)) + mlp(norm(x)).
            let m = self.mlp(i, &h);
            let x_a = self.g.op("Add", &[x, &a], vec![]);
            self.g.op_named("Add", &[&x_a, &m], out, vec![]);
            return;
        }
        if self.spec.sandwich_norms {
            a = self.norm(&a, &p("post_attention_norm.weight"), None);
        }
        let x = self.g.op("Add", &[x, &a], vec![]);
        let h = self.norm(&x, &p("ffn_norm.weight"), Some(&p("ffn_in")));
        let mut m = self.mlp(i, &h);
        if self.spec.sandwich_norms {
            m = self.norm(&m, &p("post_ffw_norm.weight"), None);
        }
        self.g.op_named("Add", &[&x, &m], out, vec![]);
    }

    fn embed(&mut self, ids: &str, out: &str) {
        if self.spec.gpt.embed_norm {
            let raw = format!("{out}.raw");
            self.embed_scaled(ids, &raw);
            self.norm(&raw, "token_embd_norm.weight", Some(out));
        } else {
            self.embed_scaled(ids, out);
        }
    }

    fn embed_scaled(&mut self, ids: &str, out: &str) {
        // The rows are gathered in the stored type and only they are widened: a Cast of the
        // whole table would be folded into a session's own widened copy of it (4.2 GB for
        // Aya-23 8B's 256,000-row table). Widening is exact, so the order changes no value.
        let t = self.weights.get("token_embd.weight").expect("weight table lacks token_embd.weight");
        let stored = self.g.initializer(t.clone());
        let to = onnx_type(self.compute);
        let widen = t.data_type != Some(to);
        let gather = vec![A::int("axis", 0)];
        let cast = || vec![A::int("to", i64::from(to))];
        match self.spec.embed_scale {
            Some(scale) => {
                let mut rows = self.g.op("Gather", &[&stored, ids], gather);
                if widen {
                    rows = self.g.op("Cast", &[&rows], cast());
                }
                // In half compute the scale is rounded to the type, as transformers does.
                let s = self.scalar(scale);
                self.g.op_named("Mul", &[&rows, &s], out, vec![]);
            }
            None if widen => {
                let rows = self.g.op("Gather", &[&stored, ids], gather);
                self.g.op_named("Cast", &[&rows], out, cast());
            }
            None => self.g.op_named("Gather", &[&stored, ids], out, gather),
        }
    }

    /// Final norm and output layer: `[B*T, vocab]` logits, flat so that no reshape copies them.
    fn logits_flat(&mut self, x: &str) -> String {
        let s = self.spec;
        let h = self.norm(x, "output_norm.weight", None);
        // Gemm's alpha applies the logit scale inside the product, so no extra `[B*T, V]` pass.
        let alpha = s.logit_scale.unwrap_or(1.0);
        let out_w = if s.tied_output { "token_embd.weight" } else { "output.weight" };
        let w = self.w(out_w);
        // Gemm with transB reads the [vocab, d] table as is: no transposed copy of the largest tensor.
        let flat_shape = self.g.vec_i64(&[-1, s.d_model as i64]);
        let flat = self.g.op("Reshape", &[&h, &flat_shape], vec![]);
        let logits = self.g.op("Gemm", &[&flat, &w], vec![A::int("transB", 1), A::float("alpha", alpha)]);
        // The log-softmax over the vocabulary (and every head after it) reads f32 logits.
        self.as_f32(&logits)
    }

    /// A graph input of f32 values, as the compute type: graphs keep f32 at their boundary in
    /// half compute too, so callers feed and read f32 alike (widening a 16-bit value and
    /// narrowing it back is exact, so the boundary changes no value).
    fn input_f32(&mut self, name: &str, dims: &[Dim]) -> String {
        self.g.input(name, data_type::FLOAT, dims);
        self.as_compute(name)
    }

    /// Makes every graph output named in `outputs` f32 (see [`Emitter::input_f32`]).
    fn f32_boundary(&mut self, outputs: &[String]) {
        if self.half() {
            for name in outputs {
                self.g.cast_output(name, data_type::FLOAT);
            }
        }
    }
}

/// Appends `token_logprobs` and `argmax` after flat `[B*T, V]` logits, so that scoring and greedy
/// decoding read `B x T` numbers out of the runtime instead of `B x T x V`.
pub fn emit_scoring_heads(g: &mut GraphBuilder, logits_flat: &str, ids: &str) {
    // log p(next) at every position from a log-softmax (ONNX Runtime's is vectorised and
    // threaded, unlike its log-sum-exp reduction); the last position's "next" is a dummy 0.
    let lsm = g.op("LogSoftmax", &[logits_flat], vec![A::int("axis", 1)]);
    let (one, big, zero, ax1) = (g.vec_i64(&[1]), g.vec_i64(&[i64::MAX]), g.vec_i64(&[0]), g.vec_i64(&[1]));
    let next = g.op("Slice", &[ids, &one, &big, &ax1], vec![]);
    let first = g.op("Slice", &[ids, &zero, &one, &ax1], vec![]);
    let zeros = g.op("Mul", &[&first, &zero], vec![]);
    let targets = g.op("Concat", &[&next, &zeros], vec![A::int("axis", 1)]);
    let column = g.vec_i64(&[-1, 1]);
    let targets = g.op("Reshape", &[&targets, &column], vec![]);
    let picked = g.op("GatherElements", &[&lsm, &targets], vec![A::int("axis", 1)]);
    let bt = g.op("Shape", &[ids], vec![]);
    let lp = g.op("Reshape", &[&picked, &bt], vec![]);
    let minus1 = g.vec_i64(&[-1]);
    g.op_named("Slice", &[&lp, &zero, &minus1, &ax1], "token_logprobs", vec![]);
    let am = g.op("ArgMax", &[logits_flat], vec![A::int("axis", 1), A::int("keepdims", 0)]);
    g.op_named("Reshape", &[&am, &bt], "argmax", vec![]);
}

/// `[B, T, V]` logits from a `[B, T, ...]`-shaped id tensor and flat logits.
fn emit_logits_3d(g: &mut GraphBuilder, logits_flat: &str, ids: &str, vocab: usize) {
    let bt = g.op("Shape", &[ids], vec![]);
    let v = g.vec_i64(&[vocab as i64]);
    let shape3 = g.op("Concat", &[&bt, &v], vec![A::int("axis", 0)]);
    g.op_named("Reshape", &[logits_flat, &shape3], "logits", vec![]);
}

const PRODUCER: &str = "polyprune";

/// The metadata key naming a graph's compute type; written only in half compute, so f32
/// graphs (the files import writes) are byte for byte what they were.
pub const COMPUTE_KEY: &str = "polyprune.compute";

/// Which graph of a decoder: every graph polyprune writes or builds for one, as its
/// `polyprune.part` metadata names it, so a graph read back can be rebuilt from its weights
/// in another compute type ([`part_graph`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Full(Heads),
    Embed,
    Block(usize),
    /// The key/value-cache body: the prefix (`with_past` false) or continuation graph.
    CachedBody {
        with_past: bool,
    },
    CachedBlock {
        block: usize,
        with_past: bool,
    },
    Head,
    /// [`head_slice_model`]: the output layer over the vocabulary rows its weights hold.
    HeadSlice,
}

impl Part {
    /// The `polyprune.part` value of a graph, as the builders write it.
    pub fn from_metadata(value: &str) -> Option<Part> {
        let cache = |kind: &str| match kind {
            "prefix" => Some(false),
            "continuation" => Some(true),
            _ => None,
        };
        Some(match value.split(' ').collect::<Vec<_>>().as_slice() {
            ["Scoring"] => Part::Full(Heads::Scoring),
            ["Logits"] => Part::Full(Heads::Logits),
            ["embed"] => Part::Embed,
            ["head"] => Part::Head,
            ["head", "slice"] => Part::HeadSlice,
            ["block", i] => Part::Block(i.parse().ok()?),
            ["block", i, kind] => Part::CachedBlock { block: i.parse().ok()?, with_past: cache(kind)? },
            [kind] => Part::CachedBody { with_past: cache(kind)? },
            _ => return None,
        })
    }
}

/// The graph `part` of a decoder computing in `compute` (f32, or half compute: see
/// `model::compute`).
pub fn part_graph(spec: &DecoderSpec, weights: &WeightTable, part: Part, compute: FloatType) -> ModelProto {
    match part {
        Part::Full(heads) => full_model_in(spec, weights, heads, compute),
        Part::Embed => embed_part_in(spec, weights, compute),
        Part::Block(i) => block_part_in(spec, weights, i, compute),
        Part::CachedBody { with_past } => cached_body_in(spec, weights, with_past, compute),
        Part::CachedBlock { block, with_past } => cached_block_part_in(spec, weights, block, with_past, compute),
        Part::Head => head_model_in(spec, weights, compute),
        Part::HeadSlice => head_slice_model_in(spec, weights, compute),
    }
}

impl Emitter<'_> {
    /// The finished graph, its metadata naming the compute type when it is not f32.
    fn finish(self, metadata: &[(&str, String)]) -> ModelProto {
        let mut metadata = metadata.to_vec();
        if self.half() {
            metadata.push((COMPUTE_KEY, self.compute.flag_name().to_string()));
        }
        self.g.finish(PRODUCER, &metadata)
    }
}

/// Which outputs a whole-model graph has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    /// `token_logprobs` and `argmax`: what scoring and generation read (`model.onnx`).
    Scoring,
    /// `logits` `[B, T, V]`, for users who want the distribution (`model.logits.onnx`).
    Logits,
}

/// The whole model: `input_ids` -> the chosen heads.
pub fn full_model(spec: &DecoderSpec, weights: &WeightTable, heads: Heads) -> ModelProto {
    full_model_in(spec, weights, heads, FloatType::F32)
}

fn full_model_in(spec: &DecoderSpec, weights: &WeightTable, heads: Heads, compute: FloatType) -> ModelProto {
    let mut e = Emitter::new("polyprune_decoder", spec, weights).with_compute(compute);
    e.g.input("input_ids", data_type::INT64, &[Dim::Named("batch"), Dim::Named("sequence")]);
    e.embed("input_ids", "embed.out");
    let mut x = "embed.out".to_string();
    for i in 0..spec.blocks {
        let out = format!("blk.{i}.out");
        e.block(i, &x, &out);
        x = out;
    }
    let flat = e.logits_flat(&x);
    let (b, t) = (Dim::Named("batch"), Dim::Named("sequence"));
    match heads {
        Heads::Scoring => {
            emit_scoring_heads(&mut e.g, &flat, "input_ids");
            e.g.output("token_logprobs", data_type::FLOAT, &[b, Dim::Named("sequence_minus_1")]);
            e.g.output("argmax", data_type::INT64, &[b, t]);
        }
        Heads::Logits => {
            emit_logits_3d(&mut e.g, &flat, "input_ids", spec.vocab_size);
            e.g.output("logits", data_type::FLOAT, &[b, t, Dim::Fixed(spec.vocab_size as i64)]);
        }
    }
    e.finish(&[("polyprune.part", format!("{heads:?}"))])
}

/// The embedding alone: `input_ids` -> `hidden`.
pub fn embed_part(spec: &DecoderSpec, weights: &WeightTable) -> ModelProto {
    embed_part_in(spec, weights, FloatType::F32)
}

fn embed_part_in(spec: &DecoderSpec, weights: &WeightTable, compute: FloatType) -> ModelProto {
    let mut e = Emitter::new("polyprune_embed", spec, weights).with_compute(compute);
    e.g.input("input_ids", data_type::INT64, &[Dim::Named("batch"), Dim::Named("sequence")]);
    e.embed("input_ids", "hidden");
    e.f32_boundary(&["hidden".into()]);
    e.g.output("hidden", data_type::FLOAT, &[Dim::Named("batch"), Dim::Named("sequence"), Dim::Fixed(spec.d_model as i64)]);
    e.finish(&[("polyprune.part", "embed".into())])
}

/// Block `i` alone: `hidden` -> `hidden_out` plus the input of each of its linear layers.
pub fn block_part(spec: &DecoderSpec, weights: &WeightTable, i: usize) -> ModelProto {
    block_part_in(spec, weights, i, FloatType::F32)
}

fn block_part_in(spec: &DecoderSpec, weights: &WeightTable, i: usize, compute: FloatType) -> ModelProto {
    let mut e = Emitter::new(&format!("polyprune_block_{i}"), spec, weights).with_compute(compute);
    let (b, t) = (Dim::Named("batch"), Dim::Named("sequence"));
    let d = Dim::Fixed(spec.d_model as i64);
    let x = e.input_f32("hidden", &[b, t, d]);
    e.block(i, &x, "hidden_out");
    let mut taps: Vec<(String, usize)> = Vec::new();
    for l in spec.linear_layers_of_block(i) {
        if !taps.iter().any(|(n, _)| *n == l.input) {
            taps.push((l.input.clone(), l.shape[0]));
        }
    }
    let outputs: Vec<String> = std::iter::once("hidden_out".to_string()).chain(taps.iter().map(|(n, _)| n.clone())).collect();
    e.f32_boundary(&outputs);
    e.g.output("hidden_out", data_type::FLOAT, &[b, t, d]);
    for (name, width) in taps {
        e.g.output(&name, data_type::FLOAT, &[b, t, Dim::Fixed(width as i64)]);
    }
    e.finish(&[("polyprune.part", format!("block {i}"))])
}

/// Graph input holding block `i`'s past keys or values (`kind` is `key` or `value`).
pub fn past_name(i: usize, kind: &str) -> String {
    format!("past.{i}.{kind}")
}

/// Graph output holding block `i`'s keys or values over past and new tokens.
pub fn present_name(i: usize, kind: &str) -> String {
    format!("present.{i}.{kind}")
}

/// The body of the model with a key/value cache: `input_ids` (plus, for the continuation, every
/// block's `past.N.key/value`) -> `hidden` (the last block's output, before the final norm) and
/// every block's `present.N.key/value` `[B, kv_heads, P+T, head_dim]` (keys after rotary). No
/// vocabulary-wide tensor is computed: the output layer is [`head_model`], run on the rows the
/// caller scores.
pub fn cached_body(spec: &DecoderSpec, weights: &WeightTable, with_past: bool) -> ModelProto {
    cached_body_in(spec, weights, with_past, FloatType::F32)
}

fn cached_body_in(spec: &DecoderSpec, weights: &WeightTable, with_past: bool, compute: FloatType) -> ModelProto {
    let name = if with_past { "polyprune_continuation" } else { "polyprune_prefix" };
    let mut e = Emitter::new(name, spec, weights).with_compute(compute);
    e.cache = Some(with_past);
    let (b, t) = (Dim::Named("batch"), Dim::Named("sequence"));
    e.g.input("input_ids", data_type::INT64, &[b, t]);
    let (kv, hd) = (Dim::Fixed(spec.n_kv_heads as i64), Dim::Fixed(spec.head_dim as i64));
    if with_past {
        for i in 0..spec.blocks {
            for kind in ["key", "value"] {
                e.g.input(&past_name(i, kind), data_type::FLOAT, &[Dim::Named("past_batch"), kv, Dim::Named("past_sequence"), hd]);
            }
        }
        e.g.input(PAST_ROWS, data_type::INT64, &[b]);
        e.g.input(KEY_POSITIONS, data_type::INT64, &[b, Dim::Named("total_sequence")]);
    }
    e.embed("input_ids", "embed.out");
    let mut x = "embed.out".to_string();
    for i in 0..spec.blocks {
        let out = if i + 1 == spec.blocks { "hidden".to_string() } else { format!("blk.{i}.out") };
        e.block(i, &x, &out);
        x = out;
    }
    let presents = (0..spec.blocks).flat_map(|i| ["key", "value"].map(|kind| present_name(i, kind)));
    let outputs: Vec<String> = std::iter::once("hidden".to_string()).chain(presents).collect();
    e.f32_boundary(&outputs);
    e.g.output("hidden", data_type::FLOAT, &[b, t, Dim::Fixed(spec.d_model as i64)]);
    for i in 0..spec.blocks {
        for kind in ["key", "value"] {
            e.g.output(&present_name(i, kind), data_type::FLOAT, &[b, kv, Dim::Named("total_sequence"), hd]);
        }
    }
    let part = if with_past { "continuation" } else { "prefix" };
    e.finish(&[("polyprune.part", part.into()), ("polyprune.cache_format", CACHE_FORMAT.into())])
}

/// Block `i` with its key/value cache, for the streamed path: `hidden` `[B, T, d]` (plus, with
/// `with_past`, `past.i.key/value`, `past_rows` and `key_positions` as [`cached_body`]'s
/// continuation takes them) -> `hidden_out` and `present.i.key/value`. It is [`cached_body`]
/// cut at block boundaries (the same operations per block), so a context and its continuations
/// can run one block's weights at a time against the keys and values of that block alone.
pub fn cached_block_part(spec: &DecoderSpec, weights: &WeightTable, i: usize, with_past: bool) -> ModelProto {
    cached_block_part_in(spec, weights, i, with_past, FloatType::F32)
}

fn cached_block_part_in(spec: &DecoderSpec, weights: &WeightTable, i: usize, with_past: bool, compute: FloatType) -> ModelProto {
    let kind = if with_past { "continuation" } else { "prefix" };
    let mut e = Emitter::new(&format!("polyprune_block_{i}_{kind}"), spec, weights).with_compute(compute);
    e.cache = Some(with_past);
    e.past_block = i;
    let (b, t, d) = (Dim::Named("batch"), Dim::Named("sequence"), Dim::Fixed(spec.d_model as i64));
    let x = e.input_f32("hidden", &[b, t, d]);
    let (kv, hd) = (Dim::Fixed(spec.n_kv_heads as i64), Dim::Fixed(spec.head_dim as i64));
    if with_past {
        for kind in ["key", "value"] {
            e.g.input(&past_name(i, kind), data_type::FLOAT, &[Dim::Named("past_batch"), kv, Dim::Named("past_sequence"), hd]);
        }
        e.g.input(PAST_ROWS, data_type::INT64, &[b]);
        e.g.input(KEY_POSITIONS, data_type::INT64, &[b, Dim::Named("total_sequence")]);
    }
    e.block(i, &x, "hidden_out");
    e.f32_boundary(&["hidden_out".to_string(), present_name(i, "key"), present_name(i, "value")]);
    e.g.output("hidden_out", data_type::FLOAT, &[b, t, d]);
    for kind in ["key", "value"] {
        e.g.output(&present_name(i, kind), data_type::FLOAT, &[b, kv, Dim::Named("total_sequence"), hd]);
    }
    e.finish(&[("polyprune.part", format!("block {i} {kind}")), ("polyprune.cache_format", CACHE_FORMAT.into())])
}

/// Bumped when the cached graphs' inputs or outputs change, so stale files are rebuilt.
/// 2: the continuation graph takes `past_rows` and `key_positions`.
pub const CACHE_FORMAT: &str = "2";

/// Continuation graph input `[B]` (int64): the past row each new row continues.
pub const PAST_ROWS: &str = "past_rows";

/// Continuation graph input `[B, P+T]` (int64): the absolute position of every key, past then
/// new, -1 where the past or the new tokens are padding.
pub const KEY_POSITIONS: &str = "key_positions";

impl Emitter<'_> {
    /// The head graphs' inputs, `hidden` `[N, d]` and `targets` `[N]`, and the `[N, vocab]`
    /// logits of `hidden`; the `N` dimension for the outputs.
    fn head_logits(&mut self) -> (String, Dim<'static>) {
        let n = Dim::Named("rows");
        let hidden = self.input_f32("hidden", &[n, Dim::Fixed(self.spec.d_model as i64)]);
        self.g.input("targets", data_type::INT64, &[n]);
        (self.logits_flat(&hidden), n)
    }
}

/// Row i's entry `targets[i]` of `[N, V]` `values`, as the flat `[N]` output `out`.
fn pick_targets(g: &mut GraphBuilder, values: &str, out: &str) {
    let column = g.vec_i64(&[-1, 1]);
    let targets = g.op("Reshape", &["targets", &column], vec![]);
    let picked = g.op("GatherElements", &[values, &targets], vec![A::int("axis", 1)]);
    let flat = g.vec_i64(&[-1]);
    g.op_named("Reshape", &[&picked, &flat], out, vec![]);
}

/// The output layer on chosen rows: `hidden` `[N, d]` (last block outputs) and `targets` `[N]`
/// -> `target_logprobs` `[N]` (log p(target | row)) and `argmax` `[N]` (the greedy token).
/// The `N x vocab` logits exist only inside this run, so a caller bounds them by choosing N.
pub fn head_model(spec: &DecoderSpec, weights: &WeightTable) -> ModelProto {
    head_model_in(spec, weights, FloatType::F32)
}

fn head_model_in(spec: &DecoderSpec, weights: &WeightTable, compute: FloatType) -> ModelProto {
    let mut e = Emitter::new("polyprune_head", spec, weights).with_compute(compute);
    let (logits, n) = e.head_logits();
    let g = &mut e.g;
    let lsm = g.op("LogSoftmax", &[&logits], vec![A::int("axis", 1)]);
    pick_targets(g, &lsm, "target_logprobs");
    g.op_named("ArgMax", &[&logits], "argmax", vec![A::int("axis", 1), A::int("keepdims", 0)]);
    e.g.output("target_logprobs", data_type::FLOAT, &[n]);
    e.g.output("argmax", data_type::INT64, &[n]);
    e.finish(&[("polyprune.part", "head".into()), ("polyprune.cache_format", CACHE_FORMAT.into())])
}

/// The output layer over one slice of the vocabulary, for a head whose whole matrix does not
/// fit the memory budget: `weights` hold the output matrix (or tied embedding) cut to the
/// slice's rows, `[len, d]`. `hidden` `[N, d]` and `targets` `[N]` (indices within the slice,
/// any in-range value for rows whose target lies elsewhere) -> per row the slice's
/// `slice_logsumexp`, its largest logit `slice_max` and where it is (`slice_argmax`), and the
/// target's logit `target_logits`. The caller combines slices: log p(t) = logit(t) - log(sum
/// over slices of exp(slice_logsumexp)), the argmax is the first slice's with the largest max.
pub fn head_slice_model(spec: &DecoderSpec, weights: &WeightTable) -> ModelProto {
    head_slice_model_in(spec, weights, FloatType::F32)
}

fn head_slice_model_in(spec: &DecoderSpec, weights: &WeightTable, compute: FloatType) -> ModelProto {
    let mut e = Emitter::new("polyprune_head_slice", spec, weights).with_compute(compute);
    let (logits, n) = e.head_logits();
    let g = &mut e.g;
    // max + log(sum(exp(l - max))): ONNX Runtime's ReduceSum is vectorised (its
    // ReduceLogSumExp sums serially: 6e-5 off per token over a 131,072-token slice).
    let row_max = g.op("ReduceMax", &[&logits], vec![A::ints("axes", &[1]), A::int("keepdims", 1)]);
    let shifted = g.op("Sub", &[&logits, &row_max], vec![]);
    let exp = g.op("Exp", &[&shifted], vec![]);
    let axis = g.vec_i64(&[1]);
    let sum = g.op("ReduceSum", &[&exp, &axis], vec![A::int("keepdims", 0)]);
    let log_sum = g.op("Log", &[&sum], vec![]);
    let flat = g.vec_i64(&[-1]);
    g.op_named("Reshape", &[&row_max, &flat], "slice_max", vec![]);
    g.op_named("Add", &[&log_sum, "slice_max"], "slice_logsumexp", vec![]);
    g.op_named("ArgMax", &[&logits], "slice_argmax", vec![A::int("axis", 1), A::int("keepdims", 0)]);
    pick_targets(g, &logits, "target_logits");
    for name in ["slice_logsumexp", "slice_max", "target_logits"] {
        e.g.output(name, data_type::FLOAT, &[n]);
    }
    e.g.output("slice_argmax", data_type::INT64, &[n]);
    e.finish(&[("polyprune.part", "head slice".into()), ("polyprune.cache_format", CACHE_FORMAT.into())])
}

#[cfg(test)]
mod alibi_tests {
    use super::*;

    #[test]
    fn alibi_slopes_match_transformers_for_powers_of_two_and_others() {
        // transformers' _get_alibi_slopes: 8 heads give 2^-1 .. 2^-8; 6 heads give the 4-head
        // slopes 2^-2, 2^-4, 2^-6, 2^-8 followed by 2^-1 and 2^-3 (odd powers of 2^-1).
        let pow2 = |e: i32| 2f64.powi(e);
        assert_eq!(alibi_slopes(8), (1..=8).map(|i| pow2(-i)).collect::<Vec<_>>());
        assert_eq!(alibi_slopes(6), vec![pow2(-2), pow2(-4), pow2(-6), pow2(-8), pow2(-1), pow2(-3)]);
        // 12 heads: 8 of base 2^-1, then 2^-0.5 to the powers 1, 3, 5, 7.
        let twelve = alibi_slopes(12);
        assert_eq!(twelve.len(), 12);
        for (k, &s) in twelve[8..].iter().enumerate() {
            assert!((s - 2f64.powf(-0.5 * (2 * k + 1) as f64)).abs() < 1e-15, "{k}: {s}");
        }
    }

    #[test]
    fn switches_off_leave_a_card_as_it_was() {
        let json = serde_json::json!({"architecture": "llama", "blocks": 1, "d_model": 8, "n_heads": 2, "n_kv_heads": 2,
            "head_dim": 4, "ffn_dim": 16, "vocab_size": 10, "norm_eps": 1e-5, "activation": "silu", "qk_norm": false,
            "sandwich_norms": false, "qkv_bias": false, "embed_scale": null, "tied_output": true, "attn_scale": 0.5,
            "rope_base": [10000.0], "sliding_window": [null], "max_positions": 16});
        let spec: DecoderSpec = serde_json::from_value(json).unwrap();
        assert_eq!(spec.gpt, GptSwitches::default());
        let back = serde_json::to_value(&spec).unwrap();
        assert!(["alibi", "fused_qkv", "plain_mlp", "linear_bias", "norm_bias", "embed_norm", "gpt"].iter().all(|k| back.get(k).is_none()));
        let mut bloom = spec.clone();
        bloom.gpt.alibi = true;
        let read: DecoderSpec = serde_json::from_value(serde_json::to_value(&bloom).unwrap()).unwrap();
        assert!(read.gpt.alibi && !read.gpt.fused_qkv);
    }
}
