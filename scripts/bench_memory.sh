#!/usr/bin/env bash
# Larger than memory, measured (`make bench-scale` runs it after polyprune-scale; SCALE_MEMORY=0
# skips it). Each command runs under /usr/bin/time -v: wall time, peak RSS and bytes read from
# disk ("File system inputs" x 512) and written ("outputs": the spill files of a pruned 8B).
#
# 1. Gemma 3 270M, eval ppl on 40 English SIB-200 sentences, resident (a budget above the plan's
#    resident estimate) and streamed (a budget just below it), twice each: the time ratio.
# 2. Synthetic llama-3-8b in bf16 (32 blocks, 15 GiB; written to $SCRATCH, removed after unless
#    SCALE_KEEP=1), with --max-memory 6GiB: eval ppl on the 3 shortest of those sentences, one
#    SIB-200 round (2 English test examples), whole-model Wanda 50% (4 x 128 English windows;
#    each block's pruned weights spilled to disk, perplexity before and after on 3 FLORES
#    sentences), whole-model SparseGPT 50% the same way, and the refusals: a 2 GiB budget for
#    evaluation, 5 GiB for SparseGPT (its 14336-wide down projection's Gram and factor).
# 3. Aya-23 8B (AYA=1): eval ppl, one SIB-200 round and whole-model Wanda and SparseGPT the same
#    way within 6 GiB (its 256,000-row output layer runs in vocabulary slices).
# 4. One block of llama-3-70b (`synth --blocks 1`): eval ppl and Wanda on it, the inputs of the
#    70B prediction in README's "Memory" section.
#
# Needs target/release/polyprune, .cache/models/gemma-3-270m (`make models`), the SIB-200 data
# (`make data`) and about 16 GB of free disk under $SCRATCH (default .cache/models/synth).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${POLYPRUNE_BIN:-target/release}/polyprune
SCRATCH=${SCRATCH:-.cache/models/synth}
OUT=${OUT:-results/bench/memory}
mkdir -p "$SCRATCH" "$OUT"
GEMMA=.cache/models/gemma-3-270m
SIB=${SIB:-.cache/data/sib200/eng_Latn/test.tsv}
cut -f3 "$SIB" | sed -n 2,41p > "$OUT/eng40.txt"
# The shortest of those sentences: an 8B forward pass costs ~16 GFLOP a token.
awk '{ print length($0) "\t" $0 }' "$OUT/eng40.txt" | sort -n | head -1 | cut -f2- > "$OUT/eng1.txt"

# Runs "$@" under /usr/bin/time -v; prints "label: wall, peak RSS, read" and keeps the output.
measure() {
    local label=$1; shift
    /usr/bin/time -v "$@" > "$OUT/$label.out" 2> "$OUT/$label.time" || { cat "$OUT/$label.time" >&2; return 1; }
    awk -v l="$label" -F': ' '
        /Elapsed \(wall clock\)/ { wall = $2 }
        /Maximum resident set size/ { rss = $2 / 1048576 }
        /File system inputs/ { rd = $2 * 512 / 1e9 }
        /File system outputs/ { wr = $2 * 512 / 1e9 }
        END { printf "%-24s wall %s  peak RSS %.2f GiB  read %.2f GB  written %.2f GB\n", l, wall, rss, rd, wr }' "$OUT/$label.time"
}

# The plan's resident estimate for Gemma, so that one byte less streams it.
resident=$("$B" model inspect "$GEMMA" --plan-memory 1TiB | sed -n 's/.*resident needs ~\([0-9.]*\) GiB.*/\1/p')
below=$(awk -v r="$resident" 'BEGIN { printf "%.0f", r * 1073741824 - 16777216 }')
echo "Gemma 3 270M: resident estimate ${resident} GiB; streamed runs get a budget of $below bytes"
for round in 1 2; do
    measure "gemma-resident-$round" "$B" eval ppl --model "$GEMMA" --file "$OUT/eng40.txt" --per-line --max-memory 1TiB --results "$OUT/results"
    measure "gemma-streamed-$round" "$B" eval ppl --model "$GEMMA" --file "$OUT/eng40.txt" --per-line --max-memory "$below" --results "$OUT/results"
done
grep -h "bits/byte" -A1 "$OUT"/gemma-*.out | grep '^file' | sort -u | sed 's/^/  bits per byte (identical on both paths): /'

# The 3 shortest sentences.
awk '{ print length($0) "\t" $0 }' "$OUT/eng40.txt" | sort -n | head -3 | cut -f2- > "$OUT/eng3.txt"
LLAMA="$SCRATCH/llama-3-8b-bf16"
measure "llama8b-synth" "$B" model synth --like llama-3-8b --dtype bf16 -o "$LLAMA"
"$B" model inspect "$LLAMA" --plan-memory 6GiB
measure "llama8b-ppl3-6GiB" "$B" eval ppl --model "$LLAMA" --file "$OUT/eng3.txt" --per-line --max-memory 6GiB --results "$OUT/results"
measure "llama8b-sib200-6GiB" "$B" eval tasks --model "$LLAMA" --tasks sib200 --langs eng_Latn --limit 2 --data "${DATA:-.cache/data}" \
    --max-memory 6GiB --results "$OUT/results"
measure "llama8b-wanda-all-6GiB" "$B" prune --model "$LLAMA" --method wanda --sparsity 0.5 --calib eng_Latn --samples 4 --seqlen 128 \
    --max-memory 6GiB --eval-ppl eng_Latn --eval-source flores --eval-limit 3 --results "$OUT/results"
if "$B" eval ppl --model "$LLAMA" --file "$OUT/eng1.txt" --max-memory 2GiB --results "$OUT/results" 2> "$OUT/refused.txt"; then
    echo "a 2 GiB budget was not refused" >&2
    exit 1
fi
echo "2 GiB refused: $(tail -1 "$OUT/refused.txt")"
if "$B" prune --model "$LLAMA" --method sparsegpt --sparsity 0.5 --calib eng_Latn --samples 4 --seqlen 128 --max-memory 5GiB \
    --results "$OUT/results" 2> "$OUT/sparsegpt-refused.txt"; then
    echo "SparseGPT within 5 GiB was not refused" >&2
    exit 1
fi
echo "SparseGPT at 5 GiB refused: $(tail -1 "$OUT/sparsegpt-refused.txt")"
measure "llama8b-sparsegpt-all-6GiB" "$B" prune --model "$LLAMA" --method sparsegpt --sparsity 0.5 --calib eng_Latn --samples 4 --seqlen 128 \
    --max-memory 6GiB --eval-ppl eng_Latn --eval-source flores --eval-limit 3 --results "$OUT/results"
[ "${SCALE_KEEP:-0}" != 0 ] || rm -rf "$LLAMA"

if [ "${AYA:-0}" != 0 ]; then
    AYA_DIR="$SCRATCH/aya-23-8b-bf16"
    measure "aya8b-synth" "$B" model synth --like aya-23-8b --dtype bf16 -o "$AYA_DIR"
    "$B" model inspect "$AYA_DIR" --plan-memory 6GiB
    measure "aya8b-ppl3-6GiB" "$B" eval ppl --model "$AYA_DIR" --file "$OUT/eng3.txt" --per-line --max-memory 6GiB --results "$OUT/results"
    measure "aya8b-sib200-6GiB" "$B" eval tasks --model "$AYA_DIR" --tasks sib200 --langs eng_Latn --limit 2 --data "${DATA:-.cache/data}" \
        --max-memory 6GiB --results "$OUT/results"
    for method in wanda sparsegpt; do
        measure "aya8b-$method-all-6GiB" "$B" prune --model "$AYA_DIR" --method "$method" --sparsity 0.5 --calib eng_Latn --samples 4 \
            --seqlen 128 --max-memory 6GiB --eval-ppl eng_Latn --eval-source flores --eval-limit 3 --results "$OUT/results"
    done
    [ "${SCALE_KEEP:-0}" != 0 ] || rm -rf "$AYA_DIR"
fi

L70="$SCRATCH/llama-3-70b-bf16-1block"
measure "llama70b-block1-synth" "$B" model synth --like llama-3-70b --blocks 1 --dtype bf16 -o "$L70"
measure "llama70b-block1-ppl3" "$B" eval ppl --model "$L70" --file "$OUT/eng3.txt" --per-line --max-memory 12GiB --results "$OUT/results"
measure "llama70b-block1-wanda" "$B" prune --model "$L70" --method wanda --sparsity 0.5 --calib eng_Latn --samples 4 --seqlen 128 \
    --max-memory 12GiB --results "$OUT/results"
[ "${SCALE_KEEP:-0}" != 0 ] || rm -rf "$L70"
