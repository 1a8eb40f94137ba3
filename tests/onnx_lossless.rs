//! A user's exported model survives `prune --save` whole: every message and field of the ONNX
//! schema is kept (functions, metadata, sparse initializers, value_info, doc strings, training
//! info, device configurations), and only the pruned weights change. The model is written and
//! the saved one compared field by field by the `onnx` package (scripts/onnx_lossless_reference.py),
//! which also runs `onnx.checker` on the saved model.

mod common;

use std::path::Path;
use std::process::Command;

use prost::Message;

const REFERENCE: &str = "scripts/onnx_lossless_reference.py";

fn python_json(python: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python).arg(common::repo().join(REFERENCE)).args(args).output().unwrap();
    assert!(out.status.success(), "{REFERENCE} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_exported_model_keeps_every_field_through_prune_save() {
    let Some(python) = common::python() else { return };
    let model = common::temp_dir("lossless-model");
    let saved = common::temp_dir("lossless-saved").join("pruned");
    let results = common::temp_dir("lossless-results");
    python_json(&python, &["make", model.to_str().unwrap()]);
    std::fs::copy(common::fixture_source("tiny-gpt2").join("tokenizer.json"), model.join("tokenizer.json")).unwrap();

    // Byte level: our schema decodes and re-encodes the onnx package's bytes exactly.
    let bytes = std::fs::read(model.join("model.onnx")).unwrap();
    let again = polyprune::model::onnx::ModelProto::decode(bytes.as_slice()).unwrap().encode_to_vec();
    assert!(again == bytes, "re-encoding changed the model ({} vs {} bytes)", again.len(), bytes.len());

    let out = common::bin()
        .args(["prune", "--model", model.to_str().unwrap(), "--method", "magnitude", "--sparsity", "0.5"])
        .args(["--save", saved.to_str().unwrap(), "--results", results.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "prune --save: {}", String::from_utf8_lossy(&out.stderr));

    let original = model.join("model.onnx");
    let report = python_json(&python, &["compare", original.to_str().unwrap(), saved.join("model.onnx").to_str().unwrap()]);
    assert_eq!(report["checker"], "ok", "onnx.checker refused the saved model: {report}");
    assert_eq!(report["differences"], serde_json::json!([]), "fields changed by the save: {report}");
    // Magnitude at 0.5 on a 8x16 and a 16x8 layer (128 distinct random weights each) zeroes
    // exactly half of each; no weight of the model was zero before.
    for layer in ["transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight"] {
        assert_eq!(report["zero_fraction"][layer], 0.5, "{layer}: {report}");
    }
    let expected = serde_json::json!({"functions": 1, "metadata_props": 1, "sparse_initializer": 1, "value_info": 1, "training_info": 1});
    assert_eq!(report["counts"], expected);
}
