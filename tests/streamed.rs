//! The streamed path (one part of the model resident at a time: embedding, each block, output
//! layer) against the cached path, on the same weights: the tiny Llama and Gemma 3 fixtures
//! (batching, right padding, continuations, greedy steps) and the real Gemma 3 270M (bits per
//! byte on FLORES sentences, greedy text).
//!
//! The block graphs compute the prefix graph's operations, cut at block boundaries, and the
//! output layer runs on the same rows in the same chunks: whole-sequence scores are identical,
//! bit for bit (measured: no operator fusion spans a block boundary in these graphs), so those
//! checks are equalities. A part skipped, run twice or run without its override would move
//! log-probabilities by far more than one unit in the last place. Continuations and greedy
//! steps run on the key/value cache on both paths: the streamed path's per-block cache graphs
//! are the cached path's prefix and continuation graphs cut at block boundaries, fed the same
//! batches, and the output layer sees the same rows in the same chunks, so those are
//! equalities too.

mod common;

use polyprune::eval::scorer::{ContinuationGroup, DecodeBatch, PathChoice, ScoringPath};
use polyprune::eval::{score_documents, Scorer, WindowOptions};
use polyprune::model::gradient::{DecoderWeights, StreamedWeights, GRASP_DELTA};
use polyprune::model::hf::import::import_hf;
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::model::ModelDir;
use polyprune::runtime::RuntimeOptions;

fn both_paths(dir: &ModelDir) -> (Scorer, Scorer) {
    let opts = RuntimeOptions::default();
    let cached = Scorer::load(dir, &opts, &[]).unwrap();
    assert_eq!(cached.path(), ScoringPath::Cached);
    let streamed = Scorer::load_with(dir, &opts, &[], PathChoice::Streamed).unwrap();
    assert_eq!(streamed.path(), ScoringPath::Streamed);
    (cached, streamed)
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

fn check(dir: &ModelDir, name: &str) {
    let (mut cached, mut streamed) = both_paths(dir);
    let vocab = dir.card.vocab_size;
    // Several batches (a small batch_tokens) of different widths: every batch passes block k
    // before block k+1.
    cached.batch_tokens = 64;
    streamed.batch_tokens = 64;
    let seqs: Vec<Vec<u32>> = [40usize, 7, 23, 2, 61, 9].iter().enumerate().map(|(i, &n)| ids(i as u64, n, vocab)).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let a = cached.token_logprobs_and_greedy(&refs).unwrap();
    let b = streamed.token_logprobs_and_greedy(&refs).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.logprobs, y.logprobs, "{name}: token log-probabilities of sequence {i}");
        assert_eq!(x.greedy, y.greedy, "{name}: greedy of sequence {i}");
    }
    // Continuations on the key/value cache, contexts of several widths in several batches.
    let contexts: Vec<Vec<u32>> = [30usize, 12, 2].iter().enumerate().map(|(i, &n)| ids(60 + i as u64, n, vocab)).collect();
    let rests: Vec<Vec<Vec<u32>>> = (0..contexts.len())
        .map(|g| [2usize, 6, 1].iter().enumerate().map(|(i, &n)| ids(80 + 10 * g as u64 + i as u64, n, vocab)).collect())
        .collect();
    let groups: Vec<ContinuationGroup> = contexts
        .iter()
        .zip(&rests)
        .map(|(c, rs)| ContinuationGroup { context: c, rests: rs.iter().map(|r| r.as_slice()).collect() })
        .collect();
    let (a, cost_a) = cached.score_continuation_groups(&groups).unwrap();
    let (b, cost_b) = streamed.score_continuation_groups(&groups).unwrap();
    // The same batches: the streamed path ran the contexts once, not each continuation whole.
    assert_eq!(cost_a, cost_b, "{name}: continuation batches");
    for (g, (x, y)) in a.iter().zip(&b).enumerate() {
        for (c, (p, q)) in x.iter().zip(y).enumerate() {
            assert!(p.logprobs.iter().all(|v| v.is_finite()), "{name}: group {g} continuation {c} scored");
            assert_eq!(p.logprobs, q.logprobs, "{name}: continuation log-likelihoods, group {g} continuation {c}");
            assert_eq!(p.greedy, q.greedy, "{name}: continuation greedy, group {g} continuation {c}");
        }
    }
    // Greedy decoding of prompts of different lengths in one batch, one row leaving midway
    // (its cache row is skipped from then on).
    let prompts: Vec<Vec<u32>> = [3usize, 17, 1].iter().enumerate().map(|(i, &n)| ids(40 + i as u64, n, vocab)).collect();
    let (mut x, mut y) = (DecodeBatch::new(prompts.clone()), DecodeBatch::new(prompts));
    for step in 0..8 {
        let (ta, ca) = cached.greedy_step(&mut x).unwrap();
        let (tb, cb) = streamed.greedy_step(&mut y).unwrap();
        assert_eq!(ta, tb, "{name}: greedy step {step}");
        assert_eq!(ca, cb, "{name}: positions run at step {step} (one token per row after the first)");
        if step == 3 {
            x.retain(&[true, false, true]);
            y.retain(&[true, false, true]);
        }
    }
    assert_eq!(x.ids(1), y.ids(1), "{name}: generated tokens");
}

/// Whole-head log-probabilities against the vocabulary-sliced head's: the whole head's f32
/// log-softmax and the slices' f32 log-sum-exps combined in f64 round differently, each
/// within a few units in the last place of values below 2^5 (1.9e-6 each there), so 1e-5
/// absolute plus 1e-6 relative; a slice skipped or counted twice moves a log-probability by
/// about log(2) or more, and a wrong target offset by far more.
fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (t, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite() && (x - y).abs() <= 1e-5 + 1e-6 * x.abs(), "{what}, token {t}: {x} against {y}");
    }
}

/// The streamed path with its output layer in `slices` vocabulary slices (the last one
/// shorter) against the cached path's whole head: the same log-probabilities within
/// [`assert_close`]'s bound, and the same argmax (the first of the largest logits, which
/// sliced sessions find as one session does) for scoring, continuations and greedy steps.
fn check_sliced(dir: &ModelDir, name: &str, slices: usize) {
    let (mut cached, mut sliced) = both_paths(dir);
    sliced.set_head_slices(slices);
    let vocab = dir.card.vocab_size;
    assert!(!vocab.is_multiple_of(slices), "{name}: a shorter last slice is part of the check");
    cached.batch_tokens = 64;
    sliced.batch_tokens = 64;
    let seqs: Vec<Vec<u32>> = [40usize, 7, 23, 2, 61].iter().enumerate().map(|(i, &n)| ids(i as u64, n, vocab)).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let a = cached.token_logprobs_and_greedy(&refs).unwrap();
    let b = sliced.token_logprobs_and_greedy(&refs).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_close(&x.logprobs, &y.logprobs, &format!("{name}: sliced head, sequence {i}"));
        assert_eq!(x.greedy, y.greedy, "{name}: sliced head's greedy of sequence {i}");
    }
    let contexts: Vec<Vec<u32>> = [30usize, 12, 2].iter().enumerate().map(|(i, &n)| ids(60 + i as u64, n, vocab)).collect();
    let rests: Vec<Vec<u32>> = [2usize, 6, 1].iter().enumerate().map(|(i, &n)| ids(80 + i as u64, n, vocab)).collect();
    let groups: Vec<ContinuationGroup> =
        contexts.iter().map(|c| ContinuationGroup { context: c, rests: rests.iter().map(|r| r.as_slice()).collect() }).collect();
    let (a, _) = cached.score_continuation_groups(&groups).unwrap();
    let (b, _) = sliced.score_continuation_groups(&groups).unwrap();
    for (g, (x, y)) in a.iter().zip(&b).enumerate() {
        for (c, (p, q)) in x.iter().zip(y).enumerate() {
            assert_close(&p.logprobs, &q.logprobs, &format!("{name}: sliced head, group {g} continuation {c}"));
            assert_eq!(p.greedy, q.greedy, "{name}: sliced head's continuation greedy, group {g} continuation {c}");
        }
    }
    let prompts: Vec<Vec<u32>> = [3usize, 17].iter().enumerate().map(|(i, &n)| ids(40 + i as u64, n, vocab)).collect();
    let (mut x, mut y) = (DecodeBatch::new(prompts.clone()), DecodeBatch::new(prompts));
    for step in 0..6 {
        assert_eq!(cached.greedy_step(&mut x).unwrap().0, sliced.greedy_step(&mut y).unwrap().0, "{name}: sliced head, greedy step {step}");
    }
}

#[test]
fn streamed_equals_cached_on_the_llama_fixture() {
    let out = common::temp_dir("streamed-llama");
    import_gguf(&common::model_fixture("tiny-llama").join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    let dir = ModelDir::open(&out).unwrap();
    check(&dir, "tiny-llama");
    check_sliced(&dir, "tiny-llama", 3);
    check_gradients(&dir, "tiny-llama");
    check_probe(&dir);
}

/// The probe behind `analyze subspace|neurons` and the probes analysis (one block's weights
/// resident at a time) under the least budget the plan accepts: batches hold at most the
/// plan's 512 tokens (4 of these sentences of up to 123 tokens, where the unbounded run takes all 8 in one), and
/// the pooled states and MLP activity counts are the same. Pooled states are f64 means of the same f32 block outputs at real positions (causal
/// attention keeps padding out), so they agree to f32 round-off of a 2-block fixture (~1e-6,
/// tests/fixture_models.rs), far below the spread between sentences; a budget below the
/// plan's streamed need is refused before any work.
fn check_probe(dir: &ModelDir) {
    use polyprune::analysis::probe::{probe, ProbeOptions, ProbeSentence};
    let vocab = dir.card.vocab_size;
    let sentences: Vec<ProbeSentence> = (0..8)
        .map(|i| ProbeSentence {
            language: ["a", "b"][i % 2].into(),
            id: (i / 2).to_string(),
            tokens: ids(300 + i as u64, 60 + 9 * i, vocab),
        })
        .collect();
    let unbounded = RuntimeOptions { max_memory: Some(u64::MAX), ..Default::default() };
    let plan = polyprune::eval::scorer::memory_plan(dir, &unbounded).unwrap().unwrap().unwrap();
    let run = |max_memory: u64| {
        let opts = ProbeOptions {
            layers: vec![0, 1],
            activity: true,
            batch: 64,
            runtime: RuntimeOptions { max_memory: Some(max_memory), ..Default::default() },
        };
        probe(dir, &sentences, &[], &opts, |_| {})
    };
    // The least budget the plan accepts: either path's need at one 512-token window.
    let least = plan.resident_bytes.min(plan.streamed_bytes);
    let tight = polyprune::model::memory::plan_within_budget(&dir.card, least, "--max-memory", 512, 64 * 512).unwrap();
    assert_eq!(tight.batch_tokens, 512, "{tight}");
    let (a, b) = (run(u64::MAX).unwrap(), run(least).unwrap());
    for (layer, x) in &a.pooled {
        let y = &b.pooled[layer];
        let worst = x.states.iter().zip(y.states.iter()).map(|(p, q)| (p - q).abs()).fold(0f64, f64::max);
        assert!(worst < 1e-5, "pooled states of block {layer}: {worst:e}");
    }
    assert_eq!(a.activity.unwrap().active, b.activity.unwrap().active, "MLP activity counts");
    let err = run(least - 1).err().expect("refused").to_string();
    assert!(err.contains("--max-memory"), "{err}");
}

/// SNIP's gradients and GraSP's `H g` (so their scores `|w g|` and `-w H g`) with one block's
/// weights read from the folder at a time, against the pass over the whole model in memory,
/// both in one thread (rayon then adds the windows' gradients in one order): the same
/// functions on the same f32 values, so equal bit for bit. A block read twice or the GraSP
/// step missed on a block would move them by far more than the last bit.
fn check_gradients(dir: &ModelDir, name: &str) {
    let vocab = dir.card.vocab_size;
    let windows: Vec<Vec<u32>> = (0..3).map(|i| ids(200 + i, 24, vocab)).collect();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (g, hg) = one_thread.install(|| {
        let w = DecoderWeights::<f32>::load(dir).unwrap();
        let g = w.loss_and_gradients(&windows, |_| {});
        let hg = w.hessian_gradient_product(&windows, &g, GRASP_DELTA, |_, _| {});
        (g, hg)
    });
    let (sg, shg) = one_thread.install(|| {
        let w = StreamedWeights::open(dir).unwrap();
        let g = w.loss_and_gradients::<f32>(&windows, |_| {}).unwrap();
        let hg = w.hessian_gradient_product(&windows, &g, GRASP_DELTA, |_, _| {}).unwrap();
        (g, hg)
    });
    assert!(g.norm() > 0.0 && hg.norm() > 0.0, "{name}: non-zero gradients");
    for (what, x, y) in [("gradient", &g, &sg), ("H g", &hg, &shg)] {
        assert_eq!(x.loss, y.loss, "{name}: loss of the {what} pass");
        for (k, (a, b)) in x.blocks.iter().zip(&y.blocks).enumerate() {
            assert_eq!(a.linear, b.linear, "{name}: {what} of block {k}");
        }
    }
}

/// Gemma 3: sliding-window and global blocks, q/k and sandwich norms, tied output layer.
#[test]
fn streamed_equals_cached_on_the_gemma3_fixture() {
    let out = common::temp_dir("streamed-gemma3");
    import_hf(&common::model_fixture("hf-gemma3-f32"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    let dir = ModelDir::open(&out).unwrap();
    check(&dir, "hf-gemma3");
    check_sliced(&dir, "hf-gemma3 (tied output layer)", 7);
}

/// Gemma 3 270M on the first 8 English FLORES (SIB-200) sentences: the same per-sentence NLLs
/// (so the same bits per byte), the same choice log-likelihoods on the key/value cache and the
/// same greedy continuations.
#[test]
fn streamed_equals_cached_on_gemma_3_270m() {
    let Some(model) = common::model("gemma-3-270m") else { return };
    let Some(shared) = common::shared() else { return };
    let text = std::fs::read_to_string(shared.join("data/sib200/eng_Latn/test.tsv")).unwrap();
    let docs: Vec<(String, String)> =
        text.lines().skip(1).take(8).enumerate().map(|(i, l)| (i.to_string(), l.split('\t').nth(2).unwrap().to_string())).collect();
    let dir = ModelDir::open(&model).unwrap();
    let (mut cached, mut streamed) = both_paths(&dir);
    let nll = |s: &mut Scorer| -> Vec<f64> {
        score_documents(s, &docs, WindowOptions::default(), |_| {}).unwrap().iter().map(|d| d.nll).collect()
    };
    assert_eq!(nll(&mut cached), nll(&mut streamed), "per-sentence NLL (bits per byte)");
    // SIB-200-style choices: each sentence a context, three topic names its continuations
    // (one of one token, others longer), scored on the key/value cache on both paths.
    let words = |text: &str| cached.tokenizer().encode(text, false).unwrap().get_ids().to_vec();
    let rests: Vec<Vec<u32>> = [" science", " travel and tourism", " entertainment news today"].iter().map(|t| words(t)).collect();
    assert!(rests.iter().any(|r| r.len() == 1) && rests.iter().any(|r| r.len() >= 3), "{rests:?}");
    let contexts: Vec<Vec<u32>> =
        docs.iter().take(4).map(|(_, text)| cached.encode(&format!("Topic of: {text} Answer:")).unwrap()).collect();
    let groups: Vec<ContinuationGroup> =
        contexts.iter().map(|c| ContinuationGroup { context: c, rests: rests.iter().map(|r| r.as_slice()).collect() }).collect();
    let (a, _) = cached.score_continuation_groups(&groups).unwrap();
    let (b, _) = streamed.score_continuation_groups(&groups).unwrap();
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!(x.logprobs.iter().all(|v| v.is_finite()));
        assert_eq!((&x.logprobs, &x.greedy), (&y.logprobs, &y.greedy), "choice log-likelihoods");
    }
    // Greedy text of two prompts of different lengths generated together.
    let prompts = vec![cached.encode("The capital of France is").unwrap(), cached.encode("One, two, three,").unwrap()];
    let (mut x, mut y) = (DecodeBatch::new(prompts.clone()), DecodeBatch::new(prompts));
    for _ in 0..3 {
        cached.greedy_step(&mut x).unwrap();
        streamed.greedy_step(&mut y).unwrap();
    }
    assert_eq!((x.ids(0), x.ids(1)), (y.ids(0), y.ids(1)), "greedy text");
}

/// The budget picks the path before anything loads: Gemma 3 270M resident when the budget
/// covers the plan's resident estimate, streamed one byte below it. Streamed, its largest
/// part is the output layer (the tied 262,144 x 640 f32 table):
/// one byte below that need the output layer runs in vocabulary slices, and those sliced
/// runs give the cached path's bits per byte on FLORES sentences (within the sliced head's
/// rounding, see `assert_close`, summed over a sentence's tokens). A budget below the
/// embedding's need, which slicing cannot shrink, is refused with the size it needs.
/// (Measured: sentence NLLs of 40 to 90 nats differ by 8e-6 to 4.6e-5.)
#[test]
fn a_budget_picks_the_path_and_one_too_small_for_a_part_is_refused() {
    let Some(model) = common::model("gemma-3-270m") else { return };
    let dir = ModelDir::open(&model).unwrap();
    let unbounded = RuntimeOptions { max_memory: Some(u64::MAX), ..Default::default() };
    let plan = polyprune::eval::scorer::memory_plan(&dir, &unbounded).unwrap().unwrap().unwrap();
    assert!(plan.streamed_bytes < plan.resident_bytes, "{plan}");
    let path_under = |budget: u64| {
        let opts = RuntimeOptions { max_memory: Some(budget), ..Default::default() };
        Scorer::load(&dir, &opts, &[]).map(|s| s.path())
    };
    assert_eq!(path_under(plan.resident_bytes).unwrap(), ScoringPath::Cached);
    assert_eq!(path_under(plan.resident_bytes - 1).unwrap(), ScoringPath::Streamed);
    assert_eq!((plan.largest_part.part.as_str(), plan.head_slices), ("output layer", 1), "{plan}");
    let tight = RuntimeOptions { max_memory: Some(plan.streamed_bytes - 1), ..Default::default() };
    let sliced_plan = polyprune::eval::scorer::memory_plan(&dir, &tight).unwrap().unwrap().unwrap();
    assert!(sliced_plan.head_slices == 2 && sliced_plan.peak_bytes < plan.streamed_bytes, "{sliced_plan}");
    let Some(shared) = common::shared() else { return };
    let text = std::fs::read_to_string(shared.join("data/sib200/eng_Latn/test.tsv")).unwrap();
    let docs: Vec<(String, String)> =
        text.lines().skip(1).take(4).enumerate().map(|(i, l)| (i.to_string(), l.split('\t').nth(2).unwrap().to_string())).collect();
    let nll = |s: &mut Scorer| -> Vec<f64> {
        score_documents(s, &docs, WindowOptions::default(), |_| {}).unwrap().iter().map(|d| d.nll).collect()
    };
    let mut sliced = Scorer::load(&dir, &tight, &[]).unwrap();
    assert_eq!(sliced.path(), ScoringPath::Streamed);
    let whole = nll(&mut Scorer::load(&dir, &RuntimeOptions::default(), &[]).unwrap());
    for (i, (x, y)) in whole.iter().zip(nll(&mut sliced)).enumerate() {
        assert!((x - y).abs() <= 1e-6 * x.abs() + 1e-4, "sentence {i}: NLL {x} whole, {y} sliced");
    }
    let small = 1u64 << 20;
    let err = path_under(small).expect_err("refused").to_string();
    assert!(err.contains("embedding") && err.contains("--max-memory") && err.contains("1 MiB"), "{err}");
}
