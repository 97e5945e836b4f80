//! ONNX graph → [`ArchSpec`] + [`WeightSet`]: each node mapped onto a spec op (or folded into
//! one: a bias `Add`, an `Identity`, a `Dropout`, the final `Softmax`), with the layout of every
//! weight recorded so that [`super::write_fused`] can undo what reading did.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::attrs::NodeView;
use super::error::OnnxError;
use super::import_shapes::FOLDED;
use super::layout::{Layout, transposed};
use super::limits;
use super::proto::{GraphProto, ModelProto};
use super::values::{Kind, Origin, Val, Values};
use crate::arch::{Op, Shape};
use crate::weights::{Tensor, WeightSet};

/// What importing a graph gives: ops with the spec values they read and the ONNX name of
/// their output, the weights, and each weight's layout.
pub(crate) struct Imported {
    pub input: [usize; 3],
    pub ops: Vec<(Op, Vec<usize>, String)>,
    pub weights: WeightSet,
    pub layouts: BTreeMap<String, Layout>,
    /// ONNX values whose node is named after them (gmfuse's export so marks the ops a spec
    /// names): their spec ops keep the name even when nothing reads them out of order.
    pub explicit: HashSet<String>,
}

pub(crate) struct Builder<'a> {
    pub(crate) vals: Values<'a>,
    pub(crate) imported: Imported,
    /// For a conv/linear op without a bias: its ONNX output name (a following `Add` of a
    /// constant may become its bias).
    pub(crate) biasable: HashMap<usize, String>,
    /// How many nodes (and graph outputs) read each ONNX value.
    pub(crate) uses: HashMap<&'a str, usize>,
    pub(crate) opset: i64,
    pub(crate) output: &'a str,
    /// The graph input's batch size when it is fixed (an exporter may write it in a shape).
    pub(crate) batch: Option<i64>,
    /// The shapes of the spec values imported so far, as far as a `Shape` or `Reshape` needed.
    pub(crate) shapes: Vec<Shape>,
}

/// Import `model`'s graph, its weights holding at most `max_elems` elements in all.
pub(crate) fn import(model: &ModelProto, max_elems: usize) -> Result<Imported, OnnxError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Malformed("the model has no graph".into()))?;
    limits::at_most("node count", graph.node.len(), limits::MAX_NODES)?;
    let opset = model
        .opset_import
        .iter()
        .filter(|o| matches!(o.domain.as_deref(), None | Some("" | "ai.onnx")))
        .filter_map(|o| o.version)
        .max()
        .unwrap_or(1);
    let [output] = graph.output.as_slice() else {
        return Err(OnnxError::unsupported(
            "graph",
            "output",
            format!("{} graph outputs (gmfuse reads one)", graph.output.len()),
        ));
    };
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for name in graph
        .node
        .iter()
        .flat_map(|n| &n.input)
        .chain(output.name.as_ref())
    {
        *uses.entry(name.as_str()).or_default() += 1;
    }
    let mut b = Builder {
        vals: Values::new(graph, max_elems)?,
        imported: Imported {
            input: [0; 3],
            ops: Vec::new(),
            weights: WeightSet::default(),
            layouts: BTreeMap::new(),
            explicit: graph
                .node
                .iter()
                .filter(|n| n.name.is_some() && n.output.first() == n.name.as_ref())
                .filter_map(|n| n.name.clone())
                .collect(),
        },
        biasable: HashMap::new(),
        uses,
        opset,
        output: output.name.as_deref().unwrap_or(""),
        batch: None,
        shapes: Vec::new(),
    };
    if let Err(e) = b.input(graph) {
        return Err(first_unmapped(graph).unwrap_or(e));
    }
    for (index, node) in graph.node.iter().enumerate() {
        let view = NodeView::new(node);
        if !matches!(node.domain.as_deref(), None | Some("" | "ai.onnx")) {
            return Err(
                view.unsupported(format!("domain `{}`", node.domain.as_deref().unwrap_or("")))
            );
        }
        b.node(&view, index)?;
    }
    b.finish()?;
    Ok(b.imported)
}

/// The ops [`Builder::node`] maps (some only in some forms).
const MAPPED: [&str; 18] = [
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Dropout",
    "Relu",
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sum",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Pad",
    "Softmax",
];

/// The first node whose op type gmfuse does not map at all: named in preference to an input
/// it cannot read, so that a model is refused for its first unsupported node.
fn first_unmapped(graph: &GraphProto) -> Option<OnnxError> {
    graph
        .node
        .iter()
        .map(NodeView::new)
        .find(|n| !MAPPED.contains(&n.op) && !FOLDED.contains(&n.op))
        .map(|n| n.unsupported("this op is not mapped"))
}

impl<'a> Builder<'a> {
    /// The one graph input that is not an initializer: `[N, C, H, W]`, or `[N, F]` read as
    /// `[F, 1, 1]` and flattened.
    fn input(&mut self, graph: &GraphProto) -> Result<(), OnnxError> {
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !self.vals.is_const(i.name.as_deref().unwrap_or("")))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(OnnxError::unsupported(
                "graph",
                "input",
                format!(
                    "{} graph inputs besides the initializers (gmfuse reads one)",
                    inputs.len()
                ),
            ));
        };
        let name = input.name.clone().unwrap_or_default();
        let refuse = |why: String| OnnxError::unsupported(&name, "input", why);
        let dims: Vec<Option<i64>> = input
            .r#type
            .as_ref()
            .and_then(|t| match &t.value {
                Some(super::proto::type_proto::Value::TensorType(t)) => t.shape.as_ref(),
                _ => None,
            })
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(super::proto::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                            Some(v)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .ok_or_else(|| refuse("the input has no tensor shape".into()))?;
        let fixed = |d: &Option<i64>| d.and_then(|v| usize::try_from(v).ok()).filter(|&v| v > 0);
        self.batch = dims.first().copied().flatten().filter(|&b| b > 0);
        let sample: Vec<usize> = dims
            .iter()
            .skip(1)
            .map(fixed)
            .collect::<Option<_>>()
            .ok_or_else(|| refuse(format!("input dims {dims:?} must be fixed after the batch")))?;
        let (input, flat) = match sample.as_slice() {
            [c, h, w] => ([*c, *h, *w], false),
            [f] => ([*f, 1, 1], true),
            _ => {
                return Err(refuse(format!(
                    "a {}-D input (gmfuse reads [N, C, H, W] or [N, F])",
                    dims.len()
                )));
            }
        };
        self.imported.input = input;
        let val = if flat {
            self.imported
                .ops
                .push((Op::Flatten {}, vec![0], name.clone()));
            Val::Act {
                v: 1,
                kind: Kind::Flat,
            }
        } else {
            Val::Act {
                v: 0,
                kind: Kind::Chw(input[0]),
            }
        };
        let blank = Default::default();
        self.vals.define(&NodeView::new(&blank), &name, val)
    }

    /// Append `op` reading `inputs`; its output is ONNX value `out` of layout `kind`.
    pub(crate) fn push(
        &mut self,
        node: &NodeView,
        op: Op,
        inputs: Vec<usize>,
        kind: Kind,
    ) -> Result<usize, OnnxError> {
        let out = node.output()?;
        self.imported.ops.push((op, inputs, out.to_string()));
        let v = self.imported.ops.len();
        self.vals.define(node, out, Val::Act { v, kind })?;
        Ok(v)
    }

    /// Make `node`'s output another name of activation `name`.
    pub(crate) fn alias(&mut self, node: &NodeView, name: &str) -> Result<(), OnnxError> {
        let (v, kind) = self.vals.act(node, name)?;
        self.vals
            .define(node, node.output()?, Val::Act { v, kind })?;
        for extra in node.node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            self.vals.define(node, extra, Val::Unused)?;
        }
        Ok(())
    }

    /// Take weight `name` into the weight set, reshaped to `dims` (and transposed/scaled).
    pub(crate) fn weight(
        &mut self,
        node: &NodeView,
        name: &str,
        dims: Option<&[usize]>,
        transpose: bool,
        scale: f64,
    ) -> Result<Vec<usize>, OnnxError> {
        let (tensor, origin) = self.vals.weight(node, name)?;
        let original = tensor.data.shape().to_vec();
        let mut data = if transpose {
            transposed(&tensor.data)
        } else {
            tensor.data
        };
        if scale != 1.0 {
            data.mapv_inplace(|x| x * scale);
        }
        if let Some(dims) = dims {
            data = data.into_shape_with_order(dims.to_vec()).map_err(|_| {
                node.unsupported(format!(
                    "tensor `{name}` of shape {original:?} cannot be read as {dims:?}"
                ))
            })?;
        }
        let shape = data.shape().to_vec();
        self.imported.weights.tensors.insert(
            name.to_string(),
            Tensor {
                dtype: tensor.dtype,
                data,
            },
        );
        self.imported.layouts.insert(
            name.to_string(),
            Layout {
                origin,
                dims: original,
                transpose,
                scale,
            },
        );
        Ok(shape)
    }

    fn node(&mut self, node: &NodeView, index: usize) -> Result<(), OnnxError> {
        match node.op {
            "Constant" => {
                let val = match (node.tensor("value"), node.int_values()?) {
                    (Some(_), _) => Val::Const(Origin::Constant(index)),
                    (None, Some(ints)) => Val::Folded(ints),
                    (None, None) => {
                        return Err(node.unsupported(
                            "a Constant without a tensor `value`, `value_int` or `value_ints`",
                        ));
                    }
                };
                self.vals.define(node, node.output()?, val)
            }
            "ConstantOfShape" => {
                let origin = self.vals.filled(node, index)?;
                self.vals.define(node, node.output()?, Val::Const(origin))
            }
            "Identity" | "Dropout" => {
                if node.op == "Dropout" && node.int("is_test", 1) == 0 && self.opset < 7 {
                    return Err(node.unsupported("a Dropout in training mode"));
                }
                self.alias_or_fold(node)
            }
            "Relu" => self.unary(node, Op::Relu {}),
            "Conv" => self.conv(node),
            "Gemm" => self.gemm(node),
            "MatMul" => self.matmul(node),
            "Add" | "Sum" => self.add(node),
            "BatchNormalization" => self.batchnorm(node),
            "MaxPool" | "AveragePool" => self.pool(node),
            "GlobalAveragePool" => {
                let (v, _) = self.chw(node)?;
                self.push(node, Op::GlobalAvgpool {}, vec![v], Kind::Gap)
                    .map(|_| ())
            }
            "Flatten" => {
                if node.int("axis", 1) != 1 {
                    return Err(node.unsupported("Flatten with an axis other than 1"));
                }
                self.flatten(node)
            }
            "Reshape" => self.reshape(node),
            op if FOLDED.contains(&op) => self.fold(node),
            "Pad" => self.pad(node),
            "Softmax" if node.output()? == self.output => {
                let (_, kind) = self.vals.act(node, node.required(0)?)?;
                let axis = node.int("axis", if self.opset < 13 { 1 } else { -1 });
                if kind != Kind::Flat || !matches!(axis, 1 | -1) {
                    return Err(node.unsupported(
                        "a Softmax over anything but the classes of an [N, F] value",
                    ));
                }
                self.alias(node, node.required(0)?)
            }
            "Softmax" => Err(node.unsupported("a Softmax that is not the graph's output")),
            _ => Err(node.unsupported("this op is not mapped")),
        }
    }

    fn unary(&mut self, node: &NodeView, op: Op) -> Result<(), OnnxError> {
        let (v, kind) = self.vals.act(node, node.required(0)?)?;
        self.push(node, op, vec![v], kind).map(|_| ())
    }

    /// The node's first input, which must be a `[N, C, H, W]` activation.
    pub(crate) fn chw(&self, node: &NodeView) -> Result<(usize, Kind), OnnxError> {
        let (v, kind) = self.vals.act(node, node.required(0)?)?;
        match kind {
            Kind::Chw(_) => Ok((v, kind)),
            _ => Err(node.unsupported("its input is flat where gmfuse expects [N, C, H, W]")),
        }
    }

    /// The node's first input, which must be a flat activation.
    pub(crate) fn flat(&self, node: &NodeView) -> Result<usize, OnnxError> {
        let (v, kind) = self.vals.act(node, node.required(0)?)?;
        match kind {
            Kind::Flat => Ok(v),
            _ => Err(node.unsupported(
                "its input is [N, C, H, W] where gmfuse expects [N, F]: flatten first",
            )),
        }
    }
}
