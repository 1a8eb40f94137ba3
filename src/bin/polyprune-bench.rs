//! `make bench`: throughput of evaluation and calibration on the default model, each compared in
//! the same run with this machine's measured fp32 matrix-multiply rate through the same runtime.
//!
//! Peak: one large MatMul graph (2048^3) run in ONNX Runtime. Evaluation: tokens per second of
//! the scoring graph on FLORES sentences, at about 2 x parameters FLOP per token. Calibration:
//! forward, statistics and solve times for Wanda and SparseGPT (128 x 512 windows by default;
//! POLYPRUNE_BENCH_SAMPLES / POLYPRUNE_BENCH_SEQLEN shrink it).

use std::time::Instant;

use polyprune::calibrate::{CalibrationSet, CalibrationSpec, CaptureMode, CaptureOptions, Mix};
use polyprune::data::{Language, TextRegistry};
use polyprune::eval::{score_documents, Scorer, WindowOptions};
use polyprune::model::builder::{Dim, GraphBuilder};
use polyprune::model::onnx::{data_type, TensorProto};
use polyprune::model::ModelDir;
use polyprune::prune::{Sparsity, SparsityTarget};
use polyprune::pruned::{prune_model, LayerFilter};
use polyprune::runtime::{Graph, GraphSource, Input, RuntimeOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// GFLOP/s of a 2048 x 2048 x 2048 fp32 MatMul in ONNX Runtime (best of 5).
fn matmul_peak(opts: &RuntimeOptions) -> anyhow::Result<f64> {
    const N: usize = 2048;
    let mut g = GraphBuilder::new("peak");
    g.input("a", data_type::FLOAT, &[Dim::Fixed(N as i64), Dim::Fixed(N as i64)]);
    let w: Vec<f32> = (0..N * N).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let raw: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    g.initializer(TensorProto {
        name: "b".into(),
        dims: vec![N as i64, N as i64],
        data_type: data_type::FLOAT,
        raw_data: Some(raw),
        ..Default::default()
    });
    g.op_named("MatMul", &["a", "b"], "c", vec![]);
    g.output("c", data_type::FLOAT, &[Dim::Fixed(N as i64), Dim::Fixed(N as i64)]);
    let bytes = prost::Message::encode_to_vec(&g.finish("polyprune-bench", &[]));
    let dir = std::env::temp_dir();
    let mut graph = Graph::load(GraphSource::Memory { bytes: &bytes, folder: &dir, label: "peak matmul" }, opts, &[])?;
    let a = w.clone();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        graph.run_f32(vec![("a", Input::F32 { shape: vec![N, N], data: &a })], &["c"])?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(2.0 * (N * N * N) as f64 / best / 1e9)
}

fn main() -> anyhow::Result<()> {
    let root = polyprune::util::project_root();
    let model = ModelDir::open(&root.join(".cache/models/gemma-3-270m"))?;
    let opts = RuntimeOptions::default();
    let peak = matmul_peak(&opts)?;
    println!("fp32 MatMul peak (ONNX Runtime, 2048^3): {peak:.1} GFLOP/s");

    // Parameters: the graph's float weights (embedding counted once; it is also the output layer).
    let spec = model.card.spec.clone().expect("imported model");
    let params: usize = spec.weight_shapes().iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    let block_params: usize = model.card.layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
    let flop_per_token = 2.0 * (block_params + spec.vocab_size * spec.d_model) as f64;
    println!("parameters {:.1} M; forward cost {:.3} GFLOP/token (blocks + output layer)", params as f64 / 1e6, flop_per_token / 1e9);

    let registry = TextRegistry::for_project(&root).with_flores_root(root.join("../shared/data/sib200"));
    let eng = Language::parse("eng_Latn")?;
    let docs: Vec<(String, String)> = registry
        .documents_from(eng, "flores", polyprune::data::CorpusSplit::Evaluation)?
        .into_iter()
        .take(env_usize("POLYPRUNE_BENCH_DOCS", 200))
        .map(|d| (d.id, d.text))
        .collect();
    let mut scorer = Scorer::load(&model, &opts, &[])?;
    let t0 = Instant::now();
    let scores = score_documents(&mut scorer, &docs, WindowOptions::default(), |_| {})?;
    let secs = t0.elapsed().as_secs_f64();
    let tokens: usize = scores.iter().map(|d| d.tokens + 1).sum();
    let tps = tokens as f64 / secs;
    println!(
        "evaluation: {tokens} tokens in {secs:.1} s = {tps:.0} tokens/s = {:.1} GFLOP/s = {:.0}% of peak",
        tps * flop_per_token / 1e9,
        100.0 * tps * flop_per_token / 1e9 / peak
    );
    drop(scorer);

    let (samples, seqlen) = (env_usize("POLYPRUNE_BENCH_SAMPLES", 128), env_usize("POLYPRUNE_BENCH_SEQLEN", 512));
    let tokenizer = model.tokenizer()?;
    let cspec = CalibrationSpec { languages: vec![eng], mix: Mix::Even, samples, seqlen, seed: 0, source: None };
    let set = CalibrationSet::draw(&cspec, &TextRegistry::for_project(&root), &tokenizer, model.card.start_token().unwrap_or(2))?;
    let block_flop = 2.0 * block_params as f64;
    for method in ["wanda", "sparsegpt"] {
        let capture = CaptureOptions { mode: CaptureMode::OneShot, batch: 4, runtime: opts.clone(), gram: false };
        let target = SparsityTarget::new(Some(Sparsity::new(0.5)?), "unstructured".parse()?)?;
        let p = prune_model(&model, &method.parse()?, target, &LayerFilter::default(), Some(&set), &capture, |_, _| {})?;
        let t = p.timings;
        let ctps = set.tokens() as f64 / t.forward_s;
        println!(
            "calibration {method} ({samples} x {seqlen}, one pass): forward {:.1} s ({ctps:.0} tokens/s, {:.0}% of peak), statistics {:.1} s, solve {:.1} s ({:.0}% of the forward)",
            t.forward_s,
            100.0 * ctps * block_flop / 1e9 / peak,
            t.statistics_s,
            t.solve_s,
            100.0 * t.solve_s / t.forward_s
        );
    }
    Ok(())
}
