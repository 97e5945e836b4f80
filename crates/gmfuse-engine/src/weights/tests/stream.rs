//! The streaming check gives `from_bytes`'s verdict for every file and every chunking.

use super::{f32_bytes, file};
use crate::weights::{StreamCheck, TensorInfo, WeightSet, WeightsError, inspect};

fn whole(bytes: &[u8]) -> Result<Vec<TensorInfo>, WeightsError> {
    WeightSet::from_bytes(bytes).map(|_| inspect(bytes).expect("valid header"))
}

fn streamed(bytes: &[u8], chunk: usize) -> Result<Vec<TensorInfo>, WeightsError> {
    let mut check = StreamCheck::new(bytes.len() as u64);
    bytes.chunks(chunk.max(1)).try_for_each(|c| check.feed(c))?;
    check.finish()
}

/// Valid files of several dtypes, then single-byte and truncation mutations of each.
fn bodies() -> Vec<Vec<u8>> {
    let mut data = f32_bytes(&[1.0, -2.0, 0.5, 3.0, 4.0, 5.0]);
    data.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
    data.extend_from_slice(&half::bf16::from_f32(-7.0).to_le_bytes());
    data.extend_from_slice(&2.5f64.to_le_bytes());
    let header = r#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"h":{"dtype":"F16","shape":[1],"data_offsets":[24,26]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[26,28]},"d":{"dtype":"F64","shape":[1],"data_offsets":[28,36]},"z":{"dtype":"F32","shape":[0],"data_offsets":[36,36]}}"#;
    let valid = file(header, &data);
    let mut out = vec![valid.clone(), file("{}", &[]), vec![], vec![1, 2, 3]];
    for i in 0..valid.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut m = valid.clone();
            m[i] ^= flip;
            out.push(m);
        }
    }
    for cut in [0, 5, 8, 20, valid.len() - 1] {
        out.push(valid[..cut].to_vec());
    }
    let mut nan = valid.clone();
    let at = valid.len() - 36 + 8;
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    out.push(nan);
    let mut extra = valid;
    extra.extend_from_slice(&[0; 4]);
    out.push(extra);
    out
}

#[test]
fn streaming_verdicts_equal_whole_file_verdicts_for_every_chunking() {
    let bodies = bodies();
    assert!(bodies.len() > 1000, "{}", bodies.len());
    let mut rejected = 0;
    for body in &bodies {
        let expected = whole(body);
        rejected += usize::from(expected.is_err());
        for chunk in [1, 2, 3, 7, 64, body.len()] {
            assert_eq!(streamed(body, chunk), expected, "chunk {chunk} of {body:?}");
        }
    }
    assert!(rejected > 500, "{rejected}");
}

#[test]
fn a_nan_in_the_middle_of_a_chunk_boundary_is_found_with_its_index() {
    let mut data = f32_bytes(&[0.0; 5]);
    data[12..16].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let bytes = file(
        r#"{"w":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}"#,
        &data,
    );
    let expected = Err(WeightsError::NonFinite {
        name: "w".into(),
        index: 3,
    });
    for chunk in 1..bytes.len() {
        assert_eq!(streamed(&bytes, chunk), expected, "chunk {chunk}");
    }
}

#[test]
fn a_huge_declared_header_is_refused_before_anything_is_buffered() {
    let mut check = StreamCheck::new(1 << 40);
    let err = check.feed(&(1u64 << 39).to_le_bytes()).unwrap_err();
    assert!(matches!(err, WeightsError::HeaderTooLarge { .. }), "{err}");
}

#[test]
fn a_header_of_a_million_tiny_values_is_refused_not_parsed_into_memory() {
    // 2 MB of `0,`: far under the header size limit, over the value budget.
    let header = format!(r#"{{"a":[{}0]}}"#, "0,".repeat(1_000_000));
    let bytes = file(&header, &[]);
    let err = streamed(&bytes, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("JSON values"), "{err}");
}
