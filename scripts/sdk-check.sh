#!/usr/bin/env bash
# The OpenAPI document as clients see it: validate openapi/openapi.json (openapi-spec-validator,
# Redocly lint), generate the Python client (openapi-python-client) and the TypeScript types
# (openapi-typescript, used with openapi-fetch), compile the TypeScript walkthrough with
# `tsc --strict`, and run both walkthroughs (sdk/python/walkthrough.py, sdk/ts/walkthrough.ts)
# against a live `gmfuse serve` on a free loopback port with a throw-away data directory.
# Generated code goes to sdk/python/generated and sdk/ts/generated (ignored by git).
#
#   scripts/sdk-check.sh
#
# Needs a built binary ($GMFUSE_BIN, else target/{release,debug}/gmfuse under $CARGO_TARGET_DIR
# when set), python3, node 20 and npm. Tools are pinned: Python ones in scripts/py-tools.sh,
# npm ones in sdk/ts/package-lock.json (installed with `npm ci` when the lock file changes).
set -euo pipefail

say() { echo "sdk-check.sh: $*" >&2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/gmfuse-bin.sh")"
spec="$root/openapi/openapi.json"
venv="$("$root/scripts/py-tools.sh")"

say "validating $spec"
"$venv/bin/openapi-spec-validator" "$spec"
ts="$root/sdk/ts"
stamp="$ts/node_modules/.gmfuse-lock-sha256"
lock_sha="$(sha256sum "$ts/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]]; then
    say "npm ci in sdk/ts"
    (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$lock_sha" >"$stamp"
fi
(cd "$ts" && npx --no-install redocly lint --config "$root/openapi/redocly.yaml" "$spec" >&2)

say "generating the Python client"
py="$root/sdk/python"
rm -rf "$py/generated"
"$venv/bin/openapi-python-client" generate --path "$spec" --output-path "$py/generated/gmfuse_client" \
    --meta none --config "$py/openapi-python-client.yaml" >&2
say "generating the TypeScript types, tsc --strict"
rm -rf "$ts/generated" "$ts/dist"
(cd "$ts" && node generate.mjs >&2 && npx --no-install tsc -p tsconfig.json >&2)

data="$(mktemp -d)"
log="$data/server.log"
cleanup() {
    [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT
GMFUSE_ADDR=127.0.0.1:0 GMFUSE_DATA_DIR="$data/data" GMFUSE_WORKERS=1 GMFUSE_LOG_FORMAT=json \
    GMFUSE_NO_DEMO=true GMFUSE_EVAL_LIMIT=500 RUST_LOG=info "$bin" serve >"$log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 1 300); do
    addr="$(grep -o '"addr":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)"
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { say "gmfuse exited:"; cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { say "gmfuse did not start"; cat "$log" >&2; exit 1; }
export GMFUSE_URL="http://$addr"

say "Python walkthrough against $GMFUSE_URL"
PYTHONPATH="$py/generated" "$venv/bin/python" "$py/walkthrough.py"
say "TypeScript walkthrough against $GMFUSE_URL"
(cd "$ts" && node dist/walkthrough.js)
if grep -q '"level":"ERROR"' "$log"; then
    say "the server logged errors:"; grep '"level":"ERROR"' "$log" | head -20 >&2; exit 1
fi
say "ok"
