//! A network's hidden activations: [`Network::activations`] runs a batch through the same
//! compiled steps and kernels as [`Network::logits`] and hands back, for each op asked for, its
//! units' values — the op's output, after the ReLU that directly follows it when one does (the
//! plan fuses that ReLU into a convolution or linear layer, so the pre-ReLU values are never
//! materialised). The logits path pays one empty call per step for this.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::{Network, Scratch};
use crate::arch::{ArchSpec, Graph, Op};

/// For each op: the number of compiled steps after which its units' activations are in the
/// buffer (its own `ends` entry, or the next op's when that op is a ReLU), and its unit count
/// (channels of an image-shaped output, the width of a flat one).
pub(super) fn tap_points(
    spec: &ArchSpec,
    graph: &Graph,
    ends: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    (0..spec.ops.len())
        .map(|i| {
            let relu_next = matches!(spec.ops.get(i + 1).map(|n| &n.op), Some(Op::Relu {}))
                && graph.inputs[i + 1] == [i + 1];
            let end = if relu_next { ends[i + 1] } else { ends[i] };
            (end, graph.output_shape(i).units())
        })
        .unzip()
}

impl Network {
    /// The shape one sample's activations of op `op` take in [`Network::activations`]:
    /// `(H·W, C)` for an image-shaped output, `(1, width)` for a flat one.
    ///
    /// # Panics
    /// If `op` is out of range.
    pub fn activation_shape(&self, op: usize) -> (usize, usize) {
        let units = self.units[op];
        let len = match self.unit_ends[op] {
            0 => self.input.iter().product(),
            k => self.steps[k - 1].out_len(),
        };
        (len / units, units)
    }

    /// The activations of the units of each op in `ops` (indices into the spec's ops) for a
    /// batch of `images` (`(n, C·H·W)`, channel-major): the op's output, after the ReLU that
    /// directly follows it if one does. One matrix per op, `(n·H·W, C)` for an image-shaped
    /// output (row `(s·H + y)·W + x` is sample `s` at pixel `(y, x)`; every spatial position is
    /// a row) and `(n, width)` for a flat one. Runs in parallel on the current rayon pool;
    /// memory is the returned matrices plus one chunk's buffers per thread.
    ///
    /// # Panics
    /// If `images` does not have `C·H·W` columns or an op index is out of range.
    pub fn activations(&self, images: ArrayView2<'_, f32>, ops: &[usize]) -> Vec<Array2<f32>> {
        let in_len = self.input.iter().product::<usize>();
        assert_eq!(images.ncols(), in_len, "images must have C·H·W columns");
        assert!(
            ops.iter().all(|&op| op < self.units.len()),
            "op index out of range"
        );
        let images = images.as_standard_layout();
        let x = images.as_slice().expect("standard layout");
        let chunks: Vec<Vec<Vec<f32>>> = x
            .par_chunks(self.chunk * in_len)
            .map_init(
                || (Scratch::default(), Vec::new()),
                |(s, logits), x| {
                    let mut out = vec![Vec::new(); ops.len()];
                    logits.resize(x.len() / in_len * self.classes, 0.0);
                    self.run_chunk(x, logits, s, &mut |k, values| {
                        for (o, &op) in out.iter_mut().zip(ops) {
                            if self.unit_ends[op] == k {
                                o.extend_from_slice(values);
                            }
                        }
                    });
                    out
                },
            )
            .collect();
        ops.iter()
            .enumerate()
            .map(|(t, &op)| {
                let units = self.units[op];
                let data: Vec<f32> = chunks.iter().flat_map(|c| c[t].iter().copied()).collect();
                Array2::from_shape_vec((data.len() / units, units), data)
                    .expect("whole rows of units")
            })
            .collect()
    }
}
