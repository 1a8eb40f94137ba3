//! The encoder-decoder's reverse pass (`polyprune::model::gradient::seq2seq`) on the tiny mT5
//! fixture against PyTorch, and SNIP / GraSP pruning both stacks with it.
//!
//! `scripts/gradient_reference.py --arch mt5` recorded, in float64 autograd on transformers'
//! MT5ForConditionalGeneration (its norms patched to stay in float64), the gradient and the
//! double-backward Hessian-gradient product `H g` of the mean label cross-entropy over five
//! (input, labels) pairs with respect to all 47 prunable matrices (tests/fixtures/hf-mt5-f32/
//! gradients.json). The forward is checked against transformers' float32 decoder logits
//! (reference.json, written by scripts/hf_seq2seq_fixtures.py).

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use ndarray::Array2;
use polyprune::model::gradient::seq2seq::{Seq2SeqGradients, Seq2SeqWeights, SEQ2SEQ_GRASP_DELTA};
use polyprune::model::gradient::{rows_of, Real};
use polyprune::model::seq2seq::import::import_hf_seq2seq;
use polyprune::model::seq2seq::{Seq2SeqFolder, Stack};
use polyprune::prune::{Method, Pattern, SaliencyScope, Sparsity, SparsityTarget};
use polyprune::pruned::seq2seq::{prune_seq2seq, PrunedSeq2Seq, Seq2SeqPruneOptions};
use polyprune::runtime::RuntimeOptions;
use serde_json::Value;

const FIXTURE: &str = "hf-mt5-f32";

fn json(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture_source(FIXTURE).join(file)).unwrap()).unwrap()
}

fn imported() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = common::temp_dir("mt5-gradients-import");
        import_hf_seq2seq(&common::model_fixture(FIXTURE), &out).unwrap();
        out
    })
    .clone()
}

fn folder() -> Seq2SeqFolder {
    Seq2SeqFolder::open(&imported()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The reference's (input, labels) pairs: the encoder texts as both, then the decoder pairs.
fn pairs() -> Vec<(Vec<u32>, Vec<u32>)> {
    json("gradients.json")["pairs"].as_array().unwrap().iter().map(|p| (ids(&p[0]), ids(&p[1]))).collect()
}

fn refs(pairs: &[(Vec<u32>, Vec<u32>)]) -> Vec<(&[u32], &[u32])> {
    pairs.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect()
}

/// Worst relative errors against the reference: (loss, g entries, g norms, Hg entries, Hg
/// norms); entries relative to the largest |reference| entry of their layer, norms to themselves.
fn errors<F: Real>(g: &Seq2SeqGradients<F>, hg: &Seq2SeqGradients<F>, reference: &Value) -> [f64; 5] {
    let mut worst = [0f64; 5];
    let loss = reference["loss"].as_f64().unwrap();
    worst[0] = (g.loss - loss).abs() / loss;
    let layers = folder().card.spec.layers();
    assert_eq!(layers.len(), 47);
    for layer in &layers {
        let r = &reference["layers"][&layer.name];
        let entries = r["entries"].as_array().unwrap_or_else(|| panic!("no reference for {}", layer.name));
        let norm = |m: &Array2<F>| m.iter().map(|v| v.to_f64().unwrap().powi(2)).sum::<f64>().sqrt();
        for (k, (got, key)) in [(g.of(layer).unwrap(), "grad_norm"), (hg.of(layer).unwrap(), "hg_norm")].into_iter().enumerate() {
            let scale = entries.iter().map(|e| e[2 + k].as_f64().unwrap().abs()).fold(0.0, f64::max);
            for e in entries {
                // Reference entries are [out][in]; ours are [in][out] like the graphs.
                let (row, col) = (e[0].as_u64().unwrap() as usize, e[1].as_u64().unwrap() as usize);
                worst[1 + 2 * k] = worst[1 + 2 * k].max((got[[col, row]].to_f64().unwrap() - e[2 + k].as_f64().unwrap()).abs() / scale);
            }
            let want = r[key].as_f64().unwrap();
            worst[2 + 2 * k] = worst[2 + 2 * k].max((norm(got) - want).abs() / want);
        }
    }
    worst
}

/// The pass's forward against transformers' float32 decoder logits (reference.json's decoder
/// pairs), then its gradients and `H g` against float64 autograd, in float64 and in float32.
#[test]
fn mt5_gradients_and_hessian_gradient_product_match_pytorch() {
    let reference = json("reference.json");
    let expected = json("gradients.json");
    let w64 = Seq2SeqWeights::<f64>::load(&folder()).unwrap();
    assert!(!w64.spec.tied_output && w64.output.is_some(), "the fixture's head is untied");

    // Forward: log-softmax of transformers' float32 logits (rounded to 1e-6), within
    // 1e-4 + 1e-4|x|: their float32 round-off is ~1e-6, a wrong bucket or norm moves them by >0.1.
    let decoder = reference["decoder"].as_array().unwrap();
    let decoder_pairs: Vec<(Vec<u32>, Vec<u32>)> = decoder.iter().map(|d| (ids(&d["ids"]), ids(&d["labels"]))).collect();
    let vocab = w64.spec.vocab_size;
    for (ours, d) in w64.label_logprobs(&refs(&decoder_pairs)).iter().zip(decoder) {
        let logits: Vec<f64> = d["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let labels = ids(&d["labels"]);
        assert_eq!(ours.len(), labels.len());
        for (t, (a, row)) in ours.iter().zip(logits.chunks(vocab)).enumerate() {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let b = row[labels[t] as usize] - m - row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "forward at {t}: {a} vs {b}");
        }
    }

    // Float64 against float64 autograd: both exact to ~1e-12 (the reference keeps the norms in
    // float64; the spec holds eps as float32 1e-6, a 2.5e-14 difference), so 1e-7 would catch
    // any slip. H g by central difference: its error falls as delta^2 (entries 2.1e-3, 1.9e-4,
    // 2.1e-5, 1.9e-6 at delta 1e-5, 3e-6, 1e-6, 3e-7; this random fixture is more curved than
    // the decoders'), so 1e-4 at delta 1e-6 leaves a factor 5 and fails a wrong product.
    let data = pairs();
    assert_eq!(data.len(), 5);
    let g64 = w64.loss_and_gradients(&refs(&data));
    assert_eq!(g64.predictions, data.iter().map(|(_, l)| l.len()).sum::<usize>());
    let hg64 = w64.hessian_gradient_product(&refs(&data), &g64, 1e-6);
    let e = errors(&g64, &hg64, &expected);
    eprintln!("mt5 f64: {e:?}");
    assert!(e[0] < 1e-7 && e[1] < 1e-7 && e[2] < 1e-7, "mt5 float64 gradients: {e:?}");
    assert!(e[3] < 1e-4 && e[4] < 1e-4, "mt5 float64 H g: {e:?}");
    // Every layer's gradient is nonzero, the encoder's included (it is reached only through
    // the cross-attention's keys and values).
    assert!(g64.encoder.iter().chain(&g64.decoder).flat_map(|b| &b.linear).all(|m| m.iter().any(|v| *v != 0.0)));

    // Float32, the precision pruning runs in, with GraSP's default step.
    let w32 = Seq2SeqWeights::<f32>::load(&folder()).unwrap();
    let g32 = w32.loss_and_gradients(&refs(&data));
    let hg32 = w32.hessian_gradient_product(&refs(&data), &g32, SEQ2SEQ_GRASP_DELTA);
    let e = errors(&g32, &hg32, &expected);
    eprintln!("mt5 f32: {e:?}");
    assert!(e[0] < 1e-5 && e[1] < 1e-4 && e[2] < 1e-4, "mt5 float32 gradients: {e:?}");
    // At SEQ2SEQ_GRASP_DELTA the float32 H g is within 2.3e-3 (entries) and 1.5e-3 (norms) of
    // the exact product; 1e-2 flags a step off by 3x either way (5.1e-2 at 5e-5).
    assert!(e[3] < 1e-2 && e[4] < 1e-2, "mt5 float32 H g: {e:?}");
}

/// The calibration sequences of tests/mt5.rs: the reference's encoder and rolling texts.
fn calibration_ids() -> Vec<Vec<u32>> {
    let r = json("reference.json");
    let mut out: Vec<Vec<u32>> = r["encoder"].as_array().unwrap().iter().map(|e| ids(&e["ids"])).collect();
    out.extend(r["rolling"].as_array().unwrap().iter().map(|t| ids(&t["ids"])));
    out
}

fn half() -> SparsityTarget {
    SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), Pattern::Unstructured).unwrap()
}

fn prune(method: Method, target: SparsityTarget) -> PrunedSeq2Seq {
    let opts = Seq2SeqPruneOptions { method, target, sequential: true };
    prune_seq2seq(&folder(), &calibration_ids(), &opts, &RuntimeOptions::default()).unwrap()
}

/// SNIP and GraSP prune every layer of both stacks to exactly its sparsity (the zeros counted
/// in the weights the runtime gets), each mask ordered by the paper's score recomputed here
/// from the pass's gradient and `H g`; the global scope is exact overall and uneven across
/// layers; 2:4 groups are valid; the block timings cover both stacks.
#[test]
fn snip_and_grasp_prune_both_stacks_at_exact_sparsity() {
    let snip = Method::Snip { scope: SaliencyScope::Layer };
    let grasp = Method::Grasp { scope: SaliencyScope::Layer };
    let w = Seq2SeqWeights::<f32>::load(&folder()).unwrap();
    let sequences = calibration_ids();
    let pairs: Vec<(&[u32], &[u32])> = sequences.iter().map(|s| (s.as_slice(), s.as_slice())).collect();
    let g = w.loss_and_gradients(&pairs);
    let hg = w.hessian_gradient_product(&pairs, &g, SEQ2SEQ_GRASP_DELTA);
    let mut masks = Vec::new();
    for method in [snip, grasp] {
        let pruned = prune(method, half());
        assert_eq!(pruned.layers.len(), 47, "{method}");
        for (l, o) in pruned.layers.iter().zip(&pruned.overrides) {
            assert_eq!(l.layer.name, o.name);
            let zeros = o.values().unwrap().iter().filter(|&&v| v == 0.0).count();
            assert_eq!((l.pruned, zeros), (l.total / 2, l.total / 2), "{method} {}", o.name);
            // SNIP prunes the lowest |w g|; GraSP the highest -w Hg, so kept w Hg are the lowest.
            let stack = if l.layer.stack == Stack::Encoder { &w.encoder } else { &w.decoder };
            let k = folder().card.spec.layers_of_block(l.layer.stack, l.layer.block).iter().position(|x| x.name == l.layer.name).unwrap();
            let weight = rows_of(&stack[l.layer.block].linear[k]);
            let score: Vec<f64> = match method {
                Method::Snip { .. } => {
                    weight.iter().zip(rows_of(g.of(&l.layer).unwrap())).map(|(a, b)| (f64::from(*a) * f64::from(b)).abs()).collect()
                }
                _ => weight.iter().zip(rows_of(hg.of(&l.layer).unwrap())).map(|(a, b)| f64::from(*a) * f64::from(b)).collect(),
            };
            let cols = l.layer.shape[0];
            let (mut max_pruned, mut min_kept) = (f64::MIN, f64::MAX);
            for (i, s) in score.iter().enumerate() {
                if l.mask.get(i / cols, i % cols) {
                    min_kept = min_kept.min(*s);
                } else {
                    max_pruned = max_pruned.max(*s);
                }
            }
            // The pass runs again inside prune_seq2seq, its sums in another order across
            // threads: scores agree to float32 round-off (1e-5 relative), not bit for bit.
            let slack = 1e-5 * score.iter().fold(0f64, |m, s| m.max(s.abs()));
            assert!(max_pruned <= min_kept + slack, "{method} {}: pruned up to {max_pruned}, kept from {min_kept}", l.layer.name);
        }
        let stacks: Vec<Stack> = pruned.blocks.iter().map(|b| b.stack).collect();
        assert_eq!(stacks, [Stack::Encoder, Stack::Encoder, Stack::Decoder, Stack::Decoder, Stack::Decoder]);
        assert!(pruned.blocks.iter().all(|b| b.calibration > 0.0), "every block's share of the gradient pass is timed");
        let model = pruned.to_pruned_model(&folder().card.spec);
        assert!(model.timings.gradient_s > 0.0 && model.timings.forward_s.abs() < 1e-9);
        assert_eq!(model.timings.hessian_gradient_s > 0.0, matches!(method, Method::Grasp { .. }));
        masks.push(pruned.layers[0].mask.clone());
    }
    assert_ne!(masks[0], masks[1], "SNIP and GraSP rank differently");

    let global = prune(snip.with_scope(SaliencyScope::Global), half());
    let (p, t) = global.layers.iter().fold((0, 0), |(p, t), l| (p + l.pruned, t + l.total));
    assert_eq!(p * 2, t);
    assert!(global.layers.iter().any(|l| (l.report.achieved - 0.5).abs() > 0.05), "a global ranking leaves layers unequal");
    let nm = prune(grasp, SparsityTarget::new(None, "2:4".parse().unwrap()).unwrap());
    assert!(nm.layers.iter().all(|l| l.report.nm_valid == Some(true) && l.pruned * 2 == l.total));
}

/// `polyprune prune --method snip,grasp` on the mT5 folder: both saved folders have every
/// layer at half, `sparsity.csv` lists the 47 layers, the run says how long the gradient took,
/// and `eval ppl` reads a saved folder.
#[test]
fn prune_command_takes_snip_and_grasp_on_an_mt5_folder() {
    let r = json("reference.json");
    let mut paragraphs = Vec::new();
    for round in 0..20 {
        for e in r["loglikelihood"].as_array().unwrap().iter().take(6) {
            paragraphs.push(format!("{} {} ({round})", e["context"].as_str().unwrap(), e["continuation"].as_str().unwrap()));
        }
    }
    let dir = common::temp_dir("mt5-snip-cli");
    let calib = dir.join("calib.txt");
    std::fs::write(&calib, paragraphs.join("\n\n")).unwrap();
    let out = dir.join("pruned");
    let results = dir.join("results");
    let run = common::bin()
        .args(["prune", "--model"])
        .arg(imported())
        .args(["--method", "snip,grasp", "--sparsity", "0.5", "--calib", "eng", "--calib-source"])
        .arg(format!("file:{}", calib.display()))
        .args(["--samples", "4", "--seqlen", "16", "--save"])
        .arg(&out)
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("overall sparsity 0.500000") && stdout.contains("time: gradient"), "{stdout}");
    for method in ["snip", "grasp"] {
        let saved = Seq2SeqFolder::open(&out.join(method)).unwrap();
        for layer in saved.card.spec.layers() {
            let store = polyprune::model::weights::WeightStore::open(&saved.dir, Seq2SeqFolder::graph_of(&layer.name)).unwrap();
            let w = store.read(&layer.name).unwrap();
            assert_eq!(w.iter().filter(|&&v| v == 0.0).count() * 2, w.len(), "{method} {}", layer.name);
        }
    }
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("prune")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let rows = polyprune::store::ResultsDir::at(&run).read_sparsity().unwrap();
        assert_eq!(rows.len(), 47);
        assert!(rows.iter().all(|r| r.pruned * 2 == r.total));
    }
    let text = dir.join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog.\nLe renard brun saute.\n").unwrap();
    let ppl = common::bin().args(["eval", "ppl", "--model"]).arg(out.join("snip")).arg("--file").arg(&text).output().unwrap();
    assert!(ppl.status.success(), "{}", String::from_utf8_lossy(&ppl.stderr));
}

/// A study grid with SNIP and GraSP on the mT5 fixture: `study plan` accepts it, `study run`
/// prunes every cell's 47 layers to half and writes the per-block timings of both stacks.
#[test]
fn a_study_runs_snip_and_grasp_on_an_mt5_model() {
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-study-gradients");
    let flores = shared.join("data/sib200");
    let model = imported();
    let config = common::StudyFile {
        name: "mt5-gradients",
        model: &model,
        flores: &flores,
        methods: r#""snip", "grasp""#,
        samples: 2,
        seqlen: 16,
        calibration: &["fra_Latn"],
        perplexity: &["eng_Latn"],
        limit: 2,
        pruning: "",
        tables: "",
    }
    .write(&dir);
    for command in ["plan", "run"] {
        let out = common::bin().args(["study", command]).arg(&config).output().unwrap();
        assert!(out.status.success(), "study {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let cells: Vec<PathBuf> = std::fs::read_dir(dir.join("results/cells")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cells.len(), 2, "{cells:?}");
    for cell in &cells {
        let rows = polyprune::store::ResultsDir::at(cell).read_sparsity().unwrap();
        assert_eq!(rows.len(), 47, "{}", cell.display());
        assert!(rows.iter().all(|r| 2 * r.pruned == r.total), "{}", cell.display());
        let blocks: Value = serde_json::from_str(&std::fs::read_to_string(cell.join("block_seconds.json")).unwrap()).unwrap();
        let stacks: Vec<&str> = blocks.as_array().unwrap().iter().map(|b| b["stack"].as_str().unwrap()).collect();
        assert_eq!(stacks, ["encoder", "encoder", "decoder", "decoder", "decoder"]);
    }
}
