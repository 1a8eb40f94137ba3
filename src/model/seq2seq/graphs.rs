//! The three graphs of an encoder-decoder model folder.
//!
//! * `encoder.onnx`: `input_ids` `[B, S]` and `attention_mask` `[B, S]` (int64, 1 for real
//!   tokens; rows are right-padded) -> `encoder_hidden` `[B, S, d]` after the final norm. Each
//!   block's output is named `enc.blk.N.hidden_out` inside it (read by the analyses).
//! * `cross_kv.onnx`: `encoder_hidden` -> `cross.N.key` / `cross.N.value` `[B, heads, S, hd]`
//!   for every decoder block: computed once per context, then read by every decoding step and
//!   every continuation of that context.
//! * `decoder.onnx`: `decoder_input_ids` `[B, T]`, `labels` `[B, T]`, `encoder_attention_mask`
//!   `[C, S]`, the cross keys/values `[C, heads, S, hd]` (C is B, or 1 to share one context's
//!   keys with every row: attention broadcasts it) and `past.N.key/value` `[B, heads, P, hd]`
//!   (P may be 0) -> `label_logprobs` `[B, T]` (`log p(labels[b, t] | ...)`), `argmax`
//!   `[B, T]`, `logits` `[B, T, V]` and `present.N.key/value` `[B, heads, P+T, hd]`. The
//!   caller asks only for the outputs it needs, and ONNX Runtime runs only what they need.
//!   Decoder rows are right-padded: attention is causal, so padding only reaches later
//!   positions; every row of one call shares the past length P.
//!
//! Attention follows T5: scores are `q k^T` (no `1/sqrt(d)`) plus the stack's relative
//! position bias (block 0's table, shared by every block of the stack; none in
//! cross-attention) plus the masks; the norm is `x / sqrt(mean(x^2) + eps) * w` without mean
//! or bias; the MLP is `down(gelu_tanh(gate x) * up x)`.

use super::{Seq2SeqSpec, Stack};
use crate::model::builder::{Dim, GraphBuilder};
use crate::model::decoder::WeightTable;
use crate::model::onnx::{data_type, AttributeProto as A, ModelProto};

/// Additive mask value for disallowed attention: large enough that exp() underflows to exactly 0.
const MASKED: f32 = -1.0e9;
const PRODUCER: &str = "polyprune";

pub fn cross_name(i: usize, kind: &str) -> String {
    format!("cross.{i}.{kind}")
}

pub fn past_name(i: usize, kind: &str) -> String {
    format!("past.{i}.{kind}")
}

pub fn present_name(i: usize, kind: &str) -> String {
    format!("present.{i}.{kind}")
}

/// Encoder block `i`'s output `[B, S, d]`: the residual stream after the block (the last
/// block's is `encoder_hidden` before the encoder's final norm). Not a graph output; asked for
/// as an extra output ([`crate::model::graph::with_heads_and_outputs`]).
pub fn encoder_block_output(i: usize) -> String {
    format!("enc.blk.{i}.hidden_out")
}

struct Emitter<'a> {
    g: GraphBuilder,
    spec: &'a Seq2SeqSpec,
    weights: &'a WeightTable,
}

impl<'a> Emitter<'a> {
    fn new(name: &str, spec: &'a Seq2SeqSpec, weights: &'a WeightTable) -> Self {
        Emitter { g: GraphBuilder::new(name), spec, weights }
    }

    fn w(&mut self, name: &str) -> String {
        let t = self.weights.get(name).unwrap_or_else(|| panic!("weight table lacks {name}"));
        self.g.initializer(t.clone())
    }

    /// T5's norm: no mean subtraction, no bias.
    fn norm(&mut self, x: &str, weight: &str, out: Option<&str>) -> String {
        let sq = self.g.op("Mul", &[x, x], vec![]);
        let ms = self.g.op("ReduceMean", &[&sq], vec![A::ints("axes", &[-1]), A::int("keepdims", 1)]);
        let eps = self.g.scalar_f32(self.spec.norm_eps);
        let ms = self.g.op("Add", &[&ms, &eps], vec![]);
        let rms = self.g.op("Sqrt", &[&ms], vec![]);
        let y = self.g.op("Div", &[x, &rms], vec![]);
        let w = self.w(weight);
        match out {
            Some(name) => {
                self.g.op_named("Mul", &[&y, &w], name, vec![]);
                name.to_string()
            }
            None => self.g.op("Mul", &[&y, &w], vec![]),
        }
    }

    fn linear(&mut self, x: &str, weight: &str) -> String {
        let w = self.w(weight);
        self.g.op("MatMul", &[x, &w], vec![])
    }

    /// `[B, T, heads*hd]` -> `[B, heads, T, hd]`.
    fn split_heads(&mut self, x: &str, out: Option<&str>) -> String {
        let shape = self.g.vec_i64(&[0, 0, self.spec.n_heads as i64, self.spec.head_dim as i64]);
        let r = self.g.op("Reshape", &[x, &shape], vec![]);
        let perm = vec![A::ints("perm", &[0, 2, 1, 3])];
        match out {
            Some(name) => {
                self.g.op_named("Transpose", &[&r], name, perm);
                name.to_string()
            }
            None => self.g.op("Transpose", &[&r], perm),
        }
    }

    /// Attention of `q` `[B, h, T, hd]` over `k`, `v` `[B or 1, h, K, hd]` with an additive
    /// `bias` broadcastable to `[B, h, T, K]`; the merged heads `[B, T, h*hd]` get the name `out`.
    fn attend(&mut self, q: &str, k: &str, v: &str, bias: &str, out: &str) {
        let kt = self.g.op("Transpose", &[k], vec![A::ints("perm", &[0, 1, 3, 2])]);
        let scores = self.g.op("MatMul", &[q, &kt], vec![]);
        let scores = self.g.op("Add", &[&scores, bias], vec![]);
        let probs = self.g.op("Softmax", &[&scores], vec![A::int("axis", -1)]);
        let ctx = self.g.op("MatMul", &[&probs, v], vec![]);
        let ctx = self.g.op("Transpose", &[&ctx], vec![A::ints("perm", &[0, 2, 1, 3])]);
        let flat = self.g.vec_i64(&[0, 0, self.spec.inner_dim() as i64]);
        self.g.op_named("Reshape", &[&ctx, &flat], out, vec![]);
    }

    fn gelu_tanh(&mut self, x: &str) -> String {
        let x2 = self.g.op("Mul", &[x, x], vec![]);
        let x3 = self.g.op("Mul", &[&x2, x], vec![]);
        let c = self.g.scalar_f32(0.044715);
        let cx3 = self.g.op("Mul", &[&x3, &c], vec![]);
        let inner = self.g.op("Add", &[x, &cx3], vec![]);
        let k = self.g.scalar_f32((2.0 / std::f64::consts::PI).sqrt() as f32);
        let inner = self.g.op("Mul", &[&inner, &k], vec![]);
        let t = self.g.op("Tanh", &[&inner], vec![]);
        let one = self.g.scalar_f32(1.0);
        let t1 = self.g.op("Add", &[&t, &one], vec![]);
        let half = self.g.scalar_f32(0.5);
        let hx = self.g.op("Mul", &[x, &half], vec![]);
        self.g.op("Mul", &[&hx, &t1], vec![])
    }

    /// The gated-GELU feed-forward sub-layer with its residual; returns the new residual.
    fn feed_forward(&mut self, p: &dyn Fn(&str) -> String, x: &str) -> String {
        let h = self.norm(x, &p("ffn_norm.weight"), Some(&p("ffn_in")));
        let gate = self.linear(&h, &p("ffn_gate.weight"));
        let up = self.linear(&h, &p("ffn_up.weight"));
        let act = self.gelu_tanh(&gate);
        let tap = p("ffn_down_in");
        self.g.op_named("Mul", &[&act, &up], &tap, vec![]);
        let down = self.linear(&tap, &p("ffn_down.weight"));
        self.g.op("Add", &[x, &down], vec![])
    }

    /// The relative position bias `[1, heads, Tq, Tk]` of `stack` for query positions
    /// `q_pos` `[Tq]` and key positions `k_pos` `[Tk]` (int64), and the relative positions
    /// `key - query` `[Tq, Tk]` (the decoder's causal mask reads them).
    fn position_bias(&mut self, stack: Stack, q_pos: &str, k_pos: &str) -> (String, String) {
        let (ax0, ax1) = (self.g.vec_i64(&[0]), self.g.vec_i64(&[1]));
        let k_row = self.g.op("Unsqueeze", &[k_pos, &ax0], vec![]);
        let q_col = self.g.op("Unsqueeze", &[q_pos, &ax1], vec![]);
        let rel = self.g.op("Sub", &[&k_row, &q_col], vec![]);
        let reach = self.spec.max_distance as i64 + 1;
        let (lo, hi) = (self.g.scalar_i64(-reach), self.g.scalar_i64(reach));
        let clipped = self.g.op("Clip", &[&rel, &lo, &hi], vec![]);
        let index = self.g.op("Add", &[&clipped, &hi], vec![]);
        let table = self.spec.bucket_table(stack == Stack::Encoder);
        let lut = self.g.const_i64(&table, &[table.len() as i64]);
        let buckets = self.g.op("Gather", &[&lut, &index], vec![A::int("axis", 0)]);
        let rel_b = self.w(&format!("{}.blk.0.attn_rel_b.weight", stack.prefix()));
        let values = self.g.op("Gather", &[&rel_b, &buckets], vec![A::int("axis", 0)]);
        let heads_first = self.g.op("Transpose", &[&values], vec![A::ints("perm", &[2, 0, 1])]);
        let bias = self.g.op("Unsqueeze", &[&heads_first, &ax0], vec![]);
        (bias, rel)
    }

    /// `[B, S]` int64 mask (1 = real token) -> additive `[B, 1, 1, S]` float mask.
    fn key_mask(&mut self, mask: &str) -> String {
        let f = self.g.op("Cast", &[mask], vec![A::int("to", data_type::FLOAT as i64)]);
        let one = self.g.scalar_f32(1.0);
        let off = self.g.op("Sub", &[&f, &one], vec![]);
        let big = self.g.scalar_f32(-MASKED);
        let additive = self.g.op("Mul", &[&off, &big], vec![]);
        let axes = self.g.vec_i64(&[1, 2]);
        self.g.op("Unsqueeze", &[&additive, &axes], vec![])
    }

    /// `[T]` int64 positions `start .. start+T` of a `[B, T]` id tensor.
    fn positions(&mut self, ids: &str, start: &str) -> String {
        let len = self.g.op("Shape", &[ids], vec![A::int("start", 1), A::int("end", 2)]);
        let end = self.g.op("Add", &[start, &len], vec![]);
        let zero = self.g.vec_i64(&[0]);
        let (s, e) = (self.g.op("Squeeze", &[start, &zero], vec![]), self.g.op("Squeeze", &[&end, &zero], vec![]));
        let step = self.g.scalar_i64(1);
        self.g.op("Range", &[&s, &e, &step], vec![])
    }

    fn embed(&mut self, ids: &str) -> String {
        let table = self.w("token_embd.weight");
        self.g.op("Gather", &[&table, ids], vec![A::int("axis", 0)])
    }
}

fn dims3<'a>(b: &'a str, t: &'a str, width: usize) -> [Dim<'a>; 3] {
    [Dim::Named(b), Dim::Named(t), Dim::Fixed(width as i64)]
}

/// The encoder: `input_ids`, `attention_mask` -> `encoder_hidden`.
pub fn encoder_model(spec: &Seq2SeqSpec, weights: &WeightTable) -> ModelProto {
    let mut e = Emitter::new("polyprune_t5_encoder", spec, weights);
    let (b, s) = (Dim::Named("batch"), Dim::Named("sequence"));
    e.g.input("input_ids", data_type::INT64, &[b, s]);
    e.g.input("attention_mask", data_type::INT64, &[b, s]);
    let zero = e.g.vec_i64(&[0]);
    let pos = e.positions("input_ids", &zero);
    let (bias, _) = e.position_bias(Stack::Encoder, &pos, &pos);
    let mask = e.key_mask("attention_mask");
    let bias = e.g.op("Add", &[&bias, &mask], vec![]);
    let mut x = e.embed("input_ids");
    for i in 0..spec.encoder_blocks {
        let p = move |n: &str| format!("enc.blk.{i}.{n}");
        let h = e.norm(&x, &p("attn_norm.weight"), Some(&p("attn_in")));
        let q = e.linear(&h, &p("attn_q.weight"));
        let k = e.linear(&h, &p("attn_k.weight"));
        let v = e.linear(&h, &p("attn_v.weight"));
        let (q, k, v) = (e.split_heads(&q, None), e.split_heads(&k, None), e.split_heads(&v, None));
        let tap = p("attn_output_in");
        e.attend(&q, &k, &v, &bias, &tap);
        let o = e.linear(&tap, &p("attn_o.weight"));
        x = e.g.op("Add", &[&x, &o], vec![]);
        x = e.feed_forward(&p, &x);
        // The block's output (the residual stream, before the final norm), named so that the
        // analyses can read it as an extra output, as they read a decoder block's `hidden_out`.
        let out = encoder_block_output(i);
        e.g.op_named("Identity", &[&x], &out, vec![]);
        x = out;
    }
    e.norm(&x, "enc.output_norm.weight", Some("encoder_hidden"));
    e.g.output("encoder_hidden", data_type::FLOAT, &dims3("batch", "sequence", spec.d_model));
    e.g.finish(PRODUCER, &[("polyprune.part", "t5 encoder".into())])
}

/// The cross-attention keys and values of every decoder block from `encoder_hidden`.
pub fn cross_kv_model(spec: &Seq2SeqSpec, weights: &WeightTable) -> ModelProto {
    let mut e = Emitter::new("polyprune_t5_cross_kv", spec, weights);
    e.g.input("encoder_hidden", data_type::FLOAT, &dims3("batch", "sequence", spec.d_model));
    let dims = [Dim::Named("batch"), Dim::Fixed(spec.n_heads as i64), Dim::Named("sequence"), Dim::Fixed(spec.head_dim as i64)];
    for i in 0..spec.decoder_blocks {
        for (kind, role) in [("key", "cross_attn_k"), ("value", "cross_attn_v")] {
            let proj = e.linear("encoder_hidden", &format!("dec.blk.{i}.{role}.weight"));
            e.split_heads(&proj, Some(&cross_name(i, kind)));
            e.g.output(&cross_name(i, kind), data_type::FLOAT, &dims);
        }
    }
    e.g.finish(PRODUCER, &[("polyprune.part", "t5 cross keys and values".into())])
}

/// The decoder with its self-attention cache and the output layer (see the module doc).
pub fn decoder_model(spec: &Seq2SeqSpec, weights: &WeightTable) -> ModelProto {
    let mut e = Emitter::new("polyprune_t5_decoder", spec, weights);
    let (b, t) = (Dim::Named("batch"), Dim::Named("sequence"));
    let (h, hd) = (Dim::Fixed(spec.n_heads as i64), Dim::Fixed(spec.head_dim as i64));
    e.g.input("decoder_input_ids", data_type::INT64, &[b, t]);
    e.g.input("labels", data_type::INT64, &[b, t]);
    e.g.input("encoder_attention_mask", data_type::INT64, &[Dim::Named("context_batch"), Dim::Named("encoder_sequence")]);
    for i in 0..spec.decoder_blocks {
        for kind in ["key", "value"] {
            e.g.input(&cross_name(i, kind), data_type::FLOAT, &[Dim::Named("context_batch"), h, Dim::Named("encoder_sequence"), hd]);
        }
    }
    for i in 0..spec.decoder_blocks {
        for kind in ["key", "value"] {
            e.g.input(&past_name(i, kind), data_type::FLOAT, &[b, h, Dim::Named("past_sequence"), hd]);
        }
    }
    let past_len = e.g.op("Shape", &[&past_name(0, "key")], vec![A::int("start", 2), A::int("end", 3)]);
    let q_pos = e.positions("decoder_input_ids", &past_len);
    let zero = e.g.vec_i64(&[0]);
    let new_len = e.g.op("Shape", &["decoder_input_ids"], vec![A::int("start", 1), A::int("end", 2)]);
    let total = e.g.op("Add", &[&past_len, &new_len], vec![]);
    let k_pos = {
        let (z, end) = (e.g.op("Squeeze", &[&zero, &zero], vec![]), e.g.op("Squeeze", &[&total, &zero], vec![]));
        let step = e.g.scalar_i64(1);
        e.g.op("Range", &[&z, &end, &step], vec![])
    };
    let (bias, rel) = e.position_bias(Stack::Decoder, &q_pos, &k_pos);
    // Causal: keys after the query (rel > 0) are masked.
    let zero_s = e.g.scalar_i64(0);
    let future = e.g.op("Greater", &[&rel, &zero_s], vec![]);
    let future = e.g.op("Cast", &[&future], vec![A::int("to", data_type::FLOAT as i64)]);
    let big = e.g.scalar_f32(MASKED);
    let causal = e.g.op("Mul", &[&future, &big], vec![]);
    let self_bias = e.g.op("Add", &[&bias, &causal], vec![]);
    let cross_bias = e.key_mask("encoder_attention_mask");
    let mut x = e.embed("decoder_input_ids");
    for i in 0..spec.decoder_blocks {
        let p = move |n: &str| format!("dec.blk.{i}.{n}");
        let hn = e.norm(&x, &p("attn_norm.weight"), Some(&p("attn_in")));
        let q = e.linear(&hn, &p("attn_q.weight"));
        let k = e.linear(&hn, &p("attn_k.weight"));
        let v = e.linear(&hn, &p("attn_v.weight"));
        let (q, k, v) = (e.split_heads(&q, None), e.split_heads(&k, None), e.split_heads(&v, None));
        let k = e.g.op("Concat", &[&past_name(i, "key"), &k], vec![A::int("axis", 2)]);
        let v = e.g.op("Concat", &[&past_name(i, "value"), &v], vec![A::int("axis", 2)]);
        e.g.op_named("Identity", &[&k], &present_name(i, "key"), vec![]);
        e.g.op_named("Identity", &[&v], &present_name(i, "value"), vec![]);
        let tap = p("attn_output_in");
        e.attend(&q, &k, &v, &self_bias, &tap);
        let o = e.linear(&tap, &p("attn_o.weight"));
        x = e.g.op("Add", &[&x, &o], vec![]);

        let hn = e.norm(&x, &p("cross_attn_norm.weight"), Some(&p("cross_attn_in")));
        let q = e.linear(&hn, &p("cross_attn_q.weight"));
        let q = e.split_heads(&q, None);
        let tap = p("cross_attn_output_in");
        e.attend(&q, &cross_name(i, "key"), &cross_name(i, "value"), &cross_bias, &tap);
        let o = e.linear(&tap, &p("cross_attn_o.weight"));
        x = e.g.op("Add", &[&x, &o], vec![]);
        x = e.feed_forward(&p, &x);
    }
    let mut hidden = e.norm(&x, "dec.output_norm.weight", None);
    if let Some(scale) = spec.output_scale {
        let s = e.g.scalar_f32(scale);
        hidden = e.g.op("Mul", &[&hidden, &s], vec![]);
    }
    let head = if spec.tied_output { "token_embd.weight" } else { "output.weight" };
    let w = e.w(head);
    let flat_shape = e.g.vec_i64(&[-1, spec.d_model as i64]);
    let flat = e.g.op("Reshape", &[&hidden, &flat_shape], vec![]);
    let logits = e.g.op("Gemm", &[&flat, &w], vec![A::int("transB", 1)]);
    let g = &mut e.g;
    let bt = g.op("Shape", &["decoder_input_ids"], vec![]);
    let lsm = g.op("LogSoftmax", &[&logits], vec![A::int("axis", 1)]);
    let column = g.vec_i64(&[-1, 1]);
    let targets = g.op("Reshape", &["labels", &column], vec![]);
    let picked = g.op("GatherElements", &[&lsm, &targets], vec![A::int("axis", 1)]);
    g.op_named("Reshape", &[&picked, &bt], "label_logprobs", vec![]);
    let am = g.op("ArgMax", &[&logits], vec![A::int("axis", 1), A::int("keepdims", 0)]);
    g.op_named("Reshape", &[&am, &bt], "argmax", vec![]);
    let v = g.vec_i64(&[spec.vocab_size as i64]);
    let shape3 = g.op("Concat", &[&bt, &v], vec![A::int("axis", 0)]);
    g.op_named("Reshape", &[&logits, &shape3], "logits", vec![]);
    e.g.output("label_logprobs", data_type::FLOAT, &[b, t]);
    e.g.output("argmax", data_type::INT64, &[b, t]);
    e.g.output("logits", data_type::FLOAT, &dims3("batch", "sequence", spec.vocab_size));
    for i in 0..spec.decoder_blocks {
        for kind in ["key", "value"] {
            e.g.output(&present_name(i, kind), data_type::FLOAT, &[b, h, Dim::Named("total_sequence"), hd]);
        }
    }
    e.g.finish(PRODUCER, &[("polyprune.part", "t5 decoder".into())])
}
