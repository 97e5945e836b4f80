//! The values of an ONNX graph under import: activations (values of the [`ArchSpec`] being
//! built) and constants (initializers, `Constant` and `ConstantOfShape` nodes), read lazily so
//! that a model is refused for its first unsupported node before its weights are decoded.
//!
//! [`ArchSpec`]: crate::arch::ArchSpec

use std::collections::{HashMap, HashSet};

use ndarray::{ArrayD, IxDyn};

use super::attrs::NodeView;
use super::error::OnnxError;
use super::limits::{self, Budget};
use super::proto::{GraphProto, TensorProto};
use super::shapes::{Dim, Ints};
use super::tensor::{self, data_type};
use crate::weights::{DType, Tensor};

/// Where a constant lives in the file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Origin {
    /// `graph.initializer[i]`.
    Initializer(usize),
    /// The `value` attribute of `Constant` node `graph.node[i]`.
    Constant(usize),
    /// `ConstantOfShape` node `graph.node[i]`: dims and fill value.
    Filled {
        node: usize,
        dims: Vec<usize>,
        value: f64,
        dtype: DType,
    },
}

/// The layout of an activation in ONNX and in the spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    /// `[N, C, H, W]` in both.
    Chw(usize),
    /// `[N, F]` in both.
    Flat,
    /// A global average pool's output: flat in the spec, `[N, C, 1, 1]` in ONNX.
    Gap,
}

/// One named value of the graph.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// Spec value `v` (0: the input, `i + 1`: op `i`'s output).
    Act {
        v: usize,
        kind: Kind,
    },
    Const(Origin),
    /// A shape computation folded at import (see [`super::shapes`]).
    Folded(Ints),
    /// An output no later node may read (a Dropout mask, MaxPool indices).
    Unused,
}

/// Why a folded shape value cannot be read where an activation or a weight is expected.
fn folded_misuse(name: &str) -> String {
    format!(
        "input `{name}` is a shape computed from the graph (Shape, Gather, Concat, …), which \
         gmfuse reads only as a Reshape's target shape"
    )
}

/// The graph's named values and the constants taken as weights so far.
pub(crate) struct Values<'a> {
    graph: &'a GraphProto,
    vals: HashMap<String, Val>,
    taken: HashSet<String>,
    pub budget: Budget,
}

impl<'a> Values<'a> {
    /// The initializers, by name; the weights may hold `max_elems` elements in all.
    pub fn new(graph: &'a GraphProto, max_elems: usize) -> Result<Self, OnnxError> {
        limits::at_most(
            "initializer count",
            graph.initializer.len(),
            limits::MAX_INITIALIZERS,
        )?;
        let mut vals = HashMap::new();
        for (i, t) in graph.initializer.iter().enumerate() {
            let name = t.name.clone().unwrap_or_default();
            if vals
                .insert(name.clone(), Val::Const(Origin::Initializer(i)))
                .is_some()
            {
                return Err(OnnxError::Malformed(format!(
                    "initializer `{name}` is defined twice"
                )));
            }
        }
        Ok(Values {
            graph,
            vals,
            taken: HashSet::new(),
            budget: Budget::new(max_elems),
        })
    }

    /// The folded shape value `name`, if it is one.
    pub fn folded_value(&self, name: &str) -> Option<&Ints> {
        match self.vals.get(name) {
            Some(Val::Folded(ints)) => Some(ints),
            _ => None,
        }
    }

    pub fn is_const(&self, name: &str) -> bool {
        matches!(self.vals.get(name), Some(Val::Const(_)))
    }

    /// Define `name` (a node output); refuses a name defined twice.
    pub fn define(&mut self, node: &NodeView, name: &str, val: Val) -> Result<(), OnnxError> {
        if self.vals.insert(name.to_string(), val).is_some() {
            return Err(node.malformed(format!("output `{name}` is defined twice")));
        }
        Ok(())
    }

    /// The activation `name` that `node` reads.
    pub fn act(&self, node: &NodeView, name: &str) -> Result<(usize, Kind), OnnxError> {
        match self.vals.get(name) {
            Some(Val::Act { v, kind }) => Ok((*v, *kind)),
            Some(Val::Const(_)) => Err(node.unsupported(format!(
                "input `{name}` is a constant where gmfuse expects an activation"
            ))),
            Some(Val::Unused) => {
                Err(node.unsupported(format!("reads `{name}`, an output gmfuse does not compute")))
            }
            Some(Val::Folded(_)) => Err(node.unsupported(folded_misuse(name))),
            None => Err(node.malformed(format!("input `{name}` is not defined before the node"))),
        }
    }

    /// Input `name` of a shape computation: a folded value, or an int64/int32 constant of at
    /// most one dimension.
    pub fn folded(&self, node: &NodeView, name: &str) -> Result<Ints, OnnxError> {
        let refuse = |what: &str| {
            node.unsupported(format!(
                "input `{name}` is {what}; gmfuse reads {} only in shape computations (integer \
                 vectors from `Shape` and constants, ending in a Reshape's shape)",
                node.op
            ))
        };
        let origin = match self.vals.get(name) {
            Some(Val::Folded(ints)) => return Ok(ints.clone()),
            Some(Val::Const(o)) => o,
            Some(Val::Act { .. }) => return Err(refuse("an activation")),
            Some(Val::Unused) => return Err(refuse("an output gmfuse does not compute")),
            None => {
                return Err(
                    node.malformed(format!("input `{name}` is not defined before the node"))
                );
            }
        };
        let t = match self.proto(origin) {
            Some(t) if matches!(t.data_type, Some(data_type::INT64 | data_type::INT32)) => t,
            _ => return Err(refuse("a constant that is not an integer tensor")),
        };
        let values: Vec<Dim> = tensor::to_ints(t, name)?
            .into_iter()
            .map(Dim::Known)
            .collect();
        match t.dims.len() {
            0 if values.len() == 1 => Ok(Ints::scalar(values[0])),
            1 => Ints::vector(values),
            _ => Err(refuse("an integer constant of more than one dimension")),
        }
    }

    fn origin(&self, node: &NodeView, name: &str) -> Result<Origin, OnnxError> {
        match self.vals.get(name) {
            Some(Val::Const(o)) => Ok(o.clone()),
            Some(Val::Folded(_)) => Err(node.unsupported(folded_misuse(name))),
            Some(_) => Err(node.unsupported(format!(
                "input `{name}` must be a constant (an initializer)"
            ))),
            None => Err(node.malformed(format!("input `{name}` is not defined before the node"))),
        }
    }

    fn proto(&self, origin: &Origin) -> Option<&'a TensorProto> {
        match origin {
            Origin::Initializer(i) => self.graph.initializer.get(*i),
            Origin::Constant(n) => self.graph.node[*n]
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("value"))
                .and_then(|a| a.t.as_ref()),
            Origin::Filled { .. } => None,
        }
    }

    /// Take constant `name` as a weight: decoded, counted against the budget, and never
    /// taken again (a tensor shared by two nodes is refused).
    pub fn weight(&mut self, node: &NodeView, name: &str) -> Result<(Tensor, Origin), OnnxError> {
        let origin = self.origin(node, name)?;
        if !self.taken.insert(name.to_string()) {
            return Err(node.unsupported(format!("tensor `{name}` is shared with another node")));
        }
        let tensor = match &origin {
            Origin::Filled {
                dims, value, dtype, ..
            } => {
                let n = limits::elems("tensor elements", dims, limits::MAX_TENSOR_ELEMS)?;
                self.budget.spend(n)?;
                Tensor {
                    dtype: *dtype,
                    data: ArrayD::from_elem(IxDyn(dims), *value),
                }
            }
            o => tensor::to_tensor(self.proto(o).expect("defined"), name, &mut self.budget)?,
        };
        Ok((tensor, origin))
    }

    /// Constant `name` as integers (a shape, pads).
    pub fn ints(&self, node: &NodeView, name: &str) -> Result<Vec<i64>, OnnxError> {
        let origin = self.origin(node, name)?;
        match self.proto(&origin) {
            Some(t) => tensor::to_ints(t, name),
            None => Err(node.unsupported(format!("`{name}` must be an integer constant"))),
        }
    }

    /// Constant `name` as one float (Pad's constant value).
    pub fn scalar(&self, node: &NodeView, name: &str) -> Result<f64, OnnxError> {
        let origin = self.origin(node, name)?;
        let mut budget = Budget::default();
        let t = match self.proto(&origin) {
            Some(t) => tensor::to_tensor(t, name, &mut budget)?,
            None => return Err(node.unsupported(format!("`{name}` must be a constant"))),
        };
        t.data
            .iter()
            .next()
            .copied()
            .filter(|_| t.data.len() == 1)
            .ok_or_else(|| node.unsupported(format!("`{name}` must hold one value")))
    }

    /// A `ConstantOfShape` node (`graph.node[index]`) with a constant shape: a fill.
    pub fn filled(&self, node: &NodeView, index: usize) -> Result<Origin, OnnxError> {
        let shape = self.ints(node, node.required(0)?)?;
        let dims = shape
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .map_err(|_| node.malformed(format!("shape {shape:?} is negative")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        limits::at_most("tensor rank", dims.len(), limits::MAX_RANK)?;
        limits::elems("tensor elements", &dims, limits::MAX_TENSOR_ELEMS)?;
        let (value, dtype) = match node.tensor("value") {
            None => (0.0, DType::F32),
            Some(t) => {
                let mut budget = Budget::default();
                let v = tensor::to_tensor(t, "value", &mut budget)?;
                if v.data.len() != 1 {
                    return Err(node.malformed("`value` must hold one value"));
                }
                (v.data.iter().next().copied().unwrap_or(0.0), v.dtype)
            }
        };
        Ok(Origin::Filled {
            node: index,
            dims,
            value,
            dtype,
        })
    }
}

impl Values<'_> {
    /// The dims of constant `name` without decoding it.
    pub fn dims_of(&self, node: &NodeView, name: &str) -> Result<Vec<usize>, OnnxError> {
        match self.origin(node, name)? {
            Origin::Filled { dims, .. } => Ok(dims),
            o => Ok(self
                .proto(&o)
                .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
                .unwrap_or_default()),
        }
    }
}
