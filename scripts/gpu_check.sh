#!/usr/bin/env bash
# The CUDA path, measured: run on a machine with an NVIDIA GPU (about 8 minutes).
#
#   scripts/gpu_check.sh                 # --device cuda
#   scripts/gpu_check.sh --device cpu    # the same steps on the CPU, smallest shapes
#
# 1. logits of the tiny-llama fixture (imported from .cache/fixtures, `make fixtures`) on the
#    device against the CPU: the largest absolute difference;
# 2. evaluation and calibration throughput, SparseGPT and Wanda on synthetic gemma-3-270m and
#    llama-3-8b (cut to 1 and 2 blocks: every width of the 8B model; the difference is one
#    block), with the prediction for the whole 8B model at 128 x 2048 (polyprune-scale);
# 3. where PyTorch and transformers are installed: the same random-weight shapes built from their
#    configurations, the same forward pass timed, and the ratio.
#
# Needs target/release/{polyprune,polyprune-scale} (or POLYPRUNE_BIN=<folder>), the GPU build of
# ONNX Runtime (`make gpu-runtime`, or ORT_DYLIB_PATH) and, for CUDA, the CUDA 13 and cuDNN 9
# libraries: torch's NVIDIA wheels are put on LD_LIBRARY_PATH when present.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:?--device needs cpu, cuda or cuda:N}; shift 2 ;;
        --device=*) DEVICE=${1#*=}; shift ;;
        *) echo "usage: $0 [--device cpu|cuda|cuda:N]" >&2; exit 2 ;;
    esac
done
BIN=${POLYPRUNE_BIN:-target/release}
for b in polyprune polyprune-scale; do
    [ -x "$BIN/$b" ] || { echo "$BIN/$b is missing: run \`cargo build --release\` (or set POLYPRUNE_BIN)" >&2; exit 2; }
done
FIXTURE=.cache/fixtures/tiny-llama/model.gguf
[ -f "$FIXTURE" ] || { echo "$FIXTURE is missing: run \`make fixtures\`" >&2; exit 2; }
# PyTorch for step 3: the system's (the GPU machine's), else the set-up venv's when it has one.
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import torch, transformers' 2>/dev/null && [ -x .cache/venv/bin/python ]; then
    PYTHON=.cache/venv/bin/python
fi

if [ "$DEVICE" != cpu ]; then
    SP=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
    for lib in "$SP/nvidia/cu13/lib" "$SP/nvidia/cudnn/lib"; do
        [ -d "$lib" ] && LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    done
    export LD_LIBRARY_PATH
    # The CUDA build serves the CPU comparison too, so one process can hold both.
    export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.cache/ort-gpu/libonnxruntime.so.1.31.1}
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
START=$(date +%s)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== 1. fixture logits, $DEVICE vs cpu"
"$BIN/polyprune" model import "$FIXTURE" -o "$WORK/tiny-llama" >/dev/null
"$BIN/polyprune-scale" --compare-logits "$WORK/tiny-llama" "$DEVICE"

echo "== 2. throughput on synthetic shapes ($DEVICE)"
if [ ! -f .cache/models/gemma-3-270m/card.json ]; then
    "$BIN/polyprune" model synth --like gemma-3-270m -o .cache/models/gemma-3-270m >/dev/null
fi
if [ "$DEVICE" = cpu ]; then
    SCALE_DEVICE=cpu SCALE_TINY=1 "$BIN/polyprune-scale"
    RESULTS=results/bench/scale-cpu-tiny.json
else
    SCALE_DEVICE=$DEVICE SCALE_QUICK=1 "$BIN/polyprune-scale"
    RESULTS=results/bench/scale-${DEVICE}-quick.json
fi

echo "== 3. the same forward pass in PyTorch"
if "$PYTHON" -c 'import torch, transformers' 2>/dev/null; then
    # PyTorch spells devices as polyprune does: cpu, cuda, cuda:N.
    "$PYTHON" - "$RESULTS" "$DEVICE" <<'PY'
import json, subprocess, sys
results, device = sys.argv[1], sys.argv[2]
doc = json.load(open(results))
print(f"{'shape':<26} {'tokens':>7} {'polyprune tok/s':>16} {'PyTorch tok/s':>14} {'ratio':>7}")
for row in doc["sizes"]:
    point, m = row["point"], row["measured"]
    label = point["label"]
    like = label.split(" ")[0]
    blocks = label.split("(")[1].split(" ")[0] if "(" in label else None
    if like not in ("gemma-3-270m", "llama-3-8b"):
        continue
    cmd = [sys.executable, "scripts/torch_reference.py", "--like", like, "--samples", str(point["samples"]),
           "--seqlen", str(point["seqlen"]), "--device", device] + (["--blocks", blocks] if blocks else [])
    ref = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    ours = m["tokens"] / m["eval_s"]
    print(f"{label:<26} {m['tokens']:>7} {ours:>16.1f} {ref['tokens_per_second']:>14.1f} {ours / ref['tokens_per_second']:>7.2f}")
print(f"(PyTorch {ref['torch']}, transformers {ref['transformers']}; ratio > 1: polyprune is faster)")
PY
else
    echo "PyTorch and transformers are not installed: no reference ratio"
fi
echo "== done in $(( $(date +%s) - START )) s"
