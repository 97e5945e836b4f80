#!/usr/bin/env bash
# Does a model gmfuse fuses from ONNX run where the inputs ran? For every preset's demo pair
# (assets/demo*): export both models with `gmfuse export-onnx`, fuse them with `gmfuse fuse
# a.onnx b.onnx --method weight_matching --alphas 0.5 --out fused.onnx --report r.json`, run
# fused.onnx in onnxruntime (PyPI, pinned) on the MNIST test set (assets/mnist, pixels u8/255
# as gmfuse's eval reads them) and fail unless its accuracy equals the one gmfuse reported
# within ±0.01 points. Prints a table preset / gmfuse % / onnxruntime % / Δ.
#
#   scripts/onnx-runtime-check.sh          # uses scripts/gmfuse-bin.sh's binary
#
# onnxruntime and numpy go into the project's venv ($GMFUSE_PY_VENV, default
# ~/.cache/gmfuse/py), installed once and kept between runs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/gmfuse-bin.sh")"
venv="${GMFUSE_PY_VENV:-$HOME/.cache/gmfuse/py}"
pins=(onnxruntime==1.31.1 numpy==2.2.6)
stamp="$venv/.gmfuse-onnx-pins"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "onnx-runtime-check.sh: installing ${pins[*]} into $venv" >&2
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" >"$stamp"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rows=()
for preset in mnist-cnn cnn-bn resnet-mini mlp; do
    dir="$root/assets/demo-$preset"
    [[ "$preset" == mnist-cnn ]] && dir="$root/assets/demo"
    for m in a b; do
        "$bin" export-onnx --arch "$preset" "$dir/model-$m.safetensors" "$work/$preset-$m.onnx" 2>/dev/null
    done
    "$bin" fuse --method weight_matching --alphas 0.5 \
        "$work/$preset-a.onnx" "$work/$preset-b.onnx" \
        --out "$work/$preset-fused.onnx" --report "$work/$preset-report.json" >/dev/null 2>&1 \
        || { echo "onnx-runtime-check.sh: gmfuse fuse failed for $preset" >&2; \
             "$bin" fuse --method weight_matching --alphas 0.5 "$work/$preset-a.onnx" \
                 "$work/$preset-b.onnx" --out "$work/$preset-fused.onnx" >/dev/null; exit 1; }
    rows+=("$preset" "$work/$preset-fused.onnx" "$work/$preset-report.json")
done
"$venv/bin/python" "$root/scripts/onnx_runtime_check.py" "$root/assets/mnist" "${rows[@]}"
