#!/usr/bin/env python3
"""Print reference values from gemma-3-270m.gguf for the Rust test `gemma_tests`.

Usage: gguf_gemma_reference.py PATH/TO/gemma-3-270m.gguf

Reads the file with gguf-py's GGUFReader, dequantizes a few rows with
gguf.quants.dequantize, and prints them as Rust constants (f32 bit patterns
plus float64 row sums) that are pinned in src/model/gguf/gemma_tests.rs.
Run once; re-run only if the pinned model file changes.
"""

import sys

import numpy as np
import gguf
from gguf.quants import dequantize


def rows_of(reader: gguf.GGUFReader, name: str, rows: list[int]) -> tuple[list[np.ndarray], list[int]]:
    tensor = next(t for t in reader.tensors if t.name == name)
    data = np.asarray(tensor.data)  # one numpy row per GGUF row (bytes for quantized types)
    values = [dequantize(data[r : r + 1], tensor.tensor_type).reshape(-1) for r in rows]
    return values, [int(d) for d in tensor.shape]


def emit(label: str, name: str, reader: gguf.GGUFReader, rows: list[int]) -> None:
    values, dims = rows_of(reader, name, rows)
    print(f"// {name}: GGUF dims {dims}")
    for row, row_values in zip(rows, values):
        head = ", ".join(f"0x{v:08x}" for v in row_values[:8].view(np.uint32))
        total = float(np.sum(row_values.astype(np.float64)))
        print(f"const {label}_ROW_{row}_HEAD_BITS: [u32; 8] = [{head}];")
        print(f"const {label}_ROW_{row}_SUM: f64 = {total!r};")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    reader = gguf.GGUFReader(sys.argv[1])
    arch = reader.fields["general.architecture"].contents()
    print(f"// general.architecture = {arch}")
    print(f"// {arch}.block_count = {reader.fields[f'{arch}.block_count'].contents()}")
    print(f"// tokens = {len(reader.fields['tokenizer.ggml.tokens'].contents())}")
    emit("FFN_DOWN", "blk.0.ffn_down.weight", reader, [0, 1, 639])
    emit("TOKEN_EMBD", "token_embd.weight", reader, [2, 262143])


if __name__ == "__main__":
    main()
