//! Half-precision compute (`--compute half`): the decoder graphs run their matrix products,
//! embeddings and elementwise ops in the folder's stored 16-bit type, with norm statistics,
//! the attention softmax and the final log-softmax in f32.
//!
//! What ONNX Runtime's CPU provider can run in f16 and bf16 is probed op by op here (the table
//! the library refuses `--compute half` on the CPU with is checked against it); the CUDA
//! numerics are measured by `scripts/gpu_check.sh`.

mod common;

use std::collections::HashMap;

use prost::Message;

use polyprune::eval::scorer::PathChoice;
use polyprune::eval::Scorer;
use polyprune::model::builder::{Dim, GraphBuilder};
use polyprune::model::compute::in_compute;
use polyprune::model::hf::import::import_hf_as;
use polyprune::model::import::ImportOptions;
use polyprune::model::onnx::{data_type, type_proto, AttributeProto as A, GraphProto, ModelProto};
use polyprune::model::ModelDir;
use polyprune::runtime::{ComputeChoice, FloatType, Graph, GraphSource, Input, RuntimeOptions, CPU_OPS_WITHOUT_BF16};

/// One op of the half-compute graphs on inputs in `t`: f32 inputs are cast to `t`, the op runs
/// in `t`, its output is cast back to f32. `Err` carries ONNX Runtime's message when the CPU
/// provider has no kernel for it.
fn probe(op: &str, t: FloatType, inputs: &[Tensor], ids: Option<&[i64]>, attrs: Vec<A>) -> Result<Vec<f32>, String> {
    let elem = polyprune::model::builder::onnx_type(t);
    let mut g = GraphBuilder::new("probe");
    let mut names = Vec::new();
    for (k, (shape, _)) in inputs.iter().enumerate() {
        let name = format!("x{k}");
        let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d as i64)).collect();
        g.input(&name, data_type::FLOAT, &dims);
        names.push(g.op("Cast", &[&name], vec![A::int("to", i64::from(elem))]));
    }
    if let Some(ids) = ids {
        g.input("ids", data_type::INT64, &[Dim::Fixed(ids.len() as i64)]);
        names.push("ids".to_string());
    }
    // Shape-taking ops get their int64 operand as a constant.
    match op {
        "Reshape" => names.push(g.vec_i64(&[-1])),
        "Unsqueeze" => names.push(g.vec_i64(&[0])),
        "Slice" => {
            let (s, e, ax) = (g.vec_i64(&[1]), g.vec_i64(&[3]), g.vec_i64(&[1]));
            names.extend([s, e, ax]);
        }
        _ => {}
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let y = g.op(op, &refs, attrs);
    g.op_named("Cast", &[&y], "y", vec![A::int("to", i64::from(data_type::FLOAT))]);
    g.output("y", data_type::FLOAT, &[]);
    let bytes = prost::Message::encode_to_vec(&g.finish("probe", &[]));
    let dir = std::env::temp_dir();
    let mut graph = Graph::load(GraphSource::Memory { bytes: &bytes, folder: &dir, label: op }, &RuntimeOptions::default(), &[])
        .map_err(|e| e.to_string())?;
    let mut feed: Vec<(String, Input)> =
        inputs.iter().enumerate().map(|(k, (shape, data))| (format!("x{k}"), Input::F32 { shape: shape.clone(), data })).collect();
    if let Some(ids) = ids {
        feed.push(("ids".into(), Input::I64 { shape: vec![ids.len()], data: ids.to_vec() }));
    }
    let feed: Vec<(&str, Input)> =
        feed.iter_mut().map(|(n, i)| (n.as_str(), std::mem::replace(i, Input::I64 { shape: vec![], data: vec![] }))).collect();
    let out = graph.run_f32(feed, &["y"]).map_err(|e| e.to_string())?;
    Ok(out.into_iter().next().map(|o| o.data).unwrap_or_default())
}

/// A float input of a probe: its shape and values.
type Tensor = (Vec<usize>, Vec<f32>);

/// One probed op: its name, float inputs, token ids (for Gather) and attributes.
type ProbedOp = (&'static str, Vec<Tensor>, Option<Vec<i64>>, Vec<A>);

/// Every op the half-compute graphs run in the 16-bit type, with inputs that exercise it.
fn half_ops() -> Vec<ProbedOp> {
    let a: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) / 4.0).collect();
    let b: Vec<f32> = (0..8).map(|i| ((i * 5 % 8) as f32 - 3.0) / 3.0).collect();
    let w: Vec<f32> = (0..12).map(|i| ((i * 7 % 12) as f32 - 5.5) / 6.0).collect();
    let m = |d: &[f32]| (vec![2, 4], d.to_vec());
    vec![
        ("Cast", vec![m(&a)], None, vec![A::int("to", i64::from(data_type::FLOAT))]),
        ("MatMul", vec![m(&a), (vec![4, 3], w.clone())], None, vec![]),
        ("Gemm", vec![m(&a), (vec![3, 4], w.clone())], None, vec![A::int("transB", 1), A::float("alpha", 0.5)]),
        ("Gather", vec![(vec![3, 4], w.clone())], Some(vec![2, 0, 2]), vec![A::int("axis", 0)]),
        ("Add", vec![m(&a), m(&b)], None, vec![]),
        ("Sub", vec![m(&a), m(&b)], None, vec![]),
        ("Mul", vec![m(&a), m(&b)], None, vec![]),
        ("Div", vec![m(&a), m(&b.iter().map(|v| v + 2.0).collect::<Vec<_>>())], None, vec![]),
        ("Neg", vec![m(&a)], None, vec![]),
        ("Sigmoid", vec![m(&a)], None, vec![]),
        ("Tanh", vec![m(&a)], None, vec![]),
        ("Concat", vec![m(&a), m(&b)], None, vec![A::int("axis", 1)]),
        ("Slice", vec![m(&a)], None, vec![]),
        ("Reshape", vec![m(&a)], None, vec![]),
        ("Transpose", vec![m(&a)], None, vec![A::ints("perm", &[1, 0])]),
        ("Unsqueeze", vec![m(&a)], None, vec![]),
        ("Identity", vec![m(&a)], None, vec![]),
        // Kept in f32 by design; probed to record whether the CPU could have run them.
        ("Softmax", vec![m(&a)], None, vec![A::int("axis", -1)]),
        ("LogSoftmax", vec![m(&a)], None, vec![A::int("axis", 1)]),
        ("ReduceMean", vec![m(&a)], None, vec![A::ints("axes", &[-1]), A::int("keepdims", 1)]),
        ("Sqrt", vec![m(&b.iter().map(|v| v + 2.0).collect::<Vec<_>>())], None, vec![]),
    ]
}

/// Unit roundoff of a float type: half the distance from 1 to the next value.
fn unit_roundoff(t: FloatType) -> f64 {
    match t {
        FloatType::F32 => 2f64.powi(-24),
        FloatType::F16 => 2f64.powi(-11),
        FloatType::Bf16 => 2f64.powi(-8),
    }
}

/// Every op runs on the CPU in f16; in bf16 exactly the ops the library names in its refusal
/// lack a kernel (ONNX Runtime 1.31.1). The 16-bit ops that run agree with the same op in f32
/// on the same (rounded) inputs: within `k u sum|terms|` for the 4-term products (accumulated
/// in 16 bits at worst) and `u |y|` for the rest, both under `16 u (1 + |y|)` for inputs of
/// magnitude at most 1.
#[test]
fn the_cpu_provider_runs_f16_and_lacks_the_named_bf16_kernels() {
    // Ops half compute keeps in f32 by design: their 16-bit kernels do not matter.
    let kept_f32 = ["Softmax", "LogSoftmax", "ReduceMean", "Sqrt"];
    for t in [FloatType::F16, FloatType::Bf16] {
        let mut missing = Vec::new();
        for (op, inputs, ids, attrs) in half_ops() {
            let rounded: Vec<Tensor> = inputs.iter().map(|(s, d)| (s.clone(), d.iter().map(|&v| t.round(v)).collect())).collect();
            match probe(op, t, &rounded, ids.as_deref(), attrs.clone()) {
                Ok(half) => {
                    let full = probe(op, FloatType::F32, &rounded, ids.as_deref(), attrs).unwrap();
                    assert_eq!(half.len(), full.len(), "{t} {op}");
                    for (h, f) in half.iter().zip(&full) {
                        let bound = 16.0 * unit_roundoff(t) * (1.0 + f64::from(f.abs()));
                        assert!(f64::from((h - f).abs()) <= bound, "{t} {op}: {h} vs {f} (bound {bound:.2e})");
                    }
                }
                Err(e) => {
                    assert!(e.contains("Could not find an implementation"), "{t} {op}: {e}");
                    if !kept_f32.contains(&op) {
                        missing.push(op);
                    }
                }
            }
        }
        let expected: &[&str] = if t == FloatType::F16 { &[] } else { CPU_OPS_WITHOUT_BF16 };
        assert_eq!(missing, expected, "{t}: ops of half compute without a CPU kernel");
    }
}

const ARCHS: [&str; 5] = ["llama", "qwen2", "gemma3", "cohere", "bloom"];

/// The HF fixture of `arch` imported with its matrices in `t`: the bf16 fixture as it is, the
/// f32 one rounded to f16 (no f16 fixture exists; rounding at import is what `--dtype` does).
fn import_as(arch: &str, t: FloatType) -> ModelDir {
    let (fixture, dtype) = match t {
        FloatType::Bf16 => (format!("hf-{arch}-bf16"), None),
        _ => (format!("hf-{arch}-f32"), Some(t)),
    };
    let dir = common::temp_dir(&format!("half-compute-{arch}-{t}"));
    import_hf_as(&common::model_fixture(&fixture), &dir, &ImportOptions { max_positions: 128 }, dtype).unwrap();
    let model = ModelDir::open(&dir).unwrap();
    assert_eq!(model.card.matrix_type(), t, "{arch}");
    model
}

/// The element type of every tensor of `g`, propagated node by node (the builder emits nodes
/// in order). Binary arithmetic must see one type on both sides: a mixed pair (a 16-bit
/// tensor times an f32 constant) is refused by ONNX Runtime, so it is a builder bug.
fn element_types(g: &GraphProto, what: &str) -> HashMap<String, i32> {
    let mut types: HashMap<String, i32> = g.initializer.iter().map(|t| (t.name().to_string(), t.data_type())).collect();
    for i in &g.input {
        if let Some(type_proto::Value::TensorType(t)) = i.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            types.insert(i.name().to_string(), t.elem_type());
        }
    }
    for n in &g.node {
        let of = |k: usize| {
            n.input
                .get(k)
                .and_then(|name| types.get(name))
                .copied()
                .unwrap_or_else(|| panic!("{what}: no type for input {k} of {}", n.name()))
        };
        let attr = |name: &str| n.attribute.iter().find(|a| a.name() == name).and_then(|a| a.i);
        if matches!(n.op_type(), "Add" | "Sub" | "Mul" | "Div" | "MatMul" | "Gemm" | "Concat") {
            for k in 1..n.input.len() {
                assert_eq!(of(k), of(0), "{what}: {} mixes element types", n.name());
            }
        }
        let out = match n.op_type() {
            "Cast" => attr("to").unwrap() as i32,
            "Shape" | "ArgMax" => data_type::INT64,
            "Less" | "Or" | "GreaterOrEqual" => data_type::BOOL,
            "Where" => of(1),
            _ => of(0),
        };
        for o in &n.output {
            types.insert(o.clone(), out);
        }
    }
    types
}

/// Walks `g` (rebuilt in half compute `t`): every matrix product reads `t`, every norm
/// statistic, softmax and log-softmax reads f32, every graph output is what it declares;
/// returns how many products it saw.
fn check_half_structure(g: &GraphProto, t: FloatType, what: &str) -> usize {
    let types = element_types(g, what);
    let half = polyprune::model::builder::onnx_type(t);
    let mut products = 0;
    for n in &g.node {
        let input_types: Vec<i32> = n.input.iter().map(|i| types[i]).collect();
        match n.op_type() {
            "MatMul" | "Gemm" => {
                products += 1;
                assert!(input_types.iter().all(|&x| x == half), "{what}: {} reads {input_types:?}, not {t}", n.name());
            }
            "ReduceMean" | "Softmax" | "LogSoftmax" => {
                assert_eq!(input_types[0], data_type::FLOAT, "{what}: {} does not accumulate in f32", n.name())
            }
            _ => {}
        }
    }
    for o in &g.output {
        let Some(type_proto::Value::TensorType(declared)) = o.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            panic!("{what}: untyped output")
        };
        assert_eq!(types[o.name()], declared.elem_type(), "{what}: output {} is not the type it declares", o.name());
    }
    products
}

/// Every graph of a 16-bit folder, rebuilt in half compute, has the structure half compute
/// promises; rebuilt in f32 it is byte for byte the file import wrote (the rebuild reads the
/// file's own weights and part, so nothing else can change).
#[test]
fn half_compute_graphs_multiply_in_the_stored_type_and_accumulate_in_f32() {
    for arch in ARCHS {
        for t in [FloatType::Bf16, FloatType::F16] {
            let model = import_as(arch, t);
            let spec = model.card.spec.clone().unwrap();
            let mut graphs = 0;
            for entry in std::fs::read_dir(&model.dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "onnx") {
                    continue;
                }
                let what = format!("{arch} {t} {}", path.file_name().unwrap().to_string_lossy());
                let bytes = std::fs::read(&path).unwrap();
                let file = ModelProto::decode(bytes.as_slice()).unwrap();
                assert_eq!(in_compute(&file, &spec, FloatType::F32).unwrap().encode_to_vec(), bytes, "{what}: f32 rebuild");
                let half = in_compute(&file, &spec, t).unwrap();
                let products = check_half_structure(half.graph.as_ref().unwrap(), t, &what);
                let embed_only = path.ends_with("model.embed.onnx");
                assert!(embed_only || products > 0, "{what}: no matrix product");
                assert!(in_compute(&half, &spec, t).is_none(), "{what}: a half graph is not rebuilt again");
                graphs += 1;
            }
            // Full, logits, embed, one per block, prefix, continuation, head.
            assert_eq!(graphs, 6 + spec.blocks, "{arch} {t}");
            // The streamed path's one-block cache graphs are built in memory, from a table.
            let logits = ModelProto::decode(std::fs::read(model.dir.join("model.logits.onnx")).unwrap().as_slice()).unwrap();
            let table =
                logits.graph.unwrap().initializer.into_iter().filter(|w| w.is_external()).map(|w| (w.name().to_string(), w)).collect();
            for with_past in [false, true] {
                let part = polyprune::model::decoder::cached_block_part(&spec, &table, 1, with_past);
                let half = in_compute(&part, &spec, t).unwrap();
                check_half_structure(half.graph.as_ref().unwrap(), t, &format!("{arch} {t} block 1 cache {with_past}"));
            }
        }
    }
}

/// The logits of `model.logits.onnx` for fixed ids (2 rows of 24) under `compute` on the CPU.
fn logits(model: &ModelDir, compute: ComputeChoice) -> Result<Vec<f32>, String> {
    let vocab = model.card.spec.as_ref().unwrap().vocab_size as i64;
    let ids: Vec<i64> = (0..48).map(|i| (i * 7919 + 13) % vocab).collect();
    let opts = RuntimeOptions { compute, ..Default::default() };
    let path = model.dir.join("model.logits.onnx");
    let mut graph = Graph::load(GraphSource::File(&path), &opts, &[]).map_err(|e| e.to_string())?;
    let out = graph.run_f32(vec![("input_ids", Input::I64 { shape: vec![2, 24], data: ids })], &["logits"]).unwrap();
    Ok(out.into_iter().next().unwrap().data)
}

/// The largest |logit| difference half compute in `t` may show against f32 compute, for a
/// model of `blocks` blocks whose largest |logit| is `largest`. Each block rounds its values
/// about 12 times (the norm outputs, q/k/v, the rotary rotation, the softmax probabilities,
/// the attention output and its projection, gate, up, activation, product, down, the residual
/// adds), plus the embedding and the logits: R = 12 L + 2 roundings, each off by at most u
/// relative. Independent rounding errors add like a random walk, so a logit is off by about
/// u sqrt(R) of the largest logit, one standard deviation; the largest of the ~10^4 logits
/// compared lies about 4 of them out. (Measured on the five fixtures in f16: 0.02 to 0.1 of
/// this bound; a wrong graph, such as a missing rotation or mask, is off by whole units.)
fn tolerance(t: FloatType, blocks: usize, largest: f64) -> f64 {
    4.0 * unit_roundoff(t) * ((12 * blocks + 2) as f64).sqrt() * largest
}

/// f16 half compute on the CPU (every op has a kernel there) against f32 compute of the same
/// f16 folder: logits within [`tolerance`], and the scorer's log-likelihoods on every path
/// (full sequence, key/value cache, one block at a time) within twice that (a log-softmax
/// moves by at most twice the largest change of its inputs). The default (`auto`) on the CPU
/// is f32 compute, bit for bit.
#[test]
fn f16_compute_on_the_cpu_stays_within_the_rounding_bound_of_f32_compute() {
    for arch in ARCHS {
        let model = import_as(arch, FloatType::F16);
        let blocks = model.card.spec.as_ref().unwrap().blocks;
        let full = logits(&model, ComputeChoice::F32).unwrap();
        assert_eq!(logits(&model, ComputeChoice::Auto).unwrap(), full, "{arch}: auto on the CPU is f32");
        let half = logits(&model, ComputeChoice::Half).unwrap();
        let diff = full.iter().zip(&half).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
        let largest = full.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
        let tol = tolerance(FloatType::F16, blocks, largest);
        eprintln!("{arch}: max |logit difference| {diff:.3e}, tolerance {tol:.3e} (largest |logit| {largest:.2})");
        assert!(diff > 0.0, "{arch}: half compute changed nothing: the graphs were not rebuilt");
        assert!(diff <= tol, "{arch}: max |logit difference| {diff:.3e} > {tol:.3e}");

        let ids: Vec<Vec<u32>> = (0..3u32).map(|r| (0..20 + 7 * r).map(|i| (i * 31 + r * 7 + 1) % 300).collect()).collect();
        let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let score = |compute: ComputeChoice, path: PathChoice| {
            let opts = RuntimeOptions { compute, ..Default::default() };
            Scorer::load_with(&model, &opts, &[], path).unwrap().token_logprobs(&seqs).unwrap()
        };
        // Not bit for bit across paths, unlike f32 compute (tests/streamed.rs): the CPU
        // provider runs f16 ops it lacks kernels for in f32 between casts and removes cast
        // pairs where it can, so which intermediate results get rounded depends on where a
        // graph is cut (measured on llama: up to 5e-3 between the streamed and resident paths).
        for path in [PathChoice::Auto, PathChoice::FullSequence, PathChoice::Streamed] {
            let (f, h) = (score(ComputeChoice::F32, path), score(ComputeChoice::Half, path));
            let d = f.iter().flatten().zip(h.iter().flatten()).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
            assert!(d > 0.0 && d <= 2.0 * tol, "{arch} {path:?}: max |log-likelihood difference| {d:.3e} (bound {:.3e})", 2.0 * tol);
        }
    }
}

/// An explicit `--compute half` the CPU cannot run (bf16) or that has no 16-bit type to run
/// in (an f32 folder) is refused when the graph loads, naming the ops and the fix.
#[test]
fn half_compute_the_cpu_cannot_run_is_refused_with_the_fix() {
    let bf16 = import_as("llama", FloatType::Bf16);
    let err = logits(&bf16, ComputeChoice::Half).unwrap_err();
    assert!(err.contains("--compute half") && err.contains("no bf16 kernel for MatMul, Gemm") && err.contains("--compute f32"), "{err}");
    assert!(logits(&bf16, ComputeChoice::Auto).is_ok(), "auto on the CPU computes in f32");
    let f32_dir = common::temp_dir("half-compute-llama-f32");
    import_hf_as(&common::model_fixture("hf-llama-f32"), &f32_dir, &ImportOptions { max_positions: 128 }, None).unwrap();
    let err = logits(&ModelDir::open(&f32_dir).unwrap(), ComputeChoice::Half).unwrap_err();
    assert!(err.contains("stores its matrices in f32") && err.contains("--dtype bf16"), "{err}");
}
