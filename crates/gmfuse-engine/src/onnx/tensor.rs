//! ONNX `TensorProto` ↔ gmfuse [`Tensor`]: float weights (float, float16, bfloat16, double; in
//! `raw_data` or the typed fields) and small integer tensors (shapes, pads). Every size is checked
//! against [`super::limits`] before anything is allocated; external data that was not inlined
//! ([`super::inline_external`]) is refused.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::error::OnnxError;
use super::limits::{self, Budget};
use super::proto::TensorProto;
use crate::weights::{DType, Tensor};

/// `TensorProto.DataType` values gmfuse reads.
pub(crate) mod data_type {
    pub const FLOAT: i32 = 1;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const BFLOAT16: i32 = 16;
}

/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// The gmfuse dtype of an ONNX float data type.
fn dtype_of(data_type: i32) -> Option<DType> {
    Some(match data_type {
        data_type::FLOAT => DType::F32,
        data_type::FLOAT16 => DType::F16,
        data_type::BFLOAT16 => DType::BF16,
        data_type::DOUBLE => DType::F64,
        _ => return None,
    })
}

/// The ONNX data type of a gmfuse dtype.
pub(crate) fn onnx_type(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => data_type::FLOAT,
        DType::F16 => data_type::FLOAT16,
        DType::BF16 => data_type::BFLOAT16,
        DType::F64 => data_type::DOUBLE,
    }
}

/// The tensor's dims as sizes, checked against the limits, and their product.
fn checked_dims(t: &TensorProto, name: &str) -> Result<(Vec<usize>, usize), OnnxError> {
    if t.data_location == Some(EXTERNAL) || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|kv| kv.key.as_deref() == Some("location"))
            .and_then(|kv| kv.value.clone())
            .unwrap_or_default();
        return Err(OnnxError::ExternalData {
            tensor: name.to_string(),
            location,
        });
    }
    if t.segment.is_some() {
        return Err(OnnxError::bad_tensor(
            name,
            "segmented tensors are not supported",
        ));
    }
    dims_within_limits(t, |d| {
        OnnxError::bad_tensor(name, format!("negative dim {d}"))
    })
}

/// `t`'s dims as sizes and their element count, within [`limits`]' rank and element caps;
/// `negative` makes the error for a negative dim (the caller names the tensor its own way).
pub(super) fn dims_within_limits(
    t: &TensorProto,
    negative: impl Fn(i64) -> OnnxError,
) -> Result<(Vec<usize>, usize), OnnxError> {
    limits::at_most("tensor rank", t.dims.len(), limits::MAX_RANK)?;
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| negative(d)))
        .collect::<Result<Vec<_>, _>>()?;
    let n = limits::elems("tensor elements", &dims, limits::MAX_TENSOR_ELEMS)?;
    Ok((dims, n))
}

/// `n` values of `size` bytes from `raw_data`, or from the typed field of `typed_len` values.
fn check_count(name: &str, got: usize, n: usize, field: &str) -> Result<(), OnnxError> {
    if got != n {
        return Err(OnnxError::bad_tensor(
            name,
            format!("{field} holds {got} values, its dims call for {n}"),
        ));
    }
    Ok(())
}

/// A float tensor as a gmfuse [`Tensor`] (values widened to `f64`, dtype kept), counted
/// against `budget`. Refuses non-float types, external data and non-finite values.
pub(crate) fn to_tensor(
    t: &TensorProto,
    name: &str,
    budget: &mut Budget,
) -> Result<Tensor, OnnxError> {
    let data_type = t.data_type.unwrap_or(0);
    let dtype = dtype_of(data_type).ok_or_else(|| OnnxError::Dtype {
        tensor: name.to_string(),
        data_type,
    })?;
    let (dims, n) = checked_dims(t, name)?;
    budget.spend(n)?;
    let values: Vec<f64> = match &t.raw_data {
        Some(raw) if !raw.is_empty() || n == 0 => {
            check_count(name, raw.len() / dtype.size(), n, "raw_data")?;
            if raw.len() % dtype.size() != 0 {
                return Err(OnnxError::bad_tensor(
                    name,
                    "raw_data length is not a whole number of values",
                ));
            }
            let chunks = raw.chunks_exact(dtype.size());
            match dtype {
                DType::F32 => chunks
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()).into())
                    .collect(),
                DType::F64 => chunks
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                DType::F16 => chunks
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f64())
                    .collect(),
                DType::BF16 => chunks
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64())
                    .collect(),
            }
        }
        _ => match dtype {
            DType::F32 => {
                check_count(name, t.float_data.len(), n, "float_data")?;
                t.float_data.iter().map(|&v| v.into()).collect()
            }
            DType::F64 => {
                check_count(name, t.double_data.len(), n, "double_data")?;
                t.double_data.clone()
            }
            DType::F16 | DType::BF16 => {
                check_count(name, t.int32_data.len(), n, "int32_data")?;
                t.int32_data
                    .iter()
                    .map(|&v| {
                        let bits = v as u16;
                        if dtype == DType::F16 {
                            f16::from_bits(bits).to_f64()
                        } else {
                            bf16::from_bits(bits).to_f64()
                        }
                    })
                    .collect()
            }
        },
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(OnnxError::bad_tensor(
            name,
            format!("value {i} is not finite"),
        ));
    }
    let data = ArrayD::from_shape_vec(IxDyn(&dims), values).expect("count checked");
    Ok(Tensor { dtype, data })
}

/// An int64 or int32 tensor's values (shapes, pads, axes), at most [`limits::MAX_INT_VALUES`].
pub(crate) fn to_ints(t: &TensorProto, name: &str) -> Result<Vec<i64>, OnnxError> {
    let (_, n) = checked_dims(t, name)?;
    limits::at_most("integer tensor values", n, limits::MAX_INT_VALUES)?;
    let data_type = t.data_type.unwrap_or(0);
    let size = match data_type {
        data_type::INT64 => 8,
        data_type::INT32 => 4,
        _ => {
            return Err(OnnxError::bad_tensor(
                name,
                format!("expected an int64 or int32 tensor, got data type {data_type}"),
            ));
        }
    };
    let values: Vec<i64> = match &t.raw_data {
        Some(raw) if !raw.is_empty() => {
            check_count(name, raw.len() / size, n, "raw_data")?;
            if size == 8 {
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect()
            } else {
                raw.chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().unwrap()).into())
                    .collect()
            }
        }
        _ if size == 8 => t.int64_data.clone(),
        _ => t.int32_data.iter().map(|&v| v.into()).collect(),
    };
    check_count(name, values.len(), n, "the typed field")?;
    Ok(values)
}

/// `original` with its values replaced by `values` (same name, dims, data type and storage:
/// `raw_data` stays `raw_data`, a typed field stays that field); every other field kept.
pub(crate) fn with_values(original: &TensorProto, values: &[f64]) -> TensorProto {
    let mut t = original.clone();
    let dtype = dtype_of(t.data_type.unwrap_or(0)).expect("read as a float tensor");
    let raw = t.raw_data.as_ref().is_some_and(|r| !r.is_empty())
        || (t.float_data.is_empty() && t.double_data.is_empty() && t.int32_data.is_empty());
    t.float_data.clear();
    t.double_data.clear();
    t.int32_data.clear();
    t.raw_data = None;
    if raw {
        let mut bytes = Vec::with_capacity(values.len() * dtype.size());
        for &v in values {
            match dtype {
                DType::F32 => bytes.extend((v as f32).to_le_bytes()),
                DType::F64 => bytes.extend(v.to_le_bytes()),
                DType::F16 => bytes.extend(f16::from_f64(v).to_le_bytes()),
                DType::BF16 => bytes.extend(bf16::from_f64(v).to_le_bytes()),
            }
        }
        t.raw_data = Some(bytes);
    } else {
        match dtype {
            DType::F32 => t.float_data = values.iter().map(|&v| v as f32).collect(),
            DType::F64 => t.double_data = values.to_vec(),
            DType::F16 => {
                t.int32_data = values
                    .iter()
                    .map(|&v| f16::from_f64(v).to_bits().into())
                    .collect()
            }
            DType::BF16 => {
                t.int32_data = values
                    .iter()
                    .map(|&v| bf16::from_f64(v).to_bits().into())
                    .collect()
            }
        }
    }
    t
}

/// A new tensor `name` of `dims` holding `tensor`'s values in its dtype, as `raw_data`.
pub(crate) fn from_tensor(name: &str, tensor: &Tensor) -> TensorProto {
    let template = TensorProto {
        name: Some(name.to_string()),
        dims: tensor.data.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(onnx_type(tensor.dtype)),
        raw_data: Some(Vec::new()),
        ..TensorProto::default()
    };
    let values: Vec<f64> = tensor.data.iter().copied().collect();
    with_values(&template, &values)
}

/// A new int64 tensor `name` of one dimension.
pub(crate) fn int64s(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: vec![values.len() as i64],
        data_type: Some(data_type::INT64),
        int64_data: values.to_vec(),
        ..TensorProto::default()
    }
}
