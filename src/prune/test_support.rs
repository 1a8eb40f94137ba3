//! Shared test fixtures and brute-force references (compiled only for tests).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::mask::Mask;
use super::sparsity::{Pattern, Sparsity, SparsityTarget};
use super::weight::LinearWeight;

/// A layer whose weights are multiples of 1/4 in [-0.75, 0.75] (zeros included), so magnitude
/// ties are frequent and the tie rule is exercised.
pub fn discrete_layer(seed: u64, rows: usize, cols: usize) -> LinearWeight {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..rows * cols).map(|_| rng.gen_range(-3i32..=3) as f32 / 4.0).collect();
    LinearWeight::new("test", rows, cols, data).unwrap()
}

/// Unstructured targets at several sparsities, including 0 and a high one.
pub fn unstructured_targets() -> Vec<SparsityTarget> {
    [0.0, 0.1, 0.25, 0.5, 0.7, 0.9].into_iter().map(|s| SparsityTarget::Unstructured(Sparsity::new(s).unwrap())).collect()
}

/// N:M targets used across tests (row widths must be multiples of 8).
pub fn nm_targets() -> Vec<SparsityTarget> {
    ["2:4", "4:8", "1:4"].into_iter().map(|p| SparsityTarget::new(None, p.parse::<Pattern>().unwrap()).unwrap()).collect()
}

/// Indices of the `k` lowest scores by a full sort of (score, index) pairs.
fn sorted_lowest(scores: &[(f64, usize)], k: usize) -> Vec<usize> {
    let mut pairs = scores.to_vec();
    pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    pairs.into_iter().take(k).map(|(_, i)| i).collect()
}

/// The mask the documented rules imply, computed by sorting every scope naively.
pub fn brute_force_mask(scores: &[f64], rows: usize, cols: usize, target: SparsityTarget, whole_matrix: bool) -> Mask {
    let mut kept = vec![true; rows * cols];
    match target {
        SparsityTarget::Unstructured(s) if whole_matrix => {
            let pairs: Vec<(f64, usize)> = scores.iter().copied().zip(0..).collect();
            let k = (s.get() * (rows * cols) as f64).floor() as usize;
            for i in sorted_lowest(&pairs, k) {
                kept[i] = false;
            }
        }
        SparsityTarget::Unstructured(s) => {
            let k = (s.get() * cols as f64).floor() as usize;
            for r in 0..rows {
                let pairs: Vec<(f64, usize)> = (0..cols).map(|c| (scores[r * cols + c], c)).collect();
                for c in sorted_lowest(&pairs, k) {
                    kept[r * cols + c] = false;
                }
            }
        }
        SparsityTarget::NM(nm) => {
            for r in 0..rows {
                for g in (0..cols).step_by(nm.m()) {
                    let pairs: Vec<(f64, usize)> = (g..g + nm.m()).map(|c| (scores[r * cols + c], c)).collect();
                    for c in sorted_lowest(&pairs, nm.n()) {
                        kept[r * cols + c] = false;
                    }
                }
            }
        }
    }
    let mut mask = Mask::all_kept(rows, cols);
    for (i, &k) in kept.iter().enumerate() {
        mask.set(i / cols, i % cols, k);
    }
    mask
}

/// Standard normal sample (Box-Muller), enough for test data.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `tokens x width` activations with strongly correlated channels and uneven scales: a few
/// latent factors mixed into every channel plus channel noise, like real hidden states.
pub fn correlated_inputs(seed: u64, tokens: usize, width: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let factors = 4;
    let mixing: Vec<f64> = (0..factors * width).map(|_| normal(&mut rng)).collect();
    let scale: Vec<f64> = (0..width).map(|j| 0.2 + (j % 7) as f64 * 0.5).collect();
    let mut x = Vec::with_capacity(tokens * width);
    for _ in 0..tokens {
        let latent: Vec<f64> = (0..factors).map(|_| normal(&mut rng)).collect();
        for j in 0..width {
            let shared: f64 = (0..factors).map(|f| latent[f] * mixing[f * width + j]).sum();
            x.push(((shared + 0.3 * normal(&mut rng)) * scale[j]) as f32);
        }
    }
    x
}

/// A `rows x cols` layer with standard normal weights.
pub fn normal_layer(seed: u64, rows: usize, cols: usize) -> LinearWeight {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..rows * cols).map(|_| normal(&mut rng) as f32).collect();
    LinearWeight::new("test", rows, cols, data).unwrap()
}

/// `||W X^T - W' X^T||_F^2` over the calibration tokens, computed directly in f64.
pub fn reconstruction_error(original: &[f32], pruned: &[f32], x: &[f32], cols: usize) -> f64 {
    let rows = original.len() / cols;
    let mut total = 0.0;
    for token in x.chunks(cols) {
        for r in 0..rows {
            let diff: f64 =
                (0..cols).map(|c| (f64::from(original[r * cols + c]) - f64::from(pruned[r * cols + c])) * f64::from(token[c])).sum();
            total += diff * diff;
        }
    }
    total
}
