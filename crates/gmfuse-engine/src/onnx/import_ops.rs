//! The importer's normalisation, pooling and padding nodes, and the end of the graph.

use super::attrs::{NodeView, f32_to_f64};
use super::error::OnnxError;
use super::import::Builder;
use super::values::{Kind, Val};
use crate::arch::{Op, PadMode};

impl Builder<'_> {
    pub(crate) fn batchnorm(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let (v, kind) = self.vals.act(node, node.required(0)?)?;
        if node.int("spatial", 1) != 1 || node.int("training_mode", 0) != 0 {
            return Err(node.unsupported("BatchNormalization in training mode or with spatial = 0"));
        }
        if node
            .node
            .output
            .iter()
            .skip(1)
            .any(|o| !o.is_empty() && self.is_read(o))
        {
            return Err(
                node.unsupported("BatchNormalization whose running statistics outputs are read")
            );
        }
        let units = match kind {
            Kind::Chw(c) => c,
            Kind::Flat | Kind::Gap => {
                let (t, _) = self.peek_len(node, node.required(1)?)?;
                t
            }
        };
        let mut names = Vec::with_capacity(4);
        for i in 1..=4 {
            let name = node.required(i)?;
            let shape = self.weight(node, name, None, false, 1.0)?;
            if shape != [units] {
                return Err(node.unsupported(format!(
                    "tensor `{name}` of shape {shape:?} (expected [{units}])"
                )));
            }
            names.push(name.to_string());
        }
        let eps = f32_to_f64(node.float("epsilon", 1e-5));
        let [weight, bias, running_mean, running_var] =
            <[String; 4]>::try_from(names).expect("four");
        let op = match kind {
            Kind::Chw(_) => Op::Batchnorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            },
            _ => Op::Batchnorm1d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            },
        };
        self.push(node, op, vec![v], kind)?;
        for extra in node.node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            self.vals.define(node, extra, Val::Unused)?;
        }
        Ok(())
    }

    /// The width of a flat activation, from the length of the BN scale that normalises it.
    fn peek_len(&mut self, node: &NodeView, name: &str) -> Result<(usize, ()), OnnxError> {
        let ints = self.vals.dims_of(node, name)?;
        match ints.as_slice() {
            [n] => Ok((*n, ())),
            _ => Err(node.unsupported(format!("tensor `{name}` of shape {ints:?} (expected 1-D)"))),
        }
    }

    fn is_read(&self, name: &str) -> bool {
        self.uses.get(name).is_some_and(|&n| n > 0)
    }

    pub(crate) fn pool(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let (v, kind) = self.chw(node)?;
        node.no_dilation()?;
        if node.int("ceil_mode", 0) != 0 {
            return Err(node.unsupported("ceil_mode = 1 (gmfuse pools in floor mode)"));
        }
        let kernel = node.square("kernel_shape", 0)?;
        let stride = node.square("strides", 1)?;
        let padding = self.padding(node, v, kind, [kernel, kernel], stride)?;
        let stride = (stride != kernel).then_some(stride);
        let op = if node.op == "MaxPool" {
            if node
                .node
                .output
                .get(1)
                .is_some_and(|o| !o.is_empty() && self.is_read(o))
            {
                return Err(node.unsupported("MaxPool whose indices output is read"));
            }
            Op::Maxpool2d {
                kernel,
                stride,
                padding,
            }
        } else {
            if padding > 0 && node.int("count_include_pad", 0) == 0 {
                return Err(node.unsupported(
                    "AveragePool with padding and count_include_pad = 0 (gmfuse's avgpool2d counts the padding, as PyTorch's default)",
                ));
            }
            Op::Avgpool2d {
                kernel,
                stride,
                padding,
            }
        };
        self.push(node, op, vec![v], kind)?;
        for extra in node.node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            self.vals.define(node, extra, Val::Unused)?;
        }
        Ok(())
    }

    /// `Pad` of height and width alike on every side: `edge` → replicate, `constant` 0 → zero.
    pub(crate) fn pad(&mut self, node: &NodeView) -> Result<(), OnnxError> {
        let (v, kind) = self.chw(node)?;
        let (pads, value) = if self.opset < 11 {
            (node.ints("pads")?, f64::from(node.float("value", 0.0)))
        } else {
            if node.input(3).is_some() {
                return Err(node.unsupported("Pad with `axes`"));
            }
            let pads = self.vals.ints(node, node.required(1)?)?;
            let value = match node.input(2) {
                Some(c) => self.vals.scalar(node, c)?,
                None => 0.0,
            };
            (pads, value)
        };
        let p = match pads.as_slice() {
            [0, 0, t, l, 0, 0, b, r] if t == l && l == b && b == r => usize::try_from(*t).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            node.unsupported(format!(
                "pads {pads:?} (only the same padding on every side of H and W)"
            ))
        })?;
        let mode = match (node.string("mode", "constant").as_str(), value) {
            ("edge", _) => PadMode::Replicate,
            ("constant", 0.0) => PadMode::Zero,
            (m, value) => {
                return Err(node.unsupported(format!(
                    "mode `{m}` with value {value} (only edge, or constant 0)"
                )));
            }
        };
        self.push(node, Op::Pad2d { mode, padding: p }, vec![v], kind)
            .map(|_| ())
    }

    /// Check that the graph's output is the last op's output; flatten a `[N, C, H, W]` output.
    pub(crate) fn finish(&mut self) -> Result<(), OnnxError> {
        let blank = Default::default();
        let view = NodeView::new(&blank);
        let (v, kind) = self.vals.act(&view, self.output).map_err(|_| {
            OnnxError::unsupported(
                self.output,
                "output",
                "the graph's output is not an activation gmfuse computes",
            )
        })?;
        if v != self.imported.ops.len() {
            return Err(OnnxError::unsupported(
                self.output,
                "output",
                "the graph's output is not its last computed value",
            ));
        }
        if let Kind::Chw(_) = kind {
            self.imported
                .ops
                .push((Op::Flatten {}, vec![v], format!("{}#flat", self.output)));
        }
        Ok(())
    }
}
