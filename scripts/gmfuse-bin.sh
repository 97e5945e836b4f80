#!/usr/bin/env bash
# Prints the path of the built gmfuse binary the API checks run (scripts/schemathesis.sh,
# scripts/sdk-check.sh): $GMFUSE_BIN, else the release, then the debug build under
# $CARGO_TARGET_DIR (default target/). Exits 2 with one line when there is none.
#
#   bin="$(scripts/gmfuse-bin.sh)"
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${GMFUSE_BIN:-}"
if [[ -z "$bin" ]]; then
    for b in "$target/release/gmfuse" "$target/debug/gmfuse"; do
        [[ -x "$b" ]] && { bin="$b"; break; }
    done
fi
[[ -x "$bin" ]] || { echo "gmfuse-bin.sh: no gmfuse binary (cargo build first, or set GMFUSE_BIN)" >&2; exit 2; }
echo "$bin"
