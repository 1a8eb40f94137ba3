//! The llama import on a real checkpoint: SmolLM2-135M (English-only, Q4_1 GGUF from the
//! package index) models English FLORES text as a small English model does, and German far worse.

mod common;

use polyprune::eval::{score_documents, Scorer, WindowOptions};
use polyprune::model::ModelDir;
use polyprune::runtime::RuntimeOptions;

fn bits_per_byte(scorer: &mut Scorer, shared: &std::path::Path, lang: &str) -> (f64, f64) {
    let docs: Vec<(String, String)> =
        common::sib200_sentences(shared, lang, "test", 40).into_iter().enumerate().map(|(i, s)| (i.to_string(), s)).collect();
    let scores = score_documents(scorer, &docs, WindowOptions::default(), |_| {}).unwrap();
    let nll: f64 = scores.iter().map(|d| d.nll).sum();
    let tokens: usize = scores.iter().map(|d| d.tokens).sum();
    let bytes: usize = scores.iter().map(|d| d.bytes).sum();
    (nll / std::f64::consts::LN_2 / bytes as f64, (nll / tokens as f64).exp())
}

/// Measured once: English 1.150 bits/byte (perplexity 57.6 per FLORES sentence, scored from
/// `<|endoftext|>`), German 2.4. A wrong rope layout, norm or tokenizer sends English above
/// 3 bits per byte; an English-only model must find German much harder.
#[test]
fn smollm2_models_english_like_an_english_model() {
    let (Some(shared), Some(dir)) = (common::shared(), common::model("smollm2-135m")) else { return };
    let model = ModelDir::open(&dir).unwrap();
    assert_eq!(model.card.architecture, "llama");
    let mut scorer = Scorer::load(&model, &RuntimeOptions::default(), &[]).unwrap();
    let (eng_bpb, eng_ppl) = bits_per_byte(&mut scorer, &shared, "eng_Latn");
    let (deu_bpb, _) = bits_per_byte(&mut scorer, &shared, "deu_Latn");
    assert!(eng_bpb > 0.9 && eng_bpb < 1.3, "English bits per byte {eng_bpb}");
    assert!(eng_ppl < 80.0, "English perplexity {eng_ppl}");
    assert!(deu_bpb > 1.6 * eng_bpb, "German {deu_bpb} vs English {eng_bpb}");
}
