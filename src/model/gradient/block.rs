//! One decoder block, forward with a tape and backward from the tape, for one window.
//!
//! The forward is the graph of `decoder::Emitter::block` written out in ndarray: pre-norm (RMS
//! or LayerNorm)
//! attention (q/k/v projections with optional biases, optional per-head q/k RMS norms, rotary
//! positions in the rotate-half layout, grouped keys/values, causal and optional sliding-window
//! mask, softmax, output projection, optional post-attention "sandwich" norm), a residual add,
//! then the gated MLP (`down(act(gate(h)) * up(h))`, optional post-MLP norm) and a second
//! residual add. A parallel (Command-R) block feeds the attention's normed input to the MLP as
//! well and adds both outputs to the residual at once. BLOOM's switches: one fused q/k/v
//! projection (split into [Q; K; V] columns), ALiBi biases on the scores instead of rotary
//! positions, an ungated MLP (`down(act(up(h)))`), and biases on every norm and linear layer.
//! The backward walks the same steps in reverse; gradients of the linear
//! weights are accumulated into [`BlockGrads`], norm gains and biases get none (not pruned).

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2};

use super::ops::{
    activation, head_rms_norm, head_rms_norm_backward, norm, norm_backward, rms_norm, rms_norm_backward, rope, softmax_rows,
    softmax_rows_backward, with_bias,
};
use super::{BlockGrads, BlockWeights, Real};
use crate::model::decoder::{alibi_slopes, DecoderSpec, Role};

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
    /// `None` in a parallel block (the MLP reads `attn_in`).
    r_ffn: Option<Array1<F>>,
    ffn_in: Array2<F>,
    /// `None` in an ungated MLP.
    gate: Option<Array2<F>>,
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

/// `x W + b` for the block's layer of `role`.
fn linear<F: Real>(w: &BlockWeights<F>, role: Role, x: ArrayView2<F>) -> Array2<F> {
    let i = w.slot(role);
    with_bias(matmul(x, w.linear[i].view()), w.bias[i].as_ref())
}

/// The weight of the block's layer of `role`.
fn weight<F: Real>(w: &BlockWeights<F>, role: Role) -> &Array2<F> {
    &w.linear[w.slot(role)]
}

/// ALiBi's slope of each head as the graph holds it (rounded to f32), or none.
fn slopes<F: Real>(spec: &DecoderSpec) -> Option<Vec<F>> {
    spec.gpt.alibi.then(|| alibi_slopes(spec.n_heads).into_iter().map(|v| cast(f64::from(v as f32))).collect())
}

/// Whether query position `t` may attend to key position `u`.
fn visible(t: usize, u: usize, window: Option<usize>) -> bool {
    u <= t && window.is_none_or(|w| t - u < w)
}

pub fn forward<F: Real>(spec: &DecoderSpec, block: usize, w: &BlockWeights<F>, x: ArrayView2<F>) -> Tape<F> {
    let eps = cast::<F>(f64::from(spec.norm_eps));
    let hd = spec.head_dim;
    let (t_len, group) = (x.nrows(), spec.n_heads / spec.n_kv_heads);
    let (attn_in, r_attn) = norm(spec.norm, x, w.attn_norm.view(), eps);
    let attn_in = with_bias(attn_in, w.attn_norm_bias.as_ref());
    let (q_lin, k_lin, v) = if spec.gpt.fused_qkv {
        let qkv = linear(w, Role::Qkv, attn_in.view());
        let (qd, kvd) = (spec.n_heads * hd, spec.n_kv_heads * hd);
        (qkv.slice(s![.., ..qd]).to_owned(), qkv.slice(s![.., qd..qd + kvd]).to_owned(), qkv.slice(s![.., qd + kvd..]).to_owned())
    } else {
        (linear(w, Role::Q, attn_in.view()), linear(w, Role::K, attn_in.view()), linear(w, Role::V, attn_in.view()))
    };
    let (qn, r_q, kn, r_k) = match &w.qk_norm {
        Some((qw, kw)) => {
            let (qn, rq) = head_rms_norm(q_lin.view(), qw.view(), eps);
            let (kn, rk) = head_rms_norm(k_lin.view(), kw.view(), eps);
            (qn, Some(rq), kn, Some(rk))
        }
        None => (q_lin.clone(), None, k_lin.clone(), None),
    };
    let (q, k) =
        if spec.gpt.alibi { (qn, kn) } else { (rope(qn.view(), &w.cos, &w.sin, hd, false), rope(kn.view(), &w.cos, &w.sin, hd, false)) };
    let (scale, window) = (cast::<F>(f64::from(spec.attn_scale)), spec.sliding_window[block]);
    let slopes = slopes::<F>(spec);
    let mut ctx = Array2::zeros((t_len, spec.n_heads * hd));
    let mut probs = Vec::with_capacity(spec.n_heads);
    for head in 0..spec.n_heads {
        let kv = head / group;
        let qh = q.slice(s![.., head * hd..(head + 1) * hd]);
        let kh = k.slice(s![.., kv * hd..(kv + 1) * hd]);
        let vh = v.slice(s![.., kv * hd..(kv + 1) * hd]);
        let mut scores = qh.dot(&kh.t());
        // ALiBi: slope * (key position - query position), a constant the backward passes by.
        let slope = slopes.as_ref().map(|s| s[head]);
        for ((t, u), s) in scores.indexed_iter_mut() {
            *s = if visible(t, u, window) {
                let bias = slope.map(|m| m * (cast::<F>(u as f64) - cast::<F>(t as f64))).unwrap_or(F::zero());
                *s * scale + bias
            } else {
                cast(MASKED)
            };
        }
        softmax_rows(&mut scores);
        ctx.slice_mut(s![.., head * hd..(head + 1) * hd]).assign(&scores.dot(&vh));
        probs.push(scores);
    }
    let o = linear(w, Role::O, ctx.view());
    let (attn_out, r_post_attn) = match &w.sandwich {
        Some((post_attn, _)) => {
            let (y, r) = rms_norm(o.view(), post_attn.view(), eps);
            (y, Some(r))
        }
        None => (o.clone(), None),
    };
    // x1: the residual the MLP's output is added to (a parallel block adds attention there too).
    let x1 = if spec.parallel_block { x.to_owned() } else { &x + &attn_out };
    let (r_ffn, ffn_in) = match &w.ffn_norm {
        Some(ffn_norm) => {
            let (y, r) = norm(spec.norm, x1.view(), ffn_norm.view(), eps);
            (Some(r), with_bias(y, w.ffn_norm_bias.as_ref()))
        }
        None => (None, attn_in.clone()),
    };
    let up = linear(w, Role::Up, ffn_in.view());
    let (gate, down_in) = if spec.gpt.plain_mlp {
        (None, up.mapv(|u| activation(spec.activation, u).0))
    } else {
        let gate = linear(w, Role::Gate, ffn_in.view());
        let down_in = gate.mapv(|g| activation(spec.activation, g).0) * &up;
        (Some(gate), down_in)
    };
    let m = linear(w, Role::Down, down_in.view());
    let (mlp_out, r_post_ffw) = match &w.sandwich {
        Some((_, post_ffw)) => {
            let (y, r) = rms_norm(m.view(), post_ffw.view(), eps);
            (y, Some(r))
        }
        None => (m.clone(), None),
    };
    let out = if spec.parallel_block { &x1 + &attn_out + &mlp_out } else { &x1 + &mlp_out };
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
    accumulate(grads.of_mut(Role::Down), tape.down_in.view(), dm.view());
    let d_down_in = dm.dot(&weight(w, Role::Down).t());
    let mut d_up = Array2::zeros(tape.up.raw_dim());
    let mut d_ffn_in = match &tape.gate {
        Some(gate) => {
            let mut d_gate = Array2::zeros(gate.raw_dim());
            ndarray::Zip::from(&mut d_gate).and(&mut d_up).and(&d_down_in).and(gate).and(&tape.up).for_each(|dg, du, &dd, &g, &u| {
                let (a, da) = activation(spec.activation, g);
                *dg = dd * u * da;
                *du = dd * a;
            });
            accumulate(grads.of_mut(Role::Gate), tape.ffn_in.view(), d_gate.view());
            d_gate.dot(&weight(w, Role::Gate).t())
        }
        None => {
            ndarray::Zip::from(&mut d_up).and(&d_down_in).and(&tape.up).for_each(|du, &dd, &u| *du = dd * activation(spec.activation, u).1);
            Array2::zeros(tape.ffn_in.raw_dim())
        }
    };
    accumulate(grads.of_mut(Role::Up), tape.ffn_in.view(), d_up.view());
    general_mat_mul(F::one(), &d_up, &weight(w, Role::Up).t(), F::one(), &mut d_ffn_in);
    // dx1: the gradient at the MLP's residual input (the block input itself in a parallel
    // block, whose MLP input gradient joins the attention's at the shared norm below).
    let (dx1, d_shared_in) = match (&w.ffn_norm, &tape.r_ffn) {
        (Some(ffn_norm), Some(r)) => (&d_out + &norm_backward(spec.norm, tape.x1.view(), r, ffn_norm.view(), d_ffn_in.view()), None),
        _ => (d_out.to_owned(), Some(d_ffn_in)),
    };

    // Attention half: x1 = x + norm?(o), o = ctx W_o (parallel: out = x + o + m, so d_o = d_out).
    let d_o = match (&w.sandwich, &tape.r_post_attn) {
        (Some((post_attn, _)), Some(r)) => rms_norm_backward(tape.o.view(), r, post_attn.view(), dx1.view()),
        _ => dx1.clone(),
    };
    accumulate(grads.of_mut(Role::O), tape.ctx.view(), d_o.view());
    let d_ctx = d_o.dot(&weight(w, Role::O).t());
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
    let (dqn, dkn) =
        if spec.gpt.alibi { (dq, dk) } else { (rope(dq.view(), &w.cos, &w.sin, hd, true), rope(dk.view(), &w.cos, &w.sin, hd, true)) };
    let (dq_lin, dk_lin) = match (&w.qk_norm, &tape.r_q, &tape.r_k) {
        (Some((qw, kw)), Some(rq), Some(rk)) => (
            head_rms_norm_backward(tape.q_lin.view(), rq, qw.view(), dqn.view()),
            head_rms_norm_backward(tape.k_lin.view(), rk, kw.view(), dkn.view()),
        ),
        _ => (dqn, dkn),
    };
    let mut d_attn_in = if spec.gpt.fused_qkv {
        // The fused layer's output gradient is the three side by side, as its columns are.
        let d_qkv = ndarray::concatenate(ndarray::Axis(1), &[dq_lin.view(), dk_lin.view(), dv.view()]).expect("same rows");
        accumulate(grads.of_mut(Role::Qkv), tape.attn_in.view(), d_qkv.view());
        d_qkv.dot(&weight(w, Role::Qkv).t())
    } else {
        accumulate(grads.of_mut(Role::Q), tape.attn_in.view(), dq_lin.view());
        accumulate(grads.of_mut(Role::K), tape.attn_in.view(), dk_lin.view());
        accumulate(grads.of_mut(Role::V), tape.attn_in.view(), dv.view());
        let mut d = dq_lin.dot(&weight(w, Role::Q).t());
        general_mat_mul(F::one(), &dk_lin, &weight(w, Role::K).t(), F::one(), &mut d);
        general_mat_mul(F::one(), &dv, &weight(w, Role::V).t(), F::one(), &mut d);
        d
    };
    if let Some(d) = d_shared_in {
        d_attn_in += &d;
    }
    dx1 + norm_backward(spec.norm, x, &tape.r_attn, w.attn_norm.view(), d_attn_in.view())
}
