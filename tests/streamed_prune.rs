//! A whole-model prune whose pruned weights leave memory block by block (a spill folder of
//! safetensors files, in the folder's stored type, read back through a memory map) against the
//! same prune kept in memory: Wanda, SparseGPT and Magnitude, sequential and one-shot,
//! unstructured and 2:4, on the tiny Llama (f32) and the Hugging Face Llama fixture (bf16).
//!
//! Sequential calibration runs block k+1 on the pruned block k, read back from the spill file;
//! the runtime takes a weight in its stored type either way, so the masks, the bytes each
//! replacement hands the runtime, a saved folder's files and the scores must be identical,
//! bit for bit: one wrong byte read back (offset, type, layout) moves a whole layer. The
//! in-memory override bytes are counted by the library (`override_bytes_in_memory`): a spilled
//! run never holds more than one block's replacements in f32, a kept run holds all of them.

mod common;

use std::path::Path;
use std::sync::Mutex;

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::Language;
use polyprune::eval::scorer::PathChoice;
use polyprune::eval::Scorer;
use polyprune::model::ModelDir;
use polyprune::prune::{Sparsity, SparsityTarget};
use polyprune::pruned::{prune_many, prune_many_with, save_pruned, LayerFilter, PruneJob, PrunedModel};
use polyprune::runtime::spill::SpillDir;
use polyprune::runtime::{override_bytes_in_memory, reset_override_high_water, RuntimeOptions};

/// The in-memory byte counter is process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn tiny_llama() -> ModelDir {
    common::imported_tiny_llama("spill-llama")
}

fn hf_llama_bf16() -> ModelDir {
    common::imported_hf_llama_bf16("spill-hf-llama")
}

fn calibration(model: &ModelDir, shared: &Path) -> CalibrationSet {
    common::english_german_calibration(model, shared, 6, 7)
}

fn jobs() -> Vec<PruneJob> {
    let half = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
    let two_four = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
    vec![
        PruneJob { method: "wanda".parse().unwrap(), target: half },
        PruneJob { method: "sparsegpt".parse().unwrap(), target: half },
        PruneJob { method: "wanda".parse().unwrap(), target: two_four },
        PruneJob { method: "sparsegpt".parse().unwrap(), target: two_four },
        PruneJob { method: "magnitude".parse().unwrap(), target: half },
    ]
}

/// The f32 bytes of the largest block's prunable layers: what one block's replacements take.
fn largest_block_bytes(model: &ModelDir) -> u64 {
    (0..model.card.blocks)
        .map(|k| model.card.layers.iter().filter(|l| l.block == k).map(|l| (l.shape[0] * l.shape[1] * 4) as u64).sum::<u64>())
        .max()
        .unwrap()
}

fn all_layer_bytes(model: &ModelDir) -> u64 {
    model.card.layers.iter().map(|l| (l.shape[0] * l.shape[1] * 4) as u64).sum()
}

/// Every file of a folder (masks included), by relative path.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn assert_same(model: &ModelDir, kept: &PrunedModel, spilled: &PrunedModel, what: &str) {
    assert_eq!(kept.layers.len(), spilled.layers.len(), "{what}");
    assert_eq!(kept.overrides.len(), spilled.overrides.len(), "{what}");
    for (a, b) in kept.layers.iter().zip(&spilled.layers) {
        assert_eq!(a.layer.name, b.layer.name, "{what}");
        assert_eq!(a.mask, b.mask, "{what}: mask of {}", a.layer.name);
        assert_eq!(a.report.zero_count(), b.report.zero_count(), "{what}: zeros of {}", a.layer.name);
    }
    for (a, b) in kept.overrides.iter().zip(&spilled.overrides) {
        assert!(!a.data.is_spilled() && b.data.is_spilled(), "{what}: {}", a.name);
        assert_eq!((&a.name, &a.shape, a.stored), (&b.name, &b.shape, b.stored), "{what}");
        // What the runtime and a saved folder get: the value in the stored type.
        assert!(a.data.stored_bytes(a.stored).unwrap() == b.data.stored_bytes(b.stored).unwrap(), "{what}: bytes of {}", a.name);
    }
    let record = serde_json::json!({"method": what});
    let (x, y) = (common::temp_dir("spill-saved-kept"), common::temp_dir("spill-saved-spilled"));
    save_pruned(model, kept, &x, &record).unwrap();
    save_pruned(model, spilled, &y, &record).unwrap();
    let (fx, fy) = (files(&x), files(&y));
    assert_eq!(fx.iter().map(|f| &f.0).collect::<Vec<_>>(), fy.iter().map(|f| &f.0).collect::<Vec<_>>(), "{what}");
    for (a, b) in fx.iter().zip(&fy) {
        assert!(a.1 == b.1, "{what}: saved {} differs", a.0);
    }
    let _ = std::fs::remove_dir_all(&x);
    let _ = std::fs::remove_dir_all(&y);
}

fn check(model: &ModelDir, shared: &Path, name: &str) {
    let set = calibration(model, shared);
    let jobs = jobs();
    let block = largest_block_bytes(model);
    for mode in [CaptureMode::Sequential, CaptureMode::OneShot] {
        let capture = CaptureOptions { mode, batch: 4, runtime: RuntimeOptions::default(), gram: false };
        reset_override_high_water();
        let kept = prune_many(model, &jobs, &LayerFilter::default(), Some(&set), &capture, |_, _, _| {}).unwrap();
        let (_, kept_high) = override_bytes_in_memory();
        // Every job's replacements at once: the counter sees what is really held.
        assert!(kept_high >= jobs.len() as u64 * all_layer_bytes(model), "{name} {mode:?}: {kept_high}");
        let parent = common::temp_dir("spill-parent");
        let spill = SpillDir::create(&parent).unwrap();
        let folder = spill.path().to_path_buf();
        let (before, _) = override_bytes_in_memory();
        reset_override_high_water();
        let spilled = prune_many_with(model, &jobs, &LayerFilter::default(), Some(&set), &capture, Some(&spill), |_, _, _| {}).unwrap();
        let (after, high) = override_bytes_in_memory();
        assert_eq!(after, before, "{name} {mode:?}: no replacement stays in memory");
        assert!(high - before <= block, "{name} {mode:?}: {} bytes in memory at once, one block is {block}", high - before);
        // One file per job and block.
        let count =
            std::fs::read_dir(&folder).unwrap().filter(|e| e.as_ref().unwrap().path().extension() == Some("safetensors".as_ref())).count();
        assert_eq!(count, jobs.len() * model.card.blocks, "{name} {mode:?}");
        for (job, (a, b)) in jobs.iter().zip(kept.iter().zip(&spilled)) {
            assert_same(model, a, b, &format!("{name} {mode:?} {} {:?}", job.method.name(), job.target));
        }
        // The pruned model scores the same from spilled weights as from kept ones (streamed:
        // each block's replacements read back when its graph loads).
        let ids: Vec<Vec<u32>> = set.windows.iter().take(3).cloned().collect();
        let seqs: Vec<&[u32]> = ids.iter().map(|s| s.as_slice()).collect();
        let opts = RuntimeOptions::default();
        let score =
            |p: &PrunedModel| Scorer::load_with(model, &opts, &p.overrides, PathChoice::Streamed).unwrap().token_logprobs(&seqs).unwrap();
        assert_eq!(score(&kept[1]), score(&spilled[1]), "{name} {mode:?}: SparseGPT's scores");
        drop(spill);
        assert!(folder.is_dir(), "the spilled overrides still read from it");
        drop(spilled);
        assert!(!folder.exists(), "{name}: the spill folder goes with its last reader");
        let _ = std::fs::remove_dir_all(&parent);
    }
}

#[test]
fn spilled_prune_equals_the_kept_prune_on_the_tiny_llama_in_f32() {
    let Some(shared) = common::shared() else { return };
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = tiny_llama();
    check(&model, &shared, "tiny-llama");
    let _ = std::fs::remove_dir_all(&model.dir);
}

#[test]
fn spilled_prune_equals_the_kept_prune_on_the_hf_llama_in_bf16() {
    let Some(shared) = common::shared() else { return };
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = hf_llama_bf16();
    assert_eq!(model.card.matrix_type(), polyprune::runtime::FloatType::Bf16);
    check(&model, &shared, "hf-llama-bf16");
    let _ = std::fs::remove_dir_all(&model.dir);
}

/// The workflow: under a budget that streams the model, `prune` spills (under the results
/// folder, gone when the run's result is dropped) and saves the same folder, masks and
/// perplexity as with a budget that keeps everything. Gemma 3 270M (18 blocks, its real
/// tokenizer), one-shot Wanda on 8 x 64 windows.
#[test]
fn prune_on_gemma_3_270m_within_a_streaming_budget_saves_what_the_kept_run_saves() {
    use polyprune::workflow::prune::{prune, PerplexityCheck, PruneOptions};
    let Some(shared) = common::shared() else { return };
    let Some(gemma) = common::model("gemma-3-270m") else { return };
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = ModelDir::open(&gemma).unwrap();
    let scoring = polyprune::model::memory::plan(&dir.card, u64::MAX, "test", 2048, 512, 64 * 512).unwrap();
    // A budget 16 MiB below the resident estimate streams the model (as make bench-scale does).
    let streaming = scoring.resident_bytes - (16 << 20);
    let run = |budget: u64, tag: &str| {
        let results = common::temp_dir(&format!("spill-results-{tag}"));
        let save = results.join("saved");
        let opts = PruneOptions {
            model: gemma.clone(),
            methods: vec!["wanda".parse().unwrap()],
            sparsity: Some(Sparsity::new(0.5).unwrap()),
            pattern: "unstructured".parse().unwrap(),
            calibration: Some(CalibrationSpec {
                languages: vec![Language::parse("eng_Latn").unwrap()],
                mix: Mix::Even,
                samples: 8,
                seqlen: 64,
                seed: 3,
                source: Some("flores".into()),
            }),
            flores: Some(shared.join("data/sib200")),
            mode: CaptureMode::OneShot,
            batch: 4,
            filter: LayerFilter::default(),
            runtime: RuntimeOptions { max_memory: Some(budget), ..Default::default() },
            results: results.clone(),
            save: Some(save.clone()),
            evaluate: Some(PerplexityCheck { languages: vec!["eng_Latn".into()], source: Some("flores".into()), limit: Some(2) }),
        };
        let plan = polyprune::workflow::prune::prune_memory_plan(&opts, &dir).unwrap().unwrap();
        let outcome = prune(&opts, &mut polyprune::progress::Silent).unwrap();
        let scores: Vec<f64> = outcome.runs[0].perplexity.iter().map(|s| s.nll()).collect();
        drop(outcome);
        let leftovers: Vec<_> = std::fs::read_dir(results.join("prune"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("spill-"))
            .collect();
        assert!(leftovers.is_empty(), "{tag}: {leftovers:?} left behind");
        // The record holds the run's timings; everything else must match.
        let saved: Vec<(String, Vec<u8>)> = files(&save).into_iter().filter(|f| f.0 != "pruning.json").collect();
        (plan.spill, saved, scores, results)
    };
    let (kept_spill, kept, kept_scores, a) = run(1 << 40, "kept");
    let (spilled_spill, spilled, spilled_scores, b) = run(streaming, "streamed");
    assert!(!kept_spill && spilled_spill, "the streaming budget spills, the large one keeps");
    assert_eq!(kept.iter().map(|f| &f.0).collect::<Vec<_>>(), spilled.iter().map(|f| &f.0).collect::<Vec<_>>());
    for (x, y) in kept.iter().zip(&spilled) {
        assert!(x.1 == y.1, "saved {} differs", x.0);
    }
    assert_eq!(kept_scores, spilled_scores, "perplexity after pruning");
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}
