//! The importer's shape nodes: `Shape`, `Gather`, `Unsqueeze`, `Squeeze`, `Concat`, `Slice`,
//! `Cast` (to int64), `Mul`, `Div` and integer `Constant`s folded into [`Ints`] values that
//! produce no spec op, and the `Flatten`/`Reshape` they end in, which become the spec's flatten.

use super::attrs::NodeView;
use super::error::OnnxError;
use super::import::Builder;
use super::shapes::{self, Dim, Ints};
use super::spec;
use super::tensor::data_type;
use super::values::{Kind, Val};
use crate::arch::{Op, Shape};

/// The ops folded as shape computations (besides `Constant`, `Identity`, `Reshape`).
pub(crate) const FOLDED: [&str; 9] = [
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Cast",
    "Mul",
    "Div",
];

impl Builder<'_> {
    /// Fold one of the [`FOLDED`] ops: its output is a shape value.
    pub(crate) fn fold(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let input = node.required(0)?;
        let reason = |why: String| node.unsupported(why);
        let out = match node.op {
            "Shape" => self.shape(node, input)?,
            "Gather" => {
                let data = self.vals.folded(node, input)?;
                let indices = self.vals.folded(node, node.required(1)?)?;
                if !matches!(node.int("axis", 0), 0 | -1) {
                    return Err(reason("Gather along an axis other than 0".into()));
                }
                shapes::gather(&data, &indices).map_err(reason)?
            }
            "Unsqueeze" | "Squeeze" => {
                let x = self.vals.folded(node, input)?;
                let axes = match node.input(1) {
                    Some(a) => Some(self.known(node, a)?),
                    None => Some(node.ints("axes")?).filter(|a| !a.is_empty()),
                };
                if node.op == "Squeeze" {
                    shapes::squeeze(&x, axes.as_deref()).map_err(reason)?
                } else {
                    shapes::unsqueeze(&x, axes.as_deref().unwrap_or_default()).map_err(reason)?
                }
            }
            "Concat" => {
                if !matches!(node.int("axis", 0), 0 | -1) {
                    return Err(reason("Concat along an axis other than 0".into()));
                }
                let mut joined = Ints::vector(vec![])?;
                for name in &node.node.input {
                    let part = self.vals.folded(node, name)?;
                    if part.scalar {
                        return Err(reason(format!("Concat of scalar `{name}`")));
                    }
                    joined = shapes::concat(&[joined, part])?;
                }
                joined
            }
            "Slice" => self.slice(node, input)?,
            "Cast" => {
                let to = node.int("to", 0);
                if to != i64::from(data_type::INT64) {
                    return Err(reason(format!(
                        "Cast to ONNX data type {to} (only int64, in shape computations)"
                    )));
                }
                self.vals.folded(node, input)?
            }
            "Mul" | "Div" => {
                let (a, b) = (self.vals.folded(node, input)?, node.required(1)?);
                shapes::arith(node.op, &a, &self.vals.folded(node, b)?).map_err(reason)?
            }
            _ => unreachable!("only FOLDED ops are folded"),
        };
        self.vals.define(node, node.output()?, Val::Folded(out))
    }

    /// `Identity`/`Dropout`: another name of its input, a folded value or an activation.
    pub(crate) fn alias_or_fold(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let input = node.required(0)?;
        match self.vals.folded_value(input) {
            Some(ints) => {
                let ints = ints.clone();
                self.vals.define(node, node.output()?, Val::Folded(ints))
            }
            None => self.alias(node, input),
        }
    }

    /// `Shape(x)` with its `start`/`end` (opset 15): an activation's dims are `[N, C, H, W]` or
    /// `[N, F]`, a constant's its own, a folded vector's its length.
    fn shape(&mut self, node: &NodeView, input: &str) -> Result<Ints, OnnxError> {
        let dims: Vec<Dim> = if let Ok((v, kind)) = self.vals.act(node, input) {
            self.act_dims(v, kind)?
        } else if let Ok(x) = self.vals.folded(node, input) {
            let len = if x.scalar { vec![] } else { vec![x.dims.len()] };
            len.into_iter().map(|d| Dim::Known(d as i64)).collect()
        } else {
            let dims = self.vals.dims_of(node, input)?;
            dims.into_iter().map(|d| Dim::Known(d as i64)).collect()
        };
        let end = node.int("end", i64::MAX);
        let range = shapes::clamp_range(dims.len(), node.int("start", 0), end);
        Ints::vector(dims[range].to_vec())
    }

    /// `Slice` (starts/ends/axes/steps as inputs from opset 10, attributes before) along axis 0.
    fn slice(&self, node: &NodeView, input: &str) -> Result<Ints, OnnxError> {
        let x = self.vals.folded(node, input)?;
        let (starts, ends, axes, steps) = if node.input(1).is_some() {
            let optional = |i: usize| match node.input(i) {
                Some(name) => self.known(node, name),
                None => Ok(vec![]),
            };
            (
                self.vals.folded(node, node.required(1)?)?,
                self.vals.folded(node, node.required(2)?)?,
                optional(3)?,
                optional(4)?,
            )
        } else {
            let known = |v: Vec<i64>| Ints::vector(v.into_iter().map(Dim::Known).collect());
            (
                known(node.ints("starts")?)?,
                known(node.ints("ends")?)?,
                node.ints("axes")?,
                vec![],
            )
        };
        if !matches!(axes.as_slice(), [] | [0] | [-1]) {
            return Err(node.unsupported(format!("Slice along axes {axes:?} (only axis 0)")));
        }
        shapes::slice(&x, &starts, &ends, &steps).map_err(|why| node.unsupported(why))
    }

    /// Input `name` of a shape computation, all of whose values are known.
    fn known(&self, node: &NodeView, name: &str) -> Result<Vec<i64>, OnnxError> {
        let ints = self.vals.folded(node, name)?;
        ints.known()
            .ok_or_else(|| node.unsupported(format!("`{name}` = {ints} depends on the batch size")))
    }

    /// The ONNX dims of activation `v`: `[N, C, H, W]`, `[N, F]`, or `[N, C, 1, 1]` for a
    /// global pool's output, from the shapes of the spec imported so far (computed again only
    /// when ops were added since).
    fn act_dims(&mut self, v: usize, kind: Kind) -> Result<Vec<Dim>, OnnxError> {
        if self.shapes.len() <= v {
            let weights = &self.imported.weights.tensors;
            let graph = spec::to_spec("", &self.imported)
                .graph_with(|n| weights.get(n).map(|t| t.data.shape().to_vec()))?;
            self.shapes = graph.shapes;
        }
        let k = |d: usize| Dim::Known(d as i64);
        Ok(match (kind, self.shapes[v]) {
            (Kind::Gap, Shape::Flat(c)) => vec![Dim::Batch, k(c), k(1), k(1)],
            (_, Shape::Chw(c, h, w)) => vec![Dim::Batch, k(c), k(h), k(w)],
            (_, Shape::Flat(f)) => vec![Dim::Batch, k(f)],
        })
    }

    /// The padding of a Conv or pool over activation `v` with `kernel` `[kh, kw]` and `stride`:
    /// its explicit symmetric `pads`, or the `auto_pad` `SAME_UPPER`/`SAME_LOWER` padding when
    /// that is the same on every side (`VALID`: none).
    pub(crate) fn padding(
        &mut self,
        node: &NodeView,
        v: usize,
        kind: Kind,
        kernel: [usize; 2],
        stride: usize,
    ) -> Result<usize, OnnxError> {
        let auto = node.string("auto_pad", "NOTSET");
        if !matches!(auto.as_str(), "SAME_UPPER" | "SAME_LOWER") {
            return node.symmetric_pads();
        }
        let dims = self.act_dims(v, kind)?;
        let [Dim::Batch, _, Dim::Known(h), Dim::Known(w)] = dims.as_slice() else {
            return Err(node.unsupported(format!("auto_pad {auto} over a flat input")));
        };
        let totals: Vec<i64> = [(*h, kernel[0]), (*w, kernel[1])]
            .iter()
            .map(|&(len, k)| shapes::same_padding(len, k as i64, stride.max(1) as i64))
            .collect();
        match totals.as_slice() {
            [a, b] if a == b && a % 2 == 0 => Ok((a / 2) as usize),
            _ => Err(node.unsupported(format!(
                "auto_pad {auto} pads height and width by {totals:?} in all, which is not the \
                 same on every side (only symmetric padding)"
            ))),
        }
    }

    /// `Reshape(x, shape)` where `shape` (a constant or a folded computation) flattens `x`.
    /// A Reshape of a folded value (the dynamo exporter's `Reshape(N, [-1])`) folds too.
    pub(crate) fn reshape(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let data = node.required(0)?;
        if let Some(x) = self.vals.folded_value(data).cloned() {
            let target = self.known(node, node.required(1)?)?;
            let out = shapes::reshape_folded(&x, &target).map_err(|why| node.unsupported(why))?;
            return self.vals.define(node, node.output()?, Val::Folded(out));
        }
        let (v, kind) = self.vals.act(node, data)?;
        let target = self.vals.folded(node, node.required(1)?)?;
        let x = self.act_dims(v, kind)?;
        let allowzero = node.int("allowzero", 0) != 0;
        shapes::flatten_target(&target, &x, self.batch, allowzero)
            .map_err(|why| node.unsupported(why))?;
        self.flatten(node)
    }

    pub(crate) fn flatten(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let (v, kind) = self.vals.act(node, node.required(0)?)?;
        if kind == Kind::Gap {
            let out = node.output()?;
            // The pool's spec op is known by the flattened value's name.
            self.imported.ops[v - 1].2 = out.to_string();
            return self.vals.define(
                node,
                out,
                Val::Act {
                    v,
                    kind: Kind::Flat,
                },
            );
        }
        self.push(node, Op::Flatten {}, vec![v], Kind::Flat)
            .map(|_| ())
    }
}
