#!/usr/bin/env bash
# The Python tools the API checks use, pinned, in one virtual environment kept between runs:
# schemathesis (scripts/schemathesis.sh), openapi-spec-validator and openapi-python-client
# (scripts/sdk-check.sh). Installs them quietly when the venv lacks these exact versions, then
# prints the venv's path.
#
#   venv="$(scripts/py-tools.sh)"      # $GMFUSE_PY_VENV, default ~/.cache/gmfuse/py
set -euo pipefail

venv="${GMFUSE_PY_VENV:-$HOME/.cache/gmfuse/py}"
pins=(schemathesis==4.32.5 openapi-spec-validator==0.9.0 openapi-python-client==0.29.1)
stamp="$venv/.gmfuse-pins"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "py-tools.sh: installing ${pins[*]} into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" >"$stamp"
fi
echo "$venv"
