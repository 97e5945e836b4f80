//! The first difference between two [`ArchSpec`]s, as one line a person can act on: two ONNX
//! files that should describe one network but do not (a job fuses models of one architecture
//! only) are refused with where they part.
//!
//! Nodes are compared through their JSON form, so a field added to an op later is compared
//! without a change here.

use serde_json::Value;

use super::spec::{ArchSpec, Node};

impl ArchSpec {
    /// Where `other` first differs from `self`, ignoring the names of the two specs: the input
    /// shape, then op by op (a different op, then the first field that differs), then the op
    /// count. `None` when they describe the same network. The message calls `self` "the first"
    /// and `other` "the second".
    pub fn first_difference(&self, other: &ArchSpec) -> Option<String> {
        if self.input != other.input {
            return Some(format!(
                "the input is {:?} in the first and {:?} in the second",
                self.input, other.input
            ));
        }
        for (index, (a, b)) in self.ops.iter().zip(&other.ops).enumerate() {
            if a != b {
                return Some(node_difference(index, a, b));
            }
        }
        let (n, m) = (self.ops.len(), other.ops.len());
        if n == m {
            return None;
        }
        let (longer, which) = if n > m {
            (&self.ops[m], "first")
        } else {
            (&other.ops[n], "second")
        };
        Some(format!(
            "the first has {n} ops and the second {m}: op {} ({}) is only in the {which}",
            n.min(m),
            longer.label()
        ))
    }
}

/// How nodes `a` and `b` at `index` differ: their ops, else their first differing field.
fn node_difference(index: usize, a: &Node, b: &Node) -> String {
    if a.op.kind() != b.op.kind() {
        return format!(
            "op {index} is {} in the first and {} in the second",
            a.label(),
            b.label()
        );
    }
    let (ja, jb) = (fields(a), fields(b));
    let keys = ja.keys().chain(jb.keys().filter(|k| !ja.contains_key(*k)));
    for key in keys {
        let (va, vb) = (ja.get(key), jb.get(key));
        if va != vb {
            return format!(
                "op {index} ({}): `{key}` is {} in the first and {} in the second",
                a.label(),
                shown(va),
                shown(vb)
            );
        }
    }
    // Equal JSON but unequal nodes cannot happen (the JSON form is the whole node); say so
    // plainly rather than panic.
    format!("op {index} ({}) differs", a.label())
}

/// A node's fields as a JSON object (its `op`, name, inputs and parameters).
fn fields(node: &Node) -> serde_json::Map<String, Value> {
    match serde_json::to_value(node) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".to_string(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::spec::Op;
    use super::super::{Node, preset};

    #[test]
    fn two_copies_of_a_preset_do_not_differ_even_under_other_names() {
        let a = preset("resnet-mini").unwrap();
        let mut b = a.clone();
        b.name = "onnx-0123456789ab".into();
        assert_eq!(a.first_difference(&b), None);
    }

    #[test]
    fn another_input_shape_is_the_first_difference() {
        let a = preset("mnist-cnn").unwrap();
        let mut b = a.clone();
        b.input = [3, 32, 32];
        assert_eq!(
            a.first_difference(&b).unwrap(),
            "the input is [1, 28, 28] in the first and [3, 32, 32] in the second"
        );
    }

    #[test]
    fn a_changed_field_names_the_op_and_both_values() {
        let a = preset("mnist-cnn").unwrap();
        let at = a
            .ops
            .iter()
            .position(|n| matches!(n.op, Op::Conv2d { .. }))
            .unwrap();
        let mut b = a.clone();
        let Op::Conv2d { padding, .. } = &mut b.ops[at].op else {
            unreachable!("found above");
        };
        *padding = 2;
        assert_eq!(
            a.first_difference(&b).unwrap(),
            format!("op {at} (conv2d): `padding` is 0 in the first and 2 in the second")
        );
        let mut c = a.clone();
        c.ops[at] = c.ops[at].clone().named("stem");
        assert_eq!(
            a.first_difference(&c).unwrap(),
            format!("op {at} (conv2d): `name` is absent in the first and \"stem\" in the second")
        );
    }

    #[test]
    fn another_op_and_an_extra_op_are_named() {
        let a = preset("mnist-cnn").unwrap();
        let mut b = a.clone();
        let relu_at = b.ops.iter().position(|n| n.op == Op::Relu {}).unwrap();
        b.ops[relu_at] = Node::from(Op::Flatten {});
        assert_eq!(
            a.first_difference(&b).unwrap(),
            format!("op {relu_at} is relu in the first and flatten in the second")
        );
        let mut longer = a.clone();
        longer.ops.push(Node::from(Op::Relu {}));
        let n = a.ops.len();
        assert_eq!(
            a.first_difference(&longer).unwrap(),
            format!(
                "the first has {n} ops and the second {}: op {n} (relu) is only in the second",
                n + 1
            )
        );
    }
}
