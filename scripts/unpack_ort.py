#!/usr/bin/env python3
"""Copy the ONNX Runtime shared libraries out of an onnxruntime wheel (a zip file).

usage: unpack_ort.py WHEEL OUT_DIR
"""
import sys
import zipfile
from pathlib import Path

wheel, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
wanted = ("libonnxruntime.so.", "libonnxruntime_providers_shared.so")
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/") and Path(n).name.startswith(wanted)]
    if not names:
        sys.exit(f"{wheel}: no ONNX Runtime library inside; is it the onnxruntime wheel?")
    for n in names:
        (out / Path(n).name).write_bytes(z.read(n))
        print(out / Path(n).name)
