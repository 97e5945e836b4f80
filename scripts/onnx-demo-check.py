#!/usr/bin/env python3
"""Check gmfuse's ONNX exports of the demo pairs with the reference tools: each file passes
onnx.checker (full check, with shape inference) and onnxruntime's MNIST test accuracy equals the
accuracy recorded in the safetensors provenance (within 0.01 points).

    export GMFUSE_ONNX_DATA="$(scripts/onnx-data.sh)"   # installs onnx + onnxruntime in a venv
    cargo run -p gmfuse-engine --example onnx_export -- cnn-bn assets/demo-cnn-bn/model-a.safetensors /tmp/cnn-bn-a.onnx
    ~/.cache/gmfuse/onnx/bin/python scripts/onnx-demo-check.py /tmp/cnn-bn-a.onnx=assets/demo-cnn-bn/model-a.safetensors

Arguments: ONNX=SAFETENSORS pairs. Exits non-zero on the first mismatch.
"""
import gzip
import json
import re
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort

images = np.frombuffer(gzip.open("assets/mnist/t10k-images.idx3-ubyte.gz").read()[16:], np.uint8)
images = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255
labels = np.frombuffer(gzip.open("assets/mnist/t10k-labels.idx1-ubyte.gz").read()[8:], np.uint8)

for pair in sys.argv[1:]:
    path, weights = pair.split("=")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = np.concatenate(
        [session.run(None, {"input": images[i : i + 1000]})[0] for i in range(0, len(images), 1000)]
    )
    accuracy = float((logits.argmax(1) == labels).mean() * 100)
    raw = open(weights, "rb").read()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    recorded = float(re.search(r"accuracy ([0-9.]+) %", header["__metadata__"]["provenance"]).group(1))
    print(f"{path}: onnxruntime {accuracy:.2f} %, recorded {recorded:.2f} %")
    if abs(accuracy - recorded) > 0.01:
        sys.exit(f"{path}: accuracy {accuracy:.2f} % differs from the recorded {recorded:.2f} %")
