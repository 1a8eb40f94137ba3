//! `model synth`: folders of random weights in real shapes, checked against the published
//! configuration numbers written out here (not read from the library's table), and run
//! through the real runtime and the real commands.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use polyprune::model::synth;
use polyprune::runtime::{Graph, GraphSource, Input, RuntimeOptions};
use sha2::{Digest, Sha256};

/// A model's configuration as its `config.json` states it.
struct Config {
    blocks: usize,
    d: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    vocab: usize,
    tied: bool,
    /// Norm gains per block beyond the two pre-norms (Gemma 3: two sandwich norms + q/k norms).
    gemma_norms: bool,
    qkv_bias: bool,
    /// Attention and MLP share one LayerNorm (Cohere): one norm per block.
    parallel: bool,
}

const GEMMA_3_270M: Config = Config {
    blocks: 18,
    d: 640,
    heads: 4,
    kv_heads: 1,
    head_dim: 256,
    ffn: 2048,
    vocab: 262_144,
    tied: true,
    gemma_norms: true,
    qkv_bias: false,
    parallel: false,
};
const GEMMA_3_1B: Config = Config {
    blocks: 26,
    d: 1152,
    heads: 4,
    kv_heads: 1,
    head_dim: 256,
    ffn: 6912,
    vocab: 262_144,
    tied: true,
    gemma_norms: true,
    qkv_bias: false,
    parallel: false,
};
const LLAMA_3_8B: Config = Config {
    blocks: 32,
    d: 4096,
    heads: 32,
    kv_heads: 8,
    head_dim: 128,
    ffn: 14_336,
    vocab: 128_256,
    tied: false,
    gemma_norms: false,
    qkv_bias: false,
    parallel: false,
};
const QWEN2_5_0_5B: Config = Config {
    blocks: 24,
    d: 896,
    heads: 14,
    kv_heads: 2,
    head_dim: 64,
    ffn: 4864,
    vocab: 151_936,
    tied: true,
    gemma_norms: false,
    qkv_bias: true,
    parallel: false,
};
const AYA_23_8B: Config = Config {
    blocks: 32,
    d: 4096,
    heads: 32,
    kv_heads: 8,
    head_dim: 128,
    ffn: 14_336,
    vocab: 256_000,
    tied: true,
    gemma_norms: false,
    qkv_bias: false,
    parallel: true,
};

impl Config {
    /// The prunable layers of the first `blocks` blocks: (name, block, role, [in, out]).
    fn layers(&self, blocks: usize) -> Vec<(String, usize, &'static str, [usize; 2])> {
        let (d, q, kv, f) = (self.d, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.ffn);
        let per_block = [
            ("attn_q", "q", [d, q]),
            ("attn_k", "k", [d, kv]),
            ("attn_v", "v", [d, kv]),
            ("attn_output", "o", [q, d]),
            ("ffn_gate", "gate", [d, f]),
            ("ffn_up", "up", [d, f]),
            ("ffn_down", "down", [f, d]),
        ];
        (0..blocks).flat_map(|b| per_block.iter().map(move |(n, r, s)| (format!("blk.{b}.{n}.weight"), b, *r, *s))).collect()
    }

    /// Every parameter, as a closed form of the configuration.
    fn params(&self, blocks: usize) -> u64 {
        let (d, q, kv, f, hd) = (self.d, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.ffn, self.head_dim);
        let attn = d * q + 2 * d * kv + q * d;
        let mlp = 3 * d * f;
        let norms = if self.gemma_norms {
            4 * d + 2 * hd
        } else if self.parallel {
            d
        } else {
            2 * d
        };
        let bias = if self.qkv_bias { q + 2 * kv } else { 0 };
        let embed = self.vocab * d * if self.tied { 1 } else { 2 };
        (embed + blocks * (attn + mlp + norms + bias) + d) as u64
    }
}

#[test]
fn plans_count_the_parameters_of_the_real_models() {
    for (name, config) in [
        ("gemma-3-270m", &GEMMA_3_270M),
        ("gemma-3-1b", &GEMMA_3_1B),
        ("llama-3-8b", &LLAMA_3_8B),
        // Llama 3.1 8B: Llama 3's shape, with rotary scaling and a longer context.
        ("llama-3.1-8b", &LLAMA_3_8B),
        ("qwen2.5-0.5b", &QWEN2_5_0_5B),
        ("aya-23-8b", &AYA_23_8B),
    ] {
        let plan = synth::plan(name, None, 8192).unwrap();
        assert_eq!(plan.params, config.params(config.blocks), "{name}");
        let truncated = synth::plan(name, Some(2), 8192).unwrap();
        assert_eq!(truncated.params, config.params(2), "{name} --blocks 2");
        // f32 weights plus rotary tables: never less than 4 bytes a parameter.
        assert!(plan.weight_bytes >= 4 * plan.params && plan.disk_bytes > plan.weight_bytes, "{name}");
    }
    // The published sizes: Llama 3 8B has 8.03e9 parameters, Gemma 3 270M 268M (170M of them
    // embeddings), Qwen2.5 0.5B 0.49e9, Gemma 3 1B 1.0e9.
    let within = |name: &str, expected: f64, rel: f64| {
        let p = synth::plan(name, None, 8192).unwrap().params as f64;
        assert!((p / expected - 1.0).abs() < rel, "{name}: {p} vs {expected}");
    };
    within("llama-3-8b", 8.03e9, 0.005);
    within("gemma-3-270m", 268.1e6, 0.005);
    within("qwen2.5-0.5b", 0.494e9, 0.005);
    within("gemma-3-1b", 1.0e9, 0.005);
    within("aya-23-8b", 8.03e9, 0.005);
    // The CLI's plan prints the same total and the per-role rows.
    let out = common::bin().args(["model", "synth", "--like", "llama-3-8b", "--plan"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&LLAMA_3_8B.params(32).to_string()), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["gate", "32", "1879048192", "7.00", "GiB"]), "{text}");
}

#[test]
fn unknown_shapes_suggest_the_nearest_and_list_names_every_shape() {
    // One edit from llama-3-8b and two from llama-3-70b.
    let out = common::bin().args(["model", "synth", "--like", "llama-3-8c", "--plan"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("did you mean 'llama-3-8b'"), "{err}");
    let out = common::bin().args(["model", "synth", "--list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["gemma-3-270m", "gemma-3-1b", "gemma-3-4b", "llama-3-8b", "llama-3-70b", "llama-3.1-8b", "qwen2.5-0.5b", "aya-23-8b"] {
        assert!(text.contains(name), "{name} missing from --list: {text}");
    }
}

/// Synthesizes through the CLI and returns the folder.
fn synth(tag: &str, like: &str, blocks: Option<usize>, seed: u64) -> std::path::PathBuf {
    let dir = common::temp_dir(tag).join("model");
    let mut cmd = common::bin();
    cmd.args(["model", "synth", "--like", like, "--seed", &seed.to_string(), "--max-positions", "512", "-o"]).arg(&dir);
    if let Some(b) = blocks {
        cmd.args(["--blocks", &b.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// `model inspect` lists exactly the layers the configuration implies, block by block.
fn assert_inspect_matches(dir: &Path, config: &Config, blocks: usize, like: &str) {
    let out = common::bin().args(["model", "inspect"]).arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("vocabulary: {}   blocks: {blocks}", config.vocab)), "{text}");
    assert!(text.contains(&format!("synthetic: shape of {like}")), "{text}");
    if blocks < config.blocks {
        assert!(text.contains(&format!("first {blocks} of its {} blocks", config.blocks)), "{text}");
    }
    let listed: Vec<(String, usize, String, [usize; 2])> = text
        .lines()
        .filter(|l| l.starts_with("blk."))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (i, o) = f[3].split_once('x').unwrap();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].to_string(), [i.parse().unwrap(), o.parse().unwrap()])
        })
        .collect();
    let expected: Vec<(String, usize, String, [usize; 2])> =
        config.layers(blocks).into_iter().map(|(n, b, r, s)| (n, b, r.to_string(), s)).collect();
    assert_eq!(listed, expected);
}

/// Logits of a short sequence through `model.logits.onnx`, `[T][V]`.
fn logits(dir: &Path, ids: &[i64]) -> Vec<Vec<f32>> {
    let mut g = Graph::load(GraphSource::File(&dir.join("model.logits.onnx")), &RuntimeOptions::default(), &[]).unwrap();
    let out = g.run_f32(vec![("input_ids", Input::I64 { shape: vec![1, ids.len()], data: ids.to_vec() })], &["logits"]).unwrap();
    let v = *out[0].shape.last().unwrap();
    out[0].data.chunks(v).map(<[f32]>::to_vec).collect()
}

/// Finite logits whose spread is the one the weights were scaled for: the output layer has
/// variance 1/d per weight and the final norm gives the hidden state unit RMS (gains
/// 1 +- 0.035), so each position's logits have standard deviation 1 within a few percent
/// (over >= 128k logits the sampling error is < 1%); [0.8, 1.25] fails for any mis-scaled or
/// collapsed model. Positions must differ (the model reads its input).
fn assert_logits_sensible(dir: &Path, vocab: usize) {
    let ids: Vec<i64> = vec![2, 651, 2134, 9, 17_000, 4, 100, 3];
    let rows = logits(dir, &ids);
    assert_eq!((rows.len(), rows[0].len()), (ids.len(), vocab));
    for (t, row) in rows.iter().enumerate() {
        assert!(row.iter().all(|v| v.is_finite()), "position {t}: non-finite logits");
        let n = row.len() as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((0.8..1.25).contains(&std), "position {t}: logit std {std}");
    }
    let moved = rows[0].iter().zip(&rows[1]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(moved > 0.1, "positions 0 and 1 give the same logits (max |diff| {moved})");
}

fn weights_hash(dir: &Path) -> String {
    let mut f = std::fs::File::open(dir.join("model.onnx.data")).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

#[test]
fn gemma_3_270m_synth_prunes_and_evaluates_like_an_imported_model() {
    let Some(shared) = common::shared() else { return };
    let Some(real) = common::model("gemma-3-270m") else { return };
    let dir = synth("synth-g270", "gemma-3-270m", None, 0);
    assert_inspect_matches(&dir, &GEMMA_3_270M, 18, "gemma-3-270m");
    // The real tokenizer is copied from the imported folder.
    assert_eq!(std::fs::read(dir.join("tokenizer.json")).unwrap(), std::fs::read(real.join("tokenizer.json")).unwrap());
    assert_logits_sensible(&dir, GEMMA_3_270M.vocab);

    let work = dir.parent().unwrap();
    let text = work.join("flores.txt");
    std::fs::write(&text, common::sib200_sentences(&shared, "eng_Latn", "test", 4).join("\n")).unwrap();
    let pruned = work.join("pruned");
    let out = common::bin()
        .args(["prune", "--method", "wanda", "--sparsity", "0.5", "--calib", "eng_Latn", "--samples", "4", "--seqlen", "64", "--model"])
        .arg(&dir)
        .arg("--calib-source")
        .arg(format!("file:{}", text.display()))
        .arg("--save")
        .arg(&pruned)
        .arg("--results")
        .arg(work.join("results"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ppl = |model: &Path| -> f64 {
        let out = common::bin()
            .args(["eval", "ppl", "--format", "csv", "--model"])
            .arg(model)
            .arg("--file")
            .arg(&text)
            .arg("--results")
            .arg(work.join("results"))
            .output()
            .unwrap();
        let csv = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let row: Vec<&str> = csv.lines().nth(1).unwrap_or_else(|| panic!("{csv}")).split(',').collect();
        row[header.iter().position(|h| *h == "perplexity").unwrap()].parse().unwrap()
    };
    let (dense, sparse) = (ppl(&dir), ppl(&pruned));
    // Random logits with std 1 over V tokens: perplexity ~ V * exp(1/2) (the expected
    // log-sum-exp of V unit Gaussians is ln V + 1/2), here within a factor of 2 either way.
    let v = GEMMA_3_270M.vocab as f64;
    assert!(dense > v * 0.8 && dense < v * 3.5, "dense perplexity {dense}");
    assert!(sparse.is_finite() && (sparse - dense).abs() > 1e-6 * dense, "pruning changed nothing: {dense} vs {sparse}");
    remove(&dir);
}

#[test]
fn qwen2_5_synth_is_reproducible_from_its_seed() {
    let a = synth("synth-qwen-a", "qwen2.5-0.5b", Some(2), 7);
    assert_inspect_matches(&a, &QWEN2_5_0_5B, 2, "qwen2.5-0.5b");
    assert_logits_sensible(&a, QWEN2_5_0_5B.vocab);
    let hash_a = weights_hash(&a);
    remove(&a);
    let b = synth("synth-qwen-b", "qwen2.5-0.5b", Some(2), 7);
    assert_eq!(weights_hash(&b), hash_a, "same seed, different weights");
    remove(&b);
    let c = synth("synth-qwen-c", "qwen2.5-0.5b", Some(2), 8);
    assert_ne!(weights_hash(&c), hash_a, "different seeds, same weights");
    remove(&c);
}

#[test]
fn llama_3_8b_one_block_at_full_width() {
    let dir = synth("synth-llama", "llama-3-8b", Some(1), 0);
    assert_inspect_matches(&dir, &LLAMA_3_8B, 1, "llama-3-8b");
    assert_logits_sensible(&dir, LLAMA_3_8B.vocab);
    let tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    assert_eq!(tok.get_vocab_size(true), LLAMA_3_8B.vocab, "the byte-level tokenizer is padded to the vocabulary");
    remove(&dir);
}

#[test]
fn gemma_3_1b_two_blocks() {
    let dir = synth("synth-g1b", "gemma-3-1b", Some(2), 0);
    assert_inspect_matches(&dir, &GEMMA_3_1B, 2, "gemma-3-1b");
    assert_logits_sensible(&dir, GEMMA_3_1B.vocab);
    let card: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&std::fs::read(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["synthetic"]["shape_blocks"], 26);
    assert_eq!(card["synthetic"]["truncated"], true);
    remove(&dir);
}

#[test]
fn aya_23_8b_one_block_at_full_width() {
    let dir = synth("synth-aya", "aya-23-8b", Some(1), 0);
    assert_inspect_matches(&dir, &AYA_23_8B, 1, "aya-23-8b");
    // The logit scale (0.0625) is compensated in the tied embedding's scale: logits std ~1.
    assert_logits_sensible(&dir, AYA_23_8B.vocab);
    let card: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&std::fs::read(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!((card["architecture"].as_str(), card["spec"]["parallel_block"].as_bool()), (Some("command-r"), Some(true)));
    remove(&dir);
}

/// BLOOM 560M (`n_layer` 24, `n_embed` 1024, `n_head` 16, vocabulary 250,880, MLP 4 x 1024,
/// tied head), one block at full width: the fused q/k/v layer and the ungated MLP are what
/// `model inspect` lists, the card carries ALiBi, and the logits have the spread the weights
/// were drawn for.
#[test]
fn bloom_560m_one_block_at_full_width() {
    let dir = synth("synth-bloom", "bloom-560m", Some(1), 0);
    let out = common::bin().args(["model", "inspect"]).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<(String, String, String)> = text
        .lines()
        .filter(|l| l.starts_with("blk."))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect();
    let expected = [
        ("blk.0.attn_qkv.weight", "qkv", "1024x3072"),
        ("blk.0.attn_output.weight", "o", "1024x1024"),
        ("blk.0.ffn_up.weight", "up", "1024x4096"),
        ("blk.0.ffn_down.weight", "down", "4096x1024"),
    ];
    let expected: Vec<(String, String, String)> = expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(listed, expected, "{text}");
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!((card["architecture"].as_str(), card["spec"]["alibi"].as_bool()), (Some("bloom"), Some(true)));
    assert_logits_sensible(&dir, 250_880);
    remove(&dir);
}
