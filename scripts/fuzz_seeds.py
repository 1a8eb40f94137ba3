"""Seed corpora for the fuzz targets (fuzz/fuzz_targets/), made from the repository's fixtures.

Usage: python3 scripts/fuzz_seeds.py OUT_DIR [--shared ../shared]
Writes OUT_DIR/<target>/<seed>; the corpora are not committed (libFuzzer grows them in place).
Large files are cut to their first bytes where the target only needs a realistic prefix.
"""

import argparse
import json
import random
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
# libFuzzer mutates small inputs fastest; whole checkpoints stay useful up to this size.
MAX_SEED = 256 * 1024


def write(out: Path, target: str, name: str, data: bytes) -> None:
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def existing(paths):
    return [p for p in paths if p.is_file()]


def gguf_seeds(out: Path) -> None:
    files = existing([
        CACHE / "fixtures/gguf/fixture.gguf",  # one tensor of every type the reader dequantises
        CACHE / "fixtures/tiny-llama/model.gguf",
        CACHE / "fixtures/tiny-llama/model-q8_0.gguf",
        CACHE / "fixtures/tiny-qwen2/model.gguf",
    ])
    for f in files:
        data = f.read_bytes()
        if len(data) <= MAX_SEED:
            name = f"{f.parent.name}-{f.name}"
            write(out, "gguf", name, data)
            if f.parent.name != "gguf":
                write(out, "tokenizer_import", name, data)


def onnx_seeds(out: Path) -> None:
    files = existing([
        ROOT / "tests/fixtures/tiny-gpt2/graph.onnx",
        ROOT / "tests/fixtures/tiny-gpt2-dynamo/graph.onnx",
        CACHE / "fixtures/tiny-gpt2-dynamo/model.onnx",
        CACHE / "models/gemma-3-270m/model.block00.onnx",
        CACHE / "models/gemma-3-270m/model.head.onnx",
        CACHE / "models/smollm2-135m/model.embed.onnx",
        CACHE / "models/smollm2-135m/model.block00.onnx",
    ])
    for f in files:
        write(out, "onnx_model", f"{f.parent.name}-{f.name}", f.read_bytes())


def study_seeds(out: Path) -> None:
    for f in sorted((ROOT / "configs").glob("*.toml")):
        write(out, "study_file", f.name, f.read_bytes())


def mask_bytes(rows: int, cols: int, rng: random.Random, keep: float) -> bytes:
    bits = rows * cols
    words = [0] * ((bits + 63) // 64)
    for i in range(bits):
        if rng.random() < keep:
            words[i // 64] |= 1 << (i % 64)
    header = b"PPRNMASK" + struct.pack("<IIQQ", 1, 0, rows, cols)
    return header + b"".join(struct.pack("<Q", w) for w in words)


def mask_seeds(out: Path) -> None:
    rng = random.Random(13)
    for rows, cols, pattern in [(4, 8, "unstructured"), (3, 5, "unstructured"), (8, 16, "2:4"), (1, 1, "unstructured")]:
        data = mask_bytes(rows, cols, rng, 0.5)
        kept = sum(bin(b).count("1") for b in data[32:])
        entry = {
            "layer": "blk.0.attn_q.weight",
            "file": "blk.0.attn_q.weight.mask",
            "out_features": rows,
            "in_features": cols,
            "report": {
                "layer": "blk.0.attn_q.weight",
                "requested": 0.5,
                "pattern": pattern,
                "pruned": rows * cols - kept,
                "total": rows * cols,
                "achieved": (rows * cols - kept) / (rows * cols),
                "nm_valid": None,
            },
        }
        index = json.dumps([entry], indent=2).encode()
        write(out, "mask_file", f"{rows}x{cols}", struct.pack("<H", len(index)) + index + data)


# Task data: (task, language, file) from the repository's task fixtures and the shared data.
def task_seeds(out: Path, shared: Path) -> None:
    fixtures = ROOT / "tests/fixtures/tasks"
    candidates = [
        ("xnli", "de", fixtures / "xnli/test.de.jsonl"),
        ("xstorycloze", "sw", fixtures / "xstorycloze/spring2016.val.sw.tsv.split_20_80_eval.tsv"),
        ("pawsx", "fr", fixtures / "pawsx/fr/test_2k.tsv"),
        ("belebele", "swh_Latn", fixtures / "belebele/swh_Latn.jsonl"),
        ("m_arc", "de", fixtures / "m_arc/de_test.json"),
        ("m_mmlu", "es", fixtures / "m_mmlu/es_test.json"),
        ("m_hellaswag", "fr", fixtures / "m_hellaswag/fr_test.json"),
        ("xcopa", "sw", shared / "data/xcopa/test.sw.jsonl"),
        ("xwinograd", "fr", shared / "data/xwinograd/dataset.tsv"),
        ("sib200", "swh_Latn", shared / "data/sib200/swh_Latn/test.tsv"),
        ("mgsm", "sw", shared / "data/mgsm/mgsm_sw.tsv"),
    ]
    for task, lang, f in candidates:
        if not f.is_file():
            continue
        lines = f.read_bytes().splitlines(keepends=True)
        # A handful of records: enough for every code path, small enough to mutate quickly.
        body = b"".join(lines[:12]) if f.suffix != ".json" else f.read_bytes()[:MAX_SEED // 8]
        for shots in (0, 2):
            write(out, "task_rows", f"{task}-{lang}-{shots}", f"{task} {lang} {shots}\n".encode() + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    gguf_seeds(args.out)
    onnx_seeds(args.out)
    study_seeds(args.out)
    mask_seeds(args.out)
    task_seeds(args.out, args.shared)
    for target in sorted(p for p in args.out.iterdir() if p.is_dir()):
        print(f"{target.name}: {len(list(target.iterdir()))} seeds")


if __name__ == "__main__":
    main()
