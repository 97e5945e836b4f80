//! Reading datasets: IDX files (gzipped or raw) and safetensors `images` / `labels`.
//!
//! Uploads are untrusted: every size is checked before it is used, IDX files are read as streams
//! whose decompression stops at their declared size (see [`super::stream`]), no file may hold
//! more than [`MAX_DATASET_VALUES`] values, and any inconsistency is an [`EvalError::Invalid`]
//! with a one-line reason.

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors};

use super::stream::MAX_DATASET_VALUES;
use super::{Dataset, EvalError};

fn invalid(reason: impl Into<String>) -> EvalError {
    EvalError::Invalid(reason.into())
}

/// `[n, H, W]` or `[n, C, H, W]` → (`n`, `[C, H, W]`), rejecting zero dimensions.
pub(super) fn sample_shape(dims: &[usize], what: &str) -> Result<(usize, [usize; 3]), EvalError> {
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

pub(super) fn assemble(
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
    super::stream::from_idx_readers(name, images, labels)
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
    let values = n.saturating_mul(shape.iter().product::<usize>());
    if values > MAX_DATASET_VALUES {
        return Err(invalid(format!(
            "images: shape {:?} holds {values} values, more than {MAX_DATASET_VALUES}",
            img.shape()
        )));
    }
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
