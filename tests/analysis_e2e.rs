//! The probe on the real model (Gemma 3 270M) and the real runtime: parallel SIB-200 sentences
//! in four languages give finite pooled states that retrieve translations above chance, and the
//! MLP activity counts equal a direct computation (sentence by sentence, no padding, f64 dot
//! products), with and without pruned gate weights.

mod common;

use polyprune::analysis::probe::{probe, tokenize, ProbeOptions, ProbeSentence};
use polyprune::analysis::subspace::{mean_accuracy, retrieval};
use polyprune::model::weights::WeightStore;
use polyprune::model::ModelDir;
use polyprune::runtime::{FloatType, Graph, GraphSource, Input, RuntimeOptions, WeightOverride};

const LANGS: [&str; 4] = ["eng_Latn", "deu_Latn", "fra_Latn", "zho_Hans"];
const SENTENCES: usize = 10;
const BLOCK: usize = 2;

/// Gate pre-activation > 0 counts of `BLOCK` for each sentence run alone.
fn direct_counts(model: &ModelDir, sentences: &[&ProbeSentence], gate: &[f32], f: usize) -> (Vec<u64>, u64) {
    let parts = model.card.parts.as_ref().unwrap();
    let opts = RuntimeOptions::default();
    let mut embed = Graph::load(GraphSource::File(&model.dir.join(&parts.embed)), &opts, &[]).unwrap();
    let mut blocks: Vec<Graph> =
        (0..=BLOCK).map(|k| Graph::load(GraphSource::File(&model.dir.join(&parts.blocks[k])), &opts, &[]).unwrap()).collect();
    let d = 640;
    let mut counts = vec![0u64; f];
    let mut near_zero = 0u64;
    for s in sentences {
        let t = s.tokens.len();
        let ids: Vec<i64> = s.tokens.iter().map(|&x| x as i64).collect();
        let mut h = embed.run_f32(vec![("input_ids", Input::I64 { shape: vec![1, t], data: ids })], &["hidden"]).unwrap().remove(0).data;
        for (k, g) in blocks.iter_mut().enumerate() {
            if k < BLOCK {
                h = g.run_f32(vec![("hidden", Input::F32 { shape: vec![1, t, d], data: &h })], &["hidden_out"]).unwrap().remove(0).data;
            } else {
                let tap = format!("blk.{BLOCK}.ffn_in");
                let x = g.run_f32(vec![("hidden", Input::F32 { shape: vec![1, t, d], data: &h })], &[tap.as_str()]).unwrap().remove(0).data;
                for token in 1..t {
                    for n in 0..f {
                        let pre: f64 = (0..d).map(|i| x[token * d + i] as f64 * gate[i * f + n] as f64).sum();
                        counts[n] += u64::from(pre > 0.0);
                        near_zero += u64::from(pre.abs() < 1e-3);
                    }
                }
            }
        }
    }
    (counts, near_zero)
}

#[test]
fn probe_on_gemma_matches_a_direct_computation() {
    let (Some(dir), Some(shared)) = (common::model("gemma-3-270m"), common::shared()) else { return };
    let t0 = std::time::Instant::now();
    let model = ModelDir::open(&dir).unwrap();
    let tokenizer = model.tokenizer().unwrap();
    let mut triples = Vec::new();
    for lang in LANGS {
        for (i, text) in common::sib200_sentences(&shared, lang, "test", SENTENCES).into_iter().enumerate() {
            triples.push((lang.to_string(), i.to_string(), text));
        }
    }
    let sentences = tokenize(&model, &tokenizer, &triples).unwrap();
    let opts = ProbeOptions { layers: vec![BLOCK, 8], activity: true, batch: 4, runtime: RuntimeOptions::default() };
    let dense = probe(&model, &sentences, &[], &opts, |_| {}).unwrap();

    // Pooled states: finite, and translations are retrieved above chance (1 / SENTENCES).
    let states = &dense.pooled[&8];
    assert!(states.states.iter().all(|x| x.is_finite()));
    let acc = mean_accuracy(&retrieval(states, &states.states));
    eprintln!("retrieval accuracy at block 8: {acc:.3} (chance {:.3})", 1.0 / SENTENCES as f64);
    assert!(acc > 2.0 / SENTENCES as f64, "{acc}");

    // Activity counts of block 2 on English equal the sentence-by-sentence computation,
    // up to pre-activations within 1e-3 of zero (f32 batched vs f64 single).
    let counts = dense.activity.as_ref().unwrap();
    let f = counts.neurons;
    let eng: Vec<&ProbeSentence> = sentences.iter().filter(|s| s.language == "eng_Latn").collect();
    let store = WeightStore::open(&model.dir, &model.card.graph).unwrap();
    let gate_name = format!("blk.{BLOCK}.ffn_gate.weight");
    let gate = store.read(&gate_name).unwrap();
    let (direct, near_zero) = direct_counts(&model, &eng, &gate, f);
    let probe_eng = &counts.active[0][BLOCK * f..(BLOCK + 1) * f];
    let off: u64 = probe_eng.iter().zip(&direct).map(|(a, b)| a.abs_diff(*b)).sum();
    let tokens: u64 = eng.iter().map(|s| s.tokens.len() as u64 - 1).sum();
    assert_eq!(counts.tokens[0], tokens);
    eprintln!("counts off by {off} over {} token-neuron pairs ({near_zero} within 1e-3 of zero)", tokens * f as u64);
    assert!(off <= near_zero, "{off} > {near_zero}");
    assert!(direct.iter().sum::<u64>() > 0);

    // Pruned gate: zero the first half of block 2's gate columns; those neurons never fire,
    // the others count exactly as the direct computation with that gate.
    let mut pruned = gate.clone();
    for row in pruned.chunks_mut(f) {
        row[..f / 2].iter_mut().for_each(|w| *w = 0.0);
    }
    let overrides = vec![WeightOverride::new(gate_name, vec![640, f], pruned.clone(), FloatType::F32)];
    let only_activity = ProbeOptions { layers: vec![], activity: true, batch: 4, runtime: RuntimeOptions::default() };
    let with = probe(&model, &sentences[..SENTENCES], &overrides, &only_activity, |_| {}).unwrap().activity.unwrap();
    let row = &with.active[0][BLOCK * f..(BLOCK + 1) * f];
    assert!(row[..f / 2].iter().all(|&c| c == 0));
    let (direct_pruned, near) = direct_counts(&model, &eng, &pruned, f);
    let off: u64 = row.iter().zip(&direct_pruned).map(|(a, b)| a.abs_diff(*b)).sum();
    assert!(off <= near, "{off} > {near}");
    eprintln!("took {:.1} s", t0.elapsed().as_secs_f64());
}
