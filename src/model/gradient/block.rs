//! One decoder block, forward with a tape and backward from the tape, for one window.
//!
//! The forward is the graph of `decoder::Emitter::block` written out in ndarray: pre-norm
//! attention (q/k/v projections with optional biases, optional per-head q/k RMS norms, rotary
//! positions in the rotate-half layout, grouped keys/values, causal and optional sliding-window
//! mask, softmax, output projection, optional post-attention "sandwich" norm), a residual add,
//! then the gated MLP (`down(act(gate(h)) * up(h))`, optional post-MLP norm) and a second
//! residual add. The backward walks the same steps in reverse; gradients of the seven linear
//! weights are accumulated into [`BlockGrads`], norm gains and biases get none (not pruned).

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2};

use super::ops::{
    activation, head_rms_norm, head_rms_norm_backward, rms_norm, rms_norm_backward, rope, softmax_rows, softmax_rows_backward,
};
use super::{BlockGrads, BlockWeights, Real, DOWN, GATE, K, O, Q, UP, V};
use crate::model::decoder::DecoderSpec;

/// Additive mask for keys a query may not see; `exp` of it underflows to exactly 0 (as in the graph).
const MASKED: f64 = -1.0e9;

/// What the backward needs from one window's forward.
pub struct Tape<F> {
    r_attn: Array1<F>,
    attn_in: Array2<F>,
    q_lin: Array2<F>,
    k_lin: Array2<F>,
    r_q: Option<Array1<F>>,
    r_k: Option<Array1<F>>,
    q: Array2<F>,
    k: Array2<F>,
    v: Array2<F>,
    probs: Vec<Array2<F>>,
    ctx: Array2<F>,
    o: Array2<F>,
    r_post_attn: Option<Array1<F>>,
    x1: Array2<F>,
    r_ffn: Array1<F>,
    ffn_in: Array2<F>,
    gate: Array2<F>,
    up: Array2<F>,
    down_in: Array2<F>,
    m: Array2<F>,
    r_post_ffw: Option<Array1<F>>,
    pub out: Array2<F>,
}

fn cast<F: Real>(v: f64) -> F {
    F::from_f64(v).expect("f64 constant fits")
}

fn matmul<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> Array2<F> {
    a.dot(&b)
}

/// `grad += a^T b` without a temporary.
fn accumulate<F: Real>(grad: &mut Array2<F>, a: ArrayView2<F>, b: ArrayView2<F>) {
    general_mat_mul(F::one(), &a.t(), &b, F::one(), grad);
}

fn add_bias<F: Real>(mut y: Array2<F>, bias: Option<&Array1<F>>) -> Array2<F> {
    if let Some(b) = bias {
        y += b;
    }
    y
}

/// Whether query position `t` may attend to key position `u`.
fn visible(t: usize, u: usize, window: Option<usize>) -> bool {
    u <= t && window.is_none_or(|w| t - u < w)
}

pub fn forward<F: Real>(spec: &DecoderSpec, block: usize, w: &BlockWeights<F>, x: ArrayView2<F>) -> Tape<F> {
    let eps = cast::<F>(f64::from(spec.norm_eps));
    let hd = spec.head_dim;
    let (t_len, group) = (x.nrows(), spec.n_heads / spec.n_kv_heads);
    let (attn_in, r_attn) = rms_norm(x, w.attn_norm.view(), eps);
    let bias = |i: usize| w.qkv_bias.as_ref().map(|b| &b[i]);
    let q_lin = add_bias(matmul(attn_in.view(), w.linear[Q].view()), bias(0));
    let k_lin = add_bias(matmul(attn_in.view(), w.linear[K].view()), bias(1));
    let v = add_bias(matmul(attn_in.view(), w.linear[V].view()), bias(2));
    let (qn, r_q, kn, r_k) = match &w.qk_norm {
        Some((qw, kw)) => {
            let (qn, rq) = head_rms_norm(q_lin.view(), qw.view(), eps);
            let (kn, rk) = head_rms_norm(k_lin.view(), kw.view(), eps);
            (qn, Some(rq), kn, Some(rk))
        }
        None => (q_lin.clone(), None, k_lin.clone(), None),
    };
    let q = rope(qn.view(), &w.cos, &w.sin, hd, false);
    let k = rope(kn.view(), &w.cos, &w.sin, hd, false);
    let (scale, window) = (cast::<F>(f64::from(spec.attn_scale)), spec.sliding_window[block]);
    let mut ctx = Array2::zeros((t_len, spec.n_heads * hd));
    let mut probs = Vec::with_capacity(spec.n_heads);
    for head in 0..spec.n_heads {
        let kv = head / group;
        let qh = q.slice(s![.., head * hd..(head + 1) * hd]);
        let kh = k.slice(s![.., kv * hd..(kv + 1) * hd]);
        let vh = v.slice(s![.., kv * hd..(kv + 1) * hd]);
        let mut scores = qh.dot(&kh.t());
        for ((t, u), s) in scores.indexed_iter_mut() {
            *s = if visible(t, u, window) { *s * scale } else { cast(MASKED) };
        }
        softmax_rows(&mut scores);
        ctx.slice_mut(s![.., head * hd..(head + 1) * hd]).assign(&scores.dot(&vh));
        probs.push(scores);
    }
    let o = matmul(ctx.view(), w.linear[O].view());
    let (attn_out, r_post_attn) = match &w.sandwich {
        Some((post_attn, _)) => {
            let (y, r) = rms_norm(o.view(), post_attn.view(), eps);
            (y, Some(r))
        }
        None => (o.clone(), None),
    };
    let x1 = &x + &attn_out;
    let (r_ffn, ffn_in) = {
        let (y, r) = rms_norm(x1.view(), w.ffn_norm.view(), eps);
        (r, y)
    };
    let gate = matmul(ffn_in.view(), w.linear[GATE].view());
    let up = matmul(ffn_in.view(), w.linear[UP].view());
    let down_in = gate.mapv(|g| activation(spec.activation, g).0) * &up;
    let m = matmul(down_in.view(), w.linear[DOWN].view());
    let (mlp_out, r_post_ffw) = match &w.sandwich {
        Some((_, post_ffw)) => {
            let (y, r) = rms_norm(m.view(), post_ffw.view(), eps);
            (y, Some(r))
        }
        None => (m.clone(), None),
    };
    let out = &x1 + &mlp_out;
    Tape {
        r_attn,
        attn_in,
        q_lin,
        k_lin,
        r_q,
        r_k,
        q,
        k,
        v,
        probs,
        ctx,
        o,
        r_post_attn,
        x1,
        r_ffn,
        ffn_in,
        gate,
        up,
        down_in,
        m,
        r_post_ffw,
        out,
    }
}

/// From `d_out` (gradient of the loss with respect to the block's output) to the gradient with
/// respect to its input `x`, adding the linear weights' gradients to `grads`.
pub fn backward<F: Real>(
    spec: &DecoderSpec,
    w: &BlockWeights<F>,
    x: ArrayView2<F>,
    tape: &Tape<F>,
    d_out: ArrayView2<F>,
    grads: &mut BlockGrads<F>,
) -> Array2<F> {
    let hd = spec.head_dim;
    let group = spec.n_heads / spec.n_kv_heads;
    let scale = cast::<F>(f64::from(spec.attn_scale));
    // MLP half: out = x1 + norm?(down(act(gate) * up)).
    let dm = match (&w.sandwich, &tape.r_post_ffw) {
        (Some((_, post_ffw)), Some(r)) => rms_norm_backward(tape.m.view(), r, post_ffw.view(), d_out),
        _ => d_out.to_owned(),
    };
    accumulate(&mut grads.linear[DOWN], tape.down_in.view(), dm.view());
    let d_down_in = dm.dot(&w.linear[DOWN].t());
    let mut d_gate = Array2::zeros(tape.gate.raw_dim());
    let mut d_up = Array2::zeros(tape.up.raw_dim());
    ndarray::Zip::from(&mut d_gate).and(&mut d_up).and(&d_down_in).and(&tape.gate).and(&tape.up).for_each(|dg, du, &dd, &g, &u| {
        let (a, da) = activation(spec.activation, g);
        *dg = dd * u * da;
        *du = dd * a;
    });
    accumulate(&mut grads.linear[GATE], tape.ffn_in.view(), d_gate.view());
    accumulate(&mut grads.linear[UP], tape.ffn_in.view(), d_up.view());
    let mut d_ffn_in = d_gate.dot(&w.linear[GATE].t());
    general_mat_mul(F::one(), &d_up, &w.linear[UP].t(), F::one(), &mut d_ffn_in);
    let dx1 = &d_out + &rms_norm_backward(tape.x1.view(), &tape.r_ffn, w.ffn_norm.view(), d_ffn_in.view());

    // Attention half: x1 = x + norm?(o), o = ctx W_o.
    let d_o = match (&w.sandwich, &tape.r_post_attn) {
        (Some((post_attn, _)), Some(r)) => rms_norm_backward(tape.o.view(), r, post_attn.view(), dx1.view()),
        _ => dx1.clone(),
    };
    accumulate(&mut grads.linear[O], tape.ctx.view(), d_o.view());
    let d_ctx = d_o.dot(&w.linear[O].t());
    let mut dq = Array2::<F>::zeros(tape.q.raw_dim());
    let mut dk = Array2::<F>::zeros(tape.k.raw_dim());
    let mut dv = Array2::<F>::zeros(tape.v.raw_dim());
    for head in 0..spec.n_heads {
        let kv = head / group;
        let p = &tape.probs[head];
        let d_ctx_h = d_ctx.slice(s![.., head * hd..(head + 1) * hd]);
        let kh = tape.k.slice(s![.., kv * hd..(kv + 1) * hd]);
        let qh = tape.q.slice(s![.., head * hd..(head + 1) * hd]);
        let vh = tape.v.slice(s![.., kv * hd..(kv + 1) * hd]);
        let dp = d_ctx_h.dot(&vh.t());
        general_mat_mul(F::one(), &p.t(), &d_ctx_h, F::one(), &mut dv.slice_mut(s![.., kv * hd..(kv + 1) * hd]));
        // Masked scores have p = 0, so their gradient is 0: the mask needs no special case.
        let ds = softmax_rows_backward(p, &dp) * scale;
        general_mat_mul(F::one(), &ds, &kh, F::one(), &mut dq.slice_mut(s![.., head * hd..(head + 1) * hd]));
        general_mat_mul(F::one(), &ds.t(), &qh, F::one(), &mut dk.slice_mut(s![.., kv * hd..(kv + 1) * hd]));
    }
    let dqn = rope(dq.view(), &w.cos, &w.sin, hd, true);
    let dkn = rope(dk.view(), &w.cos, &w.sin, hd, true);
    let (dq_lin, dk_lin) = match (&w.qk_norm, &tape.r_q, &tape.r_k) {
        (Some((qw, kw)), Some(rq), Some(rk)) => (
            head_rms_norm_backward(tape.q_lin.view(), rq, qw.view(), dqn.view()),
            head_rms_norm_backward(tape.k_lin.view(), rk, kw.view(), dkn.view()),
        ),
        _ => (dqn, dkn),
    };
    accumulate(&mut grads.linear[Q], tape.attn_in.view(), dq_lin.view());
    accumulate(&mut grads.linear[K], tape.attn_in.view(), dk_lin.view());
    accumulate(&mut grads.linear[V], tape.attn_in.view(), dv.view());
    let mut d_attn_in = dq_lin.dot(&w.linear[Q].t());
    general_mat_mul(F::one(), &dk_lin, &w.linear[K].t(), F::one(), &mut d_attn_in);
    general_mat_mul(F::one(), &dv, &w.linear[V].t(), F::one(), &mut d_attn_in);
    dx1 + rms_norm_backward(x, &tape.r_attn, w.attn_norm.view(), d_attn_in.view())
}
