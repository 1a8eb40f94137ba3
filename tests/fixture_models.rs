//! Small real models (random tiny Llama, Qwen2 and GPT-2 configurations) authored with
//! transformers/torch by `scripts/make_fixtures.py` and written at set-up by
//! `scripts/fixture_files.py`: our GGUF import, tokenizer derivation and generic ONNX handling
//! against the logits and ids transformers produced.

mod common;

use std::path::{Path, PathBuf};

use polyprune::eval::Scorer;
use polyprune::model::import::{import_gguf, ImportOptions};
use polyprune::model::{ModelDir, Role};
use polyprune::runtime::RuntimeOptions;
use serde_json::Value;

/// The model files `make fixtures` writes (weights redrawn from their seeds).
fn fixture(name: &str) -> PathBuf {
    common::model_fixture(name)
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture_source(name).join("reference.json")).unwrap()).unwrap()
}

fn ids_of(reference: &Value) -> Vec<Vec<u32>> {
    reference["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect())
        .collect()
}

/// Next-token log-probabilities within 1e-4 + 1e-4|x| of transformers' (float64 from the same
/// weights): float32 round-off in a 2-layer model is ~1e-6, while any wrong operation (rope
/// pairing, missing bias, wrong norm) moves them by more than 0.1.
fn assert_logprobs_match(scorer: &mut Scorer, ids: &[Vec<u32>], expected: &Value, what: &str) {
    let seqs: Vec<&[u32]> = ids.iter().map(|r| r.as_slice()).collect();
    let ours = scorer.token_logprobs(&seqs).unwrap();
    for (row, exp_row) in ours.iter().zip(expected.as_array().unwrap()) {
        let exp: Vec<f64> = exp_row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(row.len(), exp.len(), "{what}");
        for (a, b) in row.iter().zip(&exp) {
            assert!((*a as f64 - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{what}: {a} vs {b}");
        }
    }
}

fn import(gguf: &Path, tag: &str) -> ModelDir {
    let out = common::temp_dir(tag);
    import_gguf(gguf, &out, &ImportOptions { max_positions: 128 }).unwrap();
    ModelDir::open(&out).unwrap()
}

fn check_gguf_variant(model: &str, file: &str) {
    let r = reference(model);
    let dir = import(&fixture(model).join(file), &format!("{model}-{file}"));
    let mut scorer = Scorer::load(&dir, &RuntimeOptions::default(), &[]).unwrap();
    assert_logprobs_match(&mut scorer, &ids_of(&r), &r["variants"][file]["next_token_logprob"], &format!("{model}/{file}"));
    // The tokenizer derived from GGUF metadata gives transformers' ids.
    let tok = dir.tokenizer().unwrap();
    for case in r["tokenizer_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ours: Vec<u64> = tok.encode(text, true).unwrap().get_ids().iter().map(|&i| i as u64).collect();
        let theirs: Vec<u64> = case["ids_with_special_tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(ours, theirs, "{model}: {text:?}");
    }
}

#[test]
fn llama_gguf_import_matches_transformers() {
    check_gguf_variant("tiny-llama", "model.gguf");
}

#[test]
fn llama_q8_0_gguf_import_matches_transformers() {
    check_gguf_variant("tiny-llama", "model-q8_0.gguf");
}

#[test]
fn qwen2_gguf_import_matches_transformers() {
    check_gguf_variant("tiny-qwen2", "model.gguf");
}

#[test]
fn imported_card_lists_every_projection_with_its_role_and_tap() {
    let dir = import(&fixture("tiny-qwen2").join("model.gguf"), "qwen2-card");
    let layers = &dir.card.layers;
    assert_eq!(layers.len(), 2 * 7);
    let roles: Vec<Role> = layers.iter().filter(|l| l.block == 1).map(|l| l.role).collect();
    assert_eq!(roles, [Role::Q, Role::K, Role::V, Role::O, Role::Gate, Role::Up, Role::Down]);
    let k = layers.iter().find(|l| l.name == "blk.0.attn_k.weight").unwrap();
    assert_eq!(k.shape, [64, 32], "[in, out]: 2 kv heads x 16");
    assert_eq!(k.input, "blk.0.attn_in");
    let down = layers.iter().find(|l| l.name == "blk.1.ffn_down.weight").unwrap();
    assert_eq!((down.shape, down.input.as_str()), ([128, 64], "blk.1.ffn_down_in"));
}

/// A GPT-2 exported by torch (legacy exporter: Gemm on [in, out]; the tied output layer folded
/// into a separate initializer) is understood from its graph alone: 4 linear layers per block
/// with the right roles, the output layer and embeddings excluded, and scoring heads added in
/// memory give transformers' log-probabilities.
#[test]
fn exported_gpt2_is_inspected_and_scored() {
    let r = reference("tiny-gpt2");
    let dir = ModelDir::open(&fixture("tiny-gpt2")).unwrap();
    let c = &dir.card;
    assert_eq!(c.layers.len(), 8);
    assert_eq!(c.blocks, 2);
    assert_eq!(c.vocab_size, 384);
    let block0: Vec<(Role, [usize; 2])> = c.layers.iter().filter(|l| l.block == 0).map(|l| (l.role, l.shape)).collect();
    assert_eq!(block0, [(Role::Qkv, [64, 192]), (Role::O, [64, 64]), (Role::Up, [64, 256]), (Role::Down, [256, 64])]);
    assert!(!c.has_scoring_heads);
    let mut scorer = Scorer::load(&dir, &RuntimeOptions::default(), &[]).unwrap();
    assert_logprobs_match(&mut scorer, &ids_of(&r), &r["next_token_logprob"], "tiny-gpt2");
}

/// The dynamo export keeps weights in external data and ties the output layer to the
/// embedding through a Transpose; the tied table must not be listed as prunable.
#[test]
fn dynamo_exported_gpt2_with_external_data_is_scored() {
    let r = reference("tiny-gpt2");
    let dir = common::temp_dir("dynamo");
    for f in ["model.onnx", "model.onnx.data"] {
        std::fs::copy(fixture("tiny-gpt2-dynamo").join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(fixture("tiny-gpt2").join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let model = ModelDir::open(&dir).unwrap();
    assert_eq!(model.card.layers.len(), 8);
    assert!(model.card.layers.iter().all(|l| !l.name.contains("wte") && !l.name.contains("lm_head")));
    let mut scorer = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap();
    assert_logprobs_match(&mut scorer, &ids_of(&r), &r["next_token_logprob"], "tiny-gpt2-dynamo");
}

/// Our ONNX schema keeps every field real exports use: decode then encode is byte-identical.
#[test]
fn onnx_schema_round_trips_exported_models_byte_for_byte() {
    use prost::Message;
    let files = [fixture("tiny-gpt2").join("model.onnx"), fixture("tiny-gpt2-dynamo").join("model.onnx")];
    for f in files.iter().map(|p| p.display().to_string()) {
        let bytes = std::fs::read(&f).unwrap();
        let model = polyprune::model::onnx::ModelProto::decode(bytes.as_slice()).unwrap();
        let again = model.encode_to_vec();
        let first_difference = again.iter().zip(&bytes).position(|(a, b)| a != b);
        assert!(
            again.len() == bytes.len() && first_difference.is_none(),
            "{f}: lengths {} vs {}, first difference at {first_difference:?}",
            again.len(),
            bytes.len()
        );
    }
}

#[test]
fn cohere_gguf_import_matches_transformers() {
    check_gguf_variant("tiny-cohere", "model.gguf");
}

/// `model inspect` on an imported Command-R folder: 2 blocks of seven projections, the MLP
/// reading the attention's input tap (one LayerNorm feeds both), and the spec's switches.
#[test]
fn cohere_inspect_shows_parallel_blocks_on_one_norm() {
    use polyprune::model::decoder::Norm;
    let dir = import(&fixture("tiny-cohere").join("model.gguf"), "cohere-inspect");
    let out = common::bin().args(["model", "inspect", dir.dir.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("(command-r)") && text.contains("blocks: 2"), "{text}");
    let row = |name: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(row("blk.1.ffn_gate.weight"), ["blk.1.ffn_gate.weight", "1", "gate", "64x128", "blk.1.attn_in"]);
    assert_eq!(row("blk.1.attn_k.weight"), ["blk.1.attn_k.weight", "1", "k", "64x32", "blk.1.attn_in"]);
    assert_eq!(row("blk.0.ffn_down.weight"), ["blk.0.ffn_down.weight", "0", "down", "128x64", "blk.0.ffn_down_in"]);
    // Per block 64*64*2 + 64*32*2 + 64*128*3 = 36 864 weights.
    assert!(text.contains("14 prunable layers, 73728 prunable weights"), "{text}");
    let spec = dir.card.spec.as_ref().unwrap();
    assert_eq!((spec.norm, spec.parallel_block, spec.logit_scale, spec.tied_output), (Norm::Layer, true, Some(0.625), true));
    assert!(spec.weight_shapes().iter().all(|(n, _)| !n.contains("ffn_norm")));
}

/// Text for calibration and perplexity on the tiny tokenizer (byte-level, so any text works).
fn plain_text() -> String {
    let para = "The keeper counted the steps every evening, wrote the weather in a small book and \
                walked to the harbour in the morning to talk with the sailors about distant cities.";
    (0..40).map(|i| format!("{para} Entry {i}.")).collect::<Vec<_>>().join("\n\n")
}

/// Magnitude, Wanda and SparseGPT prune the Command-R fixture from the
/// command line and save it; each saved folder is exactly half zeros per layer, scores finite,
/// changed log-probabilities, and `ppl` runs on it.
#[test]
fn cohere_prunes_saves_and_scores() {
    use polyprune::model::weights::WeightStore;
    let dense = import(&fixture("tiny-cohere").join("model.gguf"), "cohere-prune");
    let work = common::temp_dir("cohere-prune-work");
    let text = work.join("text.txt");
    std::fs::write(&text, plain_text()).unwrap();
    let source = format!("file:{}", text.display());
    let ids: Vec<u32> = dense.tokenizer().unwrap().encode(plain_text().as_str(), true).unwrap().get_ids()[..40].to_vec();
    let dense_lp = Scorer::load(&dense, &RuntimeOptions::default(), &[]).unwrap().token_logprobs(&[&ids]).unwrap();
    for method in ["magnitude", "wanda", "sparsegpt"] {
        let saved = work.join(method);
        let out = common::bin()
            .args(["prune", "--model", dense.dir.to_str().unwrap(), "--method", method, "--sparsity", "0.5"])
            .args(["--calib", "eng", "--calib-source", &source, "--samples", "4", "--seqlen", "32", "--save"])
            .arg(&saved)
            .arg("--results")
            .arg(work.join("results"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let model = ModelDir::open(&saved).unwrap();
        let store = WeightStore::open(&model.dir, &model.card.graph).unwrap();
        for l in &model.card.layers {
            let w = store.read(&l.name).unwrap();
            let zeros = w.iter().filter(|v| **v == 0.0).count();
            assert_eq!(zeros * 2, w.len(), "{method} {}", l.name);
        }
        let lp = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap().token_logprobs(&[&ids]).unwrap();
        assert!(lp[0].iter().all(|v| v.is_finite() && *v <= 0.0), "{method}");
        assert!(lp[0].iter().zip(&dense_lp[0]).any(|(a, b)| (a - b).abs() > 1e-3), "{method}: pruning changed nothing");
        let ppl = common::bin()
            .args([
                "eval",
                "ppl",
                "--model",
                saved.to_str().unwrap(),
                "--file",
                text.to_str().unwrap(),
                "--context",
                "64",
                "--stride",
                "32",
            ])
            .arg("--results")
            .arg(work.join("results"))
            .output()
            .unwrap();
        assert!(ppl.status.success(), "{method} ppl: {}", String::from_utf8_lossy(&ppl.stderr));
    }
}
