//! The reverse pass (`polyprune::model::gradient`) on the tiny Llama, Qwen2 and Cohere
//! (Command-R: LayerNorm, parallel blocks, scaled logits) fixtures against
//! PyTorch: its forward against transformers' next-token log-probabilities (reference.json),
//! its gradients and GraSP's Hessian-gradient product against float64 autograd and double
//! backward recorded by `scripts/gradient_reference.py` (gradients.json).

mod common;

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::Language;
use polyprune::model::gradient::{rows_of, DecoderWeights, Gradients, Real, GRASP_DELTA};
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::model::ModelDir;
use polyprune::prune::{Method, SaliencyScope, Sparsity, SparsityTarget};
use polyprune::pruned::{prune_many, LayerFilter, PruneJob};
use polyprune::runtime::RuntimeOptions;
use serde_json::Value;

fn json(model: &str, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture_source(model).join(file)).unwrap()).unwrap()
}

fn ids_of(reference: &Value) -> Vec<Vec<u32>> {
    let rows = reference["input_ids"].as_array().unwrap();
    rows.iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect()
}

fn import(model: &str) -> ModelDir {
    let out = common::temp_dir(&format!("gradients-{model}"));
    import_gguf(&common::model_fixture(model).join("model.gguf"), &out, &ImportOptions { max_positions: 128 }).unwrap();
    ModelDir::open(&out).unwrap()
}

/// Worst relative errors against the reference: (loss, g entries, g norms, Hg entries, Hg norms).
/// Entries are relative to the largest |reference| of their layer, norms to themselves.
fn errors<F: Real>(model: &ModelDir, g: &Gradients<F>, hg: Option<&Gradients<F>>, reference: &Value) -> [f64; 5] {
    let mut worst = [0f64; 5];
    worst[0] = (g.loss - reference["loss"].as_f64().unwrap()).abs() / reference["loss"].as_f64().unwrap();
    for layer in &model.card.layers {
        let r = &reference["layers"][&layer.name];
        let norm = |m: &ndarray::Array2<F>| m.iter().map(|v| v.to_f64().unwrap().powi(2)).sum::<f64>().sqrt();
        let entries = r["entries"].as_array().unwrap();
        for (k, (got, key)) in
            [(g.of(layer).unwrap(), "grad_norm")].into_iter().chain(hg.map(|h| (h.of(layer).unwrap(), "hg_norm"))).enumerate()
        {
            let scale = entries.iter().map(|e| e[2 + k].as_f64().unwrap().abs()).fold(0.0, f64::max);
            for e in entries {
                // Reference entries are [out][in]; ours are stored [in][out] like the graph.
                let (row, col) = (e[0].as_u64().unwrap() as usize, e[1].as_u64().unwrap() as usize);
                let err = (got[[col, row]].to_f64().unwrap() - e[2 + k].as_f64().unwrap()).abs() / scale;
                worst[1 + 2 * k] = worst[1 + 2 * k].max(err);
            }
            let want = r[key].as_f64().unwrap();
            worst[2 + 2 * k] = worst[2 + 2 * k].max((norm(got) - want).abs() / want);
        }
    }
    worst
}

fn check(model_name: &str) {
    let reference = json(model_name, "reference.json");
    let expected = json(model_name, "gradients.json");
    let ids = ids_of(&reference);
    let model = import(model_name);

    // Forward: transformers' float32 log-probabilities, within 1e-4 + 1e-4|x| (their own
    // float32 round-off is ~1e-6; a wrong operation moves them by more than 0.1).
    let w64 = DecoderWeights::<f64>::load(&model).unwrap();
    let want = reference["variants"]["model.gguf"]["next_token_logprob"].as_array().unwrap();
    for (row, exp) in w64.next_token_logprobs(&ids).iter().zip(want) {
        for (a, b) in row.iter().zip(exp.as_array().unwrap()) {
            let b = b.as_f64().unwrap();
            assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{model_name} forward: {a} vs {b}");
        }
    }

    // Float64 gradients against float64 autograd. Both sides are exact to ~1e-12 (the
    // reference keeps norms and rotary tables in float64; our spec holds eps and the rotary
    // base as the GGUF's float32, a 1e-9-relative difference in eps), so 1e-7 would catch
    // any slip while leaving room for that.
    let g64 = w64.loss_and_gradients(&ids, |_| {});
    // H g at delta = 1e-5 in float64: truncation error ~delta^2 times the curvature scale.
    let hg64 = w64.hessian_gradient_product(&ids, &g64, 1e-5, |_, _| {});
    let e = errors(&model, &g64, Some(&hg64), &expected);
    eprintln!("{model_name} f64: {e:?}");
    assert!(e[0] < 1e-7 && e[1] < 1e-7 && e[2] < 1e-7, "{model_name} float64 gradients: {e:?}");
    assert!(e[3] < 1e-4 && e[4] < 1e-4, "{model_name} float64 H g: {e:?}");

    // Float32, the precision pruning runs in, with GraSP's default step.
    let w32 = DecoderWeights::<f32>::load(&model).unwrap();
    let g32 = w32.loss_and_gradients(&ids, |_| {});
    let hg32 = w32.hessian_gradient_product(&ids, &g32, GRASP_DELTA, |_, _| {});
    let e = errors(&model, &g32, Some(&hg32), &expected);
    eprintln!("{model_name} f32: {e:?}");
    assert!(e[0] < 1e-5 && e[1] < 1e-4 && e[2] < 1e-4, "{model_name} float32 gradients: {e:?}");
    // At GRASP_DELTA the float32 H g is within 3e-3 of the exact product on both fixtures
    // (entries, relative to the layer's largest); 1e-2 flags a step that is off by 10x either way.
    assert!(e[3] < 1e-2 && e[4] < 1e-2, "{model_name} float32 H g: {e:?}");
}

#[test]
fn llama_gradients_and_hessian_gradient_product_match_pytorch() {
    check("tiny-llama");
}

#[test]
fn qwen2_gradients_and_hessian_gradient_product_match_pytorch() {
    check("tiny-qwen2");
}

#[test]
fn cohere_gradients_and_hessian_gradient_product_match_pytorch() {
    check("tiny-cohere");
}

/// SNIP and GraSP through the model-level pruning path on the tiny Llama: exact sparsities per
/// layer (layer scope) and overall (global scope), valid 2:4 groups, every pruned weight zeroed,
/// and the masks ordered by the papers' scores (recomputed here from the gradients).
#[test]
fn snip_and_grasp_masks_follow_their_scores_at_exact_sparsity() {
    let model = import("tiny-llama");
    let ids = ids_of(&json("tiny-llama", "reference.json"));
    let spec =
        CalibrationSpec { languages: vec![Language::parse("en").unwrap()], mix: Mix::Even, samples: 2, seqlen: 12, seed: 0, source: None };
    let set = CalibrationSet { spec, windows: ids.clone(), manifest: Vec::new(), text: Vec::new() };
    let half = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
    let nm = SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap();
    let snip = Method::Snip { scope: SaliencyScope::Layer };
    let grasp = Method::Grasp { scope: SaliencyScope::Layer };
    let jobs = [
        PruneJob { method: snip, target: half },
        PruneJob { method: grasp, target: half },
        PruneJob { method: snip.with_scope(SaliencyScope::Global), target: half },
        PruneJob { method: grasp, target: nm },
        PruneJob { method: "wanda".parse().unwrap(), target: half },
    ];
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: 2, runtime: RuntimeOptions::default(), gram: false };
    let pruned = prune_many(&model, &jobs, &LayerFilter::default(), Some(&set), &capture, |_, _, _| {}).unwrap();

    let w = DecoderWeights::<f32>::load(&model).unwrap();
    let g = w.loss_and_gradients(&ids, |_| {});
    let hg = w.hessian_gradient_product(&ids, &g, GRASP_DELTA, |_, _| {});
    let layers = &model.card.layers;
    let weight_rows = |i: usize| rows_of(&w.blocks[layers[i].block].linear[i % 7]);
    for (job, result) in jobs.iter().zip(&pruned).take(2) {
        for (i, out) in result.layers.iter().enumerate() {
            assert_eq!(out.report.pruned * 2, out.report.total, "{} {}", job.method.name(), out.layer.name);
            let wr = weight_rows(i);
            let score: Vec<f64> = match job.method {
                Method::Snip { .. } => {
                    wr.iter().zip(rows_of(g.of(&out.layer).unwrap())).map(|(a, b)| (f64::from(*a) * f64::from(b)).abs()).collect()
                }
                // GraSP removes the highest -w * Hg: kept ones score lower than pruned ones.
                _ => wr.iter().zip(rows_of(hg.of(&out.layer).unwrap())).map(|(a, b)| f64::from(*a) * f64::from(b)).collect(),
            };
            let cols = out.layer.shape[0];
            let (mut max_pruned, mut min_kept) = (f64::MIN, f64::MAX);
            for (k, s) in score.iter().enumerate() {
                if out.mask.as_ref().unwrap().get(k / cols, k % cols) {
                    min_kept = min_kept.min(*s);
                } else {
                    max_pruned = max_pruned.max(*s);
                }
            }
            assert!(max_pruned <= min_kept, "{} {}: pruned up to {max_pruned}, kept from {min_kept}", job.method.name(), out.layer.name);
        }
        // The pruned weights are zero in what the runtime gets.
        for (o, out) in result.overrides.iter().zip(&result.layers) {
            let [d_in, d_out] = out.layer.shape;
            for r in 0..d_out {
                for c in 0..d_in {
                    if !out.mask.as_ref().unwrap().get(r, c) {
                        assert_eq!(o.values().unwrap()[c * d_out + r], 0.0, "{}", out.layer.name);
                    }
                }
            }
        }
    }
    // Global scope: exactly half of all weights, layers unequal.
    let global = &pruned[2];
    let (p, t) = global.layers.iter().fold((0, 0), |(p, t), l| (p + l.report.pruned, t + l.report.total));
    assert_eq!(p * 2, t);
    assert!(global.layers.iter().any(|l| (l.report.achieved - 0.5).abs() > 0.05), "a global ranking leaves layers unequal");
    // 2:4 groups are valid in every layer.
    assert!(pruned[3].layers.iter().all(|l| l.report.nm_valid == Some(true)));
    // SNIP is not Wanda nor GraSP.
    assert_ne!(pruned[0].layers[0].mask, pruned[4].layers[0].mask);
    assert_ne!(pruned[0].layers[0].mask, pruned[1].layers[0].mask);
}

/// BLOOM (the Hugging Face fixture hf-bloom-f32: ALiBi with 6 heads, fused q/k/v, ungated GELU
/// MLP, biases everywhere, embedding LayerNorm): the reverse pass's forward against
/// transformers' per-token log-probabilities, its gradients and H g against float64 autograd
/// (`scripts/gradient_reference.py --arch bloom`, the fused layer's rows in the graph's
/// [Q; K; V] order), in float64 and float32, with the tolerances of [`check`].
#[test]
fn bloom_gradients_and_hessian_gradient_product_match_pytorch() {
    let fixture = "hf-bloom-f32";
    let reference = json(fixture, "reference.json");
    let expected = json(fixture, "gradients.json");
    let lines = reference["lines"].as_array().unwrap();
    let ids: Vec<Vec<u32>> =
        lines.iter().map(|l| l["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect();
    let out = common::temp_dir("gradients-bloom");
    polyprune::model::hf::import::import_hf(&common::model_fixture(fixture), &out, &ImportOptions { max_positions: 128 }).unwrap();
    let model = ModelDir::open(&out).unwrap();
    assert!(model.card.layers.iter().any(|l| l.name == "blk.0.attn_qkv.weight"), "the fused layer is one prunable layer");

    let w64 = DecoderWeights::<f64>::load(&model).unwrap();
    for (row, line) in w64.next_token_logprobs(&ids).iter().zip(lines) {
        for (a, b) in row.iter().zip(line["token_logprobs"].as_array().unwrap()) {
            let b = b.as_f64().unwrap();
            assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "bloom forward: {a} vs {b}");
        }
    }
    let g64 = w64.loss_and_gradients(&ids, |_| {});
    let hg64 = w64.hessian_gradient_product(&ids, &g64, 1e-5, |_, _| {});
    let e = errors(&model, &g64, Some(&hg64), &expected);
    eprintln!("bloom f64: {e:?}");
    assert!(e[0] < 1e-7 && e[1] < 1e-7 && e[2] < 1e-7, "bloom float64 gradients: {e:?}");
    assert!(e[3] < 1e-4 && e[4] < 1e-4, "bloom float64 H g: {e:?}");

    let w32 = DecoderWeights::<f32>::load(&model).unwrap();
    let g32 = w32.loss_and_gradients(&ids, |_| {});
    let hg32 = w32.hessian_gradient_product(&ids, &g32, GRASP_DELTA, |_, _| {});
    let e = errors(&model, &g32, Some(&hg32), &expected);
    eprintln!("bloom f32: {e:?}");
    assert!(e[0] < 1e-5 && e[1] < 1e-4 && e[2] < 1e-4, "bloom float32 gradients: {e:?}");
    assert!(e[3] < 1e-2 && e[4] < 1e-2, "bloom float32 H g: {e:?}");
}

/// Every method on BLOOM through the model-level path (calibration on the cache-free per-block
/// graphs, the reverse pass for SNIP and GraSP): each layer, the fused q/k/v one included,
/// exactly half pruned, and the pruned weights zero in what the runtime gets.
#[test]
fn every_method_prunes_bloom_at_exact_sparsity() {
    let fixture = "hf-bloom-f32";
    let out = common::temp_dir("methods-bloom");
    polyprune::model::hf::import::import_hf(&common::model_fixture(fixture), &out, &ImportOptions { max_positions: 128 }).unwrap();
    let model = ModelDir::open(&out).unwrap();
    let ids: Vec<Vec<u32>> = json(fixture, "reference.json")["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ids"].as_array().unwrap().iter().take(12).map(|v| v.as_u64().unwrap() as u32).collect())
        .collect();
    let spec =
        CalibrationSpec { languages: vec![Language::parse("en").unwrap()], mix: Mix::Even, samples: 4, seqlen: 12, seed: 0, source: None };
    let set = CalibrationSet { spec, windows: ids, manifest: Vec::new(), text: Vec::new() };
    let half = SparsityTarget::Unstructured(Sparsity::new(0.5).unwrap());
    let methods = ["magnitude", "wanda", "sparsegpt", "snip", "grasp"];
    let jobs: Vec<PruneJob> = methods.iter().map(|m| PruneJob { method: m.parse().unwrap(), target: half }).collect();
    let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: 2, runtime: RuntimeOptions::default(), gram: false };
    let pruned = prune_many(&model, &jobs, &LayerFilter::default(), Some(&set), &capture, |_, _, _| {}).unwrap();
    for (name, result) in methods.iter().zip(&pruned) {
        assert_eq!(result.layers.len(), 8, "{name}: qkv, o, up, down in each of 2 blocks");
        for (o, out) in result.overrides.iter().zip(&result.layers) {
            assert_eq!(out.report.pruned * 2, out.report.total, "{name} {}", out.layer.name);
            let [d_in, d_out] = out.layer.shape;
            let zeros = (0..d_out)
                .flat_map(|r| (0..d_in).map(move |c| (r, c)))
                .filter(|&(r, c)| !out.mask.as_ref().unwrap().get(r, c))
                .all(|(r, c)| o.values().unwrap()[c * d_out + r] == 0.0);
            assert!(zeros, "{name} {}: a pruned weight is not zero", out.layer.name);
        }
    }
    // The methods disagree somewhere (each really ran on its own scores).
    assert_ne!(pruned[0].layers[0].mask, pruned[1].layers[0].mask);
    assert_ne!(pruned[3].layers[0].mask, pruned[4].layers[0].mask);
}
