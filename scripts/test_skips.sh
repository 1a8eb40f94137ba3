#!/usr/bin/env bash
# After the suite: how many tests skipped for a missing prerequisite, and why (the log is
# written by polyprune::util::prerequisite_missing). Under CI=true any skip fails the run.
set -euo pipefail
log="${1:?usage: test_skips.sh SKIP_LOG}"
count=0
[[ -s "$log" ]] && count=$(wc -l < "$log")
echo "tests skipped for a missing prerequisite: $count"
if (( count > 0 )); then
    sed 's/^/  /' "$log"
    echo "  (make test prepares every prerequisite; run it from a clone beside ../shared)"
    if [[ "${CI:-}" == "true" ]]; then
        echo "CI=true: a skipped test fails the suite" >&2
        exit 1
    fi
fi
