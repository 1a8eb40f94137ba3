//! Calibrate and prune end to end on a small real model (the tiny Llama fixture, imported from
//! GGUF) and real text (FLORES sentences from ../shared).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use polyprune::calibrate::{
    capture_and_prune, CalibrationError, CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, LayerPruner, Mix,
};
use polyprune::data::{Language, SourceLocations, TextRegistry};
use polyprune::eval::Scorer;
use polyprune::model::graph::{read_model, with_heads_and_outputs};
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::model::{LinearLayer, ModelDir};
use polyprune::prune::{InputStatistics, Method, Sparsity, SparsityTarget};
use polyprune::pruned::{
    overrides_from_mask_dir, overrides_from_masks, prune_many, prune_model, read_masks, save_pruned, LayerFilter, PruneJob,
};
use polyprune::runtime::{Graph, GraphSource, Input, OutputView, RuntimeOptions, WeightOverride};

fn tiny_llama() -> ModelDir {
    let out = common::temp_dir("prune-llama");
    import_gguf(&common::model_fixture("tiny-llama").join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    ModelDir::open(&out).unwrap()
}

fn registry(shared: &std::path::Path) -> TextRegistry {
    TextRegistry::new(SourceLocations { flores_root: shared.join("data/sib200"), ..SourceLocations::for_project(&common::repo()) })
}

fn spec(langs: &[&str], seed: u64, samples: usize) -> CalibrationSpec {
    CalibrationSpec {
        languages: langs.iter().map(|l| Language::parse(l).unwrap()).collect(),
        mix: Mix::Even,
        samples,
        seqlen: 32,
        seed,
        source: Some("flores".into()),
    }
}

fn draw(model: &ModelDir, shared: &std::path::Path, spec: &CalibrationSpec) -> CalibrationSet {
    let tok = model.tokenizer().unwrap();
    CalibrationSet::draw(spec, &registry(shared), &tok, model.card.start_token().unwrap()).unwrap()
}

fn capture_opts(mode: CaptureMode) -> CaptureOptions {
    CaptureOptions { mode, batch: 3, runtime: RuntimeOptions::default(), gram: true }
}

/// Wanda at 50%, recording the statistics each block was pruned from.
struct Recording {
    inner_method: Method,
    store: polyprune::model::weights::WeightStore,
    seen: BTreeMap<usize, BTreeMap<String, InputStatistics>>,
}

impl LayerPruner for Recording {
    fn prune_block(
        &mut self,
        block: usize,
        layers: &[LinearLayer],
        statistics: &mut BTreeMap<String, InputStatistics>,
    ) -> Result<Vec<WeightOverride>, CalibrationError> {
        self.seen.insert(block, statistics.clone());
        let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
        let mut out = Vec::new();
        for l in layers {
            let [d_in, d_out] = l.shape;
            let stored = self.store.read(&l.name)?;
            let rows = polyprune::model::import::transpose(&stored, d_in, d_out);
            let w = polyprune::prune::LinearWeight::new(&l.name, d_out, d_in, rows).unwrap();
            let r = self.inner_method.prune(&l.name, &w, statistics.get(&l.input), target).unwrap();
            let mut data = w.into_data();
            r.mask.apply(&mut data).unwrap();
            out.push(WeightOverride {
                name: l.name.clone(),
                shape: vec![d_in, d_out],
                data: polyprune::runtime::OverrideData::in_memory(polyprune::model::import::transpose(&data, d_out, d_in)),
                stored: polyprune::runtime::FloatType::F32,
            });
        }
        Ok(out)
    }
}

/// Block 1's statistics in sequential mode equal those from running the whole model, with block
/// 0 pruned, and reading block 1's layer inputs out of it: the per-block graphs and the
/// sequential hand-over compute what the full model would. Tolerance 1e-4 relative: the same
/// float32 operations run in two differently optimised graphs (~1e-6 apart).
#[test]
fn sequential_statistics_equal_a_full_pruned_forward() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let set = draw(&model, &shared, &spec(&["eng_Latn"], 0, 7));
    let store = polyprune::model::weights::WeightStore::open(&model.dir, "model.onnx").unwrap();
    let mut rec = Recording { inner_method: Method::Wanda, store, seen: BTreeMap::new() };
    let (overrides, _) = capture_and_prune(&model, &set, &capture_opts(CaptureMode::Sequential), &mut rec, |_, _| {}).unwrap();
    let block0: Vec<WeightOverride> = overrides.iter().filter(|o| o.name.starts_with("blk.0.")).cloned().collect();
    assert_eq!(block0.len(), 7);

    let taps: Vec<String> = rec.seen[&1].keys().cloned().collect();
    assert_eq!(taps.len(), 4, "q/k/v share one input, gate/up another");
    let full = with_heads_and_outputs(&read_model(&model.graph_path()).unwrap(), false, &taps);
    let bytes = prost::Message::encode_to_vec(&full);
    let mut g =
        Graph::load(GraphSource::Memory { bytes: &bytes, folder: &model.dir, label: "full+taps" }, &RuntimeOptions::default(), &block0)
            .unwrap();
    let ids: Vec<i64> = set.windows.iter().flatten().map(|&t| t as i64).collect();
    let names: Vec<&str> = taps.iter().map(|s| s.as_str()).collect();
    let mut direct: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    g.run_with(vec![("input_ids", Input::I64 { shape: vec![set.windows.len(), 32], data: ids })], &names, |name, dims, v| {
        let OutputView::F32(x) = v else { panic!("float taps") };
        let width = dims[2];
        let mut sums = vec![0f64; width];
        for row in x.chunks(width) {
            for (s, &val) in sums.iter_mut().zip(row) {
                *s += (val as f64) * (val as f64);
            }
        }
        direct.insert(name.to_string(), sums);
        Ok(())
    })
    .unwrap();
    for (tap, stats) in &rec.seen[&1] {
        assert_eq!(stats.tokens(), 7 * 32);
        for (a, b) in stats.sum_squares().iter().zip(&direct[tap]) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-6), "{tap}: {a} vs {b}");
        }
    }
    // And block 1 did see the pruned block 0: its dense-model statistics differ.
    let store = polyprune::model::weights::WeightStore::open(&model.dir, "model.onnx").unwrap();
    let mut dense_rec = Recording { inner_method: Method::Wanda, store, seen: BTreeMap::new() };
    capture_and_prune(&model, &set, &capture_opts(CaptureMode::OneShot), &mut dense_rec, |_, _| {}).unwrap();
    let (a, b) = (&rec.seen[&1]["blk.1.attn_in"], &dense_rec.seen[&1]["blk.1.attn_in"]);
    assert!(a.sum_squares().iter().zip(b.sum_squares()).any(|(x, y)| (x - y).abs() > 1e-3 * y.abs()));
    // Block 0 sees the embeddings either way.
    assert_eq!(rec.seen[&0]["blk.0.attn_in"].sum_squares(), dense_rec.seen[&0]["blk.0.attn_in"].sum_squares());
}

fn prune_with(model: &ModelDir, method: &str, seed: u64, shared: &std::path::Path) -> polyprune::pruned::PrunedModel {
    let set = draw(model, shared, &spec(&["eng_Latn", "deu_Latn"], seed, 6));
    let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
    prune_model(
        model,
        &method.parse().unwrap(),
        target,
        &LayerFilter::default(),
        Some(&set),
        &capture_opts(CaptureMode::Sequential),
        |_, _| {},
    )
    .unwrap()
}

/// Same seed: the same windows and the same masks, bit for bit. Another seed: other windows.
#[test]
fn same_seed_same_masks_other_seed_other_windows() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let a = draw(&model, &shared, &spec(&["eng_Latn", "deu_Latn"], 42, 6));
    let b = draw(&model, &shared, &spec(&["eng_Latn", "deu_Latn"], 42, 6));
    let c = draw(&model, &shared, &spec(&["eng_Latn", "deu_Latn"], 1234, 6));
    assert_eq!(a.windows, b.windows);
    assert_eq!(a.manifest, b.manifest);
    assert_ne!(a.windows, c.windows);
    assert_eq!(a.manifest.iter().filter(|w| w.language == "deu_Latn").count(), 3, "even mix of 6");
    assert!(a.windows.iter().all(|w| w.len() == 32 && w[0] == model.card.start_token().unwrap()));
    for method in ["wanda", "sparsegpt"] {
        let x = prune_with(&model, method, 42, &shared);
        let y = prune_with(&model, method, 42, &shared);
        for (p, q) in x.layers.iter().zip(&y.layers) {
            assert_eq!(p.mask, q.mask, "{method} {}", p.layer.name);
        }
        for (p, q) in x.overrides.iter().zip(&y.overrides) {
            assert_eq!(p.data, q.data, "{method} {}", p.name);
        }
        assert_eq!(x.overall_sparsity(), 0.5);
    }
}

/// A saved pruned model scores exactly like the in-memory overrides; saved Wanda masks applied
/// to the dense weights give the same weights again.
#[test]
fn saved_model_and_masks_reproduce_the_pruned_model() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let pruned = prune_with(&model, "wanda", 0, &shared);
    let out: PathBuf = common::temp_dir("saved");
    save_pruned(&model, &pruned, &out, &serde_json::json!({"test": true})).unwrap();
    let ids: Vec<u32> = vec![0, 313, 308, 323, 82, 266, 273, 275, 80, 86, 284, 263];
    let mut live = Scorer::load(&model, &RuntimeOptions::default(), &pruned.overrides).unwrap();
    let saved_dir = ModelDir::open(&out).unwrap();
    let mut saved = Scorer::load(&saved_dir, &RuntimeOptions::default(), &[]).unwrap();
    let mut dense = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap();
    let (l, s, d) = (live.token_logprobs(&[&ids]).unwrap(), saved.token_logprobs(&[&ids]).unwrap(), dense.token_logprobs(&[&ids]).unwrap());
    assert_eq!(l, s);
    assert_ne!(l, d);
    let masks = read_masks(&out).unwrap();
    assert_eq!(masks.len(), 14);
    let again = overrides_from_masks(&model, &masks).unwrap();
    for o in &pruned.overrides {
        let m = again.iter().find(|a| a.name == o.name).unwrap();
        assert_eq!(m.data, o.data, "{}", o.name);
    }
}

/// `--masks` applies a Wanda save exactly, and refuses SparseGPT masks (its kept weights moved).
#[test]
fn mask_folders_apply_wanda_and_refuse_sparsegpt() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    for method in ["wanda", "sparsegpt"] {
        let pruned = prune_with(&model, method, 0, &shared);
        let out: PathBuf = common::temp_dir(&format!("maskdir-{method}"));
        let record = serde_json::json!({ "method": method.parse::<Method>().unwrap() });
        save_pruned(&model, &pruned, &out, &record).unwrap();
        let applied = overrides_from_mask_dir(&model, &out);
        if method == "wanda" {
            let applied = applied.unwrap();
            for o in &pruned.overrides {
                assert_eq!(applied.iter().find(|a| a.name == o.name).unwrap().data, o.data, "{}", o.name);
            }
        } else {
            let err = applied.expect_err("SparseGPT masks refused").to_string();
            assert!(err.contains("SparseGPT") && err.contains("--model"), "{err}");
        }
    }
}

/// 2:4 through the whole pipeline: every group of four inputs in every row has two zeros.
#[test]
fn two_four_pattern_is_valid_in_every_group() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let set = draw(&model, &shared, &spec(&["eng_Latn"], 0, 4));
    let target = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
    for method in ["wanda", "sparsegpt", "magnitude"] {
        let p = prune_model(
            &model,
            &method.parse().unwrap(),
            target,
            &LayerFilter::default(),
            Some(&set),
            &capture_opts(CaptureMode::OneShot),
            |_, _| {},
        )
        .unwrap();
        assert!(p.layers.iter().all(|l| l.report.nm_valid == Some(true)), "{method}");
        for o in &p.overrides {
            let layer = model.card.layers.iter().find(|l| l.name == o.name).unwrap();
            let [d_in, d_out] = layer.shape;
            let values = o.values().unwrap();
            for col in 0..d_out {
                for g in 0..d_in / 4 {
                    let zeros = (0..4).filter(|k| values[(g * 4 + k) * d_out + col] == 0.0).count();
                    assert!(zeros >= 2, "{method} {} out {col} group {g}", o.name);
                }
            }
        }
    }
}

/// Several jobs from one shared one-shot capture give exactly what separate runs give.
#[test]
fn shared_one_shot_statistics_equal_separate_runs() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let set = draw(&model, &shared, &spec(&["deu_Latn"], 3, 4));
    let half = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), "unstructured".parse().unwrap()).unwrap();
    let two_four = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
    let jobs: Vec<PruneJob> = [("wanda", half), ("sparsegpt", half), ("wanda", two_four), ("magnitude", half)]
        .iter()
        .map(|(m, t)| PruneJob { method: m.parse().unwrap(), target: *t })
        .collect();
    let opts = capture_opts(CaptureMode::OneShot);
    let together = prune_many(&model, &jobs, &LayerFilter::default(), Some(&set), &opts, |_, _, _| {}).unwrap();
    assert_eq!(together.len(), jobs.len());
    for (job, got) in jobs.iter().zip(&together) {
        let alone = prune_model(&model, &job.method, job.target, &LayerFilter::default(), Some(&set), &opts, |_, _| {}).unwrap();
        assert_eq!(got.layers.len(), alone.layers.len());
        for (a, b) in got.layers.iter().zip(&alone.layers) {
            assert_eq!(a.layer.name, b.layer.name);
            assert!(a.mask == b.mask, "{} {}: shared and separate masks differ", job.method.name(), a.layer.name);
        }
        for (a, b) in got.overrides.iter().zip(&alone.overrides) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.data, b.data, "{} {}", job.method.name(), a.name);
        }
    }
}

fn run_cli(args: &[&str]) -> (bool, String) {
    let out = common::bin().args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Bad requests fail with one line naming the cause, and never a panic.
#[test]
fn bad_prune_requests_are_clear_errors() {
    let Some(shared) = common::shared() else { return };
    let model = tiny_llama();
    let m = model.dir.to_str().unwrap();
    let flores = shared.join("data/sib200");
    let _ = flores;
    // Ten two-word paragraphs: far less than one 128-token window in either split.
    let small = common::temp_dir("small-text").join("small.txt");
    std::fs::write(&small, (0..10).map(|i| format!("Short paragraph {i}.")).collect::<Vec<_>>().join("\n\n")).unwrap();
    let small_source = format!("file:{}", small.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--method", "wanda", "--sparsity", "1.3", "--calib", "eng"], "1.3"),
        (vec!["--method", "wanda", "--sparsity", "0.3", "--pattern", "2:4", "--calib", "eng"], "2:4"),
        (vec!["--method", "wandb", "--sparsity", "0.5", "--calib", "eng"], "wandb"),
        (vec!["--method", "wanda", "--sparsity", "0.5", "--calib", "xx_Latn"], "xx_Latn"),
        (vec!["--method", "wanda", "--sparsity", "0.5"], "--calib"),
        (vec!["--method", "wanda", "--sparsity", "0.5", "--calib", "eng", "--mix", "weights:1,2"], "weights"),
        (vec!["--method", "wanda", "--sparsity", "0.5", "--calib", "eng", "--calib-source", &small_source, "--samples", "1"], "tokens"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["prune", "--model", m];
        args.extend(extra.iter().copied());
        let (ok, err) = run_cli(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(!err.contains("panicked"), "{err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(line.starts_with("error:") && line.contains(needle), "{args:?}: {err}");
    }
}
