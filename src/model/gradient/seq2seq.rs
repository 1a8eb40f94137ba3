//! Gradients of an encoder-decoder's (mT5, T5 v1.1) loss with respect to every prunable weight
//! of both stacks: the reverse pass SNIP and GraSP need, written out like the decoder's
//! ([`super::DecoderWeights`]) and sharing its row-wise pieces ([`super::ops`]).
//!
//! The loss is the decoder's mean cross-entropy over every label of a set of (input, labels)
//! pairs, `L = -(1/N) sum_{p,t} log p(labels[t] | input, labels[..t])`, the decoder reading the
//! labels shifted right behind the start token (T5: the pad token); pruning passes each
//! calibration sequence as both. The forward mirrors the graphs of
//! [`crate::model::seq2seq::graphs`] operation by operation:
//!
//! * T5's norm `x / sqrt(mean(x^2) + eps) * w` (no mean, no bias) before every sub-layer and at
//!   the top of each stack;
//! * attention scores `q k^T` without `1/sqrt(d)`, plus each stack's relative position bias
//!   (block 0's `[buckets, heads]` table, read through the bidirectional buckets in the
//!   encoder and the causal ones in the decoder, shared by every block of the stack; the table
//!   gets no gradient, it is not pruned); the decoder's self-attention is causal;
//! * in each decoder block a cross-attention whose queries come from the decoder and whose
//!   keys and values are the encoder's normed output times `cross_attn_k/v`: its gradient
//!   flows back into the encoder, summed over the decoder's blocks;
//! * the gated-GELU MLP `down(gelu_tanh(gate h) * up h)` (transformers' `gelu_new`, the tanh
//!   approximation T5 v1.1 and mT5 use);
//! * the head: the decoder's final norm, times `output_scale` where the spec has one, times the
//!   untied `output.weight` or the tied embedding, in chunks of [`super::HEAD_ROWS`] rows.
//!
//! As in the decoder pass, only each block's input is kept per pair; the backward recomputes a
//! block's forward from it, one block at a time over all pairs (in parallel), the decoder's
//! blocks from the top, then the encoder's. Memory is the saved inputs plus one block's tape
//! and gradients per worker thread.

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;

use super::ops::{activation, cross_entropy_rows, rms_norm, rms_norm_backward, softmax_rows, softmax_rows_backward};
use super::{cast, read_matrix, read_vector, sum_squares, BlockGrads, Real, HEAD_ROWS};
use crate::model::decoder::{Activation, Role};
use crate::model::seq2seq::{Seq2SeqFolder, Seq2SeqLayer, Seq2SeqSpec, Stack};
use crate::model::weights::WeightStore;
use crate::model::ModelError;

/// GraSP's finite-difference step for encoder-decoders (see [`super::GRASP_DELTA`] for the
/// decoders'): the prunable weights of both stacks move by this fraction of their norm. On the
/// tiny mT5 fixture, against PyTorch's exact `H g` (worst entry error relative to its layer's
/// largest), float32 gives 1.9e-1 at delta 1e-4, 5.1e-2 at 5e-5, 8.2e-3 at 2e-5, 2.3e-3 at
/// 1e-5, 1.8e-3 at 5e-6 and 2.9e-3 at 2e-6 (round-off takes over); float64 falls as delta^2
/// (2.1e-3 at 1e-5, 2.1e-5 at 1e-6): the fixture is more curved than the decoders', whose
/// float32 error at 1e-5 (1.3e-3 / 3.1e-3) is still within a few times its best.
pub const SEQ2SEQ_GRASP_DELTA: f64 = 1e-5;

/// Additive mask of the decoder's future keys; `exp` of it underflows to exactly 0, as in the graph.
const MASKED: f64 = -1.0e9;

/// One block's weights. The linear layers are `[in, out]` in
/// [`Seq2SeqSpec::layers_of_block`] order, with the roles [`Seq2SeqLayer::as_linear`] gives.
#[derive(Clone)]
pub struct T5BlockWeights<F> {
    pub attn_norm: Array1<F>,
    /// The decoder's cross-attention norm; `None` in the encoder.
    pub cross_norm: Option<Array1<F>>,
    pub ffn_norm: Array1<F>,
    pub linear: Vec<Array2<F>>,
    pub roles: Vec<Role>,
}

impl<F> T5BlockWeights<F> {
    fn weight(&self, role: Role) -> &Array2<F> {
        let i = self.roles.iter().position(|r| *r == role).unwrap_or_else(|| panic!("the block has no {} layer", role.as_str()));
        &self.linear[i]
    }
}

/// An encoder-decoder's weights in memory.
#[derive(Clone)]
pub struct Seq2SeqWeights<F> {
    pub spec: Seq2SeqSpec,
    /// `[vocab, d]`, shared by both stacks' inputs.
    pub embed: Array2<F>,
    pub encoder: Vec<T5BlockWeights<F>>,
    pub decoder: Vec<T5BlockWeights<F>>,
    /// Relative position bias tables `[buckets, heads]` (block 0's of each stack).
    pub encoder_bias: Array2<F>,
    pub decoder_bias: Array2<F>,
    pub encoder_norm: Array1<F>,
    pub decoder_norm: Array1<F>,
    /// `[vocab, d]`; `None` when the head is the embedding (tied).
    pub output: Option<Array2<F>>,
}

/// Wall-clock seconds of one gradient pass, per block (its forward in the forward sweep plus
/// its recomputed forward and backward) and in the head.
#[derive(Clone, Debug, Default)]
pub struct PassSeconds {
    pub encoder: Vec<f64>,
    pub decoder: Vec<f64>,
    /// Embedding and the output layer with its log-softmax (the largest single cost at a
    /// real vocabulary).
    pub head: f64,
}

impl PassSeconds {
    fn add(&mut self, other: &PassSeconds) {
        for (a, b) in self.encoder.iter_mut().zip(&other.encoder).chain(self.decoder.iter_mut().zip(&other.decoder)) {
            *a += b;
        }
        self.head += other.head;
    }
}

/// The loss and its gradient with respect to every prunable weight of both stacks.
#[derive(Clone, Debug)]
pub struct Seq2SeqGradients<F> {
    /// Mean negative log-likelihood of the labels (nats).
    pub loss: f64,
    /// Labels the mean is over.
    pub predictions: usize,
    pub encoder: Vec<BlockGrads<F>>,
    pub decoder: Vec<BlockGrads<F>>,
    pub seconds: PassSeconds,
}

impl<F: Real> Seq2SeqGradients<F> {
    /// The gradient of one prunable layer, `[in, out]` like its weight.
    pub fn of(&self, layer: &Seq2SeqLayer) -> Option<&Array2<F>> {
        let blocks = match layer.stack {
            Stack::Encoder => &self.encoder,
            Stack::Decoder => &self.decoder,
        };
        let b = blocks.get(layer.block)?;
        let role = layer.as_linear(0).role;
        b.roles.iter().position(|r| *r == role).map(|i| &b.linear[i])
    }

    /// Euclidean norm over every prunable weight's gradient.
    pub fn norm(&self) -> f64 {
        sum_squares(self.encoder.iter().chain(&self.decoder).flat_map(|b| b.linear.iter())).sqrt()
    }
}

/// What the backward of one block needs from its forward, for one pair.
struct Tape<F> {
    r_attn: Array1<F>,
    attn_in: Array2<F>,
    q: Array2<F>,
    k: Array2<F>,
    v: Array2<F>,
    probs: Vec<Array2<F>>,
    ctx: Array2<F>,
    x1: Array2<F>,
    /// The decoder's cross-attention: its norm, input, queries, keys, values, probabilities
    /// and merged heads, and the residual after it.
    cross: Option<CrossTape<F>>,
    r_ffn: Array1<F>,
    ffn_in: Array2<F>,
    gate: Array2<F>,
    up: Array2<F>,
    down_in: Array2<F>,
    out: Array2<F>,
}

struct CrossTape<F> {
    r: Array1<F>,
    input: Array2<F>,
    q: Array2<F>,
    k: Array2<F>,
    v: Array2<F>,
    probs: Vec<Array2<F>>,
    ctx: Array2<F>,
    x2: Array2<F>,
}

/// `grad += a^T b` without a temporary.
fn accumulate<F: Real>(grad: &mut Array2<F>, a: ArrayView2<F>, b: ArrayView2<F>) {
    general_mat_mul(F::one(), &a.t(), &b, F::one(), grad);
}

fn grad_of<F: Real>(g: &mut BlockGrads<F>, role: Role) -> &mut Array2<F> {
    g.of_mut(role)
}

/// Attention of `q` `[T, heads*hd]` over `k`, `v` `[S, heads*hd]`, scores unscaled plus
/// `bias[head]` `[T, S]` where given; returns the merged heads and each head's probabilities.
fn attend<F: Real>(
    q: &Array2<F>,
    k: &Array2<F>,
    v: &Array2<F>,
    heads: usize,
    hd: usize,
    bias: Option<&[Array2<F>]>,
) -> (Array2<F>, Vec<Array2<F>>) {
    let mut ctx = Array2::zeros((q.nrows(), heads * hd));
    let mut probs = Vec::with_capacity(heads);
    for h in 0..heads {
        let cols = s![.., h * hd..(h + 1) * hd];
        let mut scores = q.slice(cols).dot(&k.slice(cols).t());
        if let Some(b) = bias {
            scores += &b[h];
        }
        softmax_rows(&mut scores);
        ctx.slice_mut(cols).assign(&scores.dot(&v.slice(cols)));
        probs.push(scores);
    }
    (ctx, probs)
}

/// Backward of [`attend`]: `(dq, dk, dv)` from the gradient at the merged heads (the bias is a
/// constant here; masked scores have probability 0 and so no gradient).
fn attend_backward<F: Real>(
    q: &Array2<F>,
    k: &Array2<F>,
    v: &Array2<F>,
    probs: &[Array2<F>],
    d_ctx: &Array2<F>,
    hd: usize,
) -> (Array2<F>, Array2<F>, Array2<F>) {
    let (mut dq, mut dk, mut dv) = (Array2::zeros(q.raw_dim()), Array2::zeros(k.raw_dim()), Array2::zeros(v.raw_dim()));
    for (h, p) in probs.iter().enumerate() {
        let cols = s![.., h * hd..(h + 1) * hd];
        let d_ctx_h = d_ctx.slice(cols);
        let dp = d_ctx_h.dot(&v.slice(cols).t());
        general_mat_mul(F::one(), &p.t(), &d_ctx_h, F::one(), &mut dv.slice_mut(cols));
        let ds = softmax_rows_backward(p, &dp);
        general_mat_mul(F::one(), &ds, &k.slice(cols), F::one(), &mut dq.slice_mut(cols));
        general_mat_mul(F::one(), &ds.t(), &q.slice(cols), F::one(), &mut dk.slice_mut(cols));
    }
    (dq, dk, dv)
}

impl<F: Real> Seq2SeqWeights<F> {
    /// Reads an imported encoder-decoder folder's weights (each from the graph holding it).
    pub fn load(folder: &Seq2SeqFolder) -> Result<Self, ModelError> {
        use crate::model::seq2seq::{CROSS_GRAPH_FILE, DECODER_GRAPH_FILE, ENCODER_GRAPH_FILE};
        let stores = [
            (ENCODER_GRAPH_FILE, WeightStore::open(&folder.dir, ENCODER_GRAPH_FILE)?),
            (CROSS_GRAPH_FILE, WeightStore::open(&folder.dir, CROSS_GRAPH_FILE)?),
            (DECODER_GRAPH_FILE, WeightStore::open(&folder.dir, DECODER_GRAPH_FILE)?),
        ];
        Self::from_reader(folder.card.spec.clone(), |name| {
            let graph = Seq2SeqFolder::graph_of(name);
            stores.iter().find(|(g, _)| *g == graph).expect("one of the three graphs").1.read(name)
        })
    }

    /// Builds the weights from a reader of stored tensors (row-major, the graphs' layout).
    pub fn from_reader(spec: Seq2SeqSpec, read: impl Fn(&str) -> Result<Vec<f32>, ModelError>) -> Result<Self, ModelError> {
        let vector = |name: &str| read_vector(&read, name);
        let matrix = |name: &str, rows: usize, cols: usize| read_matrix(&read, name, rows, cols);
        let stack = |stack: Stack| -> Result<Vec<T5BlockWeights<F>>, ModelError> {
            (0..spec.blocks(stack))
                .map(|b| {
                    let p = |n: &str| format!("{}.blk.{b}.{n}.weight", stack.prefix());
                    let layers = spec.layers_of_block(stack, b);
                    Ok(T5BlockWeights {
                        attn_norm: vector(&p("attn_norm"))?,
                        cross_norm: if stack == Stack::Decoder { Some(vector(&p("cross_attn_norm"))?) } else { None },
                        ffn_norm: vector(&p("ffn_norm"))?,
                        linear: layers.iter().map(|l| matrix(&l.name, l.shape[0], l.shape[1])).collect::<Result<_, _>>()?,
                        roles: layers.iter().map(|l| l.as_linear(0).role).collect(),
                    })
                })
                .collect()
        };
        let table = |stack: Stack| matrix(&format!("{}.blk.0.attn_rel_b.weight", stack.prefix()), spec.buckets, spec.n_heads);
        Ok(Seq2SeqWeights {
            embed: matrix("token_embd.weight", spec.vocab_size, spec.d_model)?,
            encoder: stack(Stack::Encoder)?,
            decoder: stack(Stack::Decoder)?,
            encoder_bias: table(Stack::Encoder)?,
            decoder_bias: table(Stack::Decoder)?,
            encoder_norm: vector("enc.output_norm.weight")?,
            decoder_norm: vector("dec.output_norm.weight")?,
            output: if spec.tied_output { None } else { Some(matrix("output.weight", spec.vocab_size, spec.d_model)?) },
            spec,
        })
    }

    fn eps(&self) -> F {
        cast(f64::from(self.spec.norm_eps))
    }

    fn prunable(&self) -> impl Iterator<Item = &Array2<F>> {
        self.encoder.iter().chain(&self.decoder).flat_map(|b| b.linear.iter())
    }

    /// Euclidean norm over every prunable weight.
    pub fn prunable_norm(&self) -> f64 {
        sum_squares(self.prunable()).sqrt()
    }

    /// `w += step * direction` on every prunable weight (GraSP's perturbation).
    pub fn step_prunable(&mut self, direction: &Seq2SeqGradients<F>, step: F) {
        let blocks = self.encoder.iter_mut().chain(self.decoder.iter_mut());
        for (b, g) in blocks.zip(direction.encoder.iter().chain(&direction.decoder)) {
            for (w, d) in b.linear.iter_mut().zip(&g.linear) {
                w.scaled_add(step, d);
            }
        }
    }

    /// The stack's relative position bias for `t` queries and `s` keys, `[t, s]` per head:
    /// block 0's table through the stack's buckets of `key - query`; the decoder's future
    /// keys are masked.
    fn position_bias(&self, stack: Stack, t: usize, s: usize) -> Vec<Array2<F>> {
        let causal = stack == Stack::Decoder;
        let lut = self.spec.bucket_table(!causal);
        let reach = self.spec.max_distance as i64 + 1;
        let table = if causal { &self.decoder_bias } else { &self.encoder_bias };
        (0..self.spec.n_heads)
            .map(|h| {
                Array2::from_shape_fn((t, s), |(q, k)| {
                    let rel = k as i64 - q as i64;
                    if causal && rel > 0 {
                        cast(MASKED)
                    } else {
                        table[[lut[(rel.clamp(-reach, reach) + reach) as usize] as usize, h]]
                    }
                })
            })
            .collect()
    }

    fn embed_ids(&self, ids: &[u32]) -> Array2<F> {
        let mut x = Array2::zeros((ids.len(), self.spec.d_model));
        for (mut row, &id) in x.rows_mut().into_iter().zip(ids) {
            row.assign(&self.embed.row(id as usize));
        }
        x
    }

    /// The decoder's input: the start token, then the labels but the last.
    fn decoder_input(&self, labels: &[u32]) -> Vec<u32> {
        std::iter::once(self.spec.decoder_start_token_id).chain(labels[..labels.len() - 1].iter().copied()).collect()
    }

    /// One block's forward for one pair: `x` the block's input, `memory` the encoder's normed
    /// output (decoder blocks only), `bias` the stack's position bias for `x`'s length.
    fn block_forward(&self, w: &T5BlockWeights<F>, x: ArrayView2<F>, memory: Option<&Array2<F>>, bias: &[Array2<F>]) -> Tape<F> {
        let (heads, hd, eps) = (self.spec.n_heads, self.spec.head_dim, self.eps());
        let (attn_in, r_attn) = rms_norm(x, w.attn_norm.view(), eps);
        let q = attn_in.dot(w.weight(Role::Q));
        let k = attn_in.dot(w.weight(Role::K));
        let v = attn_in.dot(w.weight(Role::V));
        let (ctx, probs) = attend(&q, &k, &v, heads, hd, Some(bias));
        let x1 = &x + &ctx.dot(w.weight(Role::O));
        let cross = match (memory, &w.cross_norm) {
            (Some(memory), Some(norm)) => {
                let (input, r) = rms_norm(x1.view(), norm.view(), eps);
                let q = input.dot(w.weight(Role::CrossQ));
                let k = memory.dot(w.weight(Role::CrossK));
                let v = memory.dot(w.weight(Role::CrossV));
                let (ctx, probs) = attend(&q, &k, &v, heads, hd, None);
                let x2 = &x1 + &ctx.dot(w.weight(Role::CrossO));
                Some(CrossTape { r, input, q, k, v, probs, ctx, x2 })
            }
            _ => None,
        };
        let residual = cross.as_ref().map_or(&x1, |c| &c.x2);
        let (ffn_in, r_ffn) = rms_norm(residual.view(), w.ffn_norm.view(), eps);
        let gate = ffn_in.dot(w.weight(Role::Gate));
        let up = ffn_in.dot(w.weight(Role::Up));
        let down_in = gate.mapv(|g| activation(Activation::GeluTanh, g).0) * &up;
        let out = residual + &down_in.dot(w.weight(Role::Down));
        Tape { r_attn, attn_in, q, k, v, probs, ctx, x1, cross, r_ffn, ffn_in, gate, up, down_in, out }
    }

    /// From the gradient at a block's output to the gradient at its input; adds the block's
    /// linear weights' gradients to `grads` and, in a decoder block, the gradient with respect
    /// to the encoder's output to the second of `memory` (the output, its gradient).
    fn block_backward(
        &self,
        w: &T5BlockWeights<F>,
        x: ArrayView2<F>,
        memory: Option<(&Array2<F>, &mut Array2<F>)>,
        tape: &Tape<F>,
        d_out: &Array2<F>,
        grads: &mut BlockGrads<F>,
    ) -> Array2<F> {
        let hd = self.spec.head_dim;
        // MLP: out = residual + down(gelu(gate) * up).
        accumulate(grad_of(grads, Role::Down), tape.down_in.view(), d_out.view());
        let d_down_in = d_out.dot(&w.weight(Role::Down).t());
        let mut d_gate = Array2::zeros(tape.gate.raw_dim());
        let mut d_up = Array2::zeros(tape.up.raw_dim());
        ndarray::Zip::from(&mut d_gate).and(&mut d_up).and(&d_down_in).and(&tape.gate).and(&tape.up).for_each(|dg, du, &dd, &g, &u| {
            let (a, da) = activation(Activation::GeluTanh, g);
            *dg = dd * u * da;
            *du = dd * a;
        });
        accumulate(grad_of(grads, Role::Gate), tape.ffn_in.view(), d_gate.view());
        accumulate(grad_of(grads, Role::Up), tape.ffn_in.view(), d_up.view());
        let mut d_ffn_in = d_gate.dot(&w.weight(Role::Gate).t());
        general_mat_mul(F::one(), &d_up, &w.weight(Role::Up).t(), F::one(), &mut d_ffn_in);
        let residual = tape.cross.as_ref().map_or(&tape.x1, |c| &c.x2);
        let mut d_residual = d_out + &rms_norm_backward(residual.view(), &tape.r_ffn, w.ffn_norm.view(), d_ffn_in.view());

        // Cross-attention: x2 = x1 + cross_o(attend(q(norm(x1)), k(memory), v(memory))).
        if let (Some(c), Some((memory, d_memory)), Some(norm)) = (&tape.cross, memory, &w.cross_norm) {
            accumulate(grad_of(grads, Role::CrossO), c.ctx.view(), d_residual.view());
            let d_ctx = d_residual.dot(&w.weight(Role::CrossO).t());
            let (dq, dk, dv) = attend_backward(&c.q, &c.k, &c.v, &c.probs, &d_ctx, hd);
            accumulate(grad_of(grads, Role::CrossQ), c.input.view(), dq.view());
            accumulate(grad_of(grads, Role::CrossK), memory.view(), dk.view());
            accumulate(grad_of(grads, Role::CrossV), memory.view(), dv.view());
            general_mat_mul(F::one(), &dk, &w.weight(Role::CrossK).t(), F::one(), d_memory);
            general_mat_mul(F::one(), &dv, &w.weight(Role::CrossV).t(), F::one(), d_memory);
            let d_input = dq.dot(&w.weight(Role::CrossQ).t());
            d_residual += &rms_norm_backward(tape.x1.view(), &c.r, norm.view(), d_input.view());
        }

        // Self-attention: x1 = x + o(attend(q, k, v of norm(x))).
        accumulate(grad_of(grads, Role::O), tape.ctx.view(), d_residual.view());
        let d_ctx = d_residual.dot(&w.weight(Role::O).t());
        let (dq, dk, dv) = attend_backward(&tape.q, &tape.k, &tape.v, &tape.probs, &d_ctx, hd);
        accumulate(grad_of(grads, Role::Q), tape.attn_in.view(), dq.view());
        accumulate(grad_of(grads, Role::K), tape.attn_in.view(), dk.view());
        accumulate(grad_of(grads, Role::V), tape.attn_in.view(), dv.view());
        let mut d_attn_in = dq.dot(&w.weight(Role::Q).t());
        general_mat_mul(F::one(), &dk, &w.weight(Role::K).t(), F::one(), &mut d_attn_in);
        general_mat_mul(F::one(), &dv, &w.weight(Role::V).t(), F::one(), &mut d_attn_in);
        d_residual + rms_norm_backward(x, &tape.r_attn, w.attn_norm.view(), d_attn_in.view())
    }

    /// The head on one pair's last decoder states: `(dL/dx, log p(label) per position)` for a
    /// loss of `-scale * sum log p` (no gradient when `scale` is 0).
    fn head(&self, x: ArrayView2<F>, labels: &[u32], scale: F) -> (Array2<F>, Vec<f64>) {
        let out_w = self.output.as_ref().unwrap_or(&self.embed);
        let output_scale = cast::<F>(f64::from(self.spec.output_scale.unwrap_or(1.0)));
        let mut dx = Array2::zeros(x.raw_dim());
        let mut logprobs = Vec::with_capacity(labels.len());
        let mut start = 0;
        while start < labels.len() {
            let end = (start + HEAD_ROWS).min(labels.len());
            let xs = x.slice(s![start..end, ..]);
            let (mut h, r) = rms_norm(xs, self.decoder_norm.view(), self.eps());
            if self.spec.output_scale.is_some() {
                h *= output_scale;
            }
            let mut logits = h.dot(&out_w.t());
            cross_entropy_rows(&mut logits, |row| labels[start + row] as usize, scale, &mut logprobs);
            if scale != F::zero() {
                let mut dh = Array2::zeros(h.raw_dim());
                general_mat_mul(output_scale, &logits, out_w, F::zero(), &mut dh);
                dx.slice_mut(s![start..end, ..]).assign(&rms_norm_backward(xs, &r, self.decoder_norm.view(), dh.view()));
            }
            start = end;
        }
        (dx, logprobs)
    }

    /// The encoder's normed output for each input, the forward alone.
    pub fn encoder_output(&self, input: &[u32]) -> Array2<F> {
        let bias = self.position_bias(Stack::Encoder, input.len(), input.len());
        let mut x = self.embed_ids(input);
        for w in &self.encoder {
            x = self.block_forward(w, x.view(), None, &bias).out;
        }
        rms_norm(x.view(), self.encoder_norm.view(), self.eps()).0
    }

    /// `log p(labels[t] | input, labels[..t])` of each pair, the forward alone: what the checks
    /// compare with transformers' decoder logits.
    pub fn label_logprobs(&self, pairs: &[(&[u32], &[u32])]) -> Vec<Vec<f64>> {
        pairs
            .par_iter()
            .map(|(input, labels)| {
                if input.is_empty() || labels.is_empty() {
                    return Vec::new();
                }
                let memory = self.encoder_output(input);
                let bias = self.position_bias(Stack::Decoder, labels.len(), labels.len());
                let mut x = self.embed_ids(&self.decoder_input(labels));
                for w in &self.decoder {
                    x = self.block_forward(w, x.view(), Some(&memory), &bias).out;
                }
                self.head(x.view(), labels, F::zero()).1
            })
            .collect()
    }

    /// The mean label loss over `pairs` (input ids, labels; pairs with either empty are left
    /// out) and its gradient with respect to every prunable weight of both stacks.
    pub fn loss_and_gradients(&self, pairs: &[(&[u32], &[u32])]) -> Seq2SeqGradients<F> {
        let pairs: Vec<(&[u32], &[u32])> = pairs.iter().copied().filter(|(i, l)| !i.is_empty() && !l.is_empty()).collect();
        let predictions: usize = pairs.iter().map(|(_, l)| l.len()).sum();
        let scale = cast::<F>(1.0 / predictions.max(1) as f64);
        let mut seconds = PassSeconds { encoder: vec![0.0; self.encoder.len()], decoder: vec![0.0; self.decoder.len()], head: 0.0 };
        let enc_bias: Vec<Vec<Array2<F>>> = pairs.par_iter().map(|(i, _)| self.position_bias(Stack::Encoder, i.len(), i.len())).collect();
        let dec_bias: Vec<Vec<Array2<F>>> = pairs.par_iter().map(|(_, l)| self.position_bias(Stack::Decoder, l.len(), l.len())).collect();

        // Forward, keeping each block's input: the encoder, its normed output, the decoder.
        let t0 = Instant::now();
        let mut enc_inputs: Vec<Vec<Array2<F>>> = vec![pairs.par_iter().map(|(i, _)| self.embed_ids(i)).collect()];
        let mut dec_inputs: Vec<Vec<Array2<F>>> = vec![pairs.par_iter().map(|(_, l)| self.embed_ids(&self.decoder_input(l))).collect()];
        seconds.head += t0.elapsed().as_secs_f64();
        for (b, w) in self.encoder.iter().enumerate() {
            let t = Instant::now();
            let next = enc_inputs[b].par_iter().zip(&enc_bias).map(|(x, bias)| self.block_forward(w, x.view(), None, bias).out).collect();
            enc_inputs.push(next);
            seconds.encoder[b] += t.elapsed().as_secs_f64();
        }
        let enc_top = enc_inputs.pop().expect("embeddings at least");
        let t = Instant::now();
        let norms: Vec<(Array2<F>, Array1<F>)> =
            enc_top.par_iter().map(|x| rms_norm(x.view(), self.encoder_norm.view(), self.eps())).collect();
        let (memory, memory_r): (Vec<Array2<F>>, Vec<Array1<F>>) = norms.into_iter().unzip();
        seconds.head += t.elapsed().as_secs_f64();
        for (b, w) in self.decoder.iter().enumerate() {
            let t = Instant::now();
            let next = dec_inputs[b]
                .par_iter()
                .zip(&memory)
                .zip(&dec_bias)
                .map(|((x, m), bias)| self.block_forward(w, x.view(), Some(m), bias).out)
                .collect();
            dec_inputs.push(next);
            seconds.decoder[b] += t.elapsed().as_secs_f64();
        }
        let dec_top = dec_inputs.pop().expect("embeddings at least");
        let t = Instant::now();
        let heads: Vec<(Array2<F>, Vec<f64>)> = dec_top.par_iter().zip(&pairs).map(|(x, (_, l))| self.head(x.view(), l, scale)).collect();
        seconds.head += t.elapsed().as_secs_f64();
        drop(dec_top);
        let loss = -heads.iter().flat_map(|(_, lp)| lp.iter()).sum::<f64>() / predictions.max(1) as f64;

        // Backward through the decoder from the top; each pair's gradient at the encoder's
        // output gathers every block's cross-attention keys and values.
        let mut d: Vec<Array2<F>> = heads.into_iter().map(|(dx, _)| dx).collect();
        let mut d_memory: Vec<Array2<F>> = memory.iter().map(|m| Array2::zeros(m.raw_dim())).collect();
        let mut decoder_grads = Vec::with_capacity(self.decoder.len());
        for b in (0..self.decoder.len()).rev() {
            let t = Instant::now();
            let w = &self.decoder[b];
            let xs = dec_inputs.pop().expect("one saved input per block");
            let g = d
                .par_iter_mut()
                .zip(d_memory.par_iter_mut())
                .zip(xs.par_iter())
                .zip(memory.par_iter())
                .zip(dec_bias.par_iter())
                .fold(
                    || zero_grads(w),
                    |mut g, ((((dx, dm), x), m), bias)| {
                        let tape = self.block_forward(w, x.view(), Some(m), bias);
                        *dx = self.block_backward(w, x.view(), Some((m, dm)), &tape, dx, &mut g);
                        g
                    },
                )
                .reduce(|| zero_grads(w), BlockGrads::add);
            decoder_grads.push(g);
            seconds.decoder[b] += t.elapsed().as_secs_f64();
        }
        decoder_grads.reverse();
        drop(d);

        // The encoder's final norm, then its blocks from the top.
        let t = Instant::now();
        let mut d: Vec<Array2<F>> = enc_top
            .par_iter()
            .zip(&memory_r)
            .zip(&d_memory)
            .map(|((x, r), dm)| rms_norm_backward(x.view(), r, self.encoder_norm.view(), dm.view()))
            .collect();
        seconds.head += t.elapsed().as_secs_f64();
        drop((enc_top, memory, d_memory));
        let mut encoder_grads = Vec::with_capacity(self.encoder.len());
        for b in (0..self.encoder.len()).rev() {
            let t = Instant::now();
            let w = &self.encoder[b];
            let xs = enc_inputs.pop().expect("one saved input per block");
            let g = d
                .par_iter_mut()
                .zip(xs.par_iter())
                .zip(enc_bias.par_iter())
                .fold(
                    || zero_grads(w),
                    |mut g, ((dx, x), bias)| {
                        let tape = self.block_forward(w, x.view(), None, bias);
                        *dx = self.block_backward(w, x.view(), None, &tape, dx, &mut g);
                        g
                    },
                )
                .reduce(|| zero_grads(w), BlockGrads::add);
            encoder_grads.push(g);
            seconds.encoder[b] += t.elapsed().as_secs_f64();
        }
        encoder_grads.reverse();
        Seq2SeqGradients { loss, predictions, encoder: encoder_grads, decoder: decoder_grads, seconds }
    }

    /// GraSP's Hessian-gradient product `H g` over the prunable weights of both stacks, by the
    /// central difference `(grad L(w + eps g) - grad L(w - eps g)) / (2 eps)` with
    /// `eps = delta ||w|| / ||g||`, as [`super::DecoderWeights::hessian_gradient_product`]
    /// takes it (same step, same error terms). The seconds are those of both passes.
    pub fn hessian_gradient_product(&self, pairs: &[(&[u32], &[u32])], g: &Seq2SeqGradients<F>, delta: f64) -> Seq2SeqGradients<F> {
        let eps = delta * self.prunable_norm() / g.norm().max(f64::MIN_POSITIVE);
        let mut shifted = self.clone();
        shifted.step_prunable(g, cast(eps));
        let plus = shifted.loss_and_gradients(pairs);
        shifted = self.clone();
        shifted.step_prunable(g, cast(-eps));
        let minus = shifted.loss_and_gradients(pairs);
        drop(shifted);
        let inv = cast::<F>(1.0 / (2.0 * eps));
        let difference = |p: Vec<BlockGrads<F>>, m: Vec<BlockGrads<F>>| -> Vec<BlockGrads<F>> {
            p.into_iter()
                .zip(m)
                .map(|(p, m)| BlockGrads {
                    linear: p.linear.into_iter().zip(m.linear).map(|(a, b)| (a - b) * inv).collect(),
                    roles: p.roles,
                })
                .collect()
        };
        let mut seconds = plus.seconds.clone();
        seconds.add(&minus.seconds);
        Seq2SeqGradients {
            // The loss at `w` itself is not recomputed: the mean of the two equals it to O(eps^2).
            loss: 0.5 * (plus.loss + minus.loss),
            predictions: plus.predictions,
            encoder: difference(plus.encoder, minus.encoder),
            decoder: difference(plus.decoder, minus.decoder),
            seconds,
        }
    }
}

fn zero_grads<F: Real>(w: &T5BlockWeights<F>) -> BlockGrads<F> {
    BlockGrads { linear: w.linear.iter().map(|m| Array2::zeros(m.raw_dim())).collect(), roles: w.roles.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny random encoder-decoder (2 + 2 blocks, 3 heads of 4, d 8, ffn 10, vocab 11, 6
    /// buckets to distance 5, so short inputs reach the logarithmic buckets), weights drawn
    /// from a fixed generator.
    fn tiny(tied: bool) -> Seq2SeqWeights<f64> {
        let spec = Seq2SeqSpec {
            architecture: "mt5".into(),
            encoder_blocks: 2,
            decoder_blocks: 2,
            d_model: 8,
            n_heads: 3,
            head_dim: 4,
            ffn_dim: 10,
            vocab_size: 11,
            norm_eps: 1e-6,
            buckets: 6,
            max_distance: 5,
            tied_output: tied,
            output_scale: tied.then_some(8f32.powf(-0.5)),
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 0,
        };
        let shapes: std::collections::HashMap<String, Vec<usize>> = spec.weight_shapes().into_iter().collect();
        Seq2SeqWeights::from_reader(spec, |name| {
            let n: usize = shapes[name].iter().product();
            let seed = name.bytes().fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let norm = shapes[name].len() == 1;
            Ok((0..n)
                .map(|i| {
                    let u = ((seed.wrapping_add(i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33) % 2000)
                        as f32
                        / 1000.0
                        - 1.0;
                    if norm {
                        1.0 + 0.2 * u
                    } else {
                        u
                    }
                })
                .collect())
        })
        .unwrap()
    }

    fn pairs() -> Vec<(Vec<u32>, Vec<u32>)> {
        vec![(vec![3, 5, 7, 2, 9, 4, 1], vec![3, 5, 7, 2, 9, 4, 1]), (vec![8, 6, 1], vec![10, 2, 3, 4, 1])]
    }

    fn loss(w: &Seq2SeqWeights<f64>, pairs: &[(Vec<u32>, Vec<u32>)]) -> f64 {
        let refs: Vec<(&[u32], &[u32])> = pairs.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
        let lp = w.label_logprobs(&refs);
        -lp.iter().flatten().sum::<f64>() / lp.iter().map(Vec::len).sum::<usize>() as f64
    }

    /// Every layer's gradient at a few entries against a central difference of the loss in
    /// float64 (h = 1e-5: truncation ~h^2 times the third derivative, round-off ~1e-16/h,
    /// both far below 1e-6 of the entries), tied head with its output scale and untied.
    #[test]
    fn gradients_match_central_differences_of_the_loss() {
        for tied in [false, true] {
            let w = tiny(tied);
            let data = pairs();
            let refs: Vec<(&[u32], &[u32])> = data.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
            let g = w.loss_and_gradients(&refs);
            assert!((g.loss - loss(&w, &data)).abs() < 1e-12);
            assert_eq!(g.predictions, 12);
            let h = 1e-5;
            for layer in w.spec.layers() {
                let got = g.of(&layer).unwrap();
                let [d_in, d_out] = layer.shape;
                for (i, o) in [(0, 0), (d_in - 1, d_out - 1), (d_in / 2, d_out / 3)] {
                    let numeric = {
                        let at = |step: f64| {
                            let mut p = w.clone();
                            let blocks = if layer.stack == Stack::Encoder { &mut p.encoder } else { &mut p.decoder };
                            let b = &mut blocks[layer.block];
                            let k = b.roles.iter().position(|r| *r == layer.as_linear(0).role).unwrap();
                            b.linear[k][[i, o]] += step;
                            loss(&p, &data)
                        };
                        (at(h) - at(-h)) / (2.0 * h)
                    };
                    let scale = got.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                    assert!(
                        (got[[i, o]] - numeric).abs() < 1e-6 * scale,
                        "{} [{i},{o}] tied {tied}: {} vs {numeric}",
                        layer.name,
                        got[[i, o]]
                    );
                }
            }
        }
    }
}
