//! Writing: [`WeightSet`] → safetensors bytes, deterministic, each tensor in its own dtype.
//!
//! Narrowing rounds to nearest, ties to even. `half`'s `f16::from_f64`/`bf16::from_f64` drop
//! the low 32 bits of the f64 mantissa first (and with F16C go through `f32`), which can turn a
//! value just above a tie into a tie. So F16/BF16 go through an `f32` rounded *to odd*, which
//! makes the second rounding exact: `f32` has at least two more significand bits than either
//! half format (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
//! algorithms using rounding to odd", IEEE TC 2008, Theorem 1).

use std::cmp::Reverse;

use super::read::METADATA_KEY;
use super::{DType, MAX_HEADER_BYTES, Tensor, WeightSet, WeightsError};

pub(super) fn to_bytes(set: &WeightSet) -> Result<Vec<u8>, WeightsError> {
    let mut order: Vec<(&String, &Tensor)> = set.tensors.iter().collect();
    order.sort_by_key(|(name, t)| (Reverse(t.dtype.size()), *name));

    let mut header = String::from("{");
    if !set.metadata.is_empty() {
        header.push_str(&json_str(METADATA_KEY));
        header.push(':');
        header.push_str(&serde_json::to_string(&set.metadata).expect("string map serialises"));
    }
    let mut offset = 0usize;
    for (name, t) in &order {
        if name.as_str() == METADATA_KEY {
            return Err(WeightsError::ReservedName);
        }
        let end = offset + t.data.len() * t.dtype.size();
        if header.len() > 1 {
            header.push(',');
        }
        let shape: Vec<String> = t.data.shape().iter().map(usize::to_string).collect();
        header.push_str(&format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_str(name),
            t.dtype,
            shape.join(","),
        ));
        offset = end;
    }
    header.push('}');
    // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
    let padded = header.len().next_multiple_of(8);
    if padded > MAX_HEADER_BYTES {
        return Err(WeightsError::HeaderTooLarge {
            len: padded as u64,
            max: MAX_HEADER_BYTES,
        });
    }
    let mut out = Vec::with_capacity(8 + padded + offset);
    out.extend_from_slice(&(padded as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.resize(8 + padded, b' ');
    for (name, t) in order {
        encode(name, t, &mut out)?;
    }
    Ok(out)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// Append `t`'s values in row-major order as little-endian `t.dtype`.
fn encode(name: &str, t: &Tensor, out: &mut Vec<u8>) -> Result<(), WeightsError> {
    for (index, &v) in t.data.iter().enumerate() {
        if !v.is_finite() {
            let name = name.to_string();
            return Err(WeightsError::NonFinite { name, index });
        }
        let finite = match t.dtype {
            DType::F16 => {
                let x = half::f16::from_f32(f32_round_to_odd(v));
                out.extend_from_slice(&x.to_le_bytes());
                x.is_finite()
            }
            DType::BF16 => {
                let x = half::bf16::from_f32(f32_round_to_odd(v));
                out.extend_from_slice(&x.to_le_bytes());
                x.is_finite()
            }
            DType::F32 => {
                let x = v as f32; // IEEE round to nearest, ties to even
                out.extend_from_slice(&x.to_le_bytes());
                x.is_finite()
            }
            DType::F64 => {
                out.extend_from_slice(&v.to_le_bytes());
                true
            }
        };
        if !finite {
            return Err(WeightsError::NotRepresentable {
                name: name.to_string(),
                index,
                value: v,
                dtype: t.dtype,
            });
        }
    }
    Ok(())
}

/// `v` rounded to `f32` with round-to-odd: exact values stay, inexact ones go to whichever
/// neighbour has an odd last significand bit. Overflow gives ±∞ (caught by the caller).
pub(super) fn f32_round_to_odd(v: f64) -> f32 {
    let nearest = v as f32;
    if f64::from(nearest) == v || nearest.is_infinite() {
        return nearest;
    }
    // Truncate toward zero: step back one unit when rounding went away from zero. For a
    // non-zero float, decrementing its bits moves it one ulp toward zero, whatever the sign.
    let truncated = if f64::from(nearest).abs() > v.abs() {
        f32::from_bits(nearest.to_bits() - 1)
    } else {
        nearest
    };
    f32::from_bits(truncated.to_bits() | 1)
}
