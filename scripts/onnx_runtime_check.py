"""Score fused ONNX models in onnxruntime on the MNIST test set and compare with gmfuse.

Called by scripts/onnx-runtime-check.sh:
    python onnx_runtime_check.py MNIST_DIR (PRESET FUSED.onnx REPORT.json)...
Each report is `gmfuse fuse --report` JSON of a run with one proportion; gmfuse's accuracy is the
first method's point there. Images are read as gmfuse's eval reads them (IDX, gzipped; u8 / 255 in
float32, no mean/std) and a prediction is the argmax of the output. Exits 1 when any accuracy
differs from gmfuse's by more than 0.01 points.
"""

import gzip
import json
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 0.01  # percentage points


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def gmfuse_accuracy(report):
    curve = report["curves"][0]
    (point,) = curve["points"]
    return curve["method"], point["proportion"], point["accuracy"]


def onnxruntime_accuracy(model, images, labels):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    name = spec.name
    if len(spec.shape) == 2:  # a flat input (an MLP exported without its flatten)
        images = images.reshape(len(images), -1)
    correct = 0
    for start in range(0, len(labels), 1000):
        batch = images[start : start + 1000]
        (logits,) = session.run(None, {name: batch})
        correct += int((logits.argmax(axis=1) == labels[start : start + 1000]).sum())
    return 100.0 * correct / len(labels)


def main(argv):
    mnist, rows = argv[1], argv[2:]
    images = read_idx(f"{mnist}/t10k-images.idx3-ubyte.gz").astype(np.float32) / 255.0
    images = images[:, None, :, :]
    labels = read_idx(f"{mnist}/t10k-labels.idx1-ubyte.gz").astype(np.int64)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, {len(labels)} MNIST test images")
    print(f"{'preset':<12} {'method':<16} {'alpha':>5} {'gmfuse %':>9} {'onnxruntime %':>14} {'delta':>7}")
    failed = []
    for i in range(0, len(rows), 3):
        preset, model, report_path = rows[i : i + 3]
        with open(report_path) as f:
            report = json.load(f)
        method, alpha, ours = gmfuse_accuracy(report)
        if report["samples"] != len(labels):
            failed.append(f"{preset}: gmfuse scored {report['samples']} samples")
        theirs = onnxruntime_accuracy(model, images, labels)
        delta = theirs - ours
        print(f"{preset:<12} {method:<16} {alpha:>5} {ours:>9.2f} {theirs:>14.2f} {delta:>+7.2f}")
        if abs(delta) > TOLERANCE:
            failed.append(f"{preset}: onnxruntime {theirs:.2f} % vs gmfuse {ours:.2f} %")
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(f"ok: every fused ONNX model scores gmfuse's accuracy within {TOLERANCE} points")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
