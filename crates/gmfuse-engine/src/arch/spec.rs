//! The [`ArchSpec`] document, its ops and shape inference.

use serde::{Deserialize, Serialize};

use super::bounds;

/// How `pad2d` fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Repeat the edge value (PyTorch `ReplicationPad2d`).
    Replicate,
    /// Fill with zeros (PyTorch `ZeroPad2d`).
    Zero,
}

fn one() -> usize {
    1
}

/// One layer of a sequential network. Tensors are named by their safetensors keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Op {
    /// Pad height and width by `padding` on every side.
    Pad2d { mode: PadMode, padding: usize },
    /// 2-D cross-correlation; `weight` is `[out, in, kh, kw]`, `bias` is `[out]`.
    Conv2d {
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on every side.
        #[serde(default)]
        padding: usize,
    },
    /// `y = x Wᵀ + b`; `weight` is `[out, in]`, `bias` is `[out]`.
    Linear {
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
    },
    /// `max(x, 0)`. An empty struct variant, so that unknown fields are refused like any other op's.
    Relu {},
    /// Max pooling; padding counts as −∞ (PyTorch semantics, floor mode).
    Maxpool2d {
        kernel: usize,
        /// Defaults to `kernel`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// Average pooling; padding counts as zeros and is included in the divisor (PyTorch default).
    Avgpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// `(C, H, W)` → `C·H·W`, channel-major.
    Flatten {},
}

/// A network: the shape of one input sample `[C, H, W]` and its ops in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    pub name: String,
    /// One sample's shape, `[channels, height, width]`.
    pub input: [usize; 3],
    pub ops: Vec<Op>,
}

/// The shape of one sample between two ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Chw(usize, usize, usize),
    /// A flat feature vector.
    Flat(usize),
}

/// Why a spec is invalid or does not fit a set of weights.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArchError {
    #[error("unknown architecture preset `{0}`")]
    UnknownPreset(String),
    #[error("preset `{0}` is read from a model's tensors: resolve it with `preset_for`")]
    ShapeDriven(String),
    #[error("preset `{preset}` does not fit these tensors: {reason}")]
    PresetMismatch { preset: String, reason: String },
    #[error("op {index} ({op}): {reason}")]
    BadOp {
        index: usize,
        op: &'static str,
        reason: String,
    },
    #[error("architecture has no conv2d or linear layer")]
    NoLayers,
    #[error("tensor `{name}` is required by op {index} but missing from the weights")]
    MissingTensor { name: String, index: usize },
    #[error("tensor `{name}`: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("tensor `{0}` is used by more than one op")]
    TensorReused(String),
    #[error("tensor `{0}` is not used by the architecture")]
    UnusedTensor(String),
    #[error("the network's output must be flat, got {0:?}")]
    OutputNotFlat(Shape),
    /// A size over one of the hard limits of [`super::bounds`].
    #[error("op {index} ({op}): {what} {value} is over the limit of {max}")]
    Limit {
        index: usize,
        op: &'static str,
        what: &'static str,
        value: u128,
        max: u128,
    },
}

impl Op {
    /// The op's name as written in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Pad2d { .. } => "pad2d",
            Op::Conv2d { .. } => "conv2d",
            Op::Linear { .. } => "linear",
            Op::Relu {} => "relu",
            Op::Maxpool2d { .. } => "maxpool2d",
            Op::Avgpool2d { .. } => "avgpool2d",
            Op::Flatten {} => "flatten",
        }
    }
}

/// Output length of a sliding window, or `None` when the window does not fit.
fn window_out(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size.checked_add(padding.checked_mul(2)?)?;
    if kernel == 0 || stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

impl ArchSpec {
    /// Shapes of one sample before the first op and after each op (`ops.len() + 1` entries),
    /// computed from the spec alone. Convolution and linear widths come from
    /// `weight_shape(name)`, which yields the tensor's shape if known.
    pub fn shapes_with(
        &self,
        weight_shape: impl Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Vec<Shape>, ArchError> {
        self.check_global_limits()?;
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(ArchError::BadOp {
                index: 0,
                op: "input",
                reason: format!("input shape {:?} has a zero dimension", self.input),
            });
        }
        let mut shapes = vec![Shape::Chw(c, h, w)];
        for (index, op) in self.ops.iter().enumerate() {
            let bad = |reason: String| ArchError::BadOp {
                index,
                op: op.kind(),
                reason,
            };
            let cur = *shapes.last().expect("non-empty");
            bounds::check_op_params(index, op)?;
            let next = match (op, cur) {
                (Op::Pad2d { padding, .. }, Shape::Chw(c, h, w)) => Shape::Chw(
                    c,
                    h.checked_add(2 * padding)
                        .ok_or_else(|| bad("padding overflows".into()))?,
                    w.checked_add(2 * padding)
                        .ok_or_else(|| bad("padding overflows".into()))?,
                ),
                (
                    Op::Conv2d {
                        weight,
                        stride,
                        padding,
                        ..
                    },
                    Shape::Chw(c, h, w),
                ) => {
                    let ws = weight_shape(weight).ok_or_else(|| ArchError::MissingTensor {
                        name: weight.clone(),
                        index,
                    })?;
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
                    let ws = weight_shape(weight).ok_or_else(|| ArchError::MissingTensor {
                        name: weight.clone(),
                        index,
                    })?;
                    if ws.len() != 2 {
                        return Err(bad(format!("weight `{weight}` must be 2-D, got {ws:?}")));
                    }
                    bounds::check_linear_weight(index, &ws)?;
                    Shape::Flat(ws[0])
                }
                (Op::Relu {}, s) => s,
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
            };
            if matches!(
                next,
                Shape::Chw(0, ..) | Shape::Chw(_, 0, _) | Shape::Chw(_, _, 0) | Shape::Flat(0)
            ) {
                return Err(bad(format!("produces an empty shape {next:?}")));
            }
            bounds::check_shape(index, op.kind(), next)?;
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// Names of the tensors the ops use, in op order (weight before bias).
    pub fn tensor_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for op in &self.ops {
            if let Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias } = op {
                names.push(weight.as_str());
                if let Some(b) = bias {
                    names.push(b.as_str());
                }
            }
        }
        names
    }
}
