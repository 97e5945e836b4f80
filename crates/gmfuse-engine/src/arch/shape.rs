//! Shape inference: the shape of every value of an [`ArchSpec`], computed from the spec and
//! the weights' shapes alone, with the limits of [`super::bounds`] checked op by op.

use super::bounds;
use super::error::{ArchError, Branches};
use super::graph::Graph;
use super::spec::{ArchSpec, Op, Shape};

/// Output length of a sliding window, or `None` when the window does not fit.
fn window_out(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size.checked_add(padding.checked_mul(2)?)?;
    if kernel == 0 || stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

impl ArchSpec {
    /// The spec's wiring ([`ArchSpec::op_inputs`]) and the shape of every value. Convolution
    /// and linear widths come from `weight_shape(name)`, which yields the tensor's shape if
    /// known.
    ///
    /// # Errors
    /// Any [`ArchError`] about the spec alone: a wiring error, an op that does not fit its
    /// input ([`ArchError::BadOp`]), an `add` whose branches disagree
    /// ([`ArchError::BranchMismatch`]), a missing conv/linear weight, a size over a limit.
    pub fn graph_with(
        &self,
        weight_shape: impl Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Graph, ArchError> {
        self.check_global_limits()?;
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(ArchError::BadOp {
                index: 0,
                op: "input",
                reason: format!("input shape {:?} has a zero dimension", self.input),
            });
        }
        let inputs = self.op_inputs()?;
        let mut shapes = vec![Shape::Chw(c, h, w)];
        for (index, node) in self.ops.iter().enumerate() {
            bounds::check_op_params(index, &node.op)?;
            let ins: Vec<Shape> = inputs[index].iter().map(|&v| shapes[v]).collect();
            if let (Op::Add {}, [l, r]) = (&node.op, ins.as_slice())
                && l != r
            {
                return Err(ArchError::BranchMismatch {
                    index,
                    add: node.label(),
                    branches: Box::new(Branches {
                        left: self.value_label(inputs[index][0]),
                        left_shape: *l,
                        right: self.value_label(inputs[index][1]),
                        right_shape: *r,
                    }),
                });
            }
            let next = op_output(index, &node.op, ins[0], &weight_shape)?;
            if matches!(
                next,
                Shape::Chw(0, ..) | Shape::Chw(_, 0, _) | Shape::Chw(_, _, 0) | Shape::Flat(0)
            ) {
                return Err(ArchError::BadOp {
                    index,
                    op: node.op.kind(),
                    reason: format!("produces an empty shape {next:?}"),
                });
            }
            bounds::check_shape(index, node.op.kind(), next)?;
            shapes.push(next);
        }
        Ok(Graph { inputs, shapes })
    }

    /// The shape of every value (`ops.len() + 1` entries: the input, then each op's output);
    /// for a chain, `shapes[i]` is op `i`'s input. See [`ArchSpec::graph_with`].
    ///
    /// # Errors
    /// As [`ArchSpec::graph_with`].
    pub fn shapes_with(
        &self,
        weight_shape: impl Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Vec<Shape>, ArchError> {
        self.graph_with(weight_shape).map(|g| g.shapes)
    }
}

/// The shape op `index` produces from `cur` (its first input; an `add`'s inputs are equal).
fn op_output(
    index: usize,
    op: &Op,
    cur: Shape,
    weight_shape: &impl Fn(&str) -> Option<Vec<usize>>,
) -> Result<Shape, ArchError> {
    let bad = |reason: String| ArchError::BadOp {
        index,
        op: op.kind(),
        reason,
    };
    let lookup = |weight: &String| {
        weight_shape(weight).ok_or_else(|| ArchError::MissingTensor {
            name: weight.clone(),
            index,
        })
    };
    Ok(match (op, cur) {
        (Op::Pad2d { padding, .. }, Shape::Chw(c, h, w)) => {
            let grow = |s: usize| {
                s.checked_add(2 * padding)
                    .ok_or_else(|| bad("padding overflows".into()))
            };
            Shape::Chw(c, grow(h)?, grow(w)?)
        }
        (
            Op::Conv2d {
                weight,
                stride,
                padding,
                ..
            },
            Shape::Chw(c, h, w),
        ) => {
            let ws = lookup(weight)?;
            if ws.len() != 4 {
                return Err(bad(format!("weight `{weight}` must be 4-D, got {ws:?}")));
            }
            bounds::check_conv_weight(index, &ws)?;
            bounds::check_padded(index, (c, h, w), *padding)?;
            let oh = window_out(h, ws[2], *stride, *padding);
            let ow = window_out(w, ws[3], *stride, *padding);
            match (oh, ow) {
                (Some(oh), Some(ow)) => Shape::Chw(ws[0], oh, ow),
                _ => {
                    return Err(bad(format!(
                        "kernel {}x{} (stride {stride}, padding {padding}) does not fit input {h}x{w}",
                        ws[2], ws[3]
                    )));
                }
            }
        }
        (Op::Linear { weight, .. }, Shape::Flat(_)) => {
            let ws = lookup(weight)?;
            if ws.len() != 2 {
                return Err(bad(format!("weight `{weight}` must be 2-D, got {ws:?}")));
            }
            bounds::check_linear_weight(index, &ws)?;
            Shape::Flat(ws[0])
        }
        (Op::Relu {} | Op::Add {}, s) => s,
        (Op::Batchnorm2d { .. }, s @ Shape::Chw(..))
        | (Op::Batchnorm1d { .. }, s @ Shape::Flat(_)) => s,
        (Op::Batchnorm1d { .. }, Shape::Chw(..)) => {
            return Err(bad(format!(
                "needs a flat input, got {cur:?}: use batchnorm2d"
            )));
        }
        (
            Op::Maxpool2d {
                kernel,
                stride,
                padding,
            }
            | Op::Avgpool2d {
                kernel,
                stride,
                padding,
            },
            Shape::Chw(c, h, w),
        ) => {
            let s = stride.unwrap_or(*kernel);
            if 2 * padding > *kernel {
                return Err(bad(format!(
                    "padding {padding} must be at most half the kernel {kernel}"
                )));
            }
            match (
                window_out(h, *kernel, s, *padding),
                window_out(w, *kernel, s, *padding),
            ) {
                (Some(oh), Some(ow)) => Shape::Chw(c, oh, ow),
                _ => {
                    return Err(bad(format!(
                        "kernel {kernel} (stride {s}, padding {padding}) does not fit input {h}x{w}"
                    )));
                }
            }
        }
        (Op::GlobalAvgpool {}, Shape::Chw(c, ..)) => Shape::Flat(c),
        (Op::Flatten {}, Shape::Chw(c, h, w)) => Shape::Flat(bounds::elems(
            index,
            "flatten",
            "values per sample",
            &[c, h, w],
            bounds::MAX_ACTIVATION_ELEMS,
        )?),
        (Op::Flatten {}, Shape::Flat(n)) => Shape::Flat(n),
        (Op::Linear { .. }, Shape::Chw(..)) => {
            return Err(bad(format!(
                "needs a flat input, got {cur:?}: add a flatten op"
            )));
        }
        (_, Shape::Flat(_)) => {
            return Err(bad(format!("needs a [C, H, W] input, got {cur:?}")));
        }
    })
}
