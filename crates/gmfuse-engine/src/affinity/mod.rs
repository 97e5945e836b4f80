//! GAMF affinity between the graphs of two networks, as a structured sparse operator.
//!
//! Nodes are channels; the pair space is every (model-1 node, model-2 node) pair of one node
//! group. An edge of model 1 (`a → b`, feature `f1`) and an edge of model 2 (`c → d`, feature
//! `f2`) of the same layer give the affinity `exp(-‖f1 − f2‖₂)` between the node pairs
//! `(a, c)` and `(b, d)`. For a layer with `E = n_out·n_in` edges that is an `E × E` dense
//! block; the full `(n1·n2)²` matrix (1.4 GiB for the example's net) is never built: [`Affinity`]
//! keeps one block per layer (8.5 M entries, for the example) and computes `K·v` from them.
//!
//! Storage: the example's layout keeps its entries in `f64` (68 MB), so compat mode reproduces
//! the numpy reference bit for bit; the default symmetric layout stores them in `f32` (34 MB;
//! entries lie in (0, 1], relative rounding ≤ 6e-8) and accumulates every product in `f64`.
//! Each power step reads every block once. On a machine that streams 34 MB fifty times in
//! 32 ms (2026-12-06) the product was bound by its loads' latency and its arithmetic, not by
//! bandwidth: the kernels ([`kernel`]) read the entries in storage order with a software
//! prefetch, use AVX-512 for the default layout where the CPU has it, and the layers' products
//! run side by side — all with every sum formed in one fixed order, so results are
//! bit-identical whatever the CPU and thread count (README "Benchmarks").
//! The blocks are allocated on 2 MiB pages where Linux allows (`madvise`, [`edges`]): on this
//! project's VM, under load 11, that took the default-mode power iteration (51 products) from
//! 2.0–2.3 s to 0.49–0.51 s, with identical results (README "Benchmarks").
//!
//! Pair vectors are stored compactly: group `g` (input, hidden…, output) owns `s_g²` entries,
//! row-major (`(i, j) → offset_g + i·s_g + j`, `i` a model-1 node, `j` a model-2 node). Pairs
//! of nodes from different groups have no affinity and are left out.
//!
//! Two layouts of `K`:
//! - [`Direction::PreFromCur`] — the pygmtools example: only `K[(a,c), (b,d)]` (earlier pair
//!   row, later pair column) is filled, so `K` is not symmetric.
//! - [`Direction::Symmetric`] — gmfuse's default: each edge pair contributes to both node pairs.
//!
//! Fixed nodes get 1 on the diagonal: `(a, a)` for every input channel and `(o, o)` for every
//! output. A layer's biases are node features: `exp(-|b1_i − b2_j|)` on the diagonal of its
//! hidden output pairs.
//!
//! Files: this one holds the operator and its product with memo; [`block`] a layer's block
//! and its product's split into tasks; [`kernel`] and [`kernel_avx512`] the register-blocked
//! product kernels; [`edges`] the construction of the entries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

mod block;
mod edges;
mod kernel;
#[cfg(target_arch = "x86_64")]
mod kernel_avx512;

use crate::arch::{NodeGroup, PermStructure};
use crate::weights::{WeightSet, WeightsError};
use block::{Entries, LayerBlock};

/// Which entries of `K` a layer fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Only earlier-pair rows, later-pair columns (pygmtools example).
    PreFromCur,
    /// Both (a symmetric `K`).
    Symmetric,
}
/// The affinity `K` of two networks of one [`PermStructure`], as an implicit operator.
pub struct Affinity {
    /// Node count per group: input, hidden…, output.
    sizes: Vec<usize>,
    /// Offset of each group's block in a compact pair vector.
    offsets: Vec<usize>,
    /// Diagonal entries: (compact index, value).
    diag: Vec<(usize, f64)>,
    layers: Vec<LayerBlock>,
    direction: Direction,
    /// Per layer, the last inputs and products, reused when a block's input is bit-identical
    /// (the unnormalised power iteration of a one-directional `K` settles layer by layer).
    memo: Mutex<Vec<Option<Memo>>>,
    /// Whether the next product visits the layers in reverse.
    reverse: AtomicBool,
}

/// One layer's last `(x_pre, x_cur) → (to_pre, to_cur)` product.
struct Memo {
    x_pre: Vec<f64>,
    x_cur: Vec<f64>,
    to_pre: Vec<f64>,
    to_cur: Vec<f64>,
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl Affinity {
    /// Build the affinity of `models[0]` (rows) and `models[1]` (columns) for `structure`.
    /// Both models must have been validated against the structure's spec.
    ///
    /// # Errors
    /// [`WeightsError::Missing`] if a tensor named by the structure is absent.
    pub fn build(
        structure: &PermStructure,
        models: [&WeightSet; 2],
        direction: Direction,
    ) -> Result<Self, WeightsError> {
        let sizes = structure.group_sizes();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut total = 0;
        for s in &sizes {
            offsets.push(total);
            total += s * s;
        }
        let mut diag: Vec<(usize, f64)> = (0..sizes[0]).map(|a| (a * sizes[0] + a, 1.0)).collect();
        let last = sizes.len() - 1;
        diag.extend((0..sizes[last]).map(|o| (offsets[last] + o * sizes[last] + o, 1.0)));
        let mut layers = Vec::with_capacity(structure.layers.len());
        for layer in &structure.layers {
            let (pre, cur) = (
                structure.group_index(layer.input),
                structure.group_index(layer.output),
            );
            let w1 = models[0].tensor(&layer.weight)?;
            let w2 = models[1].tensor(&layer.weight)?;
            let (f1, f2) = (w1.data.as_standard_layout(), w2.data.as_standard_layout());
            let (f1, f2) = (
                f1.as_slice().expect("standard layout"),
                f2.as_slice().expect("standard layout"),
            );
            let m = match direction {
                Direction::PreFromCur => Entries::F64(edges::exact(f1, f2, layer.feat)),
                Direction::Symmetric => Entries::F32(edges::rounded_f32(f1, f2, layer.feat)),
            };
            if let (Some(b), NodeGroup::Hidden(_)) = (&layer.bias, layer.output) {
                let b1 = models[0]
                    .tensor(b)?
                    .data
                    .iter()
                    .copied()
                    .collect::<Vec<_>>();
                let b2 = models[1]
                    .tensor(b)?
                    .data
                    .iter()
                    .copied()
                    .collect::<Vec<_>>();
                let (n, off) = (layer.n_out, offsets[cur]);
                for (i, x) in b1.iter().enumerate() {
                    for (j, y) in b2.iter().enumerate() {
                        diag.push((off + i * n + j, (-(x - y).abs()).exp()));
                    }
                }
            }
            layers.push(LayerBlock {
                pre,
                cur,
                n_in: layer.n_in,
                n_out: layer.n_out,
                m,
            });
        }
        let memo = Mutex::new((0..layers.len()).map(|_| None).collect());
        Ok(Affinity {
            sizes,
            offsets,
            diag,
            layers,
            direction,
            memo,
            reverse: AtomicBool::new(false),
        })
    }

    /// Length of a compact pair vector.
    pub fn dim(&self) -> usize {
        self.sizes.iter().map(|s| s * s).sum()
    }

    /// Node count per group (input, hidden…, output).
    pub fn group_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Where group `g`'s `s_g × s_g` block starts in a compact pair vector.
    pub fn group_offset(&self, g: usize) -> usize {
        self.offsets[g]
    }

    /// Stored nonzeros of `K` (each edge-pair block counted once, plus the diagonal).
    pub fn nnz(&self) -> usize {
        self.diag.len() + self.layers.iter().map(|l| l.m.len()).sum::<usize>()
    }

    /// Bytes held by the operator.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| l.m.bytes()).sum::<usize>() + self.diag.len() * 16
    }

    /// `y = K x` on compact pair vectors (`x.len() == y.len() == self.dim()`).
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        assert_eq!(x.len(), self.dim(), "x has the compact pair dimension");
        assert_eq!(y.len(), self.dim(), "y has the compact pair dimension");
        y.fill(0.0);
        for &(i, v) in &self.diag {
            y[i] += v * x[i];
        }
        let symmetric = self.direction == Direction::Symmetric;
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        // The layers are handed out in layer order on one call and in reverse on the next, so
        // a block streamed last tends to be streamed first again while it is still in cache
        // (the two big blocks of the example, 17 MB each in f32, do not both fit in a 32 MB
        // L3). The products are summed into `y` in layer order whatever order they were
        // computed in, so the result does not depend on it.
        let reverse = self.reverse.fetch_xor(true, Ordering::Relaxed);
        let mut order: Vec<(&LayerBlock, &mut Option<Memo>)> =
            self.layers.iter().zip(memo.iter_mut()).collect();
        if reverse {
            order.reverse();
        }
        // The layers' products are independent: computed side by side, each layer's split into
        // tasks of its own, so the threads meet once per product instead of once per layer.
        order.into_par_iter().for_each(|(layer, memo)| {
            let (np, nc) = (layer.n_in, layer.n_out);
            let x_pre = &x[self.offsets[layer.pre]..][..np * np];
            let x_cur = &x[self.offsets[layer.cur]..][..nc * nc];
            let hit = memo.as_ref().is_some_and(|m| {
                same_bits(&m.x_cur, x_cur) && (!symmetric || same_bits(&m.x_pre, x_pre))
            });
            if !hit {
                let (to_pre, to_cur) = layer.product(x_pre, x_cur, symmetric);
                *memo = Some(Memo {
                    x_pre: x_pre.to_vec(),
                    x_cur: x_cur.to_vec(),
                    to_pre,
                    to_cur,
                });
            }
        });
        for (layer, m) in self.layers.iter().zip(memo.iter()) {
            let (pre, cur) = (layer.pre, layer.cur);
            let m = m.as_ref().expect("filled above");
            for (yv, p) in y[self.offsets[pre]..][..m.to_pre.len()]
                .iter_mut()
                .zip(&m.to_pre)
            {
                *yv += p;
            }
            for (yv, p) in y[self.offsets[cur]..][..m.to_cur.len()]
                .iter_mut()
                .zip(&m.to_cur)
            {
                *yv += p;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
