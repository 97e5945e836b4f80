#!/usr/bin/env python3
"""Rewrite every `Flatten(axis=1)` of an ONNX model into the shape computation PyTorch's
TorchScript exporter writes for `x.view(x.size(0), -1)` at opset 13:

    Shape(x) → Gather(·, 0) → Unsqueeze(·, [0]) → Concat(·, [-1]) → Reshape(x, ·)

with the index, axes and -1 as `Constant` nodes, as that exporter emits them. The Reshape keeps
the Flatten's node name and output, so the graph computes the same values under the same names;
the result passes onnx.checker (full check). Used by scripts/onnx-runtime-check.sh to check
gmfuse's reading of the chain end to end (issue 11): onnxruntime scores the rewritten inputs and
the fused file gmfuse writes from them.

    python onnx-dynamic-flatten.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def constant(name, value):
    return helper.make_node(
        "Constant", [], [name], name=name, value=numpy_helper.from_array(np.array(value, np.int64))
    )


def chain(flatten):
    (x,), (y,) = flatten.input, flatten.output
    p = f"{flatten.name or y}_dyn"
    return [
        helper.make_node("Shape", [x], [f"{p}_shape"], name=f"{p}_shape"),
        constant(f"{p}_zero", 0),
        helper.make_node("Gather", [f"{p}_shape", f"{p}_zero"], [f"{p}_n"], name=f"{p}_gather", axis=0),
        constant(f"{p}_axes", [0]),
        helper.make_node("Unsqueeze", [f"{p}_n", f"{p}_axes"], [f"{p}_n1"], name=f"{p}_unsqueeze"),
        constant(f"{p}_minus_one", [-1]),
        helper.make_node("Concat", [f"{p}_n1", f"{p}_minus_one"], [f"{p}_target"], name=f"{p}_concat", axis=0),
        helper.make_node("Reshape", [x, f"{p}_target"], [y], name=flatten.name),
    ]


def main(src, dst):
    model = onnx.load(src)
    nodes, rewritten = [], 0
    for node in model.graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if node.op_type == "Flatten" and axis == 1:
            nodes.extend(chain(node))
            rewritten += 1
        else:
            nodes.append(node)
    if rewritten == 0:
        sys.exit(f"{src}: no Flatten(axis=1) to rewrite")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, dst)
    print(f"{dst}: {rewritten} Flatten → Shape/Gather/Unsqueeze/Concat/Reshape")


if __name__ == "__main__":
    main(*sys.argv[1:])
