//! Strict safetensors reading and writing: bytes → [`WeightSet`] (name → dtype, shape, f64 data).
//!
//! Uploaded files are untrusted. Everything the format allows to go wrong is rejected with its
//! own [`WeightsError`] variant: an oversized header, offsets out of bounds, overlapping or with
//! holes, byte counts that disagree with dtype × shape, trailing bytes, duplicate tensor names
//! (the `safetensors` crate silently keeps the last one, so the header is checked here) and
//! non-finite weights. Inputs F32, F16, BF16 and F64 are held as `f64`; output keeps each
//! tensor's name and dtype.
//!
//! Both directions are written by hand rather than through the `safetensors` crate: its reader
//! folds overlaps, holes and out-of-bounds offsets into one `InvalidOffset` and cannot see
//! duplicate names, and its writer emits `__metadata__` from a `HashMap`, so the same weights
//! would not always give the same bytes (fused outputs are served with their sha256 as ETag).
//! Files written here are read by the `safetensors` crate and vice versa (see the tests).
//!
//! ```
//! use gmfuse_engine::weights::{DType, Tensor, WeightSet};
//! use ndarray::{ArrayD, IxDyn};
//!
//! let mut w = WeightSet::default();
//! let data = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, -2.0, 0.5, 3.0]).unwrap();
//! w.tensors.insert("fc.weight".into(), Tensor { dtype: DType::F16, data });
//! let bytes = w.to_bytes().unwrap();
//! assert_eq!(WeightSet::from_bytes(&bytes).unwrap(), w);
//! ```

mod json;
mod read;
mod stream;
mod write;

use std::collections::BTreeMap;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

pub use json::MAX_HEADER_VALUES;
pub use read::{inspect, read_header_len};
pub use stream::StreamCheck;

/// Largest JSON header accepted (bytes).
pub const MAX_HEADER_BYTES: usize = 16 * 1024 * 1024;

/// Element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The dtype's name in a safetensors header (`"F32"`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::F64 => "F64",
        }
    }

    /// The dtype called `name` in a safetensors header, if it is one gmfuse reads.
    pub fn from_name(name: &str) -> Option<DType> {
        [DType::F16, DType::BF16, DType::F32, DType::F64]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor: its stored dtype and its values widened to `f64` (shape = `data.shape()`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub data: ArrayD<f64>,
}

/// Name, dtype and shape of a tensor, as read from a header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// A model's parameters by name, plus the file's `__metadata__`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightSet {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// Why a safetensors file, a tensor lookup or a serialisation was rejected.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum WeightsError {
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("file is {len} bytes, too short for the 8-byte header length")]
    HeaderTooShort { len: usize },
    #[error("header length {len} exceeds the maximum of {max} bytes")]
    HeaderTooLarge { len: u64, max: usize },
    #[error(
        "header length {len} runs past the end of the file ({available} bytes after the length)"
    )]
    HeaderBeyondFile { len: u64, available: usize },
    #[error("header is not valid UTF-8 (byte {at} of the header)")]
    HeaderNotUtf8 { at: usize },
    #[error("header is not valid JSON: {0}")]
    HeaderNotJson(String),
    #[error("header is JSON but not an object")]
    HeaderNotObject,
    #[error("`__metadata__` is not a string-to-string map: {0}")]
    BadMetadata(String),
    #[error("tensor `{name}` has a malformed header entry: {reason}")]
    BadTensorEntry { name: String, reason: String },
    #[error("tensor `{name}` has dtype {dtype}; only F32, F16, BF16 and F64 are supported")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("tensor name `{0}` appears more than once in the header")]
    DuplicateName(String),
    #[error("tensor name `__metadata__` is reserved for the file's metadata")]
    ReservedName,
    #[error("tensor `{name}` has data_offsets [{start}, {end}] with end before start")]
    OffsetsReversed { name: String, start: u64, end: u64 },
    #[error(
        "tensor `{name}` has data_offsets [{start}, {end}] beyond the {data_len}-byte data section"
    )]
    OffsetsOutOfBounds {
        name: String,
        start: u64,
        end: u64,
        data_len: usize,
    },
    #[error(
        "tensor `{name}` starts at byte {start}, inside tensor `{other}` which ends at byte {other_end}"
    )]
    Overlap {
        name: String,
        start: usize,
        other: String,
        other_end: usize,
    },
    #[error(
        "bytes {hole_start}..{start} of the data section, before tensor `{name}`, belong to no tensor"
    )]
    Hole {
        name: String,
        hole_start: usize,
        start: usize,
    },
    #[error("tensor `{name}` needs {expected} bytes for its dtype and shape but spans {got}")]
    SizeMismatch {
        name: String,
        expected: usize,
        got: u64,
    },
    #[error("tensor `{name}` has a shape whose byte size overflows")]
    ShapeOverflow { name: String },
    #[error("{trailing} trailing bytes after the last tensor (data section is {data_len} bytes)")]
    TrailingBytes { trailing: usize, data_len: usize },
    #[error("tensor `{name}` has a non-finite value at flat index {index}")]
    NonFinite { name: String, index: usize },
    #[error("tensor `{name}`: value {value} at flat index {index} overflows {dtype}")]
    NotRepresentable {
        name: String,
        index: usize,
        value: f64,
        dtype: DType,
    },
}

impl WeightSet {
    /// Parse and fully validate a safetensors file.
    ///
    /// # Errors
    /// Every header check of [`inspect`], then [`WeightsError::NonFinite`] for a NaN or ±∞.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WeightsError> {
        read::from_bytes(bytes)
    }

    /// Serialise with each tensor's own dtype (round to nearest, ties to even) and
    /// `self.metadata` as `__metadata__` (omitted when empty). Tensors are laid out by
    /// descending element size, then name, so each is aligned to its element size. The output
    /// is a function of `self` alone.
    ///
    /// # Errors
    /// [`WeightsError::NonFinite`] for a NaN or ±∞, [`WeightsError::NotRepresentable`] when a
    /// value overflows its dtype, [`WeightsError::ReservedName`] for a tensor named
    /// `__metadata__`, [`WeightsError::HeaderTooLarge`] when the header would be too large.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WeightsError> {
        write::to_bytes(self)
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor, WeightsError> {
        self.tensors
            .get(name)
            .ok_or_else(|| WeightsError::Missing(name.to_string()))
    }

    /// Name, dtype and shape of every tensor, by name.
    pub fn infos(&self) -> Vec<TensorInfo> {
        self.tensors
            .iter()
            .map(|(name, t)| TensorInfo {
                name: name.clone(),
                dtype: t.dtype,
                shape: t.data.shape().to_vec(),
            })
            .collect()
    }

    /// Shape of every tensor, by name (the input of `ArchSpec::check_shapes`).
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.tensors
            .iter()
            .map(|(name, t)| (name.clone(), t.data.shape().to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
