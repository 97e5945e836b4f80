//! `auto_pad`: `SAME_UPPER`/`SAME_LOWER` on a Conv or pool read as the explicit symmetric pads
//! they amount to (ONNX: output `ceil(len / stride)`, total padding
//! `(out - 1)·stride + kernel - len`), `VALID` as none, and an odd total refused.

use super::layouts::{attr_i, attr_ints, floats, model, op};
use crate::onnx::proto::{AttributeProto, attribute_proto::AttributeType};
use crate::onnx::{OnnxError, read};

fn auto_pad(mode: &str) -> AttributeProto {
    AttributeProto {
        name: Some("auto_pad".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(mode.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// Conv 3×3 (stride 1) then MaxPool 3×3 stride 2 over a `[N, 1, 7, 7]` input, padded by
/// `conv_pad`/`pool_pad` attributes.
fn net(conv_pad: AttributeProto, pool_pad: AttributeProto) -> Vec<u8> {
    let w: Vec<f32> = (0..18).map(|i| (i as f32 - 8.0) / 8.0).collect();
    model(
        &[1, 1, 7, 7],
        vec![
            op(
                "Conv",
                &["x", "w"],
                "c",
                vec![attr_ints("kernel_shape", &[3, 3]), conv_pad],
            ),
            op(
                "MaxPool",
                &["c"],
                "y",
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("strides", &[2, 2]),
                    pool_pad,
                ],
            ),
        ],
        vec![floats("w", &[2, 1, 3, 3], &w)],
    )
}

#[test]
fn same_auto_pad_reads_as_the_symmetric_pads_it_amounts_to() {
    // Conv: 7 → 7 needs 2 in all (1 a side); pool: ceil(7 / 2) = 4, (4 - 1)·2 + 3 - 7 = 2.
    let explicit = read(&net(
        attr_ints("pads", &[1, 1, 1, 1]),
        attr_ints("pads", &[1, 1, 1, 1]),
    ))
    .unwrap();
    for mode in ["SAME_UPPER", "SAME_LOWER"] {
        let m = read(&net(auto_pad(mode), auto_pad(mode))).unwrap();
        assert_eq!(m.spec, explicit.spec, "{mode}");
    }
    let valid = read(&net(auto_pad("VALID"), attr_i("ceil_mode", 0))).unwrap();
    let none = read(&net(attr_ints("pads", &[0; 4]), attr_i("ceil_mode", 0))).unwrap();
    assert_eq!(valid.spec, none.spec);
}

#[test]
fn same_auto_pad_of_an_odd_total_is_refused_as_asymmetric() {
    // A 2×2 kernel at stride 1 over 5×5: (5 - 1)·1 + 2 - 5 = 1 in all (odd).
    let bytes = model(
        &[1, 1, 5, 5],
        vec![op(
            "MaxPool",
            &["x"],
            "y",
            vec![attr_ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        )],
        vec![],
    );
    match read(&bytes) {
        Err(OnnxError::Unsupported { node, reason, .. }) => {
            assert_eq!(node, "MaxPool_y");
            assert!(reason.contains("by [1, 1] in all"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
