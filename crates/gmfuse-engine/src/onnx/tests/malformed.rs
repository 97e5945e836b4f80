//! Hostile bytes: random and truncated files, huge declared sizes, external data and
//! unsupported ops are refused with an error, never a panic or an oversized allocation.

use proptest::prelude::*;
use prost::Message;

use crate::arch::preset;
use crate::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto, attribute_proto::AttributeType,
};
use crate::onnx::{OnnxError, export, looks_like_onnx, read};
use crate::weights::{DType, Tensor, WeightSet};

/// The mnist-cnn preset with small constant weights, exported.
fn valid() -> Vec<u8> {
    let spec = preset("mnist-cnn").unwrap();
    let mut w = WeightSet::default();
    for (name, shape) in [
        ("conv1.weight", vec![32, 1, 5, 5]),
        ("conv2.weight", vec![64, 32, 5, 5]),
        ("fc1.weight", vec![32, 3136]),
        ("fc2.weight", vec![10, 32]),
    ] {
        w.tensors.insert(
            name.into(),
            Tensor {
                dtype: DType::F32,
                data: ndarray::ArrayD::from_elem(shape, 0.01),
            },
        );
    }
    export(&spec, &w).unwrap()
}

/// A one-node model reading `x` `[1, 3, 8, 8]`: `node` plus `init`.
fn model(node: NodeProto, init: Vec<TensorProto>) -> Vec<u8> {
    let input = ValueInfoProto {
        name: Some("x".into()),
        ..Default::default()
    };
    let mut input = input;
    input.r#type = ModelProto::decode(valid().as_slice())
        .unwrap()
        .graph
        .unwrap()
        .input[0]
        .r#type
        .clone();
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: vec![node],
            input: vec![input],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            initializer: init,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn conv(attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: vec!["x".into(), "w".into()],
        output: vec!["y".into()],
        name: Some("conv0".into()),
        op_type: Some("Conv".into()),
        attribute: attrs,
        ..Default::default()
    }
}

fn weight(dims: Vec<i64>, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some("w".into()),
        dims,
        data_type: Some(1),
        raw_data: Some(raw),
        ..Default::default()
    }
}

#[test]
fn the_sniff_tells_onnx_from_safetensors_and_noise() {
    assert!(looks_like_onnx(&valid()));
    let st = WeightSet::default().to_bytes().unwrap();
    assert!(!looks_like_onnx(&st));
    assert!(!looks_like_onnx(b""));
    assert!(!looks_like_onnx(b"{\"a\": 1}"));
}

#[test]
fn huge_declared_sizes_are_refused_before_allocation() {
    let e = read(&model(
        conv(vec![]),
        vec![weight(vec![1 << 20, 1 << 20, 3, 3], vec![])],
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            OnnxError::TooLarge {
                what: "tensor elements",
                ..
            }
        ),
        "{e}"
    );
    let e = read(&model(
        conv(vec![]),
        vec![weight(vec![4, 3, 3, 3], vec![0; 12])],
    ))
    .unwrap_err();
    assert!(matches!(e, OnnxError::BadTensor { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "tensor `w`: raw_data holds 3 values, its dims call for 108"
    );
    let e = read(&model(
        conv(vec![]),
        vec![weight(vec![-1, 3, 3, 3], vec![])],
    ))
    .unwrap_err();
    assert!(matches!(e, OnnxError::BadTensor { .. }), "{e}");
}

#[test]
fn external_data_and_depthwise_convolutions_are_refused_naming_tensor_and_node() {
    let mut w = weight(vec![4, 3, 3, 3], vec![]);
    w.data_location = Some(1);
    w.external_data = vec![crate::onnx::proto::StringStringEntryProto {
        key: Some("location".into()),
        value: Some("w.bin".into()),
    }];
    let e = read(&model(conv(vec![]), vec![w])).unwrap_err();
    assert_eq!(
        e,
        OnnxError::ExternalData {
            tensor: "w".into(),
            location: "w.bin".into()
        }
    );
    assert!(e.to_string().contains("multipart/form-data part"), "{e}");
    assert!(e.is_unsupported());
    let group = AttributeProto {
        name: Some("group".into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(3),
        ..Default::default()
    };
    let e = read(&model(
        conv(vec![group]),
        vec![weight(vec![3, 1, 3, 3], vec![0; 108])],
    ))
    .unwrap_err();
    let OnnxError::Unsupported { node, op_type, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!((node.as_str(), op_type.as_str()), ("conv0", "Conv"));
    assert!(
        e.to_string().starts_with(
            "node `conv0` (Conv) is not supported: grouped or depthwise convolution (group = 3)"
        ),
        "{e}"
    );
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error_or_a_model() {
    let bytes = valid();
    for cut in (0..bytes.len()).step_by(97) {
        let _ = read(&bytes[..cut]);
    }
    assert!(read(&bytes).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read(&bytes);
    }

    #[test]
    fn flipped_bytes_of_a_valid_file_never_panic(at in 0usize..4000, v in any::<u8>()) {
        let mut bytes = valid();
        let n = bytes.len();
        bytes[at % n] = v;
        let _ = read(&bytes);
    }
}
