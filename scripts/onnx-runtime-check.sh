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
# Also fuses the mnist-cnn pair rewritten with PyTorch's dynamic flatten
# (scripts/onnx-dynamic-flatten.py) and checks gmfuse reports the same accuracy for it; then saves
# the cnn-bn pair with onnx's external data and checks that gmfuse fuses it into the same bytes.
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
# fuse LABEL A.onnx B.onnx: weight matching at α 0.5 into $work/LABEL-fused.onnx, a row of the table.
fuse() {
    local label="$1" a="$2" b="$3"
    "$bin" fuse --method weight_matching --alphas 0.5 "$a" "$b" \
        --out "$work/$label-fused.onnx" --report "$work/$label-report.json" >/dev/null 2>&1 \
        || { echo "onnx-runtime-check.sh: gmfuse fuse failed for $label" >&2; \
             "$bin" fuse --method weight_matching --alphas 0.5 "$a" "$b" \
                 --out "$work/$label-fused.onnx" >/dev/null; exit 1; }
    rows+=("$label" "$work/$label-fused.onnx" "$work/$label-report.json")
}
for preset in mnist-cnn cnn-bn resnet-mini mlp; do
    dir="$root/assets/demo-$preset"
    [[ "$preset" == mnist-cnn ]] && dir="$root/assets/demo"
    for m in a b; do
        "$bin" export-onnx --arch "$preset" "$dir/model-$m.safetensors" "$work/$preset-$m.onnx" 2>/dev/null
        (cd "$root" && "$venv/bin/python" scripts/onnx-demo-check.py \
            "$work/$preset-$m.onnx=$dir/model-$m.safetensors")
    done
    fuse "$preset" "$work/$preset-a.onnx" "$work/$preset-b.onnx"
done
# PyTorch's dynamic flatten: the mnist-cnn pair with its Flatten rewritten into the TorchScript
# exporter's Shape → Gather → Unsqueeze → Concat → Reshape chain; the inputs score their recorded
# accuracy, and gmfuse must report the plain pair's figure for it.
for m in a b; do
    "$venv/bin/python" "$root/scripts/onnx-dynamic-flatten.py" \
        "$work/mnist-cnn-$m.onnx" "$work/mnist-cnn-shape-$m.onnx" >/dev/null
    (cd "$root" && "$venv/bin/python" scripts/onnx-demo-check.py \
        "$work/mnist-cnn-shape-$m.onnx=$root/assets/demo/model-$m.safetensors")
done
fuse mnist-cnn-shape "$work/mnist-cnn-shape-a.onnx" "$work/mnist-cnn-shape-b.onnx"
"$venv/bin/python" - "$work/mnist-cnn-report.json" "$work/mnist-cnn-shape-report.json" <<'PY'
import json, sys
plain, shape = (json.load(open(p))["curves"][0]["points"][0]["accuracy"] for p in sys.argv[1:])
print(f"mnist-cnn with Shape→Reshape: gmfuse {shape} % vs {plain} % with Flatten")
sys.exit(0 if shape == plain else "the Shape→Reshape pair fused to another accuracy")
PY
"$venv/bin/python" "$root/scripts/onnx_runtime_check.py" "$root/assets/mnist" "${rows[@]}"

# External data as onnx itself writes it (`save_as_external_data=True`, one file, every tensor,
# back to back): gmfuse reads the cnn-bn pair from beside the models exactly as the
# self-contained files, so the fused model is byte for byte the one fused above.
mkdir "$work/ext"
"$venv/bin/python" - "$work" <<'PY'
import sys
import onnx

work = sys.argv[1]
for m in "ab":
    model = onnx.load(f"{work}/cnn-bn-{m}.onnx")
    onnx.save_model(model, f"{work}/ext/cnn-bn-{m}.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location=f"cnn-bn-{m}.weights",
                    size_threshold=0)
    onnx.checker.check_model(f"{work}/ext/cnn-bn-{m}.onnx")
    moved = [t.name for t in onnx.load(f"{work}/ext/cnn-bn-{m}.onnx", load_external_data=False)
             .graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert len(moved) > 10, moved
PY
"$bin" fuse --method weight_matching --alphas 0.5 --eval-limit 100 \
    "$work/ext/cnn-bn-a.onnx" "$work/ext/cnn-bn-b.onnx" --out "$work/ext/fused.onnx" >/dev/null 2>&1 \
    || { "$bin" fuse --method weight_matching --alphas 0.5 --eval-limit 100 \
             "$work/ext/cnn-bn-a.onnx" "$work/ext/cnn-bn-b.onnx" >/dev/null; exit 1; }
cmp "$work/ext/fused.onnx" "$work/cnn-bn-fused.onnx" \
    || { echo "onnx-runtime-check.sh: external data read otherwise than the same model inside" >&2; exit 1; }
echo "external data (onnx.save_model, one file): cnn-bn fused from it = fused from the self-contained pair"
