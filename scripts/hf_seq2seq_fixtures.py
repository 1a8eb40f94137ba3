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

    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py write --src tests/fixtures --out .cache/fixtures
    .cache/venv/bin/python scripts/hf_seq2seq_fixtures.py author --out tests/fixtures --build .cache/fixtures
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
    print(f"wrote {args.out / NAME}")


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--src", type=Path, default=Path("tests/fixtures"))
    w.add_argument("--out", type=Path, default=Path(".cache/fixtures"))
    a = sub.add_parser("author")
    a.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    a.add_argument("--build", type=Path, default=Path(".cache/fixtures"))
    args = p.parse_args()
    {"write": cmd_write, "author": cmd_author}[args.cmd](args)


if __name__ == "__main__":
    main()
