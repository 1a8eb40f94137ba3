//! The elementwise and row-wise pieces of a decoder block, each with its backward rule.
//!
//! Rows are tokens. Every backward takes what its forward saved plus the gradient of the loss
//! with respect to the forward's output, and returns the gradient with respect to its input.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use super::Real;
use crate::model::decoder::{Activation, Norm};

fn cast<F: Real>(v: f64) -> F {
    F::from_f64(v).expect("a float type holds every f64 constant used here")
}

/// RMSNorm of each row, `y = x * r * w` with `r = 1 / sqrt(mean(x^2) + eps)`; returns `y` and
/// each row's `r` (what the backward needs besides `x`).
pub fn rms_norm<F: Real>(x: ArrayView2<F>, w: ArrayView1<F>, eps: F) -> (Array2<F>, Array1<F>) {
    let n = cast::<F>(x.ncols() as f64);
    let r: Array1<F> = x.rows().into_iter().map(|row| F::one() / (row.iter().map(|&v| v * v).sum::<F>() / n + eps).sqrt()).collect();
    let mut y = x.to_owned();
    Zip::from(y.rows_mut()).and(&r).for_each(|mut row, &ri| {
        Zip::from(&mut row).and(&w).for_each(|v, &wi| *v = *v * ri * wi);
    });
    (y, r)
}

/// The model's norm over each row: RMS, or LayerNorm, which is the RMS norm of the row minus
/// its mean. Returns the output and the per-row `r = 1 / sqrt(mean square + eps)`.
pub fn norm<F: Real>(kind: Norm, x: ArrayView2<F>, w: ArrayView1<F>, eps: F) -> (Array2<F>, Array1<F>) {
    match kind {
        Norm::Rms => rms_norm(x, w, eps),
        Norm::Layer => rms_norm(centred(x).view(), w, eps),
    }
}

/// Backward of [`norm`]. LayerNorm is `RMSNorm(P x)` with `P = I - 1 1^T / n`, symmetric, so
/// its input gradient is `P` applied to the RMS norm's gradient at `P x`.
pub fn norm_backward<F: Real>(kind: Norm, x: ArrayView2<F>, r: &Array1<F>, w: ArrayView1<F>, dy: ArrayView2<F>) -> Array2<F> {
    match kind {
        Norm::Rms => rms_norm_backward(x, r, w, dy),
        Norm::Layer => centred(rms_norm_backward(centred(x).view(), r, w, dy).view()),
    }
}

/// `y` plus `bias` on every row (a norm's or a linear layer's bias), or `y` itself without one.
pub fn with_bias<F: Real>(mut y: Array2<F>, bias: Option<&Array1<F>>) -> Array2<F> {
    if let Some(b) = bias {
        y += b;
    }
    y
}

/// Each row minus its mean.
fn centred<F: Real>(x: ArrayView2<F>) -> Array2<F> {
    let n = cast::<F>(x.ncols() as f64);
    let mut y = x.to_owned();
    for mut row in y.rows_mut() {
        let mean = row.sum() / n;
        row.mapv_inplace(|v| v - mean);
    }
    y
}

/// With `u = dy * w`: `dx_j = r u_j - r^3 x_j (sum_i u_i x_i) / n` (the derivative of `r`
/// brings in the second term).
pub fn rms_norm_backward<F: Real>(x: ArrayView2<F>, r: &Array1<F>, w: ArrayView1<F>, dy: ArrayView2<F>) -> Array2<F> {
    let n = cast::<F>(x.ncols() as f64);
    let mut dx = Array2::zeros(x.raw_dim());
    Zip::from(dx.rows_mut()).and(x.rows()).and(dy.rows()).and(r).for_each(|mut dxr, xr, dyr, &ri| {
        let ux: F = Zip::from(&dyr).and(&w).and(&xr).fold(F::zero(), |acc, &d, &wi, &xi| acc + d * wi * xi);
        let c = ri * ri * ri * ux / n;
        Zip::from(&mut dxr).and(&dyr).and(&w).and(&xr).for_each(|o, &d, &wi, &xi| *o = ri * d * wi - c * xi);
    });
    dx
}

/// RMSNorm over each head's `hd` values of a `[T, heads*hd]` matrix (Gemma's q/k norms).
pub fn head_rms_norm<F: Real>(x: ArrayView2<F>, w: ArrayView1<F>, eps: F) -> (Array2<F>, Array1<F>) {
    let (t, width) = x.dim();
    let hd = w.len();
    let flat = x.to_owned().into_shape_with_order((t * width / hd, hd)).expect("heads divide the width");
    let (y, r) = rms_norm(flat.view(), w, eps);
    (y.into_shape_with_order((t, width)).expect("same size"), r)
}

pub fn head_rms_norm_backward<F: Real>(x: ArrayView2<F>, r: &Array1<F>, w: ArrayView1<F>, dy: ArrayView2<F>) -> Array2<F> {
    let (t, width) = x.dim();
    let hd = w.len();
    let xf = x.to_owned().into_shape_with_order((t * width / hd, hd)).expect("heads divide the width");
    let dyf = dy.to_owned().into_shape_with_order((t * width / hd, hd)).expect("heads divide the width");
    rms_norm_backward(xf.view(), r, w, dyf.view()).into_shape_with_order((t, width)).expect("same size")
}

/// Rotary tables `[positions, hd]` in the rotate-half layout of the graph (`decoder::rope_tables`,
/// scaling included), computed in f64 and rounded once to `F`.
pub fn rope_tables<F: Real>(rotary: &crate::model::rope::Rotary, hd: usize, positions: usize) -> (Array2<F>, Array2<F>) {
    let (cos, sin) = rotary.tables(hd, positions, |v| cast::<F>(v));
    let shape = (positions, hd);
    (Array2::from_shape_vec(shape, cos).expect("positions x hd"), Array2::from_shape_vec(shape, sin).expect("positions x hd"))
}

/// Rotary embedding of every head of `[T, heads*hd]` at positions `0..T`:
/// `(x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)` for the pairs `(j, j + hd/2)`. With
/// `inverse` the transpose rotation (by `-angle`), which is the backward rule.
pub fn rope<F: Real>(x: ArrayView2<F>, cos: &Array2<F>, sin: &Array2<F>, hd: usize, inverse: bool) -> Array2<F> {
    let half = hd / 2;
    let mut y = Array2::zeros(x.raw_dim());
    for (t, (xr, mut yr)) in x.rows().into_iter().zip(y.rows_mut()).enumerate() {
        for h in 0..xr.len() / hd {
            for j in 0..half {
                let (a, b) = (xr[h * hd + j], xr[h * hd + j + half]);
                let (c, s) = (cos[[t, j]], if inverse { -sin[[t, j]] } else { sin[[t, j]] });
                yr[h * hd + j] = a * c - b * s;
                yr[h * hd + j + half] = b * c + a * s;
            }
        }
    }
    y
}

/// The gated MLP's activation and its derivative, elementwise.
pub fn activation<F: Real>(kind: Activation, x: F) -> (F, F) {
    match kind {
        Activation::Silu => {
            let s = F::one() / (F::one() + (-x).exp());
            (x * s, s * (F::one() + x * (F::one() - s)))
        }
        Activation::GeluTanh => {
            let (k, c, half) = (cast::<F>((2.0 / std::f64::consts::PI).sqrt()), cast::<F>(0.044715), cast::<F>(0.5));
            let t = (k * (x + c * x * x * x)).tanh();
            let dt = (F::one() - t * t) * k * (F::one() + cast::<F>(3.0) * c * x * x);
            (half * x * (F::one() + t), half * (F::one() + t) + half * x * dt)
        }
    }
}

/// Softmax of each row in place (masked entries hold a large negative number and become 0).
pub fn softmax_rows<F: Real>(s: &mut Array2<F>) {
    for mut row in s.rows_mut() {
        let max = row.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

/// Softmax backward per row: `ds = p * (dp - sum(dp * p))`.
pub fn softmax_rows_backward<F: Real>(p: &Array2<F>, dp: &Array2<F>) -> Array2<F> {
    let dots = (p * dp).sum_axis(Axis(1));
    let mut ds = dp.clone();
    Zip::from(ds.rows_mut()).and(p.rows()).and(&dots).for_each(|mut d, pr, &dot| {
        Zip::from(&mut d).and(&pr).for_each(|v, &pi| *v = pi * (*v - dot));
    });
    ds
}

/// Turns each row of `logits` into the gradient of `scale x -log p(target)` (softmax minus the
/// one-hot target, times `scale`), in place, and pushes each row's log-probability of its
/// target (`target(row)`) onto `logprobs`.
pub fn cross_entropy_rows<F: Real>(logits: &mut Array2<F>, target: impl Fn(usize) -> usize, scale: F, logprobs: &mut Vec<f64>) {
    for (row, mut l) in logits.axis_iter_mut(Axis(0)).enumerate() {
        let target = target(row);
        let max = l.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
        l.mapv_inplace(|v| (v - max).exp());
        let sum = l.sum();
        logprobs.push((l[target] / sum).to_f64().unwrap_or(f64::NAN).ln());
        l.mapv_inplace(|v| v / sum * scale);
        l[target] -= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each backward rule against a central difference in f64 of `sum(dy * f(x))`.
    fn numeric_grad(f: impl Fn(&Array2<f64>) -> Array2<f64>, x: &Array2<f64>, dy: &Array2<f64>) -> Array2<f64> {
        let mut g = Array2::zeros(x.raw_dim());
        let h = 1e-6;
        for idx in 0..x.len() {
            let (i, j) = (idx / x.ncols(), idx % x.ncols());
            let (mut p, mut m) = (x.clone(), x.clone());
            p[[i, j]] += h;
            m[[i, j]] -= h;
            g[[i, j]] = ((&f(&p) * dy).sum() - (&f(&m) * dy).sum()) / (2.0 * h);
        }
        g
    }

    fn pseudo(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| (((i * 31 + j * 17) as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0 - 1.0)
    }

    fn close(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs())) / b.iter().fold(1e-12f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn backward_rules_match_central_differences() {
        let x = pseudo(3, 8, 1);
        let dy = pseudo(3, 8, 2);
        let w: Array1<f64> = (0..8).map(|i| 0.5 + i as f64 / 8.0).collect();
        let (_, r) = rms_norm(x.view(), w.view(), 1e-6);
        let exact = rms_norm_backward(x.view(), &r, w.view(), dy.view());
        let numeric = numeric_grad(|x| rms_norm(x.view(), w.view(), 1e-6).0, &x, &dy);
        // Central differences with h = 1e-6 in f64: truncation ~h^2, round-off ~1e-16/h = 1e-10.
        assert!(close(&exact, &numeric) < 1e-7, "rms norm");

        let w4: Array1<f64> = (0..4).map(|i| 1.0 + i as f64 / 4.0).collect();
        let (_, r) = head_rms_norm(x.view(), w4.view(), 1e-6);
        let exact = head_rms_norm_backward(x.view(), &r, w4.view(), dy.view());
        let numeric = numeric_grad(|x| head_rms_norm(x.view(), w4.view(), 1e-6).0, &x, &dy);
        assert!(close(&exact, &numeric) < 1e-7, "head rms norm");

        let (cos, sin) = rope_tables::<f64>(&crate::model::rope::Rotary::plain(10_000.0), 4, 3);
        let exact = rope(dy.view(), &cos, &sin, 4, true);
        let numeric = numeric_grad(|x| rope(x.view(), &cos, &sin, 4, false), &x, &dy);
        assert!(close(&exact, &numeric) < 1e-7, "rope");

        for kind in [Activation::Silu, Activation::GeluTanh] {
            let exact = &x.mapv(|v| activation(kind, v).1) * &dy;
            let numeric = numeric_grad(|x| x.mapv(|v| activation(kind, v).0), &x, &dy);
            assert!(close(&exact, &numeric) < 1e-7, "{kind:?}");
        }

        let mut p = x.clone();
        softmax_rows(&mut p);
        let exact = softmax_rows_backward(&p, &dy);
        let numeric = numeric_grad(
            |s| {
                let mut p = s.clone();
                softmax_rows(&mut p);
                p
            },
            &x,
            &dy,
        );
        assert!(close(&exact, &numeric) < 1e-7, "softmax");
    }

    #[test]
    fn gelu_tanh_matches_its_closed_form_at_known_points() {
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) at x = 1: 0.8411919906082768.
        assert!((activation::<f64>(Activation::GeluTanh, 1.0).0 - 0.841_191_990_608_276_8).abs() < 1e-12);
        // silu(1) = 1 / (1 + e^-1) = 0.7310585786300049.
        assert!((activation::<f64>(Activation::Silu, 1.0).0 - 0.731_058_578_630_004_9).abs() < 1e-12);
    }
}
