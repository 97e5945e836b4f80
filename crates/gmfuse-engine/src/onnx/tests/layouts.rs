//! Hand-built models for the layouts ONNX allows and gmfuse reshapes on read: Gemm's
//! `transB = 0`/`alpha`/`beta`, MatMul + Add as a linear layer with bias, Conv + Add of a
//! `[1, C, 1, 1]` bias, ConstantOfShape fills, f16/f64 and typed-field storage. Each is read,
//! run, and written back (the undo of every transpose and scale is checked exactly).

use ndarray::{Array2, ArrayD};
use prost::Message;

use crate::forward::Network;
use crate::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_shape_proto::{Dimension, dimension::Value as Dim},
    type_proto,
};
use crate::onnx::{OnnxError, read, write_fused};

pub(super) fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}

pub(super) fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

pub(super) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(super) fn op(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(format!("{op}_{output}")),
        op_type: Some(op.to_string()),
        attribute,
        ..Default::default()
    }
}

/// A float32 tensor in `float_data`.
pub(super) fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// A model reading `x` of `dims` (batch first) through `nodes` into `y`.
pub(super) fn model(dims: &[i64], nodes: Vec<NodeProto>, initializer: Vec<TensorProto>) -> Vec<u8> {
    let dim = |d: &i64| Dimension {
        value: Some(Dim::DimValue(*d)),
        ..Default::default()
    };
    let tensor = type_proto::Tensor {
        elem_type: Some(1),
        shape: Some(TensorShapeProto {
            dim: dims.iter().map(dim).collect(),
        }),
    };
    let input = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("hand".into()),
            node: nodes,
            input: vec![input],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            initializer,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn logits(bytes: &[u8], x: &Array2<f32>) -> Array2<f32> {
    let m = read(bytes).unwrap();
    Network::new(&m.spec, &m.weights).unwrap().logits(x.view())
}

#[test]
fn gemm_trans_b_0_alpha_and_beta_are_folded_on_read_and_undone_on_write() {
    // y = 2 · x B + 0.5 · C with B [3, 2] (in × out), C [1, 2].
    let b = [1.0, -2.0, 0.5, 0.25, -1.5, 3.0];
    let bytes = model(
        &[1, 3],
        vec![op(
            "Gemm",
            &["x", "B", "C"],
            "y",
            vec![attr_f("alpha", 2.0), attr_f("beta", 0.5)],
        )],
        vec![floats("B", &[3, 2], &b), floats("C", &[1, 2], &[4.0, -8.0])],
    );
    let m = read(&bytes).unwrap();
    assert_eq!(
        m.weights.tensors["B"].data,
        ArrayD::from_shape_vec(vec![2, 3], vec![2.0, 1.0, -3.0, -4.0, 0.5, 6.0]).unwrap()
    );
    assert_eq!(
        m.weights.tensors["C"].data.as_slice().unwrap(),
        &[2.0, -4.0]
    );
    let x = Array2::from_shape_vec((1, 3), vec![1.0, 2.0, 3.0]).unwrap();
    // By hand: x·B = [1 + 1 - 4.5, -2 + 0.5 + 9] = [-2.5, 7.5]; ·2 = [-5, 15]; + [2, -4].
    assert_eq!(logits(&bytes, &x).as_slice().unwrap(), &[-3.0, 11.0]);
    assert_eq!(
        write_fused(&bytes, &m.weights).unwrap(),
        bytes,
        "unchanged weights give the same bytes"
    );
    let mut fused = m.weights.clone();
    fused
        .tensors
        .get_mut("B")
        .unwrap()
        .data
        .mapv_inplace(|v| v * 2.0);
    let written = ModelProto::decode(write_fused(&bytes, &fused).unwrap().as_slice()).unwrap();
    let b_file = &written.graph.unwrap().initializer[0];
    let twice: Vec<f32> = b.iter().map(|v| v * 2.0).collect();
    assert_eq!(
        (b_file.dims.as_slice(), b_file.float_data.as_slice()),
        (&[3i64, 2][..], twice.as_slice())
    );
}

#[test]
fn matmul_and_add_read_as_one_linear_layer_with_its_bias_in_f64() {
    let raw = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let w = TensorProto {
        name: Some("W".into()),
        dims: vec![2, 2],
        data_type: Some(11),
        raw_data: Some(raw(&[1.0, 2.0, 3.0, 4.0])),
        ..Default::default()
    };
    let bias = TensorProto {
        name: Some("b".into()),
        dims: vec![2],
        data_type: Some(11),
        raw_data: Some(raw(&[0.5, -0.5])),
        ..Default::default()
    };
    let bytes = model(
        &[1, 2],
        vec![
            op("MatMul", &["x", "W"], "h", vec![]),
            op("Add", &["h", "b"], "y", vec![]),
        ],
        vec![w, bias],
    );
    let m = read(&bytes).unwrap();
    assert_eq!(m.spec.ops.len(), 2, "flatten + linear: {:?}", m.spec);
    let x = Array2::from_shape_vec((1, 2), vec![1.0, 1.0]).unwrap();
    // [1, 1]·[[1, 2], [3, 4]] = [4, 6]; + [0.5, -0.5].
    assert_eq!(logits(&bytes, &x).as_slice().unwrap(), &[4.5, 5.5]);
    assert_eq!(write_fused(&bytes, &m.weights).unwrap(), bytes);
}

#[test]
fn conv_and_an_add_of_a_1c11_constant_is_a_conv_bias_in_f16() {
    let raw16 = |v: &[f32]| {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![2, 1, 1, 1],
        data_type: Some(10),
        raw_data: Some(raw16(&[1.0, -1.0])),
        ..Default::default()
    };
    let b = TensorProto {
        name: Some("b".into()),
        dims: vec![1, 2, 1, 1],
        data_type: Some(10),
        raw_data: Some(raw16(&[0.5, 0.25])),
        ..Default::default()
    };
    let bytes = model(
        &[1, 1, 1, 2],
        vec![
            op(
                "Conv",
                &["x", "w"],
                "c",
                vec![attr_ints("kernel_shape", &[1, 1])],
            ),
            op("Add", &["c", "b"], "y", vec![]),
        ],
        vec![w, b],
    );
    let m = read(&bytes).unwrap();
    assert_eq!(m.weights.tensors["b"].data.shape(), &[2]);
    let x = Array2::from_shape_vec((1, 2), vec![3.0, 5.0]).unwrap();
    // Channel 0: [3, 5] + 0.5; channel 1: -[3, 5] + 0.25; flattened channel-major.
    assert_eq!(
        logits(&bytes, &x).as_slice().unwrap(),
        &[3.5, 5.5, -2.75, -4.75]
    );
    assert_eq!(write_fused(&bytes, &m.weights).unwrap(), bytes);
}

#[test]
fn a_constant_of_shape_weight_is_written_back_as_a_constant_node() {
    let shape = TensorProto {
        name: Some("ws".into()),
        dims: vec![2],
        data_type: Some(7),
        int64_data: vec![3, 2],
        ..Default::default()
    };
    let fill = TensorProto {
        dims: vec![1],
        data_type: Some(1),
        float_data: vec![0.5],
        ..Default::default()
    };
    let node = NodeProto {
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(fill),
            ..Default::default()
        }],
        ..op("ConstantOfShape", &["ws"], "w", vec![])
    };
    let bytes = model(
        &[1, 2],
        vec![
            node,
            op("Gemm", &["x", "w"], "y", vec![attr_i("transB", 1)]),
        ],
        vec![shape],
    );
    let m = read(&bytes).unwrap();
    assert!(m.weights.tensors["w"].data.iter().all(|&v| v == 0.5));
    let mut fused = m.weights.clone();
    fused.tensors.get_mut("w").unwrap().data =
        ArrayD::from_shape_vec(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let written = write_fused(&bytes, &fused).unwrap();
    let node = &ModelProto::decode(written.as_slice())
        .unwrap()
        .graph
        .unwrap()
        .node[0];
    assert_eq!(
        (node.op_type.as_deref(), node.output.as_slice()),
        (Some("Constant"), &["w".to_string()][..])
    );
    assert_eq!(
        read(&written).unwrap().weights.tensors["w"].data,
        fused.tensors["w"].data
    );
}

#[test]
fn forms_gmfuse_cannot_compute_exactly_are_refused_naming_the_node() {
    let unsupported = |bytes: Vec<u8>| match read(&bytes) {
        Err(OnnxError::Unsupported { node, reason, .. }) => format!("{node}: {reason}"),
        other => panic!("{other:?}"),
    };
    let pool = op(
        "AveragePool",
        &["x"],
        "p",
        vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
        ],
    );
    let msg = unsupported(model(&[1, 1, 4, 4], vec![pool], vec![]));
    assert!(
        msg.starts_with("AveragePool_p: AveragePool with padding and count_include_pad = 0"),
        "{msg}"
    );
    let add = op("Add", &["x", "b"], "y", vec![]);
    let msg = unsupported(model(
        &[1, 2],
        vec![add],
        vec![floats("b", &[2], &[1.0, 2.0])],
    ));
    assert!(
        msg.contains("not the output of a bias-free Conv/Gemm/MatMul"),
        "{msg}"
    );
    let conv = op(
        "Conv",
        &["x", "w"],
        "y",
        vec![attr_ints("pads", &[0, 0, 1, 1])],
    );
    let msg = unsupported(model(
        &[1, 1, 4, 4],
        vec![conv],
        vec![floats("w", &[1, 1, 1, 1], &[1.0])],
    ));
    assert!(msg.contains("pads [0, 0, 1, 1] are not symmetric"), "{msg}");
}

#[test]
fn a_constant_node_is_a_weight_and_write_fused_replaces_its_tensor() {
    let value = floats("", &[2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let constant = NodeProto {
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(value),
            ..Default::default()
        }],
        ..op("Constant", &[], "w", vec![])
    };
    let bytes = model(
        &[1, 2],
        vec![
            constant,
            op("Gemm", &["x", "w"], "y", vec![attr_i("transB", 1)]),
        ],
        vec![],
    );
    let m = read(&bytes).unwrap();
    assert_eq!(
        m.weights.tensors["w"].data.as_slice().unwrap(),
        &[1.0, 0.0, 0.0, 1.0]
    );
    let mut fused = m.weights.clone();
    fused
        .tensors
        .get_mut("w")
        .unwrap()
        .data
        .mapv_inplace(|v| v * 3.0 + 1.0);
    let written = ModelProto::decode(write_fused(&bytes, &fused).unwrap().as_slice()).unwrap();
    let node = &written.graph.unwrap().node[0];
    assert_eq!(node.op_type.as_deref(), Some("Constant"));
    assert_eq!(
        node.attribute[0].t.as_ref().unwrap().float_data,
        [4.0, 1.0, 1.0, 4.0]
    );
}
