//! SNIP and GraSP within a memory budget against the same prune with everything in memory,
//! on the tiny Llama (f32) and the Hugging Face Llama fixture (bf16): the reverse pass reads
//! one block's weights at a time and spills each block's gradients (and GraSP's `H g`) as it
//! finishes them, each layer is scored from its weight and its spilled gradient, global scope
//! finds its cut by counting over the scores instead of holding them, and each block's pruned
//! weights are spilled.
//!
//! In one thread (so that rayon sums the windows' gradients in one order) the two paths run
//! the same arithmetic on the same values, so masks, the bytes each pruned weight hands the
//! runtime, a saved folder and `sparsity.csv` must be identical, bit for bit: a gradient read
//! back from the wrong block or layout, a GraSP step along the wrong block, or a global cut
//! off by one tie changes masks. The library's in-memory counter of weight-sized values
//! (`override_bytes_in_memory`, which every spilled gradient block and pruned block passes
//! through) shows at most one block's worth at a time, and every gradient file in the spill
//! folder, looked at while the pass runs, holds one block's layers.

mod common;

use std::path::Path;
use std::sync::Mutex;

use polyprune::calibrate::{CalibrationSet, CaptureMode, CaptureOptions};
use polyprune::model::memory::{prune_plan, CalibrationShape, PruneNeeds};
use polyprune::model::ModelDir;
use polyprune::prune::{Sparsity, SparsityTarget};
use polyprune::pruned::{prune_many, prune_many_with, save_pruned, LayerFilter, PruneJob, PrunedModel};
use polyprune::runtime::spill::{map_overrides, SpillDir};
use polyprune::runtime::{override_bytes_in_memory, reset_override_high_water, RuntimeOptions};
use polyprune::store::ResultsDir;

/// The in-memory byte counter is process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn tiny_llama() -> ModelDir {
    common::imported_tiny_llama("gradspill-llama")
}

fn hf_llama_bf16() -> ModelDir {
    common::imported_hf_llama_bf16("gradspill-hf-llama")
}

fn calibration(model: &ModelDir, shared: &Path) -> CalibrationSet {
    common::english_german_calibration(model, shared, 4, 11)
}

/// Every gradient method and scope, unstructured (where the scopes differ) and 2:4.
fn jobs() -> Vec<PruneJob> {
    let half = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
    let two_four = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
    ["snip", "grasp", "snip-global", "grasp-global"]
        .iter()
        .map(|m| PruneJob { method: m.parse().unwrap(), target: half })
        .chain(std::iter::once(PruneJob { method: "grasp-global".parse().unwrap(), target: two_four }))
        .collect()
}

/// The f32 bytes of the largest block's prunable layers: one block's gradients or pruned weights.
fn largest_block_bytes(model: &ModelDir) -> u64 {
    (0..model.card.blocks)
        .map(|k| model.card.layers.iter().filter(|l| l.block == k).map(|l| (l.shape[0] * l.shape[1] * 4) as u64).sum::<u64>())
        .max()
        .unwrap()
}

/// Every file of a folder, by relative path.
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

fn sparsity_csv(pruned: &PrunedModel) -> Vec<u8> {
    let dir = common::temp_dir("gradspill-sparsity");
    ResultsDir::at(&dir).write_sparsity(pruned).unwrap();
    let bytes = std::fs::read(dir.join("sparsity.csv")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn assert_same(model: &ModelDir, kept: &PrunedModel, spilled: &PrunedModel, what: &str) {
    assert_eq!(kept.layers.len(), spilled.layers.len(), "{what}");
    assert_eq!(kept.overrides.len(), spilled.overrides.len(), "{what}");
    for (a, b) in kept.layers.iter().zip(&spilled.layers) {
        assert_eq!(a.layer.name, b.layer.name, "{what}");
        assert_eq!(a.mask, b.mask, "{what}: mask of {}", a.layer.name);
    }
    for (a, b) in kept.overrides.iter().zip(&spilled.overrides) {
        assert!(!a.data.is_spilled() && b.data.is_spilled(), "{what}: {}", a.name);
        assert_eq!((&a.name, &a.shape, a.stored), (&b.name, &b.shape, b.stored), "{what}");
        assert!(a.data.stored_bytes(a.stored).unwrap() == b.data.stored_bytes(b.stored).unwrap(), "{what}: bytes of {}", a.name);
    }
    assert!(sparsity_csv(kept) == sparsity_csv(spilled), "{what}: sparsity.csv differs");
    let record = serde_json::json!({"method": what});
    let (x, y) = (common::temp_dir("gradspill-saved-kept"), common::temp_dir("gradspill-saved-spilled"));
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

/// The gradient files in the spill folder now: each must hold the layers of the block its
/// name gives, and only those. Returns how many there were.
fn check_gradient_files(folder: &Path) -> usize {
    let mut seen = 0;
    for e in std::fs::read_dir(folder).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name.starts_with("job") {
            continue;
        }
        let block: usize = name.rsplit('-').next().unwrap().parse().unwrap();
        let prefix = format!("blk.{block}.");
        let tensors = map_overrides(&path, None).unwrap();
        assert!(
            !tensors.is_empty() && tensors.iter().all(|t| t.name.starts_with(&prefix)),
            "{name}: {:?}",
            tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        seen += 1;
    }
    seen
}

fn check(model: &ModelDir, shared: &Path, name: &str) {
    let set = calibration(model, shared);
    let jobs = jobs();
    let block = largest_block_bytes(model);
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: 4, runtime: RuntimeOptions::default(), gram: false };
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let kept = one_thread.install(|| prune_many(model, &jobs, &LayerFilter::default(), Some(&set), &capture, |_, _, _| {}).unwrap());
    let parent = common::temp_dir("gradspill-parent");
    let spill = SpillDir::create(&parent).unwrap();
    let folder = spill.path().to_path_buf();
    let (before, _) = override_bytes_in_memory();
    reset_override_high_water();
    let mut gradient_files_seen = 0;
    let spilled = one_thread.install(|| {
        prune_many_with(model, &jobs, &LayerFilter::default(), Some(&set), &capture, Some(&spill), |_, _, _| {
            gradient_files_seen = gradient_files_seen.max(check_gradient_files(&folder));
        })
        .unwrap()
    });
    let (after, high) = override_bytes_in_memory();
    assert_eq!(after, before, "{name}: nothing weight-sized stays in memory");
    assert!(high - before <= block, "{name}: {} bytes in memory at once, one block is {block}", high - before);
    // While GraSP's second perturbed pass runs, g, H g so far and w + eps g are on disk.
    assert!(gradient_files_seen > model.card.blocks, "{name}: {gradient_files_seen} gradient files seen");
    // The gradient files go once the jobs are scored; each job's pruned blocks stay.
    let left: Vec<String> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(left.len(), jobs.len() * model.card.blocks, "{name}: {left:?}");
    assert!(left.iter().all(|f| f.starts_with("job")), "{name}: {left:?}");
    for (job, (a, b)) in jobs.iter().zip(kept.iter().zip(&spilled)) {
        assert_same(model, a, b, &format!("{name} {} {:?}", job.method.name(), job.target));
    }
    // Global scope really ranks across layers: the layers end at different sparsities.
    let global = &spilled[2].layers;
    assert!(
        global.iter().any(|l| l.mask.as_ref().unwrap().count_pruned() * 2 != l.report.total as usize),
        "{name}: snip-global pruned every layer to half"
    );
    drop(spill);
    drop(spilled);
    assert!(!folder.exists(), "{name}: the spill folder goes with its last reader");
    let _ = std::fs::remove_dir_all(&parent);
}

#[test]
fn spilled_snip_and_grasp_equal_the_resident_prune_on_the_tiny_llama_in_f32() {
    let Some(shared) = common::shared() else { return };
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = tiny_llama();
    check(&model, &shared, "tiny-llama");
    let _ = std::fs::remove_dir_all(&model.dir);
}

#[test]
fn spilled_snip_and_grasp_equal_the_resident_prune_on_the_hf_llama_in_bf16() {
    let Some(shared) = common::shared() else { return };
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = hf_llama_bf16();
    assert_eq!(model.card.matrix_type(), polyprune::runtime::FloatType::Bf16);
    check(&model, &shared, "hf-llama-bf16");
    let _ = std::fs::remove_dir_all(&model.dir);
}

/// The plan counts the gradient methods' steps: a budget one byte below SNIP's peak is
/// refused up front naming the step that needs it, the peak itself is accepted, and GraSP
/// (which also reads a block of `g` during its perturbed passes) needs more than SNIP.
#[test]
fn the_plan_refuses_a_budget_below_a_gradient_step_naming_it() {
    let model = tiny_llama();
    let shape = Some(CalibrationShape { windows: 4, seqlen: 32, batch: 4 });
    let snip = PruneNeeds { gradients: true, ..Default::default() };
    let grasp = PruneNeeds { hessian_gradient: true, ..snip };
    let plan = |budget: u64, needs: PruneNeeds| prune_plan(&model.card, budget, "--max-memory", shape, needs, true, |_| true);
    let peak = plan(u64::MAX, snip).unwrap();
    let err = plan(peak.peak_bytes - 1, snip).unwrap_err().to_string();
    assert!(err.contains(&peak.peak_part) && err.contains("give --max-memory"), "{err}");
    assert!(plan(peak.peak_bytes, snip).is_ok());
    let without = plan(u64::MAX, PruneNeeds::default()).unwrap();
    assert!(peak.peak_bytes > without.peak_bytes, "{peak} vs {without}");
    let g = plan(u64::MAX, grasp).unwrap();
    assert!(g.peak_bytes > peak.peak_bytes, "{g} vs {peak}");
    let _ = std::fs::remove_dir_all(&model.dir);
}

/// The pruning-error analysis within a budget: the plan's peak is accepted and gives the same
/// grid as the run without a budget, value for value (the pass already runs one block's graph
/// and Grams at a time); a byte less is refused before any work, naming the part.
#[test]
fn the_pruning_error_analysis_within_its_planned_budget_equals_the_unbudgeted_one() {
    use polyprune::analysis::pruning_error::{check_budget, error_grid, Candidate};
    let Some(shared) = common::shared() else { return };
    // Its pruned weights pass the in-memory counter the other tests read.
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = tiny_llama();
    let set = calibration(&model, &shared);
    let capture = |max_memory: Option<u64>| CaptureOptions {
        mode: CaptureMode::OneShot,
        batch: 4,
        runtime: RuntimeOptions { max_memory, ..Default::default() },
        gram: true,
    };
    let half = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
    let job = PruneJob { method: "wanda".parse().unwrap(), target: half };
    let pruned = prune_many(&model, &[job], &LayerFilter::default(), Some(&set), &capture(None), |_, _, _| {}).unwrap().remove(0);
    let saved = common::temp_dir("gradspill-error-saved");
    save_pruned(&model, &pruned, &saved, &serde_json::json!({"method": "wanda"})).unwrap();
    let candidates = vec![Candidate::from_model("wanda", &saved).unwrap()];
    let texts = vec![("eng_Latn".to_string(), set)];
    let grid = |max_memory: Option<u64>| error_grid(&model, &texts, &candidates, &capture(max_memory), |_, _| {});
    let free = grid(None).unwrap();
    assert_eq!(free.len(), model.card.layers.len());
    assert!(free.iter().all(|r| r.relative_error > 0.0 && r.relative_error < 1.0), "{free:?}");
    let plan = check_budget(&model, &texts, &capture(Some(u64::MAX))).unwrap().unwrap();
    let within = grid(Some(plan.peak_bytes)).unwrap();
    assert_eq!(serde_json::to_string(&free).unwrap(), serde_json::to_string(&within).unwrap());
    let err = grid(Some(plan.peak_bytes - 1)).unwrap_err().to_string();
    assert!(err.contains(&plan.peak_part) && err.contains("give --max-memory"), "{err}");
    let _ = std::fs::remove_dir_all(&saved);
    let _ = std::fs::remove_dir_all(&model.dir);
}
