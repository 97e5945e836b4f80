//! Hard limits on what an [`ArchSpec`] may describe, so that every size the engine later
//! allocates is known to be finite and small enough to compute with before anything runs.
//!
//! Shape inference ([`ArchSpec::shapes_with`]) calls these checks op by op: each op's own
//! parameters (padding, kernel, stride) first, then the shape it produces, with checked
//! arithmetic throughout. A violation is an [`ArchError::Limit`] that names the op, the
//! quantity, its value and the limit. The limits are deliberately generous (far above any
//! network gmfuse can fuse in reasonable time); the job budgets of
//! [`estimate`](crate::estimate) are the finer, configurable bound.

use super::error::ArchError;
use super::spec::{ArchSpec, Op, Shape};

/// Most ops in one spec.
pub const MAX_OPS: usize = 512;
/// Largest height or width of a sample anywhere in the network (input included).
pub const MAX_SPATIAL: usize = 4096;
/// Most channels of a `[C, H, W]` sample, and most outputs of a conv2d or linear layer.
pub const MAX_WIDTH: usize = 65_536;
/// Largest side of a convolution kernel or a pooling window.
pub const MAX_KERNEL: usize = 256;
/// Largest stride of a convolution or a pooling window.
pub const MAX_STRIDE: usize = 256;
/// Largest padding of a `pad2d`, a convolution or a pooling window.
pub const MAX_PADDING: usize = 256;
/// Most values of one sample between two ops (`C·H·W` or a flat length): 16 Mi, 64 MiB in `f32`.
pub const MAX_ACTIVATION_ELEMS: usize = 1 << 24;
/// Most elements of one weight tensor: 256 Mi, 1 GiB in `f32`.
pub const MAX_WEIGHT_ELEMS: usize = 1 << 28;

/// `value <= max`, else [`ArchError::Limit`] for op `index`.
fn at_most(
    index: usize,
    op: &'static str,
    what: &'static str,
    value: usize,
    max: usize,
) -> Result<(), ArchError> {
    if value > max {
        return Err(ArchError::Limit {
            index,
            op,
            what,
            value: value as u128,
            max: max as u128,
        });
    }
    Ok(())
}

/// The number of values of `dims`, or [`ArchError::Limit`] when it passes `max` (or overflows).
pub(crate) fn elems(
    index: usize,
    op: &'static str,
    what: &'static str,
    dims: &[usize],
    max: usize,
) -> Result<usize, ArchError> {
    let product = dims
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .unwrap_or(u128::MAX);
    if product > max as u128 {
        return Err(ArchError::Limit {
            index,
            op,
            what,
            value: product,
            max: max as u128,
        });
    }
    Ok(product as usize)
}

impl ArchSpec {
    /// The spec-wide limits: the op count and the input shape.
    pub(crate) fn check_global_limits(&self) -> Result<(), ArchError> {
        at_most(0, "spec", "op count", self.ops.len(), MAX_OPS)?;
        let [c, h, w] = self.input;
        at_most(0, "input", "channels", c, MAX_WIDTH)?;
        at_most(0, "input", "height", h, MAX_SPATIAL)?;
        at_most(0, "input", "width", w, MAX_SPATIAL)?;
        elems(
            0,
            "input",
            "values per sample",
            &self.input,
            MAX_ACTIVATION_ELEMS,
        )?;
        Ok(())
    }
}

/// Op `index`'s own parameters, before its output shape is computed.
pub(crate) fn check_op_params(index: usize, op: &Op) -> Result<(), ArchError> {
    let kind = op.kind();
    match op {
        Op::Pad2d { padding, .. } => at_most(index, kind, "padding", *padding, MAX_PADDING),
        Op::Conv2d {
            stride, padding, ..
        } => {
            at_most(index, kind, "stride", *stride, MAX_STRIDE)?;
            at_most(index, kind, "padding", *padding, MAX_PADDING)
        }
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
            at_most(index, kind, "kernel", *kernel, MAX_KERNEL)?;
            at_most(index, kind, "stride", stride.unwrap_or(*kernel), MAX_STRIDE)?;
            at_most(index, kind, "padding", *padding, MAX_PADDING)
        }
        Op::Linear { .. }
        | Op::Batchnorm2d { .. }
        | Op::Batchnorm1d { .. }
        | Op::Relu {}
        | Op::Add {}
        | Op::GlobalAvgpool {}
        | Op::Flatten {} => Ok(()),
    }
}

/// A conv2d weight `[out, in, kh, kw]`: its width, kernel and element count.
pub(crate) fn check_conv_weight(index: usize, ws: &[usize]) -> Result<(), ArchError> {
    at_most(index, "conv2d", "output channels", ws[0], MAX_WIDTH)?;
    at_most(index, "conv2d", "kernel height", ws[2], MAX_KERNEL)?;
    at_most(index, "conv2d", "kernel width", ws[3], MAX_KERNEL)?;
    elems(index, "conv2d", "weight elements", ws, MAX_WEIGHT_ELEMS).map(|_| ())
}

/// A linear weight `[out, in]`: its width and element count.
pub(crate) fn check_linear_weight(index: usize, ws: &[usize]) -> Result<(), ArchError> {
    at_most(index, "linear", "output features", ws[0], MAX_WIDTH)?;
    elems(index, "linear", "weight elements", ws, MAX_WEIGHT_ELEMS).map(|_| ())
}

/// The `[C, H, W]` sample a convolution reads after its own zero padding.
pub(crate) fn check_padded(
    index: usize,
    (c, h, w): (usize, usize, usize),
    padding: usize,
) -> Result<(), ArchError> {
    let side = |s: usize| s.saturating_add(padding.saturating_mul(2));
    elems(
        index,
        "conv2d",
        "padded values per sample",
        &[c, side(h), side(w)],
        MAX_ACTIVATION_ELEMS,
    )
    .map(|_| ())
}

/// The shape op `index` produces.
pub(crate) fn check_shape(index: usize, op: &'static str, shape: Shape) -> Result<(), ArchError> {
    match shape {
        Shape::Chw(c, h, w) => {
            at_most(index, op, "channels", c, MAX_WIDTH)?;
            at_most(index, op, "height", h, MAX_SPATIAL)?;
            at_most(index, op, "width", w, MAX_SPATIAL)?;
            elems(
                index,
                op,
                "values per sample",
                &[c, h, w],
                MAX_ACTIVATION_ELEMS,
            )
            .map(|_| ())
        }
        Shape::Flat(n) => at_most(index, op, "values per sample", n, MAX_ACTIVATION_ELEMS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::preset;

    fn spec(ops: serde_json::Value) -> ArchSpec {
        serde_json::from_value(serde_json::json!({"name": "t", "input": [1, 28, 28], "ops": ops}))
            .unwrap()
    }

    fn limit_of(spec: &ArchSpec) -> (usize, &'static str, &'static str, u128) {
        match spec.shapes_with(|_| Some(vec![1, 1, 1, 1])) {
            Err(ArchError::Limit {
                index,
                op,
                what,
                value,
                ..
            }) => (index, op, what, value),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn the_160_gb_padding_is_refused_naming_op_and_value() {
        let s = spec(serde_json::json!([{"op": "pad2d", "mode": "zero", "padding": 100000}]));
        assert_eq!(limit_of(&s), (0, "pad2d", "padding", 100_000));
        let msg = s.shapes_with(|_| None).unwrap_err().to_string();
        assert_eq!(msg, "op 0 (pad2d): padding 100000 is over the limit of 256");
    }

    #[test]
    fn padding_that_would_overflow_is_refused_without_panicking() {
        let s = spec(serde_json::json!([{"op": "pad2d", "mode": "zero", "padding": u64::MAX}]));
        assert_eq!(limit_of(&s).3, u128::from(u64::MAX));
        let s = spec(serde_json::json!([{"op": "conv2d", "weight": "w", "padding": u64::MAX}]));
        assert_eq!(limit_of(&s).2, "padding");
    }

    #[test]
    fn pool_kernels_strides_and_op_counts_are_bounded() {
        let s = spec(serde_json::json!([{"op": "maxpool2d", "kernel": 5000}]));
        assert_eq!(limit_of(&s), (0, "maxpool2d", "kernel", 5000));
        let s = spec(serde_json::json!([{"op": "avgpool2d", "kernel": 2, "stride": 1_000_000}]));
        assert_eq!(limit_of(&s), (0, "avgpool2d", "stride", 1_000_000));
        let s = spec(serde_json::json!(vec![
            serde_json::json!({"op": "relu"});
            600
        ]));
        assert_eq!(limit_of(&s), (0, "spec", "op count", 600));
    }

    #[test]
    fn stacked_paddings_stop_at_the_activation_limit() {
        // Each pad2d adds 512 to both sides: 28 → 540 → 1052 → 1564 …; with 64 channels from a
        // 1×1 conv, 64·540·540 = 18.6 M values already exceed 16 Mi.
        let s = spec(serde_json::json!([
            {"op": "pad2d", "mode": "zero", "padding": 256},
            {"op": "conv2d", "weight": "w"}
        ]));
        let err = s.shapes_with(|_| Some(vec![64, 1, 1, 1])).unwrap_err();
        assert_eq!(
            err,
            ArchError::Limit {
                index: 1,
                op: "conv2d",
                what: "values per sample",
                value: 64 * 540 * 540,
                max: MAX_ACTIVATION_ELEMS as u128
            }
        );
    }

    #[test]
    fn huge_kernels_and_widths_in_the_weights_are_refused() {
        let s = spec(serde_json::json!([{"op": "conv2d", "weight": "w"}]));
        let err = s.shapes_with(|_| Some(vec![4, 1, 300, 300])).unwrap_err();
        assert!(matches!(
            err,
            ArchError::Limit {
                what: "kernel height",
                value: 300,
                ..
            }
        ));
        let err = s.shapes_with(|_| Some(vec![100_000, 1, 1, 1])).unwrap_err();
        assert!(matches!(
            err,
            ArchError::Limit {
                what: "output channels",
                ..
            }
        ));
        let s = spec(serde_json::json!([{"op": "flatten"}, {"op": "linear", "weight": "w"}]));
        let err = s.shapes_with(|_| Some(vec![1 << 20, 784])).unwrap_err();
        assert!(matches!(
            err,
            ArchError::Limit {
                what: "output features",
                ..
            }
        ));
        let err = s.shapes_with(|_| Some(vec![60_000, 784 * 8])).unwrap_err();
        assert!(matches!(
            err,
            ArchError::Limit {
                what: "weight elements",
                ..
            }
        ));
    }

    #[test]
    fn inputs_are_bounded_too() {
        let mut s = preset("mnist-cnn").unwrap();
        s.input = [1, 100_000, 2];
        assert_eq!(limit_of(&s), (0, "input", "height", 100_000));
        s.input = [usize::MAX, usize::MAX, usize::MAX];
        assert_eq!(limit_of(&s).2, "channels");
    }

    #[test]
    fn the_preset_is_well_inside_every_limit() {
        let s = preset("mnist-cnn").unwrap();
        let shapes = s
            .shapes_with(|n| {
                Some(match n {
                    "conv1.weight" => vec![32, 1, 5, 5],
                    "conv2.weight" => vec![64, 32, 5, 5],
                    "fc1.weight" => vec![32, 3136],
                    _ => vec![10, 32],
                })
            })
            .unwrap();
        assert_eq!(shapes.last(), Some(&Shape::Flat(10)));
    }
}
