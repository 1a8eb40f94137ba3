//! The key/value-cache path against the full-sequence path, on the same weights: the tiny
//! Llama and Qwen2 fixtures (generated cache graphs, batching, right padding, greedy steps) and
//! the real Gemma 3 270M (sliding-window and global layers; multiple-choice tasks of every
//! family in `../shared/data`, perplexity on FLORES sentences, MGSM generation).
//!
//! Both paths compute the same f32 operations in a different grouping (matrix products of
//! other shapes, so other blockings of each dot product; softmax over past + new keys where
//! masked keys add exact zeros), so results agree to round-off, not bit for bit. Each bound
//! below says why it is what it is.

mod common;

use std::path::{Path, PathBuf};

use polyprune::eval::choices::score_examples;
use polyprune::eval::generate::generate;
use polyprune::eval::scorer::{DecodeState, PathChoice, ScoringPath};
use polyprune::eval::{score_documents, Scorer, WindowOptions};
use polyprune::model::import::{import_gguf, ImportOptions, CONTINUATION_GRAPH_FILE, HEAD_GRAPH_FILE, PREFIX_GRAPH_FILE};
use polyprune::model::ModelDir;
use polyprune::runtime::RuntimeOptions;
use polyprune::tasks::{load, Example, GenerationExample, LoadOptions, TaskItems, TaskName};

/// A prerequisite, or `None` (skip) outside CI; in CI (`CI=true`) a missing one fails.
fn required<T>(found: Option<T>, what: &str) -> Option<T> {
    if found.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing and CI=true: the cache path would go untested");
    }
    found
}

fn both_paths(dir: &ModelDir) -> (Scorer, Scorer) {
    let opts = RuntimeOptions::default();
    let cached = Scorer::load(dir, &opts, &[]).unwrap();
    assert_eq!(cached.path(), ScoringPath::Cached, "{}", dir.dir.display());
    let full = Scorer::load_with(dir, &opts, &[], PathChoice::FullSequence).unwrap();
    assert_eq!(full.path(), ScoringPath::FullSequence);
    (cached, full)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
}

/// Deterministic pseudo-random ids in `1..vocab`.
fn ids(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            1 + ((x >> 33) as usize % (vocab - 1)) as u32
        })
        .collect()
}

/// On a 2-block fixture, f32 round-off is ~1e-6 (see tests/fixture_models.rs); 1e-5 leaves
/// room for the different product shapes and still catches a wrong rotary offset or mask
/// (which moves log-probabilities by more than 1e-2).
fn check_fixture(name: &str) {
    let gguf = common::model_fixture(name).join("model.gguf");
    let out = common::temp_dir(&format!("kv-{name}"));
    import_gguf(&gguf, &out, &ImportOptions { max_positions: 128 }).unwrap();
    // A folder imported before the cache graphs existed gets them on first use.
    for f in [PREFIX_GRAPH_FILE, CONTINUATION_GRAPH_FILE, HEAD_GRAPH_FILE] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let dir = ModelDir::open(&out).unwrap();
    let (mut cached, mut full) = both_paths(&dir);
    assert!(out.join(CONTINUATION_GRAPH_FILE).is_file());
    let vocab = dir.card.vocab_size;
    let seqs: Vec<Vec<u32>> = [40usize, 7, 23, 2, 61].iter().enumerate().map(|(i, &n)| ids(i as u64, n, vocab)).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let a = cached.token_logprobs_and_greedy(&refs).unwrap();
    let b = full.token_logprobs_and_greedy(&refs).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(max_abs_diff(&x.logprobs, &y.logprobs) < 1e-5, "{name}: token_logprobs");
        assert_eq!(x.greedy, y.greedy, "{name}: greedy");
    }
    // Continuations of different lengths (right padding) on one context of batch 1.
    let context = ids(9, 30, vocab);
    let rests: Vec<Vec<u32>> = [1usize, 5, 12, 3].iter().enumerate().map(|(i, &n)| ids(20 + i as u64, n, vocab)).collect();
    let rest_refs: Vec<&[u32]> = rests.iter().map(|r| r.as_slice()).collect();
    let (a, cost) = cached.score_continuations(&context, &rest_refs).unwrap();
    assert_eq!(cost.tokens, 29 + 4 * 12, "{name}: the context runs once");
    let (b, _) = full.score_continuations(&context, &rest_refs).unwrap();
    for ((x, y), r) in a.iter().zip(&b).zip(&rests) {
        assert_eq!(x.logprobs.len(), r.len());
        assert!(max_abs_diff(&x.logprobs, &y.logprobs) < 1e-5, "{name}: continuation");
        assert_eq!(x.greedy, y.greedy, "{name}: continuation greedy");
    }
    // Greedy decoding, several sequences of different prompt lengths, step by step.
    let mut sa: Vec<DecodeState> =
        [3usize, 17, 8].iter().enumerate().map(|(i, &n)| DecodeState::new(ids(40 + i as u64, n, vocab))).collect();
    let mut sb: Vec<DecodeState> = sa.iter().map(|s| DecodeState::new(s.ids.clone())).collect();
    for _ in 0..20 {
        let (ta, _) = cached.greedy_step(&mut sa).unwrap();
        let (tb, _) = full.greedy_step(&mut sb).unwrap();
        assert_eq!(ta, tb, "{name}: greedy step");
        for ((x, y), t) in sa.iter_mut().zip(sb.iter_mut()).zip(ta) {
            x.ids.push(t);
            y.ids.push(t);
        }
    }
}

#[test]
fn cache_path_equals_full_sequence_on_tiny_llama() {
    check_fixture("tiny-llama");
}

#[test]
fn cache_path_equals_full_sequence_on_tiny_qwen2() {
    check_fixture("tiny-qwen2");
}
