//! One hand-built malformed file per rejection; expected errors follow from the bytes written.

use super::{f32_bytes, file};
use crate::weights::{
    DType, MAX_HEADER_BYTES, TensorInfo, WeightSet, WeightsError, inspect, read_header_len,
};

fn err(bytes: &[u8]) -> WeightsError {
    WeightSet::from_bytes(bytes).expect_err("file must be rejected")
}

/// A one-tensor header `{"<name>": {"dtype": .., "shape": .., "data_offsets": ..}}`.
fn one(name: &str, dtype: &str, shape: &str, offsets: &str) -> String {
    format!(r#"{{"{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
}

#[test]
fn rejects_file_shorter_than_the_length_prefix() {
    assert_eq!(err(&[1, 2, 3]), WeightsError::HeaderTooShort { len: 3 });
    assert_eq!(
        read_header_len(&[]),
        Err(WeightsError::HeaderTooShort { len: 0 })
    );
}

#[test]
fn rejects_header_length_that_runs_past_the_file() {
    let mut bytes = file("{}", &[]);
    bytes[..8].copy_from_slice(&100u64.to_le_bytes());
    let expected = WeightsError::HeaderBeyondFile {
        len: 100,
        available: 2,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_header_length_over_the_maximum() {
    let len = MAX_HEADER_BYTES as u64 + 1;
    let expected = WeightsError::HeaderTooLarge {
        len,
        max: MAX_HEADER_BYTES,
    };
    assert_eq!(read_header_len(&len.to_le_bytes()), Err(expected.clone()));
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_eq!(err(&bytes), expected);
    let at_max = (MAX_HEADER_BYTES as u64).to_le_bytes();
    assert_eq!(read_header_len(&at_max), Ok(MAX_HEADER_BYTES as u64));
}

#[test]
fn rejects_truncated_data_section() {
    // F32 [4] needs 16 bytes; the file stops after 8.
    let bytes = file(&one("w", "F32", "[4]", "[0,16]"), &f32_bytes(&[1.0, 2.0]));
    let expected = WeightsError::OffsetsOutOfBounds {
        name: "w".into(),
        start: 0,
        end: 16,
        data_len: 8,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_header_that_is_not_utf8() {
    let mut bytes = file(r#"{"a?":{}}"#, &[]);
    bytes[8 + 3] = 0xFF;
    assert_eq!(err(&bytes), WeightsError::HeaderNotUtf8 { at: 3 });
}

#[test]
fn rejects_header_that_is_not_json() {
    assert!(matches!(
        err(&file("{not json", &[])),
        WeightsError::HeaderNotJson(_)
    ));
    assert!(matches!(
        err(&file("", &[])),
        WeightsError::HeaderNotJson(_)
    ));
    assert_eq!(err(&file("[1, 2]", &[])), WeightsError::HeaderNotObject);
}

#[test]
fn rejects_offsets_out_of_bounds() {
    let bytes = file(&one("w", "F32", "[1]", "[8,12]"), &f32_bytes(&[1.0, 2.0]));
    let expected = WeightsError::OffsetsOutOfBounds {
        name: "w".into(),
        start: 8,
        end: 12,
        data_len: 8,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_offsets_whose_end_precedes_their_start() {
    let bytes = file(&one("w", "F32", "[1]", "[4,0]"), &f32_bytes(&[1.0]));
    let expected = WeightsError::OffsetsReversed {
        name: "w".into(),
        start: 4,
        end: 0,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_overlapping_tensors() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                     "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let bytes = file(header, &f32_bytes(&[1.0, 2.0, 3.0]));
    let expected = WeightsError::Overlap {
        name: "b".into(),
        start: 4,
        other: "a".into(),
        other_end: 8,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_holes_between_or_before_tensors() {
    let header = r#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},
                     "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let bytes = file(header, &f32_bytes(&[1.0, 2.0, 3.0]));
    let expected = WeightsError::Hole {
        name: "b".into(),
        hole_start: 4,
        start: 8,
    };
    assert_eq!(err(&bytes), expected);

    let bytes = file(&one("a", "F32", "[1]", "[4,8]"), &f32_bytes(&[1.0, 2.0]));
    let expected = WeightsError::Hole {
        name: "a".into(),
        hole_start: 0,
        start: 4,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_byte_span_that_disagrees_with_dtype_and_shape() {
    // F32 [3] is 12 bytes, the span is 8.
    let bytes = file(&one("w", "F32", "[3]", "[0,8]"), &f32_bytes(&[1.0, 2.0]));
    let expected = WeightsError::SizeMismatch {
        name: "w".into(),
        expected: 12,
        got: 8,
    };
    assert_eq!(err(&bytes), expected);
    // BF16 [2] is 4 bytes, the span is 8.
    let bytes = file(&one("h", "BF16", "[2]", "[0,8]"), &[0; 8]);
    let expected = WeightsError::SizeMismatch {
        name: "h".into(),
        expected: 4,
        got: 8,
    };
    assert_eq!(err(&bytes), expected);
}

#[test]
fn rejects_shape_whose_byte_size_overflows() {
    // 2^32 · 2^32 · 4 bytes = 2^66 > u64::MAX.
    let shape = format!("[{},{},1]", 1u64 << 32, 1u64 << 32);
    let bytes = file(&one("w", "F32", &shape, "[0,0]"), &[]);
    assert_eq!(
        err(&bytes),
        WeightsError::ShapeOverflow { name: "w".into() }
    );
}

#[test]
fn rejects_trailing_bytes_after_the_last_tensor() {
    let mut data = f32_bytes(&[1.0]);
    data.extend_from_slice(&[0, 0]);
    let bytes = file(&one("w", "F32", "[1]", "[0,4]"), &data);
    let expected = WeightsError::TrailingBytes {
        trailing: 2,
        data_len: 6,
    };
    assert_eq!(err(&bytes), expected);
    let expected = WeightsError::TrailingBytes {
        trailing: 3,
        data_len: 3,
    };
    assert_eq!(err(&file("{}", &[1, 2, 3])), expected);
}

#[test]
fn rejects_duplicate_tensor_names() {
    let header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                     "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let bytes = file(header, &f32_bytes(&[1.0]));
    assert_eq!(err(&bytes), WeightsError::DuplicateName("a".into()));
    assert_eq!(
        inspect(&bytes),
        Err(WeightsError::DuplicateName("a".into()))
    );
    // Why the check is ours: the safetensors crate keeps the last entry and accepts the file.
    let loose = safetensors::SafeTensors::deserialize(&bytes).expect("crate accepts it");
    assert_eq!(loose.names(), ["a"]);

    let header = r#"{"__metadata__":{},"__metadata__":{}}"#;
    let expected = WeightsError::DuplicateName("__metadata__".into());
    assert_eq!(err(&file(header, &[])), expected);
}

#[test]
fn rejects_nan_and_infinite_values_but_inspect_accepts_them() {
    let cases: [(&str, Vec<u8>, usize); 4] = [
        ("F32", f32_bytes(&[1.0, -2.0, f32::NAN]), 2),
        ("F32", f32_bytes(&[f32::INFINITY, 0.0, 0.0]), 0),
        (
            "F16",
            [1.0, f32::NEG_INFINITY, 0.5]
                .map(half::f16::from_f32)
                .iter()
                .flat_map(|h| h.to_le_bytes())
                .collect(),
            1,
        ),
        (
            "BF16",
            [0.0, 0.0, f32::NAN]
                .map(half::bf16::from_f32)
                .iter()
                .flat_map(|h| h.to_le_bytes())
                .collect(),
            2,
        ),
    ];
    for (dtype, data, index) in cases {
        let offsets = format!("[0,{}]", data.len());
        let bytes = file(&one("w", dtype, "[3]", &offsets), &data);
        let expected = WeightsError::NonFinite {
            name: "w".into(),
            index,
        };
        assert_eq!(err(&bytes), expected, "{dtype}");
        let dtype = DType::from_name(dtype).unwrap();
        let info = TensorInfo {
            name: "w".into(),
            dtype,
            shape: vec![3],
        };
        assert_eq!(inspect(&bytes), Ok(vec![info]));
    }
}

#[test]
fn rejects_unsupported_dtypes() {
    for dtype in ["I64", "U8", "BOOL", "F8_E4M3", "f32", "Q4"] {
        let bytes = file(&one("w", dtype, "[1]", "[0,8]"), &[0; 8]);
        let expected = WeightsError::UnsupportedDtype {
            name: "w".into(),
            dtype: dtype.into(),
        };
        assert_eq!(err(&bytes), expected);
    }
}

#[test]
fn rejects_metadata_that_is_not_a_string_map() {
    for header in [
        r#"{"__metadata__":{"epochs":3}}"#,
        r#"{"__metadata__":["a"]}"#,
        r#"{"__metadata__":{"k":"a","k":"b"}}"#,
    ] {
        let e = err(&file(header, &[]));
        assert!(matches!(e, WeightsError::BadMetadata(_)), "{header}: {e}");
    }
}

#[test]
fn rejects_malformed_tensor_entries() {
    let cases = [
        (
            r#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#,
            "missing field `dtype`",
        ),
        (
            r#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#,
            "missing field `shape`",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1]}}"#,
            "missing field `data_offsets`",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#,
            "unknown field `x`",
        ),
        (
            r#"{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            "duplicate field `dtype`",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            "a negative integer",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#,
            "a non-integer number",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}"#,
            "3 entries, not 2",
        ),
        (
            r#"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#,
            "`dtype` is an unsigned integer",
        ),
        (r#"{"w":[1]}"#, "expected an object, found an array"),
    ];
    for (header, reason) in cases {
        match err(&file(header, &f32_bytes(&[1.0]))) {
            WeightsError::BadTensorEntry { name, reason: got } => {
                assert_eq!(name, "w");
                assert!(got.contains(reason), "{header}: {got}");
            }
            other => panic!("{header}: {other}"),
        }
    }
}

#[test]
fn accepts_empty_files_padding_and_zero_sized_tensors() {
    assert_eq!(
        WeightSet::from_bytes(&file("{}", &[])),
        Ok(WeightSet::default())
    );
    let meta = WeightSet::from_bytes(&file(r#"{"__metadata__":{"k":"v"}}   "#, &[])).unwrap();
    assert!(meta.tensors.is_empty());
    assert_eq!(meta.metadata["k"], "v");

    let header = r#"{"e":{"dtype":"F64","shape":[0,3],"data_offsets":[0,0]},
                     "s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}  "#;
    let w = WeightSet::from_bytes(&file(header, &f32_bytes(&[2.5]))).unwrap();
    assert_eq!(w.shapes()["e"], [0, 3]);
    assert_eq!(
        w.tensor("s")
            .unwrap()
            .data
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [2.5]
    );
}

#[test]
fn error_messages_are_one_line_and_name_the_tensor() {
    let errors = [
        err(&file(&one("fc1.weight", "F32", "[3]", "[0,8]"), &[0; 8])),
        err(&file(&one("fc1.weight", "I64", "[1]", "[0,8]"), &[0; 8])),
        err(&file(
            &one("fc1.weight", "F32", "[1]", "[0,4]"),
            &f32_bytes(&[f32::NAN]),
        )),
        err(&file(&one("fc1.weight", "F32", "[1]", "[4,8]"), &[0; 8])),
        WeightSet::default().tensor("fc1.weight").unwrap_err(),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(
            text.contains("`fc1.weight`") && !text.contains('\n'),
            "{text}"
        );
    }
}
