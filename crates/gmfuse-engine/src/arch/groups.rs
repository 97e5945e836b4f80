//! Deriving a [`PermStructure`] from a spec's graph by union-find over the channel axes of its
//! values (see [`super::perm`] for the rules).

use super::error::ArchError;
use super::graph::Graph;
use super::perm::{AxisRef, GraphLayer, LayerKind, NodeGroup, PermGroup, PermStructure};
use super::spec::{ArchSpec, Op, Shape};

/// Union-find with path halving; the root of a set is its smallest member.
struct Sets(Vec<usize>);

impl Sets {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        let (lo, hi) = (a.min(b), a.max(b));
        self.0[hi] = lo;
    }
}

impl PermStructure {
    /// Derive the structure from a spec and its inferred graph (as from
    /// [`ArchSpec::graph_with`]). The spec must hold at least one weighted op.
    ///
    /// # Errors
    /// [`ArchError::Unsupported`] when an `add` ties a flattened value to a plain feature
    /// vector (their channels have different blocks, so no channel permutation fits both).
    pub(crate) fn derive(
        spec: &ArchSpec,
        graph: &Graph,
        weight_shape: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Self, ArchError> {
        let n_values = graph.shapes.len();
        let mut sets = Sets((0..n_values).collect());
        // Features per channel of each value: 1, or H·W after a flatten.
        let mut block = vec![1usize; n_values];
        for (i, op) in spec.op_list().enumerate() {
            let (ins, out) = (&graph.inputs[i], i + 1);
            match (op, graph.shapes[ins[0]]) {
                (Op::Conv2d { .. } | Op::Linear { .. }, _) => {}
                (Op::Flatten {}, Shape::Chw(_, h, w)) => {
                    block[out] = block[ins[0]] * h * w;
                    sets.union(ins[0], out);
                }
                _ => {
                    block[out] = block[ins[0]];
                    for &v in ins {
                        if block[v] != block[out] {
                            return Err(ArchError::Unsupported {
                                what: format!("op {i} ({})", spec.ops[i].label()),
                                reason: "it adds a flattened value to a plain feature vector, which no channel permutation fits".into(),
                            });
                        }
                        sets.union(v, out);
                    }
                }
            }
        }
        let fixed = [sets.find(0), sets.find(n_values - 1)];
        let mut group_of_root = vec![None; n_values];
        let mut hidden: Vec<PermGroup> = Vec::new();
        let mut node_group = |sets: &mut Sets, v: usize, hidden: &mut Vec<PermGroup>| {
            let root = sets.find(v);
            if root == fixed[0] {
                return NodeGroup::Input;
            }
            if root == fixed[1] {
                return NodeGroup::Output;
            }
            let k = *group_of_root[root].get_or_insert_with(|| {
                hidden.push(PermGroup {
                    size: graph.shapes[v].units() / block[v],
                    producer: usize::MAX,
                    consumer: usize::MAX,
                    producers: Vec::new(),
                    consumers: Vec::new(),
                    values: Vec::new(),
                    taps: Vec::new(),
                    axes: Vec::new(),
                });
                hidden.len() - 1
            });
            NodeGroup::Hidden(k)
        };
        let axis = |tensor: &str, axis: usize, block: usize| AxisRef {
            tensor: tensor.to_string(),
            axis,
            block,
        };
        let mut layers = Vec::new();
        for (i, op) in spec.op_list().enumerate() {
            let (v_in, v_out) = (graph.inputs[i][0], i + 1);
            match op {
                Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias } => {
                    let l = layers.len();
                    let output = node_group(&mut sets, v_out, &mut hidden);
                    let input = node_group(&mut sets, v_in, &mut hidden);
                    if let NodeGroup::Hidden(k) = output {
                        let g = &mut hidden[k];
                        g.producers.push(l);
                        g.axes.push(axis(weight, 0, 1));
                        g.axes.extend(bias.iter().map(|b| axis(b, 0, 1)));
                    }
                    if let NodeGroup::Hidden(k) = input {
                        hidden[k].consumers.push(l);
                        hidden[k].axes.push(axis(weight, 1, block[v_in]));
                    }
                    let kind = match op {
                        Op::Conv2d { .. } => LayerKind::Conv,
                        _ => LayerKind::Linear,
                    };
                    let feat = match kind {
                        LayerKind::Conv => {
                            let ws = weight_shape(weight).expect("validated conv weight");
                            ws[2] * ws[3]
                        }
                        LayerKind::Linear => block[v_in],
                    };
                    layers.push(GraphLayer {
                        op_index: i,
                        kind,
                        weight: weight.clone(),
                        bias: bias.clone(),
                        input,
                        output,
                        n_in: graph.shapes[v_in].units() / block[v_in],
                        n_out: graph.shapes[v_out].units(),
                        feat,
                    });
                }
                Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. } => {
                    if let NodeGroup::Hidden(k) = node_group(&mut sets, v_in, &mut hidden) {
                        let b = block[v_in];
                        hidden[k]
                            .axes
                            .extend(op.tensors().into_iter().map(|t| axis(t, 0, b)));
                    }
                }
                _ => {}
            }
        }
        let consumers = graph.consumers();
        let ops: Vec<&Op> = spec.op_list().collect();
        let passes = |op: &Op| {
            matches!(
                op,
                Op::Batchnorm2d { .. } | Op::Batchnorm1d { .. } | Op::Relu {} | Op::Add {}
            )
        };
        for v in 0..n_values {
            if let NodeGroup::Hidden(k) = node_group(&mut sets, v, &mut hidden) {
                hidden[k].values.push(v);
                let made_by_unit_op = v > 0
                    && (passes(ops[v - 1])
                        || matches!(ops[v - 1], Op::Conv2d { .. } | Op::Linear { .. }));
                let walks_on = matches!(consumers[v].as_slice(), [j] if passes(ops[*j]));
                // After a flatten a unit is a block of H·W features, not one observation.
                if made_by_unit_op && !walks_on && block[v] == 1 {
                    hidden[k].taps.push(v);
                }
            }
        }
        for g in &mut hidden {
            g.producer = g.producers[0];
            g.consumer = g.consumers.first().copied().unwrap_or(usize::MAX);
        }
        let n_input = graph.shapes[0].units();
        Ok(PermStructure {
            n_input,
            layers,
            hidden,
        })
    }
}
