//! Reading datasets: IDX files (gzipped or raw) and safetensors `images` / `labels`.
//!
//! Uploads are untrusted: every size is checked before it is used, decompression is capped at
//! [`MAX_DECODED_BYTES`], and any inconsistency is an [`EvalError::Invalid`] with a one-line reason.

use std::borrow::Cow;
use std::io::Read;

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors};

use super::{Dataset, EvalError};

/// Largest decompressed IDX file accepted (bytes).
pub const MAX_DECODED_BYTES: usize = 256 << 20;

fn invalid(reason: impl Into<String>) -> EvalError {
    EvalError::Invalid(reason.into())
}

/// The bytes themselves, or their gzip decompression when they start with the gzip magic `1f 8b`.
fn gunzip<'a>(bytes: &'a [u8], what: &str) -> Result<Cow<'a, [u8]>, EvalError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("{what}: bad gzip data: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(invalid(format!(
            "{what}: decompresses to more than {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(Cow::Owned(out))
}

/// Split an IDX file into its dimensions and its u8 data; `magics` are the accepted magic
/// numbers (`0x0000_08nn`: unsigned bytes, `nn` dimensions).
fn idx<'a>(
    bytes: &'a [u8],
    what: &str,
    magics: &[u32],
) -> Result<(Vec<usize>, &'a [u8]), EvalError> {
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let magic = word(0).ok_or_else(|| invalid(format!("{what}: too short for an IDX header")))?;
    if !magics.contains(&magic) {
        return Err(invalid(format!(
            "{what}: IDX magic number {magic} (0x{magic:08x}), expected one of {magics:?}"
        )));
    }
    let ndims = (magic & 0xff) as usize;
    let mut dims = Vec::with_capacity(ndims);
    for i in 1..=ndims {
        let d = word(i).ok_or_else(|| invalid(format!("{what}: IDX header is truncated")))?;
        dims.push(d as usize);
    }
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid(format!("{what}: dimensions {dims:?} overflow")))?;
    let data = &bytes[4 + 4 * ndims..];
    if data.len() != count {
        return Err(invalid(format!(
            "{what}: dimensions {dims:?} need {count} bytes of data, the file has {}",
            data.len()
        )));
    }
    Ok((dims, data))
}

/// `[n, H, W]` or `[n, C, H, W]` → (`n`, `[C, H, W]`), rejecting zero dimensions.
fn sample_shape(dims: &[usize], what: &str) -> Result<(usize, [usize; 3]), EvalError> {
    let (n, shape) = match *dims {
        [n, h, w] => (n, [1, h, w]),
        [n, c, h, w] => (n, [c, h, w]),
        _ => {
            return Err(invalid(format!(
                "{what}: expected shape [n, H, W] or [n, C, H, W], got {dims:?}"
            )));
        }
    };
    if n == 0 {
        return Err(invalid(format!("{what}: the dataset has no samples")));
    }
    if shape.contains(&0) {
        return Err(invalid(format!(
            "{what}: sample shape {shape:?} has a zero dimension"
        )));
    }
    Ok((n, shape))
}

fn assemble(
    name: &str,
    n: usize,
    shape: [usize; 3],
    pixels: Vec<f32>,
    labels: Vec<u32>,
) -> Result<Dataset, EvalError> {
    if labels.len() != n {
        return Err(invalid(format!("{} labels for {n} images", labels.len())));
    }
    let len = shape.iter().product::<usize>();
    let images = Array2::from_shape_vec((n, len), pixels).expect("length checked by the reader");
    Ok(Dataset {
        name: name.to_string(),
        shape,
        images,
        labels,
    })
}

/// See [`Dataset::from_idx`].
pub(super) fn from_idx(name: &str, images: &[u8], labels: &[u8]) -> Result<Dataset, EvalError> {
    let raw = gunzip(images, "images")?;
    let (dims, data) = idx(&raw, "images", &[2051, 2052])?;
    let (n, shape) = sample_shape(&dims, "images")?;
    let pixels = data.iter().map(|&p| f32::from(p) / 255.0).collect();
    let raw = gunzip(labels, "labels")?;
    let (_, data) = idx(&raw, "labels", &[2049])?;
    assemble(
        name,
        n,
        shape,
        pixels,
        data.iter().map(|&l| u32::from(l)).collect(),
    )
}

/// Little-endian elements of `width` bytes, converted by `f`.
fn elems<T>(data: &[u8], width: usize, f: impl Fn(&[u8]) -> T) -> Vec<T> {
    data.chunks_exact(width).map(f).collect()
}

/// See [`Dataset::from_safetensors`].
pub(super) fn from_safetensors(name: &str, bytes: &[u8]) -> Result<Dataset, EvalError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| invalid(format!("safetensors: {e}")))?;
    if let Some(other) = st
        .names()
        .into_iter()
        .find(|n| !["images", "labels"].contains(n))
    {
        return Err(invalid(format!(
            "unexpected tensor `{other}`: a dataset holds only `images` and `labels`"
        )));
    }
    let get = |n: &str| {
        st.tensor(n)
            .map_err(|_| invalid(format!("tensor `{n}` is missing")))
    };
    let (img, lab) = (get("images")?, get("labels")?);
    let (n, shape) = sample_shape(img.shape(), "images")?;
    let d = img.data();
    let pixels: Vec<f32> = match img.dtype() {
        Dtype::U8 => d.iter().map(|&p| f32::from(p) / 255.0).collect(),
        Dtype::F32 => elems(d, 4, |b| f32::from_le_bytes(b.try_into().expect("4"))),
        Dtype::F64 => elems(d, 8, |b| {
            f64::from_le_bytes(b.try_into().expect("8")) as f32
        }),
        Dtype::F16 => elems(d, 2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        Dtype::BF16 => elems(d, 2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        other => {
            return Err(invalid(format!(
                "images: dtype {other} is not supported (U8, F16, BF16, F32, F64)"
            )));
        }
    };
    if let Some(i) = pixels.iter().position(|p| !p.is_finite()) {
        return Err(invalid(format!(
            "images: value {} at index {i} is not finite",
            pixels[i]
        )));
    }
    if lab.shape().len() != 1 {
        return Err(invalid(format!(
            "labels: expected shape [n], got {:?}",
            lab.shape()
        )));
    }
    let d = lab.data();
    let wide: Vec<i128> = match lab.dtype() {
        Dtype::U8 => elems(d, 1, |b| i128::from(b[0])),
        Dtype::I8 => elems(d, 1, |b| i128::from(b[0] as i8)),
        Dtype::U16 => elems(d, 2, |b| i128::from(u16::from_le_bytes([b[0], b[1]]))),
        Dtype::I16 => elems(d, 2, |b| i128::from(i16::from_le_bytes([b[0], b[1]]))),
        Dtype::U32 => elems(d, 4, |b| {
            i128::from(u32::from_le_bytes(b.try_into().expect("4")))
        }),
        Dtype::I32 => elems(d, 4, |b| {
            i128::from(i32::from_le_bytes(b.try_into().expect("4")))
        }),
        Dtype::U64 => elems(d, 8, |b| {
            i128::from(u64::from_le_bytes(b.try_into().expect("8")))
        }),
        Dtype::I64 => elems(d, 8, |b| {
            i128::from(i64::from_le_bytes(b.try_into().expect("8")))
        }),
        other => {
            return Err(invalid(format!(
                "labels: dtype {other} is not an integer type"
            )));
        }
    };
    let labels = wide
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            u32::try_from(l)
                .map_err(|_| invalid(format!("labels: value {l} at index {i} is out of range")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    assemble(name, n, shape, pixels, labels)
}
