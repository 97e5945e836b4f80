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
# Also checks each exported input with scripts/onnx-demo-check.py (onnx.checker, and
# onnxruntime's accuracy = the one recorded in the safetensors provenance). onnx, onnxruntime and
# numpy come from scripts/onnx-data.sh's venv ($GMFUSE_ONNX_VENV, default ~/.cache/gmfuse/onnx).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/gmfuse-bin.sh")"
"$root/scripts/onnx-data.sh" >/dev/null
venv="${GMFUSE_ONNX_VENV:-$HOME/.cache/gmfuse/onnx}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rows=()
for preset in mnist-cnn cnn-bn resnet-mini mlp; do
    dir="$root/assets/demo-$preset"
    [[ "$preset" == mnist-cnn ]] && dir="$root/assets/demo"
    for m in a b; do
        "$bin" export-onnx --arch "$preset" "$dir/model-$m.safetensors" "$work/$preset-$m.onnx" 2>/dev/null
        (cd "$root" && "$venv/bin/python" scripts/onnx-demo-check.py \
            "$work/$preset-$m.onnx=$dir/model-$m.safetensors")
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
