#!/usr/bin/env bash
# Property-based API testing of a live gmfuse against its own OpenAPI document (schemathesis,
# from PyPI): starts `gmfuse serve` on a free loopback port with a throw-away data directory and
# no workers, runs a bounded number of generated examples per operation, and fails on any server
# error (5xx) or response that does not match the schema.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]     default 50 examples per operation
#
# Needs a built binary: $GMFUSE_BIN, else target/{release,debug}/gmfuse (under $CARGO_TARGET_DIR
# when set). Installs schemathesis with pip into a venv under $SCHEMATHESIS_VENV (default
# ${TMPDIR:-/tmp}/gmfuse-schemathesis) when `schemathesis` is not on PATH.
set -euo pipefail

examples="${1:-50}"
say() { echo "schemathesis.sh: $*" >&2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${GMFUSE_BIN:-}"
if [[ -z "$bin" ]]; then
    for b in "$target/release/gmfuse" "$target/debug/gmfuse"; do
        [[ -x "$b" ]] && { bin="$b"; break; }
    done
fi
[[ -x "$bin" ]] || { say "no gmfuse binary (cargo build first, or set GMFUSE_BIN)"; exit 2; }

if command -v schemathesis >/dev/null 2>&1; then
    st=schemathesis
else
    venv="${SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/gmfuse-schemathesis}"
    if [[ ! -x "$venv/bin/schemathesis" ]]; then
        say "installing schemathesis into $venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet 'schemathesis>=4,<5' >&2
    fi
    st="$venv/bin/schemathesis"
fi

data="$(mktemp -d)"
log="$data/server.log"
cleanup() {
    [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

# A free port: let the kernel pick one, then read it from the server's JSON log line.
GMFUSE_ADDR=127.0.0.1:0 GMFUSE_DATA_DIR="$data" GMFUSE_WORKERS=0 GMFUSE_LOG_FORMAT=json \
    GMFUSE_NO_DEMO=true RUST_LOG=info "$bin" serve >"$log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 1 300); do
    addr="$(grep -o '"addr":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)"
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { say "gmfuse exited:"; cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { say "gmfuse did not start"; cat "$log" >&2; exit 1; }
base="http://$addr"
say "gmfuse on $base, $examples examples per operation"

status=0
"$st" run "$base/openapi.json" \
    --url "$base" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$examples" \
    --request-timeout 30 || status=$?
if grep -q '"level":"ERROR"' "$log"; then
    say "the server logged errors:"
    grep '"level":"ERROR"' "$log" | head -20 >&2
fi
kill -0 "$pid" 2>/dev/null || { say "gmfuse died during the run"; exit 1; }
exit "$status"
