//! Ignored timing runs at the real model's sizes (run with
//! `cargo test --release -- --ignored --nocapture timing`). They print measurements and check
//! only that the results are finite and shaped right; speed is reported, not asserted.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sparsegpt::{sparsegpt_prune, SparseGptConfig};
use super::sparsity::{Sparsity, SparsityTarget};
use super::statistics::{GramPrecision, InputStatistics};
use super::test_support::normal_layer;

const TOKENS: usize = 65_536;
const BATCH_TOKENS: usize = 2_048;

fn random_batch(seed: u64, width: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..BATCH_TOKENS * width).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn accumulate_all(width: usize, precision: GramPrecision, batch: &[f32]) -> (InputStatistics, f64) {
    let mut stats = InputStatistics::with_gram_precision("timing", width, precision);
    let start = Instant::now();
    for _ in 0..TOKENS / BATCH_TOKENS {
        stats.accumulate(batch, BATCH_TOKENS).unwrap();
    }
    (stats, start.elapsed().as_secs_f64())
}

#[test]
#[ignore = "timing run, minutes in debug; use --release"]
fn timing_gram_accumulation() {
    for width in [640, 2048] {
        let batch = random_batch(width as u64, width);
        let (f32_stats, f32_seconds) = accumulate_all(width, GramPrecision::F32Chunks, &batch);
        let (f64_stats, f64_seconds) = accumulate_all(width, GramPrecision::F64, &batch);
        let (a, b) = (f32_stats.gram().unwrap(), f64_stats.gram().unwrap());
        // Deviation of the f32-chunk Gram from the f64 one, relative to sqrt(G_ii G_jj).
        let mut worst: f64 = 0.0;
        for i in 0..width {
            for j in 0..width {
                let scale = (b[(i, i)] * b[(j, j)]).sqrt();
                worst = worst.max((a[(i, j)] - b[(i, j)]).abs() / scale);
            }
        }
        eprintln!(
            "gram {TOKENS} x {width}: f32 chunks {f32_seconds:.2} s, f64 {f64_seconds:.2} s, \
             max |G32 - G64| / sqrt(Gii Gjj) = {worst:.2e}"
        );
        assert!(worst < 3.1e-5);
    }
}

#[test]
#[ignore = "timing run, minutes in debug; use --release"]
fn timing_sparsegpt_solve() {
    for (rows, cols) in [(640, 2048), (2048, 640)] {
        let mut stats = InputStatistics::new("timing", cols, true);
        let batch = random_batch(cols as u64, cols);
        stats.accumulate(&batch, BATCH_TOKENS).unwrap();
        let weight = normal_layer(1, rows, cols);
        for target in
            [SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap()), SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap()]
        {
            let start = Instant::now();
            let result = sparsegpt_prune("timing", &weight, &stats, target, SparseGptConfig::default()).unwrap();
            eprintln!("sparsegpt {rows} x {cols} {target}: {:.2} s", start.elapsed().as_secs_f64());
            assert!(result.weights.iter().all(|w| w.is_finite()));
            assert_eq!(result.mask.count_pruned(), rows * cols / 2);
        }
    }
}
