"""Reference for tests/onnx_lossless.rs: an exported decoder that uses the parts of the ONNX
schema a hand-picked subset would drop, and a field-by-field comparison after `prune --save`.

  make DIR        writes DIR/model.onnx (+ tokenizer.json is the test's job); prints its layers
  compare A B     A = original model.onnx, B = saved one: runs onnx.checker on B, then compares
                  every field of every message; only the raw_data of the pruned linear layers may
                  differ, and there only by weights set to zero. Prints a JSON report.
"""

import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, D, FF = 32, 8, 16
LINEARS = ["transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight"]
CUSTOM = "custom.local"


def entry(k, v):
    e = onnx.StringStringEntryProto()
    e.key, e.value = k, v
    return e


def build(out_dir):
    rng = np.random.default_rng(13)
    weights = {
        "transformer.wte.weight": rng.standard_normal((VOCAB, D)).astype(np.float32),
        LINEARS[0]: rng.standard_normal((D, FF)).astype(np.float32),
        LINEARS[1]: rng.standard_normal((FF, D)).astype(np.float32),
        "lm_head.weight": rng.standard_normal((D, VOCAB)).astype(np.float32),
    }
    inits = []
    for name, w in weights.items():
        t = numpy_helper.from_array(w, name)
        t.doc_string = f"weight {name}"
        t.metadata_props.append(entry("origin", "exporter"))
        inits.append(t)

    # A sparse tensor the graph does not read (ONNX's type checks refuse sparse inputs to most
    # ops); an exporter's leftover all the same, which a save must keep.
    values = numpy_helper.from_array(np.array([0.5, -1.0, 2.0], dtype=np.float32), "transformer.h.0.mlp.bias")
    indices = numpy_helper.from_array(np.array([1, 4, 6], dtype=np.int64), "transformer.h.0.mlp.bias_indices")
    sparse = helper.make_sparse_tensor(values, indices, [D])

    act = helper.make_node("ScaledRelu", ["fc"], ["act"], name="transformer.h.0.mlp.act", domain=CUSTOM, doc_string="a local function")
    act.metadata_props.append(entry("source", "gelu approximated"))
    nodes = [
        helper.make_node("Gather", ["transformer.wte.weight", "input_ids"], ["h0"], name="transformer.wte", doc_string="embedding"),
        helper.make_node("MatMul", ["h0", LINEARS[0]], ["fc"], name="transformer.h.0.mlp.c_fc"),
        act,
        helper.make_node("MatMul", ["act", LINEARS[1]], ["proj"], name="transformer.h.0.mlp.c_proj"),
        helper.make_node("Add", ["h0", "proj"], ["h1"], name="transformer.h.0.residual"),
        helper.make_node("MatMul", ["h1", "lm_head.weight"], ["logits"], name="lm_head"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-exported-decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", VOCAB])],
        initializer=inits,
        sparse_initializer=[sparse],
        doc_string="graph doc",
        value_info=[helper.make_tensor_value_info("h1", TensorProto.FLOAT, ["batch", "sequence", D], doc_string="residual stream")],
    )
    graph.metadata_props.append(entry("graph.key", "graph value"))
    graph.value_info[0].metadata_props.append(entry("stage", "after block 0"))

    # ScaledRelu(x) = Relu(x) * scale, with the scale an attribute defaulting in the function.
    function = helper.make_function(
        CUSTOM,
        "ScaledRelu",
        ["x"],
        ["y"],
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Constant", [], ["s"], value_float=1.5),
            helper.make_node("Mul", ["r", "s"], ["y"]),
        ],
        [helper.make_opsetid("", 17)],
        doc_string="relu, scaled",
    )
    function.metadata_props.append(entry("function.key", "function value"))

    # Training info: an algorithm that would scale the first linear layer; never run here.
    algorithm = helper.make_graph(
        [helper.make_node("Mul", [LINEARS[0], "lr"], ["fc_next"])],
        "update",
        [],
        [helper.make_tensor_value_info("fc_next", TensorProto.FLOAT, [D, FF])],
        initializer=[numpy_helper.from_array(np.array(0.9, dtype=np.float32), "lr")],
    )
    training = onnx.TrainingInfoProto()
    training.algorithm.CopyFrom(algorithm)
    training.update_binding.append(entry(LINEARS[0], "fc_next"))

    model = helper.make_model(
        graph,
        producer_name="lossless-test-exporter",
        producer_version="1.0",
        doc_string="an exported model with every optional part",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(CUSTOM, 1)],
        functions=[function],
        ir_version=10,
        model_version=7,
        domain="org.example",
    )
    model.metadata_props.append(entry("exporter.settings", '{"dynamo": false}'))
    # Fields the hand-written schema before issue 13 lacked: a multi-device configuration and
    # a node's sharding over it, and a string present but empty (proto2 keeps its presence).
    config = model.configuration.add()
    config.name, config.num_devices = "two-way", 2
    config.device.extend(["cpu:0", "cpu:1"])
    placement = model.graph.node[1].device_configurations.add()
    placement.configuration_id, placement.pipeline_stage = "two-way", 0
    spec = placement.sharding_spec.add()
    spec.tensor_name = "fc"
    spec.device.extend([0, 1])
    sharded = spec.sharded_dim.add()
    sharded.axis = 2
    sharded.simple_sharding.add(dim_value=FF, num_shards=2)
    model.graph.node[0].domain = ""
    model.training_info.append(training)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, f"{out_dir}/model.onnx")
    print(json.dumps({"linears": LINEARS}))


def compare(a, b, pruned, path, diffs, pruned_report):
    """Walks two messages field by field; records every difference not allowed."""
    names = sorted({f.name for f, _ in a.ListFields()} | {f.name for f, _ in b.ListFields()})
    for name in names:
        field = a.DESCRIPTOR.fields_by_name[name]
        va, vb = getattr(a, name), getattr(b, name)
        where = f"{path}.{name}"
        if field.message_type is not None:
            if not hasattr(va, "ListFields"):  # a repeated field
                if len(va) != len(vb):
                    diffs.append(f"{where}: {len(va)} vs {len(vb)} entries")
                    continue
                for i, (x, y) in enumerate(zip(va, vb)):
                    compare(x, y, pruned, f"{where}[{i}]", diffs, pruned_report)
            elif a.HasField(name) != b.HasField(name):
                diffs.append(f"{where}: present in one only")
            else:
                compare(va, vb, pruned, where, diffs, pruned_report)
        elif isinstance(a, TensorProto) and name == "raw_data" and a.name in pruned:
            before = np.frombuffer(va, dtype=np.float32)
            after = np.frombuffer(vb, dtype=np.float32)
            if before.shape != after.shape or np.any((after != before) & (after != 0)):
                diffs.append(f"{where}: a kept weight of pruned layer {a.name} changed")
            pruned_report[a.name] = float(np.mean(after == 0))
        elif va != vb:
            diffs.append(f"{where}: {va!r:.60} vs {vb!r:.60}")


def main():
    if sys.argv[1] == "make":
        build(sys.argv[2])
        return
    original, saved = onnx.load(sys.argv[2]), onnx.load(sys.argv[3])
    report = {"checker": "ok", "differences": [], "zero_fraction": {}}
    try:
        onnx.checker.check_model(saved, full_check=True)
    except onnx.checker.ValidationError as e:
        report["checker"] = str(e)
    compare(original, saved, set(LINEARS), "model", report["differences"], report["zero_fraction"])
    counts = {"functions": len(saved.functions), "metadata_props": len(saved.metadata_props),
              "sparse_initializer": len(saved.graph.sparse_initializer), "value_info": len(saved.graph.value_info),
              "training_info": len(saved.training_info)}
    report["counts"] = counts
    print(json.dumps(report))


if __name__ == "__main__":
    main()
