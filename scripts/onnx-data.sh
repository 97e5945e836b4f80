#!/usr/bin/env bash
# The `onnx` and `onnxruntime` packages (PyPI, pinned) in a virtual environment kept between runs,
# for the engine's ONNX tests and scripts/onnx-demo-check.py: installs them quietly when missing,
# then prints the onnx package's backend test data directory (pytorch-converted/, light/), which
# the tests read from GMFUSE_ONNX_DATA.
#
#   export GMFUSE_ONNX_DATA="$(scripts/onnx-data.sh)"   # venv: $GMFUSE_ONNX_VENV, default ~/.cache/gmfuse/onnx
set -euo pipefail

venv="${GMFUSE_ONNX_VENV:-$HOME/.cache/gmfuse/onnx}"
pins=(onnx==1.23.2 onnxruntime==1.32.0)
stamp="$venv/.gmfuse-pins"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "onnx-data.sh: installing ${pins[*]} into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" >"$stamp"
fi
"$venv/bin/python" -c 'import os, onnx; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))'
