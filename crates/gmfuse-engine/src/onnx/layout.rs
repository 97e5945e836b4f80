//! How each weight was read from the file ([`Layout`]), and writing fused weights back in the
//! file's own layout: the inverse of the transposes and scales [`super::import`] applied.

use std::collections::BTreeMap;

use ndarray::ArrayD;

use super::error::OnnxError;
use super::proto::{AttributeProto, GraphProto, NodeProto};
use super::tensor;
use super::values::Origin;
use crate::weights::{Tensor, WeightSet};

/// How weight `w` of the [`WeightSet`] was made from a tensor of the file: `w = reshape(scale ·
/// (transpose ? tᵀ : t))` where `t` has `dims`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub origin: Origin,
    pub dims: Vec<usize>,
    pub transpose: bool,
    pub scale: f64,
}

/// A 2-D array transposed (anything else unchanged), in standard layout.
pub(crate) fn transposed(a: &ArrayD<f64>) -> ArrayD<f64> {
    if a.ndim() != 2 {
        return a.clone();
    }
    a.t().as_standard_layout().into_owned()
}

impl Layout {
    /// The file's values for weight `w`, in the file's element order.
    fn file_values(&self, w: &ArrayD<f64>) -> Vec<f64> {
        let unscaled = w.mapv(|x| x / self.scale);
        let in_file_shape = if self.transpose {
            let rows = self.dims.get(1).copied().unwrap_or(1);
            let two = unscaled
                .into_shape_with_order(vec![rows, self.dims[0]])
                .expect("same count");
            transposed(&two)
        } else {
            unscaled
        };
        in_file_shape.iter().copied().collect()
    }
}

/// Replace, in `graph`, every tensor that `fused` names with its fused values, in the file's
/// layout and dtype. Checks every name and shape against `weights` (what reading gave) first.
pub(crate) fn replace(
    graph: &mut GraphProto,
    layouts: &BTreeMap<String, Layout>,
    weights: &WeightSet,
    fused: &WeightSet,
) -> Result<(), OnnxError> {
    let bad = |tensor: &str, reason: String| OnnxError::Fused {
        tensor: tensor.to_string(),
        reason,
    };
    for (name, t) in &fused.tensors {
        let (Some(layout), Some(read)) = (layouts.get(name), weights.tensors.get(name)) else {
            return Err(bad(name, "the model has no such weight".into()));
        };
        if t.data.shape() != read.data.shape() {
            return Err(bad(
                name,
                format!(
                    "shape {:?}, the model's is {:?}",
                    t.data.shape(),
                    read.data.shape()
                ),
            ));
        }
        if t.data.iter().any(|v| !v.is_finite()) {
            return Err(bad(name, "holds a non-finite value".into()));
        }
        let values = layout.file_values(&t.data);
        match &layout.origin {
            Origin::Initializer(i) => {
                let new = tensor::with_values(&graph.initializer[*i], &values);
                graph.initializer[*i] = new;
            }
            Origin::Constant(n) => {
                let attr = graph.node[*n]
                    .attribute
                    .iter_mut()
                    .find(|a| a.name.as_deref() == Some("value"))
                    .and_then(|a| a.t.as_mut())
                    .expect("read from this attribute");
                *attr = tensor::with_values(attr, &values);
            }
            Origin::Filled {
                node, dims, dtype, ..
            } => {
                let data = ArrayD::from_shape_vec(dims.clone(), values).expect("same count");
                let value = tensor::from_tensor(
                    "",
                    &Tensor {
                        dtype: *dtype,
                        data,
                    },
                );
                graph.node[*node] = as_constant(&graph.node[*node], value);
            }
        }
    }
    Ok(())
}

/// A `ConstantOfShape` node turned into a `Constant` node of the same name and output holding
/// `value` (a fill cannot hold fused values).
fn as_constant(node: &NodeProto, value: super::proto::TensorProto) -> NodeProto {
    NodeProto {
        input: Vec::new(),
        op_type: Some("Constant".into()),
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(super::proto::attribute_proto::AttributeType::Tensor as i32),
            t: Some(value),
            ..AttributeProto::default()
        }],
        ..node.clone()
    }
}
