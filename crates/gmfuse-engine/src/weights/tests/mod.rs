//! Tests of the safetensors reader and writer: rejections of malformed files, round trips,
//! rounding, interoperability with the `safetensors` crate and the seed models.

mod reject;
mod roundtrip;
mod stream;

/// A safetensors file from a header text and a data section, byte by byte.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Little-endian bytes of F32 values.
fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
