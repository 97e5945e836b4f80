//! Validation of an [`ArchSpec`] against tensor shapes, before any compute.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ArchError;
use super::graph::Graph;
use super::perm::PermStructure;
use super::spec::{ArchSpec, Op, Shape};
use crate::weights::WeightSet;

impl ArchSpec {
    /// Check the spec against a model's weights and derive its permutation structure.
    ///
    /// # Errors
    /// Any [`ArchError`]: errors name the tensor with the expected and the actual shape.
    pub fn validate(&self, weights: &WeightSet) -> Result<PermStructure, ArchError> {
        self.check_shapes(&weights.shapes())
    }

    /// Check the spec against tensor shapes by name (as read from a safetensors header) and
    /// derive its permutation structure. Every tensor must be used by exactly one op.
    ///
    /// # Errors
    /// Any [`ArchError`] of [`ArchSpec::check_tensors`]; [`ArchError::Unsupported`] for a
    /// spec the permutation structure cannot describe yet.
    pub fn check_shapes(
        &self,
        tensors: &BTreeMap<String, Vec<usize>>,
    ) -> Result<PermStructure, ArchError> {
        let graph = self.check_tensors(tensors)?;
        let lookup = |n: &str| tensors.get(n).cloned();
        PermStructure::derive(self, &graph, &lookup)
    }

    /// Check the spec against tensor shapes by name and return its wiring and value shapes:
    /// every tensor is used by exactly one op and has the shape its op needs, the output is
    /// flat, and there is a weighted layer.
    ///
    /// # Errors
    /// Any [`ArchError`]: errors name the tensor with the expected and the actual shape.
    pub fn check_tensors(
        &self,
        tensors: &BTreeMap<String, Vec<usize>>,
    ) -> Result<Graph, ArchError> {
        let mut used = BTreeSet::new();
        for name in self.tensor_names() {
            if !used.insert(name) {
                return Err(ArchError::TensorReused(name.to_string()));
            }
        }
        let graph = self.graph_with(|n: &str| tensors.get(n).cloned())?;
        let out = *graph.shapes.last().expect("non-empty");
        if !matches!(out, Shape::Flat(_)) {
            return Err(ArchError::OutputNotFlat(out));
        }
        if !self
            .op_list()
            .any(|op| matches!(op, Op::Conv2d { .. } | Op::Linear { .. }))
        {
            return Err(ArchError::NoLayers);
        }
        for (index, op) in self.op_list().enumerate() {
            for (name, expected) in expected_shapes(op, graph.input_shape(index), tensors) {
                let got = tensors.get(name).ok_or_else(|| ArchError::MissingTensor {
                    name: name.to_string(),
                    index,
                })?;
                if *got != expected {
                    return Err(ArchError::ShapeMismatch {
                        name: name.to_string(),
                        expected,
                        got: got.clone(),
                    });
                }
            }
        }
        if let Some(extra) = tensors.keys().find(|k| !used.contains(k.as_str())) {
            return Err(ArchError::UnusedTensor(extra.clone()));
        }
        Ok(graph)
    }
}

/// The shape each tensor of `op` must have, given the op's input shape (shape inference has
/// already read the conv/linear output widths from `tensors`).
fn expected_shapes<'a>(
    op: &'a Op,
    input: Shape,
    tensors: &BTreeMap<String, Vec<usize>>,
) -> Vec<(&'a str, Vec<usize>)> {
    let (weight_shape, out) = match (op, input) {
        (Op::Conv2d { weight, .. }, Shape::Chw(c, ..)) => {
            let ws = &tensors[weight];
            (vec![ws[0], c, ws[2], ws[3]], ws[0])
        }
        (Op::Linear { weight, .. }, Shape::Flat(n)) => {
            let out = tensors[weight][0];
            (vec![out, n], out)
        }
        (Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. }, s) => {
            return op
                .tensors()
                .into_iter()
                .map(|t| (t, vec![s.units()]))
                .collect();
        }
        _ => return Vec::new(),
    };
    let names = op.tensors();
    std::iter::once((names[0], weight_shape))
        .chain(names.get(1).map(|b| (*b, vec![out])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{NodeGroup, preset};

    fn mnist_shapes() -> BTreeMap<String, Vec<usize>> {
        [
            ("conv1.weight", vec![32, 1, 5, 5]),
            ("conv2.weight", vec![64, 32, 5, 5]),
            ("fc1.weight", vec![32, 3136]),
            ("fc2.weight", vec![10, 32]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn mnist_cnn_structure_matches_the_example_bookkeeping() {
        // The example's layer plan (reference/gamf_np.py `layer_plan`): 139 nodes; layers
        // (nb, npre, ncur, f) = (0,1,32,25), (1,32,64,25), (33,64,32,49), (97,32,10,1).
        let s = preset("mnist-cnn")
            .unwrap()
            .check_shapes(&mnist_shapes())
            .unwrap();
        assert_eq!(s.n_nodes(), 139);
        let plan: Vec<_> = s
            .layers
            .iter()
            .map(|l| (s.group_offset(l.input), l.n_in, l.n_out, l.feat))
            .collect();
        assert_eq!(
            plan,
            [
                (0, 1, 32, 25),
                (1, 32, 64, 25),
                (33, 64, 32, 49),
                (97, 32, 10, 1)
            ]
        );
        assert_eq!(s.layers[3].output, NodeGroup::Output);
        assert_eq!(s.hidden.len(), 3);
        assert_eq!(s.hidden[1].size, 64);
        let fc1_axis = &s.hidden[1].axes[1];
        assert_eq!(
            (fc1_axis.tensor.as_str(), fc1_axis.axis, fc1_axis.block),
            ("fc1.weight", 1, 49)
        );
        assert_eq!(s.group_offset(NodeGroup::Hidden(2)), 97);
        assert_eq!(s.group_offset(NodeGroup::Output), 129);
    }

    #[test]
    fn wrong_input_channels_name_the_tensor_and_both_shapes() {
        let mut t = mnist_shapes();
        t.insert("conv2.weight".into(), vec![64, 16, 5, 5]);
        let err = preset("mnist-cnn").unwrap().check_shapes(&t).unwrap_err();
        assert_eq!(
            err,
            ArchError::ShapeMismatch {
                name: "conv2.weight".into(),
                expected: vec![64, 32, 5, 5],
                got: vec![64, 16, 5, 5]
            }
        );
        assert!(err.to_string().contains("conv2.weight"));
    }

    #[test]
    fn missing_unused_and_reused_tensors_are_rejected() {
        let spec = preset("mnist-cnn").unwrap();
        let mut t = mnist_shapes();
        t.remove("fc1.weight");
        assert!(matches!(
            spec.check_shapes(&t),
            Err(ArchError::MissingTensor { .. })
        ));
        let mut t = mnist_shapes();
        t.insert("extra".into(), vec![3]);
        assert_eq!(
            spec.check_shapes(&t),
            Err(ArchError::UnusedTensor("extra".into()))
        );
        let mut reused = spec.clone();
        reused.ops.push(
            Op::Linear {
                weight: "fc2.weight".into(),
                bias: None,
            }
            .into(),
        );
        assert_eq!(
            reused.check_shapes(&mnist_shapes()),
            Err(ArchError::TensorReused("fc2.weight".into()))
        );
    }

    #[test]
    fn flatten_block_follows_the_pooled_shape_and_biases_join_their_group() {
        let spec: ArchSpec = serde_json::from_str(
            r#"{"name":"tiny","input":[3,8,8],"ops":[
              {"op":"conv2d","weight":"c.w","bias":"c.b","padding":1},
              {"op":"relu"},
              {"op":"avgpool2d","kernel":2},
              {"op":"flatten"},
              {"op":"linear","weight":"l1.w","bias":"l1.b"},
              {"op":"relu"},
              {"op":"linear","weight":"l2.w"}]}"#,
        )
        .unwrap();
        let t: BTreeMap<String, Vec<usize>> = [
            ("c.w", vec![4, 3, 3, 3]),
            ("c.b", vec![4]),
            ("l1.w", vec![6, 64]),
            ("l1.b", vec![6]),
            ("l2.w", vec![2, 6]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let s = spec.check_shapes(&t).unwrap();
        assert_eq!(s.hidden[0].axes.len(), 3);
        assert_eq!(s.hidden[0].axes[2].block, 16);
        assert_eq!(s.layers[1].feat, 16);
        assert_eq!(s.hidden[1].axes[1].tensor, "l1.b");
        let mut bad = t.clone();
        bad.insert("l1.b".into(), vec![5]);
        assert!(matches!(
            spec.check_shapes(&bad),
            Err(ArchError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn specs_round_trip_through_json_and_reject_unknown_ops() {
        let spec = preset("mnist-cnn").unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ArchSpec>(&json).unwrap(), spec);
        let bad = r#"{"name":"x","input":[1,2,2],"ops":[{"op":"softmax"}]}"#;
        assert!(serde_json::from_str::<ArchSpec>(bad).is_err());
        // Field-less ops refuse unknown fields too, and still read without any.
        for op in ["relu", "flatten"] {
            let extra =
                format!(r#"{{"name":"x","input":[1,2,2],"ops":[{{"op":"{op}","inplace":true}}]}}"#);
            assert!(serde_json::from_str::<ArchSpec>(&extra).is_err(), "{op}");
            let plain = format!(r#"{{"name":"x","input":[1,2,2],"ops":[{{"op":"{op}"}}]}}"#);
            assert!(serde_json::from_str::<ArchSpec>(&plain).is_ok(), "{op}");
        }
    }
}
