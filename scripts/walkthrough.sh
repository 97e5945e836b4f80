#!/usr/bin/env bash
# The README's API walkthrough, line for line, against a running gmfuse:
#   GMFUSE_URL=http://127.0.0.1:8080 scripts/walkthrough.sh [MODEL_A MODEL_B]
# Uploads two models, queues a fusion job, polls it to the end, and downloads the report, both
# plots and the fused weights into $OUT (default ./walkthrough-out). Needs curl, grep and cut.
# The API test `walkthrough_script_runs_against_a_live_server` runs it in CI.
set -euo pipefail

GMFUSE=${GMFUSE_URL:-http://127.0.0.1:8080}
A_FILE=${1:-assets/demo/model-a.safetensors}
B_FILE=${2:-assets/demo/model-b.safetensors}
OUT=${OUT:-walkthrough-out}
mkdir -p "$OUT"
cd "$OUT"
case "$A_FILE" in /*) ;; *) A_FILE="$OLDPWD/$A_FILE" ;; esac
case "$B_FILE" in /*) ;; *) B_FILE="$OLDPWD/$B_FILE" ;; esac

# The first "key":"value" string field of a JSON document on stdin.
field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d '"' -f 4; }

# 1. Upload the two models (raw safetensors bodies).
A=$(curl -fsS --data-binary @"$A_FILE" -H 'Content-Type: application/octet-stream' "$GMFUSE/v1/models?name=demo-a" | field id)
B=$(curl -fsS --data-binary @"$B_FILE" -H 'Content-Type: application/octet-stream' "$GMFUSE/v1/models?name=demo-b" | field id)
curl -fsS "$GMFUSE/v1/models/$A"; echo

# 2. Queue a fusion job: 202 Accepted with Location: /v1/jobs/{id}.
JOB=$(curl -fsS -H 'Content-Type: application/json' -d "{\"models\": [\"$A\", \"$B\"], \"architecture\": \"mnist-cnn\", \"dataset\": \"mnist-test\", \"method\": \"gamf\"}" "$GMFUSE/v1/jobs" | field id)

# 3. Poll until it ends (or stream progress: curl -N "$GMFUSE/v1/jobs/$JOB/events").
while STATUS=$(curl -fsS "$GMFUSE/v1/jobs/$JOB" | field status); [ "$STATUS" = queued ] || [ "$STATUS" = running ]; do sleep 1; done
echo "job $JOB: $STATUS"; [ "$STATUS" = succeeded ]

# 4. Download the report, its plots and the fused weights at α = 0.5 (ETag = sha256).
curl -fsS "$GMFUSE/v1/jobs/$JOB/report" -o report.json
curl -fsS "$GMFUSE/v1/jobs/$JOB/report.svg" -o report.svg
curl -fsS "$GMFUSE/v1/jobs/$JOB/matching.svg" -o matching.svg
curl -fsS "$GMFUSE/v1/jobs/$JOB/fused?proportion=0.5" -o fused-0.5.safetensors
ls -l report.json report.svg matching.svg fused-0.5.safetensors
