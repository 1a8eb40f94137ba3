#!/usr/bin/env python3
"""Copy the ONNX Runtime shared libraries out of an onnxruntime wheel (a zip file).

usage: unpack_ort.py WHEEL OUT_DIR [--cuda]

With --cuda (an onnxruntime-gpu wheel) the CUDA execution provider comes too; it must sit
beside libonnxruntime.so, which loads it by name. The TensorRT provider is left out.
"""
import sys
import zipfile
from pathlib import Path

wheel, out = sys.argv[1], Path(sys.argv[2])
cuda = "--cuda" in sys.argv[3:]
out.mkdir(parents=True, exist_ok=True)
wanted = ("libonnxruntime.so.", "libonnxruntime_providers_shared.so") + (("libonnxruntime_providers_cuda.so",) if cuda else ())
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/") and Path(n).name.startswith(wanted)]
    if not names:
        sys.exit(f"{wheel}: no ONNX Runtime library inside; is it the onnxruntime wheel?")
    if cuda and not any(Path(n).name == "libonnxruntime_providers_cuda.so" for n in names):
        sys.exit(f"{wheel}: no CUDA provider inside; is it the onnxruntime-gpu wheel?")
    for n in names:
        (out / Path(n).name).write_bytes(z.read(n))
        print(out / Path(n).name)
