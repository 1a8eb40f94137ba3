#!/usr/bin/env python3
"""Reference token ids for Gemma's tokenizer from the sentencepiece library itself.

GGUF keeps Gemma's SentencePiece vocabulary as three arrays (pieces, scores, types). This
script rebuilds a SentencePiece model from them (the library's own model protobuf) and lets
sentencepiece encode test strings, so polyprune's tokenizer.json, derived from the same arrays,
is checked against the library's BPE rather than against a second reading of it.

The rebuild undoes what llama.cpp's converter changed: user-defined pieces (runs of spaces,
tabs and newlines, HTML tags) are stored with literal spaces where the model had U+2581, and
the unknown piece is stored as a control token. Gemma's normalizer is the identity with
whitespace escaped (space -> U+2581), no dummy prefix, no whitespace folding; byte fallback on.

  gemma_tokenizer_reference.py MODEL.gguf OUT.json      # the committed reference cases
  gemma_tokenizer_reference.py MODEL.gguf --encode TEXT # ids and pieces of one text

Needs numpy, gguf, protobuf (PY_PACKAGES) and sentencepiece (`make tokenizer-reference`).
"""
import hashlib
import json
import sys

import sentencepiece as spm
from gguf import GGUFReader
from sentencepiece import sentencepiece_model_pb2 as model_pb2

# GGUF token types; sentencepiece's ModelProto.SentencePiece.Type uses the same numbers.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def rebuild(gguf_path):
    fields = GGUFReader(gguf_path).fields
    get = lambda key: fields[key].contents()
    if get("tokenizer.ggml.model") != "llama":
        raise SystemExit(f"{gguf_path}: not a SentencePiece (llama) vocabulary")
    pieces, scores, types = get("tokenizer.ggml.tokens"), get("tokenizer.ggml.scores"), get("tokenizer.ggml.token_type")
    unk = int(get("tokenizer.ggml.unknown_token_id"))
    proto = model_pb2.ModelProto()
    spec = proto.trainer_spec
    spec.model_type = model_pb2.TrainerSpec.BPE
    spec.vocab_size = len(pieces)
    spec.byte_fallback = True
    spec.unk_id, spec.bos_id, spec.eos_id = unk, int(get("tokenizer.ggml.bos_token_id")), int(get("tokenizer.ggml.eos_token_id"))
    spec.pad_id = int(get("tokenizer.ggml.padding_token_id"))
    norm = proto.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(get("tokenizer.ggml.add_space_prefix"))
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    for i, (piece, score, kind) in enumerate(zip(pieces, scores, types)):
        kind = int(kind)
        if kind == USER_DEFINED:
            piece = piece.replace(" ", "\u2581")
        if i == unk:
            kind = UNKNOWN
        p = proto.pieces.add()
        p.piece, p.score, p.type = piece, float(score), kind
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def cases():
    """Texts with runs of spaces, tabs and newlines in every position, plus the pieces that
    sentencepiece treats specially (user-defined tags, control tokens, bytes)."""
    texts = [
        "Oggi mi  sono svegliato con i muscoli doloranti.",  # XCOPA it test idx 320, choice 1
        " Oggi mi  sono svegliato con i muscoli doloranti.",  # as scored: after the delimiter
        "Koup  la te deside jwenn yon konpromi.",  # XCOPA ht test idx 20
        "Ieri mi esercitai in palestra.",
    ]
    for n in range(1, 34):
        texts.append("mi" + " " * n + "sono")
    for n in (1, 2, 3, 5, 8, 31, 32, 40):
        texts += [" " * n + "word", "word" + " " * n, " " * n]
    for ws in ("\t", "\n", "\r\n", " \t", "\t ", " \n", "\n ", "\n\n", "\t\t", "\n\t"):
        for n in (1, 2, 3, 7):
            texts.append(f"a{ws * n}b")
    for n in (30, 31, 32, 33, 64):
        texts += ["x" + "\n" * n + "y", "x" + "\t" * n + "y"]
    texts += [
        "def f(x):\n    return x  # two spaces\n\tpass\n",
        "Line one.\n\nLine two.   Three spaces.\t\tTwo tabs.\n \n",
        "  leading and trailing  ",
        "<table><tr><td>cell</td></tr></table>",
        "a <b>bold</b> and <i>it</i>",
        "<start_of_turn>user\nhello<end_of_turn>",
        "<bos>text<eos> <pad> <unk> <mask> <unused0> [multimodal]",
        "<0x41> <s> </s>",
        "Ünïcödé — 日本語のテキスト、中文  文本 ， 😀🧪",
        "\u2581 literal lower-one-eighth block \u2581\u2581 twice",
        "non-breaking\u00a0space and\u3000ideographic space",
        "",
    ]
    return texts


def main(argv):
    if len(argv) >= 3 and argv[2] == "--encode":
        sp = rebuild(argv[1])
        ids = sp.encode(" ".join(argv[3:]))
        print(json.dumps({"ids": ids, "pieces": [sp.id_to_piece(i) for i in ids]}, ensure_ascii=False))
        return
    if len(argv) != 3:
        raise SystemExit(__doc__)
    sp = rebuild(argv[1])
    digest = hashlib.sha256()
    with open(argv[1], "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    head = {"source": f"sentencepiece {spm.__version__}, model rebuilt from the GGUF's vocabulary", "gguf_sha256": digest.hexdigest()}
    lines = [json.dumps({"text": t, "ids": sp.encode(t)}, ensure_ascii=False) for t in cases()]
    with open(argv[2], "w", encoding="utf-8") as out:
        out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main(sys.argv)
