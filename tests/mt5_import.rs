//! mT5 from a GGUF `t5` file as llama.cpp writes it (`make fixtures` writes
//! `.cache/fixtures/gguf-mt5/model.gguf` from the tiny hf-mt5-f32 fixture, see
//! scripts/hf_seq2seq_fixtures.py): the same weights, graphs and scores as the Hugging Face
//! import, and the unigram tokenizer rebuilt from the file's pieces and precompiled charsmap
//! tokenizing as transformers' T5Tokenizer does (`tests/fixtures/gguf-mt5/tokenizer_cases.json`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polyprune::eval::seq2seq::Seq2SeqScorer;
use polyprune::model::seq2seq::import::{import_gguf_seq2seq, import_hf_seq2seq, GGUF_T5_MAX_DISTANCE};
use polyprune::model::seq2seq::{Seq2SeqFolder, SEQ2SEQ_WEIGHTS_FILE};
use polyprune::runtime::RuntimeOptions;
use serde_json::Value;

const HF_FIXTURE: &str = "hf-mt5-f32";
const GGUF_FIXTURE: &str = "gguf-mt5";

fn gguf_file() -> PathBuf {
    common::model_fixture(GGUF_FIXTURE).join("model.gguf")
}

/// The GGUF fixture imported once per test binary.
fn from_gguf() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = common::temp_dir("mt5-gguf");
        import_gguf_seq2seq(&gguf_file(), &out).unwrap();
        out
    })
    .clone()
}

/// The Hugging Face fixture with `relative_attention_max_distance` set to 128, the distance
/// llama.cpp computes T5's buckets with (GGUF has no key for it; the fixture's own is 20),
/// imported through the Hugging Face path that tests/mt5.rs checks against transformers.
fn from_hf_at_gguf_distance() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = common::model_fixture(HF_FIXTURE);
        let copy = common::temp_dir("mt5-hf128-src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        let mut config: Value = serde_json::from_str(&std::fs::read_to_string(copy.join("config.json")).unwrap()).unwrap();
        config["relative_attention_max_distance"] = Value::from(GGUF_T5_MAX_DISTANCE);
        std::fs::write(copy.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();
        let out = common::temp_dir("mt5-hf128");
        import_hf_seq2seq(&copy, &out).unwrap();
        out
    })
    .clone()
}

fn scorer(dir: &Path) -> Seq2SeqScorer {
    Seq2SeqScorer::load(&Seq2SeqFolder::open(dir).unwrap(), &RuntimeOptions::default()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The spec read from the GGUF keys is the Hugging Face config's (at llama.cpp's distance),
/// and the weight file is the same bytes: every tensor found under its llama.cpp name, in
/// the graph's `[in, out]` layout (a transposed, swapped or misnamed tensor changes bytes).
#[test]
fn gguf_import_has_the_hugging_face_imports_spec_and_weights() {
    let gguf = Seq2SeqFolder::open(&from_gguf()).unwrap().card;
    let hf = Seq2SeqFolder::open(&from_hf_at_gguf_distance()).unwrap().card;
    let mut expected = hf.spec.clone();
    expected.architecture = "t5".into();
    assert_eq!(gguf.spec, expected);
    assert_eq!((gguf.spec.encoder_blocks, gguf.spec.decoder_blocks, gguf.spec.max_distance), (2, 3, 128));
    assert!(!gguf.spec.tied_output, "the file has output.weight");
    let a = std::fs::read(from_gguf().join(SEQ2SEQ_WEIGHTS_FILE)).unwrap();
    let b = std::fs::read(from_hf_at_gguf_distance().join(SEQ2SEQ_WEIGHTS_FILE)).unwrap();
    assert!(a.len() > 100_000 && a == b, "weight files differ ({} and {} bytes)", a.len(), b.len());
}

/// Encoder outputs and decoder logits of the two folders on the reference inputs: the same
/// weights and graphs, so the same float32 computation (1e-6 on values of order one allows
/// only a different summation order, which the identical graphs do not have).
#[test]
fn gguf_import_scores_as_the_hugging_face_import() {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture_source(HF_FIXTURE).join("reference.json")).unwrap()).unwrap();
    let (mut g, mut h) = (scorer(&from_gguf()), scorer(&from_hf_at_gguf_distance()));
    let mut worst = 0f64;
    let mut compared = 0;
    for e in reference["encoder"].as_array().unwrap() {
        let (a, b) = (g.encoder_hidden(&ids(&e["ids"])).unwrap(), h.encoder_hidden(&ids(&e["ids"])).unwrap());
        assert_eq!(a.len(), b.len());
        worst = a.iter().zip(&b).fold(worst, |w, (x, y)| w.max((*x as f64 - *y as f64).abs()));
        compared += a.len();
    }
    for d in reference["decoder"].as_array().unwrap() {
        let (context, labels) = (ids(&d["ids"]), ids(&d["labels"]));
        let (a, b) = (g.decoder_logits(&context, &labels).unwrap(), h.decoder_logits(&context, &labels).unwrap());
        assert_eq!(a.len(), labels.len() * 152);
        worst = a.iter().zip(&b).fold(worst, |w, (x, y)| w.max((*x as f64 - *y as f64).abs()));
        compared += a.len();
    }
    eprintln!("{compared} values, worst absolute difference {worst:e}");
    assert!(worst <= 1e-6, "GGUF and Hugging Face imports differ by {worst:e}");
}

/// The rebuilt tokenizer gives transformers' ids (T5Tokenizer converted from the same
/// spiece.model, `</s>` appended) on every committed text: English, French, Spanish,
/// Chinese, Cyrillic, Greek and Arabic (mostly `<unk>` in this vocabulary), full-width
/// letters and ideographic spaces, ligatures, circled and fraction digits, combining accents,
/// leading, trailing and repeated spaces, tabs and newlines, no-break and zero-width spaces,
/// sentinels and `</s>` in the text, the empty text. Exact ids.
#[test]
fn gguf_tokenizer_matches_transformers_t5_tokenizer() {
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture_source(GGUF_FIXTURE).join("tokenizer_cases.json")).unwrap()).unwrap();
    let tok = Seq2SeqFolder::open(&from_gguf()).unwrap().tokenizer().unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    let mut normalized = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected = ids(&case["ids"]);
        assert_eq!(tok.encode(text, true).unwrap().get_ids(), expected.as_slice(), "{text:?}");
        // Where the text holds no special-token text, transformers and the sentencepiece
        // library agree (the reference records both).
        if !text.contains("</s>") && !text.contains("<extra_id_") {
            assert_eq!(expected, ids(&case["sentencepiece_ids"]), "{text:?}");
        }
        if tok.encode(text, true).unwrap().get_ids() != tok.encode(text.replace("  ", " ").trim(), true).unwrap().get_ids() {
            normalized += 1;
        }
    }
    assert_eq!(normalized, 0, "repeated, leading and trailing spaces must not change the ids");
    // Full-width letters and the ideographic space normalize to the ASCII text's pieces.
    let full = tok.encode("Ｔｈｅ\u{3000}ｑｕｉｃｋ", true).unwrap().get_ids().to_vec();
    assert_eq!(full, tok.encode("The quick", true).unwrap().get_ids());
}

/// `model import` of the .gguf file writes an encoder-decoder folder that `model inspect` and
/// `eval ppl` read; its per-line NLL is the Hugging Face import's at the same distance.
#[test]
fn the_command_imports_a_t5_gguf_and_eval_reads_it() {
    let out = common::temp_dir("mt5-gguf-cli");
    let import = common::bin().args(["model", "import"]).arg(gguf_file()).arg("-o").arg(&out).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let said = String::from_utf8_lossy(&import.stdout).to_string();
    assert!(said.contains("(t5, encoder-decoder: 2 encoder and 3 decoder blocks, 47 prunable layers)"), "{said}");
    let inspect = common::bin().args(["model", "inspect"]).arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout).to_string();
    assert!(text.contains("relative buckets: 8 (max distance 128)") && text.contains("47 prunable layers"), "{text}");
    let lines = common::temp_dir("mt5-gguf-lines").join("lines.txt");
    std::fs::write(&lines, "Le renard brun saute par-dessus le chien.\nEl zorro marrón salta.\n").unwrap();
    // (nll, tokens, bytes) per line, from `--format csv`.
    let nll = |model: &Path| -> Vec<(f64, usize, usize)> {
        let o = common::bin()
            .args(["eval", "ppl", "--model"])
            .arg(model)
            .arg("--file")
            .arg(&lines)
            .args(["--per-line", "--context", "12", "--format", "csv", "--results"])
            .arg(common::temp_dir("mt5-gguf-ppl"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows = String::from_utf8(o.stdout).unwrap();
        rows.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
            })
            .collect()
    };
    let (a, b) = (nll(&out), nll(&from_hf_at_gguf_distance()));
    assert_eq!(a.len(), 2, "{a:?}");
    for ((nll_a, tokens_a, bytes_a), (nll_b, tokens_b, bytes_b)) in a.iter().zip(&b) {
        assert_eq!((tokens_a, bytes_a), (tokens_b, bytes_b));
        assert!(*nll_a > 1.0 && (nll_a - nll_b).abs() <= 1e-6 * nll_b.abs(), "{nll_a} vs {nll_b}");
    }
}

/// An encoder-decoder ONNX export laid out as optimum writes it (encoder_model.onnx and
/// decoder_model.onnx from torch's TorchScript exporter, written from the fixture by
/// scripts/hf_seq2seq_fixtures.py) is refused with the reason and the fix, and the reason
/// holds on the export: no linear weight keeps its checkpoint name (each of the 7 matrices of
/// an encoder block and 11 of a decoder block, and the head, is an anonymous `onnx::MatMul_N`),
/// and both graphs carry their own copy of the shared embedding.
#[test]
fn an_optimum_layout_onnx_export_is_refused_with_the_reason() {
    let Some(py) = common::transformers_python() else { return };
    let export = common::temp_dir("mt5-optimum");
    let script = common::repo().join("scripts/hf_seq2seq_fixtures.py");
    let run = std::process::Command::new(&py)
        .arg(&script)
        .args(["onnx-export", "--src"])
        .arg(common::model_fixture(HF_FIXTURE))
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for (file, anonymous_matrices) in [("encoder_model.onnx", 7 * 2), ("decoder_model.onnx", 11 * 3 + 1)] {
        let model = polyprune::model::graph::read_model(&export.join(file)).unwrap();
        let names: Vec<String> = model.graph.unwrap().initializer.iter().map(|t| t.name().to_string()).collect();
        assert!(names.iter().any(|n| n.ends_with("shared.weight")), "{file}: {names:?}");
        let named_linear = ["SelfAttention.q", "SelfAttention.o", "EncDecAttention.k", "DenseReluDense", "lm_head"];
        assert!(!names.iter().any(|n| named_linear.iter().any(|l| n.contains(l))), "{file}: {names:?}");
        assert_eq!(names.iter().filter(|n| n.starts_with("onnx::MatMul_")).count(), anonymous_matrices, "{file}: {names:?}");
    }
    let out = common::temp_dir("mt5-optimum-import").join("model");
    let import = common::bin().args(["model", "import"]).arg(&export).arg("-o").arg(&out).output().unwrap();
    assert!(!import.status.success());
    let said = String::from_utf8_lossy(&import.stderr).to_string();
    for part in
        ["encoder_model.onnx, decoder_model.onnx", "optimum", "onnx::MatMul_N", "Import the Hugging Face folder it was exported from"]
    {
        assert!(said.contains(part), "missing {part:?} in: {said}");
    }
    assert!(!out.exists(), "nothing is written for a refused import");
}

/// `model export --format hf` of the imported mT5: every tensor of the fixture's checkpoint
/// comes back under its name with the same values (bit for bit), and transformers'
/// MT5ForConditionalGeneration loads the folder and computes the reference decoder logits
/// (within 1e-4, the tolerance tests/mt5.rs holds polyprune's own graphs to).
#[test]
fn an_exported_mt5_folder_loads_in_transformers_with_the_same_weights() {
    use polyprune::model::hf::safetensors::Checkpoint;
    let imported = common::temp_dir("mt5-export-src");
    import_hf_seq2seq(&common::model_fixture(HF_FIXTURE), &imported).unwrap();
    let out = common::temp_dir("mt5-export").join("hf");
    let export = common::bin().args(["model", "export"]).arg(&imported).args(["--format", "hf", "-o"]).arg(&out).output().unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let said = String::from_utf8_lossy(&export.stdout).to_string();
    assert!(said.contains("MT5ForConditionalGeneration") && said.contains("float32"), "{said}");
    let (theirs, ours) = (Checkpoint::open(&common::model_fixture(HF_FIXTURE)).unwrap(), Checkpoint::open(&out).unwrap());
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture_source(HF_FIXTURE).join("reference.json")).unwrap()).unwrap();
    let layout = reference["tensors"].as_array().unwrap();
    assert_eq!(layout.len(), 66);
    for t in layout {
        let name = t[0].as_str().unwrap();
        let shape: Vec<usize> = t[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let (a, b) = (theirs.read(name, &shape, false).unwrap().values, ours.read(name, &shape, false).unwrap().values);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()) && a.len() == b.len(), "{name} differs");
    }
    let Some(py) = common::transformers_python() else { return };
    let script = r#"
import json, sys, torch, transformers as tf
model = tf.MT5ForConditionalGeneration.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="eager").eval()
ref = json.load(open(sys.argv[2]))
worst = 0.0
with torch.no_grad():
    for d in ref["decoder"]:
        logits = model(input_ids=torch.tensor([d["ids"]]), labels=torch.tensor([d["labels"]])).logits[0].flatten()
        worst = max(worst, float((logits - torch.tensor(d["logits"])).abs().max()))
print(worst)
"#;
    let run = std::process::Command::new(&py)
        .args(["-c", script])
        .arg(&out)
        .arg(common::fixture_source(HF_FIXTURE).join("reference.json"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let worst: f64 = String::from_utf8_lossy(&run.stdout).trim().parse().unwrap();
    eprintln!("transformers on the export: worst logit difference from the reference {worst:e}");
    assert!(worst <= 1e-4, "transformers' logits on the export differ by {worst:e}");
}

/// The GGUF import against transformers directly, at llama.cpp's distance of 128: the folder
/// exported (`T5ForConditionalGeneration`, relative_attention_max_distance 128) and loaded by
/// transformers gives polyprune's decoder logits on the reference inputs within 1e-4.
#[test]
fn gguf_import_logits_match_transformers_at_distance_128() {
    let Some(py) = common::transformers_python() else { return };
    let out = common::temp_dir("mt5-gguf-export").join("hf");
    polyprune::model::hf::export::export_hf(&from_gguf(), &out, &Default::default()).unwrap();
    let config: Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["architectures"][0].as_str(), config["relative_attention_max_distance"].as_u64()),
        (Some("T5ForConditionalGeneration"), Some(128))
    );
    let script = r#"
import json, sys, torch, transformers as tf
model = tf.AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="eager").eval()
ref = json.load(open(sys.argv[2]))
with torch.no_grad():
    print(json.dumps([model(input_ids=torch.tensor([d["ids"]]), labels=torch.tensor([d["labels"]])).logits[0].flatten().tolist() for d in ref["decoder"]]))
"#;
    let reference = common::fixture_source(HF_FIXTURE).join("reference.json");
    let run = std::process::Command::new(&py).args(["-c", script]).arg(&out).arg(&reference).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let theirs: Vec<Vec<f64>> = serde_json::from_slice(&run.stdout).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&reference).unwrap()).unwrap();
    let mut s = scorer(&from_gguf());
    let mut worst = 0f64;
    for (d, theirs) in reference["decoder"].as_array().unwrap().iter().zip(&theirs) {
        let ours = s.decoder_logits(&ids(&d["ids"]), &ids(&d["labels"])).unwrap();
        assert_eq!(ours.len(), theirs.len());
        worst = ours.iter().zip(theirs).fold(worst, |w, (a, b)| w.max((*a as f64 - b).abs()));
    }
    eprintln!("GGUF import against transformers at distance 128: worst logit difference {worst:e}");
    assert!(worst <= 1e-4, "{worst:e}");
}
