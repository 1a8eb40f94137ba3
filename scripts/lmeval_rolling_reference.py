"""lm-evaluation-harness `loglikelihood_rolling` totals for the Hugging Face fixtures.

AUTHORING ONLY: the outputs (tests/fixtures/hf-*/lmeval_rolling.json) are committed and
tests/hf_folders.rs reads them; CI does not install lm-eval and does not run this script.
Written against lm_eval==0.4.13 with accelerate==1.16.0 (its HFLM imports accelerate) and the
venv's pinned torch 2.15 and transformers 5.25.

Rerun (after `make fixtures` has written the weights into .cache/fixtures/):
    .cache/venv/bin/pip install lm_eval==0.4.13 accelerate==1.16.0
    .cache/venv/bin/python scripts/lmeval_rolling_reference.py

For every fixture and every max_length in MAX_LENGTHS it loads the folder with lm-eval's HFLM
(float32 on the CPU, batch size 1) and asks for the rolling log-likelihood of each line that the
fixture's reference.json holds. Besides the totals it records what lm-eval actually scored: the
prefix token it conditions the first window on, the ids its own tokenization of the line gives
(the tokens it predicts) and the window count, so that the test can say exactly where
lm-eval's convention and polyprune's meet.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WEIGHTS = ROOT / ".cache" / "fixtures"
ARCHS = ["llama", "qwen2", "gemma3", "cohere", "bloom"]
DTYPES = ["f32", "bf16"]
# 128: the positions the fixtures are imported with, so every line is one window.
# 16: shorter than every line, so lm-eval's disjoint rolling windows are exercised too.
MAX_LENGTHS = [128, 16]


def rolling(name: str) -> dict:
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    reference = json.loads((FIXTURES / name / "reference.json").read_text())
    texts = [line["text"] for line in reference["lines"]]
    runs = []
    for max_length in MAX_LENGTHS:
        lm = HFLM(
            pretrained=str(WEIGHTS / name), dtype="float32", device="cpu", batch_size=1, max_length=max_length
        )
        requests = [
            Instance(request_type="loglikelihood_rolling", doc={"text": t}, arguments=(t,), idx=i)
            for i, t in enumerate(texts)
        ]
        totals = lm.loglikelihood_rolling(requests, disable_tqdm=True)
        lines = []
        for text, total in zip(texts, totals):
            predicted = lm.tok_encode(text)
            n_windows = -(-len(predicted) // max_length)  # context_len=1: disjoint windows of max_length
            lines.append(
                {"text": text, "predicted_ids": predicted, "windows": n_windows, "loglikelihood": float(total)}
            )
        runs.append({"max_length": max_length, "prefix_token_id": lm.prefix_token_id, "lines": lines})
        del lm
    return {
        "format": "polyprune-lmeval-rolling/1",
        "generator": "scripts/lmeval_rolling_reference.py",
        "fixture": name,
        "settings": {"model": "hf (HFLM)", "dtype": "float32", "device": "cpu", "batch_size": 1},
        "versions": {"lm_eval": lm_eval.__version__, **versions()},
        "runs": runs,
    }


def versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def main() -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    names = sys.argv[1:] or [f"hf-{a}-{d}" for a in ARCHS for d in DTYPES]
    for name in names:
        if not (WEIGHTS / name / "model.safetensors").exists():
            print(f"{WEIGHTS / name}: no weights; run `make fixtures` first", file=sys.stderr)
            return 1
        out = rolling(name)
        path = FIXTURES / name / "lmeval_rolling.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        tmp.replace(path)
        print(path, [round(l["loglikelihood"], 4) for r in out["runs"] for l in r["lines"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
