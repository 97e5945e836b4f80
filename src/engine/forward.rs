//! Inference for [`ArchSpec`](crate::engine::arch::ArchSpec) networks: im2col + GEMM, batched.
//! (Stub: implemented by the forward work item.)

use ndarray::{Array2, ArrayView2};

use crate::engine::arch::{ArchError, ArchSpec};
use crate::engine::weights::WeightSet;

/// A network compiled for inference: weights converted to `f32` in GEMM-ready layouts.
pub struct Network {
    _private: (),
}

impl Network {
    /// Validate `weights` against `spec` and prepare them for inference.
    ///
    /// # Errors
    /// The [`ArchError`] of [`ArchSpec::validate`].
    pub fn new(_spec: &ArchSpec, _weights: &WeightSet) -> Result<Self, ArchError> {
        todo!("forward work item")
    }

    /// Logits for a batch. `images`: `(n, C·H·W)` samples, channel-major → `(n, classes)`.
    pub fn logits(&self, _images: ArrayView2<'_, f32>) -> Array2<f32> {
        todo!("forward work item")
    }
}
