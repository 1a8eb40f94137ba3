#!/usr/bin/env python3
"""Author the small, random-weight model fixtures that polyprune's Rust tests load.

Every fixture is made from a fixed seed and a tiny configuration; nothing is downloaded.
The repository keeps no weights: this script writes, under ``--out`` (normally
``tests/fixtures``), what the weights cannot be redrawn into, and ``scripts/fixture_files.py``
(run by ``make fixtures``, NumPy only) redraws the weights and writes the model files.

* ``tiny-gpt2/``         GPT-2 (2 layers) exported with the legacy TorchScript ONNX exporter,
                          kept as ``graph.onnx`` with empty weights plus ``weights.json``; its
                          byte-level BPE ``tokenizer.json`` and ``reference.json``.
* ``tiny-gpt2-dynamo/``  the same weights exported with ``dynamo=True`` (written with external
                          data at set-up), skipped with a message when the exporter is unavailable.
* ``tiny-llama/``        a LlamaForCausalLM, written at set-up as GGUF v3 the way llama.cpp's
                          HF->GGUF converter lays it out (q/k rows permuted for interleaved rope)
                          plus an F16/Q8_0 variant; ``tokenizer.json`` and ``reference.json``.
* ``tiny-qwen2/``        a Qwen2ForCausalLM as GGUF v3 (HF row order, "neox" rope, q/k/v biases,
                          tied embeddings, vocabulary padded with ``[PADi]`` tokens).
* ``tiny-cohere/``       a CohereForCausalLM (Command-R / Aya-23 architecture) as GGUF v3 with
                          ``general.architecture = command-r``: one LayerNorm per block feeding
                          attention and MLP in parallel, interleaved rope in HF row order, tied
                          embeddings, ``logit_scale``.

Reference logits come from the transformers models in float32 after their weights were
rounded exactly the way the files store them, so a correct reader reproduces them up to
float32 round-off.  After writing, the script runs fixture_files.py into ``--build`` and checks
those files independently:
onnxruntime against torch for the ONNX files, and a from-scratch numpy forward pass that
reads only the GGUF file (ggml rope conventions) against the transformers logits.

Run with the fixture virtual environment (torch, transformers, tokenizers, onnx,
onnxscript, onnxruntime, gguf, numpy):

    /tmp/fixvenv/bin/python scripts/make_fixtures.py --out tests/fixtures --build .cache/fixtures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

# Tokenizer training uses a thread pool; a single thread keeps the merge order reproducible.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_files import (  # noqa: E402
    COHERE_TOKENIZER,
    GPT2_TOKENIZER,
    LLAMA_TOKENIZER,
    QWEN2_TOKENIZER,
    BIAS_STD,
    EMBED_STD,
    NORM_GAIN_STD,
    SEED,
    TokenizerSpec,
    WEIGHTS_RECIPE,
    bpe_merges,
    deinterleave_rope_rows,
    gguf_tensors,
    gguf_variants,
    write_fixtures,
    model_weights,
    rope_head_count,
    stored_values,
    strip_weights,
    tensor_type,
    weights_digest,
)

SEQ_LEN = 12
BATCH = 2
# Significant digits kept when writing float32 values to JSON: 9 round-trips any float32.
JSON_DIGITS = 9
FORMAT_TAG = "polyprune-fixture-reference/1"

# ---------------------------------------------------------------------------------------------
# Text. Written for this fixture set; short paragraphs in several languages so the byte-level
# merges are not purely English and the multilingual test strings exercise multi-byte UTF-8.
# ---------------------------------------------------------------------------------------------

CORPUS = """\
The lighthouse keeper climbed the stairs every evening and counted the steps out loud.
There were one hundred and twelve of them, and he never lost the count, not even in a storm.
When the lamp was lit he wrote the weather in a small book: wind from the west, light rain, calm sea.
Ships that passed the island at night saw the beam turn slowly and knew where the rocks were.
In the morning he walked down to the harbour, bought bread and fish, and talked with the sailors.
They told him about the cities on the other side of the water, the markets and the long trains.
He listened, nodded, and thought that the island was large enough for one quiet life.
A small garden grew beside the tower: beans, onions, a few tomatoes that rarely turned red.
The keeper's daughter sent letters twice a month. She studied languages at a university in the south.
She wrote that learning a new language is like walking into a house where every door opens differently.
Some words look familiar and mean something else; some sounds do not exist in your own mouth.
Numbers were the easiest part, she said: 3 apples, 17 trains, 2024 pages, 365 days in most years.
Her teacher liked to say that a model of language is only as good as the text it has read.
If you only read weather reports, you will speak like a weather report, he laughed.
So she read novels, recipes, laws, poems, and the instructions printed on medicine boxes.
We don't always know which words matter until we lose them. They're small, but they'll be missed.
It's the little things: the comma, the accent, the space between two words that changes the meaning.
Le gardien du phare montait l'escalier chaque soir et comptait les marches à voix haute.
Il notait le temps dans un petit carnet : vent d'ouest, pluie légère, mer calme.
Der Leuchtturmwärter stieg jeden Abend die Treppe hinauf und zählte die Stufen laut.
Er schrieb das Wetter in ein kleines Buch: Wind aus Westen, leichter Regen, ruhige See.
El guardián del faro subía la escalera cada noche y contaba los escalones en voz alta.
Escribía el tiempo en un cuaderno pequeño: viento del oeste, lluvia ligera, mar en calma.
Smotritel mayaka podnimalsya po lestnitse kazhdyy vecher. Смотритель маяка считал ступени вслух.
灯塔看守人每天晚上爬上楼梯，大声数着台阶。他在小本子上写下天气。
The end of the season came with fog. The keeper lit the lamp earlier each day and kept it burning longer.
Pruning a network removes weights that seem unimportant; calibration text decides what seems unimportant.
Magnitude pruning looks only at the size of each weight. Wanda also looks at how large the inputs are.
SparseGPT solves a small least squares problem for every row and updates the remaining weights.
Does the language of the calibration text change which weights survive? That is the question here.
Logbook 2021: 112 steps, 365 nights, 12 storms. Logbook 2022: 112 steps, 365 nights, 21 storms.
Logbook 2023: 112 steps, 365 nights, 123 ships. Logbook 2024: 112 steps, 366 nights, 1234 letters.
Logbook 2025: 112 steps, 365 nights, 2024 pages read, 456 lamps cleaned, 789 cups of tea.
"""

# Held out from training so the reference sequences are not memorised merges only.
REFERENCE_TEXTS = [
    "The keeper counted the steps again and wrote the weather in his small book before the storm.",
    "She read novels, laws and recipes, because the text decides what a model of language learns.",
]

TOKENIZER_TEST_STRINGS = [
    "Hello world",
    "The lighthouse keeper counted 112 steps.",
    "  leading spaces and trailing  ",
    "We don't know; they'll see, it's fine.",
    "Numbers: 3 17 2024 1234567",
    "Le gardien du phare à voix haute.",
    "Der Leuchtturmwärter zählte die Stufen.",
    "Смотритель маяка",
    "灯塔看守人",
    "line one\nline two\n\n\tindented",
    "café vs cafe\u0301",
    "emoji 🙂 ok",
]


# ---------------------------------------------------------------------------------------------
# Tokenizers.
# ---------------------------------------------------------------------------------------------

# Split patterns of the llama.cpp pre-tokenizers named "llama-bpe" (Llama 3) and "qwen2".
# They differ only in digit grouping: up to three digits versus one digit per piece.
LLAMA_BPE_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def configure_pipeline(tok, pre: str) -> None:
    """Normalizer, pre-tokenizer and decoder that llama.cpp's pre-tokenizer `pre` corresponds to."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    if pre == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif pre == "command-r":
        # Each digit alone, then GPT-2's byte-level split (Cohere's tokenizer.json does this).
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    else:
        pattern = {"llama-bpe": LLAMA_BPE_SPLIT, "qwen2": QWEN2_SPLIT}[pre]
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if pre == "qwen2":
        # Qwen2's tokenizer.json composes to NFC before splitting.
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()


def attach_post_processor(tok, bos: str | None, add_bos: bool) -> None:
    """Byte-level offsets fix-up, plus a BOS template when the model expects a leading BOS."""
    from tokenizers import processors

    byte_level = processors.ByteLevel(trim_offsets=False)
    if not add_bos:
        tok.post_processor = byte_level
        return
    template = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    tok.post_processor = processors.Sequence([byte_level, template])


def build_tokenizer(spec: TokenizerSpec):
    """Train a byte-level BPE on CORPUS with the pre-tokenizer llama.cpp associates with spec.pre."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    configure_pipeline(tok, spec.pre)
    trained_size = spec.size - len(spec.trailing_specials)
    trainer = trainers.BpeTrainer(
        vocab_size=trained_size,
        min_frequency=2,
        special_tokens=spec.leading_specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    if tok.get_vocab_size(with_added_tokens=True) != trained_size:
        raise SystemExit(f"tokenizer {spec.pre}: corpus too small for {trained_size} tokens")
    tok.add_special_tokens(spec.trailing_specials)
    attach_post_processor(tok, spec.bos, spec.add_bos)
    if tok.get_vocab_size(with_added_tokens=True) != spec.size:
        raise SystemExit(f"tokenizer {spec.pre}: got {tok.get_vocab_size()} tokens, wanted {spec.size}")
    return tok


def tokenizer_cases(tok) -> list[dict]:
    """Test strings with the ids the tokenizer gives them, with and without special tokens."""
    cases = []
    for text in TOKENIZER_TEST_STRINGS:
        plain = tok.encode(text, add_special_tokens=False)
        with_special = tok.encode(text, add_special_tokens=True)
        cases.append(
            {
                "text": text,
                "ids": plain.ids,
                "tokens": plain.tokens,
                "ids_with_special_tokens": with_special.ids,
                "decoded": tok.decode(plain.ids, skip_special_tokens=False),
            }
        )
    return cases


def reference_ids(tok, add_special_tokens: bool) -> list[list[int]]:
    """BATCH rows of exactly SEQ_LEN ids cut from the held-out reference texts."""
    rows = []
    for text in REFERENCE_TEXTS[:BATCH]:
        ids = tok.encode(text, add_special_tokens=add_special_tokens).ids
        if len(ids) < SEQ_LEN:
            raise SystemExit(f"reference text too short after tokenization: {text!r}")
        rows.append(ids[:SEQ_LEN])
    return rows


# ---------------------------------------------------------------------------------------------
# Reference values.
# ---------------------------------------------------------------------------------------------


def round_floats(value, digits: int = JSON_DIGITS):
    """Nested lists of floats with `digits` significant digits (keeps the JSON small)."""
    if isinstance(value, list):
        return [round_floats(v, digits) for v in value]
    return float(f"{value:.{digits}g}")


def logit_statistics(logits: np.ndarray, ids: np.ndarray) -> dict:
    """logsumexp per position and log p(next token) per position, computed in float64."""
    lg = logits.astype(np.float64)
    peak = lg.max(axis=-1, keepdims=True)
    lse = (peak + np.log(np.exp(lg - peak).sum(axis=-1, keepdims=True)))[..., 0]
    batch, seq = ids.shape
    next_lp = np.empty((batch, seq - 1))
    for b in range(batch):
        for t in range(seq - 1):
            next_lp[b, t] = lg[b, t, ids[b, t + 1]] - lse[b, t]
    mean_nll = -next_lp.mean(axis=1)
    return {
        "logsumexp": round_floats(lse.tolist()),
        "next_token_logprob": round_floats(next_lp.tolist()),
        "mean_nll_per_row": round_floats(mean_nll.tolist()),
        "perplexity_per_row": round_floats(np.exp(mean_nll).tolist()),
        "perplexity_all": float(f"{math.exp(-next_lp.mean()):.{JSON_DIGITS}g}"),
    }


def logits_block(logits: np.ndarray, ids: np.ndarray) -> dict:
    block = {"logits": round_floats(logits.astype(np.float64).tolist())}
    block.update(logit_statistics(logits, ids))
    return block


def torch_logits(model, ids: list[list[int]]) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long), use_cache=False)
    return out.logits.float().numpy()


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def reference_header(description: str) -> dict:
    return {
        "format": FORMAT_TAG,
        "description": description,
        "generator": "scripts/make_fixtures.py",
        "seed": SEED,
        "shapes": {"batch": BATCH, "seq_len": SEQ_LEN},
        "layout": {
            "logits": "[batch][seq][vocab], float32 values of the transformers model in eval mode",
            "logsumexp": "[batch][seq]: log of sum_v exp(logits[b][t][v]), float64",
            "next_token_logprob": "[batch][seq-1]: logits[b][t][ids[b][t+1]] - logsumexp[b][t]",
            "mean_nll_per_row": "[batch]: -mean_t next_token_logprob[b][t]",
            "perplexity_per_row": "[batch]: exp(mean_nll_per_row[b])",
            "perplexity_all": "exp(-mean over all rows and positions of next_token_logprob)",
        },
    }


def tokenizer_summary(tok, spec: TokenizerSpec) -> dict:
    def token_id(name):
        return None if name is None else tok.token_to_id(name)

    return {
        "file": "tokenizer.json",
        "kind": "byte-level BPE",
        "llama_cpp_pre": spec.pre,
        "size": tok.get_vocab_size(with_added_tokens=True),
        "special_tokens": {t: tok.token_to_id(t) for t in spec.leading_specials + spec.trailing_specials},
        "bos_token_id": token_id(spec.bos),
        "eos_token_id": token_id(spec.eos),
        "pad_token_id": token_id(spec.pad),
        "adds_bos": spec.add_bos,
    }


# ---------------------------------------------------------------------------------------------
# GPT-2 -> ONNX.
# ---------------------------------------------------------------------------------------------


def logits_only(model):
    """A copy of a causal LM whose forward takes input_ids only and returns logits only.

    Subclassing (instead of wrapping) keeps the exported initializer names identical to the
    transformers parameter names ("transformer.h.0.attn.c_attn.weight", ...).
    """
    import copy

    import torch

    class LogitsOnly(type(model)):
        def forward(self, input_ids):
            # An explicit all-ones mask keeps transformers off its packed-sequence detection,
            # which uses aten::diff (no ONNX symbolic); the graph still takes input_ids only.
            mask = torch.ones_like(input_ids)
            return super().forward(input_ids=input_ids, attention_mask=mask, use_cache=False).logits

    exported = copy.deepcopy(model)  # deepcopy keeps the wte / lm_head tie
    exported.__class__ = LogitsOnly
    return exported.eval()


def build_gpt2(tok):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eot = tok.token_to_id("<|endoftext|>")
    config = GPT2Config(
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        n_positions=128,
        n_embd=64,
        n_layer=2,
        n_head=2,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        bos_token_id=eot,
        eos_token_id=eot,
        tie_word_embeddings=True,
    )
    model = GPT2LMHeadModel._from_config(config, attn_implementation="eager").eval()
    load_weights(model, model_weights("gpt2", config))
    return model


def load_weights(model, weights: dict) -> None:
    """Put the seeded NumPy weights into a transformers model; every parameter must be covered."""
    import torch

    params = dict(model.named_parameters())
    if set(params) != set(weights):
        raise SystemExit(f"parameter names differ: model only {sorted(set(params) - set(weights))}, weights only {sorted(set(weights) - set(params))}")
    with torch.no_grad():
        for name, param in params.items():
            if tuple(param.shape) != weights[name].shape:
                raise SystemExit(f"{name}: model {tuple(param.shape)}, weights {weights[name].shape}")
            param.copy_(torch.from_numpy(weights[name]))


def export_legacy_onnx(model, path: Path, example_ids) -> None:
    import torch

    torch.onnx.export(
        logits_only(model),
        (example_ids,),
        str(path),
        dynamo=False,
        verbose=False,
        input_names=["input_ids"],
        output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}},
        opset_version=17,
        do_constant_folding=True,
    )


def export_dynamo_onnx(model, path: Path, example_ids) -> None:
    import torch

    import onnx

    batch = torch.export.Dim("batch", max=1024)
    sequence = torch.export.Dim("sequence", max=model.config.n_positions)
    program = torch.onnx.export(
        logits_only(model),
        (example_ids,),
        dynamo=True,
        input_names=["input_ids"],
        output_names=["logits"],
        dynamic_shapes={"input_ids": {0: batch, 1: sequence}},
        opset_version=18,
    )
    program.save(str(path), external_data=True)
    # The exporter annotates every node with Python stack traces (~190 kB naming local paths);
    # they carry no semantics, so drop them to keep the fixture small and machine-neutral.
    graph_model = onnx.load(str(path), load_external_data=False)
    for node in graph_model.graph.node:
        del node.metadata_props[:]
    for info in graph_model.graph.value_info:
        del info.metadata_props[:]
    onnx.save(graph_model, str(path))


def onnx_summary(path: Path) -> dict:
    import onnx

    graph_model = onnx.load(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    for node in graph_model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    initializers = [
        {"name": init.name, "dims": list(init.dims), "external": init.data_location == onnx.TensorProto.EXTERNAL}
        for init in graph_model.graph.initializer
    ]
    return {
        "ir_version": graph_model.ir_version,
        "opsets": {op.domain or "ai.onnx": op.version for op in graph_model.opset_import},
        "inputs": [i.name for i in graph_model.graph.input],
        "outputs": [o.name for o in graph_model.graph.output],
        "op_counts": dict(sorted(ops.items())),
        "initializers": initializers,
    }


def save_graph_without_weights(exported: Path, target_dir: Path, weights: dict) -> None:
    """Keep an exported graph in the repository, minus its weights (fixture_files.py refills them)."""
    import onnx

    model = onnx.load(str(exported), load_external_data=True)
    recipe = strip_weights(model, weights)
    target_dir.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(target_dir / "graph.onnx"))
    write_json(target_dir / WEIGHTS_RECIPE, recipe)


WEIGHTS_INIT = {"embed_std": EMBED_STD, "norm_gain_std": NORM_GAIN_STD, "bias_std": BIAS_STD, "rng": "numpy PCG64 per parameter"}


def make_gpt2(out: Path, with_dynamo: bool) -> dict:
    import tempfile

    import torch

    tok = build_tokenizer(GPT2_TOKENIZER)
    model = build_gpt2(tok)
    weights = model_weights("gpt2", model.config)
    ids = reference_ids(tok, add_special_tokens=False)
    logits = torch_logits(model, ids)

    legacy_dir = out / "tiny-gpt2"
    legacy_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(legacy_dir / "tokenizer.json"))
    example = torch.tensor(ids, dtype=torch.long)
    scratch = Path(tempfile.mkdtemp(prefix="fixture-export-"))
    export_legacy_onnx(model, scratch / "legacy.onnx", example)
    save_graph_without_weights(scratch / "legacy.onnx", legacy_dir, weights)

    dynamo_status = "skipped (--no-dynamo)"
    if with_dynamo:
        dynamo_dir = out / "tiny-gpt2-dynamo"
        try:
            (scratch / "dynamo").mkdir()
            export_dynamo_onnx(model, scratch / "dynamo" / "model.onnx", example)
            save_graph_without_weights(scratch / "dynamo" / "model.onnx", dynamo_dir, weights)
            dynamo_status = "exported"
        except Exception as err:  # the exporter is optional; report and carry on
            shutil.rmtree(dynamo_dir, ignore_errors=True)
            dynamo_status = f"failed: {type(err).__name__}: {err}"
            print(f"dynamo export skipped: {dynamo_status}", file=sys.stderr)

    reference = reference_header("tiny GPT-2 (random weights) exported to ONNX; logits from transformers")
    reference["model"] = {
        "family": "gpt2",
        "transformers_class": "GPT2LMHeadModel",
        "config": {
            k: v
            for k, v in model.config.to_dict().items()
            if k
            in (
                "vocab_size",
                "n_positions",
                "n_embd",
                "n_layer",
                "n_head",
                "n_inner",
                "activation_function",
                "layer_norm_epsilon",
                "tie_word_embeddings",
                "bos_token_id",
                "eos_token_id",
            )
        },
        "weights": "float32; graph.onnx keeps the graph, `make fixtures` writes model.onnx with the weights inline",
        "init": WEIGHTS_INIT,
    }
    reference["weights_sha256"] = weights_digest(weights)
    reference["numpy"] = np.__version__
    reference["tokenizer"] = tokenizer_summary(tok, GPT2_TOKENIZER)
    reference["onnx"] = onnx_summary(scratch / "legacy.onnx")
    reference["dynamo_export"] = dynamo_status
    reference["input_ids"] = ids
    reference.update(logits_block(logits, np.array(ids)))
    reference["tokenizer_cases"] = tokenizer_cases(tok)
    write_json(legacy_dir / "reference.json", reference)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"model": model, "reference": reference, "dynamo": dynamo_status}


# ---------------------------------------------------------------------------------------------
# Llama / Qwen2 -> GGUF, laid out like llama.cpp's convert_hf_to_gguf.py.
# ---------------------------------------------------------------------------------------------

LLAMA_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_act="silu",
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=False,
    attention_bias=False,
    mlp_bias=False,
)
QWEN2_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_act="silu",
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    use_sliding_window=False,
)
# Qwen2 checkpoints declare more embedding rows than the tokenizer has; the converter fills
# the gap with "[PAD<i>]" tokens of type UNUSED. Reproduced here on a small scale.
QWEN2_VOCAB_PADDING = 4
# Aya-23 8B scales its logits by 0.0625; with these random weights that would leave them nearly
# uniform, so the fixture uses 0.625: still far from 1, so a reader that drops it is caught.
COHERE_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_act="silu",
    max_position_embeddings=128,
    layer_norm_eps=1e-5,
    rope_theta=10000.0,
    logit_scale=0.625,
    use_qk_norm=False,
    tie_word_embeddings=True,
    attention_bias=False,
)

def load_stored_weights(model, arch: str, tensors, variant) -> None:
    """Put into the HF model exactly the values a reader decodes from the GGUF variant."""
    import torch

    cfg = model.config
    state = model.state_dict()
    with torch.no_grad():
        for name, values, hf_name in tensors:
            decoded = stored_values(values, tensor_type(name, values, variant))
            heads = rope_head_count(arch, name, cfg)
            if heads is not None:
                decoded = deinterleave_rope_rows(decoded, heads)
            state[hf_name].copy_(torch.from_numpy(decoded))


def build_decoder(arch: str, tok, spec: TokenizerSpec):
    import torch
    from transformers import CohereConfig, CohereForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls, settings, padding = {
        "llama": (LlamaConfig, LlamaForCausalLM, LLAMA_CONFIG, 0),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM, QWEN2_CONFIG, QWEN2_VOCAB_PADDING),
        "cohere": (CohereConfig, CohereForCausalLM, COHERE_CONFIG, 0),
    }[arch]
    config = config_cls(
        vocab_size=tok.get_vocab_size(with_added_tokens=True) + padding,
        bos_token_id=tok.token_to_id(spec.bos),
        eos_token_id=tok.token_to_id(spec.eos),
        pad_token_id=None if spec.pad is None else tok.token_to_id(spec.pad),
        **settings,
    )
    model = model_cls._from_config(config, attn_implementation="eager").eval()
    load_weights(model, model_weights(arch, config))
    return model


def decoder_config_record(model) -> dict:
    cfg = model.config.to_dict()
    keep = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "hidden_act",
        "max_position_embeddings",
        "rms_norm_eps",
        "layer_norm_eps",
        "logit_scale",
        "use_qk_norm",
        "rope_parameters",
        "tie_word_embeddings",
        "attention_bias",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    )
    record = {k: cfg[k] for k in keep if k in cfg}
    record["head_dim"] = model.config.hidden_size // model.config.num_attention_heads
    return record


def variant_record(path: Path, tensors, variant) -> dict:
    return {
        "file": path.name,
        "general.file_type": variant.file_type,
        "tensor_types": {name: tensor_type(name, values, variant).name for name, values, _ in tensors},
    }


def make_decoder(out: Path, arch: str) -> dict:
    spec = {"llama": LLAMA_TOKENIZER, "qwen2": QWEN2_TOKENIZER, "cohere": COHERE_TOKENIZER}[arch]
    tok = build_tokenizer(spec)
    model = build_decoder(arch, tok, spec)
    weights = model_weights(arch, model.config)
    directory = out / f"tiny-{arch}"
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))

    ids = reference_ids(tok, add_special_tokens=True)
    tensors = gguf_tensors(weights, arch, model.config)
    variants = gguf_variants(arch)

    reference = reference_header(
        f"tiny {arch} (random weights) written as GGUF; logits from transformers with the decoded GGUF weights"
    )
    reference["model"] = {
        "family": arch,
        "transformers_class": type(model).__name__,
        "config": decoder_config_record(model),
        "init": WEIGHTS_INIT,
        "rope_style": {
            "llama": "normal (adjacent pairs 2i, 2i+1; q/k rows permuted)",
            "qwen2": "neox (pairs i, i+d/2; HF row order)",
            "cohere": "normal (adjacent pairs 2i, 2i+1, as Cohere rotates them; HF row order)",
        }[arch],
    }
    reference["weights_sha256"] = weights_digest(weights)
    reference["numpy"] = np.__version__
    reference["tokenizer"] = tokenizer_summary(tok, spec)
    reference["input_ids"] = ids
    reference["input_ids_note"] = (
        "encoded with add_special_tokens=True, so rows start with the BOS id" if spec.add_bos else "no BOS is added"
    )

    # The reference logits come from the values a reader decodes from each file, which
    # stored_values reproduces without writing the file (fixture_files.py writes it at set-up).
    for variant in variants:
        load_stored_weights(model, arch, tensors, variant)
        block = variant_record(Path(variant.file_name), tensors, variant)
        block.update(logits_block(torch_logits(model, ids), np.array(ids)))
        reference.setdefault("variants", {})[variant.file_name] = block

    reference["tokenizer_cases"] = tokenizer_cases(tok)
    write_json(directory / "reference.json", reference)
    return {"model": model, "reference": reference, "tokenizer": tok, "spec": spec}


# ---------------------------------------------------------------------------------------------
# Independent checks of the written files.
# ---------------------------------------------------------------------------------------------

# float32 forward passes of a 2-layer model differ from a float64 recomputation by ~1e-6
# relative; 1e-4 absolute plus 1e-4 relative is loose enough for that and far below the
# several-nats spread of the logits, so a layout mistake (wrong rope pairing, missing bias,
# transposed matrix) cannot pass.
ATOL = 1e-4
RTOL = 1e-4


def assert_close(label: str, got: np.ndarray, want: np.ndarray) -> None:
    if got.shape != want.shape:
        raise SystemExit(f"FAIL {label}: shape {got.shape} != {want.shape}")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if (diff > ATOL + RTOL * np.abs(want)).any():
        raise SystemExit(f"FAIL {label}: max |diff| {diff.max():.3g}")
    print(f"ok   {label}: max |diff| {diff.max():.2e} (logit std {want.std():.2f})")


def check_onnx(path: Path, model, reference: dict) -> None:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array(reference["input_ids"], dtype=np.int64)
    got = session.run(["logits"], {"input_ids": ids})[0]
    assert_close(f"{path.parent.name}/{path.name} (onnxruntime) vs reference.json", got, np.array(reference["logits"]))
    # A different batch and length proves both axes are really dynamic.
    other = np.random.default_rng(SEED).integers(0, model.config.vocab_size, size=(3, 7))
    got = session.run(["logits"], {"input_ids": other.astype(np.int64)})[0]
    assert_close(f"{path.parent.name}/{path.name} at shape (3, 7) vs torch", got, torch_logits(model, other.tolist()))


def gguf_metadata(reader) -> dict:
    return {key: field.contents() for key, field in reader.fields.items()}


def gguf_weights(reader) -> dict:
    import gguf

    weights = {}
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float64)
        # GGUF lists dims fastest-first (ne[0] = in_features); numpy wants them reversed.
        expected = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        if values.shape != expected:
            raise SystemExit(f"FAIL {tensor.name}: decoded shape {values.shape}, header says {expected}")
        weights[tensor.name] = values
    return weights


def rms_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * gain


def layer_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    """Without a bias, as Cohere's (and llama.cpp's command-r) norms are."""
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps) * gain


def apply_rope(x: np.ndarray, n_rot: int, base: float, style: str) -> np.ndarray:
    """x: [seq, heads, head_dim]. ggml "normal" rotates (2i, 2i+1); "neox" rotates (i, i + n_rot/2)."""
    half = n_rot // 2
    theta = base ** (-2.0 * np.arange(half) / n_rot)
    angle = np.arange(x.shape[0])[:, None] * theta[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    first = slice(0, n_rot, 2) if style == "normal" else slice(0, half)
    second = slice(1, n_rot, 2) if style == "normal" else slice(half, n_rot)
    a, b = x[..., first], x[..., second]
    out = x.copy()
    out[..., first] = a * cos - b * sin
    out[..., second] = a * sin + b * cos
    return out


def gguf_forward(path: Path, ids: list[list[int]], swap_rope_style: bool = False) -> np.ndarray:
    """Logits of a llama/qwen2/command-r GGUF computed from the file alone, in float64, the
    llama.cpp way (command-r: LayerNorm, attention and MLP in parallel, logits scaled).

    swap_rope_style uses the other architecture's pairing, to prove the check can fail.
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = gguf_metadata(reader)
    arch = meta["general.architecture"]
    n_embd = meta[f"{arch}.embedding_length"]
    n_head = meta[f"{arch}.attention.head_count"]
    n_kv = meta[f"{arch}.attention.head_count_kv"]
    parallel = arch == "command-r"
    norm = layer_norm if parallel else rms_norm
    eps = meta[f"{arch}.attention.layer_norm_epsilon" if parallel else f"{arch}.attention.layer_norm_rms_epsilon"]
    logit_scale = meta.get(f"{arch}.logit_scale", 1.0)
    base = meta[f"{arch}.rope.freq_base"]
    head_dim = n_embd // n_head
    n_rot = meta.get(f"{arch}.rope.dimension_count", head_dim)
    style = {"llama": "normal", "qwen2": "neox", "command-r": "normal"}[arch]
    if swap_rope_style:
        style = {"normal": "neox", "neox": "normal"}[style]
    w = gguf_weights(reader)
    embed = w["token_embd.weight"]
    lm_head = w.get("output.weight", embed)

    rows = []
    for row in ids:
        seq = len(row)
        x = embed[row]
        mask = np.triu(np.full((seq, seq), -np.inf), k=1)
        for layer in range(meta[f"{arch}.block_count"]):

            def t(name, layer=layer):
                return w[f"blk.{layer}.{name}"]

            def bias(name, layer=layer):
                return w.get(f"blk.{layer}.{name}", 0.0)

            h = norm(x, t("attn_norm.weight"), eps)
            q = (h @ t("attn_q.weight").T + bias("attn_q.bias")).reshape(seq, n_head, head_dim)
            k = (h @ t("attn_k.weight").T + bias("attn_k.bias")).reshape(seq, n_kv, head_dim)
            v = (h @ t("attn_v.weight").T + bias("attn_v.bias")).reshape(seq, n_kv, head_dim)
            q, k = apply_rope(q, n_rot, base, style), apply_rope(k, n_rot, base, style)
            heads = np.empty((seq, n_head, head_dim))
            for head in range(n_head):
                kv = head // (n_head // n_kv)  # grouped-query attention
                scores = q[:, head] @ k[:, kv].T / math.sqrt(head_dim) + mask
                probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
                heads[:, head] = (probs / probs.sum(axis=-1, keepdims=True)) @ v[:, kv]
            attn = heads.reshape(seq, n_embd) @ t("attn_output.weight").T
            if not parallel:
                x = x + attn
                h = norm(x, t("ffn_norm.weight"), eps)
            gate = h @ t("ffn_gate.weight").T
            mlp = (gate / (1.0 + np.exp(-gate)) * (h @ t("ffn_up.weight").T)) @ t("ffn_down.weight").T
            x = x + attn + mlp if parallel else x + mlp
        rows.append(norm(x, w["output_norm.weight"], eps) @ lm_head.T * logit_scale)
    return np.stack(rows)


def tokenizer_from_gguf(meta: dict):
    """Rebuild a tokenizers.Tokenizer from GGUF metadata only (what a GGUF reader has to do)."""
    import gguf
    from tokenizers import Tokenizer, models

    tokens = meta["tokenizer.ggml.tokens"]
    types = meta["tokenizer.ggml.token_type"]
    vocab = {tok: i for i, (tok, kind) in enumerate(zip(tokens, types)) if kind != gguf.TokenType.UNUSED}
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    configure_pipeline(tok, meta["tokenizer.ggml.pre"])
    tok.add_special_tokens([t for t, kind in zip(tokens, types) if kind == gguf.TokenType.CONTROL])
    bos = tokens[meta["tokenizer.ggml.bos_token_id"]]
    attach_post_processor(tok, bos, bool(meta.get("tokenizer.ggml.add_bos_token", False)))
    return tok


def check_tokenizer_cases(label: str, tok, cases: list[dict]) -> None:
    for case in cases:
        plain = tok.encode(case["text"], add_special_tokens=False).ids
        with_special = tok.encode(case["text"], add_special_tokens=True).ids
        if plain != case["ids"] or with_special != case["ids_with_special_tokens"]:
            raise SystemExit(f"FAIL {label}: {case['text']!r} -> {plain} / {with_special}")
    print(f"ok   {label}: {len(cases)} strings give the pinned ids")


def check_gguf(directory: Path, reference: dict) -> None:
    from gguf import GGUFReader
    from tokenizers import Tokenizer

    ids = reference["input_ids"]
    variant_logits = []
    for file_name, block in reference["variants"].items():
        path = directory / file_name
        want = np.array(block["logits"])
        assert_close(f"{directory.name}/{file_name} (numpy from GGUF) vs transformers", gguf_forward(path, ids), want)
        variant_logits.append(want)
        # The same check with the wrong rope pairing must fail by a wide margin; otherwise the
        # fixture could not tell a reader that permutes q/k wrongly from one that is right.
        wrong = np.abs(gguf_forward(path, ids, swap_rope_style=True) - want).max()
        if wrong < 100 * ATOL:
            raise SystemExit(f"FAIL {directory.name}/{file_name}: wrong rope style only moves logits by {wrong:.3g}")
        print(f"ok   {directory.name}/{file_name}: wrong rope pairing moves logits by {wrong:.2f}")
    if len(variant_logits) > 1:
        gap = np.abs(variant_logits[1] - variant_logits[0]).max()
        print(f"info {directory.name}: quantized variant logits differ from F16 ones by up to {gap:.3g}")
    meta = gguf_metadata(GGUFReader(str(directory / "model.gguf")))
    # tokenizer.json here is the committed one, copied by fixture_files.py.
    if meta["tokenizer.ggml.merges"] != bpe_merges(Tokenizer.from_file(str(directory / "tokenizer.json"))):
        raise SystemExit(f"FAIL {directory.name}: GGUF merges differ from tokenizer.json")
    check_tokenizer_cases(f"{directory.name}/tokenizer.json", Tokenizer.from_file(str(directory / "tokenizer.json")), reference["tokenizer_cases"])
    check_tokenizer_cases(f"{directory.name}/model.gguf tokenizer metadata", tokenizer_from_gguf(meta), reference["tokenizer_cases"])


def verify(out: Path, gpt2: dict, decoders: list[dict]) -> None:
    from tokenizers import Tokenizer

    reference = gpt2["reference"]
    check_onnx(out / "tiny-gpt2" / "model.onnx", gpt2["model"], reference)
    check_tokenizer_cases("tiny-gpt2/tokenizer.json", Tokenizer.from_file(str(out / "tiny-gpt2" / "tokenizer.json")), reference["tokenizer_cases"])
    if gpt2["dynamo"] == "exported":
        check_onnx(out / "tiny-gpt2-dynamo" / "model.onnx", gpt2["model"], reference)
    for decoder in decoders:
        check_gguf(out / f"tiny-{decoder['reference']['model']['family']}", decoder["reference"])


FIXTURE_DIRS = ("tiny-gpt2", "tiny-gpt2-dynamo", "tiny-llama", "tiny-qwen2", "tiny-cohere")


def list_files(out: Path) -> None:
    total = 0
    mine = [p for d in FIXTURE_DIRS if (out / d).is_dir() for p in (out / d).rglob("*") if p.is_file()]
    for path in sorted(mine):
        size = path.stat().st_size
        total += size
        print(f"{size:>9}  {path.relative_to(out)}")
    print(f"{total:>9}  total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures"), help="fixture root directory")
    parser.add_argument("--build", type=Path, default=Path(".cache/fixtures"), help="where the model files are written and checked")
    parser.add_argument("--no-dynamo", action="store_true", help="skip the optional dynamo ONNX export")
    parser.add_argument("--no-verify", action="store_true", help="skip the independent checks")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # one thread: reproducible float summation order
    args.out.mkdir(parents=True, exist_ok=True)
    gpt2 = make_gpt2(args.out, with_dynamo=not args.no_dynamo)
    decoders = [make_decoder(args.out, arch) for arch in ("llama", "qwen2", "cohere")]
    write_fixtures(args.out, args.build)
    if not args.no_verify:
        verify(args.build, gpt2, decoders)
    list_files(args.out)
    list_files(args.build)


if __name__ == "__main__":
    main()
