#!/usr/bin/env python3
"""A tiny random mT5 (MT5ForConditionalGeneration) folder and transformers' outputs on it.

The encoder-decoder counterpart of scripts/hf_fixtures.py: 2 encoder blocks, 3 decoder blocks
(so a stack mix-up changes shapes), 4 heads of 16, gated-GELU MLP of 96, 8 relative-position
buckets with a maximum distance of 20 (so short test lines already reach the logarithmic
buckets and the capped last one), an untied `lm_head.weight`, float32. The tokenizer is a
T5-style unigram model (pad 0, </s> 1, <unk> 2, eight <extra_id_N> sentinels, metaspace
pre-tokenizer, </s> appended by the post-processor) trained by the `tokenizers` library on the
lines below; it is committed as tests/fixtures/hf-mt5-f32/tokenizer.json.

The repository keeps config.json, generation_config.json, tokenizer.json, tokenizer_config.json
and reference.json; the weights are redrawn from seeds with NumPy (one stream per tensor, seeded
by the tensor's name), as hf_fixtures.py does. Commands:

  write   (NumPy only; `make fixtures`): write model.safetensors and copy the small files into
          --out/hf-mt5-f32, checking the tensors' SHA-256 against reference.json.
  author  (torch + transformers + tokenizers, the Makefile's GRADIENT_REFERENCE_PACKAGES pins):
          save the config with transformers, train the tokenizer, write the folder, load it back
          with MT5ForConditionalGeneration.from_pretrained and record in reference.json:
          encoder outputs and decoder logits on a few inputs, greedy generation
          (`generate`, no sampling), and per-pair / per-text log-likelihoods computed the way
          lm-evaluation-harness's HFLM(backend="seq2seq") computes `loglikelihood` and
          `loglikelihood_rolling`. lm_eval itself is not installed: the procedure is a
          reimplementation of lm-eval 0.4's huggingface.py as read from its source
          (context encoded with the tokenizer's special tokens, so </s> is appended; the
          continuation without; the decoder's labels are the continuation; rolling windows
          from utils.get_rolling_token_windows + make_disjoint_window with the prefix token
          </s>, the text's own ids ending in </s>), run on transformers' model.

The same model as llama.cpp's converter writes it (convert_hf_to_gguf.py's T5Model, `t5`
architecture) goes to --out/gguf-mt5/model.gguf: tensor names enc.blk.N.* / dec.blk.N.*, the
t5.* hyperparameters, and the `t5` (unigram) tokenizer read from a SentencePiece model:
pieces, scores, token types, the precompiled normalization charsmap, add_space_prefix and
remove_extra_whitespaces, then the sentinels as user-defined tokens (from the HF folder's
added tokens, as the converter takes them from added_tokens.json). No real mT5 spiece.model is
available offline, so tests/fixtures/gguf-mt5/spiece.model is authored (`author-gguf`, needs the
sentencepiece package, TOKENIZER_REFERENCE_PACKAGES): the fixture's 144 unigram pieces and
scores with the charsmap the sentencepiece library compiles for its `nmt_nfkc` rule, the rule
T5 and mT5 were trained with (add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces on,
as theirs). `author-gguf` also records, in tests/fixtures/gguf-mt5/tokenizer_cases.json, the ids
transformers' T5Tokenizer (converted from that spiece.model) and the sentencepiece library give
to multilingual texts that exercise the normalization. `write` reads spiece.model with a
minimal protobuf reader, so `make fixtures` needs only NumPy and gguf.

    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py write --src tests/fixtures --out .cache/fixtures
    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py author --out tests/fixtures --build .cache/fixtures
    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py author-gguf --out tests/fixtures
    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py onnx-export --out DIR   (torch + transformers)
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

SEED = 20261207
NAME = "hf-mt5-f32"
FORMAT = "polyprune-hf-seq2seq-fixture-reference/1"
EMBED_STD = 1.0
HEAD_STD = 0.25
NORM_STD = 0.1
BIAS_TABLE_STD = 1.0
SENTINELS = 8
VOCAB_PIECES = 180
# The rolling log-likelihood's window length (lm-eval's max_length); short so that the
# test texts span several windows, including a last partial one.
ROLLING_MAX_LENGTH = 12

SIZES = dict(
    d_model=64,
    d_kv=16,
    num_heads=4,
    d_ff=96,
    num_layers=2,
    num_decoder_layers=3,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=20,
)

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Pruning removes weights; calibration decides which ones matter most.",
    "A small model, random weights, and exact numbers to check a reader against.",
    "Le renard brun saute par-dessus le chien paresseux au bord de la rivière.",
    "El zorro marrón salta sobre el perro perezoso cerca del río.",
    "Numbers like 12345 and 2026 are written with digits.",
    "An encoder reads the whole input; a decoder writes one token at a time.",
    "Les poids élagués restent nuls après la calibration.",
    "La atención cruzada mira la salida del codificador.",
    "敏捷的棕色狐狸跳过了懒狗。",
]

ENCODER_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Le renard brun saute.",
    "An encoder reads the whole input; a decoder writes one token at a time, again and again.",
]

ROLLING_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Pruning removes weights; calibration decides which ones matter most.",
    "El zorro marrón salta sobre el perro perezoso cerca del río, y la atención cruzada mira.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "Short.",
]


# ---------------------------------------------------------------------------------------------
# Weights (NumPy only)
# ---------------------------------------------------------------------------------------------


def draw(name: str, shape: list[int]) -> np.ndarray:
    """float32 values of one tensor; each name has its own stream (order is irrelevant).
    T5 does not scale scores by 1/sqrt(d), so q and k get 1/fan_in like every matrix and the
    scores stay of order one; the bias table is N(0, 1) so the buckets change the attention."""
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    noise = rng.standard_normal(shape, dtype=np.float32)
    if name.endswith("relative_attention_bias.weight"):
        return (BIAS_TABLE_STD * noise).astype(np.float32)
    if len(shape) == 1:
        return (1.0 + NORM_STD * noise).astype(np.float32)
    if name == "shared.weight":
        return (EMBED_STD * noise).astype(np.float32)
    if name == "lm_head.weight":
        return (HEAD_STD * noise).astype(np.float32)
    return (noise / np.float32(np.sqrt(shape[1]))).astype(np.float32)


def write_safetensors(path: Path, tensors: list[tuple[str, list[int], bytes]]) -> None:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, data in tensors:
            f.write(data)


def tensors_digest(tensors: list[tuple[str, list[int], bytes]]) -> str:
    h = hashlib.sha256()
    for name, shape, data in sorted(tensors):
        h.update(f"{name} F32 {shape}\n".encode())
        h.update(data)
    return h.hexdigest()


def drawn_tensors(layout: list[list]) -> list[tuple[str, list[int], bytes]]:
    return [(name, shape, np.ascontiguousarray(draw(name, shape), dtype="<f4").tobytes()) for name, shape in layout]


SMALL_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]


def write_folder(src: Path, out: Path) -> None:
    reference = json.loads((src / "reference.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    tensors = drawn_tensors(reference["tensors"])
    write_safetensors(out / "model.safetensors", tensors)
    digest = tensors_digest(tensors)
    if digest != reference["tensors_sha256"]:
        sys.exit(f"{out}: redrawn tensors differ from the authored ones (sha256 {digest} != {reference['tensors_sha256']})")
    for f in SMALL_FILES:
        shutil.copyfile(src / f, out / f)


def cmd_write(args) -> None:
    write_folder(args.src / NAME, args.out / NAME)
    write_gguf(args.src / NAME, args.src / GGUF_NAME / SPIECE_FILE, args.out / GGUF_NAME / "model.gguf")
    print(f"wrote {args.out / NAME} and {args.out / GGUF_NAME}")


# ---------------------------------------------------------------------------------------------
# The GGUF `t5` file (NumPy + gguf)
# ---------------------------------------------------------------------------------------------

GGUF_NAME = "gguf-mt5"
SPIECE_FILE = "spiece.model"
# SentencePiece's piece types, as GGUF's tokenizer.ggml.token_type stores them.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4


def protobuf_fields(data: bytes):
    """(field number, wire type, value) of one protobuf message: varints as ints, 32-bit
    values as raw 4 bytes, length-delimited values as bytes."""
    i = 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire == 1:
            yield field, wire, data[i : i + 8]
            i += 8
        elif wire == 2:
            n = varint()
            yield field, wire, data[i : i + n]
            i += n
        elif wire == 5:
            yield field, wire, data[i : i + 4]
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not expected in a SentencePiece model")


def read_spiece(path: Path) -> dict:
    """What llama.cpp's converter takes from a SentencePiece ModelProto: each piece (field 1:
    piece 1, score 2, type 3; type defaults to NORMAL) and the normalizer spec (field 3:
    precompiled_charsmap 2, add_dummy_prefix 3, remove_extra_whitespaces 4; both flags default
    to true)."""
    pieces, spec = [], {"charsmap": b"", "add_dummy_prefix": True, "remove_extra_whitespaces": True}
    for field, _, value in protobuf_fields(path.read_bytes()):
        if field == 1:
            piece = {"piece": "", "score": 0.0, "type": NORMAL}
            for f, _, v in protobuf_fields(value):
                if f == 1:
                    piece["piece"] = v.decode("utf-8")
                elif f == 2:
                    piece["score"] = struct.unpack("<f", v)[0]
                elif f == 3:
                    piece["type"] = v
            pieces.append(piece)
        elif field == 3:
            for f, _, v in protobuf_fields(value):
                if f == 2:
                    spec["charsmap"] = bytes(v)
                elif f == 3:
                    spec["add_dummy_prefix"] = bool(v)
                elif f == 4:
                    spec["remove_extra_whitespaces"] = bool(v)
    return {"pieces": pieces, **spec}


def gguf_tensor_name(hf: str) -> str:
    """llama.cpp's name of a Hugging Face T5 tensor (gguf-py's tensor_mapping for MODEL_ARCH.T5)."""
    fixed = {
        "shared.weight": "token_embd.weight",
        "lm_head.weight": "output.weight",
        "encoder.final_layer_norm.weight": "enc.output_norm.weight",
        "decoder.final_layer_norm.weight": "dec.output_norm.weight",
    }
    if hf in fixed:
        return fixed[hf]
    stack, _, block, _, layer, rest = hf.removesuffix(".weight").split(".", 5)
    prefix = {"encoder": "enc", "decoder": "dec"}[stack]
    ffn_layer = "2" if stack == "decoder" else "1"
    local = {
        ("0", "layer_norm"): "attn_norm",
        ("0", "SelfAttention.q"): "attn_q",
        ("0", "SelfAttention.k"): "attn_k",
        ("0", "SelfAttention.v"): "attn_v",
        ("0", "SelfAttention.o"): "attn_o",
        ("0", "SelfAttention.relative_attention_bias"): "attn_rel_b",
        (ffn_layer, "layer_norm"): "ffn_norm",
        (ffn_layer, "DenseReluDense.wi_0"): "ffn_gate",
        (ffn_layer, "DenseReluDense.wi_1"): "ffn_up",
        (ffn_layer, "DenseReluDense.wo"): "ffn_down",
    }
    if stack == "decoder":
        local.update(
            {
                ("1", "layer_norm"): "cross_attn_norm",
                ("1", "EncDecAttention.q"): "cross_attn_q",
                ("1", "EncDecAttention.k"): "cross_attn_k",
                ("1", "EncDecAttention.v"): "cross_attn_v",
                ("1", "EncDecAttention.o"): "cross_attn_o",
            }
        )
    return f"{prefix}.blk.{block}.{local[(layer, rest)]}.weight"


def write_gguf(folder: Path, spiece: Path, path: Path) -> None:
    """The hf-mt5-f32 fixture (its committed files in `folder`, its weights redrawn) as a `t5`
    GGUF file, every tensor in float32."""
    import gguf

    config = json.loads((folder / "config.json").read_text())
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    model = read_spiece(spiece)
    vocab = config["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(vocab)]
    scores = [-10000.0] * vocab
    types = [5] * vocab
    for i, piece in enumerate(model["pieces"]):
        tokens[i], scores[i], types[i] = piece["piece"], piece["score"], piece["type"]
    # The converter's added_tokens.json: the folder's added tokens past the SentencePiece pieces.
    for added in tokenizer["added_tokens"]:
        if added["id"] >= len(model["pieces"]):
            tokens[added["id"]], scores[added["id"]], types[added["id"]] = added["content"], -1000.0, USER_DEFINED
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "t5")
    writer.add_type("model")
    writer.add_name(NAME)
    writer.add_context_length(512)
    writer.add_embedding_length(config["d_model"])
    writer.add_feed_forward_length(config["d_ff"])
    writer.add_block_count(config["num_layers"])
    writer.add_decoder_block_count(config["num_decoder_layers"])
    writer.add_head_count(config["num_heads"])
    writer.add_key_length(config["d_kv"])
    writer.add_value_length(config["d_kv"])
    writer.add_layer_norm_eps(config["layer_norm_epsilon"])
    writer.add_relative_attn_buckets_count(config["relative_attention_num_buckets"])
    writer.add_layer_norm_rms_eps(config["layer_norm_epsilon"])
    writer.add_decoder_start_token_id(config["decoder_start_token_id"])
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_tokenizer_model("t5")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_add_space_prefix(model["add_dummy_prefix"])
    writer.add_remove_extra_whitespaces(model["remove_extra_whitespaces"])
    writer.add_precompiled_charsmap(model["charsmap"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_unk_token_id(2)
    writer.add_pad_token_id(config["pad_token_id"])
    reference = json.loads((folder / "reference.json").read_text())
    for name, shape in reference["tensors"]:
        writer.add_tensor(gguf_tensor_name(name), np.ascontiguousarray(draw(name, shape), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# ---------------------------------------------------------------------------------------------
# Authoring (torch + transformers + tokenizers)
# ---------------------------------------------------------------------------------------------


def train_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    specials = ["<pad>", "</s>", "<unk>"]
    trainer = trainers.UnigramTrainer(
        vocab_size=VOCAB_PIECES, special_tokens=specials, unk_token="<unk>", shrinking_factor=0.75, max_piece_length=8
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    tok.add_special_tokens([f"<extra_id_{i}>" for i in range(SENTINELS)])
    assert [tok.token_to_id(s) for s in specials] == [0, 1, 2]
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return tok


def rolling_windows(tokens: list[int], prefix: int, max_len: int) -> list[tuple[list[int], list[int]]]:
    """lm-eval's get_rolling_token_windows(context_len=1) followed by make_disjoint_window."""
    out = []
    first = min(max_len, len(tokens))
    out.append(([prefix] + tokens[: first - 1], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, max_len)
        end = predicted + n
        out.append((tokens[end - max_len - 1 : end - 1], tokens[end - n : end]))
        predicted += n
    return [(ctx[: len(ctx) - (len(cont) - 1)], cont) for ctx, cont in out]


def seq2seq_logprobs(model, context: list[int], labels: list[int]) -> list[float]:
    """log p(label_t | context, labels before t) as lm-eval's seq2seq backend gets them: the
    model called with `labels` (decoder input = labels shifted right from the start token),
    float64 log-softmax of the float32 logits."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context]), labels=torch.tensor([labels])).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    return [float(lp[t, labels[t]]) for t in range(len(labels))]


def pairs_from(tok, texts: list[str]) -> list[tuple[str, str]]:
    """(context, continuation) pairs: every split of each text at a space, the continuation
    keeping its leading space as lm-eval's tasks write it (target_delimiter)."""
    pairs = []
    for text in texts:
        words = text.split(" ")
        for k in range(1, len(words)):
            pairs.append((" ".join(words[:k]), " " + " ".join(words[k:])))
    return pairs


def encode_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's _encode_pair for seq2seq: trailing spaces of the context move to the
    continuation; the context gets the special tokens (</s>), the continuation none."""
    n = len(context) - len(context.rstrip())
    if n:
        continuation = context[-n:] + continuation
        context = context[:-n]
    return tok.encode(context).ids, tok.encode(continuation, add_special_tokens=False).ids


def cmd_author(args) -> None:
    import tokenizers
    import torch
    import transformers as tf

    build = args.build / NAME
    src = args.out / NAME
    shutil.rmtree(build, ignore_errors=True)
    src.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer()
    tok.save(str(src / "tokenizer.json"))
    tok = tokenizers.Tokenizer.from_file(str(src / "tokenizer.json"))
    config = tf.MT5Config(
        vocab_size=tok.get_vocab_size(), feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **SIZES
    )
    model = tf.MT5ForConditionalGeneration(config).eval()
    model.save_pretrained(build)
    # Real mT5 configs say the head is untied (transformers 5 ties it only when the checkpoint
    # lacks lm_head.weight); write that, as google/mt5-* do.
    cfg = json.loads((build / "config.json").read_text())
    cfg["tie_word_embeddings"] = False
    (src / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(build / "generation_config.json", src / "generation_config.json")
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (src / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    # Every tensor of the model once: the tied embedding copies are not stored, the head is.
    state = model.state_dict()
    skip = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}
    layout = [[n, list(t.shape)] for n, t in state.items() if n not in skip]
    assert any(n == "lm_head.weight" for n, _ in layout)
    tensors = drawn_tensors(layout)
    reference = {
        "format": FORMAT,
        "architecture": "mt5",
        "dtype": "f32",
        "seed": SEED,
        "generator": "scripts/hf_seq2seq_fixtures.py",
        "tensors": layout,
        "tensors_sha256": tensors_digest(tensors),
    }
    (src / "reference.json").write_text(json.dumps(reference))
    shutil.rmtree(build)
    write_folder(src, build)
    model = tf.MT5ForConditionalGeneration.from_pretrained(build, dtype=torch.float32, attn_implementation="eager").eval()
    assert not torch.equal(model.lm_head.weight, model.shared.weight), "the head must load untied"
    for name, shape in layout:
        assert torch.equal(model.state_dict()[name], torch.from_numpy(draw(name, shape))), name

    # Encoder outputs (after the final norm) and decoder logits with labels.
    encoder = []
    with torch.no_grad():
        for text in ENCODER_TEXTS:
            ids = tok.encode(text).ids
            hidden = model.encoder(input_ids=torch.tensor([ids])).last_hidden_state[0]
            encoder.append({"text": text, "ids": ids, "hidden": [round(float(v), 7) for v in hidden.flatten()]})
    decoder = []
    with torch.no_grad():
        for text, target in [(ENCODER_TEXTS[0], "Le renard brun saute par-dessus le chien."), (ENCODER_TEXTS[1], "El zorro")]:
            ids = tok.encode(text).ids
            labels = tok.encode(target).ids
            logits = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).logits[0]
            decoder.append({"ids": ids, "labels": labels, "logits": [round(float(v), 6) for v in logits.flatten()]})
    generate = []
    with torch.no_grad():
        for text in ENCODER_TEXTS + TRAINING_TEXT[3:6]:
            ids = tok.encode(text).ids
            # use_cache=False: transformers 5.25 sizes generate's cache by num_layers, which
            # fails when the decoder has more blocks than the encoder; the greedy tokens are the same.
            out = model.generate(
                input_ids=torch.tensor([ids]), do_sample=False, num_beams=1, max_new_tokens=16, min_new_tokens=0, use_cache=False
            )
            generate.append({"ids": ids, "max_new_tokens": 16, "output": [int(v) for v in out[0]]})
    loglikelihood = []
    for context, continuation in pairs_from(tok, TRAINING_TEXT + ENCODER_TEXTS[2:] + ROLLING_TEXTS[2:3]):
        ctx, cont = encode_pair(tok, context, continuation)
        lp = seq2seq_logprobs(model, ctx, cont)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx]), labels=torch.tensor([cont])).logits[0]
        greedy = bool((logits.argmax(-1) == torch.tensor(cont)).all())
        loglikelihood.append(
            {"context": context, "continuation": continuation, "context_ids": ctx, "continuation_ids": cont, "logprob": sum(lp), "greedy": greedy}
        )
    rolling = []
    eos = 1
    for text in ROLLING_TEXTS:
        ids = tok.encode(text).ids
        windows = rolling_windows(ids, eos, ROLLING_MAX_LENGTH)
        total = 0.0
        for ctx, cont in windows:
            total += sum(seq2seq_logprobs(model, ctx, cont))
        rolling.append({"text": text, "ids": ids, "windows": [[c, t] for c, t in windows], "logprob": total})
    all_lp = [v for d in decoder for v in torch.log_softmax(torch.tensor(d["logits"]).view(len(d["labels"]), -1), -1).flatten().tolist()]
    reference.update(
        {
            "encoder": encoder,
            "decoder": decoder,
            "generate": generate,
            "loglikelihood": loglikelihood,
            "rolling_max_length": ROLLING_MAX_LENGTH,
            "rolling": rolling,
            "logprob_std": float(np.std(all_lp)),
            "versions": {"torch": torch.__version__, "transformers": tf.__version__, "tokenizers": tokenizers.__version__, "numpy": np.__version__},
        }
    )
    (src / "reference.json").write_text(json.dumps(reference, indent=0) + "\n")
    greedy_share = sum(p["greedy"] for p in loglikelihood) / len(loglikelihood)
    print(json.dumps({"pairs": len(loglikelihood), "greedy_share": greedy_share, "logprob_std": reference["logprob_std"], "vocab": tok.get_vocab_size()}))


# Texts for the GGUF tokenizer: several scripts, and the cases SentencePiece's nmt_nfkc
# normalization and whitespace handling change (full-width letters and ideographic space,
# ligatures, circled and fraction digits, combining accents, leading/trailing/double spaces,
# tabs and newlines, no-break and zero-width spaces), pieces the vocabulary lacks (<unk>), and
# special-token text.
TOKENIZER_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Le renard brun saute par-dessus le chien paresseux au bord de la rivière.",
    "El zorro marrón salta sobre el perro perezoso cerca del río.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "Ｔｈｅ　ｑｕｉｃｋ ｂｒｏｗｎ ｆｏｘ１２３",
    "ﬁne ﬂour, ① ½ ⅔ and ™",
    "caf\u00e9 versus cafe\u0301, \u00c5ngstr\u00f6m and A\u030angstro\u0308m",
    "  leading and trailing spaces  ",
    "double  spaces   and    more",
    "tabs\tand\nnewlines\r\nhere",
    "no\u00a0break\u200bzero\u2003em",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",
    "ｶﾀｶﾅ and ㎏ ㍿ Ⅻ",
    "Numbers like 12345 and 2026 are written with digits.",
    "sentinels <extra_id_0> between <extra_id_7> words",
    "an end </s> in the middle",
    "",
    "   ",
]


def cmd_author_gguf(args) -> None:
    """tests/fixtures/gguf-mt5/spiece.model and tokenizer_cases.json (sentencepiece + transformers)."""
    import io
    import os

    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    import sentencepiece as spm
    import transformers as tf
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    src = args.out / NAME
    dst = args.out / GGUF_NAME
    dst.mkdir(parents=True, exist_ok=True)
    tokenizer = json.loads((src / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    # A throwaway model trained with the nmt_nfkc rule, for the charsmap the library compiles.
    trained = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_TEXT * 4),
        model_writer=trained,
        vocab_size=200,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    proto = model_pb2.ModelProto()
    proto.ParseFromString(trained.getvalue())
    del proto.pieces[:]
    for i, (piece, score) in enumerate(vocab):
        p = proto.pieces.add()
        p.piece, p.score = piece, score
        p.type = {0: CONTROL, 1: CONTROL, 2: UNKNOWN}.get(i, NORMAL)
    t = proto.trainer_spec
    t.model_type, t.vocab_size = model_pb2.TrainerSpec.UNIGRAM, len(vocab)
    t.pad_id, t.eos_id, t.unk_id, t.bos_id = 0, 1, 2, -1
    t.pad_piece, t.eos_piece, t.unk_piece = "<pad>", "</s>", "<unk>"
    n = proto.normalizer_spec
    assert n.name == "nmt_nfkc" and n.add_dummy_prefix and n.remove_extra_whitespaces and n.escape_whitespaces and n.precompiled_charsmap
    (dst / SPIECE_FILE).write_bytes(proto.SerializeToString())

    # transformers' T5Tokenizer from that spiece.model, the sentinels added in the fixture's order.
    sentinels = [a["content"] for a in tokenizer["added_tokens"] if a["id"] >= len(vocab)]
    hf_dir = args.build / GGUF_NAME / "spiece-folder"
    hf_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dst / SPIECE_FILE, hf_dir / SPIECE_FILE)
    tok_cfg = {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "additional_special_tokens": sentinels}
    (hf_dir / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    hf_tok = tf.AutoTokenizer.from_pretrained(hf_dir)
    assert hf_tok.convert_tokens_to_ids(sentinels) == list(range(len(vocab), len(vocab) + len(sentinels)))
    sp = spm.SentencePieceProcessor(model_file=str(dst / SPIECE_FILE))
    cases = []
    for text in TOKENIZER_TEXTS:
        ids = hf_tok(text)["input_ids"]
        sp_ids = sp.encode(text) + [1]
        cases.append({"text": text, "ids": ids, "sentencepiece_ids": sp_ids})
    agree = sum(c["ids"] == c["sentencepiece_ids"] for c in cases)
    out = {
        "generator": "scripts/hf_seq2seq_fixtures.py author-gguf",
        "reference": "transformers T5Tokenizer converted from spiece.model (ids); the sentencepiece library with </s> appended (sentencepiece_ids)",
        "versions": {"transformers": tf.__version__, "sentencepiece": spm.__version__},
        "cases": cases,
    }
    (dst / "tokenizer_cases.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(hf_dir)
    print(json.dumps({"cases": len(cases), "transformers_equals_sentencepiece": agree, "spiece_bytes": (dst / SPIECE_FILE).stat().st_size}))


def cmd_onnx_export(args) -> None:
    """The written hf-mt5-f32 folder (--src) as an ONNX export laid out as optimum writes an
    encoder-decoder (--out): encoder_model.onnx (input_ids, attention_mask -> last_hidden_state)
    and decoder_model.onnx (input_ids, encoder_hidden_states, encoder_attention_mask -> logits),
    exported by torch's TorchScript exporter as optimum calls it (opset 17, constant folding,
    dynamic batch and sequence axes), beside the folder's config and tokenizer files. optimum's
    decoder_with_past_model.onnx is not written: polyprune refuses the folder on its files and
    on how the weights are stored, which the other two show. Used by tests/mt5_import.rs."""
    import torch
    import transformers as tf

    model = tf.MT5ForConditionalGeneration.from_pretrained(args.src, dtype=torch.float32, attn_implementation="eager").eval()
    model.config.use_cache = False

    class Encoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    class Decoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, encoder_hidden_states, encoder_attention_mask):
            hidden = self.m.decoder(
                input_ids=input_ids, encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask, use_cache=False
            ).last_hidden_state
            return self.m.lm_head(hidden)

    args.out.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(1, 5, dtype=torch.long)
    common = dict(opset_version=17, do_constant_folding=True, dynamo=False)
    torch.onnx.export(
        Encoder(model),
        (ids, torch.ones_like(ids)),
        str(args.out / "encoder_model.onnx"),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": {0: "batch", 1: "encoder_sequence"}, "attention_mask": {0: "batch", 1: "encoder_sequence"}},
        **common,
    )
    torch.onnx.export(
        Decoder(model),
        (ids[:, :3], torch.zeros(1, 5, model.config.d_model), torch.ones_like(ids)),
        str(args.out / "decoder_model.onnx"),
        input_names=["input_ids", "encoder_hidden_states", "encoder_attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "decoder_sequence"},
            "encoder_hidden_states": {0: "batch", 1: "encoder_sequence"},
            "encoder_attention_mask": {0: "batch", 1: "encoder_sequence"},
        },
        **common,
    )
    for f in SMALL_FILES:
        shutil.copyfile(args.src / f, args.out / f)
    print(f"wrote {args.out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--src", type=Path, default=Path("tests/fixtures"))
    w.add_argument("--out", type=Path, default=Path(".cache/fixtures"))
    a = sub.add_parser("author")
    a.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    a.add_argument("--build", type=Path, default=Path(".cache/fixtures"))
    g = sub.add_parser("author-gguf")
    g.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    g.add_argument("--build", type=Path, default=Path(".cache/fixtures"))
    o = sub.add_parser("onnx-export")
    o.add_argument("--src", type=Path, default=Path(".cache/fixtures") / NAME)
    o.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    {"write": cmd_write, "author": cmd_author, "author-gguf": cmd_author_gguf, "onnx-export": cmd_onnx_export}[args.cmd](args)


if __name__ == "__main__":
    main()
