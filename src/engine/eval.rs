//! Evaluation datasets (IDX gz or raw, safetensors images/labels) and accuracy / NLL loss.
//! (Stub: implemented by the forward work item.)

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::engine::forward::Network;

/// A labelled evaluation set, pixels already scaled to `[0, 1]`.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    /// One sample's shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// `(n, C·H·W)`, channel-major.
    pub images: Array2<f32>,
    pub labels: Vec<u32>,
}

/// Accuracy (percent) and mean negative log-likelihood over a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub accuracy: f64,
    pub loss: f64,
    pub samples: usize,
}

/// Why a dataset could not be read or evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    #[error("invalid dataset: {0}")]
    Invalid(String),
    #[error("evaluation canceled")]
    Canceled,
}

impl Dataset {
    /// The built-in MNIST test set (10,000 images), vendored under `assets/`.
    pub fn mnist_test() -> Self {
        todo!("forward work item")
    }

    /// Read an IDX image file (`[n, H, W]` u8, magic 2051) and an IDX label file (magic 2049),
    /// each gzipped or raw; pixels are scaled by 1/255 (no mean/std normalisation).
    ///
    /// # Errors
    /// [`EvalError::Invalid`] with the reason.
    pub fn from_idx(_name: &str, _images: &[u8], _labels: &[u8]) -> Result<Self, EvalError> {
        todo!("forward work item")
    }

    /// Read a safetensors file with `images` and `labels` tensors.
    ///
    /// # Errors
    /// [`EvalError::Invalid`] with the reason.
    pub fn from_safetensors(_name: &str, _bytes: &[u8]) -> Result<Self, EvalError> {
        todo!("forward work item")
    }

    /// The first `n` samples (all when `n` is larger).
    pub fn head(&self, n: usize) -> Self {
        let n = n.min(self.labels.len());
        Dataset {
            name: self.name.clone(),
            shape: self.shape,
            images: self.images.slice(ndarray::s![..n, ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// Accuracy and loss of `net` on `data`; `stop` is polled between batches.
///
/// # Errors
/// [`EvalError::Canceled`] when `stop` returns true.
pub fn evaluate(
    _net: &Network,
    _data: &Dataset,
    _stop: &(dyn Fn() -> bool + Sync),
) -> Result<EvalResult, EvalError> {
    todo!("forward work item")
}
