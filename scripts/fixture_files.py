#!/usr/bin/env python3
"""Write the weight files of polyprune's model fixtures at set-up time (`make fixtures`).

The repository keeps only what is not weights: each fixture's tokenizer.json, its
reference.json (ids, logits and log-probs computed by transformers when the fixture was
authored with scripts/make_fixtures.py) and, for the ONNX fixtures, the exported graph with
its weight tensors emptied plus a weights.json saying which parameter fills each of them.
This script redraws the weights from their seeds with NumPy and writes, under OUT:

* tiny-gpt2/{model.onnx, tokenizer.json}          legacy TorchScript export, weights inline
* tiny-gpt2-dynamo/{model.onnx, model.onnx.data}  dynamo export, weights as external data
* tiny-llama/{model.gguf, model-q8_0.gguf, tokenizer.json}
* tiny-qwen2/{model.gguf, tokenizer.json}
* tiny-cohere/{model.gguf, tokenizer.json}       Command-R (Cohere) architecture

Every fixture's weights are checked against the SHA-256 its reference.json records, so a
changed random stream cannot silently produce files the reference logits do not describe.

Needs numpy, gguf, onnx and tokenizers (the set-up virtual environment has them):

    .cache/venv/bin/python scripts/fixture_files.py --src tests/fixtures --out .cache/fixtures
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SEED = 20240611
# One seed per model, so adding a fixture never changes another's weights.
MODEL_SEEDS = {"gpt2": SEED + 1, "llama": SEED + 2, "qwen2": SEED + 3, "cohere": SEED + 4}

# ---------------------------------------------------------------------------------------------
# Weights: wider-than-default random init so logits spread over several nats (the default 0.02
# init gives near-uniform logits, which would let a broken reader pass a tolerance check), and
# norm gains / biases away from 1 / 0 so a reader that ignores them is caught.
# ---------------------------------------------------------------------------------------------

EMBED_STD = 0.25
NORM_GAIN_STD = 0.1
BIAS_STD = 0.1
EMBEDDING_NAMES = ("wte", "wpe", "embed_tokens", "lm_head")


def gpt2_parameters(cfg) -> list[tuple[str, tuple[int, ...], bool]]:
    """(transformers name, shape, stored [in, out] as GPT-2's Conv1D does) of every parameter."""
    e = cfg.n_embd
    inner = cfg.n_inner or 4 * e
    params = [("transformer.wte.weight", (cfg.vocab_size, e), False), ("transformer.wpe.weight", (cfg.n_positions, e), False)]
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        params += [
            (p + "ln_1.weight", (e,), False),
            (p + "ln_1.bias", (e,), False),
            (p + "attn.c_attn.weight", (e, 3 * e), True),
            (p + "attn.c_attn.bias", (3 * e,), False),
            (p + "attn.c_proj.weight", (e, e), True),
            (p + "attn.c_proj.bias", (e,), False),
            (p + "ln_2.weight", (e,), False),
            (p + "ln_2.bias", (e,), False),
            (p + "mlp.c_fc.weight", (e, inner), True),
            (p + "mlp.c_fc.bias", (inner,), False),
            (p + "mlp.c_proj.weight", (inner, e), True),
            (p + "mlp.c_proj.bias", (e,), False),
        ]
    return params + [("transformer.ln_f.weight", (e,), False), ("transformer.ln_f.bias", (e,), False)]


def decoder_parameters(arch: str, cfg) -> list[tuple[str, tuple[int, ...], bool]]:
    """The same for a Llama, Qwen2 or Cohere decoder (nn.Linear stores [out, in]).

    Cohere blocks have one norm (input_layernorm) feeding attention and the MLP in parallel."""
    e, ff = cfg.hidden_size, cfg.intermediate_size
    head_dim = e // cfg.num_attention_heads
    kv = cfg.num_key_value_heads * head_dim
    params = [("model.embed_tokens.weight", (cfg.vocab_size, e), False)]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        params += [(p + "self_attn.q_proj.weight", (e, e), False)]
        if arch == "qwen2":
            params += [(p + "self_attn.q_proj.bias", (e,), False)]
        params += [(p + "self_attn.k_proj.weight", (kv, e), False)]
        if arch == "qwen2":
            params += [(p + "self_attn.k_proj.bias", (kv,), False)]
        params += [(p + "self_attn.v_proj.weight", (kv, e), False)]
        if arch == "qwen2":
            params += [(p + "self_attn.v_proj.bias", (kv,), False)]
        params += [
            (p + "self_attn.o_proj.weight", (e, e), False),
            (p + "mlp.gate_proj.weight", (ff, e), False),
            (p + "mlp.up_proj.weight", (ff, e), False),
            (p + "mlp.down_proj.weight", (e, ff), False),
            (p + "input_layernorm.weight", (e,), False),
        ]
        if arch != "cohere":
            params += [(p + "post_attention_layernorm.weight", (e,), False)]
    params += [("model.norm.weight", (e,), False)]
    if not cfg.tie_word_embeddings:
        params += [("lm_head.weight", (cfg.vocab_size, e), False)]
    return params


def draw_weights(params, seed: int) -> dict[str, np.ndarray]:
    """float32 values for every parameter; each name has its own stream, so order is irrelevant."""
    weights = {}
    for name, shape, in_out in params:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        noise = rng.standard_normal(shape, dtype=np.float32)
        if len(shape) == 1 and name.endswith("bias"):
            values = BIAS_STD * noise
        elif len(shape) == 1:
            values = 1.0 + NORM_GAIN_STD * noise
        elif any(part in name for part in EMBEDDING_NAMES):
            values = EMBED_STD * noise
        else:
            fan_in = shape[0] if in_out else shape[1]
            values = noise / np.float32(np.sqrt(fan_in))
        weights[name] = values.astype(np.float32)
    return weights


def model_weights(family: str, cfg) -> dict[str, np.ndarray]:
    params = gpt2_parameters(cfg) if family == "gpt2" else decoder_parameters(family, cfg)
    return draw_weights(params, MODEL_SEEDS[family])


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name], dtype="<f4").tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Tokenizer settings that GGUF metadata records.
# ---------------------------------------------------------------------------------------------


@dataclass
class TokenizerSpec:
    """How one fixture tokenizer is trained and which special tokens it carries."""

    pre: str  # llama.cpp pre-tokenizer name ("gpt2", "llama-bpe", "qwen2")
    size: int  # total size after training and adding trailing specials
    leading_specials: list[str] = field(default_factory=list)  # get ids 0.. (trained in)
    trailing_specials: list[str] = field(default_factory=list)  # appended after the merges
    bos: str | None = None
    eos: str | None = None
    pad: str | None = None
    add_bos: bool = False


GPT2_TOKENIZER = TokenizerSpec(
    pre="gpt2", size=384, trailing_specials=["<|endoftext|>"], bos="<|endoftext|>", eos="<|endoftext|>"
)
LLAMA_TOKENIZER = TokenizerSpec(
    pre="llama-bpe",
    size=352,
    leading_specials=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
    bos="<|begin_of_text|>",
    eos="<|end_of_text|>",
    add_bos=True,
)
QWEN2_TOKENIZER = TokenizerSpec(
    pre="qwen2",
    size=396,
    trailing_specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    bos="<|endoftext|>",
    eos="<|im_end|>",
    pad="<|endoftext|>",
)
# Cohere's special tokens lead the vocabulary (<PAD> is 0, <BOS_TOKEN> 5), as in Aya-23; the
# split is llama.cpp's "command-r" pre-tokenizer (single digits, then GPT-2's byte-level regex).
COHERE_TOKENIZER = TokenizerSpec(
    pre="command-r",
    size=368,
    leading_specials=["<PAD>", "<UNK>", "<CLS>", "<SEP>", "<MASK_TOKEN>", "<BOS_TOKEN>", "<EOS_TOKEN>"],
    bos="<BOS_TOKEN>",
    eos="<EOS_TOKEN>",
    pad="<PAD>",
    add_bos=True,
)
DECODER_TOKENIZERS = {"llama": LLAMA_TOKENIZER, "qwen2": QWEN2_TOKENIZER, "cohere": COHERE_TOKENIZER}
# The GGUF `general.architecture` each fixture family is written as.
GGUF_ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "cohere": "command-r"}

# ---------------------------------------------------------------------------------------------
# Llama / Qwen2 / Cohere -> GGUF, laid out like llama.cpp's HF converter (Cohere's q/k rows are
# stored in HF order: the model rotates adjacent pairs, as ggml's "normal" rope does).
# ---------------------------------------------------------------------------------------------

# HF parameter name (after "model.layers.N.") -> GGUF name (after "blk.N.").
LAYER_TENSOR_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL_TENSOR_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def gguf_name(hf_name: str) -> str:
    if hf_name in GLOBAL_TENSOR_NAMES:
        return GLOBAL_TENSOR_NAMES[hf_name]
    parts = hf_name.split(".")
    if parts[:2] == ["model", "layers"]:
        return f"blk.{parts[2]}.{LAYER_TENSOR_NAMES['.'.join(parts[3:])]}"
    raise KeyError(f"no GGUF name for {hf_name}")


def interleave_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """HF llama -> GGUF row order for q/k.

    HF's rotate_half pairs dimension i with i + d/2 inside each head; ggml's "normal" rope
    pairs 2i with 2i+1.  Moving HF row i to 2i and HF row i + d/2 to 2i + 1 in every head makes
    the two agree (the converter's permutation of q and k).
    """
    head_dim = weight.shape[0] // n_heads
    split = weight.reshape(n_heads, 2, head_dim // 2, *weight.shape[1:])
    return split.swapaxes(1, 2).reshape(weight.shape)


def deinterleave_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of interleave_rope_rows."""
    head_dim = weight.shape[0] // n_heads
    split = weight.reshape(n_heads, head_dim // 2, 2, *weight.shape[1:])
    return split.swapaxes(1, 2).reshape(weight.shape)


def rope_head_count(arch: str, gguf_tensor: str, cfg) -> int | None:
    """Heads to interleave for this tensor, or None when the layout stays in HF order."""
    if arch != "llama":
        return None
    if gguf_tensor.endswith("attn_q.weight"):
        return cfg.num_attention_heads
    if gguf_tensor.endswith("attn_k.weight"):
        return cfg.num_key_value_heads
    return None


def gguf_tensors(weights: dict[str, np.ndarray], arch: str, cfg):
    """(gguf name, GGUF-order float32 array, HF name) for every stored tensor."""
    out = []
    for hf_name, values in weights.items():
        name = gguf_name(hf_name)
        heads = rope_head_count(arch, name, cfg)
        if heads is not None:
            values = interleave_rope_rows(values, heads)
        out.append((name, values, hf_name))
    return out


def stored_values(values: np.ndarray, qtype) -> np.ndarray:
    """What a reader gets back after the value is written with qtype (float32)."""
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return values.astype(np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return values.astype(np.float16).astype(np.float32)
    return gguf.quants.dequantize(gguf.quants.quantize(values, qtype), qtype).astype(np.float32)


def gguf_vocab(tok, vocab_size: int):
    """Token strings and types in id order, as the converter's vocabulary writer lays them out."""
    import gguf

    by_id = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    added = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
        else:
            tokens.append(by_id[i])
            types.append(int(gguf.TokenType.CONTROL if by_id[i] in added else gguf.TokenType.NORMAL))
    return tokens, types


def bpe_merges(tok) -> list[str]:
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


@dataclass
class GgufVariant:
    file_name: str
    file_type: int  # general.file_type (gguf.LlamaFileType)
    matrix_types: dict  # GGUF tensor name suffix -> GGMLQuantizationType for 2-D tensors


def gguf_variants(arch: str) -> list[GgufVariant]:
    """F16 matrices for every decoder; the llama fixture also has a file mixing Q8_0 and F16."""
    import gguf

    variants = [GgufVariant("model.gguf", int(gguf.LlamaFileType.MOSTLY_F16), {})]
    if arch == "llama":
        q8 = gguf.GGMLQuantizationType.Q8_0
        quantized = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "output")
        # token_embd and ffn_down stay F16: the file mixes both matrix encodings.
        variants.append(
            GgufVariant("model-q8_0.gguf", int(gguf.LlamaFileType.MOSTLY_Q8_0), {f"{s}.weight": q8 for s in quantized})
        )
    return variants


def tensor_type(tensor_name: str, values: np.ndarray, variant: GgufVariant):
    import gguf

    if values.ndim == 1:
        return gguf.GGMLQuantizationType.F32  # norms and biases stay F32, as in the converter
    for suffix, qtype in variant.matrix_types.items():
        if tensor_name.endswith(suffix):
            return qtype
    return gguf.GGMLQuantizationType.F16


def write_gguf(path: Path, arch: str, cfg, spec: TokenizerSpec, tok, tensors, variant: GgufVariant, name: str):
    """tensors: (gguf name, float32 array in GGUF row order, HF parameter name) triples."""
    import gguf

    writer = gguf.GGUFWriter(str(path), GGUF_ARCHITECTURES[arch])
    writer.add_type("model")
    writer.add_name(name)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    if arch == "cohere":
        # LayerNorm epsilon, the logit scale and "no rope scaling", as the converter writes them.
        writer.add_layer_norm_eps(cfg.layer_norm_eps)
        writer.add_logit_scale(cfg.logit_scale)
        writer.add_rope_scaling_type(gguf.RopeScalingType.NONE)
    else:
        writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_file_type(variant.file_type)
    if arch == "llama":
        # Only the converter's Llama path writes these two; Qwen2 files omit them and readers
        # default rope.dimension_count to embedding_length / head_count.
        writer.add_vocab_size(cfg.vocab_size)
        writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tokens, types = gguf_vocab(tok, cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(spec.pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(bpe_merges(tok))
    writer.add_bos_token_id(tok.token_to_id(spec.bos))
    writer.add_eos_token_id(tok.token_to_id(spec.eos))
    if spec.pad is not None:
        writer.add_pad_token_id(tok.token_to_id(spec.pad))
    writer.add_add_bos_token(spec.add_bos)

    for tensor_name, values, _ in tensors:
        qtype = tensor_type(tensor_name, values, variant)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(tensor_name, values.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(tensor_name, values.astype(np.float16))
        else:
            writer.add_tensor(tensor_name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_decoder_files(directory: Path, arch: str, cfg, weights: dict[str, np.ndarray], tok) -> None:
    """Every GGUF variant of one decoder fixture."""
    tensors = gguf_tensors(weights, arch, cfg)
    for variant in gguf_variants(arch):
        write_gguf(directory / variant.file_name, arch, cfg, DECODER_TOKENIZERS[arch], tok, tensors, variant, f"tiny-{arch}-fixture")


# ---------------------------------------------------------------------------------------------
# ONNX: the exported graph is kept with its weight tensors emptied; weights.json names the
# parameter (and whether it is transposed, as the legacy exporter folds the tied output layer)
# that fills each one.
# ---------------------------------------------------------------------------------------------

WEIGHTS_RECIPE = "weights.json"


def strip_weights(model, weights: dict[str, np.ndarray]) -> dict[str, dict]:
    """Empty every initializer that equals a parameter (or its transpose); returns the recipe."""
    from onnx import numpy_helper

    recipe = {}
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype != np.float32 or array.size <= 16:
            continue  # shape constants and scalars are graph, not weights
        source = find_parameter(array, weights)
        if source is None:
            raise SystemExit(f"initializer {tensor.name} {array.shape} matches no parameter: cannot strip it")
        recipe[tensor.name] = source
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.ClearField("external_data")
        tensor.ClearField("data_location")  # unset, not DEFAULT: proto2 would write an explicit 0
    return recipe


def find_parameter(array: np.ndarray, weights: dict[str, np.ndarray]) -> dict | None:
    for name, values in weights.items():
        if values.shape == array.shape and np.array_equal(values, array):
            return {"parameter": name, "transpose": False}
        if values.ndim == 2 and values.T.shape == array.shape and np.array_equal(values.T, array):
            return {"parameter": name, "transpose": True}
    return None


def fill_weights(model, recipe: dict[str, dict], weights: dict[str, np.ndarray]) -> None:
    filled = set()
    for tensor in model.graph.initializer:
        if tensor.name not in recipe:
            continue
        source = recipe[tensor.name]
        values = weights[source["parameter"]]
        values = values.T if source["transpose"] else values
        if tuple(tensor.dims) != values.shape:
            raise SystemExit(f"{tensor.name}: graph says {tuple(tensor.dims)}, parameter is {values.shape}")
        tensor.raw_data = np.ascontiguousarray(values, dtype="<f4").tobytes()
        filled.add(tensor.name)
    missing = set(recipe) - filled
    if missing:
        raise SystemExit(f"weights.json names initializers the graph lacks: {sorted(missing)}")


def write_onnx(skeleton: Path, out_dir: Path, weights: dict[str, np.ndarray], external: bool) -> None:
    import onnx

    model = onnx.load(str(skeleton), load_external_data=False)
    recipe = json.loads((skeleton.parent / WEIGHTS_RECIPE).read_text(encoding="utf-8"))
    fill_weights(model, recipe, weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.onnx"
    if external:
        # onnx appends to an existing data file; start from none so offsets begin at 0.
        (out_dir / "model.onnx.data").unlink(missing_ok=True)
        onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(target))


# ---------------------------------------------------------------------------------------------
# Set-up: everything under OUT from the committed sources.
# ---------------------------------------------------------------------------------------------


def read_reference(directory: Path) -> dict:
    return json.loads((directory / "reference.json").read_text(encoding="utf-8"))


def checked_weights(family: str, reference: dict, label: str) -> dict[str, np.ndarray]:
    weights = model_weights(family, SimpleNamespace(**reference["model"]["config"]))
    got, want = weights_digest(weights), reference["weights_sha256"]
    if got != want:
        raise SystemExit(
            f"{label}: the redrawn weights (sha256 {got[:12]}) are not the ones reference.json was made from "
            f"({want[:12]}); use numpy {reference['numpy']} as the Makefile pins, or re-author with scripts/make_fixtures.py"
        )
    return weights


def materialize(src: Path, out: Path) -> None:
    from tokenizers import Tokenizer

    gpt2_ref = read_reference(src / "tiny-gpt2")
    weights = checked_weights("gpt2", gpt2_ref, "tiny-gpt2")
    write_onnx(src / "tiny-gpt2" / "graph.onnx", out / "tiny-gpt2", weights, external=False)
    shutil.copyfile(src / "tiny-gpt2" / "tokenizer.json", out / "tiny-gpt2" / "tokenizer.json")
    if (src / "tiny-gpt2-dynamo" / "graph.onnx").exists():
        write_onnx(src / "tiny-gpt2-dynamo" / "graph.onnx", out / "tiny-gpt2-dynamo", weights, external=True)

    for arch in ("llama", "qwen2", "cohere"):
        name = f"tiny-{arch}"
        reference = read_reference(src / name)
        weights = checked_weights(arch, reference, name)
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        tok = Tokenizer.from_file(str(src / name / "tokenizer.json"))
        write_decoder_files(directory, arch, SimpleNamespace(**reference["model"]["config"]), weights, tok)
        shutil.copyfile(src / name / "tokenizer.json", directory / "tokenizer.json")


def write_fixtures(src: Path, out: Path) -> None:
    """materialize() beside OUT, then swap each folder in: an interrupted run leaves no half set."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    materialize(src, tmp)
    out.mkdir(parents=True, exist_ok=True)
    for child in tmp.iterdir():
        target = out / child.name
        shutil.rmtree(target, ignore_errors=True)
        child.rename(target)
    tmp.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=Path("tests/fixtures"), help="committed fixture sources")
    parser.add_argument("--out", type=Path, default=Path(".cache/fixtures"), help="where the model files go")
    args = parser.parse_args()
    write_fixtures(args.src, args.out)
    print(f"model fixtures written under {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
