//! Compiling an [`ArchSpec`] and its weights into a list of [`Step`]s over NHWC samples, with
//! `f32` weights in the layouts the kernels read.
//!
//! Rewrites made here, none of which changes a result: a convolution's zero padding becomes an
//! explicit zero `pad2d` step (so convolutions are always "valid"), and a `relu` right after a
//! convolution or a linear layer is fused into it.

use ndarray::ArrayD;

use crate::arch::{ArchSpec, Op, PadMode, Shape};
use crate::weights::WeightSet;

/// Output channels are padded to a multiple of this many lanes in [`Conv::weight`].
pub(crate) const LANES: usize = 16;

/// A stride-1-or-more, unpadded 2-D convolution on an NHWC sample `(h, w, cin)`.
#[derive(Clone, Debug)]
pub(super) struct Conv {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub oh: usize,
    pub ow: usize,
    pub cout: usize,
    /// `cout` rounded up to a multiple of [`LANES`].
    pub cout_pad: usize,
    /// `(kh·kw·cin, cout_pad)` row-major, rows ordered `(ky, kx, c)`; padded columns are zero.
    pub weight: Vec<f32>,
    /// `cout_pad` values; the padding is zero.
    pub bias: Option<Vec<f32>>,
    pub relu: bool,
}

/// `y = x Wᵀ + b` on flat samples.
#[derive(Clone, Debug)]
pub(super) struct Linear {
    pub inputs: usize,
    pub outputs: usize,
    /// `(inputs, outputs)` row-major, i.e. `Wᵀ`.
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub relu: bool,
}

/// A pooling window over an NHWC sample `(h, w, c)` → `(oh, ow, c)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pool {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub oh: usize,
    pub ow: usize,
}

/// One step of a compiled network. Image-shaped data is NHWC, one sample at a time.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// `(h, w, c)` → `(h + 2p, w + 2p, c)`.
    Pad {
        mode: PadMode,
        p: usize,
        h: usize,
        w: usize,
        c: usize,
    },
    Conv(Conv),
    /// In place, `len` values per sample.
    Relu {
        len: usize,
    },
    MaxPool(Pool),
    AvgPool(Pool),
    /// NHWC `(h, w, c)` → channel-major `C·H·W`.
    Flatten {
        h: usize,
        w: usize,
        c: usize,
    },
    Linear(Linear),
}

impl Step {
    /// Values per sample after this step.
    pub fn out_len(&self) -> usize {
        match self {
            Step::Pad { p, h, w, c, .. } => (h + 2 * p) * (w + 2 * p) * c,
            Step::Conv(k) => k.oh * k.ow * k.cout,
            Step::Relu { len } => *len,
            Step::MaxPool(p) | Step::AvgPool(p) => p.oh * p.ow * p.c,
            Step::Flatten { h, w, c } => h * w * c,
            Step::Linear(l) => l.outputs,
        }
    }
}

fn f32s(a: &ArrayD<f64>) -> Vec<f32> {
    a.iter().map(|&v| v as f32).collect()
}

fn conv_weight(w: &ArrayD<f64>, cout_pad: usize) -> Vec<f32> {
    let &[cout, cin, kh, kw] = w.shape() else {
        unreachable!("validated 4-D")
    };
    let mut out = vec![0.0f32; kh * kw * cin * cout_pad];
    for ((o, c, y, x), &v) in w
        .view()
        .into_dimensionality::<ndarray::Ix4>()
        .expect("validated 4-D")
        .indexed_iter()
    {
        debug_assert!(o < cout);
        out[((y * kw + x) * cin + c) * cout_pad + o] = v as f32;
    }
    out
}

fn linear_weight(w: &ArrayD<f64>) -> Vec<f32> {
    let w2 = w
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("validated 2-D");
    f32s(&w2.t().as_standard_layout().into_owned().into_dyn())
}

/// Compile a spec whose shapes have been validated against `weights`. `shapes` is the output of
/// [`ArchSpec::shapes_with`] (one more entry than `spec.ops`). Also returns, for each op, how
/// many steps there are once it is compiled: op `i`'s output is the buffer after the first
/// `ends[i]` steps (after the ReLU fused into it, if `i + 1` is one).
pub(super) fn compile(
    spec: &ArchSpec,
    weights: &WeightSet,
    shapes: &[Shape],
) -> (Vec<Step>, Vec<usize>) {
    let tensor = |name: &str| &weights.tensors[name].data;
    let mut steps = Vec::with_capacity(spec.ops.len() + 2);
    let mut ends = Vec::with_capacity(spec.ops.len());
    for (i, op) in spec.ops.iter().enumerate() {
        let (cur, next) = (shapes[i], shapes[i + 1]);
        let chw = match cur {
            Shape::Chw(c, h, w) => (c, h, w),
            Shape::Flat(n) => (n, 1, 1),
        };
        let (c, h, w) = chw;
        match op {
            Op::Pad2d { mode, padding } => steps.push(Step::Pad {
                mode: *mode,
                p: *padding,
                h,
                w,
                c,
            }),
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                if *padding > 0 {
                    steps.push(Step::Pad {
                        mode: PadMode::Zero,
                        p: *padding,
                        h,
                        w,
                        c,
                    });
                }
                let wt = tensor(weight);
                let (cout, kh, kw) = (wt.shape()[0], wt.shape()[2], wt.shape()[3]);
                let Shape::Chw(_, oh, ow) = next else {
                    unreachable!("conv2d yields [C, H, W]")
                };
                let cout_pad = cout.div_ceil(LANES) * LANES;
                steps.push(Step::Conv(Conv {
                    h: h + 2 * padding,
                    w: w + 2 * padding,
                    cin: c,
                    kh,
                    kw,
                    stride: *stride,
                    oh,
                    ow,
                    cout,
                    cout_pad,
                    weight: conv_weight(wt, cout_pad),
                    bias: bias.as_ref().map(|b| {
                        let mut v = f32s(tensor(b));
                        v.resize(cout_pad, 0.0);
                        v
                    }),
                    relu: false,
                }));
            }
            Op::Linear { weight, bias } => {
                let wt = tensor(weight);
                steps.push(Step::Linear(Linear {
                    inputs: wt.shape()[1],
                    outputs: wt.shape()[0],
                    weight: linear_weight(wt),
                    bias: bias.as_ref().map(|b| f32s(tensor(b))),
                    relu: false,
                }));
            }
            Op::Relu {} => match steps.last_mut() {
                Some(Step::Conv(k)) if !k.relu => k.relu = true,
                Some(Step::Linear(l)) if !l.relu => l.relu = true,
                _ => steps.push(Step::Relu {
                    len: match cur {
                        Shape::Chw(c, h, w) => c * h * w,
                        Shape::Flat(n) => n,
                    },
                }),
            },
            Op::Maxpool2d {
                kernel,
                stride,
                padding,
            }
            | Op::Avgpool2d {
                kernel,
                stride,
                padding,
            } => {
                let Shape::Chw(_, oh, ow) = next else {
                    unreachable!("pooling yields [C, H, W]")
                };
                let pool = Pool {
                    h,
                    w,
                    c,
                    kernel: *kernel,
                    stride: stride.unwrap_or(*kernel),
                    padding: *padding,
                    oh,
                    ow,
                };
                steps.push(if matches!(op, Op::Maxpool2d { .. }) {
                    Step::MaxPool(pool)
                } else {
                    Step::AvgPool(pool)
                });
            }
            // Flattening a flat vector is the identity.
            Op::Flatten {} if matches!(cur, Shape::Flat(_)) => {}
            Op::Flatten {} => steps.push(Step::Flatten { h, w, c }),
        }
        ends.push(steps.len());
    }
    (steps, ends)
}
