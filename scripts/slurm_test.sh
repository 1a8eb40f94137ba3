#!/usr/bin/env bash
# `make slurm-test`: runs `polyprune study slurm` on a real one-node Slurm cluster on this
# machine and checks that the merged study equals a single-machine run, file for file.
#
#  1. installs Debian's slurm-wlm and munge when missing (needs root, as in CI);
#  2. starts munged, slurmctld and slurmd from a scratch folder (their own key, socket, ports,
#     state and logs: nothing under /etc is touched);
#  3. writes a small study (Gemma 3 270M, magnitude and Wanda at 50% on two blocks, two
#     calibration languages, perplexity on two languages: 4 units), has `study slurm` write its
#     job array of 3 shards and the merge job, submits them with the generated submit.sh and
#     waits for them;
#  4. checks every job COMPLETED, the merge started after the last shard ended, and each
#     shard's log has one progress line per finished unit;
#  5. runs the same study with `study run` on this machine and compares every result file;
#  6. always stops the daemons and removes the scratch folder (SLURM_TEST_KEEP=1 keeps it).
# Exit status 0 means pass. Re-runnable: leftovers of an earlier run are stopped first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SLURM_TEST_BIN:-$ROOT/target/release/polyprune}
SCRATCH=${SLURM_TEST_DIR:-$ROOT/target/slurm-test}
TIMEOUT_S=${SLURM_TEST_TIMEOUT:-1800}
MODEL=.cache/models/gemma-3-270m
FLORES=../shared/data/sib200
SHARDS=3
# Ports of their own, so a site's Slurm on the default 6817/6818 is not disturbed.
CTLD_PORT=16817
SLURMD_PORT=16818

say() { echo "slurm-test: $*"; }
fail() {
    echo "slurm-test: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: the test installs packages and runs slurmd"
[ -x "$BIN" ] || fail "$BIN is missing: run 'make build' first"
[ -f "$MODEL/card.json" ] || fail "$MODEL is missing: run 'make models' first"
[ -d "$FLORES/eng_Latn" ] || fail "$FLORES is missing: the SIB-200 text comes with ../shared (see ../shared/data/README.md)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# A pid file's process, if it is still the daemon named (a reused pid is left alone).
daemon_pid() {
    local file=$1 name=$2 pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && echo "$pid"
}

stop_daemons() {
    local pids=() p
    for d in slurmd:$SCRATCH/run/slurmd.pid slurmctld:$SCRATCH/run/slurmctld.pid munged:$SCRATCH/munge-private/munged.pid; do
        if p=$(daemon_pid "${d#*:}" "${d%%:*}"); then
            kill "$p" 2>/dev/null || true
            pids+=("$p")
        fi
    done
    # Jobs still running under slurmd are its children's children: their steps end with it.
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$p" 2>/dev/null || true
    done
}

cleanup() {
    local status=$?
    stop_daemons
    if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
        say "kept $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    if [ $status = 0 ]; then say "PASS"; else say "FAIL (exit $status)"; fi
    exit $status
}

# Leftovers of an interrupted earlier run.
stop_daemons
rm -rf "$SCRATCH"
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$SCRATCH"/{run,state,spool,log,jobs,munge,munge-private}
chmod 755 "$SCRATCH" "$SCRATCH/munge"
chmod 700 "$SCRATCH/munge-private"
T0=$(date +%s)

# --- munge: a key of this cluster's own, a socket in the scratch folder ----------------------
MUNGE_SOCKET=$SCRATCH/munge/munge.socket
head -c 128 /dev/urandom >"$SCRATCH/munge-private/munge.key"
chmod 400 "$SCRATCH/munge-private/munge.key"
munged --socket="$MUNGE_SOCKET" --key-file="$SCRATCH/munge-private/munge.key" \
    --log-file="$SCRATCH/munge-private/munged.log" --pid-file="$SCRATCH/munge-private/munged.pid" \
    --seed-file="$SCRATCH/munge-private/munged.seed" ||
    fail "munged did not start: $(tail -3 "$SCRATCH/munge-private/munged.log")"
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null || fail "munge cannot encode and decode a credential"

# --- slurm.conf: one node, this machine's real CPUs and memory, no cgroups ---------------------
HOST=$(hostname -s)
NODE=$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/")
export SLURM_CONF=$SCRATCH/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=polyprune-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No accounting database (sacct needs slurmdbd): finished jobs are kept in slurmctld for
# scontrol, and each one's record is appended to a text file.
JobCompType=jobcomp/filetxt
JobCompLoc=$SCRATCH/log/jobcomp.txt
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# The nice value of the submitting shell carries over to the jobs (the machine is shared).
PropagatePrioProcess=1
$NODE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$SCRATCH/cgroup.conf" <<EOF
# Read by slurmd only if a cgroup plugin is configured; none is (proctrack/linuxproc, task/none).
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF
say "node: $NODE"

slurmctld || fail "slurmctld did not start: $(tail -5 "$SCRATCH/log/slurmctld.log" 2>/dev/null)"
slurmd || fail "slurmd did not start: $(tail -5 "$SCRATCH/log/slurmd.log" 2>/dev/null)"
for i in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    [ "$i" = 60 ] && fail "the node is '$state', not idle, after 60 s: $(tail -5 "$SCRATCH/log/slurmd.log")"
    sleep 1
done
sinfo
say "cluster up in $(($(date +%s) - T0)) s"

# --- the study, with paths relative to the repository root as a user would write them -------
REL=$(realpath --relative-to="$ROOT" "$SCRATCH")
CONFIG=$SCRATCH/study.toml
cat >"$CONFIG" <<EOF
[study]
name = "slurm-test"
out = "$REL/cluster"
seeds = [0]
threads = 1

[[models]]
name = "gemma-3-270m"
path = "$MODEL"

[pruning]
methods = ["magnitude", "wanda"]
sparsities = [0.5]
include = ["blk.0.", "blk.1."]

[calibration]
source = "flores:$FLORES"
samples = 4
seqlen = 64
sets = [{ languages = ["eng_Latn"] }, { languages = ["deu_Latn"] }]

[perplexity]
languages = ["eng_Latn", "deu_Latn"]
source = "flores:$FLORES"
limit = 3
EOF
UNITS=$("$BIN" study plan "$CONFIG" --format csv | tail -n +2 | wc -l)
say "study: $UNITS units in $SHARDS shards"

"$BIN" study slurm "$CONFIG" --shards $SHARDS --dir "$SCRATCH/jobs" --time 00:30:00 --cpus 1
echo "--- study-array.sbatch"
cat "$SCRATCH/jobs/study-array.sbatch"
echo "--- study-merge.sbatch"
cat "$SCRATCH/jobs/study-merge.sbatch"
echo "---"

T_SUBMIT=$(date +%s)
submitted=$(bash "$SCRATCH/jobs/submit.sh")
echo "$submitted"
ARRAY=$(sed -n 's/^submitted array \([0-9]*\) and merge \([0-9]*\);.*/\1/p' <<<"$submitted")
MERGE=$(sed -n 's/^submitted array \([0-9]*\) and merge \([0-9]*\);.*/\2/p' <<<"$submitted")
[ -n "$ARRAY" ] && [ -n "$MERGE" ] || fail "submit.sh did not print the two job ids: $submitted"
say "array job $ARRAY (tasks 0-$((SHARDS - 1))), merge job $MERGE"

# --- wait, showing the queue when it changes -------------------------------------------------
last=""
while :; do
    queue=$(squeue -h -j "$ARRAY,$MERGE" -o '%i %T %M %R' 2>/dev/null || true)
    [ -z "$queue" ] && break
    if [ "$queue" != "$last" ]; then
        echo "[$(($(date +%s) - T_SUBMIT)) s] queue:"
        sed 's/^/    /' <<<"$queue"
        last=$queue
    fi
    [ $(($(date +%s) - T_SUBMIT)) -gt "$TIMEOUT_S" ] && fail "jobs still queued or running after $TIMEOUT_S s: $queue"
    sleep 3
done
T_CLUSTER=$(($(date +%s) - T_SUBMIT))
LOGS=$SCRATCH/cluster/logs
say "all jobs ended $T_CLUSTER s after submission"

# --- per-job state and elapsed time (scontrol keeps finished jobs for MinJobAge) --------------
field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2; }
epoch() { date -d "$1" +%s; }
printf '%-10s %-18s %-10s %8s %-20s %-20s\n' job name state elapsed start end
last_shard_end=0
for id in $(seq 0 $((SHARDS - 1)) | sed "s/^/${ARRAY}_/") "$MERGE"; do
    info=$(scontrol -o show job "$id" 2>/dev/null) || fail "scontrol knows no job $id"
    state=$(field JobState "$info")
    start=$(field StartTime "$info")
    end=$(field EndTime "$info")
    printf '%-10s %-18s %-10s %7ss %-20s %-20s\n' "$id" "$(field JobName "$info")" "$state" \
        "$(($(epoch "$end") - $(epoch "$start")))" "$start" "$end"
    if [ "$state" != COMPLETED ]; then
        tail -n 20 "$LOGS"/*.out 2>/dev/null || true
        fail "job $id ended $state (exit $(field ExitCode "$info")); the logs' ends are above"
    fi
    if [ "$id" = "$MERGE" ]; then
        [ "$(epoch "$start")" -ge "$last_shard_end" ] || fail "the merge job started ($start) before the last shard ended"
    elif [ "$(epoch "$end")" -gt "$last_shard_end" ]; then
        last_shard_end=$(epoch "$end")
    fi
done
echo "--- job completion records ($SCRATCH/log/jobcomp.txt)"
awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(JobId|Name|JobState|ArrayJobId|ArrayTaskId|StartTime|EndTime|ExitCode)=/) printf "%s ", $i; print "" }' \
    "$SCRATCH/log/jobcomp.txt"

# --- logs without a terminal: one line per finished unit, no redraws -------------------------
unit_lines=0
for log in "$LOGS"/slurm-test-*_*.out; do
    echo "--- $(basename "$log")"
    cat "$log"
    grep -q $'\r' "$log" && fail "$log holds carriage returns: a progress bar redrew into the log"
    n=$(grep -cE '^\[[0-9]+/[0-9]+\] done .* in [0-9hms]+; elapsed [0-9hms]+, (about [0-9hms]+ left for [0-9]+ more|nothing left)$' "$log" || true)
    unit_lines=$((unit_lines + n))
done
for log in "$LOGS"/slurm-test-merge-*.out; do
    echo "--- $(basename "$log")"
    cat "$log"
done
[ "$unit_lines" = "$UNITS" ] || fail "the shards' logs have $unit_lines progress lines for $UNITS units"
say "the shards' logs have one progress line per unit ($unit_lines)"
[ -s "$SCRATCH/cluster/report.html" ] || fail "the merge job wrote no report.html"

# --- the same study on one machine, then every result compared -------------------------------
T_SINGLE=$(date +%s)
"$BIN" study run "$CONFIG" --out "$REL/single" 2>"$SCRATCH/log/single.log" || {
    cat "$SCRATCH/log/single.log"
    fail "the single-machine run failed"
}
T_SINGLE=$(($(date +%s) - T_SINGLE))
say "single-machine run: $T_SINGLE s"

# Results only: the unit records (cell.json/dense.json) and tasks/summary.csv hold timings.
results() { (cd "$1" && find cells dense -type f \( -name '*.csv' -o -name '*.mask' -o -name index.json \) ! -path '*/tasks/summary.csv' | sort); }
cluster_files=$(results "$SCRATCH/cluster")
single_files=$(results "$SCRATCH/single")
if [ "$cluster_files" != "$single_files" ]; then
    diff <(echo "$single_files") <(echo "$cluster_files") || true
    fail "the merged study and the single run hold different result files (< single, > cluster)"
fi
differ=0
while read -r f; do
    if ! cmp -s "$SCRATCH/single/$f" "$SCRATCH/cluster/$f"; then
        echo "differs: $f"
        diff <(head -5 "$SCRATCH/single/$f") <(head -5 "$SCRATCH/cluster/$f") || true
        differ=$((differ + 1))
    fi
done <<<"$single_files"
[ "$differ" = 0 ] || fail "$differ result files differ between the merged study and the single run"
cmp -s "$SCRATCH/single/study.json" "$SCRATCH/cluster/study.json" || fail "study.json differs"
say "merged study = single run: $(wc -l <<<"$single_files") result files identical byte for byte ($(grep -c 'ppl/documents.csv' <<<"$single_files") units' per-document NLL, $(grep -c '\.mask$' <<<"$single_files") masks), study.json identical"
echo "perplexity of the merged study ($(head -1 "$SCRATCH/cluster/dense/gemma-3-270m/ppl/summary.csv")):"
find "$SCRATCH/cluster/cells" "$SCRATCH/cluster/dense" -path '*ppl/summary.csv' | sort | while read -r f; do
    echo "  ${f#"$SCRATCH"/cluster/}:"
    tail -n +2 "$f" | sed 's/^/    /'
done
say "timings: set-up, cluster and jobs $(($(date +%s) - T0 - T_SINGLE)) s (jobs $T_CLUSTER s from submission to the merge's end), single-machine run $T_SINGLE s, total $(($(date +%s) - T0)) s"
