//! The importer's weighted layers: Conv, Gemm, MatMul, and the Add/Sum nodes (a residual, or
//! the bias of the layer right before).

use super::attrs::{NodeView, f32_to_f64};
use super::error::OnnxError;
use super::import::Builder;
use super::values::{Kind, Val};
use crate::arch::Op;

impl Builder<'_> {
    pub(crate) fn conv(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let (v, kind) = self.chw(node)?;
        let group = node.int("group", 1);
        if group != 1 {
            return Err(node.unsupported(format!(
                "grouped or depthwise convolution (group = {group}); gmfuse fuses group = 1 only"
            )));
        }
        node.no_dilation()?;
        let stride = node.square("strides", 1)?;
        let wname = node.required(1)?;
        let ws = self.weight(node, wname, None, false, 1.0)?;
        if ws.len() != 4 {
            return Err(node.unsupported(format!(
                "a {}-D convolution (only 2-D)",
                ws.len().saturating_sub(2)
            )));
        }
        let kernel = node.ints("kernel_shape")?;
        if !kernel.is_empty() && kernel != [ws[2] as i64, ws[3] as i64] {
            return Err(node.malformed(format!(
                "kernel_shape {kernel:?} disagrees with weight {ws:?}"
            )));
        }
        let padding = self.padding(node, v, kind, [ws[2], ws[3]], stride)?;
        let bias = match node.input(2) {
            Some(b) => Some(self.bias(node, b, ws[0], 1.0, false)?),
            None => None,
        };
        let has_bias = bias.is_some();
        let op = Op::Conv2d {
            weight: wname.to_string(),
            bias,
            stride,
            padding,
        };
        let out = self.push(node, op, vec![v], Kind::Chw(ws[0]))?;
        if !has_bias {
            self.biasable.insert(out, node.output()?.to_string());
        }
        Ok(())
    }

    /// Take constant `name` as the bias of `units` outputs, read as `[units]`: stored as
    /// `[units]` or `[1, units]`, or for a conv output (`chw`) `[units, 1, 1]`/`[1, units, 1, 1]`.
    fn bias(
        &mut self,
        node: &NodeView,
        name: &str,
        units: usize,
        scale: f64,
        chw: bool,
    ) -> Result<String, OnnxError> {
        self.weight(node, name, Some(&[units]), false, scale)?;
        let dims = &self.imported.layouts[name].dims;
        let fits = if chw {
            matches!(dims.as_slice(), [u, 1, 1] | [1, u, 1, 1] if *u == units)
        } else {
            matches!(dims.as_slice(), [u] | [1, u] if *u == units)
        };
        if !fits {
            return Err(node.unsupported(format!(
                "constant `{name}` of shape {dims:?} is not a bias of {units} units"
            )));
        }
        Ok(name.to_string())
    }

    pub(crate) fn gemm(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let v = self.flat(node)?;
        if node.int("transA", 0) != 0 {
            return Err(node.unsupported("Gemm with transA = 1 (a transposed activation)"));
        }
        let alpha = f32_to_f64(node.float("alpha", 1.0));
        let beta = f32_to_f64(node.float("beta", 1.0));
        if alpha == 0.0 || beta == 0.0 {
            return Err(node.unsupported("Gemm with alpha or beta 0"));
        }
        let trans_b = node.int("transB", 0) != 0;
        let wname = node.required(1)?;
        let ws = self.weight(node, wname, None, !trans_b, alpha)?;
        if ws.len() != 2 {
            return Err(node.unsupported(format!("a Gemm weight of shape {ws:?}")));
        }
        let bias = match node.input(2) {
            Some(c) => Some(self.bias(node, c, ws[0], beta, false)?),
            None => None,
        };
        let has_bias = bias.is_some();
        let out = self.push(
            node,
            Op::Linear {
                weight: wname.to_string(),
                bias,
            },
            vec![v],
            Kind::Flat,
        )?;
        if !has_bias {
            self.biasable.insert(out, node.output()?.to_string());
        }
        Ok(())
    }

    pub(crate) fn matmul(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let v = self.flat(node)?;
        let wname = node.required(1)?;
        if !self.vals.is_const(wname) {
            return Err(
                node.unsupported("MatMul of two activations (only activation × initializer)")
            );
        }
        let ws = self.weight(node, wname, None, true, 1.0)?;
        if ws.len() != 2 {
            return Err(node.unsupported(format!("a MatMul weight of shape {ws:?}")));
        }
        let out = self.push(
            node,
            Op::Linear {
                weight: wname.to_string(),
                bias: None,
            },
            vec![v],
            Kind::Flat,
        )?;
        self.biasable.insert(out, node.output()?.to_string());
        Ok(())
    }

    /// `Add`/`Sum` of activations (a residual), or an `Add` of a constant right after a
    /// conv/linear without bias (its bias).
    pub(crate) fn add(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let ins: Vec<&str> = node.node.input.iter().map(String::as_str).collect();
        if let [a, b] = ins.as_slice()
            && node.op == "Add"
            && (self.vals.is_const(a) || self.vals.is_const(b))
        {
            let (act, c) = if self.vals.is_const(b) {
                (*a, *b)
            } else {
                (*b, *a)
            };
            return self.add_bias(node, act, c);
        }
        let mut acts = Vec::with_capacity(ins.len());
        for name in &ins {
            acts.push(self.vals.act(node, name)?);
        }
        let Some(&(mut v, kind)) = acts.first() else {
            return Err(node.malformed("has no inputs"));
        };
        if acts.len() == 1 {
            return self.alias(node, ins[0]);
        }
        let last = acts.len() - 1;
        for (i, &(w, _)) in acts.iter().enumerate().skip(1) {
            let op = Op::Add {};
            if i == last {
                v = self.push(node, op, vec![v, w], kind)?;
            } else {
                let name = format!("{}#sum{i}", node.output()?);
                self.imported.ops.push((op, vec![v, w], name));
                v = self.imported.ops.len();
            }
        }
        Ok(())
    }

    fn add_bias(&mut self, node: &NodeView, act: &str, c: &str) -> Result<(), OnnxError> {
        let (v, kind) = self.vals.act(node, act)?;
        let direct = v > 0
            && self.biasable.get(&v).map(String::as_str) == Some(act)
            && self.uses.get(act) == Some(&1);
        if !direct {
            return Err(node.unsupported(format!("adds constant `{c}` to a value that is not the output of a bias-free Conv/Gemm/MatMul read only here")));
        }
        let units = match (kind, &self.imported.ops[v - 1].0) {
            (Kind::Chw(c), Op::Conv2d { .. }) => c,
            (Kind::Flat, Op::Linear { .. }) => self.imported.weights.tensors
                [self.imported.ops[v - 1].0.tensors()[0]]
                .data
                .shape()[0],
            _ => return Err(node.unsupported("an Add of a constant that is not a bias")),
        };
        self.bias(node, c, units, 1.0, matches!(kind, Kind::Chw(_)))?;
        match &mut self.imported.ops[v - 1].0 {
            Op::Conv2d { bias, .. } | Op::Linear { bias, .. } => *bias = Some(c.to_string()),
            _ => unreachable!("checked above"),
        }
        self.biasable.remove(&v);
        self.vals.define(node, node.output()?, Val::Act { v, kind })
    }
}
