#!/usr/bin/env python3
"""Batch front end to ../shared/oracle/gemma3_reference.py for the Rust tests.

Loads the model once and answers many questions, one JSON object per line on stdout:
  gemma_oracle.py MODEL.gguf ids FILE...        -> {"file": F, "ids": [[...], ...]} per file (every non-empty line)
  gemma_oracle.py MODEL.gguf logprobs FILE      -> {"ids": [...], "logprobs": [...]} per non-empty line
  gemma_oracle.py MODEL.gguf ids-sib200 N TSV...  -> {"file": F, "ids": [[...], ...]} for the `text` of
                                                   the first N rows of each SIB-200 TSV, read with
                                                   Python's csv module (not polyprune's reader)
The per-token log-probabilities are log p(ids[t+1] | ids[..=t]), computed in float64 from the
oracle's float32 logits. Token ids come from the oracle's merges plus SentencePiece's
user-defined pieces (SentencePieceEncoder), which the shared oracle does not know.
"""
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.environ.get("POLYPRUNE_ORACLE_DIR", os.path.join(HERE, "..", "..", "..", "shared", "oracle"))
sys.path.insert(0, ORACLE)
from gemma3_reference import Gemma3  # noqa: E402


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def sib200_texts(path, n):
    # The files quote cells pandas-style; the csv module undoes the quoting and doubled quotes.
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return [row["text"].strip() for _, row in zip(range(n), rows)]


class SentencePieceEncoder:
    """The oracle's merges with SentencePiece's user-defined pieces (GGUF token type 4: Gemma's
    runs of spaces, tabs and newlines, HTML tags) cut out of the text first, longest match at the
    leftmost position, as the library's prefix matcher does; only the text between them is merged.
    GGUF stores their U+2581 as spaces, so pieces and text are compared with spaces normalized."""

    def __init__(self, model):
        fields = model._reader.fields
        types = fields["tokenizer.ggml.token_type"].contents() if "tokenizer.ggml.token_type" in fields else []
        self.model = model
        self.user_defined = {t.replace(" ", "\u2581"): i for i, (t, k) in enumerate(zip(model.tokens, types)) if int(k) == 4 and t}
        self.longest = max(map(len, self.user_defined), default=0)

    def encode(self, text):
        norm, ids, start, i = text.replace(" ", "\u2581"), [self.model.bos], 0, 0
        while i < len(norm):
            match = next(((n, self.user_defined[norm[i : i + n]]) for n in range(min(self.longest, len(norm) - i), 0, -1)
                          if norm[i : i + n] in self.user_defined), None)
            if match is None:
                i += 1
                continue
            ids += self.model.encode(norm[start:i])[1:] if start < i else []
            ids.append(match[1])
            i = start = i + match[0]
        return ids + (self.model.encode(norm[start:])[1:] if start < len(norm) else [])


def main(argv):
    model, cmd, files = Gemma3(argv[1]), argv[2], argv[3:]
    encoder = SentencePieceEncoder(model)
    if cmd == "ids":
        for path in files:
            print(json.dumps({"file": path, "ids": [encoder.encode(l) for l in lines(path)]}))
    elif cmd == "ids-sib200":
        n = int(files[0])
        for path in files[1:]:
            print(json.dumps({"file": path, "ids": [encoder.encode(t) for t in sib200_texts(path, n)]}))
    elif cmd == "logprobs":
        for line in lines(files[0]):
            ids = encoder.encode(line)
            lg = model.logits(ids).astype(np.float64)
            lg -= lg.max(-1, keepdims=True)
            lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
            out = [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
            print(json.dumps({"ids": ids, "logprobs": out}), flush=True)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
