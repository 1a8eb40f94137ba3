//! The analyses, `gate`, layer filters and decided task rounds on the tiny mT5 fixture
//! (`make fixtures`; see tests/mt5.rs): an encoder-decoder is analysed on its ENCODER's states.
//!
//! * The states the probe pools are the encoder blocks' outputs: the last one, through the
//!   encoder's final norm (computed here), is transformers' encoder output in reference.json,
//!   and block 0's, through block 1's attention norm, is block 1's attention input.
//! * LAPE's activation counts equal a count by hand from the captured MLP inputs and gate
//!   weights (which reproduce the gated-GELU's other tap), on a pruned model.
//! * A study with include/exclude filters, decided task rounds and every model analysis runs:
//!   the filters prune exactly the layers their names select, the rounds decide, the sections
//!   say which states they show, and the report renders them.
//! * `gate` decides an mT5 candidate against an mT5 baseline, on the documents `eval ppl`
//!   scores the same way.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polyprune::analysis::encoder_probe::{ffn_input, pooled_tokens, probe_encoder};
use polyprune::analysis::probe::{ProbeOptions, ProbeSentence};
use polyprune::eval::seq2seq::Seq2SeqScorer;
use polyprune::model::seq2seq::graphs::encoder_block_output;
use polyprune::model::seq2seq::import::import_hf_seq2seq;
use polyprune::model::seq2seq::{Seq2SeqFolder, ENCODER_GRAPH_FILE};
use polyprune::model::weights::WeightStore;
use polyprune::prune::{Pattern, Sparsity, SparsityTarget};
use polyprune::pruned::seq2seq::{prune_seq2seq, Seq2SeqPruneOptions};
use polyprune::runtime::{RuntimeOptions, WeightOverride};
use serde_json::Value;

const FIXTURE: &str = "hf-mt5-f32";

fn imported() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = common::temp_dir("mt5-analyses-import");
        import_hf_seq2seq(&common::model_fixture(FIXTURE), &out).unwrap();
        out
    })
    .clone()
}

fn folder() -> Seq2SeqFolder {
    Seq2SeqFolder::open(&imported()).unwrap()
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture_source(FIXTURE).join("reference.json")).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// T5's norm in f64: `x / sqrt(mean(x^2) + eps) * w` per token row of width `w.len()`.
fn t5_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f64> {
    x.chunks(w.len())
        .flat_map(|row| {
            let rms = (row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / row.len() as f64 + eps).sqrt();
            row.iter().zip(w).map(move |(&v, &g)| v as f64 / rms * g as f64)
        })
        .collect()
}

/// Every tap's values `[tokens, width]` for one encoder input.
fn taps(f: &Seq2SeqFolder, overrides: &[WeightOverride], names: &[String], tokens: &[u32]) -> BTreeMap<String, Vec<f32>> {
    let mut scorer = Seq2SeqScorer::load_with(f, &RuntimeOptions::default(), overrides, names).unwrap();
    let mut out = BTreeMap::new();
    scorer
        .tap_pass(tokens, &mut |name, _, v| {
            out.insert(name.to_string(), v.to_vec());
            Ok(())
        })
        .unwrap();
    out
}

/// The reference texts' encoder inputs (ending in `</s>`), alternately labelled as two languages.
fn reference_sentences() -> Vec<ProbeSentence> {
    let r = reference();
    let mut out = Vec::new();
    for (i, e) in r["encoder"].as_array().unwrap().iter().chain(r["decoder"].as_array().unwrap()).enumerate() {
        out.push(ProbeSentence { language: ["xx", "yy"][i % 2].into(), id: i.to_string(), tokens: ids(&e["ids"]) });
    }
    out
}

/// Block outputs read by the probe are the encoder's: through the final norm, the last block's
/// is the encoder graph's output and transformers' (within the 1e-4 of tests/mt5.rs: float32
/// on both sides); through block 1's attention norm, block 0's is block 1's attention input
/// (1e-5: the same float32 values normed in f64 here). The pooled state of each sentence is the
/// mean of its block output over every token but `</s>` (1e-9: f64 means of the same values).
#[test]
fn encoder_states_of_the_probe_are_the_encoders_block_outputs() {
    let f = folder();
    let spec = &f.card.spec;
    let (d, eps) = (spec.d_model, spec.norm_eps as f64);
    let store = WeightStore::open(&f.dir, ENCODER_GRAPH_FILE).unwrap();
    let out_norm = store.read("enc.output_norm.weight").unwrap();
    let attn_norm_1 = store.read("enc.blk.1.attn_norm.weight").unwrap();
    let names = vec![encoder_block_output(0), encoder_block_output(1), "enc.blk.1.attn_in".to_string()];
    let mut scorer = Seq2SeqScorer::load(&f, &RuntimeOptions::default()).unwrap();
    let r = reference();
    let (mut worst_ref, mut worst_graph, mut worst_attn) = (0f64, 0f64, 0f64);
    for e in r["encoder"].as_array().unwrap() {
        let tokens = ids(&e["ids"]);
        assert_eq!(tokens.last(), Some(&spec.eos_token_id));
        let t = taps(&f, &[], &names, &tokens);
        let last = t5_norm(&t[&encoder_block_output(1)], &out_norm, eps);
        let theirs: Vec<f64> = e["hidden"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let graph = scorer.encoder_hidden(&tokens).unwrap();
        assert_eq!((last.len(), graph.len()), (theirs.len(), theirs.len()));
        for ((a, b), g) in last.iter().zip(&theirs).zip(&graph) {
            worst_ref = worst_ref.max((a - b).abs());
            worst_graph = worst_graph.max((a - *g as f64).abs());
        }
        let normed0 = t5_norm(&t[&encoder_block_output(0)], &attn_norm_1, eps);
        for (a, b) in normed0.iter().zip(&t["enc.blk.1.attn_in"]) {
            worst_attn = worst_attn.max((a - *b as f64).abs());
        }
    }
    assert!(worst_ref <= 1e-4, "last block output, normed, differs from transformers' encoder output by {worst_ref:e}");
    assert!(worst_graph <= 1e-5, "last block output, normed, differs from encoder_hidden by {worst_graph:e}");
    assert!(worst_attn <= 1e-5, "block 0's output, normed, differs from block 1's attention input by {worst_attn:e}");

    let sentences = reference_sentences();
    let opts = ProbeOptions { layers: vec![0, 1], activity: false, batch: 4, runtime: RuntimeOptions::default() };
    let mut seen = 0;
    let result = probe_encoder(&f, &sentences, &[], &opts, |n| seen = n).unwrap();
    assert_eq!(seen, sentences.len());
    assert!(result.activity.is_none());
    for (k, states) in &result.pooled {
        assert_eq!(states.ids, sentences.iter().map(|s| s.id.clone()).collect::<Vec<_>>());
        for (i, s) in sentences.iter().enumerate() {
            let h = &taps(&f, &[], &[encoder_block_output(*k)], &s.tokens)[&encoder_block_output(*k)];
            let n = s.tokens.len() - 1;
            for c in 0..d {
                let mean = (0..n).map(|t| h[t * d + c] as f64).sum::<f64>() / n as f64;
                assert!((states.states[[i, c]] - mean).abs() <= 1e-9, "block {k}, sentence {i}, dim {c}");
            }
        }
    }
    let err = probe_encoder(&f, &sentences, &[], &ProbeOptions { layers: vec![2], ..opts }, |_| {}).err().unwrap().to_string();
    assert!(err.contains("encoder block 2 does not exist") && err.contains("0..1"), "{err}");
}

/// LAPE's counts on a 50% magnitude-pruned encoder: per language, the tokens pooled (all but
/// `</s>`), and per block and neuron the tokens whose gate pre-activation (the captured MLP
/// input times the pruned gate weight, in f64) is > 0. The same product reproduces the
/// gated-GELU's output tap `ffn_down_in` = gelu_tanh(gate x) * (up x) within 1e-4, so it is the
/// gate the model runs. Counts may differ only where a pre-activation is within 1e-5 of 0
/// (float32 against f64 sums); none is on this fixture.
#[test]
fn neuron_activity_counts_equal_a_count_by_hand() {
    let f = folder();
    let spec = f.card.spec.clone();
    let (d, ff, blocks) = (spec.d_model, spec.ffn_dim, spec.encoder_blocks);
    let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), Pattern::Unstructured).unwrap();
    let opts = Seq2SeqPruneOptions { method: "magnitude".parse().unwrap(), target, sequential: false };
    let pruned = prune_seq2seq(&f, &[], &opts, &RuntimeOptions::default()).unwrap();
    let overrides = pruned.overrides.clone();
    let sentences = reference_sentences();
    let probe_opts = ProbeOptions { layers: Vec::new(), activity: true, batch: 4, runtime: RuntimeOptions::default() };
    let counts = probe_encoder(&f, &sentences, &overrides, &probe_opts, |_| {}).unwrap().activity.unwrap();
    assert_eq!((counts.layers, counts.neurons), (blocks, ff));
    assert_eq!(counts.languages, ["xx", "yy"]);

    let store = WeightStore::open(&f.dir, ENCODER_GRAPH_FILE).unwrap();
    let weight = |name: &str| -> Vec<f32> {
        overrides.iter().find(|o| o.name == name).map(|o| o.values().unwrap().as_ref().clone()).unwrap_or_else(|| store.read(name).unwrap())
    };
    let mut tokens = [0u64; 2];
    let mut active = vec![vec![0u64; blocks * ff]; 2];
    let mut near_zero = 0;
    let mut worst_down = 0f64;
    let gelu = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
    for s in &sentences {
        let l = if s.language == "xx" { 0 } else { 1 };
        tokens[l] += (s.tokens.len() - 1) as u64;
        let names: Vec<String> = (0..blocks).flat_map(|k| [ffn_input(k), format!("enc.blk.{k}.ffn_down_in")]).collect();
        let t = taps(&f, &overrides, &names, &s.tokens);
        for k in 0..blocks {
            let (gate, up) = (weight(&format!("enc.blk.{k}.ffn_gate.weight")), weight(&format!("enc.blk.{k}.ffn_up.weight")));
            let (x, down_in) = (&t[&ffn_input(k)], &t[&format!("enc.blk.{k}.ffn_down_in")]);
            for tok in 0..s.tokens.len() {
                for n in 0..ff {
                    let g: f64 = (0..d).map(|i| x[tok * d + i] as f64 * gate[i * ff + n] as f64).sum();
                    let u: f64 = (0..d).map(|i| x[tok * d + i] as f64 * up[i * ff + n] as f64).sum();
                    worst_down = worst_down.max((gelu(g) * u - down_in[tok * ff + n] as f64).abs());
                    if tok < pooled_tokens(s).end {
                        active[l][k * ff + n] += u64::from(g > 0.0);
                        near_zero += usize::from(g.abs() < 1e-5);
                    }
                }
            }
        }
    }
    assert!(worst_down <= 1e-4, "gate and up weights times the MLP input miss ffn_down_in by {worst_down:e}");
    assert_eq!(counts.tokens, tokens);
    assert_eq!(near_zero, 0, "pre-activations within 1e-5 of zero would make the count ambiguous");
    assert_eq!(counts.active, active);
    let total: u64 = active.iter().flatten().sum();
    assert!(total > 0 && total < tokens.iter().sum::<u64>() * (blocks * ff) as u64, "some neurons active, not all");
}

/// A study file over the fixture: Wanda and Magnitude at 50%, calibration in English and
/// French, layer filters, XCOPA (Italian) rounds that stop when decided, every model analysis.
fn study_file(dir: &Path, shared: &Path) -> PathBuf {
    let (model, flores) = (imported(), shared.join("data/sib200"));
    let tables = format!(
        r#"
[tasks]
names = ["xcopa"]
languages = ["it"]
limit = 20
stop = "decided"
margin = 0.05
round = 10
data = "{data}"

[analysis]
subspaces = true
neurons = true
pruning_error = true
probes = true
sentences = 6
probe_sentences = 30
error_windows = 2
error_seqlen = 16
"#,
        data = shared.join("data").display(),
    );
    common::StudyFile {
        name: "mt5-analyses",
        model: &model,
        flores: &flores,
        methods: r#""wanda", "magnitude""#,
        samples: 4,
        seqlen: 32,
        calibration: &["eng_Latn", "fra_Latn"],
        perplexity: &["eng_Latn", "fra_Latn"],
        limit: 4,
        pruning: "include = [\"enc.blk.0.\", \"dec.blk.2.cross\", \"ffn_down\"]\nexclude = [\"cross_attn_v\", \"dec.blk.0.\"]\n",
        tables: &tables,
    }
    .write(dir)
}

/// The layers the filters select, by the names alone: an include pattern in the name (or the
/// role), and no exclude pattern.
fn selected_by_hand(f: &Seq2SeqFolder) -> Vec<String> {
    let include = ["enc.blk.0.", "dec.blk.2.cross", "ffn_down"];
    let exclude = ["cross_attn_v", "dec.blk.0."];
    let mut names: Vec<String> = f
        .card
        .spec
        .layers()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| include.iter().any(|p| n.contains(p)) && !exclude.iter().any(|p| n.contains(p)))
        .collect();
    names.sort();
    names
}

/// `study run` with an mT5 model, layer filters, decided rounds and the model analyses, then
/// `report`: each cell pruned exactly the selected layers (7 encoder block 0 layers, the
/// ffn_down of every block but dec.blk.0's, dec.blk.2's cross q, k and o) at half, with masks
/// for those only; the rounds compare every cell with dense; each model section is written, says it shows the
/// encoder's states, and reaches the report.
#[test]
fn a_study_with_filters_decided_rounds_and_analyses_takes_an_mt5_model() {
    use polyprune::store::{ResultsDir, StudyDir};
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-analyses-study");
    let config = study_file(&dir, &shared);
    let plan = common::bin().args(["study", "plan"]).arg(&config).output().unwrap();
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let run = common::bin().args(["study", "run"]).arg(&config).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let study = StudyDir::new(dir.join("results"));
    let f = folder();
    let expected = selected_by_hand(&f);
    assert_eq!(expected.len(), 7 + 3 + 3, "{expected:?}");
    let cells: Vec<PathBuf> = std::fs::read_dir(study.root.join("cells")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cells.len(), 3, "wanda x (eng, fra) and magnitude: {cells:?}");
    for cell in &cells {
        let rows = ResultsDir::at(cell).read_sparsity().unwrap();
        let mut names: Vec<String> = rows.iter().map(|r| r.layer.clone()).collect();
        names.sort();
        assert_eq!(names, expected, "{}", cell.display());
        assert!(rows.iter().all(|r| 2 * r.pruned == r.total), "{}", cell.display());
        let mut masked: Vec<String> = polyprune::pruned::read_masks(cell).unwrap().into_iter().map(|(e, _)| e.layer).collect();
        masked.sort();
        assert_eq!(masked, expected, "masks of the selected layers only: {}", cell.display());
    }

    let decisions: Value = serde_json::from_str(&std::fs::read_to_string(study.root.join("decided/decisions.json")).unwrap()).unwrap();
    let set = &decisions["sets"][0];
    assert_eq!(set["evaluation"], "xcopa/ita_Latn");
    let comparisons = set["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.iter().filter(|c| c["second"] == "dense").count(), 3, "{comparisons:?}");
    assert!(set["examples"].as_u64().unwrap() >= 10, "at least one round of 10");
    for c in comparisons {
        let (lower, upper, mean) = (c["lower"].as_f64().unwrap(), c["upper"].as_f64().unwrap(), c["mean_difference"].as_f64().unwrap());
        assert!(lower <= mean && mean <= upper, "{c}");
    }

    for id in ["subspace", "neurons", "pruning_error", "probes"] {
        let section: Value =
            serde_json::from_str(&std::fs::read_to_string(study.analysis(None).join(id).join("section.json")).unwrap()).unwrap();
        let caption = section["caption"].as_str().unwrap();
        if id != "pruning_error" {
            assert!(caption.contains("ENCODER's states"), "{id}: {caption}");
        }
    }
    // Pruning error: one row per pruned layer, calibration and evaluation language, decoder
    // blocks numbered after the encoder's 2.
    let error = std::fs::read_to_string(study.analysis(None).join("pruning_error/pruning_error.csv")).unwrap();
    let rows = common::rfc4180_rows(&error, ',');
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (layer, block) = (col("layer"), col("block"));
    let body: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r.len() > 1).collect();
    assert_eq!(body.len(), 3 * 2 * expected.len(), "3 cells x 2 languages x layers");
    for r in &body {
        let want = if r[layer].starts_with("enc.blk.0.") {
            0
        } else if let Some(rest) = r[layer].strip_prefix("dec.blk.") {
            2 + rest[..1].parse::<usize>().unwrap()
        } else {
            1
        };
        assert_eq!(r[block].parse::<f64>().unwrap() as usize, want, "{r:?}");
    }

    let report = common::bin().arg("report").arg(&study.root).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let html = std::fs::read_to_string(study.root.join("report.html")).unwrap();
    for title in [
        "Mask overlap across calibration languages",
        "Language-specific and language-agnostic structure",
        "Language-specific neurons",
        "Pruning error per layer and language",
        "Probes: language identity",
    ] {
        assert!(html.contains(title), "the report lacks {title}");
    }
    assert_eq!(html.matches("ENCODER&#x27;s states").count(), 3, "the subspace, neurons and probes captions");
    // Mask overlap (written by the report's analyses) by depth: the blocks with selected layers, decoder blocks after the
    // encoder's (dec.blk.0 has none).
    let depth = std::fs::read_to_string(study.analysis(None).join("masks/mask_overlap_depth.csv")).unwrap();
    let rows = common::rfc4180_rows(&depth, ',');
    let block = rows[0].iter().position(|h| h == "block").unwrap();
    let blocks: std::collections::BTreeSet<usize> = rows[1..].iter().filter(|r| r.len() > 1).map(|r| r[block].parse().unwrap()).collect();
    assert_eq!(blocks.into_iter().collect::<Vec<_>>(), [0, 1, 3, 4]);
}

/// A study whose filters leave none of the mT5's layers (here a decoder's Hugging Face name) is
/// refused at plan time, naming its layer names.
#[test]
fn a_filter_selecting_no_mt5_layer_is_refused() {
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-analyses-nofilter");
    let config = study_file(&dir, &shared);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(r#"include = ["enc.blk.0.", "dec.blk.2.cross", "ffn_down"]"#, r#"include = ["model.layers.0."]"#);
    std::fs::write(&config, text).unwrap();
    let out = common::bin().args(["study", "plan"]).arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("select none of its layers") && err.contains("enc.blk.0.attn_q.weight"), "{err}");
}

fn gate_record(results: &Path) -> (Value, PathBuf) {
    let runs: Vec<_> = std::fs::read_dir(results.join("gate")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    (serde_json::from_str(&std::fs::read_to_string(runs[0].join("gate.json")).unwrap()).unwrap(), runs[0].clone())
}

/// `gate` on mT5: the dense model against its own `eval ppl` baseline differs by exactly 0 on
/// every document and is not worse (exit 0); a 50% magnitude-pruned candidate (masks) gets a
/// decision that its interval implies, on documents whose NLL is what `eval ppl --masks`
/// gives them (same windows, same model: equal to the printed 6 decimals).
#[test]
fn gate_decides_an_mt5_candidate_against_an_mt5_baseline() {
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-analyses-gate");
    let flores = format!("flores:{}", shared.join("data/sib200").display());
    let model = imported();
    let f = folder();
    let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), Pattern::Unstructured).unwrap();
    let opts = Seq2SeqPruneOptions { method: "magnitude".parse().unwrap(), target, sequential: false };
    let pruned = prune_seq2seq(&f, &[], &opts, &RuntimeOptions::default()).unwrap().to_pruned_model(&f.card.spec);
    let masks = dir.join("magnitude");
    polyprune::pruned::write_masks(&masks, &pruned).unwrap();
    let eval = |results: &Path, masks: Option<&Path>| {
        let mut cmd = common::bin();
        cmd.args(["eval", "ppl", "--model"]).arg(&model).args(["--langs", "eng_Latn,fra_Latn", "--source", &flores]);
        cmd.args(["--limit", "12", "--results"]).arg(results);
        if let Some(m) = masks {
            cmd.arg("--masks").arg(m);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    eval(&dir.join("baseline"), None);
    eval(&dir.join("candidate-ppl"), Some(&masks));
    let gate = |results: &Path, masks: Option<&Path>| {
        let mut cmd = common::bin();
        cmd.args(["gate", "--baseline"]).arg(dir.join("baseline")).arg("--model").arg(&model);
        cmd.args(["--round", "4", "--margin", "0.02", "--results"]).arg(results);
        if let Some(m) = masks {
            cmd.arg("--masks").arg(m);
        }
        let out = cmd.output().unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = gate(&dir.join("dense"), None);
    assert_eq!(code, 0, "{err}");
    let (record, _) = gate_record(&dir.join("dense"));
    assert_eq!(record["decision"], "not-worse");
    for e in record["evaluations"].as_array().unwrap() {
        assert_eq!(e["mean_difference"].as_f64().unwrap(), 0.0, "{e}");
    }

    let (code, err) = gate(&dir.join("pruned"), Some(&masks));
    let (record, run) = gate_record(&dir.join("pruned"));
    let margin = 0.02;
    for e in record["evaluations"].as_array().unwrap() {
        let (lower, upper) = (e["interval"]["lower"].as_f64().unwrap(), e["interval"]["upper"].as_f64().unwrap());
        let implied = if upper < -margin {
            "worse"
        } else if lower > -margin {
            "not-worse"
        } else {
            "undecided"
        };
        assert_eq!(e["decision"], implied, "{e}");
    }
    let expected_code = match record["decision"].as_str().unwrap() {
        "not-worse" => 0,
        "worse" => 1,
        _ => 3,
    };
    assert_eq!(code, expected_code, "{err}");
    // The gate's documents scored as `eval ppl --masks` scores them.
    let documents = |root: &Path| -> BTreeMap<(String, String), f64> {
        let csv = walk(root).into_iter().find(|p| p.ends_with("documents.csv")).unwrap();
        let rows = common::rfc4180_rows(&std::fs::read_to_string(csv).unwrap(), ',');
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
        let (l, d, n) = (col("language"), col("document"), col("nll"));
        rows[1..].iter().filter(|r| r.len() > 1).map(|r| ((r[l].clone(), r[d].clone()), r[n].parse().unwrap())).collect()
    };
    let gated = documents(&run);
    let full = documents(&dir.join("candidate-ppl"));
    assert_eq!(gated.len() as u64, record["examples"].as_u64().unwrap());
    for (key, nll) in &gated {
        assert_eq!(Some(nll), full.get(key), "{key:?}");
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `analyze error|subspace|masks` on mT5 from the command line, with one 50% magnitude pruning
/// given twice: as masks on the dense folder and as a saved pruned folder. Magnitude keeps the
/// dense values it does not prune, so both are the same model and every figure must agree
/// exactly (two ways of reading the weights: masks applied in memory, the saved graphs'
/// tables); the error covers all 47 layers of both stacks in both languages, the subspace
/// probes encoder block 1 of 2 by default, and the masks overlap fully in every block 0..4.
#[test]
fn analyze_takes_an_mt5_model_as_masks_or_as_a_saved_folder() {
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-analyses-cli");
    let flores = shared.join("data/sib200");
    let f = folder();
    let target = SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), Pattern::Unstructured).unwrap();
    let opts = Seq2SeqPruneOptions { method: "magnitude".parse().unwrap(), target, sequential: false };
    let pruned = prune_seq2seq(&f, &[], &opts, &RuntimeOptions::default()).unwrap().to_pruned_model(&f.card.spec);
    let (masks, saved) = (dir.join("masks"), dir.join("saved"));
    polyprune::pruned::write_masks(&masks, &pruned).unwrap();
    polyprune::pruned::seq2seq::save_pruned_seq2seq(&f, &pruned, &saved, &serde_json::json!({"method": "magnitude"})).unwrap();
    let compared = |cmd: &mut std::process::Command| {
        cmd.arg("--model").arg(imported()).arg("--pruned").arg(format!("masks={}", masks.display()));
        cmd.arg("--pruned").arg(format!("saved={}", saved.display())).args(["--langs", "eng_Latn,fra_Latn", "--flores"]).arg(&flores);
    };

    let out = dir.join("error");
    let mut cmd = common::bin();
    cmd.args(["analyze", "error", "--windows", "2", "--seqlen", "16", "--sentences", "4", "--out"]).arg(&out);
    compared(&mut cmd);
    run_ok(&mut cmd);
    let rows = common::rfc4180_rows(&std::fs::read_to_string(out.join("pruning_error/pruning_error.csv")).unwrap(), ',');
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (cal, ev, layer, err) = (col("calibration"), col("evaluation"), col("layer"), col("relative_error"));
    let mut by: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for r in rows[1..].iter().filter(|r| r.len() > 1) {
        by.entry((r[ev].clone(), r[layer].clone())).or_default().insert(r[cal].clone(), r[err].parse().unwrap());
    }
    assert_eq!(by.len(), 2 * 47, "every layer of both stacks in both languages");
    for (key, cells) in &by {
        assert_eq!(cells.len(), 2, "{key:?}");
        assert!(cells["masks"] > 0.0 && cells["masks"] == cells["saved"], "{key:?}: {cells:?}");
    }

    let mut cmd = common::bin();
    cmd.args(["analyze", "subspace", "--sentences", "6"]);
    compared(&mut cmd);
    let printed = run_ok(&mut cmd);
    let line = |model: &str| -> Vec<String> {
        let l = printed.lines().find(|l| l.starts_with(model)).unwrap_or_else(|| panic!("no {model} in\n{printed}"));
        l.split_whitespace().skip(1).map(str::to_string).collect()
    };
    assert_eq!(line("dense")[0], "1", "the middle of 2 encoder blocks: {printed}");
    assert_eq!(line("masks")[..6], line("saved")[..6], "{printed}");

    let printed =
        run_ok(common::bin().args(["analyze", "masks"]).arg(format!("a={}", masks.display())).arg(format!("b={}", saved.display())));
    let depth: Vec<(usize, f64)> = printed
        .lines()
        .filter(|l| l.starts_with("a "))
        .map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            (v[2].parse().unwrap(), v[3].parse().unwrap())
        })
        .collect();
    assert_eq!(depth, (0..5).map(|b| (b, 1.0)).collect::<Vec<_>>(), "{printed}");
}
