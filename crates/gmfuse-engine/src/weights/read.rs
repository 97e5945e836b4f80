//! Reading: header length → JSON header (kept with duplicates) → validated layout → f64 data.
//!
//! The header is parsed into [`Node`], a JSON tree whose objects keep every entry in file
//! order, because `serde_json::Value` (like the `safetensors` crate) keeps only the last of two
//! equal keys. All checks then run on that tree, so each failure gets its own error variant.

use std::collections::{BTreeMap, HashSet};

use ndarray::{ArrayD, IxDyn};

use super::json::Node;
use super::{DType, MAX_HEADER_BYTES, Tensor, TensorInfo, WeightSet, WeightsError};

/// Key of the file-level string map in a safetensors header.
pub(super) const METADATA_KEY: &str = "__metadata__";

/// Read the header length from the first 8 bytes of a file (little-endian `u64`).
///
/// # Errors
/// [`WeightsError::HeaderTooShort`] for fewer than 8 bytes, [`WeightsError::HeaderTooLarge`]
/// for a length over [`MAX_HEADER_BYTES`].
pub fn read_header_len(prefix: &[u8]) -> Result<u64, WeightsError> {
    let Some(first) = prefix.first_chunk::<8>() else {
        return Err(WeightsError::HeaderTooShort { len: prefix.len() });
    };
    let len = u64::from_le_bytes(*first);
    if len > MAX_HEADER_BYTES as u64 {
        return Err(WeightsError::HeaderTooLarge {
            len,
            max: MAX_HEADER_BYTES,
        });
    }
    Ok(len)
}

/// Validate everything but the values (no NaN scan, no conversion) and list the tensors by name.
///
/// # Errors
/// Any [`WeightsError`] about the header or the layout of the data section.
pub fn inspect(bytes: &[u8]) -> Result<Vec<TensorInfo>, WeightsError> {
    let mut infos: Vec<TensorInfo> = parse(bytes)?
        .entries
        .into_iter()
        .map(|e| TensorInfo {
            name: e.name,
            dtype: e.dtype,
            shape: e.shape,
        })
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(infos)
}

/// Parse, validate and widen every tensor to `f64`.
pub(super) fn from_bytes(bytes: &[u8]) -> Result<WeightSet, WeightsError> {
    let header = parse(bytes)?;
    let mut tensors = BTreeMap::new();
    for e in header.entries {
        let raw = &header.data[e.start..e.end];
        let values = decode(e.dtype, raw);
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(WeightsError::NonFinite {
                name: e.name,
                index,
            });
        }
        let data = ArrayD::from_shape_vec(IxDyn(&e.shape), values)
            .expect("byte count was checked against the shape");
        tensors.insert(
            e.name,
            Tensor {
                dtype: e.dtype,
                data,
            },
        );
    }
    Ok(WeightSet {
        tensors,
        metadata: header.metadata,
    })
}

/// Little-endian elements of `dtype` → f64 (exact: every F16/BF16/F32 value is an f64).
fn decode(dtype: DType, raw: &[u8]) -> Vec<f64> {
    match dtype {
        DType::F16 => raw
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::BF16 => raw
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::F32 => raw
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        DType::F64 => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect(),
    }
}

/// A validated header: tensors sorted by offset, tiling `data` exactly.
struct Header<'a> {
    entries: Vec<Entry>,
    metadata: BTreeMap<String, String>,
    data: &'a [u8],
}

/// One tensor of a validated header: its bytes are `start..end` of the data section.
pub(super) struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

fn parse(bytes: &[u8]) -> Result<Header<'_>, WeightsError> {
    let len = read_header_len(bytes)?;
    let rest = &bytes[8..];
    if len > rest.len() as u64 {
        return Err(WeightsError::HeaderBeyondFile {
            len,
            available: rest.len(),
        });
    }
    let (text, data) = rest.split_at(len as usize);
    let (entries, metadata) = parse_header(text, data.len())?;
    Ok(Header {
        entries,
        metadata,
        data,
    })
}

/// Parse and validate the JSON header `text` of a file whose data section has `data_len`
/// bytes: the entries come back sorted by offset, tiling the data section exactly.
pub(super) fn parse_header(
    text: &[u8],
    data_len: usize,
) -> Result<(Vec<Entry>, BTreeMap<String, String>), WeightsError> {
    let text = std::str::from_utf8(text).map_err(|e| WeightsError::HeaderNotUtf8 {
        at: e.valid_up_to(),
    })?;
    let root = Node::parse(text).map_err(|e| WeightsError::HeaderNotJson(e.to_string()))?;
    let Node::Object(fields) = root else {
        return Err(WeightsError::HeaderNotObject);
    };

    let mut seen = HashSet::new();
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(fields.len());
    for (name, node) in fields {
        if !seen.insert(name.clone()) {
            return Err(WeightsError::DuplicateName(name));
        }
        if name == METADATA_KEY {
            metadata = parse_metadata(node)?;
        } else {
            entries.push(parse_entry(name, node, data_len)?);
        }
    }
    check_tiling(&mut entries, data_len)?;
    Ok((entries, metadata))
}

fn parse_metadata(node: Node) -> Result<BTreeMap<String, String>, WeightsError> {
    let Node::Object(fields) = node else {
        return Err(WeightsError::BadMetadata(format!("found {}", node.kind())));
    };
    let mut map = BTreeMap::new();
    for (key, value) in fields {
        let Node::Str(value) = value else {
            let reason = format!("value of `{key}` is {}", value.kind());
            return Err(WeightsError::BadMetadata(reason));
        };
        if map.contains_key(&key) {
            return Err(WeightsError::BadMetadata(format!("duplicate key `{key}`")));
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// One tensor's entry: `{"dtype": "F32", "shape": [..], "data_offsets": [start, end]}`, with
/// its offsets checked against the data section and its byte span against dtype × shape.
fn parse_entry(name: String, node: Node, data_len: usize) -> Result<Entry, WeightsError> {
    let bad = |reason: String| WeightsError::BadTensorEntry {
        name: name.clone(),
        reason,
    };
    let Node::Object(fields) = node else {
        return Err(bad(format!("expected an object, found {}", node.kind())));
    };
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    for (key, value) in fields {
        let slot = match key.as_str() {
            "dtype" => &mut dtype,
            "shape" => &mut shape,
            "data_offsets" => &mut offsets,
            _ => return Err(bad(format!("unknown field `{key}`"))),
        };
        if slot.replace(value).is_some() {
            return Err(bad(format!("duplicate field `{key}`")));
        }
    }
    let missing = |field: &str| bad(format!("missing field `{field}`"));
    let dtype = match dtype.ok_or_else(|| missing("dtype"))? {
        Node::Str(s) => DType::from_name(&s).ok_or_else(|| WeightsError::UnsupportedDtype {
            name: name.clone(),
            dtype: s,
        })?,
        other => return Err(bad(format!("`dtype` is {}", other.kind()))),
    };
    let shape = uints(shape.ok_or_else(|| missing("shape"))?)
        .map_err(|what| bad(format!("`shape` must be an array of sizes, found {what}")))?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| WeightsError::ShapeOverflow { name: name.clone() }))
        .collect::<Result<Vec<usize>, _>>()?;
    let offsets = uints(offsets.ok_or_else(|| missing("data_offsets"))?)
        .map_err(|what| bad(format!("`data_offsets` must be two offsets, found {what}")))?;
    let &[start, end] = offsets.as_slice() else {
        let reason = format!("`data_offsets` has {} entries, not 2", offsets.len());
        return Err(bad(reason));
    };

    let expected = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| WeightsError::ShapeOverflow { name: name.clone() })?;
    if end < start {
        return Err(WeightsError::OffsetsReversed { name, start, end });
    }
    if end > data_len as u64 {
        return Err(WeightsError::OffsetsOutOfBounds {
            name,
            start,
            end,
            data_len,
        });
    }
    if end - start != expected as u64 {
        return Err(WeightsError::SizeMismatch {
            name,
            expected,
            got: end - start,
        });
    }
    Ok(Entry {
        name,
        dtype,
        shape,
        start: start as usize,
        end: end as usize,
    })
}

/// Sort by offset and require the spans to tile `0..data_len` with no gap or overlap.
fn check_tiling(entries: &mut [Entry], data_len: usize) -> Result<(), WeightsError> {
    entries.sort_by(|a, b| (a.start, a.end, &a.name).cmp(&(b.start, b.end, &b.name)));
    let mut cursor = 0;
    let mut previous: Option<&Entry> = None;
    for e in entries.iter() {
        if e.start < cursor {
            let prev = previous.expect("cursor > 0 only after a tensor");
            return Err(WeightsError::Overlap {
                name: e.name.clone(),
                start: e.start,
                other: prev.name.clone(),
                other_end: prev.end,
            });
        }
        if e.start > cursor {
            return Err(WeightsError::Hole {
                name: e.name.clone(),
                hole_start: cursor,
                start: e.start,
            });
        }
        cursor = e.end;
        previous = Some(e);
    }
    if cursor != data_len {
        return Err(WeightsError::TrailingBytes {
            trailing: data_len - cursor,
            data_len,
        });
    }
    Ok(())
}

/// An array of non-negative integers, or a description of what was found instead.
fn uints(node: Node) -> Result<Vec<u64>, String> {
    let Node::Array(items) = node else {
        return Err(node.kind().to_string());
    };
    items
        .into_iter()
        .map(|n| match n {
            Node::UInt(u) => Ok(u),
            other => Err(format!("an element that is {}", other.kind())),
        })
        .collect()
}
