//! PyTorch's dynamic flatten: `x.view(x.size(0), -1)` as `torch.onnx.export` writes it (the
//! chains of the opsets 9–12, 13 and 15, with and without `Cast` and `Constant` nodes, and the
//! dynamo exporter's `Squeeze`/`Reshape(·, [-1])` form), and constant targets. Each variant
//! replaces the `Flatten` of an exported demo model (`mnist-cnn`: after a conv block;
//! `resnet-mini`: after a global average pool) and must read as the same spec, weights and
//! logits; other targets, and a shape value read as an activation, are refused naming the node.

use prost::Message;

use super::layouts::{attr_i, attr_ints, op};
use crate::arch::preset_for;
use crate::forward::Network;
use crate::onnx::proto::{
    AttributeProto, ModelProto, NodeProto, TensorProto, attribute_proto::AttributeType,
};
use crate::onnx::{OnnxError, export, read};
use crate::weights::WeightSet;

/// A demo's model A (`preset`, assets `dir`) and its gmfuse export.
fn exported_demo(preset: &str, dir: &str) -> (WeightSet, Vec<u8>) {
    let path = format!(
        "{}/../../assets/{dir}/model-a.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let w = WeightSet::from_bytes(&std::fs::read(path).unwrap()).unwrap();
    let spec = preset_for(preset, &w.shapes()).unwrap();
    let bytes = export(&spec, &w).unwrap();
    (w, bytes)
}

/// The `mnist-cnn` demo's export: its `Flatten` reads `[N, 64, 7, 7]` (the second pool's
/// output, 3136 features).
fn exported() -> (WeightSet, Vec<u8>) {
    exported_demo("mnist-cnn", "demo")
}

/// An int64 tensor (0-D when `dims` is empty).
fn int64s(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(7),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A `Constant` node with tensor `value`.
fn constant(out: &str, dims: &[i64], v: &[i64]) -> NodeProto {
    let value = AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(int64s("", dims, v)),
        ..Default::default()
    };
    op("Constant", &[], out, vec![value])
}

/// `bytes` with its `Flatten` node (input `x`, output `y`) replaced by `chain(x, y)` (the last
/// node, the Reshape, takes the Flatten's name), extra initializers, and opset `opset`.
fn with_chain(
    bytes: &[u8],
    opset: i64,
    init: Vec<TensorProto>,
    chain: impl Fn(&str, &str) -> Vec<NodeProto>,
) -> Vec<u8> {
    let mut m = ModelProto::decode(bytes).unwrap();
    m.opset_import[0].version = Some(opset);
    let g = m.graph.as_mut().unwrap();
    let at = g
        .node
        .iter()
        .position(|n| n.op_type.as_deref() == Some("Flatten"))
        .unwrap();
    let flatten = g.node.remove(at);
    let mut nodes = chain(flatten.input[0].as_str(), flatten.output[0].as_str());
    nodes.last_mut().unwrap().name = flatten.name.clone();
    for (i, n) in nodes.into_iter().enumerate() {
        g.node.insert(at + i, n);
    }
    g.initializer.extend(init);
    m.encode_to_vec()
}

/// The `Concat(·, [-1])` and `Reshape` that end every dynamic chain, reading `n` (`[N]`).
fn concat_reshape(x: &str, y: &str, n: &str) -> Vec<NodeProto> {
    vec![
        constant("minus1", &[1], &[-1]),
        op("Concat", &[n, "minus1"], "target", vec![attr_i("axis", 0)]),
        op("Reshape", &[x, "target"], y, vec![]),
    ]
}

/// Every form a PyTorch export takes: `(what, opset, initializers, chain)`.
type Variant = (
    &'static str,
    i64,
    Vec<TensorProto>,
    Box<dyn Fn(&str, &str) -> Vec<NodeProto>>,
);

/// The forms of a flatten of `features` values per sample.
fn variants(features: i64) -> Vec<Variant> {
    vec![
        (
            "opset 11: Constant index, Gather, Unsqueeze(axes attribute)",
            11,
            vec![],
            Box::new(|x: &str, y: &str| {
                let mut v = vec![
                    op("Shape", &[x], "s", vec![]),
                    constant("idx0", &[], &[0]),
                    op("Gather", &["s", "idx0"], "n0", vec![attr_i("axis", 0)]),
                    op("Unsqueeze", &["n0"], "n", vec![attr_ints("axes", &[0])]),
                ];
                v.extend(concat_reshape(x, y, "n"));
                v
            }),
        ),
        (
            "opset 13: initializer index, Cast to int64, Unsqueeze(axes input)",
            13,
            vec![int64s("idx", &[], &[0]), int64s("axes0", &[1], &[0])],
            Box::new(|x: &str, y: &str| {
                let mut v = vec![
                    op("Shape", &[x], "s", vec![]),
                    op("Gather", &["s", "idx"], "g", vec![]),
                    op("Cast", &["g"], "n0", vec![attr_i("to", 7)]),
                    op("Unsqueeze", &["n0", "axes0"], "n", vec![]),
                ];
                v.extend(concat_reshape(x, y, "n"));
                v
            }),
        ),
        (
            "opset 15: Shape(start 0, end 1)",
            15,
            vec![],
            Box::new(|x: &str, y: &str| {
                let shape = vec![attr_i("start", 0), attr_i("end", 1)];
                let mut v = vec![op("Shape", &[x], "n", shape)];
                v.extend(concat_reshape(x, y, "n"));
                v
            }),
        ),
        (
            "opset 13: Slice of the shape, Identity",
            13,
            vec![int64s("s0", &[1], &[0]), int64s("s1", &[1], &[1])],
            Box::new(|x: &str, y: &str| {
                let mut v = vec![
                    op("Shape", &[x], "s", vec![]),
                    op("Slice", &["s", "s0", "s1"], "n1", vec![]),
                    op("Identity", &["n1"], "n", vec![]),
                ];
                v.extend(concat_reshape(x, y, "n"));
                v
            }),
        ),
        (
            "[N, C·H·W] from Gather(1)·Gather(2)·Gather(3) (Mul), Squeeze",
            13,
            vec![int64s("i0", &[1], &[0]), int64s("i123", &[3], &[1, 2, 3])],
            Box::new(|x: &str, y: &str| {
                vec![
                    op("Shape", &[x], "s", vec![]),
                    op("Gather", &["s", "i0"], "n", vec![]),
                    op("Gather", &["s", "i123"], "chw", vec![]),
                    constant("one", &[1], &[1]),
                    constant("two", &[1], &[2]),
                    op("Slice", &["chw", "one", "two"], "h1", vec![]),
                    op("Squeeze", &["h1"], "h", vec![]),
                    op("Gather", &["chw", "zero"], "c", vec![]),
                    op("Mul", &["c", "h"], "ch", vec![]),
                    op("Mul", &["ch", "h"], "f0", vec![]),
                    op("Unsqueeze", &["f0", "zero1"], "f", vec![]),
                    op("Concat", &["n", "f"], "target", vec![attr_i("axis", 0)]),
                    op("Reshape", &[x, "target"], y, vec![]),
                ]
            }),
        ),
        (
            "opset 18 (dynamo): Squeeze(Shape(start 0, end 1)), Reshape(·, [-1]), allowzero",
            18,
            vec![int64s("axes0", &[1], &[0]), int64s("flat1", &[1], &[-1])],
            Box::new(|x: &str, y: &str| {
                let shape = vec![attr_i("start", 0), attr_i("end", 1)];
                vec![
                    op("Shape", &[x], "n1", shape),
                    op("Squeeze", &["n1", "axes0"], "n0", vec![]),
                    op("Reshape", &["n0", "flat1"], "n", vec![]),
                    constant("minus1", &[1], &[-1]),
                    op("Concat", &["n", "minus1"], "t0", vec![attr_i("axis", 0)]),
                    op("Cast", &["t0"], "target", vec![attr_i("to", 7)]),
                    op("Reshape", &[x, "target"], y, vec![attr_i("allowzero", 1)]),
                ]
            }),
        ),
        (
            "constant [-1, C·H·W] (x.view(-1, 3136) in mnist-cnn)",
            13,
            vec![int64s("t", &[2], &[-1, features])],
            Box::new(|x: &str, y: &str| vec![op("Reshape", &[x, "t"], y, vec![])]),
        ),
        (
            "constant [0, -1] (0 copies N)",
            13,
            vec![int64s("t", &[2], &[0, -1])],
            Box::new(|x: &str, y: &str| vec![op("Reshape", &[x, "t"], y, vec![])]),
        ),
    ]
}

/// `(preset, assets dir, the linear weight after the flatten)`: a flatten of a conv block's
/// `[N, 64, 7, 7]`, and of a global average pool's `[N, C, 1, 1]`.
const DEMOS: [(&str, &str, &str); 2] = [
    ("mnist-cnn", "demo", "fc1.weight"),
    ("resnet-mini", "demo-resnet-mini", "fc.weight"),
];

#[test]
fn every_pytorch_flatten_chain_reads_as_the_flatten_model() {
    for (preset, dir, fc) in DEMOS {
        let (w, bytes) = exported_demo(preset, dir);
        let want = read(&bytes).unwrap();
        let x = super::roundtrip::pixels(4, 784, 3);
        let logits = Network::new(&want.spec, &want.weights)
            .unwrap()
            .logits(x.view());
        let features = w.tensors[fc].data.shape()[1] as i64;
        for (what, opset, mut init, chain) in variants(features) {
            // The Mul variant's `zero` (0-D) and `zero1` ([1]) constants.
            init.extend([int64s("zero", &[], &[0]), int64s("zero1", &[1], &[0])]);
            let m = read(&with_chain(&bytes, opset, init, chain))
                .unwrap_or_else(|e| panic!("{preset}, {what}: {e}"));
            assert_eq!(m.spec, want.spec, "{preset}, {what}");
            assert!(
                m.weights.tensors == w.tensors,
                "{preset}, {what}: weights differ"
            );
            let got = Network::new(&m.spec, &m.weights).unwrap().logits(x.view());
            assert_eq!(got, logits, "{preset}, {what}");
        }
    }
}

/// The node and reason of an [`OnnxError::Unsupported`].
fn refused(bytes: &[u8]) -> (String, String) {
    match read(bytes) {
        Err(OnnxError::Unsupported { node, reason, .. }) => (node, reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reshape_to_anything_but_a_flatten_is_refused_naming_the_node_and_its_computed_shape() {
    let (_, bytes) = exported();
    let split = |x: &str, y: &str| {
        vec![
            op("Shape", &[x], "n", vec![attr_i("end", 1)]),
            constant("rest", &[2], &[8, -1]),
            op("Concat", &["n", "rest"], "target", vec![attr_i("axis", 0)]),
            op("Reshape", &[x, "target"], y, vec![]),
        ]
    };
    let (node, reason) = refused(&with_chain(&bytes, 15, vec![], split));
    let flatten = ModelProto::decode(bytes.as_slice())
        .unwrap()
        .graph
        .unwrap()
        .node;
    let label = flatten
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Flatten"))
        .and_then(|n| n.name.clone())
        .unwrap();
    assert_eq!(node, label);
    assert!(
        reason.starts_with("Reshape to [N, 8, -1], computed from its shape input")
            && reason.contains("flatten of its input [N, 64, 7, 7] into [N, 3136]"),
        "{reason}"
    );
    // A constant feature count that is not C·H·W (64·7·7 = 3136).
    let wrong = |x: &str, y: &str| vec![op("Reshape", &[x, "t"], y, vec![])];
    let (_, reason) = refused(&with_chain(
        &bytes,
        13,
        vec![int64s("t", &[2], &[-1, 1568])],
        wrong,
    ));
    assert!(reason.starts_with("Reshape to [-1, 1568]"), "{reason}");
}

#[test]
fn a_shape_value_read_as_an_activation_is_refused_clearly() {
    let (_, bytes) = exported();
    let relu = |x: &str, y: &str| {
        vec![
            op("Shape", &[x], "s", vec![]),
            op("Relu", &["s"], "r", vec![]),
            op("Flatten", &[x], y, vec![attr_i("axis", 1)]),
        ]
    };
    let (node, reason) = refused(&with_chain(&bytes, 13, vec![], relu));
    assert_eq!(node, "Relu_r");
    assert!(
        reason.contains("`s` is a shape computed from the graph")
            && reason.contains("only as a Reshape's target shape"),
        "{reason}"
    );
    // A Gather of weights (an embedding) is not a shape computation.
    let gather = |x: &str, y: &str| {
        vec![
            op("Gather", &["emb", "zero"], "e", vec![]),
            op("Flatten", &[x], y, vec![attr_i("axis", 1)]),
        ]
    };
    let emb = super::layouts::floats("emb", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let init = vec![emb, int64s("zero", &[], &[0])];
    let (node, reason) = refused(&with_chain(&bytes, 13, init, gather));
    assert_eq!(node, "Gather_e");
    assert!(
        reason.contains("`emb` is a constant that is not an integer tensor"),
        "{reason}"
    );
}

#[test]
fn real_exports_of_reshapes_that_are_not_flattens_are_refused_with_their_target() {
    let Some(data) = super::data_dir("flatten_real_reshapes") else {
        return;
    };
    // PyTorch's PixelShuffle(3) of [1, 9, 4, 4]: a constant 6-D target; `repeat` reshapes
    // [1, 2] to 4-D before a Tile.
    let cases = [
        (
            "pytorch-converted/test_PixelShuffle",
            "Reshape to [1, 1, 3, 3, 4, 4], computed from its shape input; gmfuse maps a Reshape \
             only as a flatten of its input [N, 9, 4, 4] into [N, 144]",
        ),
        (
            "pytorch-operator/test_operator_repeat_dim_overflow",
            "Reshape to [1, 1, 1, 2], computed from its shape input; gmfuse maps a Reshape only as a \
             flatten of its input [N, 2] into [N, 2]",
        ),
    ];
    for (dir, want) in cases {
        let bytes = std::fs::read(data.join(dir).join("model.onnx")).unwrap();
        let (node, reason) = refused(&bytes);
        assert_eq!(node, "2", "{dir}");
        assert!(reason.starts_with(want), "{dir}: {reason}");
    }
}
