//! Reading a node's attributes and inputs, each refusal an [`OnnxError::Unsupported`] or
//! [`OnnxError::Malformed`] naming the node.

use super::error::OnnxError;
use super::proto::{AttributeProto, NodeProto, TensorProto};
use super::shapes::{Dim, Ints};

/// How a node is named in errors: its `name`, else its first output.
pub(crate) fn node_label(node: &NodeProto) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => node
            .output
            .first()
            .map_or_else(|| "(unnamed)".to_string(), |o| o.clone()),
    }
}

/// One node under import: its label, op type and attributes.
pub(crate) struct NodeView<'a> {
    pub node: &'a NodeProto,
    pub label: String,
    pub op: &'a str,
}

impl<'a> NodeView<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        NodeView {
            node,
            label: node_label(node),
            op: node.op_type.as_deref().unwrap_or(""),
        }
    }

    /// [`OnnxError::Unsupported`] for this node.
    pub fn unsupported(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::unsupported(&self.label, self.op, reason)
    }

    /// [`OnnxError::Malformed`] naming this node.
    pub fn malformed(&self, reason: impl std::fmt::Display) -> OnnxError {
        OnnxError::Malformed(format!("node `{}` ({}): {reason}", self.label, self.op))
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    /// Integer attribute `name`, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// Float attribute `name`, or `default`.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).and_then(|a| a.f).unwrap_or(default)
    }

    /// Integer list attribute `name` (empty when absent), at most 16 values.
    pub fn ints(&self, name: &str) -> Result<Vec<i64>, OnnxError> {
        let v = self.attr(name).map(|a| a.ints.clone()).unwrap_or_default();
        if v.len() > 16 {
            return Err(self.malformed(format!("attribute `{name}` has {} values", v.len())));
        }
        Ok(v)
    }

    /// String attribute `name`, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name).and_then(|a| a.s.as_deref()).map_or_else(
            || default.to_string(),
            |s| String::from_utf8_lossy(s).into_owned(),
        )
    }

    /// A `Constant`'s `value_int` (a scalar) or `value_ints` (a vector) as a folded shape value.
    pub fn int_values(&self) -> Result<Option<Ints>, OnnxError> {
        if let Some(i) = self.attr("value_int").and_then(|a| a.i) {
            return Ok(Some(Ints::scalar(Dim::Known(i))));
        }
        if self.attr("value_ints").is_none() {
            return Ok(None);
        }
        let values = self.ints("value_ints")?.into_iter().map(Dim::Known);
        Ints::vector(values.collect()).map(Some)
    }

    /// Tensor attribute `name`.
    pub fn tensor(&self, name: &str) -> Option<&'a TensorProto> {
        self.attr(name).and_then(|a| a.t.as_ref())
    }

    /// Input `i` when present and not empty (an omitted optional input is `""`).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Input `i`, which the op requires.
    pub fn required(&self, i: usize) -> Result<&'a str, OnnxError> {
        self.input(i)
            .ok_or_else(|| self.malformed(format!("input {i} is missing")))
    }

    /// The node's first output.
    pub fn output(&self) -> Result<&'a str, OnnxError> {
        self.node
            .output
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.malformed("has no output"))
    }

    /// `[a, a]` from a 2-value attribute (`default` when absent): refuses unequal values.
    pub fn square(&self, name: &str, default: i64) -> Result<usize, OnnxError> {
        let v = self.ints(name)?;
        let (a, b) = match v.as_slice() {
            [] => (default, default),
            [a, b] => (*a, *b),
            _ => return Err(self.unsupported(format!("`{name}` {v:?} is not 2-D"))),
        };
        if a != b {
            return Err(
                self.unsupported(format!("`{name}` {v:?} differs between height and width"))
            );
        }
        usize::try_from(a).map_err(|_| self.malformed(format!("`{name}` {v:?} is negative")))
    }

    /// The padding of a 2-D conv or pool: `pads` `[t, l, b, r]` all equal (symmetric), or none
    /// with `auto_pad = VALID` (the `SAME_*` forms need the input's size: `Builder::padding`).
    pub fn symmetric_pads(&self) -> Result<usize, OnnxError> {
        match self.string("auto_pad", "NOTSET").as_str() {
            "NOTSET" => {}
            "VALID" => return Ok(0),
            auto => return Err(self.unsupported(format!("auto_pad {auto}"))),
        }
        let pads = self.ints("pads")?;
        match pads.as_slice() {
            [] => Ok(0),
            [p, rest @ ..] if pads.len() == 4 && rest.iter().all(|q| q == p) => usize::try_from(*p)
                .map_err(|_| self.malformed(format!("pads {pads:?} are negative"))),
            _ => Err(self.unsupported(format!(
                "pads {pads:?} are not symmetric and equal on all sides"
            ))),
        }
    }

    /// Refuse dilations other than 1.
    pub fn no_dilation(&self) -> Result<(), OnnxError> {
        let d = self.ints("dilations")?;
        if d.iter().any(|&x| x != 1) {
            return Err(self.unsupported(format!("dilations {d:?} (only 1)")));
        }
        Ok(())
    }
}

/// An `f32` attribute as the `f64` its decimal form names (`1e-5f32` → `1e-5`), so that a
/// spec written through an `f32` field reads back equal.
pub(crate) fn f32_to_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}
