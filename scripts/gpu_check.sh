#!/usr/bin/env bash
# The CUDA path, measured: run on a machine with an NVIDIA GPU (about 8 minutes).
#
#   scripts/gpu_check.sh                 # --device cuda
#   scripts/gpu_check.sh --device cpu    # the same steps on the CPU, smallest shapes
#
# 1. logits of the tiny-llama fixture (imported from .cache/fixtures, `make fixtures`) on the
#    device against the CPU: the largest absolute difference;
# 1b. half compute (`--compute half`) against f32 compute of the same 16-bit folder on the
#    device: the HF Llama bf16 fixture and Gemma 3 270M in bf16 (imported from
#    .cache/models/gemma-3-270m.gguf when present, else synthesised in its shape): max |logit
#    difference|, bits-per-byte difference on README.md's lines, time of each; fails when a
#    difference exceeds its tolerance (stated below). With --device cpu: f16 (the CPU provider
#    has no bf16 MatMul) on the fixture alone;
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

echo "== 1b. half compute vs f32 compute on $DEVICE"
# Tolerances, with u the type's unit roundoff (bf16 2^-8, f16 2^-11) and L the blocks: logits
# within 4 u sqrt(12 L + 2) of the largest |logit| (about 12 roundings per block plus the
# embedding and the logits, adding like a random walk; the largest of many such errors about 4
# standard deviations out, as tests/half_compute.rs derives it). A log-softmax moves by at most
# twice the largest change of its inputs, so bits per byte within 2 x that logit tolerance x
# tokens / bytes / ln 2, with the largest |logit| of the logit comparison as the scale.
if [ "$DEVICE" = cpu ]; then
    HALF=f16; PPL_LIMIT=16
    "$BIN/polyprune" model import .cache/fixtures/hf-llama-f32 --dtype f16 -o "$WORK/hf-llama-half" >/dev/null
    HALF_FOLDERS="$WORK/hf-llama-half"
else
    HALF=bf16; PPL_LIMIT=128
    "$BIN/polyprune" model import .cache/fixtures/hf-llama-bf16 -o "$WORK/hf-llama-half" >/dev/null
    if [ -f .cache/models/gemma-3-270m.gguf ]; then
        "$BIN/polyprune" model import .cache/models/gemma-3-270m.gguf --dtype bf16 -o "$WORK/gemma-half" >/dev/null
    else
        "$BIN/polyprune" model synth --like gemma-3-270m --dtype bf16 -o "$WORK/gemma-half" >/dev/null
    fi
    HALF_FOLDERS="$WORK/hf-llama-half $WORK/gemma-half"
fi
for folder in $HALF_FOLDERS; do
    "$BIN/polyprune-scale" --compare-compute "$folder" "$DEVICE" | tee "$WORK/compute.txt"
    for compute in f32 half; do
        t0=$EPOCHREALTIME
        "$BIN/polyprune" eval ppl --model "$folder" --file README.md --per-line --limit "$PPL_LIMIT" --format csv \
            --device "$DEVICE" --compute "$compute" --results "$WORK/results-$compute" > "$WORK/ppl-$compute.csv" \
            2> "$WORK/ppl-$compute.log" || { cat "$WORK/ppl-$compute.log" >&2; exit 1; }
        echo "$t0 $EPOCHREALTIME" > "$WORK/ppl-$compute.seconds"
    done
    python3 - "$WORK" "$HALF" "$(basename "$folder")" <<'PY'
import csv, json, math, sys
work, half, name = sys.argv[1:]
u = {"bf16": 2.0 ** -8, "f16": 2.0 ** -11}[half]
cmp = json.loads(next(l for l in open(f"{work}/compute.txt") if l.startswith("COMPUTE "))[len("COMPUTE "):])
logit_tol = 4 * u * math.sqrt(12 * cmp["blocks"] + 2) * cmp["largest"]
# Per-line rows (line,nll,tokens,bytes; NLL in nats): bits per byte over all lines.
rows = {c: list(csv.DictReader(open(f"{work}/ppl-{c}.csv"))) for c in ("f32", "half")}
seconds = {}
for c in ("f32", "half"):
    start, end = map(float, open(f"{work}/ppl-{c}.seconds").read().split())
    seconds[c] = end - start
tokens, nbytes = (sum(int(r[k]) for r in rows["f32"]) for k in ("tokens", "bytes"))
bpb = {c: sum(float(r["nll"]) for r in rows[c]) / nbytes / math.log(2) for c in rows}
bpb_tol = 2 * logit_tol * tokens / nbytes / math.log(2)
print(f"{name}: bits per byte {bpb['f32']:.5f} (f32) vs {bpb['half']:.5f} ({half}), difference {bpb['half'] - bpb['f32']:+.2e} "
      f"(tolerance {bpb_tol:.2e}); eval ppl {seconds['f32']:.1f} s in f32, {seconds['half']:.1f} s in {half}")
bad = []
if cmp["max_diff"] > logit_tol:
    bad.append(f"max |logit difference| {cmp['max_diff']:.3e} > {logit_tol:.3e}")
if abs(bpb["half"] - bpb["f32"]) > bpb_tol:
    bad.append(f"|bits-per-byte difference| {abs(bpb['half'] - bpb['f32']):.3e} > {bpb_tol:.3e}")
if bad:
    sys.exit(f"FAIL {name}: half compute is further from f32 compute than rounding explains: " + "; ".join(bad))
print(f"{name}: within tolerance (logits {cmp['max_diff']:.2e} <= {logit_tol:.2e})")
PY
done

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
