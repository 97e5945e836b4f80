//! Evaluation datasets (IDX gz or raw, safetensors images/labels) and accuracy / NLL loss.
//!
//! Pixels are stored as `u8 / 255` in `f32`, exactly torchvision's `ToTensor()` (no mean/std).
//! [`evaluate`] reports accuracy (argmax, ties to the first maximum like `torch.argmax`) and the
//! mean cross-entropy `−log_softmax(logits)[label]`, computed in `f64`.

mod read;
mod scan;
mod stream;
#[cfg(test)]
mod tests;

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::forward::{Network, Scratch};

pub use scan::scan_safetensors;
pub use stream::{DatasetInfo, MAX_DATASET_VALUES, from_idx_readers, scan_idx};

/// Samples per evaluation batch: the unit of parallel work and of cancellation.
pub(crate) const EVAL_BATCH: usize = 128;

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
    /// Read an IDX image file (`[n, H, W]` u8, magic 2051; or `[n, C, H, W]`, magic 2052) and
    /// an IDX label file (magic 2049), each gzipped or raw; pixels are scaled by 1/255 (no
    /// mean/std normalisation).
    ///
    /// # Errors
    /// [`EvalError::Invalid`] with the reason.
    pub fn from_idx(name: &str, images: &[u8], labels: &[u8]) -> Result<Self, EvalError> {
        read::from_idx(name, images, labels)
    }

    /// Read a safetensors file holding exactly two tensors: `images` (`[n, H, W]` or
    /// `[n, C, H, W]`; U8 is scaled by 1/255, F16/BF16/F32/F64 are taken as they are and must be
    /// finite) and `labels` (`[n]`, any integer dtype, values in `u32`).
    ///
    /// # Errors
    /// [`EvalError::Invalid`] with the reason.
    pub fn from_safetensors(name: &str, bytes: &[u8]) -> Result<Self, EvalError> {
        read::from_safetensors(name, bytes)
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

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Correct predictions and summed NLL of `logits` (`(b, classes)` row-major) against `labels`.
fn score(logits: &[f32], labels: &[u32], classes: usize) -> (usize, f64) {
    let mut correct = 0;
    let mut nll = 0.0;
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        // First maximum wins, like torch.argmax; NaN counts as the maximum, as in torch.
        let mut best = 0;
        for (i, &v) in row.iter().enumerate().skip(1) {
            if !row[best].is_nan() && (v > row[best] || v.is_nan()) {
                best = i;
            }
        }
        correct += usize::from(best == label as usize);
        let max = f64::from(row[best]);
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        nll += max + sum.ln() - f64::from(row[label as usize]);
    }
    (correct, nll)
}

/// Accuracy and loss of `net` on `data`, in batches on the current rayon pool; `stop` is polled
/// before each batch.
///
/// # Errors
/// [`EvalError::Canceled`] when `stop` returns true; [`EvalError::Invalid`] when the dataset is
/// empty, its samples do not have the network's input shape, or a label is not below the
/// number of classes.
pub fn evaluate(
    net: &Network,
    data: &Dataset,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<EvalResult, EvalError> {
    let (n, classes, name) = (data.labels.len(), net.classes(), &data.name);
    let len = data.shape.iter().product::<usize>();
    if n == 0 {
        return Err(EvalError::Invalid(format!("dataset `{name}` is empty")));
    }
    if data.shape != net.input_shape() || data.images.dim() != (n, len) {
        return Err(EvalError::Invalid(format!(
            "dataset `{name}` has {} samples of shape {:?} ({} values each), the network expects {:?}",
            data.images.nrows(),
            data.shape,
            data.images.ncols(),
            net.input_shape()
        )));
    }
    if let Some(i) = data.labels.iter().position(|&l| l as usize >= classes) {
        return Err(EvalError::Invalid(format!(
            "dataset `{name}`: label {} of sample {i} is out of range for {classes} classes",
            data.labels[i]
        )));
    }
    let images = data.images.as_standard_layout();
    let x = images.as_slice().expect("standard layout");
    let batches = x
        .par_chunks(EVAL_BATCH * len)
        .zip(data.labels.par_chunks(EVAL_BATCH))
        .map_init(
            || (Scratch::default(), Vec::new()),
            |(scratch, logits), (x, y)| {
                if stop() {
                    return Err(EvalError::Canceled);
                }
                logits.resize(y.len() * classes, 0.0);
                net.logits_serial(x, logits, scratch);
                Ok(score(logits, y, classes))
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    // Summed in batch order, so the loss does not depend on the thread count.
    let (correct, nll) = batches
        .iter()
        .fold((0, 0.0), |(c, l), &(bc, bl)| (c + bc, l + bl));
    Ok(EvalResult {
        accuracy: 100.0 * correct as f64 / n as f64,
        loss: nll / n as f64,
        samples: n,
    })
}
