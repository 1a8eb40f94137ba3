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
            let zeros = w.data.iter().filter(|&&v| v == 0.0).count();
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
        (0..inner).flat_map(|o| (0..d).map(move |i| (o, i))).map(|(o, i)| w.data[i * inner + o] != 0.0).collect()
    };
    let ours = kept_in(&sequential);
    let theirs: Vec<bool> = (0..inner).flat_map(|o| (0..d).map(move |i| (o, i))).map(|(o, i)| expected.get(o, i)).collect();
    assert_eq!(ours, theirs);
    assert_ne!(kept_in(&one_shot), ours, "the pruned encoder must change the cross-attention's calibration");
    assert!(sequential.calibration_seconds.contains_key("encoder") && sequential.calibration_seconds.contains_key("decoder"));
    eprintln!("sequential Wanda calibration seconds per stack: {:?}", sequential.calibration_seconds);
}

#[test]
fn gradient_methods_are_refused_for_encoder_decoders() {
    let folder = Seq2SeqFolder::open(&imported()).unwrap();
    for method in ["snip", "grasp"] {
        let opts = Seq2SeqPruneOptions { method: method.parse().unwrap(), target: half(), sequential: true };
        let e = prune_seq2seq(&folder, &calibration_ids(), &opts, &RuntimeOptions::default()).err().unwrap().to_string();
        assert!(e.contains("reverse pass") && e.contains("wanda"), "{e}");
    }
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
    assert!(refused.contains("encoder-decoder") && refused.contains("model inspect"), "{refused}");
}
