//! Checking a spec without weights ([`ArchSpec::check_without_weights`]): a dry run with
//! width-1 layers and "same" kernels, which fits whenever real weights could (for the usual
//! odd kernels with `padding = (k − 1) / 2`, and any 1×1 kernel without padding).

use std::collections::BTreeMap;

use super::error::ArchError;
use super::graph::Graph;
use super::spec::{ArchSpec, Op, Shape};

impl ArchSpec {
    /// Check what can be checked without weights: the wiring, op order, distinct tensors, a
    /// weighted layer, a flat output, and branch shapes of every `add` — by shape inference on
    /// width-1 conv/linear layers whose kernels are `2·padding + 1` square.
    ///
    /// # Errors
    /// Any [`ArchError`] of [`ArchSpec::check_tensors`] on those made-up tensors.
    pub fn check_without_weights(&self) -> Result<Graph, ArchError> {
        self.check_tensors(&self.dry_run_tensors()?)
    }

    /// The made-up tensors of [`ArchSpec::check_without_weights`]: width-1 conv/linear layers
    /// with "same" kernels, and batchnorms to match. Their permutation structure
    /// ([`ArchSpec::check_shapes`]) has the real groups and axes, with every size 1.
    ///
    /// # Errors
    /// The [`ArchError`] of shape inference on them.
    pub fn dry_run_tensors(&self) -> Result<BTreeMap<String, Vec<usize>>, ArchError> {
        let mut tensors: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for op in self.op_list() {
            if let Op::Conv2d {
                weight, padding, ..
            } = op
            {
                let k = padding.saturating_mul(2).saturating_add(1);
                tensors.insert(weight.clone(), vec![1, 1, k, k]);
            } else if let Op::Linear { weight, .. } = op {
                tensors.insert(weight.clone(), vec![1, 1]);
            }
        }
        // Input widths and the other tensors follow from the shapes of a first pass.
        let graph = self.graph_with(|n| tensors.get(n).cloned())?;
        for (i, op) in self.op_list().enumerate() {
            let units = graph.input_shape(i).units();
            match (op, graph.input_shape(i)) {
                (Op::Conv2d { weight, .. }, _) => {
                    tensors.get_mut(weight).expect("inserted")[1] = units;
                }
                (Op::Linear { weight, .. }, Shape::Flat(n)) => {
                    tensors.insert(weight.clone(), vec![1, n]);
                }
                _ => {}
            }
            let rest = op.tensors().into_iter().skip(match op {
                Op::Conv2d { .. } | Op::Linear { .. } => 1,
                _ => 0,
            });
            for name in rest {
                let out = graph.output_shape(i).units();
                tensors.insert(name.to_string(), vec![out]);
            }
        }
        Ok(tensors)
    }
}
