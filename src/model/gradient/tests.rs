//! The reverse pass against central finite differences of its own forward, in f64, on tiny
//! random decoders that switch on every architecture feature (Gemma's q/k norms, sandwich norms,
//! GELU, embedding scale, sliding window; Qwen2's biases; grouped keys/values; untied and tied
//! output layers). The forward itself is checked against the runtime and against transformers
//! in `tests/gradients.rs`.

use super::*;
use crate::model::decoder::{Activation, Norm};
use crate::model::rope::RopeScaling;

fn spec(gemma_like: bool) -> DecoderSpec {
    DecoderSpec {
        architecture: if gemma_like { "gemma3".into() } else { "qwen2".into() },
        blocks: 2,
        d_model: 16,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 8,
        ffn_dim: 24,
        vocab_size: 40,
        norm: Norm::Rms,
        norm_eps: 1e-6,
        activation: if gemma_like { Activation::GeluTanh } else { Activation::Silu },
        parallel_block: false,
        qk_norm: gemma_like,
        sandwich_norms: gemma_like,
        qkv_bias: !gemma_like,
        embed_scale: if gemma_like { Some(4.0) } else { None },
        tied_output: gemma_like,
        logit_scale: None,
        attn_scale: 1.0 / 8f32.sqrt(),
        rope_base: vec![10_000.0, 1_000_000.0],
        // Scaled rotary in every test: Gemma 3's linear scaling of its global layer, and YaRN
        // (original context shorter than the tables) on both blocks of the other.
        rope_scaling: if gemma_like {
            vec![None, Some(RopeScaling::Linear { factor: 8.0 })]
        } else {
            vec![Some(RopeScaling::yarn(4.0, 8, None, None, None)); 2]
        },
        // Block 0 sees 3 keys back at most: shorter than the windows below, so the mask matters.
        sliding_window: if gemma_like { vec![Some(3), None] } else { vec![None, None] },
        max_positions: 32,
        gpt: Default::default(),
    }
}

/// Deterministic pseudo-random tensors from the tensor's name: norm gains near 1, matrices of
/// unit-variance fan-in scale (so the logits vary: a check on a flat softmax proves little).
fn reader(spec: &DecoderSpec) -> impl Fn(&str) -> Result<Vec<f32>, ModelError> + Send + Sync + 'static {
    let shapes: std::collections::HashMap<String, Vec<usize>> = spec.weight_shapes().into_iter().collect();
    move |name| {
        let shape = &shapes[name];
        let n: usize = shape.iter().product();
        let mut state = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let spread = if shape.len() == 1 { 0.2 } else { (3.0 / shape[shape.len().min(2) - 2] as f64).sqrt() * 1.5 };
        Ok((0..n).map(|_| (if shape.len() == 1 && !name.contains("bias") { 1.0 } else { 0.0 } + spread * uniform()) as f32).collect())
    }
}

fn weights(spec: &DecoderSpec) -> DecoderWeights<f64> {
    DecoderWeights::from_reader(spec.clone(), reader(spec)).unwrap()
}

fn windows() -> Vec<Vec<u32>> {
    vec![vec![1, 7, 3, 22, 9, 14, 39, 0], vec![5, 5, 30, 2, 17, 11, 8, 26]]
}

/// Largest |analytic - numeric| over a few entries of each linear weight, relative to the
/// largest |numeric| of that weight.
fn worst_relative_error(spec: &DecoderSpec) -> f64 {
    let w = weights(spec);
    let ids = windows();
    let g = w.loss_and_gradients(&ids, |_| {});
    let loss_at = |w: &DecoderWeights<f64>| w.loss_and_gradients(&ids, |_| {}).loss;
    let mut worst = 0f64;
    for b in 0..spec.blocks {
        for m in 0..w.blocks[b].linear.len() {
            let (rows, cols) = w.blocks[b].linear[m].dim();
            let picks = [(0, 0), (rows / 2, cols / 3), (rows - 1, cols - 1), (rows / 3, cols - 2)];
            let (mut err, mut scale) = (0f64, 0f64);
            for &(i, j) in &picks {
                // h = 1e-5: truncation ~ h^2 |L'''| ~ 1e-10, round-off ~ 1e-16 |L| / h ~ 1e-11.
                let h = 1e-5;
                let (mut p, mut q) = (w.clone(), w.clone());
                p.blocks[b].linear[m][[i, j]] += h;
                q.blocks[b].linear[m][[i, j]] -= h;
                let numeric = (loss_at(&p) - loss_at(&q)) / (2.0 * h);
                err = err.max((g.blocks[b].linear[m][[i, j]] - numeric).abs());
                scale = scale.max(numeric.abs());
            }
            worst = worst.max(err / scale);
        }
    }
    worst
}

#[test]
fn gradients_match_central_differences_with_every_gemma_switch() {
    // Double-precision central differences agree with an exact gradient to ~1e-9 relative
    // here; 1e-6 leaves room, while any wrong rule (a missing norm term, a transposed rope,
    // the wrong kv head) is off by 1e-2 or more.
    let e = worst_relative_error(&spec(true));
    assert!(e < 1e-6, "relative error {e:e}");
}

#[test]
fn gradients_match_central_differences_with_biases_and_untied_output() {
    let e = worst_relative_error(&spec(false));
    assert!(e < 1e-6, "relative error {e:e}");
}

/// Command-R's switches: LayerNorm, attention and MLP in parallel on one norm, scaled logits.
#[test]
fn gradients_match_central_differences_with_command_r_switches() {
    let mut s = spec(false);
    s.architecture = "command-r".into();
    s.norm = Norm::Layer;
    s.parallel_block = true;
    s.qkv_bias = false;
    s.tied_output = true;
    s.logit_scale = Some(0.5);
    let e = worst_relative_error(&s);
    assert!(e < 1e-6, "relative error {e:e}");
}

/// BLOOM's switches: ALiBi (6 query heads, so slopes beyond a power of two), a fused q/k/v
/// layer, an ungated MLP, LayerNorms with biases (one on the embeddings), biases on every
/// linear layer.
#[test]
fn gradients_match_central_differences_with_bloom_switches() {
    let e = worst_relative_error(&bloom_like());
    assert!(e < 1e-6, "relative error {e:e}");
}

fn bloom_like() -> DecoderSpec {
    let mut s = spec(false);
    s.architecture = "bloom".into();
    s.n_heads = 6;
    s.n_kv_heads = 3;
    s.norm = Norm::Layer;
    s.activation = Activation::GeluTanh;
    s.qkv_bias = false;
    s.tied_output = true;
    s.rope_base = Vec::new();
    s.rope_scaling = Vec::new();
    s.gpt = crate::model::decoder::GptSwitches {
        alibi: true,
        fused_qkv: true,
        plain_mlp: true,
        linear_bias: true,
        norm_bias: true,
        embed_norm: true,
    };
    s
}

#[test]
fn alibi_changes_the_loss() {
    // Without its biases the BLOOM-like model attends without positions: a different loss,
    // so the check above does see ALiBi.
    let s = bloom_like();
    let (a, b) = (weights(&s).loss_and_gradients(&windows(), |_| {}).loss, {
        let mut plain = s.clone();
        plain.gpt.alibi = false;
        plain.rope_base = vec![10_000.0; 2];
        plain.rope_scaling = vec![None; 2];
        weights(&plain).loss_and_gradients(&windows(), |_| {}).loss
    });
    assert!((a - b).abs() > 1e-3, "{a} vs {b}");
}

#[test]
fn sliding_window_changes_the_loss() {
    // A window that hides nothing would make the Gemma check above blind to the mask.
    let s = spec(true);
    let mut wide = s.clone();
    wide.sliding_window = vec![None, None];
    let (a, b) = (weights(&s).loss_and_gradients(&windows(), |_| {}).loss, weights(&wide).loss_and_gradients(&windows(), |_| {}).loss);
    assert!((a - b).abs() > 1e-3, "{a} vs {b}");
}

#[test]
fn hessian_gradient_product_matches_a_directional_second_difference() {
    // g^T H g = d^2/dt^2 L(w + t g) at 0: an independent second difference of the loss alone.
    // Measured on this model (||w|| = 25.5, ||g|| = 1.71): the relative error of g^T (H g)
    // falls as delta^2 (3.2e-2, 3.3e-4, 3.0e-6, 1.5e-7 at delta = 1e-3 .. 1e-6), so the
    // central difference is doing what its error term says; 2e-5 at delta = 1e-5 leaves room.
    let s = spec(true);
    let w = weights(&s);
    let ids = windows();
    let g = w.loss_and_gradients(&ids, |_| {});
    let hg = w.hessian_gradient_product(&ids, &g, 1e-5, |_, _| {});
    let g_hg: f64 = g.blocks.iter().zip(&hg.blocks).flat_map(|(a, b)| a.linear.iter().zip(&b.linear)).map(|(a, b)| (a * b).sum()).sum();
    let t = 1e-4 / g.norm();
    let loss = |step: f64| {
        let mut v = w.clone();
        v.step_prunable(&g, step);
        v.loss_and_gradients(&ids, |_| {}).loss
    };
    let second = (loss(t) - 2.0 * loss(0.0) + loss(-t)) / (t * t);
    assert!((g_hg - second).abs() < 2e-5 * second.abs(), "g.Hg {g_hg} vs second difference {second}");
}

/// The streamed pass reads the same tensors one part at a time and runs the same functions on
/// them: in one thread (so that rayon adds the windows' gradients in one order) its loss,
/// gradients, weight norm and `H g` equal the resident pass's, bit for bit, on every switch
/// set. Any part read wrongly (a block skipped, the perturbation missed or applied twice)
/// changes them far beyond the last bit.
#[test]
fn streamed_pass_equals_the_resident_pass() {
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for s in [spec(true), spec(false), bloom_like()] {
        let resident = weights(&s);
        let streamed = StreamedWeights::new(s.clone(), reader(&s));
        let ids = windows();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (g, h) = one_thread.install(|| {
            let g = resident.loss_and_gradients(&ids, |k| a.push(k));
            (g.clone(), resident.hessian_gradient_product(&ids, &g, 1e-4, |_, _| {}))
        });
        let (sg, sh) = one_thread.install(|| {
            let g = streamed.loss_and_gradients::<f64>(&ids, |k| b.push(k)).unwrap();
            let h = streamed.hessian_gradient_product(&ids, &g, 1e-4, |_, _| {}).unwrap();
            (g, h)
        });
        assert_eq!(a, b, "{}: blocks in the same order", s.architecture);
        assert_eq!(resident.prunable_norm(), streamed.prunable_norm::<f64>().unwrap(), "{}", s.architecture);
        for (x, y) in [(&g, &sg), (&h, &sh)] {
            assert_eq!(x.loss, y.loss, "{}", s.architecture);
            for (bx, by) in x.blocks.iter().zip(&y.blocks) {
                assert_eq!(bx.roles, by.roles);
                assert_eq!(bx.linear, by.linear, "{}", s.architecture);
            }
        }
        assert!(h.norm() > 0.0 && g.norm() > 0.0);
    }
}
