//! Reading: header length → JSON header (kept with duplicates) → validated layout → f64 data.
//!
//! The header is parsed into [`Node`], a JSON tree whose objects keep every entry in file
//! order, because `serde_json::Value` (like the `safetensors` crate) keeps only the last of two
//! equal keys. All checks then run on that tree, so each failure gets its own error variant.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use ndarray::{ArrayD, IxDyn};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

struct Entry {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
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
    let text = std::str::from_utf8(text).map_err(|e| WeightsError::HeaderNotUtf8 {
        at: e.valid_up_to(),
    })?;
    let root: Node =
        serde_json::from_str(text).map_err(|e| WeightsError::HeaderNotJson(e.to_string()))?;
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
            entries.push(parse_entry(name, node, data.len())?);
        }
    }
    check_tiling(&mut entries, data.len())?;
    Ok(Header {
        entries,
        metadata,
        data,
    })
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

/// A JSON value whose objects keep every entry, duplicates included, in file order.
#[derive(Debug)]
enum Node {
    Null,
    Bool,
    UInt(u64),
    Int,
    Float,
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool => "a boolean",
            Node::UInt(_) => "an unsigned integer",
            Node::Int => "a negative integer",
            Node::Float => "a non-integer number",
            Node::Str(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Bool)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Int, Node::UInt))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::new();
        while let Some(entry) = map.next_entry::<String, Node>()? {
            fields.push(entry);
        }
        Ok(Node::Object(fields))
    }
}
