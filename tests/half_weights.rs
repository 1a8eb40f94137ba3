//! 16-bit weights (`model import --dtype`, `model synth --dtype`): the matrices are stored in
//! f16 or bf16, widened to f32 inside the graphs, and everything else is as in an f32 folder.
//!
//! The strong check: a folder imported in a 16-bit type scores **exactly** (bit for bit) as
//! the f32 folder of the same checkpoint whose matrices were rounded to that type first,
//! since widening is exact and the computation after it is the same f32 graph. The weak check
//! bounds the effect of the rounding itself against the unrounded f32 model.

mod common;

use std::path::Path;

use polyprune::eval::Scorer;
use polyprune::model::hf::import::{import_hf, import_hf_as};
use polyprune::model::import::ImportOptions;
use polyprune::model::weights::WeightStore;
use polyprune::model::ModelDir;
use polyprune::runtime::{FloatType, RuntimeOptions};
use serde_json::Value;

fn reference_ids(name: &str) -> Vec<Vec<u32>> {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture_source(name).join("reference.json")).unwrap()).unwrap();
    r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect())
        .collect()
}

fn logprobs(model: &ModelDir, ids: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let mut scorer = Scorer::load(model, &RuntimeOptions::default(), &[]).unwrap();
    let seqs: Vec<&[u32]> = ids.iter().map(|r| r.as_slice()).collect();
    scorer.token_logprobs(&seqs).unwrap()
}

/// A copy of the f32 folder `from` whose matrices hold their values rounded to `t`.
fn rounded_copy(from: &ModelDir, t: FloatType, to: &Path) -> ModelDir {
    let store = WeightStore::open(&from.dir, &from.card.graph).unwrap();
    let spec = from.card.spec.as_ref().unwrap();
    let rounded: Vec<(String, Vec<f32>)> = spec
        .weight_shapes()
        .into_iter()
        .filter(|(_, dims)| dims.len() == 2)
        .map(|(name, _)| {
            let values = store.read(&name).unwrap().into_iter().map(|v| t.round(v)).collect();
            (name, values)
        })
        .collect();
    let replaced: Vec<(String, &[f32])> = rounded.iter().map(|(n, v)| (n.clone(), v.as_slice())).collect();
    store.save_with(to, &replaced).unwrap();
    ModelDir::open(to).unwrap()
}

fn nll(rows: &[Vec<f32>]) -> Vec<f64> {
    rows.iter().map(|r| -r.iter().map(|&v| v as f64).sum::<f64>()).collect()
}

fn check(arch: &str) {
    let name = format!("hf-{arch}-f32");
    let src = common::model_fixture(&name);
    let ids = reference_ids(&name);
    let opts = ImportOptions { max_positions: 128 };
    let f32_dir = common::temp_dir(&format!("half-{arch}-f32"));
    import_hf(&src, &f32_dir, &opts).unwrap();
    let dense = ModelDir::open(&f32_dir).unwrap();
    let dense_lp = logprobs(&dense, &ids);
    for t in [FloatType::F16, FloatType::Bf16] {
        let what = format!("{arch} {t}");
        let half_dir = common::temp_dir(&format!("half-{arch}-{t}"));
        import_hf_as(&src, &half_dir, &opts, Some(t)).unwrap();
        let half = ModelDir::open(&half_dir).unwrap();
        assert_eq!(half.card.matrix_type(), t, "{what}: the card records the type");
        assert_ne!(half.identity(), dense.identity(), "{what}: rounded weights are another model");
        // Every matrix is stored in the type, every vector in f32.
        let store = WeightStore::open(&half.dir, &half.card.graph).unwrap();
        for (n, dims) in half.card.spec.as_ref().unwrap().weight_shapes() {
            assert_eq!(store.stored_type(&n), if dims.len() == 2 { t } else { FloatType::F32 }, "{what}: {n}");
        }
        let half_lp = logprobs(&half, &ids);
        let reference = rounded_copy(&dense, t, &common::temp_dir(&format!("half-{arch}-{t}-rounded")));
        let rounded_lp = logprobs(&reference, &ids);
        assert_eq!(half_lp, rounded_lp, "{what}: a 16-bit folder scores exactly as the f32 folder of its rounded weights");
        // Rounding moves each weight by at most u (2^-11 for f16, 2^-8 for bf16, relative, to
        // nearest), and these 2-3 block models' per-line NLLs (a few nats per token) move by
        // a small multiple of u; 8u is far below what a misread weight (a wrong byte
        // order or type: values off by orders of magnitude) would do.
        let u = match t {
            FloatType::F16 => 2f64.powi(-11),
            _ => 2f64.powi(-8),
        };
        for (a, b) in nll(&half_lp).iter().zip(nll(&dense_lp)) {
            let rel = (a - b).abs() / b.abs();
            assert!(rel <= 8.0 * u, "{what}: line NLL {a} vs f32 {b} (relative {rel:e}, bound {:e})", 8.0 * u);
            eprintln!("{what}: relative NLL change {rel:e} (u = {u:e})");
        }
        // The weight file holds the matrices in two bytes each.
        let size = |d: &Path| std::fs::metadata(d.join("model.onnx.data")).unwrap().len() as f64;
        assert!(size(&half_dir) < 0.6 * size(&f32_dir), "{what}: weight file {} vs f32 {}", size(&half_dir), size(&f32_dir));
        // Exported without --dtype, the folder's matrices keep their stored type (not the f32
        // checkpoint's they were rounded from).
        let exported = common::temp_dir(&format!("half-{arch}-{t}-export"));
        let report = polyprune::model::hf::export::export_hf(&half.dir, &exported, &Default::default()).unwrap();
        assert_eq!(report.dtype, t, "{what}: export type");
        let _ = std::fs::remove_dir_all(&exported);
    }
}

#[test]
fn llama_in_16_bits_equals_its_rounded_f32_folder() {
    check("llama");
}

/// Gemma 3: tied output layer (the embedding read by Gather and Gemm through one widening)
/// and `1 + w` norms, which stay f32.
#[test]
fn gemma3_in_16_bits_equals_its_rounded_f32_folder() {
    check("gemma3");
}
