//! Strict safetensors reading and writing: bytes → [`WeightSet`] (name → dtype, shape, f64 data).
//!
//! Uploaded files are untrusted. Everything the format allows to go wrong is rejected with its
//! own [`WeightsError`] variant: an oversized header, offsets out of bounds, overlapping or with
//! holes, byte counts that disagree with dtype × shape, trailing bytes, duplicate tensor names
//! (the `safetensors` crate silently keeps the last one, so the header is checked here) and
//! non-finite weights. Inputs F32, F16, BF16 and F64 are held as `f64`; output keeps each
//! tensor's name and dtype.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

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

/// Why a safetensors file or a tensor lookup was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WeightsError {
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("invalid safetensors: {0}")]
    Invalid(String),
}

impl WeightSet {
    /// Parse and fully validate a safetensors file.
    pub fn from_bytes(_bytes: &[u8]) -> Result<Self, WeightsError> {
        todo!("weights helper")
    }

    /// Serialise with each tensor's own dtype and `self.metadata` as `__metadata__`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WeightsError> {
        todo!("weights helper")
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor, WeightsError> {
        self.tensors
            .get(name)
            .ok_or_else(|| WeightsError::Missing(name.to_string()))
    }
}
