#!/usr/bin/env python3
"""Write the GGUF test fixture used by the Rust tests of `model::gguf`.

Usage: gguf_fixture.py OUT_DIR

Creates, deterministically (fixed seed):
  OUT_DIR/fixture.gguf   a little GGUF v3 file written by gguf-py's GGUFWriter,
                         with metadata of every value type (nested array included),
                         a custom alignment of 64, and one 3 x 512 tensor per
                         dequantizable ggml type, a 3-D F32 tensor and one
                         IQ4_NL tensor (a type the Rust reader must refuse);
  OUT_DIR/<tensor>.f32   the reference dequantization of each tensor as
                         little-endian float32, computed by gguf.quants.dequantize
                         (for Q8_K, which gguf-py cannot dequantize, by the
                         closed form x = d * q);
  OUT_DIR/manifest.tsv   one line per reference: name, ggml type, GGUF dims
                         (comma separated), reference file name.

Quantized bytes come from gguf.quants.quantize where gguf-py can quantize the
type (BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0); for the k-quants they are random
bytes whose f16/f32 scale fields are overwritten with small finite values, so
every bit pattern of the packed quants and sub-scales gets exercised.
"""

import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

SEED = 20250607
ROWS, COLS = 3, 512

# Byte offsets of the super-block scale fields (f16 unless noted), from the
# block layouts in ggml-common.h.
K_QUANT_SCALE_FIELDS = {
    T.Q2_K: [80, 82],  # d, dmin at the end of the block
    T.Q3_K: [108],     # d at the end
    T.Q4_K: [0, 2],    # d, dmin at the start
    T.Q5_K: [0, 2],
    T.Q6_K: [208],     # d at the end
}


def add_metadata(writer: gguf.GGUFWriter) -> None:
    writer.add_custom_alignment(64)
    writer.add_string("general.name", "polyprune gguf fixture – ünïcödé")
    writer.add_uint8("fixture.u8", 200)
    writer.add_int8("fixture.i8", -100)
    writer.add_uint16("fixture.u16", 60000)
    writer.add_int16("fixture.i16", -30000)
    writer.add_uint32("fixture.u32", 4_000_000_000)
    writer.add_int32("fixture.i32", -2_000_000_000)
    writer.add_uint64("fixture.u64", 2**63 + 5)
    writer.add_int64("fixture.i64", -(2**40))
    writer.add_float32("fixture.f32", 0.15625)
    writer.add_float64("fixture.f64", 2.5e-300)
    writer.add_bool("fixture.flag_on", True)
    writer.add_bool("fixture.flag_off", False)
    writer.add_array("fixture.strings", ["alpha", "beta", "", "日本語"])
    writer.add_array("fixture.floats", [0.5, -1.25, 3.0])
    writer.add_array("fixture.ints", [1, -2, 300000])
    writer.add_array("fixture.nested", [[1, 2], [3, 4, 5]])
    writer.add_key_value(
        "fixture.u64s", [7, 2**40], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT64
    )
    writer.add_block_count(18)


def random_k_quant_bytes(rng: np.random.Generator, qtype: T) -> np.ndarray:
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block_size
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in K_QUANT_SCALE_FIELDS[qtype]:
        scales = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(ROWS, -1)


def random_q8_k_bytes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Q8_K: f32 d | i8 qs[256] | i16 bsums[16]; returns bytes and x = d * q."""
    _, type_size = gguf.GGML_QUANT_SIZES[T.Q8_K]
    n_blocks = ROWS * COLS // 256
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    d = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float32)
    blocks[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
    q = blocks[:, 4:260].view(np.int8).astype(np.float32)
    reference = (d.reshape(n_blocks, 1) * q).astype(np.float32)
    return blocks.reshape(ROWS, -1), reference.reshape(-1)


def build_tensors(rng: np.random.Generator):
    """Yields (name, ggml type, array to store, raw_dtype or None, reference or None)."""
    weights = (rng.standard_normal((ROWS, COLS)) * 0.1).astype(np.float32)

    yield "f32", T.F32, weights, None, dequantize(weights, T.F32)
    half = weights.astype(np.float16)
    yield "f16", T.F16, half, None, dequantize(half, T.F16)
    for qtype in (T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        packed = quantize(weights, qtype)
        yield qtype.name.lower(), qtype, packed, qtype, dequantize(packed, qtype)
    for qtype in K_QUANT_SCALE_FIELDS:
        packed = random_k_quant_bytes(rng, qtype)
        yield qtype.name.lower(), qtype, packed, qtype, dequantize(packed, qtype)
    packed, reference = random_q8_k_bytes(rng)
    yield "q8_k", T.Q8_K, packed, T.Q8_K, reference

    cube = (rng.standard_normal((2, 3, 32)) * 0.1).astype(np.float32)
    yield "f32_3d", T.F32, cube, None, dequantize(cube, T.F32)
    unsupported = rng.integers(0, 256, size=(2, 2 * 18), dtype=np.uint8)
    yield "iq4_nl", T.IQ4_NL, unsupported, T.IQ4_NL, None


def gguf_dims(array: np.ndarray, raw_dtype) -> list[int]:
    """GGUF order: the numpy shape reversed, with the row counted in elements."""
    shape = list(array.shape)
    if raw_dtype is not None:
        block_size, type_size = gguf.GGML_QUANT_SIZES[raw_dtype]
        shape[-1] = shape[-1] // type_size * block_size
    return shape[::-1]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    writer = gguf.GGUFWriter(out_dir / "fixture.gguf", arch="fixture")
    add_metadata(writer)
    manifest = []
    for name, qtype, stored, raw_dtype, reference in build_tensors(rng):
        writer.add_tensor(name, stored, raw_dtype=raw_dtype)
        if reference is None:
            continue
        reference_file = f"{name}.f32"
        np.asarray(reference, dtype="<f4").reshape(-1).tofile(out_dir / reference_file)
        dims = ",".join(str(d) for d in gguf_dims(stored, raw_dtype))
        manifest.append(f"{name}\t{qtype.name}\t{dims}\t{reference_file}")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (out_dir / "manifest.tsv").write_text("\n".join(manifest) + "\n")
    print(f"wrote {out_dir / 'fixture.gguf'} and {len(manifest)} references")


if __name__ == "__main__":
    main()
