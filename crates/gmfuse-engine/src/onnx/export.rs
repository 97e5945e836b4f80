//! [`export`]: a whole ONNX model (opset 13) from an [`ArchSpec`] and its weights, input
//! `input` `[N, C, H, W]` float, output `logits` `[N, classes]`. Reading it back gives the
//! same spec (pool strides equal to the kernel read back as the default) and weights.

use prost::Message;

use super::error::OnnxError;
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_shape_proto::{Dimension, dimension::Value as Dim},
    type_proto,
};
use super::tensor::{self, data_type};
use crate::arch::{ArchSpec, INPUT, Op, PadMode, Shape};
use crate::weights::WeightSet;

/// The opset [`export`] writes.
pub const OPSET: i64 = 13;
/// The IR version [`export`] writes (the one of ONNX 1.8, which introduced opset 13).
const IR_VERSION: i64 = 7;
/// The name of the exported graph's output.
pub const OUTPUT: &str = "logits";

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn float(name: &str, f: f64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f as f32),
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: Vec<String>,
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs,
        output: vec![output.to_string()],
        name: Some(name.to_string()),
        op_type: Some(op.to_string()),
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<Dim>) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .into_iter()
            .map(|d| Dimension {
                value: Some(d),
                ..Default::default()
            })
            .collect(),
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(data_type::FLOAT),
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ONNX value names of `spec`'s values: `input`, then each op's name, or `{kind}_{i}`
/// for an unnamed op, the last unnamed one [`OUTPUT`] (a named last op is followed by an
/// `Identity` to [`OUTPUT`]).
fn value_names(spec: &ArchSpec) -> Vec<String> {
    let last = spec.ops.len();
    std::iter::once(INPUT.to_string())
        .chain(spec.ops.iter().enumerate().map(|(i, n)| match &n.name {
            Some(name) => name.clone(),
            None if i + 1 == last => OUTPUT.to_string(),
            None => format!("{}_{i}", n.op.kind()),
        }))
        .collect()
}

/// A whole ONNX model of `spec` with `weights` (validated first). Weights are stored in
/// their own dtype as `raw_data`.
///
/// # Errors
/// [`OnnxError::Shape`] when `weights` do not fit `spec`.
pub fn export(spec: &ArchSpec, weights: &WeightSet) -> Result<Vec<u8>, OnnxError> {
    spec.validate(weights)?;
    let graph_shape =
        spec.graph_with(|n| weights.tensors.get(n).map(|t| t.data.shape().to_vec()))?;
    let names = value_names(spec);
    let mut g = GraphProto {
        name: Some(spec.name.clone()),
        ..Default::default()
    };
    let mut init: Vec<TensorProto> = Vec::new();
    for t in spec.tensor_names() {
        init.push(tensor::from_tensor(t, &weights.tensors[t]));
    }
    for (i, n) in spec.ops.iter().enumerate() {
        let ins: Vec<String> = graph_shape.inputs[i]
            .iter()
            .map(|&v| names[v].clone())
            .collect();
        let out = &names[i + 1];
        // A named op's node bears its output's name, which tells the reader to keep it.
        let label = match &n.name {
            Some(_) => out.clone(),
            None => format!("node_{i}"),
        };
        let with = |extra: &[&String]| {
            ins.iter()
                .cloned()
                .chain(extra.iter().map(|s| s.to_string()))
                .collect::<Vec<_>>()
        };
        match &n.op {
            Op::Pad2d { mode, padding } => {
                let p = *padding as i64;
                let pads = format!("{label}.pads");
                init.push(tensor::int64s(&pads, &[0, 0, p, p, 0, 0, p, p]));
                let m = if *mode == PadMode::Replicate {
                    "edge"
                } else {
                    "constant"
                };
                g.node.push(node(
                    "Pad",
                    &label,
                    with(&[&pads]),
                    out,
                    vec![string("mode", m)],
                ));
            }
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let ws = weights.tensors[weight].data.shape();
                let mut extra = vec![weight];
                extra.extend(bias.as_ref());
                let attrs = vec![
                    ints("kernel_shape", &ws[2..4]),
                    ints("strides", &[*stride, *stride]),
                    ints("pads", &[*padding; 4]),
                ];
                g.node.push(node("Conv", &label, with(&extra), out, attrs));
            }
            Op::Linear { weight, bias } => {
                let mut extra = vec![weight];
                extra.extend(bias.as_ref());
                g.node.push(node(
                    "Gemm",
                    &label,
                    with(&extra),
                    out,
                    vec![int("transB", 1)],
                ));
            }
            Op::Batchnorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            }
            | Op::Batchnorm1d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            } => {
                let extra = [weight, bias, running_mean, running_var];
                g.node.push(node(
                    "BatchNormalization",
                    &label,
                    with(&extra),
                    out,
                    vec![float("epsilon", *eps)],
                ));
            }
            Op::Relu {} => g.node.push(node("Relu", &label, ins, out, vec![])),
            Op::Add {} => g.node.push(node("Add", &label, ins, out, vec![])),
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
                let s = stride.unwrap_or(*kernel);
                let mut attrs = vec![
                    ints("kernel_shape", &[*kernel; 2]),
                    ints("strides", &[s; 2]),
                    ints("pads", &[*padding; 4]),
                ];
                let op = if matches!(n.op, Op::Maxpool2d { .. }) {
                    "MaxPool"
                } else {
                    attrs.push(int("count_include_pad", 1));
                    "AveragePool"
                };
                g.node.push(node(op, &label, ins, out, attrs));
            }
            Op::GlobalAvgpool {} => {
                let pooled = format!("{out}.pooled");
                let flatten = if n.name.is_some() {
                    out.clone()
                } else {
                    format!("{label}_flatten")
                };
                g.node.push(node(
                    "GlobalAveragePool",
                    &format!("{label}.pool"),
                    ins,
                    &pooled,
                    vec![],
                ));
                g.node.push(node(
                    "Flatten",
                    &flatten,
                    vec![pooled],
                    out,
                    vec![int("axis", 1)],
                ));
            }
            Op::Flatten {} => g
                .node
                .push(node("Flatten", &label, ins, out, vec![int("axis", 1)])),
        }
    }
    if let Some(last) = names.last().filter(|n| *n != OUTPUT) {
        g.node
            .push(node("Identity", OUTPUT, vec![last.clone()], OUTPUT, vec![]));
    }
    let [c, h, w] = spec.input;
    let batch = || Dim::DimParam("N".into());
    g.input.push(value_info(
        INPUT,
        vec![
            batch(),
            Dim::DimValue(c as i64),
            Dim::DimValue(h as i64),
            Dim::DimValue(w as i64),
        ],
    ));
    let Some(Shape::Flat(classes)) = graph_shape.shapes.last().copied() else {
        unreachable!("validate checks that the output is flat")
    };
    g.output.push(value_info(
        OUTPUT,
        vec![batch(), Dim::DimValue(classes as i64)],
    ));
    g.initializer = init;
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("gmfuse".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(g),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}
