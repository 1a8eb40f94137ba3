#!/usr/bin/env python3
"""Tiny Hugging Face model folders for polyprune's HF import/export tests.

Five architectures (llama: grouped-query attention, untied head; qwen2: q/k/v biases, tied
head, no BOS; gemma3: sliding window of 4 tokens, shorter than every test line, and a query
scale that is not the head size; cohere: parallel blocks, logit scale, adjacent-pair rotary;
bloom: 6 heads, so ALiBi slopes beyond a power of two, per-head interleaved fused q/k/v, biases
everywhere), each in float32 and bfloat16: ten folders named hf-<arch>-<dtype>. `write` also
writes the float32 BLOOM as a GGUF `bloom` file, gguf-bloom/model.gguf, laid out as llama.cpp's
converter lays BLOOM out (q/k/v rows as [all Q; all K; all V], the embeddings again as
`output.weight`), with the tiny Llama tokenizer (a BLOOM tokenizer is not the point here).

The repository keeps only the small files of each folder (config.json and
generation_config.json as transformers' save_pretrained wrote them, tokenizer_config.json and
reference.json); the tokenizer.json is an existing fixture's (tests/fixtures/tiny-*/), and the
weights are redrawn from seeds with NumPy, as scripts/fixture_files.py does for the other
fixtures. Three commands:

  write   (NumPy only; `make fixtures`): redraw the weights, write model.safetensors, copy
          the small files, and check the tensors' SHA-256 against reference.json.
  author  (torch + transformers, pinned in the Makefile's gradient-reference packages):
          build each model with transformers, save_pretrained it, check that `write` gives
          the very same tensors, and record per-line log-likelihoods computed by transformers
          (float32 weights, exactly the bf16 values for the bf16 variants) in reference.json.
  score   (torch + transformers): per-line log-likelihoods of folders (exports) for the
          token ids in a JSON file, printed as JSON; the export test calls it.

    .cache/venv/bin/python scripts/hf_fixtures.py write --src tests/fixtures --out .cache/fixtures
    .cache/venv/bin/python scripts/hf_fixtures.py author --out tests/fixtures --build .cache/fixtures
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SEED = 20261206
EMBED_STD = 0.25
NORM_STD = 0.1
BIAS_STD = 0.1
FORMAT = "polyprune-hf-fixture-reference/1"

# (tokenizer fixture, bos, eos, pad); token strings as that tokenizer.json spells them.
TOKENIZERS = {
    "llama": ("tiny-llama", "<|begin_of_text|>", "<|end_of_text|>", None),
    "gemma3": ("tiny-llama", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"),
    "qwen2": ("tiny-qwen2", None, "<|endoftext|>", "<|endoftext|>"),
    "cohere": ("tiny-cohere", "<BOS_TOKEN>", "<EOS_TOKEN>", "<PAD>"),
    "bloom": ("tiny-llama", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"),
}
ARCHS = list(TOKENIZERS)
DTYPES = ["f32", "bf16"]

# Lines longer than Gemma's 4-token window; the texts mean nothing to random weights.
LINES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Pruning removes weights; calibration decides which ones matter most.",
    "A small model, random weights, and exact numbers to check a reader against.",
    "Numbers like 12345 and 2026 split into digits in some tokenizers.",
]


def name_of(arch: str, dtype: str) -> str:
    return f"hf-{arch}-{dtype}"


# ---------------------------------------------------------------------------------------------
# Weights (NumPy only)
# ---------------------------------------------------------------------------------------------


def draw(arch: str, name: str, shape: list[int]) -> np.ndarray:
    """float32 values of one parameter; each name has its own stream (order is irrelevant)."""
    rng = np.random.default_rng([SEED + ARCHS.index(arch), zlib.crc32(name.encode())])
    noise = rng.standard_normal(shape, dtype=np.float32)
    if name.endswith("bias"):
        return (BIAS_STD * noise).astype(np.float32)
    if len(shape) == 1:
        # Gemma stores the offset w of its `1 + w` norms; the others store the gain itself.
        offset = 0.0 if arch == "gemma3" else 1.0
        return (offset + NORM_STD * noise).astype(np.float32)
    if "embed_tokens" in name or "lm_head" in name or name.endswith("word_embeddings.weight"):
        return (EMBED_STD * noise).astype(np.float32)
    return (noise / np.float32(np.sqrt(shape[1]))).astype(np.float32)


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 to bfloat16 bit patterns, rounding to nearest even (as torch's cast does)."""
    u = np.ascontiguousarray(values, dtype="<f4").view("<u4").astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


def stored_bytes(values: np.ndarray, dtype: str) -> bytes:
    if dtype == "bf16":
        return bf16_bits(values).tobytes()
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def widened(values: np.ndarray, dtype: str) -> np.ndarray:
    """The values a reader gets back from the stored dtype, as float32."""
    if dtype == "bf16":
        return (bf16_bits(values).astype("<u4") << 16).view("<f4")
    return values.astype(np.float32)


def write_safetensors(path: Path, tensors: list[tuple[str, str, list[int], bytes]]) -> None:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": {"f32": "F32", "bf16": "BF16"}[dtype], "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, data in tensors:
            f.write(data)


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    """name -> (dtype tag, shape, raw bytes), read without any library."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], blob[base + v["data_offsets"][0] : base + v["data_offsets"][1]]) for k, v in header.items()}


def tensors_digest(tensors: dict[str, tuple[str, list[int], bytes]]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        h.update(f"{name} {dtype} {shape}\n".encode())
        h.update(data)
    return h.hexdigest()


def drawn_tensors(arch: str, dtype: str, layout: list[list]) -> list[tuple[str, str, list[int], bytes]]:
    return [(name, dtype, shape, stored_bytes(draw(arch, name, shape), dtype)) for name, shape in layout]


def write_folder(src: Path, out: Path, fixtures: Path) -> None:
    """Writes one fixture folder from its committed small files (NumPy only)."""
    reference = json.loads((src / "reference.json").read_text())
    arch, dtype = reference["architecture"], reference["dtype"]
    out.mkdir(parents=True, exist_ok=True)
    tensors = drawn_tensors(arch, dtype, reference["tensors"])
    write_safetensors(out / "model.safetensors", tensors)
    digest = tensors_digest({n: (d.upper() if d == "bf16" else "F32", s, b) for n, d, s, b in tensors})
    if digest != reference["tensors_sha256"]:
        sys.exit(f"{out}: redrawn tensors differ from the authored ones (sha256 {digest} != {reference['tensors_sha256']})")
    for f in ["config.json", "generation_config.json", "tokenizer_config.json"]:
        shutil.copyfile(src / f, out / f)
    shutil.copyfile(fixtures / TOKENIZERS[arch][0] / "tokenizer.json", out / "tokenizer.json")


def cmd_write(args) -> None:
    for arch in ARCHS:
        for dtype in DTYPES:
            name = name_of(arch, dtype)
            write_folder(args.src / name, args.out / name, args.src)
    write_bloom_gguf(args.out / name_of("bloom", "f32"), args.out / "gguf-bloom" / "model.gguf", args.src)
    for arch in GGUF_DECODERS:
        write_decoder_gguf(arch, args.out / name_of(arch, "f32"), args.out / f"gguf-{arch}" / "model.gguf", args.src)
    print(f"wrote {len(ARCHS) * len(DTYPES)} Hugging Face fixture folders and gguf-{{bloom,{','.join(GGUF_DECODERS)}}} under {args.out}")


# The float32 fixtures also written as GGUF, as llama.cpp's converter writes them. Not gemma3:
# the fixture's layer pattern (sliding, global, sliding) and query scale (32, not the head
# size 16) are exactly what GGUF cannot say; llama.cpp fixes both by the architecture (every
# sixth layer global, the head size), so a converted file would compute another model. The
# real Gemma 3 270M GGUF covers that importer.
GGUF_DECODERS = ["llama", "qwen2", "cohere"]


def write_decoder_gguf(arch: str, folder: Path, path: Path, fixtures: Path) -> None:
    """A float32 Llama, Qwen2 or Cohere fixture as a GGUF file, with the converter's names,
    metadata and row order (scripts/fixture_files.py writes them for the tiny-* fixtures)."""
    import tokenizers
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gguf
    from fixture_files import DECODER_TOKENIZERS, GgufVariant, gguf_tensors, write_gguf

    cfg = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
    weights = {}
    for name, (dtype, shape, raw) in read_safetensors(folder / "model.safetensors").items():
        assert dtype == "F32", name
        weights[name] = np.frombuffer(raw, dtype="<f4").reshape(shape)
    tok = tokenizers.Tokenizer.from_file(str(fixtures / TOKENIZERS[arch][0] / "tokenizer.json"))
    # Every matrix in float32 (the default variant stores them in float16), so the import is
    # held to transformers' float32 reference at the same tolerance as the folder.
    every_matrix = GgufVariant("model.gguf", int(gguf.LlamaFileType.ALL_F32), {".weight": gguf.GGMLQuantizationType.F32})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, arch, cfg, DECODER_TOKENIZERS[arch], tok, gguf_tensors(weights, arch, cfg), every_matrix, f"hf-{arch}-f32")


def qkv_heads_to_blocks(values: np.ndarray, heads: int) -> np.ndarray:
    """BLOOM's fused q/k/v rows from per-head [q_h; k_h; v_h] to [all Q; all K; all V], as
    llama.cpp's converter re-lays them (weights and biases alike)."""
    rest = values.shape[1:]
    per_head = values.reshape((heads, 3, -1) + rest)
    return np.concatenate([per_head[:, j].reshape((-1,) + rest) for j in range(3)], axis=0)


def write_bloom_gguf(folder: Path, path: Path, fixtures: Path) -> None:
    """The float32 BLOOM fixture as a GGUF file, with the converter's names, metadata and layout."""
    import gguf
    import tokenizers

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixture_files import LLAMA_TOKENIZER, bpe_merges, gguf_vocab

    config = json.loads((folder / "config.json").read_text())
    tensors = read_safetensors(folder / "model.safetensors")
    d, heads = config["hidden_size"], config["n_head"]
    tok = tokenizers.Tokenizer.from_file(str(fixtures / TOKENIZERS["bloom"][0] / "tokenizer.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "bloom")
    writer.add_type("model")
    writer.add_name("hf-bloom-f32")
    writer.add_context_length(128)
    writer.add_embedding_length(d)
    writer.add_feed_forward_length(4 * d)
    writer.add_block_count(config["n_layer"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_layer_norm_eps(config["layer_norm_epsilon"])
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    tokens, types = gguf_vocab(tok, config["vocab_size"])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(LLAMA_TOKENIZER.pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(bpe_merges(tok))
    writer.add_bos_token_id(tok.token_to_id(LLAMA_TOKENIZER.bos))
    writer.add_eos_token_id(tok.token_to_id(LLAMA_TOKENIZER.eos))
    writer.add_add_bos_token(LLAMA_TOKENIZER.add_bos)
    block_names = {
        "input_layernorm": "attn_norm",
        "self_attention.query_key_value": "attn_qkv",
        "self_attention.dense": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.dense_h_to_4h": "ffn_up",
        "mlp.dense_4h_to_h": "ffn_down",
    }
    global_names = {"word_embeddings": "token_embd", "word_embeddings_layernorm": "token_embd_norm", "ln_f": "output_norm"}
    for name, (dtype, shape, raw) in tensors.items():
        assert dtype == "F32", name
        values = np.frombuffer(raw, dtype="<f4").reshape(shape)
        stem, kind = name.removeprefix("transformer.").rsplit(".", 1)
        if stem.startswith("h."):
            _, block, local = stem.split(".", 2)
            gguf_name = f"blk.{block}.{block_names[local]}.{kind}"
        else:
            gguf_name = f"{global_names[stem]}.{kind}"
        if ".attn_qkv." in gguf_name:
            values = qkv_heads_to_blocks(values, heads)
        writer.add_tensor(gguf_name, np.ascontiguousarray(values, dtype=np.float32))
        if gguf_name == "token_embd.weight":
            writer.add_tensor("output.weight", np.ascontiguousarray(values, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# ---------------------------------------------------------------------------------------------
# Authoring (torch + transformers)
# ---------------------------------------------------------------------------------------------


def config_for(arch: str, tok) -> object:
    import transformers as tf

    tok_dir, bos, eos, pad = TOKENIZERS[arch]
    ids = {k: (tok.token_to_id(v) if v else None) for k, v in (("bos_token_id", bos), ("eos_token_id", eos), ("pad_token_id", pad))}
    common = dict(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        max_position_embeddings=128,
        **ids,
    )
    if arch == "llama":
        return tf.LlamaConfig(num_hidden_layers=2, num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0, **common)
    if arch == "qwen2":
        return tf.Qwen2Config(num_hidden_layers=2, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0, **common)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(
            num_hidden_layers=3,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=32,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            tie_word_embeddings=True,
            **common,
        )
    if arch == "cohere":
        return tf.CohereConfig(num_hidden_layers=2, num_key_value_heads=4, logit_scale=0.5, tie_word_embeddings=True, **common)
    if arch == "bloom":
        # 6 heads: ALiBi's slopes for a head count that is not a power of two. BLOOM's MLP is
        # always 4 x hidden_size wide and its configs carry no positions limit.
        return tf.BloomConfig(vocab_size=common["vocab_size"], hidden_size=96, n_layer=2, n_head=6, **ids)
    raise ValueError(arch)


def start_ids(tok, text: str, bos: int | None, eos: int | None) -> list[int]:
    """Ids as polyprune scores a text: the tokenizer's own, with the start token first (BOS
    when the tokenizer adds it, else the end-of-text token)."""
    ids = tok.encode(text, add_special_tokens=True).ids
    adds_bos = bos is not None and tok.encode("a", add_special_tokens=True).ids[:1] == [bos]
    start = bos if adds_bos else eos
    return ids if ids[:1] == [start] else [start] + ids


def line_logprobs(model, rows: list[list[int]]) -> list[list[float]]:
    import torch

    out = []
    with torch.no_grad():
        for ids in rows:
            logits = model(torch.tensor([ids])).logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            out.append([float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)])
    return out


def load_f32(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def author_one(arch: str, dtype: str, out: Path, build: Path) -> dict:
    import tokenizers
    import torch
    from transformers import AutoModelForCausalLM

    tok = tokenizers.Tokenizer.from_file(str(out / TOKENIZERS[arch][0] / "tokenizer.json"))
    config = config_for(arch, tok)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    state = model.state_dict()
    tied = config.tie_word_embeddings
    layout = [[n, list(t.shape)] for n, t in state.items() if not (tied and n == "lm_head.weight")]
    with torch.no_grad():
        for name, shape in layout:
            state[name].copy_(torch.from_numpy(widened(draw(arch, name, shape), dtype)))
    if tied:
        assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    name = name_of(arch, dtype)
    folder = build / name
    shutil.rmtree(folder, ignore_errors=True)
    saved = model.to(torch.bfloat16) if dtype == "bf16" else model
    saved.save_pretrained(folder)
    src = out / name
    src.mkdir(parents=True, exist_ok=True)
    for f in ["config.json", "generation_config.json"]:
        shutil.copyfile(folder / f, src / f)
    _, bos, eos, pad = TOKENIZERS[arch]
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos, "pad_token": pad}
    (src / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    saved_tensors = read_safetensors(folder / "model.safetensors")
    digest = tensors_digest(saved_tensors)
    bos_id = config.bos_token_id
    eos_id = config.eos_token_id
    rows = [start_ids(tok, line, bos_id, eos_id) for line in LINES]
    reference = {
        "format": FORMAT,
        "architecture": arch,
        "dtype": dtype,
        "seed": SEED + ARCHS.index(arch),
        "generator": "scripts/hf_fixtures.py",
        "tensors": layout,
        "tensors_sha256": digest,
        "tokenizer_from": TOKENIZERS[arch][0],
        "lines": [],
    }
    (src / "reference.json").write_text(json.dumps(reference))
    # The NumPy path (`write`, what CI runs) must give save_pretrained's tensors.
    check = build / f"{name}.check"
    shutil.rmtree(check, ignore_errors=True)
    write_folder(src, check, out)
    # Reference log-likelihoods from the written folder, read back in float32.
    lps = line_logprobs(load_f32(check), rows)
    for text, ids, lp in zip(LINES, rows, lps):
        reference["lines"].append({"text": text, "ids": ids, "token_logprobs": lp, "nll": -sum(lp)})
    spread = float(np.std([v for lp in lps for v in lp]))
    reference["token_logprob_std"] = spread
    import transformers

    reference["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__}
    (src / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    shutil.rmtree(check)
    return {"name": name, "mean_nll": float(np.mean([-sum(lp) / len(lp) for lp in lps])), "logprob_std": spread}


def cmd_author(args) -> None:
    for arch in args.arch:
        for dtype in DTYPES:
            print(json.dumps(author_one(arch, dtype, args.out, args.build)))


def cmd_score(args) -> None:
    """jobs.json: [{"model": folder, "ids": [[id, ...], ...]}, ...]; prints one list of
    per-line token log-probabilities per job (one process, so torch is imported once)."""
    jobs = json.loads(Path(args.jobs).read_text())
    print(json.dumps([line_logprobs(load_f32(Path(j["model"])), j["ids"]) for j in jobs]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--src", type=Path, default=Path("tests/fixtures"))
    w.add_argument("--out", type=Path, default=Path(".cache/fixtures"))
    a = sub.add_parser("author")
    a.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    a.add_argument("--build", type=Path, default=Path(".cache/fixtures"))
    a.add_argument("--arch", nargs="+", choices=ARCHS, default=ARCHS, help="architectures to author (default: all)")
    s = sub.add_parser("score")
    s.add_argument("--jobs", required=True)
    args = p.parse_args()
    {"write": cmd_write, "author": cmd_author, "score": cmd_score}[args.cmd](args)


if __name__ == "__main__":
    main()
