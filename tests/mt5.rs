//! mT5 (encoder-decoder) against transformers and lm-evaluation-harness's seq2seq procedure.
//!
//! The fixture (`make fixtures`, scripts/hf_seq2seq_fixtures.py) is a tiny random
//! MT5ForConditionalGeneration with an untied head, 2 encoder and 3 decoder blocks and 8
//! relative-position buckets reaching their logarithmic and capped ranges; its reference.json
//! holds what the pinned transformers computed from the same weights: encoder outputs, decoder
//! logits, greedy `generate` outputs, and per-pair / per-text log-likelihoods following
//! lm-eval's seq2seq `loglikelihood` and `loglikelihood_rolling`.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use polyprune::eval::seq2seq::Seq2SeqScorer;
use polyprune::model::seq2seq::import::import_hf_seq2seq;
use polyprune::model::seq2seq::Seq2SeqFolder;
use polyprune::model::weights::WeightStore;
use polyprune::prune::{wanda_mask, InputStatistics, LinearWeight, Pattern, Sparsity, SparsityTarget};
use polyprune::pruned::seq2seq::{prune_seq2seq, PrunedSeq2Seq, Seq2SeqPruneOptions};
use polyprune::runtime::{RuntimeOptions, WeightOverride};
use serde_json::Value;

const FIXTURE: &str = "hf-mt5-f32";

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture_source(FIXTURE).join("reference.json")).unwrap()).unwrap()
}

/// The fixture imported once per test binary.
fn imported() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = common::temp_dir("mt5-import");
        import_hf_seq2seq(&common::model_fixture(FIXTURE), &out).unwrap();
        out
    })
    .clone()
}

fn scorer() -> Seq2SeqScorer {
    Seq2SeqScorer::load(&Seq2SeqFolder::open(&imported()).unwrap(), &RuntimeOptions::default()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn log_softmax_rows(logits: &[f32], vocab: usize) -> Vec<Vec<f64>> {
    logits
        .chunks(vocab)
        .map(|row| {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            row.iter().map(|&v| v as f64 - lse).collect()
        })
        .collect()
}

/// Encoder outputs and decoder logits within 1e-4 of transformers' (float32 on both sides;
/// the reference is rounded to 1e-7 / 1e-6). Values are of order one (normed states, logits
/// with a spread near 2), so a wrong bucket, mask, norm or missing scale moves them by far more.
#[test]
fn encoder_and_decoder_outputs_match_transformers() {
    let r = reference();
    assert!(r["logprob_std"].as_f64().unwrap() > 1.0, "the fixture's logits must vary");
    let mut s = scorer();
    let card = Seq2SeqFolder::open(&imported()).unwrap().card;
    assert!(!card.spec.tied_output, "the checkpoint has lm_head.weight: the head is untied");
    assert_eq!((card.spec.encoder_blocks, card.spec.decoder_blocks), (2, 3));
    let mut worst = 0f64;
    for e in r["encoder"].as_array().unwrap() {
        let text = e["text"].as_str().unwrap();
        assert_eq!(s.encode_context(text).unwrap(), ids(&e["ids"]), "ids of {text}");
        let ours = s.encoder_hidden(&ids(&e["ids"])).unwrap();
        let theirs = floats(&e["hidden"]);
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((*a as f64 - b).abs());
        }
    }
    assert!(worst <= 1e-4, "encoder output differs from transformers by {worst:e}");
    eprintln!("encoder output: worst absolute difference from transformers {worst:e}");
    let mut worst = 0f64;
    for d in r["decoder"].as_array().unwrap() {
        let ours = s.decoder_logits(&ids(&d["ids"]), &ids(&d["labels"])).unwrap();
        let theirs = floats(&d["logits"]);
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((*a as f64 - b).abs());
        }
    }
    assert!(worst <= 1e-4, "decoder logits differ from transformers by {worst:e}");
    eprintln!("decoder logits: worst absolute difference from transformers {worst:e}");
}

/// Decoding one token at a time through the self-attention cache gives the full-sequence
/// log-probabilities: float32 round-off only (1e-5 on values of order -5).
#[test]
fn cached_decoding_equals_the_full_sequence() {
    let r = reference();
    let mut s = scorer();
    let vocab = s.spec().vocab_size;
    for d in r["decoder"].as_array().unwrap() {
        let (context, labels) = (ids(&d["ids"]), ids(&d["labels"]));
        let full = log_softmax_rows(&s.decoder_logits(&context, &labels).unwrap(), vocab);
        let cached = s.label_logprobs_cached(&context, &labels).unwrap();
        assert_eq!(cached.len(), labels.len());
        for (t, (&c, &label)) in cached.iter().zip(&labels).enumerate() {
            let f = full[t][label as usize];
            assert!((c as f64 - f).abs() <= 1e-5, "position {t}: cached {c} vs full {f}");
        }
    }
}

/// Every (context, continuation) pair scored as lm-eval's seq2seq `loglikelihood` scores it:
/// same ids (context with `</s>`, continuation without), sums within 1e-5 relative of
/// transformers' (float32 logits, a few dozen tokens), same greedy flags.
#[test]
fn loglikelihood_pairs_match_lm_eval_procedure() {
    let r = reference();
    let mut s = scorer();
    let pairs = r["loglikelihood"].as_array().unwrap();
    assert!(pairs.len() >= 100);
    let mut requests = Vec::new();
    for p in pairs {
        let context = p["context"].as_str().unwrap();
        let continuation = p["continuation"].as_str().unwrap();
        // The fixtures' contexts have no trailing spaces, so lm-eval's move of them is a no-op.
        assert_eq!(context, context.trim_end());
        assert_eq!(s.encode_context(context).unwrap(), ids(&p["context_ids"]), "{context}");
        assert_eq!(s.encode_continuation(continuation).unwrap(), ids(&p["continuation_ids"]), "{continuation}");
        requests.push((ids(&p["context_ids"]), ids(&p["continuation_ids"])));
    }
    let scores = s.loglikelihood(&requests).unwrap();
    let mut worst = 0f64;
    for (p, score) in pairs.iter().zip(&scores) {
        let expected = p["logprob"].as_f64().unwrap();
        let rel = (score.logprob - expected).abs() / expected.abs();
        worst = worst.max(rel);
        assert_eq!(score.greedy, p["greedy"].as_bool().unwrap(), "{}", p["context"]);
    }
    assert!(worst <= 1e-5, "worst relative error {worst:e}");
    eprintln!("{} loglikelihood pairs: worst relative error {worst:e}", pairs.len());
}

/// `loglikelihood_rolling` over windows of 12 tokens: the same windows as lm-eval's
/// procedure (several per text, a partial last one) and the same total.
#[test]
fn rolling_loglikelihood_matches_lm_eval_procedure() {
    let r = reference();
    let mut s = scorer();
    let max_length = r["rolling_max_length"].as_u64().unwrap() as usize;
    for t in r["rolling"].as_array().unwrap() {
        let text = t["text"].as_str().unwrap();
        let tokens = s.encode_context(text).unwrap();
        assert_eq!(tokens, ids(&t["ids"]), "{text}");
        let windows = Seq2SeqScorer::rolling_windows(&tokens, s.spec().eos_token_id, max_length);
        let expected: Vec<(Vec<u32>, Vec<u32>)> = t["windows"].as_array().unwrap().iter().map(|w| (ids(&w[0]), ids(&w[1]))).collect();
        assert_eq!(windows, expected, "{text}");
        let ours = s.loglikelihood_rolling(text, max_length).unwrap();
        let theirs = t["logprob"].as_f64().unwrap();
        assert!((ours - theirs).abs() / theirs.abs() <= 1e-5, "{text}: {ours} vs {theirs}");
    }
}

/// Greedy decoding with the cache gives transformers' `generate` output token for token.
#[test]
fn greedy_generation_matches_transformers_generate() {
    let r = reference();
    let mut s = scorer();
    for g in r["generate"].as_array().unwrap() {
        let out = s.generate_greedy(&ids(&g["ids"]), g["max_new_tokens"].as_u64().unwrap() as usize).unwrap();
        assert_eq!(out, ids(&g["output"]));
    }
}

fn calibration_ids() -> Vec<Vec<u32>> {
    let r = reference();
    let mut out: Vec<Vec<u32>> = r["encoder"].as_array().unwrap().iter().map(|e| ids(&e["ids"])).collect();
    out.extend(r["rolling"].as_array().unwrap().iter().map(|t| ids(&t["ids"])));
    out
}

fn half() -> SparsityTarget {
    SparsityTarget::new(Some(Sparsity::new(0.5).unwrap()), Pattern::Unstructured).unwrap()
}

fn prune(method: &str, sequential: bool) -> PrunedSeq2Seq {
    let folder = Seq2SeqFolder::open(&imported()).unwrap();
    let opts = Seq2SeqPruneOptions { method: method.parse().unwrap(), target: half(), sequential };
    prune_seq2seq(&folder, &calibration_ids(), &opts, &RuntimeOptions::default()).unwrap()
}

/// Magnitude, Wanda and SparseGPT (sequential) prune all 2 x 7 encoder and 3 x 11 decoder
/// layers, each to exactly half of its weights (counted as zeros in the written weights),
/// and the pruned model still scores (finite, and not the dense model's numbers).
#[test]
fn every_pruned_layer_is_exactly_at_its_sparsity() {
    let dense = {
        let mut s = scorer();
        s.loglikelihood(&[(calibration_ids()[0].clone(), calibration_ids()[1].clone())]).unwrap()[0].logprob
    };
    for method in ["magnitude", "wanda", "sparsegpt"] {
        let pruned = prune(method, true);
        assert_eq!(pruned.layers.len(), 2 * 7 + 3 * 11, "{method}");
        let names: Vec<&str> = pruned.layers.iter().map(|l| l.layer.name.as_str()).collect();
        assert_eq!(names[0], "enc.blk.0.attn_q.weight");
        assert!(names.contains(&"dec.blk.2.cross_attn_k.weight") && names.contains(&"dec.blk.0.attn_o.weight"));
        for (layer, w) in pruned.layers.iter().zip(&pruned.overrides) {
            assert_eq!(layer.layer.name, w.name);
            let zeros = w.values().unwrap().iter().filter(|&&v| v == 0.0).count();
            assert_eq!((layer.pruned, zeros), (layer.total / 2, layer.total / 2), "{method} {}", w.name);
        }
        let folder = Seq2SeqFolder::open(&imported()).unwrap();
        let mut s = Seq2SeqScorer::load_with(&folder, &RuntimeOptions::default(), &pruned.overrides, &[]).unwrap();
        let lp = s.loglikelihood(&[(calibration_ids()[0].clone(), calibration_ids()[1].clone())]).unwrap()[0].logprob;
        assert!(lp.is_finite() && (lp - dense).abs() > 1e-3, "{method}: pruned {lp} vs dense {dense}");
    }
}

/// Sequential Wanda calibrates the decoder's cross-attention keys on the pruned encoder's
/// output: its mask equals Wanda's mask computed here from the encoder outputs of a model
/// holding only the pruned encoder weights (through the plain encoder path, which matches
/// transformers), and differs from one-shot Wanda's, calibrated on the dense encoder.
#[test]
fn sequential_cross_attention_sees_the_pruned_encoder() {
    let folder = Seq2SeqFolder::open(&imported()).unwrap();
    let sequential = prune("wanda", true);
    let one_shot = prune("wanda", false);
    let encoder_only: Vec<WeightOverride> = sequential.overrides.iter().filter(|w| w.name.starts_with("enc.")).cloned().collect();
    assert_eq!(encoder_only.len(), 14);
    let mut s = Seq2SeqScorer::load_with(&folder, &RuntimeOptions::default(), &encoder_only, &[]).unwrap();
    let d = s.spec().d_model;
    let mut stats = InputStatistics::new("encoder_hidden", d, false);
    for ids in calibration_ids() {
        stats.accumulate(&s.encoder_hidden(&ids).unwrap(), ids.len()).unwrap();
    }
    let name = "dec.blk.1.cross_attn_k.weight";
    let store = WeightStore::open(&folder.dir, "cross_kv.onnx").unwrap();
    let stored = store.read(name).unwrap();
    let inner = s.spec().inner_dim();
    let rows: Vec<f32> = (0..inner).flat_map(|o| (0..d).map(move |i| (o, i))).map(|(o, i)| stored[i * inner + o]).collect();
    let weight = LinearWeight::new(name, inner, d, rows).unwrap();
    let expected = wanda_mask(name, &weight, &stats, half()).unwrap();
    let kept_in = |p: &PrunedSeq2Seq| -> Vec<bool> {
        let w = p.overrides.iter().find(|w| w.name == name).unwrap();
        (0..inner).flat_map(|o| (0..d).map(move |i| (o, i))).map(|(o, i)| w.values().unwrap()[i * inner + o] != 0.0).collect()
    };
    let ours = kept_in(&sequential);
    let theirs: Vec<bool> = (0..inner).flat_map(|o| (0..d).map(move |i| (o, i))).map(|(o, i)| expected.get(o, i)).collect();
    assert_eq!(ours, theirs);
    assert_ne!(kept_in(&one_shot), ours, "the pruned encoder must change the cross-attention's calibration");
    assert!(sequential.calibration_seconds.contains_key("encoder") && sequential.calibration_seconds.contains_key("decoder"));
    eprintln!("sequential Wanda calibration seconds per stack: {:?}", sequential.calibration_seconds);
}

/// `model import` takes an mT5 folder and `model inspect` lists its 47 layers by stack; the
/// commands that do not read encoder-decoders yet refuse the folder saying so.
#[test]
fn import_and_inspect_name_the_stacks_and_other_commands_refuse() {
    let out = common::temp_dir("mt5-cli");
    let import = common::bin().args(["model", "import"]).arg(common::model_fixture(FIXTURE)).arg("-o").arg(&out).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let said = String::from_utf8_lossy(&import.stdout).to_string();
    assert!(said.contains("2 encoder and 3 decoder blocks, 47 prunable layers"), "{said}");
    let inspect = common::bin().args(["model", "inspect"]).arg(&out).output().unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let text = String::from_utf8_lossy(&inspect.stdout).to_string();
    let row = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}")).to_string();
    assert!(row("enc.blk.1.ffn_gate.weight").split_whitespace().nth(1) == Some("encoder"), "{text}");
    let cross = row("dec.blk.2.cross_attn_k.weight");
    assert_eq!(cross.split_whitespace().collect::<Vec<_>>(), ["dec.blk.2.cross_attn_k.weight", "decoder", "2", "64x64", "encoder_hidden"]);
    assert!(text.contains("47 prunable layers") && text.contains("head: untied"), "{text}");
    let refused = polyprune::model::ModelDir::open(&out).unwrap_err().to_string();
    assert!(refused.contains("encoder-decoder") && refused.contains("eval ppl"), "{refused}");
    // 16-bit storage is for decoders: asking for it is refused, naming the flag, not ignored.
    let half = common::temp_dir("mt5-cli-bf16");
    let import = common::bin()
        .args(["model", "import"])
        .arg(common::model_fixture(FIXTURE))
        .arg("-o")
        .arg(&half)
        .args(["--dtype", "bf16"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&import.stderr);
    assert!(!import.status.success() && err.contains("f32 only") && err.contains("--dtype") && !err.contains("panicked"), "{err}");
    assert!(!half.join("card.json").exists() && !half.join("seq2seq.json").exists());
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `eval ppl --per-line` rows: (nll, tokens, bytes).
fn per_line_nll(model: &std::path::Path, file: &std::path::Path, extra: &[&str]) -> Vec<(f64, usize, usize)> {
    let results = common::temp_dir("mt5-ppl-results");
    let stdout = run_ok(
        common::bin()
            .args(["eval", "ppl", "--model"])
            .arg(model)
            .arg("--file")
            .arg(file)
            .args(["--per-line", "--context", "12", "--format", "csv", "--results"])
            .arg(&results)
            .args(extra),
    );
    let rows: Vec<(f64, usize, usize)> = stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    let run = std::fs::read_dir(results.join("ppl")).unwrap().next().unwrap().unwrap().path();
    let stored = polyprune::store::PerplexityDir::at(&run).read_documents().unwrap();
    assert_eq!(stored.len(), rows.len(), "the results folder holds every line");
    rows
}

fn reference_texts_file() -> (PathBuf, Vec<(String, f64, usize)>) {
    let r = reference();
    let texts: Vec<(String, f64, usize)> = r["rolling"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["text"].as_str().unwrap().to_string(), t["logprob"].as_f64().unwrap(), ids(&t["ids"]).len()))
        .collect();
    let file = common::temp_dir("mt5-ppl").join("lines.txt");
    std::fs::write(&file, texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>().join("\n")).unwrap();
    (file, texts)
}

/// `eval ppl` on the mT5 folder: each line's NLL is lm-eval's seq2seq `loglikelihood_rolling`
/// over windows of `--context` labels, which the reference computed with transformers
/// (several windows per line at 12 tokens); every token of the line, `</s>` included, counts.
#[test]
fn eval_ppl_per_line_is_lm_evals_rolling_loglikelihood() {
    let (file, texts) = reference_texts_file();
    let rows = per_line_nll(&imported(), &file, &[]);
    assert_eq!(rows.len(), texts.len());
    for ((nll, tokens, bytes), (text, logprob, n)) in rows.iter().zip(&texts) {
        assert!((nll + logprob).abs() / logprob.abs() <= 1e-5, "{text}: {nll} vs {}", -logprob);
        assert_eq!((*tokens, *bytes), (*n, text.len()), "{text}");
    }
}

/// A calibration text file for `--calib-source file:` (paragraphs in English and French).
fn calibration_file() -> PathBuf {
    let r = reference();
    let mut paragraphs: Vec<String> = Vec::new();
    for round in 0..40 {
        for e in r["loglikelihood"].as_array().unwrap().iter().take(6) {
            paragraphs.push(format!("{} {} ({round})", e["context"].as_str().unwrap(), e["continuation"].as_str().unwrap()));
        }
    }
    let file = common::temp_dir("mt5-calib").join("calib.txt");
    std::fs::write(&file, paragraphs.join("\n\n")).unwrap();
    file
}

/// `prune` on the mT5 folder, through the command: the saved folder's weights are exactly
/// the library's `prune_seq2seq` on the same calibration windows (drawn here with the
/// library's sampler; text + `</s>` as the encoder's input and the decoder's labels), every
/// layer is exactly half zeros, `sparsity.csv` lists the 47 layers with their stack's roles,
/// and `eval ppl` reads the saved folder and the dense folder with `--masks` alike.
#[test]
fn prune_writes_a_folder_that_eval_reads() {
    use polyprune::calibrate::{CalibrationSet, CalibrationSpec, Mix};
    use polyprune::data::Language;
    let calib = calibration_file();
    let source = format!("file:{}", calib.display());
    let out = common::temp_dir("mt5-pruned").join("wanda");
    let results = common::temp_dir("mt5-prune-results");
    let stdout = run_ok(
        common::bin()
            .args(["prune", "--model"])
            .arg(imported())
            .args(["--method", "wanda", "--sparsity", "0.5", "--calib", "eng", "--calib-source", &source])
            .args(["--samples", "6", "--seqlen", "24", "--save"])
            .arg(&out)
            .arg("--results")
            .arg(&results),
    );
    assert!(stdout.contains("cross_k") && stdout.contains("overall sparsity 0.500000"), "{stdout}");

    let folder = Seq2SeqFolder::open(&imported()).unwrap();
    let spec = CalibrationSpec {
        languages: vec![Language::parse("eng").unwrap()],
        mix: Mix::Even,
        samples: 6,
        seqlen: 24,
        seed: 0,
        source: Some(source.clone()),
    };
    let registry = polyprune::eval::registry(None);
    let set = CalibrationSet::draw(&spec, &registry, &folder.tokenizer().unwrap(), folder.card.spec.eos_token_id).unwrap();
    let eos = folder.card.spec.eos_token_id;
    let sequences: Vec<Vec<u32>> = set.windows.iter().map(|w| w[1..].iter().copied().chain([eos]).collect()).collect();
    let opts = Seq2SeqPruneOptions { method: "wanda".parse().unwrap(), target: half(), sequential: true };
    let library = prune_seq2seq(&folder, &sequences, &opts, &RuntimeOptions::default()).unwrap();
    let saved = Seq2SeqFolder::open(&out).unwrap();
    assert_eq!(library.overrides.len(), 47);
    for w in &library.overrides {
        let graph = Seq2SeqFolder::graph_of(&w.name);
        let stored = WeightStore::open(&saved.dir, graph).unwrap().read(&w.name).unwrap();
        assert_eq!(stored, *w.values().unwrap(), "{}: the saved weights are the library's", w.name);
        assert_eq!(stored.iter().filter(|&&v| v == 0.0).count(), stored.len() / 2, "{}", w.name);
    }

    let run = std::fs::read_dir(results.join("prune")).unwrap().next().unwrap().unwrap().path();
    let rows = polyprune::store::ResultsDir::at(&run).read_sparsity().unwrap();
    assert_eq!(rows.len(), 47);
    assert!(rows.iter().all(|r| r.pruned * 2 == r.total && r.achieved == 0.5));
    let cross = rows.iter().find(|r| r.layer == "dec.blk.1.cross_attn_k.weight").unwrap();
    assert_eq!((cross.role.as_str(), cross.block), ("cross_k", 3), "decoder blocks are numbered after the encoder's");

    let (file, _) = reference_texts_file();
    let dense = per_line_nll(&imported(), &file, &[]);
    let pruned = per_line_nll(&out, &file, &[]);
    let masked = per_line_nll(&imported(), &file, &["--masks", out.to_str().unwrap()]);
    for ((d, p), m) in dense.iter().zip(&pruned).zip(&masked) {
        assert!((p.0 - d.0).abs() > 1e-3, "pruning changes every line's NLL: {} vs {}", p.0, d.0);
        assert!((p.0 - m.0).abs() <= 1e-9 * p.0.abs(), "saved folder {} vs masks {}", p.0, m.0);
    }
}

/// SNIP without calibration text and a layer filter that selects none of the encoder-decoder's
/// layers are refused before any calibration (SNIP and GraSP themselves: tests/mt5_gradients.rs).
#[test]
fn prune_refuses_empty_filters_and_uncalibrated_snip_for_encoder_decoders() {
    for (extra, needle) in [
        (vec!["--method", "snip", "--sparsity", "0.5"], "snip needs calibration data"),
        (vec!["--method", "magnitude", "--sparsity", "0.5", "--include", "blk.99."], "select none of its layers"),
    ] {
        let out = common::bin().args(["prune", "--model"]).arg(imported()).args(&extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "{err}");
        assert!(err.lines().last().unwrap_or_default().contains(needle), "{extra:?}: {err}");
    }
}

/// `prune --include/--exclude` on an encoder-decoder prunes exactly the selected layers, for a
/// method that calibrates (Wanda) and one scored by the reverse pass (SNIP): `sparsity.csv`
/// lists exactly those layers at 50%, and the saved folder keeps every other layer's weights.
#[test]
fn prune_filters_select_encoder_decoder_layers() {
    let calib = calibration_file();
    let source = format!("file:{}", calib.display());
    let dense = Seq2SeqFolder::open(&imported()).unwrap();
    let selected = |n: &str| (n.starts_with("enc.blk.1.") || n.contains("cross")) && !n.contains("cross_attn_o");
    let expected: Vec<String> = dense.card.spec.layers().into_iter().map(|l| l.name).filter(|n| selected(n)).collect();
    assert!(expected.len() > 4 && expected.len() < 47, "{expected:?}");
    for method in ["wanda", "snip"] {
        let out = common::temp_dir(&format!("mt5-filter-{method}"));
        run_ok(
            common::bin()
                .args(["prune", "--model"])
                .arg(imported())
                .args(["--method", method, "--sparsity", "0.5", "--calib", "eng", "--calib-source", &source])
                .args(["--samples", "4", "--seqlen", "16", "--include", "enc.blk.1.,cross", "--exclude", "cross_attn_o"])
                .arg("--save")
                .arg(out.join("saved"))
                .arg("--results")
                .arg(out.join("results")),
        );
        let run = std::fs::read_dir(out.join("results/prune")).unwrap().next().unwrap().unwrap().path();
        let rows = polyprune::store::ResultsDir::at(&run).read_sparsity().unwrap();
        let mut pruned: Vec<String> = rows.iter().map(|r| r.layer.clone()).collect();
        pruned.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(pruned, want, "{method}: the pruned layers are the selected ones");
        assert!(rows.iter().all(|r| r.achieved == 0.5), "{method}");
        let saved = Seq2SeqFolder::open(&out.join("saved")).unwrap();
        for layer in dense.card.spec.layers() {
            let graph = Seq2SeqFolder::graph_of(&layer.name);
            let before = WeightStore::open(&dense.dir, graph).unwrap().read(&layer.name).unwrap();
            let after = WeightStore::open(&saved.dir, graph).unwrap().read(&layer.name).unwrap();
            if selected(&layer.name) {
                assert_eq!(after.iter().filter(|&&v| v == 0.0).count(), after.len() / 2, "{method}: {}", layer.name);
            } else {
                assert_eq!(after, before, "{method}: {} is left out and keeps its dense weights", layer.name);
            }
        }
    }
}

/// `eval tasks` on the mT5 folder through the workflow: every choice's log-likelihood is the
/// library's lm-eval-style `loglikelihood` of (context without trailing whitespace + `</s>`,
/// whitespace + continuation), and MGSM's answers are greedy generation (checked against
/// `generate` in `greedy_generation_matches_transformers_generate`) cut at the stop strings.
#[test]
fn eval_tasks_scores_choices_and_generates_as_lm_eval_does() {
    use polyprune::eval::TaskRecords;
    use polyprune::tasks::{TaskItems, TaskName, TaskSplit};
    use polyprune::workflow::tasks::{evaluate_tasks, TasksOptions};
    let Some(shared) = common::shared() else { return };
    let opts = TasksOptions {
        model: imported(),
        masks: None,
        tasks: vec![TaskName::Xcopa, TaskName::Mgsm],
        languages: vec!["xcopa:zh".into(), "mgsm:en".into()],
        split: TaskSplit::Test,
        shots: 0,
        seed: 0,
        limit: Some(4),
        max_new_tokens: Some(6),
        data: shared.join("data"),
        skip_unavailable: false,
        batch_tokens: 2048,
        runtime: RuntimeOptions::default(),
        results: common::temp_dir("mt5-tasks"),
    };
    let run = evaluate_tasks(&opts, &mut polyprune::progress::Silent).unwrap();
    assert!(run.results_dir.join("examples.csv").is_file());
    let mut s = scorer();
    let load = |task, lang: &str| {
        let options = polyprune::tasks::LoadOptions { split: TaskSplit::Test, shots: 0, seed: 0 };
        let mut l = polyprune::tasks::load(task, lang, &shared.join("data"), &options).unwrap();
        l.items = polyprune::eval::limit_items(l.items, 4, 0);
        l
    };
    let xcopa = load(TaskName::Xcopa, "zh");
    let (TaskItems::Choice(examples), TaskRecords::Choice(records)) = (&xcopa.items, &run.results[0].records) else { panic!("xcopa") };
    assert_eq!(records.len(), 4);
    for (e, r) in examples.iter().zip(records) {
        for (c, ll) in e.choices.iter().zip(&r.lls) {
            let context = c.context().trim_end();
            let continuation = format!("{}{}", &c.context()[context.len()..], c.continuation());
            let pair = (s.encode_context(context).unwrap(), s.encode_continuation(&continuation).unwrap());
            let expected = s.loglikelihood(&[pair]).unwrap()[0].logprob;
            assert!((ll - expected).abs() <= 1e-5 * expected.abs(), "{}: {ll} vs {expected}", e.id);
        }
    }
    let mgsm = load(TaskName::Mgsm, "en");
    let (TaskItems::Generation(examples), TaskRecords::Generation(records)) = (&mgsm.items, &run.results[1].records) else {
        panic!("mgsm")
    };
    assert_eq!(records.len(), 4);
    for (e, (_, g)) in examples.iter().zip(records) {
        let out = s.generate_greedy(&s.encode_context(&e.request.context).unwrap(), 6).unwrap();
        let text = s.decode_text(&out[1..]).unwrap();
        let cut = e.request.until.iter().filter(|u| !u.is_empty()).filter_map(|u| text.find(u.as_str())).min().unwrap_or(text.len());
        assert_eq!(g.text, text[..cut], "{}", e.id);
        assert!(g.new_tokens <= 6);
    }
}

/// A study file over the fixture, with `methods` and calibration in English and French.
fn study_file(dir: &std::path::Path, flores: &std::path::Path, methods: &str) -> PathBuf {
    let model = imported();
    common::StudyFile {
        name: "mt5-test",
        model: &model,
        flores,
        methods,
        samples: 4,
        seqlen: 32,
        calibration: &["eng_Latn", "fra_Latn"],
        perplexity: &["eng_Latn"],
        limit: 4,
        pruning: "",
        tables: "",
    }
    .write(dir)
}

/// `study run` and `report` on the mT5 fixture: every cell has its 47 layers at half, an
/// encoder-decoder's per-block timings, and perplexity equal to `eval ppl`'s workflow on the
/// dense folder with the cell's masks (the same NLL per document); the report renders.
#[test]
fn study_run_and_report_take_an_mt5_model() {
    use polyprune::store::{ResultsDir, StudyDir};
    use polyprune::workflow::perplexity::{perplexity, PerplexityOptions};
    let Some(shared) = common::shared() else { return };
    let dir = common::temp_dir("mt5-study");
    let flores = shared.join("data/sib200");
    let config = study_file(&dir, &flores, r#""wanda", "magnitude""#);
    let run = common::bin().args(["study", "run"]).arg(&config).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let study = StudyDir::new(dir.join("results"));
    let cells: Vec<PathBuf> = std::fs::read_dir(study.root.join("cells")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cells.len(), 3, "wanda x (eng, fra) and magnitude: {cells:?}");
    for cell in &cells {
        let rows = ResultsDir::at(cell).read_sparsity().unwrap();
        assert_eq!(rows.len(), 47, "{}", cell.display());
        assert!(rows.iter().all(|r| 2 * r.pruned == r.total), "{}", cell.display());
        let blocks: Value = serde_json::from_str(&std::fs::read_to_string(cell.join("block_seconds.json")).unwrap()).unwrap();
        let stacks: Vec<&str> = blocks.as_array().unwrap().iter().map(|b| b["stack"].as_str().unwrap()).collect();
        assert_eq!(stacks, ["encoder", "encoder", "decoder", "decoder", "decoder"]);
    }
    let wanda = cells.iter().find(|c| c.file_name().unwrap().to_string_lossy().contains("fra_Latn")).unwrap();
    let stored = ResultsDir::at(wanda).perplexity().read_documents().unwrap();
    let opts = PerplexityOptions {
        model: imported(),
        masks: Some(wanda.clone()),
        file: None,
        languages: vec!["eng_Latn".into()],
        source: Some(format!("flores:{}", flores.display())),
        flores: None,
        limit: Some(4),
        window: polyprune::eval::WindowOptions::default(),
        objective: Default::default(),
        batch_tokens: 2048,
        runtime: RuntimeOptions::default(),
        results: dir.join("ppl"),
    };
    let again = perplexity(&opts, &mut polyprune::progress::Silent).unwrap();
    let docs = &again.scores[0].documents;
    assert_eq!(docs.len(), 4);
    for (row, doc) in stored.iter().zip(docs) {
        assert_eq!((row.document.as_str(), row.tokens), (doc.id.as_str(), doc.tokens));
        assert!((row.nll - doc.nll).abs() <= 1e-9 * doc.nll, "{}: study {} vs eval ppl {}", doc.id, row.nll, doc.nll);
    }
    let report = common::bin().arg("report").arg(&study.root).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert!(study.root.join("report.html").is_file());
}

/// `model synth --like mt5-*` knows the published shapes: `--plan` prints them with the
/// parameter count (mT5-small: 300,176,768, counted by hand in the library's test).
#[test]
fn model_synth_plans_the_mt5_shapes() {
    let plan = run_ok(common::bin().args(["model", "synth", "--like", "mt5-small", "--plan"]));
    assert!(
        plan.contains("8 encoder and 8 decoder blocks, d_model 512, heads 6 x d_kv 64, d_ff 1024, vocabulary 250112, 32 buckets to distance 128; 300176768 parameters"),
        "{plan}"
    );
    let xl = run_ok(common::bin().args(["model", "synth", "--like", "mt5-xl", "--plan"]));
    assert!(xl.contains("24 encoder and 24 decoder blocks, d_model 2048, heads 32 x d_kv 64, d_ff 5120"), "{xl}");
    let list = run_ok(common::bin().args(["model", "synth", "--list"]));
    assert!(list.lines().any(|l| l.starts_with("mt5-base") && l.contains(" 768 ") && l.contains("2048")), "{list}");
}

/// `eval ppl --objective span-corruption`: each line's NLL is that of T5's span-corruption
/// labels for the line's chunks of `--context` tokens, scored with the library's
/// `loglikelihood`; the chunks are checked by brute force: putting each hidden span back in
/// place of its sentinel gives the line's tokens again, the noise is round(15%) of each
/// chunk, and the sentinels are the tokenizer's `<extra_id_k>`. A decoder-only model refuses
/// the objective.
#[test]
fn eval_ppl_span_corruption_scores_t5s_objective() {
    use polyprune::eval::span_corruption::{document_pairs, SpanCorruption};
    let (file, texts) = reference_texts_file();
    let rows = per_line_nll(&imported(), &file, &["--objective", "span-corruption", "--noise-seed", "3"]);
    let mut s = scorer();
    let noise = SpanCorruption::t5(3);
    let extra: Vec<u32> = (0..8).map(|k| s.tokenizer().token_to_id(&format!("<extra_id_{k}>")).unwrap()).collect();
    let eos = s.spec().eos_token_id;
    for (line, ((nll, tokens, _), (text, _, _))) in rows.iter().zip(&texts).enumerate() {
        let pairs = document_pairs(&s, &(line + 1).to_string(), text, 12, &noise).unwrap();
        let ids = s.encode_continuation(text).unwrap();
        let mut rebuilt = Vec::new();
        for ((input, labels), chunk) in pairs.iter().zip(ids.chunks(12)) {
            assert_eq!((input.last(), labels.last()), (Some(&eos), Some(&eos)));
            let mut restored = Vec::new();
            for &t in &input[..input.len() - 1] {
                match extra.iter().position(|&e| e == t) {
                    Some(k) => {
                        let at = labels.iter().position(|&l| l == extra[k]).expect("the sentinel starts a span in the labels");
                        restored.extend(labels[at + 1..].iter().take_while(|&&l| !extra.contains(&l) && l != eos));
                    }
                    None => restored.push(t),
                }
            }
            assert_eq!(restored, chunk, "line {}", line + 1);
            let hidden = labels.iter().filter(|&&l| !extra.contains(&l) && l != eos).count();
            let n = chunk.len().max(2);
            assert_eq!(hidden, if chunk.len() < 2 { 0 } else { ((n as f64 * 0.15).round() as usize).clamp(1, n - 1) });
            rebuilt.extend(restored);
        }
        assert_eq!(rebuilt, ids);
        let expected: f64 = -s.loglikelihood(&pairs).unwrap().iter().map(|p| p.logprob).sum::<f64>();
        // The CSV prints 6 decimals: a rounding of at most 5e-7.
        assert!((nll - expected).abs() <= 1e-6, "line {}: {nll} vs {expected}", line + 1);
        assert_eq!(*tokens, pairs.iter().map(|p| p.1.len()).sum::<usize>());
    }
    let decoder = common::bin()
        .args(["eval", "ppl", "--model"])
        .arg(common::model_fixture("tiny-gpt2"))
        .arg("--file")
        .arg(&file)
        .args(["--objective", "span-corruption", "--results"])
        .arg(common::temp_dir("mt5-span-refused"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&decoder.stderr);
    assert!(!decoder.status.success() && err.contains("decoder-only model: drop the flag"), "{err}");
}

mod span_corruption_masks {
    //! `polyprune::eval::span_corruption`'s mask and construction against counts, a brute-force
    //! enumeration and a hand-written example.
    use polyprune::eval::span_corruption::{corrupt, noise_mask, SpanCorruption};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Every mask has T5's counts: round(15%) noise tokens (1 ..= length - 1), round(noise / 3)
    /// spans (at least one), starting with kept tokens and ending with noise, for every length.
    #[test]
    fn span_corruption_masks_have_t5s_counts() {
        let noise = SpanCorruption::t5(0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for length in 2..300 {
            let mask = noise_mask(length, &noise, &mut rng);
            let n = ((length as f64 * 0.15).round() as usize).clamp(1, length - 1);
            let spans = ((n as f64 / 3.0).round() as usize).max(1);
            assert_eq!(mask.iter().filter(|&&m| m).count(), n, "length {length}");
            let runs = (0..length).filter(|&i| mask[i] && (i == 0 || !mask[i - 1])).count();
            assert_eq!(runs, spans, "length {length}");
            assert!(!mask[0] && mask[length - 1], "length {length}");
        }
    }

    /// For 40 tokens (6 noise tokens in 2 spans, 34 kept in 2 runs) the masks are the
    /// 5 x 33 = 165 compositions, each equally likely: enumerated by brute force, every one is
    /// drawn and none other, each within 5 standard deviations of 1/165 of 33,000 draws.
    #[test]
    fn span_corruption_masks_are_uniform_over_the_compositions() {
        let noise = SpanCorruption::t5(0);
        let mut expected = std::collections::HashMap::new();
        for kept_first in 1..34 {
            for noise_first in 1..6 {
                let mut m = vec![false; kept_first];
                m.extend(vec![true; noise_first]);
                m.extend(vec![false; 34 - kept_first]);
                m.extend(vec![true; 6 - noise_first]);
                expected.insert(m, 0usize);
            }
        }
        assert_eq!(expected.len(), 165);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws = 33_000;
        for _ in 0..draws {
            let m = noise_mask(40, &noise, &mut rng);
            *expected.get_mut(&m).expect("a composition") += 1;
        }
        let mean = draws as f64 / 165.0;
        let sd = (mean * (1.0 - 1.0 / 165.0)).sqrt();
        for (m, count) in &expected {
            assert!((*count as f64 - mean).abs() < 5.0 * sd, "{m:?} drawn {count} times, expected {mean}");
        }
    }

    /// Inputs keep the kept tokens and one sentinel per span; labels are each sentinel and
    /// the span it hides; both end with `</s>` (written out by hand).
    #[test]
    fn span_corruption_replaces_spans_with_sentinels() {
        let ids = [10, 11, 12, 13, 14, 15, 16, 17];
        let mask = [false, true, true, false, false, true, false, true];
        let (input, labels) = corrupt(&ids, &mask, &[99, 98, 97], 1).unwrap();
        assert_eq!(input, [10, 99, 13, 14, 98, 16, 97, 1]);
        assert_eq!(labels, [99, 11, 12, 98, 15, 97, 17, 1]);
        assert!(corrupt(&ids, &mask, &[99], 1).unwrap_err().contains("sentinel"));
    }
}
