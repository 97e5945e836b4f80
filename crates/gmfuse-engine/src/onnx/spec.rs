//! The imported op list as an [`ArchSpec`]: a node is named (after its ONNX output) when a
//! later op reads it out of order, or when its ONNX node bears its output's name (how
//! [`super::export`] marks the ops a spec names), so a chain reads back as a chain and an
//! exported spec reads back equal.

use std::collections::HashSet;

use super::import::Imported;
use crate::arch::{ArchSpec, INPUT, Node};

/// The spec `name` of the imported graph.
pub(crate) fn to_spec(name: &str, imported: &Imported) -> ArchSpec {
    let ops = &imported.ops;
    let mut needed = vec![false; ops.len() + 1];
    for (j, (op, ins, onnx)) in ops.iter().enumerate() {
        needed[j + 1] |= imported.explicit.contains(onnx);
        for &v in ins {
            if v != j || op.arity() > 1 {
                needed[v] = true;
            }
        }
    }
    let mut taken: HashSet<String> = HashSet::from([INPUT.to_string()]);
    let mut names = vec![INPUT.to_string()];
    for (j, (_, _, onnx)) in ops.iter().enumerate() {
        let v = j + 1;
        let mut n = onnx.clone();
        if needed[v] && !taken.insert(n.clone()) {
            n = format!("{onnx}_{v}");
            taken.insert(n.clone());
        }
        names.push(n);
    }
    let nodes = ops
        .iter()
        .enumerate()
        .map(|(j, (op, ins, _))| {
            let mut node = Node::from(op.clone());
            node.name = needed[j + 1].then(|| names[j + 1].clone());
            if op.arity() > 1 {
                node.inputs = Some(ins.iter().map(|&v| names[v].clone()).collect());
            } else if ins[0] != j {
                node.input = Some(names[ins[0]].clone());
            }
            node
        })
        .collect();
    ArchSpec {
        name: if name.is_empty() {
            "onnx".into()
        } else {
            name.to_string()
        },
        input: imported.input,
        ops: nodes,
    }
}
