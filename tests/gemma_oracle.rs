//! The imported Gemma 3 270M against the NumPy oracle (`../shared/oracle/gemma3_reference.py`):
//! token ids, per-token log-probabilities, and bits per byte on FLORES. The oracle side reads
//! the SIB-200 files with Python's csv module, this side with polyprune's own reader, so a
//! reader that mangles quoted rows fails here.

mod common;

use std::process::Command;

use polyprune::eval::text_sets::{evaluation_sets, registry};
use polyprune::eval::{score_documents, Scorer, WindowOptions};
use polyprune::model::ModelDir;
use polyprune::runtime::RuntimeOptions;

fn oracle(args: &[&str]) -> Option<Vec<serde_json::Value>> {
    let py = common::python()?;
    let gguf = common::gguf("gemma-3-270m")?;
    let out =
        Command::new(py).arg(common::repo().join("tests/oracle/gemma_oracle.py")).arg(gguf).args(args).output().expect("run the oracle");
    assert!(out.status.success(), "oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// The first `n` test sentences of `lang` as the perplexity path reads them (polyprune's reader).
fn library_sentences(shared: &std::path::Path, lang: &str, n: usize) -> Vec<String> {
    let registry = registry(Some(&shared.join("data/sib200")));
    let sets = evaluation_sets(&[lang.to_string()], Some("flores"), &registry).unwrap();
    sets[0].documents.iter().take(n).map(|(_, text)| text.clone()).collect()
}

const SIB200_LANGS: &[&str] = &[
    "eng_Latn", "arb_Arab", "deu_Latn", "spa_Latn", "rus_Cyrl", "swh_Latn", "zho_Hans", "fra_Latn", "ita_Latn", "por_Latn", "nld_Latn",
    "pol_Latn", "tur_Latn", "vie_Latn", "ind_Latn", "jpn_Jpan", "kor_Hang", "hin_Deva", "ben_Beng", "tha_Thai", "heb_Hebr", "ukr_Cyrl",
    "fin_Latn", "ell_Grek", "yor_Latn", "hau_Latn", "amh_Ethi",
];

/// tokenizer.json derived from the GGUF vocabulary gives the oracle's ids (BOS first) on the
/// first 50 test sentences of all 27 languages (7+ scripts): exact equality.
#[test]
fn token_ids_equal_the_oracle_in_27_languages() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    // The oracle reads the TSV files itself with Python's csv module; this side reads them with
    // polyprune's reader (the perplexity path), so a text difference shows up as different ids.
    let files: Vec<String> =
        SIB200_LANGS.iter().map(|lang| shared.join("data/sib200").join(lang).join("test.tsv").to_string_lossy().into_owned()).collect();
    let mut args = vec!["ids-sib200", "50"];
    args.extend(files.iter().map(|s| s.as_str()));
    let Some(answers) = oracle(&args) else { return };
    let tok = ModelDir::open(&model).unwrap().tokenizer().unwrap();
    let mut checked = 0;
    for (lang, answer) in SIB200_LANGS.iter().zip(&answers) {
        let sentences = library_sentences(&shared, lang, 50);
        let expected = answer["ids"].as_array().unwrap();
        assert_eq!(expected.len(), sentences.len(), "{lang}");
        for (s, e) in sentences.iter().zip(expected) {
            let ours: Vec<u64> = tok.encode(s.as_str(), true).unwrap().get_ids().iter().map(|&i| i as u64).collect();
            let theirs: Vec<u64> = e.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(ours, theirs, "{lang}: {s}");
            checked += 1;
        }
    }
    assert_eq!(checked, 27 * 50);
}

/// Per-token log-probabilities of the ONNX graph match the oracle's float64 log-softmax to 1e-3
/// (absolute, every token) in five scripts. The graph computes in float32 with a different
/// summation order, which moves log-probabilities by about 1e-5; 1e-3 leaves room for that and
/// still fails on any wrong operation (a missing norm or wrong rope base moves them by > 0.1).
#[test]
fn log_probabilities_match_the_oracle_in_five_scripts() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let dir = common::temp_dir("lp");
    let langs = ["eng_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab", "hin_Deva"];
    let sentences: Vec<String> = langs.iter().map(|l| common::sib200_sentences(&shared, l, "test", 2)[1].clone()).collect();
    let file = dir.join("five.txt");
    std::fs::write(&file, sentences.join("\n")).unwrap();
    let Some(answers) = oracle(&["logprobs", file.to_str().unwrap()]) else { return };
    let mut scorer = Scorer::load(&ModelDir::open(&model).unwrap(), &RuntimeOptions::default(), &[]).unwrap();
    for ((lang, sentence), answer) in langs.iter().zip(&sentences).zip(&answers) {
        let ids: Vec<u32> = answer["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(scorer.encode(sentence).unwrap(), ids, "{lang} ids");
        let expected: Vec<f64> = answer["logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let ours = &scorer.token_logprobs(&[&ids]).unwrap()[0];
        assert_eq!(ours.len(), expected.len());
        let worst = ours.iter().zip(&expected).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "{lang}: max |diff| {worst}");
        assert!(expected.len() >= 10, "{lang}: a real sentence");
    }
}

/// Bits per byte on the first 40 SIB-200 test sentences per language (each line its own
/// document, BOS prepended) within 0.005 of the oracle's figures.
///
/// The published figures (eng 1.094, rus 0.692, arb 1.048, swh 2.354) were measured on text
/// that kept the pandas quoting of 1-3 of those 40 rows. The figures below replace, in the
/// oracle's own totals, the oracle's NLL of those rows as quoted by the NLL of the rows as
/// Python's csv module reads them (`gemma_oracle.py logprobs` on both versions; bytes from the
/// csv-read text). The other four languages have no quoted row among their first 40.
#[test]
fn bits_per_byte_match_the_oracle_on_flores() {
    let (Some(shared), Some(model)) = (common::shared(), common::model("gemma-3-270m")) else { return };
    let expected = [
        ("eng_Latn", 1.0892),
        ("deu_Latn", 1.251),
        ("spa_Latn", 1.137),
        ("fra_Latn", 1.109),
        ("rus_Cyrl", 0.6867),
        ("zho_Hans", 1.561),
        ("arb_Arab", 1.0403),
        ("swh_Latn", 2.3500),
    ];
    let mut scorer = Scorer::load(&ModelDir::open(&model).unwrap(), &RuntimeOptions::default(), &[]).unwrap();
    for (lang, bpb) in expected {
        let sentences = library_sentences(&shared, lang, 40);
        assert_eq!(sentences, common::sib200_sentences(&shared, lang, "test", 40), "{lang}: library vs independent reader");
        let docs: Vec<(String, String)> = sentences.into_iter().enumerate().map(|(i, s)| (i.to_string(), s)).collect();
        let scores = score_documents(&mut scorer, &docs, WindowOptions::default(), |_| {}).unwrap();
        let nll: f64 = scores.iter().map(|d| d.nll).sum();
        let bytes: usize = scores.iter().map(|d| d.bytes).sum();
        let ours = nll / std::f64::consts::LN_2 / bytes as f64;
        assert!((ours - bpb).abs() < 0.005, "{lang}: {ours:.4} vs oracle {bpb}");
    }
}
