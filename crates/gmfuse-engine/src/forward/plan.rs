//! Compiling an [`ArchSpec`] and its weights into a list of [`Step`]s over NHWC samples, with
//! `f32` weights in the layouts the kernels read.
//!
//! Rewrites made here, none of which changes a result: a convolution's zero padding becomes an
//! explicit zero `pad2d` step (so convolutions are always "valid"), and a `relu` right after a
//! convolution or a linear layer is fused into it.

use ndarray::ArrayD;

use super::fold;
use crate::arch::{ArchSpec, Graph, Op, PadMode, Shape};
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
    /// In place: a batchnorm not folded into a layer, `x·scale + shift` per channel.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        len: usize,
    },
    /// Keep a copy of the current value (read again later) in slot `slot`.
    Save {
        slot: usize,
        len: usize,
    },
    /// Make slot `slot`'s value the current one.
    Load {
        slot: usize,
        len: usize,
    },
    /// In place: add slot `slot`'s value (a residual `add`).
    AddSaved {
        slot: usize,
        len: usize,
    },
    /// NHWC `(h·w, c)` → `c` channel means.
    GlobalAvgPool {
        c: usize,
    },
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
            Step::Affine { len, .. }
            | Step::Save { len, .. }
            | Step::Load { len, .. }
            | Step::AddSaved { len, .. } => *len,
            Step::GlobalAvgPool { c, .. } => *c,
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

/// A compiled network: its steps, where each op's output is, and how many values it keeps
/// aside for later ops.
pub(super) struct Compiled {
    pub steps: Vec<Step>,
    /// Op `i`'s output is the buffer after the first `ends[i]` steps (after the ReLU fused
    /// into it, if `i + 1` is one; after the batchnorm folded into it, if `i + 1` is one).
    pub ends: Vec<usize>,
    /// Number of save slots the steps use.
    pub slots: usize,
}

/// Compile a spec whose shapes have been validated against `weights`; `graph` is the output
/// of [`ArchSpec::graph_with`]. The ops run in order on one current value; a value that a
/// later op reads again is saved into a slot after it is made, and loaded (or added, for an
/// `add`) where it is read. A chain needs no slots.
pub(super) fn compile(spec: &ArchSpec, weights: &WeightSet, graph: &Graph) -> Compiled {
    let saved = graph.saved_values();
    let folded = fold::folded(spec, graph);
    let ops: Vec<&Op> = spec.op_list().collect();
    let mut slot_of: Vec<Option<usize>> = vec![None; graph.shapes.len()];
    let mut slots = 0;
    let mut steps = Vec::with_capacity(ops.len() + 2);
    let mut ends = Vec::with_capacity(ops.len());
    let len = |v: usize| elems(graph.shapes[v]);
    // Save value `v` when an op other than the next one reads it.
    let mut save = |v: usize, slot_of: &mut Vec<Option<usize>>, steps: &mut Vec<Step>| {
        if saved.contains(&v) {
            slot_of[v] = Some(slots);
            steps.push(Step::Save {
                slot: slots,
                len: len(v),
            });
            slots += 1;
        }
    };
    save(0, &mut slot_of, &mut steps);
    // The value in the buffer.
    let mut current = 0;
    for (i, op) in ops.iter().enumerate() {
        let ins = &graph.inputs[i];
        let slot = |v: usize| slot_of[v].expect("a value read out of turn is saved");
        if let Op::Add {} = op {
            let (keep, other) = if ins[1] == current && ins[0] != current {
                (ins[1], ins[0])
            } else {
                (ins[0], ins[1])
            };
            if keep != current {
                steps.push(Step::Load {
                    slot: slot(keep),
                    len: len(keep),
                });
            }
            steps.push(Step::AddSaved {
                slot: slot(other),
                len: len(other),
            });
        } else {
            if ins[0] != current {
                steps.push(Step::Load {
                    slot: slot(ins[0]),
                    len: len(ins[0]),
                });
            }
            let bn =
                (folded.get(i + 1) == Some(&true)).then(|| fold::bn_affine(ops[i + 1], weights));
            if !folded[i] {
                op_steps(
                    op,
                    graph.shapes[ins[0]],
                    graph.shapes[i + 1],
                    weights,
                    bn,
                    &mut steps,
                );
            }
        }
        current = i + 1;
        ends.push(steps.len());
        save(current, &mut slot_of, &mut steps);
    }
    Compiled { steps, ends, slots }
}

fn elems(s: Shape) -> usize {
    match s {
        Shape::Chw(c, h, w) => c * h * w,
        Shape::Flat(n) => n,
    }
}

/// The steps of one op reading `cur` and making `next`; `bn` is the batchnorm folded into it
/// (a conv2d or linear).
fn op_steps(
    op: &Op,
    cur: Shape,
    next: Shape,
    weights: &WeightSet,
    bn: Option<(Vec<f64>, Vec<f64>)>,
    steps: &mut Vec<Step>,
) {
    let tensor = |name: &str| &weights.tensors[name].data;
    let (c, h, w) = match cur {
        Shape::Chw(c, h, w) => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    };
    // A layer's weight and bias, with the following batchnorm folded in.
    let layer = |weight: &str, bias: &Option<String>| match &bn {
        None => (
            tensor(weight).clone(),
            bias.as_deref().map(|b| tensor(b).clone()),
        ),
        Some(bn) => {
            let (w, b) = fold::fold_into(tensor(weight), bias.as_deref().map(tensor), bn);
            (w, Some(b))
        }
    };
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
            let (wt, bt) = layer(weight, bias);
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
                weight: conv_weight(&wt, cout_pad),
                bias: bt.map(|b| {
                    let mut v = f32s(&b);
                    v.resize(cout_pad, 0.0);
                    v
                }),
                relu: false,
            }));
        }
        Op::Linear { weight, bias } => {
            let (wt, bt) = layer(weight, bias);
            steps.push(Step::Linear(Linear {
                inputs: wt.shape()[1],
                outputs: wt.shape()[0],
                weight: linear_weight(&wt),
                bias: bt.map(|b| f32s(&b)),
                relu: false,
            }));
        }
        Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. } => {
            let (scale, shift) = fold::bn_affine(op, weights);
            let narrow = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
            steps.push(Step::Affine {
                scale: narrow(scale),
                shift: narrow(shift),
                len: elems(cur),
            });
        }
        Op::Relu {} => match steps.last_mut() {
            Some(Step::Conv(k)) if !k.relu => k.relu = true,
            Some(Step::Linear(l)) if !l.relu => l.relu = true,
            _ => steps.push(Step::Relu { len: elems(cur) }),
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
        Op::GlobalAvgpool {} => steps.push(Step::GlobalAvgPool { c }),
        // Flattening a flat vector is the identity.
        Op::Flatten {} if matches!(cur, Shape::Flat(_)) => {}
        Op::Flatten {} => steps.push(Step::Flatten { h, w, c }),
        Op::Add {} => unreachable!("compiled by the caller"),
    }
}
