//! External data (`data_location = EXTERNAL`): a model whose tensors live in files beside it, as
//! `onnx.save_model(..., save_as_external_data=True)` and torch's exporter for large models write
//! them, made self-contained ([`inline_external`]) so that every reader and writer downstream
//! sees one file.
//!
//! Each external tensor's `external_data` holds `location` (required), `offset`, `length` and
//! `checksum` (the file's SHA-1, checked when present); any other key is refused. Strict and
//! bounded: the location is a plain relative path (no absolute path, `.`/`..` or empty
//! component, backslash, NUL or control character), the bytes lie inside the file, their count
//! is what the dims and data type call for (without `length`, the rest of the file must be
//! exactly that, as onnx reads it), the bytes inlined stay within the caller's budget and
//! [`limits::MAX_FILE_BYTES`], and so does the result. A file given but referenced by no tensor
//! is refused too: a misspelt name would otherwise go unnoticed.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use sha1::{Digest, Sha1};

use super::error::OnnxError;
use super::limits;
use super::proto::{ModelProto, TensorProto};
use super::walk::each_tensor;

/// The external files of a model, by the location its tensors name.
pub type ExternalFiles = BTreeMap<String, Vec<u8>>;

/// A file a model's tensors reference, and the first tensor that does (for error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalRef {
    pub location: String,
    pub tensor: String,
}

/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// Where a tensor's bytes are, as its `external_data` says.
struct Entry {
    location: String,
    offset: usize,
    length: Option<usize>,
    checksum: Option<String>,
}

/// The files `model`'s tensors reference (each once, in the order first met), after checking
/// every external tensor's keys and location. Empty for a self-contained model.
///
/// # Errors
/// [`OnnxError::Malformed`] for bytes that are not a model, [`OnnxError::External`] naming the
/// tensor whose `external_data` is malformed, and the limits.
pub fn external_refs(model: &[u8]) -> Result<Vec<ExternalRef>, OnnxError> {
    let mut model = super::decode(model)?;
    let mut refs: Vec<ExternalRef> = Vec::new();
    each_tensor(&mut model, &mut |t, label| {
        if let Some(entry) = entry_of(t, label)?
            && !refs.iter().any(|r| r.location == entry.location)
        {
            limits::at_most(
                "external data files",
                refs.len() + 1,
                limits::MAX_EXTERNAL_FILES,
            )?;
            refs.push(ExternalRef {
                location: entry.location,
                tensor: label.to_string(),
            });
        }
        Ok(())
    })?;
    Ok(refs)
}

/// `model` made self-contained: each external tensor's bytes read from `files` into
/// `raw_data`, its `data_location` reset and `external_data` cleared; every other field kept.
/// At most `max_bytes` (and [`limits::MAX_FILE_BYTES`]) are inlined in all. A model with no
/// external tensor and no files comes back unchanged.
///
/// # Errors
/// [`OnnxError::External`] naming the tensor and the location (a missing file, a range past
/// its end, a length the dims disagree with, a checksum that does not match),
/// [`OnnxError::UnusedExternalFile`] for a file no tensor references, [`OnnxError::TooLarge`]
/// past the budget, and the errors of [`external_refs`].
pub fn inline_external(
    model: &[u8],
    files: &ExternalFiles,
    max_bytes: usize,
) -> Result<Vec<u8>, OnnxError> {
    limits::at_most(
        "external data files",
        files.len(),
        limits::MAX_EXTERNAL_FILES,
    )?;
    let mut proto = super::decode(model)?;
    let mut inliner = Inliner {
        files,
        used: BTreeSet::new(),
        checked: BTreeSet::new(),
        left: max_bytes.min(limits::MAX_FILE_BYTES),
        max: max_bytes.min(limits::MAX_FILE_BYTES),
    };
    each_tensor(&mut proto, &mut |t, label| inliner.inline(t, label))?;
    if let Some(unused) = files.keys().find(|k| !inliner.used.contains(*k)) {
        return Err(OnnxError::UnusedExternalFile {
            location: unused.clone(),
        });
    }
    if inliner.used.is_empty() {
        return Ok(model.to_vec());
    }
    encode_bounded(&proto)
}

/// The model's bytes, refused past [`limits::MAX_FILE_BYTES`] before they are written.
fn encode_bounded(model: &ModelProto) -> Result<Vec<u8>, OnnxError> {
    limits::at_most(
        "inlined file size (bytes)",
        model.encoded_len(),
        limits::MAX_FILE_BYTES,
    )?;
    Ok(model.encode_to_vec())
}

/// What inlining has used so far.
struct Inliner<'a> {
    files: &'a ExternalFiles,
    used: BTreeSet<String>,
    /// Locations whose checksum has been verified.
    checked: BTreeSet<String>,
    left: usize,
    max: usize,
}

impl Inliner<'_> {
    /// Inline `t` when it is external; leave it as it is otherwise.
    fn inline(&mut self, t: &mut TensorProto, label: &str) -> Result<(), OnnxError> {
        let Some(entry) = entry_of(t, label)? else {
            return Ok(());
        };
        let fail = |reason: String| OnnxError::external(label, &entry.location, reason);
        let file = self
            .files
            .get(&entry.location)
            .ok_or_else(|| fail("the file was not given alongside the model".into()))?;
        self.used.insert(entry.location.clone());
        if let Some(sum) = &entry.checksum
            && !self.checked.contains(&entry.location)
        {
            let got = sha1_hex(file);
            if !got.eq_ignore_ascii_case(sum) {
                return Err(fail(format!(
                    "checksum {sum} does not match the file's SHA-1 {got}"
                )));
            }
            self.checked.insert(entry.location.clone());
        }
        let want = expected_bytes(t, label, &entry.location)?;
        let rest = file.len().checked_sub(entry.offset).ok_or_else(|| {
            fail(format!(
                "offset {} is past the end of the file ({} bytes)",
                entry.offset,
                file.len()
            ))
        })?;
        let length = entry.length.unwrap_or(rest);
        if length != want {
            let what = if entry.length.is_some() {
                "length"
            } else {
                "the rest of the file"
            };
            return Err(fail(format!(
                "{what} is {length} bytes, its dims and data type call for {want}"
            )));
        }
        if length > rest {
            return Err(fail(format!(
                "offset {} + length {length} is past the end of the file ({} bytes)",
                entry.offset,
                file.len()
            )));
        }
        self.spend(length)?;
        t.raw_data = Some(file[entry.offset..entry.offset + length].to_vec());
        t.data_location = None;
        t.external_data.clear();
        Ok(())
    }

    fn spend(&mut self, n: usize) -> Result<(), OnnxError> {
        if n > self.left {
            return Err(OnnxError::TooLarge {
                what: "external data bytes inlined",
                value: (self.max - self.left + n) as u128,
                max: self.max as u128,
            });
        }
        self.left -= n;
        Ok(())
    }
}

/// `t`'s `external_data`, checked, when `t` is external; `None` when its data is inside.
fn entry_of(t: &TensorProto, label: &str) -> Result<Option<Entry>, OnnxError> {
    let external = t.data_location == Some(EXTERNAL);
    if !external && t.external_data.is_empty() {
        return Ok(None);
    }
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    let mut repeated = None;
    for kv in &t.external_data {
        let key = kv.key.as_deref().unwrap_or("");
        if keys
            .insert(key, kv.value.as_deref().unwrap_or(""))
            .is_some()
        {
            repeated.get_or_insert(key);
        }
    }
    let location = keys.get("location").copied().unwrap_or("");
    let fail = |reason: String| OnnxError::external(label, location, reason);
    if let Some(key) = repeated {
        return Err(fail(format!("key `{key}` appears twice")));
    }
    if !external {
        return Err(fail(
            "`external_data` is set but `data_location` is not EXTERNAL".into(),
        ));
    }
    if let Some(key) = keys
        .keys()
        .find(|k| !["location", "offset", "length", "checksum"].contains(k))
    {
        return Err(fail(format!(
            "unknown key `{key}` (known: location, offset, length, checksum)"
        )));
    }
    check_location(location).map_err(fail)?;
    if t.raw_data.as_ref().is_some_and(|r| !r.is_empty())
        || !t.float_data.is_empty()
        || !t.int32_data.is_empty()
        || !t.int64_data.is_empty()
        || !t.double_data.is_empty()
        || !t.uint64_data.is_empty()
        || !t.string_data.is_empty()
    {
        return Err(fail("the tensor also holds data inside the model".into()));
    }
    let number = |key: &str| -> Result<Option<usize>, OnnxError> {
        let Some(v) = keys.get(key) else {
            return Ok(None);
        };
        let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<usize>().ok())
            .flatten()
            .ok_or_else(|| fail(format!("{key} `{v}` is not a byte count")))?;
        Ok(Some(n))
    };
    Ok(Some(Entry {
        location: location.to_string(),
        offset: number("offset")?.unwrap_or(0),
        length: number("length")?,
        checksum: keys.get("checksum").map(|s| s.to_string()),
    }))
}

/// A location must be a plain relative path: it names a file beside the model, never one
/// elsewhere on the reader's disk.
fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("no `location` key".into());
    }
    limits::at_most(
        "location length",
        location.len(),
        limits::MAX_LOCATION_BYTES,
    )
    .map_err(|e| e.to_string())?;
    if location.starts_with('/') {
        return Err("the location is an absolute path; it must be relative to the model".into());
    }
    if let Some(c) = location.chars().find(|c| *c == '\\' || c.is_control()) {
        return Err(format!(
            "the location holds {c:?}; it must be a plain relative path"
        ));
    }
    if let Some(c) = location
        .split('/')
        .find(|c| c.is_empty() || *c == "." || *c == "..")
    {
        let which = if c.is_empty() {
            "an empty".to_string()
        } else {
            format!("a `{c}`")
        };
        return Err(format!(
            "the location has {which} component; it must be a plain relative path"
        ));
    }
    Ok(())
}

/// The bytes `t`'s dims and data type call for.
fn expected_bytes(t: &TensorProto, label: &str, location: &str) -> Result<usize, OnnxError> {
    let (_, n) = super::tensor::dims_within_limits(t, |d| {
        OnnxError::external(label, location, format!("negative dim {d}"))
    })?;
    let data_type = t.data_type.unwrap_or(0);
    stored_bytes(data_type, n).ok_or_else(|| {
        OnnxError::external(
            label,
            location,
            format!("data type {data_type} cannot be stored as external bytes"),
        )
    })
}

/// The bytes `n` values of ONNX `data_type` take in `raw_data` (sub-byte types packed), or
/// `None` for strings and unknown types.
fn stored_bytes(data_type: i32, n: usize) -> Option<usize> {
    let bits: usize = match data_type {
        2 | 3 | 9 | 17..=20 | 24 => 8, // u8, i8, bool, float8 variants
        4 | 5 | 10 | 16 => 16,         // u16, i16, f16, bf16
        1 | 6 | 12 => 32,              // f32, i32, u32
        7 | 11 | 13 | 14 => 64,        // i64, f64, u64, complex64
        15 => 128,                     // complex128
        21..=23 => 4,                  // u4, i4, float4e2m1
        25 | 26 => 2,                  // u2, i2
        27 | 28 => 6,                  // float6 variants
        _ => return None,
    };
    // n ≤ MAX_TENSOR_ELEMS, so n × 128 cannot overflow.
    Some((n * bits).div_ceil(8))
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
