//! Validating a safetensors dataset (`images` + `labels`) as a stream, in bounded memory: the
//! header (at most [`MAX_HEADER_BYTES`](crate::weights::MAX_HEADER_BYTES)) is parsed and
//! its layout checked against the file's size, then the data section is read in chunks — every
//! float pixel must be finite, every label an integer that fits `u32` — without keeping it.

use std::io::Read;

use safetensors::Dtype;
use safetensors::tensor::Metadata;

use super::EvalError;
use super::stream::{DatasetInfo, MAX_DATASET_VALUES};
use crate::weights::MAX_HEADER_BYTES;

fn invalid(reason: impl Into<String>) -> EvalError {
    EvalError::Invalid(reason.into())
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), EvalError> {
    r.read_exact(buf)
        .map_err(|e| invalid(format!("safetensors: {what}: {e}")))
}

/// One tensor's span and how to check its elements.
struct Span {
    name: String,
    dtype: Dtype,
    start: usize,
    end: usize,
}

/// Scan a safetensors dataset of `total` bytes read from `r`.
///
/// # Errors
/// [`EvalError::Invalid`] with the reason.
pub fn scan_safetensors(mut r: impl Read, total: u64) -> Result<DatasetInfo, EvalError> {
    let mut len = [0u8; 8];
    read_exact(&mut r, &mut len, "too short for the header length")?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES as u64 || n > total.saturating_sub(8) {
        return Err(invalid(format!(
            "safetensors: header length {n} is over the limit or past the end of the file"
        )));
    }
    let mut header = vec![0u8; n as usize];
    read_exact(&mut r, &mut header, "header truncated")?;
    let text = std::str::from_utf8(&header).map_err(|e| invalid(format!("safetensors: {e}")))?;
    let meta: Metadata =
        serde_json::from_str(text).map_err(|e| invalid(format!("safetensors: {e}")))?;
    let tensors = meta.tensors();
    if let Some(other) = tensors
        .keys()
        .find(|k| !["images", "labels"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unexpected tensor `{other}`: a dataset holds only `images` and `labels`"
        )));
    }
    let get = |name: &str| {
        tensors
            .get(name)
            .ok_or_else(|| invalid(format!("tensor `{name}` is missing")))
    };
    let (img, lab) = (get("images")?, get("labels")?);
    if !matches!(
        img.dtype,
        Dtype::U8 | Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64
    ) {
        return Err(invalid(format!(
            "images: dtype {} is not supported (U8, F16, BF16, F32, F64)",
            img.dtype
        )));
    }
    let integer = [
        Dtype::U8,
        Dtype::I8,
        Dtype::U16,
        Dtype::I16,
        Dtype::U32,
        Dtype::I32,
    ];
    if !integer.contains(&lab.dtype) && !matches!(lab.dtype, Dtype::U64 | Dtype::I64) {
        return Err(invalid(format!(
            "labels: dtype {} is not an integer type",
            lab.dtype
        )));
    }
    let (samples, shape) = super::read::sample_shape(&img.shape, "images")?;
    let values = samples.saturating_mul(shape.iter().product::<usize>());
    if values > MAX_DATASET_VALUES {
        return Err(invalid(format!(
            "images: shape {:?} holds {values} values, more than {MAX_DATASET_VALUES}",
            img.shape
        )));
    }
    if lab.shape.len() != 1 {
        return Err(invalid(format!(
            "labels: expected shape [n], got {:?}",
            lab.shape
        )));
    }
    if lab.shape[0] != samples {
        return Err(invalid(format!(
            "{} labels for {samples} images",
            lab.shape[0]
        )));
    }
    let data_len = usize::try_from(total - 8 - n).unwrap_or(usize::MAX);
    let mut spans: Vec<Span> = [("images", img), ("labels", lab)]
        .into_iter()
        .map(|(name, t)| Span {
            name: name.to_string(),
            dtype: t.dtype,
            start: t.data_offsets.0,
            end: t.data_offsets.1,
        })
        .collect();
    spans.sort_by_key(|s| s.start);
    let mut cursor = 0;
    for s in &spans {
        if s.start != cursor {
            return Err(invalid(format!(
                "safetensors: tensor `{}` starts at {} instead of {cursor}",
                s.name, s.start
            )));
        }
        cursor = s.end;
    }
    for (name, t) in [("images", img), ("labels", lab)] {
        let bytes = t
            .shape
            .iter()
            .try_fold(t.dtype.bitsize() / 8, |a, &d| a.checked_mul(d));
        if bytes != Some(t.data_offsets.1 - t.data_offsets.0) {
            return Err(invalid(format!(
                "safetensors: tensor `{name}` spans {} bytes, its dtype and shape need {bytes:?}",
                t.data_offsets.1 - t.data_offsets.0
            )));
        }
    }
    if cursor != data_len {
        return Err(invalid(format!(
            "safetensors: the tensors cover {cursor} bytes, the data section has {data_len}"
        )));
    }
    let mut labels = [u32::MAX, 0u32];
    let mut buf = vec![0u8; 64 << 10];
    for span in &spans {
        let size = span.dtype.bitsize() / 8;
        let mut left = span.end - span.start;
        let mut index = 0usize;
        let mut carry: Vec<u8> = Vec::with_capacity(8);
        while left > 0 {
            let take = left.min(buf.len());
            read_exact(&mut r, &mut buf[..take], "data truncated")?;
            left -= take;
            carry.extend_from_slice(&buf[..take]);
            let whole = carry.len() / size * size;
            for element in carry[..whole].chunks_exact(size) {
                check(span, element, index, &mut labels)?;
                index += 1;
            }
            carry.drain(..whole);
        }
    }
    Ok(DatasetInfo {
        samples: samples as u64,
        shape,
        min_label: if samples == 0 { 0 } else { labels[0] },
        max_label: labels[1],
    })
}

/// One element of `span`: a finite pixel, or a label in `u32` (widening `[min, max]`).
fn check(span: &Span, b: &[u8], index: usize, labels: &mut [u32; 2]) -> Result<(), EvalError> {
    let what = span.name.as_str();
    if what == "images" {
        let v = match span.dtype {
            Dtype::U8 => return Ok(()),
            Dtype::F32 => f64::from(f32::from_le_bytes(b.try_into().expect("4"))),
            Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8")),
            Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
            Dtype::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            other => {
                return Err(invalid(format!(
                    "images: dtype {other} is not supported (U8, F16, BF16, F32, F64)"
                )));
            }
        };
        if !v.is_finite() {
            return Err(invalid(format!(
                "images: value {v} at index {index} is not finite"
            )));
        }
        return Ok(());
    }
    let wide: i128 = match span.dtype {
        Dtype::U8 => i128::from(b[0]),
        Dtype::I8 => i128::from(b[0] as i8),
        Dtype::U16 => i128::from(u16::from_le_bytes([b[0], b[1]])),
        Dtype::I16 => i128::from(i16::from_le_bytes([b[0], b[1]])),
        Dtype::U32 => i128::from(u32::from_le_bytes(b.try_into().expect("4"))),
        Dtype::I32 => i128::from(i32::from_le_bytes(b.try_into().expect("4"))),
        Dtype::U64 => i128::from(u64::from_le_bytes(b.try_into().expect("8"))),
        Dtype::I64 => i128::from(i64::from_le_bytes(b.try_into().expect("8"))),
        other => {
            return Err(invalid(format!(
                "labels: dtype {other} is not an integer type"
            )));
        }
    };
    let l = u32::try_from(wide).map_err(|_| {
        invalid(format!(
            "labels: value {wide} at index {index} is out of range"
        ))
    })?;
    labels[0] = labels[0].min(l);
    labels[1] = labels[1].max(l);
    Ok(())
}
