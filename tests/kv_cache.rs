//! The key/value-cache path against the full-sequence path, on the same weights: the tiny
//! Llama, Qwen2 and Cohere (Command-R) fixtures (generated cache graphs, batching, right padding, greedy steps) and
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
use polyprune::eval::scorer::{ContinuationGroup, DecodeBatch, PathChoice, ScoringPath};
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
    // The context runs once and predicts every first token; the three longer continuations run
    // their other tokens as one batch padded to 11; the one-token continuation runs nothing.
    assert_eq!(cost.tokens, 30 + 3 * 11, "{name}: the context runs once");
    let (b, _) = full.score_continuations(&context, &rest_refs).unwrap();
    for ((x, y), r) in a.iter().zip(&b).zip(&rests) {
        assert_eq!(x.logprobs.len(), r.len());
        assert!(max_abs_diff(&x.logprobs, &y.logprobs) < 1e-5, "{name}: continuation");
        assert_eq!(x.greedy, y.greedy, "{name}: continuation greedy");
    }
    // The continuations of several contexts of different lengths in one call: the shorter
    // contexts' pasts are right-padded in the prefix batch and their continuations share
    // continuation batches, so padding keys must stay invisible (key_positions).
    let contexts: Vec<Vec<u32>> = [30usize, 12, 45, 2].iter().enumerate().map(|(i, &n)| ids(60 + i as u64, n, vocab)).collect();
    let group_rests: Vec<Vec<Vec<u32>>> = (0..contexts.len())
        .map(|g| [2usize, 6, 1].iter().enumerate().map(|(i, &n)| ids(80 + 10 * g as u64 + i as u64, n, vocab)).collect())
        .collect();
    let groups: Vec<ContinuationGroup> = contexts
        .iter()
        .zip(&group_rests)
        .map(|(c, rs)| ContinuationGroup { context: c, rests: rs.iter().map(|r| r.as_slice()).collect() })
        .collect();
    let (a, cost) = cached.score_continuation_groups(&groups).unwrap();
    assert_eq!(cost.runs, 1 + 1, "{name}: one prefix batch, one continuation batch: {cost:?}");
    for (g, group) in groups.iter().enumerate() {
        let (b, _) = full.score_continuations(group.context, &group.rests).unwrap();
        for (x, y) in a[g].iter().zip(&b) {
            assert!(max_abs_diff(&x.logprobs, &y.logprobs) < 1e-5, "{name}: group {g}");
            assert_eq!(x.greedy, y.greedy, "{name}: group {g} greedy");
        }
    }
    // Greedy decoding, several prompts of different lengths decoded as one batch, rows leaving
    // it on the way, against each sequence decoded alone on the full-sequence path.
    let prompts: Vec<Vec<u32>> = [3usize, 17, 8, 1].iter().enumerate().map(|(i, &n)| ids(40 + i as u64, n, vocab)).collect();
    let mut batch = DecodeBatch::new(prompts.clone());
    let mut alone: Vec<DecodeBatch> = prompts.iter().map(|p| DecodeBatch::new(vec![p.clone()])).collect();
    let mut left: Vec<usize> = (0..prompts.len()).collect();
    for step in 0..20 {
        let (ta, cost) = cached.greedy_step(&mut batch).unwrap();
        assert_eq!(cost.tokens, if step == 0 { 4 * 17 } else { left.len() }, "{name}: step {step} runs one token per row");
        for (&row, t) in left.iter().zip(&ta) {
            let (tb, _) = full.greedy_step(&mut alone[row]).unwrap();
            assert_eq!(*t, tb[0], "{name}: greedy step {step}, row {row}");
        }
        // Row 1 leaves after step 4, row 3 after step 9.
        if step == 4 || step == 9 {
            let gone = if step == 4 { 1 } else { 3 };
            let keep: Vec<bool> = left.iter().map(|&r| r != gone).collect();
            batch.retain(&keep);
            left.retain(|&r| r != gone);
        }
    }
    for (i, &row) in left.iter().enumerate() {
        assert_eq!(batch.ids(i), alone[row].ids(0), "{name}: row {row}");
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

/// Command-R: parallel blocks on one LayerNorm and scaled logits, in the cached graphs too.
#[test]
fn cache_path_equals_full_sequence_on_tiny_cohere() {
    check_fixture("tiny-cohere");
}

fn gemma() -> Option<(PathBuf, ModelDir)> {
    let shared = required(common::shared(), "../shared/data")?;
    let model = required(common::model("gemma-3-270m"), ".cache/models/gemma-3-270m")?;
    Some((shared, ModelDir::open(&model).unwrap()))
}

fn choice_examples(shared: &Path, task: TaskName, lang: &str, shots: usize, n: usize) -> Vec<Example> {
    let opts = LoadOptions { shots, ..LoadOptions::default() };
    match load(task, lang, &shared.join("data"), &opts).unwrap().items {
        TaskItems::Choice(v) => v.into_iter().take(n).collect(),
        TaskItems::Generation(_) => panic!("{task} is not a choice task"),
    }
}

/// Per-choice log-likelihoods within 2e-3 nats and identical predictions, over every
/// multiple-choice family in `../shared/data` (XCOPA, XWinograd's partial scoring, SIB-200
/// zero- and few-shot, translation choice on Tatoeba and FLORES) in several scripts.
/// The bound: a continuation's log-likelihood sums up to ~30 token log-probabilities, each
/// a log-softmax over 262,144 logits of magnitude ~30 after 18 f32 blocks; f32 round-off
/// in one logit is ~30 x 6e-8 x sqrt(2048) x 18 ≈ 1e-3 at worst and ~1e-5 typically, and
/// errors of different tokens do not add coherently. A real fault (a rotary table at the
/// wrong offset, a window counted from the continuation) moves a log-likelihood by >0.1.
#[test]
fn gemma_choices_equal_the_full_sequence_path_in_every_family() {
    let Some((shared, dir)) = gemma() else { return };
    let mut examples = Vec::new();
    examples.extend(choice_examples(&shared, TaskName::Xcopa, "zh", 0, 15));
    examples.extend(choice_examples(&shared, TaskName::Xcopa, "sw", 2, 10));
    examples.extend(choice_examples(&shared, TaskName::Xwinograd, "en", 0, 20));
    examples.extend(choice_examples(&shared, TaskName::Xwinograd, "fr", 0, 10));
    examples.extend(choice_examples(&shared, TaskName::Sib200, "eng_Latn", 0, 10));
    examples.extend(choice_examples(&shared, TaskName::Sib200, "arb_Arab", 1, 4));
    examples.extend(choice_examples(&shared, TaskName::Sib200, "zho_Hans", 0, 5));
    examples.extend(choice_examples(&shared, TaskName::Tatoeba, "ara-eng", 0, 10));
    examples.extend(choice_examples(&shared, TaskName::Tatoeba, "rus-eng", 0, 10));
    examples.extend(choice_examples(&shared, TaskName::Flores, "eng_Latn-deu_Latn", 0, 10));
    let (mut cached, mut full) = both_paths(&dir);
    let t0 = std::time::Instant::now();
    let (a, sa) = score_examples(&mut cached, &examples, |_| {}).unwrap();
    let t_cached = t0.elapsed();
    let t0 = std::time::Instant::now();
    let (b, sb) = score_examples(&mut full, &examples, |_| {}).unwrap();
    let t_full = t0.elapsed();
    assert_eq!(sa.requests, sb.requests);
    let mut worst = 0f64;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.id, y.id);
        for (lx, ly) in x.lls.iter().zip(&y.lls) {
            worst = worst.max((lx - ly).abs());
        }
        assert_eq!((x.pred, x.pred_norm, x.pred_bytes), (y.pred, y.pred_norm, y.pred_bytes), "{}", x.id);
        assert_eq!(x.greedy, y.greedy, "{}", x.id);
        assert_eq!(x.tokens, y.tokens, "{}", x.id);
    }
    eprintln!(
        "{} choices: max |ΔLL| = {worst:.2e}; cached {t_cached:.1?} ({} positions), full {t_full:.1?} ({} positions)",
        sa.requests, sa.tokens_run, sb.tokens_run
    );
    assert!(sa.requests >= 300, "{} choices", sa.requests);
    assert!(worst < 2e-3, "max |ΔLL| {worst}");
    assert!(sa.tokens_run < sb.tokens_run);
}

fn flores(shared: &Path, lang: &str, n: usize) -> Vec<(String, String)> {
    common::sib200_sentences(shared, lang, "test", n).into_iter().enumerate().map(|(i, t)| (format!("{lang}/{i}"), t)).collect()
}

/// Bits per byte within 1e-4 of the full-sequence path on FLORES sentences in four scripts
/// and on one document longer than Gemma's 512-token window (scored in 512-token windows, so
/// the sliding-window layers see their whole window). Per token the two paths agree to f32
/// round-off (~1e-5 nats), and bits per byte averages it over thousands of bytes.
#[test]
fn gemma_perplexity_equals_the_full_sequence_path() {
    let Some((shared, dir)) = gemma() else { return };
    let (mut cached, mut full) = both_paths(&dir);
    let mut docs = Vec::new();
    for lang in ["eng_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab"] {
        docs.extend(flores(&shared, lang, 10));
    }
    let long: Vec<String> = flores(&shared, "deu_Latn", 40).into_iter().map(|d| d.1).collect();
    docs.push(("deu/long".into(), long.join(" ")));
    let opts = WindowOptions::default();
    let a = score_documents(&mut cached, &docs, opts, |_| {}).unwrap();
    let b = score_documents(&mut full, &docs, opts, |_| {}).unwrap();
    assert!(a.last().unwrap().tokens > 600, "the long document spans more than one window");
    let bpb = |d: &[polyprune::eval::DocumentScore]| {
        d.iter().map(|x| x.nll).sum::<f64>() / std::f64::consts::LN_2 / d.iter().map(|x| x.bytes).sum::<usize>() as f64
    };
    let mut worst = 0f64;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.tokens, y.tokens);
        worst = worst.max((x.nll - y.nll).abs() / std::f64::consts::LN_2 / x.bytes as f64);
    }
    eprintln!("bits per byte: cached {:.6}, full {:.6}; worst document |Δ| {worst:.2e}", bpb(&a), bpb(&b));
    assert!((bpb(&a) - bpb(&b)).abs() < 1e-4);
    assert!(worst < 1e-4, "worst document |Δ bits per byte| {worst}");
}

/// A context longer than the 512-token window, continued: the local layers must count their
/// window in absolute positions across past and new tokens. Same f32 argument as above; the
/// bound is per token.
#[test]
fn gemma_long_context_continuations_equal_the_full_sequence_path() {
    let Some((shared, dir)) = gemma() else { return };
    let (mut cached, mut full) = both_paths(&dir);
    let text: Vec<String> = flores(&shared, "eng_Latn", 30).into_iter().map(|d| d.1).collect();
    let ids = cached.encode(&text.join(" ")).unwrap();
    assert!(ids.len() > 560, "{} tokens", ids.len());
    let (context, tail) = ids[..560].split_at(500);
    // Continuations crossing position 512, of several lengths (right padding).
    let rests: Vec<&[u32]> = vec![tail, &tail[..3], &tail[10..40], &tail[..1]];
    let (a, _) = cached.score_continuations(context, &rests).unwrap();
    let (b, _) = full.score_continuations(context, &rests).unwrap();
    let mut worst = 0f64;
    for (x, y) in a.iter().zip(&b) {
        worst = worst.max(max_abs_diff(&x.logprobs, &y.logprobs));
        assert_eq!(x.greedy, y.greedy);
    }
    eprintln!("long context: max |Δ log p| per token {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");
    // Greedy decoding from a 505-token prompt past position 512, batched with a shorter one.
    let mut batch = DecodeBatch::new(vec![ids[..505].to_vec(), ids[..200].to_vec()]);
    let mut alone = [DecodeBatch::new(vec![ids[..505].to_vec()]), DecodeBatch::new(vec![ids[..200].to_vec()])];
    for _ in 0..16 {
        let (ta, _) = cached.greedy_step(&mut batch).unwrap();
        for (t, one) in ta.iter().zip(alone.iter_mut()) {
            assert_eq!(*t, full.greedy_step(one).unwrap().0[0]);
        }
    }
}

/// MGSM generation: the same text, token for token, from both paths, with the cached one
/// running each prompt once and then one position per new token.
#[test]
fn gemma_mgsm_generation_equals_the_full_sequence_path() {
    let Some((shared, dir)) = gemma() else { return };
    let (mut cached, mut full) = both_paths(&dir);
    let mut items: Vec<GenerationExample> = Vec::new();
    for (lang, shots) in [("en", 0), ("de", 0), ("en", 2)] {
        let opts = LoadOptions { shots, ..LoadOptions::default() };
        match load(TaskName::Mgsm, lang, &shared.join("data"), &opts).unwrap().items {
            TaskItems::Generation(v) => items.extend(v.into_iter().take(2)),
            TaskItems::Choice(_) => panic!("mgsm is a generation task"),
        }
    }
    let requests: Vec<(&str, &polyprune::tasks::GenerationRequest)> = items.iter().map(|e| (e.id.as_str(), &e.request)).collect();
    let (a, sa) = generate(&mut cached, &requests, Some(48), |_| {}).unwrap();
    let (b, sb) = generate(&mut full, &requests, Some(48), |_| {}).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    let new: usize = a.iter().map(|g| g.new_tokens).sum();
    let prompts: usize = a.iter().map(|g| g.prompt_tokens).sum();
    eprintln!(
        "mgsm: {new} new tokens; positions run: cached {} ({} prompt, {} steps), full {}",
        sa.tokens_run, sa.prompt_positions, sa.step_positions, sb.tokens_run
    );
    // Each prompt runs once (right-padded to its batch's longest prompt), then every later step
    // runs one position per row: the first new token comes from the prompt's run.
    let longest = a.iter().map(|g| g.prompt_tokens).max().unwrap();
    assert!(sa.prompt_positions >= prompts && sa.prompt_positions <= a.len() * longest, "{sa:?}");
    assert_eq!(sa.step_positions, new - a.len(), "one position per new token after the first");
    assert_eq!(sa.tokens_run, sa.prompt_positions + sa.step_positions);
}
