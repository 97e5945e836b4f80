//! Inference for [`ArchSpec`] networks, exact to `f32` rounding against PyTorch's semantics.
//!
//! [`Network::new`] validates the weights and compiles the ops into steps over NHWC samples with
//! `f32` weights in GEMM-ready layouts. [`Network::logits`] runs chunks of samples in parallel on
//! the current rayon pool; inside a chunk everything is single-threaded and the buffers are
//! reused. Convolutions use an AVX-512 direct kernel where the CPU has it, else im2col + GEMM
//! (the `gemm` crate); linear layers use GEMM. The public layout is channel-major throughout.
//!
//! ```
//! use gmfuse_engine::{arch::preset, forward::Network, weights::{DType, Tensor, WeightSet}};
//! let spec = preset("mnist-cnn").unwrap();
//! let mut weights = WeightSet::default();
//! for (name, shape) in [("conv1.weight", vec![32, 1, 5, 5]), ("conv2.weight", vec![64, 32, 5, 5]),
//!                       ("fc1.weight", vec![32, 3136]), ("fc2.weight", vec![10, 32])] {
//!     let data = ndarray::ArrayD::from_elem(shape, 0.01);
//!     weights.tensors.insert(name.into(), Tensor { dtype: DType::F32, data });
//! }
//! let net = Network::new(&spec, &weights).unwrap();
//! let logits = net.logits(ndarray::Array2::<f32>::ones((3, 784)).view());
//! assert_eq!(logits.dim(), (3, 10));
//! ```

mod direct;
mod fold;
mod matmul;
mod ops;
mod plan;
mod taps;
#[cfg(test)]
pub(crate) mod tests;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::arch::{ArchError, ArchSpec, Shape};
use crate::weights::WeightSet;
use plan::Step;
/// Buffer sizes the pre-flight estimate mirrors.
pub(crate) use {matmul::COLS_BUDGET, plan::LANES};

/// Target size of one chunk's largest activation buffer (bytes): chunks stay in L2.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// Most samples in one chunk.
pub(crate) const MAX_CHUNK: usize = 64;

/// A network compiled for inference: weights converted to `f32` in GEMM-ready layouts.
#[derive(Clone, Debug)]
pub struct Network {
    input: [usize; 3],
    classes: usize,
    steps: Vec<Step>,
    /// Longest sample (in `f32`s) at any point of the network.
    max_len: usize,
    /// Samples per chunk.
    chunk: usize,
    /// Use the AVX-512 direct convolution.
    direct: bool,
    /// Per op: the steps after which its units' activations are ready (see [`Network::activations`]).
    unit_ends: Vec<usize>,
    /// Per op: its units (channels, or the width of a flat output).
    units: Vec<usize>,
    /// Values kept aside for a later op (see [`plan::compile`]).
    slots: usize,
}

/// Reusable buffers for one thread's chunks.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    cols: Vec<f32>,
    /// The saved values, one buffer per slot.
    saved: Vec<Vec<f32>>,
}

impl Scratch {
    /// Floats held by the saved-value buffers (what the estimate's `saved_bytes` bounds).
    #[cfg(test)]
    pub(crate) fn saved_floats(&self) -> usize {
        self.saved.iter().map(Vec::len).sum()
    }
}

impl Network {
    /// Validate `weights` against `spec` and prepare them for inference.
    ///
    /// # Errors
    /// The [`ArchError`] of [`ArchSpec::validate`].
    pub fn new(spec: &ArchSpec, weights: &WeightSet) -> Result<Self, ArchError> {
        spec.validate(weights)?;
        fold::check_bn(spec, weights)?;
        let graph = spec.graph_with(|n| weights.tensors.get(n).map(|t| t.data.shape().to_vec()))?;
        let Some(&Shape::Flat(classes)) = graph.shapes.last() else {
            unreachable!("validate checks that the output is flat")
        };
        let plan::Compiled { steps, ends, slots } = plan::compile(spec, weights, &graph);
        let [c, h, w] = spec.input;
        let max_len = steps.iter().map(Step::out_len).fold(c * h * w, usize::max);
        let (unit_ends, units) = taps::tap_points(spec, &graph, &ends);
        Ok(Network {
            unit_ends,
            units,
            slots,
            input: spec.input,
            classes,
            steps,
            max_len,
            chunk: (CHUNK_BYTES / (4 * max_len)).clamp(1, MAX_CHUNK),
            direct: direct::available(),
        })
    }

    /// The same network on the portable im2col + GEMM convolution path.
    #[cfg(test)]
    pub(crate) fn portable(mut self) -> Self {
        self.direct = false;
        self
    }

    /// One sample's shape, `[C, H, W]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    /// Width of the output (the number of classes).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Logits for a batch. `images`: `(n, C·H·W)` samples, channel-major → `(n, classes)`.
    /// Runs in parallel on the current rayon pool.
    ///
    /// # Panics
    /// If `images` does not have `C·H·W` columns (see [`Network::input_shape`]).
    pub fn logits(&self, images: ArrayView2<'_, f32>) -> Array2<f32> {
        let in_len = self.input.iter().product::<usize>();
        assert_eq!(images.ncols(), in_len, "images must have C·H·W columns");
        let images = images.as_standard_layout();
        let x = images.as_slice().expect("standard layout");
        let mut out = Array2::zeros((images.nrows(), self.classes));
        let y = out.as_slice_mut().expect("fresh array");
        y.par_chunks_mut(self.chunk * self.classes)
            .zip(x.par_chunks(self.chunk * in_len))
            .for_each_init(Scratch::default, |s, (y, x)| {
                self.run_chunk(x, y, s, &mut |_, _| {});
            });
        out
    }

    /// Logits on the calling thread: `images` `(n, C·H·W)` → `out` `(n, classes)`, row-major.
    pub(crate) fn logits_serial(&self, images: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let in_len = self.input.iter().product::<usize>();
        assert_eq!(
            images.len() / in_len * self.classes,
            out.len(),
            "batch sizes"
        );
        for (x, y) in images
            .chunks(self.chunk * in_len)
            .zip(out.chunks_mut(self.chunk * self.classes))
        {
            self.run_chunk(x, y, scratch, &mut |_, _| {});
        }
    }

    /// Run every step on `b` samples held in `x`, writing their logits into `y`; `tap(k, v)`
    /// sees the `b` samples' values `v` after the first `k` steps (`k = 0`: the NHWC input).
    fn run_chunk(
        &self,
        x: &[f32],
        y: &mut [f32],
        s: &mut Scratch,
        tap: &mut dyn FnMut(usize, &[f32]),
    ) {
        let [c, h, w] = self.input;
        let mut len = c * h * w;
        let b = x.len() / len;
        debug_assert_eq!(y.len(), b * self.classes);
        let size = b * self.max_len;
        if s.a.len() < size {
            s.a.resize(size, 0.0);
            s.b.resize(size, 0.0);
        }
        s.saved.resize_with(self.slots, Vec::new);
        for slot in &mut s.saved {
            slot.resize(size.max(slot.len()), 0.0);
        }
        let (mut a, mut t, saved) = (&mut s.a, &mut s.b, &mut s.saved);
        for (src, dst) in x.chunks_exact(len).zip(a.chunks_exact_mut(len)) {
            ops::chw_to_hwc(src, dst, c, h * w);
        }
        tap(0, &a[..b * len]);
        for (k, step) in self.steps.iter().enumerate() {
            let out_len = step.out_len();
            let src = &a[..b * len];
            let dst = &mut t[..b * out_len];
            let samples = src.chunks_exact(len).zip(dst.chunks_exact_mut(out_len));
            match step {
                Step::Relu { .. } => {
                    ops::relu(&mut a[..b * len]);
                    tap(k + 1, &a[..b * len]);
                    continue;
                }
                Step::Affine { scale, shift, .. } => {
                    ops::affine(&mut a[..b * len], scale, shift);
                    tap(k + 1, &a[..b * len]);
                    continue;
                }
                Step::Save { slot, .. } => {
                    saved[*slot][..b * len].copy_from_slice(&a[..b * len]);
                    tap(k + 1, &a[..b * len]);
                    continue;
                }
                Step::AddSaved { slot, .. } => {
                    ops::add(&mut a[..b * len], &saved[*slot][..b * len]);
                    tap(k + 1, &a[..b * len]);
                    continue;
                }
                Step::Load { slot, .. } => dst.copy_from_slice(&saved[*slot][..b * out_len]),
                Step::GlobalAvgPool { c, .. } => {
                    samples.for_each(|(i, o)| ops::global_avgpool(i, o, *c));
                }
                Step::Pad { mode, p, h, w, c } => {
                    for (i, o) in samples {
                        ops::pad(i, o, *mode, *p, *h, *w, *c);
                    }
                }
                Step::Conv(k) if self.direct => {
                    for (i, o) in samples {
                        direct::conv(k, i, o);
                    }
                }
                Step::Conv(k) => matmul::conv(k, src, dst, &mut s.cols),
                Step::MaxPool(p) => samples.for_each(|(i, o)| ops::maxpool(i, o, p)),
                Step::AvgPool(p) => samples.for_each(|(i, o)| ops::avgpool(i, o, p)),
                Step::Flatten { h, w, c } => {
                    samples.for_each(|(i, o)| ops::hwc_to_chw(i, o, *c, h * w));
                }
                Step::Linear(l) => matmul::linear(l, src, dst),
            }
            std::mem::swap(&mut a, &mut t);
            len = out_len;
            tap(k + 1, &a[..b * len]);
        }
        debug_assert_eq!(len, self.classes);
        y.copy_from_slice(&a[..b * len]);
    }
}
