//! The wiring of an [`ArchSpec`]: which values each op reads.
//!
//! Values are numbered: `0` is the network's input, `i + 1` is op `i`'s output. Ops are listed
//! in a topological order (an op may only read earlier values), so iterating `spec.ops` in
//! order visits every op after its inputs, and the last op's output is the network's output.
//!
//! ```
//! use gmfuse_engine::arch::preset;
//! let spec = preset("resnet-mini").unwrap();
//! let inputs = spec.op_inputs().unwrap();
//! // The first add reads the block's last batchnorm and the stem's output.
//! let add = spec.ops.iter().position(|n| n.op.kind() == "add").unwrap();
//! assert_eq!(inputs[add], vec![add, 4]);
//! ```

use std::collections::HashMap;

use super::error::ArchError;
use super::spec::{ArchSpec, Shape};

/// The name by which an op reads the network's input.
pub const INPUT: &str = "input";

/// A spec's wiring and the shape of every value, from [`ArchSpec::graph_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// `inputs[i]`: the values op `i` reads, in order (`add`: left, right).
    pub inputs: Vec<Vec<usize>>,
    /// `shapes[v]`: the shape of value `v` (`shapes[0]` the input, `shapes[i + 1]` op `i`'s
    /// output); `ops.len() + 1` entries.
    pub shapes: Vec<Shape>,
}

impl Graph {
    /// The shape of op `i`'s first (or only) input.
    pub fn input_shape(&self, i: usize) -> Shape {
        self.shapes[self.inputs[i][0]]
    }

    /// The shape of op `i`'s output.
    pub fn output_shape(&self, i: usize) -> Shape {
        self.shapes[i + 1]
    }

    /// `consumers[v]`: the ops that read value `v`, in order.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.shapes.len()];
        for (i, ins) in self.inputs.iter().enumerate() {
            for &v in ins {
                out[v].push(i);
            }
        }
        out
    }

    /// The values an op other than the next one reads (a residual branch, a value read
    /// twice): the forward pass keeps each aside in a buffer of its own until its last read.
    pub fn saved_values(&self) -> Vec<usize> {
        self.consumers()
            .iter()
            .enumerate()
            .filter(|(v, reads)| reads.len() > 1 || reads.iter().any(|j| j != v))
            .map(|(v, _)| v)
            .collect()
    }

    /// True when every op reads exactly the previous op's output (an old-style chain).
    pub fn is_chain(&self) -> bool {
        self.inputs
            .iter()
            .enumerate()
            .all(|(i, ins)| ins.as_slice() == [i])
    }
}

impl ArchSpec {
    /// For each op, the values it reads (see the module doc for the numbering). Checks that
    /// names are unique, that every named input is an earlier op's name or `input`, that each
    /// op reads as many values as it takes, and that every op's output but the last is read.
    ///
    /// # Errors
    /// [`ArchError::UnknownInput`], [`ArchError::DuplicateName`],
    /// [`ArchError::UnusedOutput`], or [`ArchError::BadOp`] for a wrong number of inputs.
    pub fn op_inputs(&self) -> Result<Vec<Vec<usize>>, ArchError> {
        let mut by_name: HashMap<&str, usize> = HashMap::from([(INPUT, 0)]);
        let mut inputs = Vec::with_capacity(self.ops.len());
        for (index, node) in self.ops.iter().enumerate() {
            let op = node.op.kind();
            let bad = |reason: String| ArchError::BadOp { index, op, reason };
            let names: Vec<&str> = match (&node.input, &node.inputs) {
                (Some(_), Some(_)) => return Err(bad("give `input` or `inputs`, not both".into())),
                (Some(one), None) => vec![one.as_str()],
                (None, Some(many)) => many.iter().map(String::as_str).collect(),
                (None, None) => Vec::new(),
            };
            let arity = node.op.arity();
            let ids = if names.is_empty() {
                if arity != 1 {
                    return Err(bad(format!(
                        "reads {arity} values: name them with `inputs`"
                    )));
                }
                vec![index]
            } else {
                if names.len() != arity {
                    return Err(bad(format!(
                        "reads {arity} value(s), {} named",
                        names.len()
                    )));
                }
                names
                    .iter()
                    .map(|n| {
                        by_name
                            .get(n)
                            .copied()
                            .ok_or_else(|| ArchError::UnknownInput {
                                index,
                                op,
                                input: n.to_string(),
                            })
                    })
                    .collect::<Result<_, _>>()?
            };
            if let Some(name) = &node.name
                && by_name.insert(name, index + 1).is_some()
            {
                return Err(ArchError::DuplicateName {
                    index,
                    op,
                    name: name.clone(),
                });
            }
            inputs.push(ids);
        }
        let mut read = vec![false; self.ops.len() + 1];
        for &v in inputs.iter().flatten() {
            read[v] = true;
        }
        if let Some(index) = (0..self.ops.len().saturating_sub(1)).find(|&i| !read[i + 1]) {
            return Err(ArchError::UnusedOutput {
                index,
                op: self.ops[index].op.kind(),
            });
        }
        Ok(inputs)
    }

    /// How value `v` is referred to in errors: `input`, an op's name, or `op <i>`.
    pub fn value_label(&self, v: usize) -> String {
        match v {
            0 => INPUT.to_string(),
            v => self.ops[v - 1]
                .name
                .clone()
                .unwrap_or_else(|| format!("op {}", v - 1)),
        }
    }
}
