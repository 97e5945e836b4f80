//! Hard limits on what an ONNX file may declare, checked before anything is allocated (the
//! same style as [`crate::arch::bounds`]; the architecture's own limits apply on top).

use super::error::OnnxError;

/// Largest ONNX file read (bytes): protobuf itself stops at 2 GiB.
pub const MAX_FILE_BYTES: usize = 2 << 30;
/// Most nodes in the graph (ConstantOfShape placeholders included).
pub const MAX_NODES: usize = 20_000;
/// Most initializers in the graph.
pub const MAX_INITIALIZERS: usize = 20_000;
/// Most dimensions of one tensor.
pub const MAX_RANK: usize = 8;
/// Most elements of one tensor (as [`crate::arch::bounds::MAX_WEIGHT_ELEMS`]).
pub const MAX_TENSOR_ELEMS: usize = crate::arch::bounds::MAX_WEIGHT_ELEMS;
/// Most weight elements in one model, all tensors together (2 GiB as `f64`; VGG-19 has 144 M).
pub const MAX_TOTAL_ELEMS: usize = 1 << 28;
/// Most external data files one model may reference (onnx writes one per tensor unless told
/// to use one file; ResNet-152 has about 800 tensors).
pub const MAX_EXTERNAL_FILES: usize = 2048;
/// Longest external data `location` (bytes).
pub const MAX_LOCATION_BYTES: usize = 1024;
/// Most values of an integer tensor (a shape, pads).
pub const MAX_INT_VALUES: usize = 64;

/// `value <= max`, else [`OnnxError::TooLarge`].
pub(crate) fn at_most(what: &'static str, value: usize, max: usize) -> Result<(), OnnxError> {
    if value > max {
        return Err(OnnxError::TooLarge {
            what,
            value: value as u128,
            max: max as u128,
        });
    }
    Ok(())
}

/// The product of `dims`, else [`OnnxError::TooLarge`] when it passes `max` (or overflows).
pub(crate) fn elems(what: &'static str, dims: &[usize], max: usize) -> Result<usize, OnnxError> {
    let product = dims
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .unwrap_or(u128::MAX);
    if product > max as u128 {
        return Err(OnnxError::TooLarge {
            what,
            value: product,
            max: max as u128,
        });
    }
    Ok(product as usize)
}

/// The weight elements still allowed in this model.
#[derive(Debug)]
pub(crate) struct Budget {
    left: usize,
    max: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(MAX_TOTAL_ELEMS)
    }
}

impl Budget {
    /// A budget of `max` elements (at most [`MAX_TOTAL_ELEMS`]).
    pub(crate) fn new(max: usize) -> Self {
        let max = max.min(MAX_TOTAL_ELEMS);
        Budget { left: max, max }
    }

    /// Take `n` elements from the budget, else [`OnnxError::TooLarge`].
    pub(crate) fn spend(&mut self, n: usize) -> Result<(), OnnxError> {
        if n > self.left {
            return Err(OnnxError::TooLarge {
                what: "weight elements in the model",
                value: (self.max - self.left + n) as u128,
                max: self.max as u128,
            });
        }
        self.left -= n;
        Ok(())
    }
}
