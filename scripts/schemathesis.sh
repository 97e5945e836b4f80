#!/usr/bin/env bash
# Property-based API testing of a live gmfuse against its own OpenAPI document (schemathesis,
# pinned, from PyPI): starts `gmfuse serve` on a free loopback port with a throw-away data
# directory, seeds it with the two demo models and one small succeeded job (so the job and
# model routes are exercised on real resources, not only on unknown ids), then runs a bounded
# number of generated examples per operation. Fails on any server error (5xx), any response
# whose status, content type, headers or body the document does not describe, or an ERROR in
# the server's log.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]     default 30 examples per operation
#
# Needs a built binary: $GMFUSE_BIN, else target/{release,debug}/gmfuse (under $CARGO_TARGET_DIR
# when set), and curl. Installs schemathesis into the venv $GMFUSE_PY_VENV (default
# ~/.cache/gmfuse/py) unless that venv already has the pinned version (scripts/py-tools.sh).
set -euo pipefail

examples="${1:-30}"
say() { echo "schemathesis.sh: $*" >&2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/gmfuse-bin.sh")"
venv="$("$root/scripts/py-tools.sh")"
st="$venv/bin/schemathesis"

data="$(mktemp -d)"
log="$data/server.log"
cleanup() {
    [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

# A free port: let the kernel pick one, then read it from the server's JSON log line. The rate
# limit is lifted (the run sends thousands of requests a minute; 429 is tested elsewhere).
GMFUSE_ADDR=127.0.0.1:0 GMFUSE_DATA_DIR="$data/data" GMFUSE_WORKERS=1 GMFUSE_LOG_FORMAT=json \
    GMFUSE_NO_DEMO=true GMFUSE_EVAL_LIMIT=200 GMFUSE_TENANT_RATE_PER_SEC=1000000 \
    GMFUSE_TENANT_RATE_BURST=1000000 RUST_LOG=info "$bin" serve >"$log" 2>&1 &
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

# Seed: two models and a succeeded job (200 samples, three proportions).
field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d '"' -f 4; }
upload() {
    curl -fsS --data-binary @"$root/assets/demo/$1" -H 'Content-Type: application/octet-stream' \
        "$base/v1/models?name=$1" | field id
}
model_a="$(upload model-a.safetensors)"
model_b="$(upload model-b.safetensors)"
job="$(curl -fsS -H 'Content-Type: application/json' \
    -d "{\"models\": [\"$model_a\", \"$model_b\"], \"architecture\": \"mnist-cnn\", \"dataset\": \"mnist-test\", \"proportions\": [0, 0.5, 1]}" \
    "$base/v1/jobs" | field id)"
status=""
for _ in $(seq 1 600); do
    status="$(curl -fsS "$base/v1/jobs/$job" | field status)"
    [[ "$status" == queued || "$status" == running ]] || break
    sleep 0.2
done
[[ "$status" == succeeded ]] || { say "seed job $job: $status"; cat "$log" >&2; exit 1; }
say "gmfuse on $base (job $job, models $model_a $model_b), $examples examples per operation"

# GET operations on one job or model read the seeded ones; DELETE and POST keep generated ids.
# The event stream is documented as text (one string, what generated clients read); its events'
# payloads are checked by the SDK walkthroughs and the API tests, not against that string.
config="$data/schemathesis.toml"
cat >"$config" <<EOF
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
response_schema_conformance.enabled = true

[[operations]]
include-operation-id = "get_job_events"
parameters = { "path.id" = "$job" }
checks = { response_schema_conformance = { enabled = false } }

[[operations]]
include-path-regex = "^/v1/jobs/\\\\{id\\\\}"
include-method = "GET"
exclude-operation-id = "get_job_events"
parameters = { "path.id" = "$job" }

[[operations]]
include-path-regex = "^/v1/models/\\\\{id\\\\}"
include-method = "GET"
parameters = { "path.id" = "$model_a" }
EOF

status=0
cd "$data" # schemathesis keeps its cache (.schemathesis/) in the working directory
"$st" --config-file "$config" run "$base/openapi.json" \
    --url "$base" \
    --max-examples "$examples" \
    --seed "${SCHEMATHESIS_SEED:-20261206}" \
    --generation-database none \
    --no-color \
    --request-timeout 30 || status=$?
if grep -q '"level":"ERROR"' "$log"; then
    say "the server logged errors:"
    grep '"level":"ERROR"' "$log" | head -20 >&2
    status=1
fi
kill -0 "$pid" 2>/dev/null || { say "gmfuse died during the run"; exit 1; }
exit "$status"
