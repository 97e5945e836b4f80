//! Every `TensorProto` of a model, wherever it sits: initializers, sparse initializers, node
//! attributes (a `Constant`'s `value`, lists of tensors), subgraphs (`If`/`Loop` bodies), local
//! functions and training graphs — the places onnx's external-data helpers look too. Nesting is
//! bounded by the protobuf decoder's recursion limit.

use super::error::OnnxError;
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto,
};

/// A visitor of a tensor and a label naming it for error messages (its name, or the node and
/// attribute holding it when it has none).
pub(crate) type Visit<'a> = dyn FnMut(&mut TensorProto, &str) -> Result<(), OnnxError> + 'a;

/// Call `f` on every tensor of `model`, stopping at the first error.
pub(crate) fn each_tensor(model: &mut ModelProto, f: &mut Visit<'_>) -> Result<(), OnnxError> {
    if let Some(g) = model.graph.as_mut() {
        graph(g, f)?;
    }
    for function in &mut model.functions {
        for a in &mut function.attribute_proto {
            attribute(a, "", f)?;
        }
        nodes(&mut function.node, f)?;
    }
    for info in &mut model.training_info {
        for g in [info.initialization.as_mut(), info.algorithm.as_mut()]
            .into_iter()
            .flatten()
        {
            graph(g, f)?;
        }
    }
    Ok(())
}

fn graph(g: &mut GraphProto, f: &mut Visit<'_>) -> Result<(), OnnxError> {
    for t in &mut g.initializer {
        let label = t.name.clone().unwrap_or_default();
        f(t, &label)?;
    }
    for s in &mut g.sparse_initializer {
        sparse(s, "sparse initializer", f)?;
    }
    nodes(&mut g.node, f)
}

fn nodes(nodes: &mut [NodeProto], f: &mut Visit<'_>) -> Result<(), OnnxError> {
    for n in nodes {
        let node = n.name.clone().unwrap_or_default();
        for a in &mut n.attribute {
            attribute(a, &node, f)?;
        }
    }
    Ok(())
}

fn attribute(a: &mut AttributeProto, node: &str, f: &mut Visit<'_>) -> Result<(), OnnxError> {
    let place = format!(
        "node `{node}` attribute `{}`",
        a.name.as_deref().unwrap_or("")
    );
    let label = |t: &TensorProto| match t.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => place.clone(),
    };
    for t in a.t.iter_mut().chain(a.tensors.iter_mut()) {
        let l = label(t);
        f(t, &l)?;
    }
    for s in a
        .sparse_tensor
        .iter_mut()
        .chain(a.sparse_tensors.iter_mut())
    {
        sparse(s, &place, f)?;
    }
    for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
        graph(g, f)?;
    }
    Ok(())
}

fn sparse(s: &mut SparseTensorProto, place: &str, f: &mut Visit<'_>) -> Result<(), OnnxError> {
    for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
        let label = match t.name.as_deref() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => place.to_string(),
        };
        f(t, &label)?;
    }
    Ok(())
}
