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
//! The product is memory-bound — each power step streams every block once — so halving the
//! bytes halves its time.
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

use std::sync::Mutex;

use rayon::prelude::*;

use crate::arch::{NodeGroup, PermStructure};
use crate::weights::{WeightSet, WeightsError};

/// Which entries of `K` a layer fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Only earlier-pair rows, later-pair columns (pygmtools example).
    PreFromCur,
    /// Both (a symmetric `K`).
    Symmetric,
}

/// One layer's edge-pair affinities: `m[e1·E + e2]` for model-1 edge `e1 = b·n_in + a` and
/// model-2 edge `e2 = d·n_in + c` (`b, d` outputs, `a, c` inputs).
struct LayerBlock {
    /// Group index (0 = input, then [`PermStructure::hidden`], then the output) of the
    /// layer's inputs; for a chain, its outputs are group `pre + 1`.
    pre: usize,
    /// Group index of the layer's outputs (an `add` may tie several layers' outputs).
    cur: usize,
    n_in: usize,
    n_out: usize,
    m: Entries,
}

/// A block's entries: `f64` for the example's layout, `f32` for the symmetric one.
enum Entries {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

impl Entries {
    fn len(&self) -> usize {
        match self {
            Entries::F64(m) => m.len(),
            Entries::F32(m) => m.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Entries::F64(m) => m.len() * 8,
            Entries::F32(m) => m.len() * 4,
        }
    }
}

/// A stored entry type, widened to `f64` for every product.
trait Entry: Copy + Send + Sync + Default + 'static {
    fn from_f64(v: f64) -> Self;
    fn wide(self) -> f64;
}

impl Entry for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
}

impl Entry for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        f64::from(self)
    }
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
                Direction::PreFromCur => Entries::F64(edge_affinity(f1, f2, layer.feat)),
                Direction::Symmetric => Entries::F32(edge_affinity(f1, f2, layer.feat)),
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
        for (layer, memo) in self.layers.iter().zip(memo.iter_mut()) {
            let (pre, cur) = (layer.pre, layer.cur);
            let (np, nc) = (layer.n_in, layer.n_out);
            let x_pre = &x[self.offsets[pre]..][..np * np];
            let x_cur = &x[self.offsets[cur]..][..nc * nc];
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
            let m = memo.as_ref().expect("filled above");
            for (yv, p) in y[self.offsets[pre]..][..np * np].iter_mut().zip(&m.to_pre) {
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

impl LayerBlock {
    /// This layer's share of `K x`: `(to_pre, to_cur)`; `to_cur` is empty unless symmetric.
    fn product(&self, x_pre: &[f64], x_cur: &[f64], symmetric: bool) -> (Vec<f64>, Vec<f64>) {
        match &self.m {
            Entries::F64(m) => self.product_of(m, x_pre, x_cur, symmetric),
            Entries::F32(m) => self.product_of(m, x_pre, x_cur, symmetric),
        }
    }

    fn product_of<T: Entry>(
        &self,
        m: &[T],
        x_pre: &[f64],
        x_cur: &[f64],
        symmetric: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let (np, nc) = (self.n_in, self.n_out);
        // One task per model-1 output node b: rows b·n_in .. (b+1)·n_in of the block.
        // Partial sums are reduced in b order, so results do not depend on thread count.
        let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..nc)
            .into_par_iter()
            .map(|b| {
                let rows = &m[b * np * nc * np..][..np * nc * np];
                let mut to_pre = vec![0.0; np * np];
                let mut to_cur = vec![0.0; if symmetric { nc } else { 0 }];
                block_apply(
                    rows,
                    &x_cur[b * nc..][..nc],
                    x_pre,
                    np,
                    &mut to_pre,
                    &mut to_cur,
                );
                (to_pre, to_cur)
            })
            .collect();
        let mut to_pre = vec![0.0; np * np];
        let mut to_cur = Vec::with_capacity(if symmetric { nc * nc } else { 0 });
        for (p, c) in parts {
            for (t, v) in to_pre.iter_mut().zip(&p) {
                *t += v;
            }
            to_cur.extend_from_slice(&c);
        }
        (to_pre, to_cur)
    }
}

/// One output node `b` of one layer: `rows` is `[a][d][c]` (`np × nc × np`).
/// `to_pre[a·np + c] += Σ_d x_cur_b[d]·rows[a][d][c]`;
/// when `to_cur` is non-empty, `to_cur[d] += Σ_a Σ_c rows[a][d][c]·x_pre[a·np + c]`.
fn block_apply<T: Entry>(
    rows: &[T],
    x_cur_b: &[f64],
    x_pre: &[f64],
    np: usize,
    to_pre: &mut [f64],
    to_cur: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { block_apply_avx2(rows, x_cur_b, x_pre, np, to_pre, to_cur) };
    }
    block_apply_generic(rows, x_cur_b, x_pre, np, to_pre, to_cur);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_apply_avx2<T: Entry>(
    rows: &[T],
    x_cur_b: &[f64],
    x_pre: &[f64],
    np: usize,
    to_pre: &mut [f64],
    to_cur: &mut [f64],
) {
    block_apply_generic(rows, x_cur_b, x_pre, np, to_pre, to_cur);
}

/// Width of the register blocks of the inner loops: 16 `f64` (four AVX2 vectors) of `to_pre`
/// accumulate in registers across all `d`, and each `d`'s share of `to_cur` is reduced to one
/// 4-lane vector before it touches memory (one load and one store per 16 entries).
const LANES: usize = 16;
/// Lanes of the per-`d` partial sums of `to_cur`.
const DOT_LANES: usize = 4;

#[inline(always)]
fn block_apply_generic<T: Entry>(
    rows: &[T],
    x_cur_b: &[f64],
    x_pre: &[f64],
    np: usize,
    to_pre: &mut [f64],
    to_cur: &mut [f64],
) {
    let nc = x_cur_b.len();
    debug_assert_eq!(rows.len(), np * nc * np);
    let symmetric = !to_cur.is_empty();
    // Per model-2 output d, lane-wise partial sums of Σ_a Σ_c rows[a][d][c]·x_pre[a][c].
    let mut dots = vec![[0.0f64; DOT_LANES]; nc];
    let whole = np - np % LANES;
    for a in 0..np {
        let row = &rows[a * nc * np..][..nc * np];
        let xp = &x_pre[a * np..][..np];
        for c0 in (0..whole).step_by(LANES) {
            let xpc: [f64; LANES] = xp[c0..c0 + LANES].try_into().expect("lane block");
            let mut acc = [0.0f64; LANES];
            if symmetric {
                for (d, dd) in dots.iter_mut().enumerate() {
                    let seg: &[T; LANES] =
                        row[d * np + c0..][..LANES].try_into().expect("lane block");
                    let xv = x_cur_b[d];
                    let mut part = [0.0f64; DOT_LANES];
                    for k in 0..LANES {
                        let m = seg[k].wide();
                        acc[k] += xv * m;
                        part[k % DOT_LANES] += m * xpc[k];
                    }
                    for k in 0..DOT_LANES {
                        dd[k] += part[k];
                    }
                }
            } else {
                for d in 0..nc {
                    let seg: &[T; LANES] =
                        row[d * np + c0..][..LANES].try_into().expect("lane block");
                    let xv = x_cur_b[d];
                    for k in 0..LANES {
                        acc[k] += xv * seg[k].wide();
                    }
                }
            }
            for (o, v) in to_pre[a * np + c0..][..LANES].iter_mut().zip(acc) {
                *o += v;
            }
        }
        // The remaining c (np not a multiple of LANES), one at a time.
        for c in whole..np {
            let mut acc = 0.0;
            for d in 0..nc {
                let m = row[d * np + c].wide();
                acc += x_cur_b[d] * m;
                if symmetric {
                    dots[d][0] += m * xp[c];
                }
            }
            to_pre[a * np + c] += acc;
        }
    }
    for (t, dd) in to_cur.iter_mut().zip(&dots) {
        *t += (dd[0] + dd[1]) + (dd[2] + dd[3]);
    }
}

/// `exp(-‖f1[e1] − f2[e2]‖₂)` for every pair of rows of `f1`, `f2` (`E × feat`, row-major),
/// as an `E × E` row-major matrix. Distances are summed directly (like scipy's `cdist`), not
/// via `‖x‖² + ‖y‖² − 2x·y`, which cancels badly for near-identical edges.
fn edge_affinity<T: Entry>(f1: &[f64], f2: &[f64], feat: usize) -> Vec<T> {
    debug_assert_eq!(f1.len(), f2.len());
    let e = f1.len() / feat;
    // model 2's features transposed (feat × E) so the inner loop runs over contiguous e2.
    let mut f2t = vec![0.0; feat * e];
    for (e2, row) in f2.chunks_exact(feat).enumerate() {
        for (k, v) in row.iter().enumerate() {
            f2t[k * e + e2] = *v;
        }
    }
    let mut m = vec![T::default(); e * e];
    m.par_chunks_mut(e)
        .enumerate()
        .for_each_init(Vec::new, |row, (e1, out)| {
            row.resize(e, 0.0);
            edge_row(&f1[e1 * feat..][..feat], &f2t, row);
            for (o, v) in out.iter_mut().zip(row.iter()) {
                *o = T::from_f64(*v);
            }
        });
    m
}

fn edge_row(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { edge_row_avx2(x, f2t, out) };
    }
    edge_row_generic(x, f2t, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn edge_row_avx2(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    edge_row_generic(x, f2t, out);
}

#[inline(always)]
fn edge_row_generic(x: &[f64], f2t: &[f64], out: &mut [f64]) {
    let e = out.len();
    out.fill(0.0);
    for (k, xk) in x.iter().enumerate() {
        for (o, y) in out.iter_mut().zip(&f2t[k * e..][..e]) {
            let d = xk - y;
            *o += d * d;
        }
    }
    for o in out.iter_mut() {
        *o = (-o.sqrt()).exp();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arch::ArchSpec;
    use crate::weights::{DType, Tensor};
    use ndarray::ArrayD;

    /// A tiny conv → flatten → linear → linear net with biases, and two random weight sets.
    pub(crate) fn tiny() -> (ArchSpec, WeightSet, WeightSet) {
        let spec: ArchSpec = serde_json::from_str(
            r#"{"name":"tiny","input":[2,4,4],"ops":[
              {"op":"conv2d","weight":"c.w","bias":"c.b","padding":1},
              {"op":"relu"},{"op":"maxpool2d","kernel":2},{"op":"flatten"},
              {"op":"linear","weight":"l1.w","bias":"l1.b"},{"op":"relu"},
              {"op":"linear","weight":"l2.w"}]}"#,
        )
        .unwrap();
        let shapes = [
            ("c.w", vec![3, 2, 3, 3]),
            ("c.b", vec![3]),
            ("l1.w", vec![4, 12]),
            ("l1.b", vec![4]),
            ("l2.w", vec![2, 4]),
        ];
        let mut seed = 7u64;
        let mut make = || {
            let mut w = WeightSet::default();
            for (name, shape) in &shapes {
                let n: usize = shape.iter().product();
                let data = (0..n)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
                    })
                    .collect();
                let data = ArrayD::from_shape_vec(shape.clone(), data).unwrap();
                w.tensors.insert(
                    name.to_string(),
                    Tensor {
                        dtype: DType::F32,
                        data,
                    },
                );
            }
            w
        };
        let (a, b) = (make(), make());
        (spec, a, b)
    }

    /// The dense `K` of the reference formulas (gamf_np.py `build_affinity_coo`), compact-indexed.
    fn dense_reference(
        s: &PermStructure,
        m: [&WeightSet; 2],
        sym: bool,
        aff: &Affinity,
    ) -> Vec<Vec<f64>> {
        let n = aff.dim();
        let mut k = vec![vec![0.0; n]; n];
        for &(i, v) in &aff.diag {
            k[i][i] += v;
        }
        for (l, layer) in s.layers.iter().enumerate() {
            let (np, nc, f) = (layer.n_in, layer.n_out, layer.feat);
            let w1 = m[0].tensors[&layer.weight].data.as_slice().unwrap();
            let w2 = m[1].tensors[&layer.weight].data.as_slice().unwrap();
            let (po, co) = (aff.group_offset(l), aff.group_offset(l + 1));
            for b in 0..nc {
                for a in 0..np {
                    for d in 0..nc {
                        for c in 0..np {
                            let e1 = &w1[(b * np + a) * f..][..f];
                            let e2 = &w2[(d * np + c) * f..][..f];
                            let dist: f64 = e1.iter().zip(e2).map(|(x, y)| (x - y) * (x - y)).sum();
                            let mut v = (-dist.sqrt()).exp();
                            if sym {
                                v = f64::from(v as f32); // the symmetric layout stores f32
                            }
                            k[po + a * np + c][co + b * nc + d] += v;
                            if sym {
                                k[co + b * nc + d][po + a * np + c] += v;
                            }
                        }
                    }
                }
            }
        }
        k
    }

    #[test]
    fn implicit_product_equals_the_dense_reference_in_both_layouts() {
        let (spec, m1, m2) = tiny();
        let s = spec.validate(&m1).unwrap();
        for (dir, sym) in [(Direction::PreFromCur, false), (Direction::Symmetric, true)] {
            let aff = Affinity::build(&s, [&m1, &m2], dir).unwrap();
            let n = aff.dim();
            assert_eq!(n, 2 * 2 + 3 * 3 + 4 * 4 + 2 * 2);
            let k = dense_reference(&s, [&m1, &m2], sym, &aff);
            if sym {
                for (i, row) in k.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        assert_eq!(*v, k[j][i]);
                    }
                }
            }
            let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 / 7.0 - 0.6).collect();
            let mut y = vec![0.0; n];
            aff.apply(&x, &mut y);
            for i in 0..n {
                let want: f64 = (0..n).map(|j| k[i][j] * x[j]).sum();
                approx::assert_abs_diff_eq!(y[i], want, epsilon = 1e-12);
            }
        }
    }

    #[test]
    fn affinity_of_identical_edges_is_one_and_decays_with_distance() {
        // exp(-||f1 - f2||): features [0,0] vs [3,4] are 5 apart.
        let m: Vec<f64> = edge_affinity(&[0.0, 0.0, 3.0, 4.0], &[0.0, 0.0, 3.0, 4.0], 2);
        assert_eq!(m[0], 1.0);
        assert_eq!(m[3], 1.0);
        approx::assert_relative_eq!(m[1], (-5.0f64).exp(), max_relative = 1e-15);
        assert_eq!(m[1], m[2]);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Interleaved timing of the symmetric product with `f32` and with `f64` storage on the
    /// seed models (so machine load hits both alike):
    /// `cargo test --release -p gmfuse-engine --lib storage_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check; needs the seed models"]
    fn storage_timing() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/seed-models");
        let read = |n: &str| WeightSet::from_bytes(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        let (a, b) = (read("model1.safetensors"), read("model2.safetensors"));
        let s = crate::arch::preset("mnist-cnn")
            .unwrap()
            .validate(&a)
            .unwrap();
        let k32 = Affinity::build(&s, [&a, &b], Direction::Symmetric).unwrap();
        let mut k64 = Affinity::build(&s, [&a, &b], Direction::Symmetric).unwrap();
        for l in &mut k64.layers {
            if let Entries::F32(m) = &l.m {
                l.m = Entries::F64(m.iter().map(|&v| f64::from(v)).collect());
            }
        }
        let x: Vec<f64> = (0..k32.dim())
            .map(|i| 1.0 + (i % 7) as f64 * 1e-3)
            .collect();
        let mut y = vec![0.0; x.len()];
        let (mut t32, mut t64) = (Vec::new(), Vec::new());
        for round in 0..10 {
            for (k, t) in [(&k32, &mut t32), (&k64, &mut t64)] {
                let mut x = x.clone();
                x[round] += 1e-9;
                let start = std::time::Instant::now();
                for _ in 0..10 {
                    k.apply(&x, &mut y);
                    x.iter_mut().for_each(|v| *v *= 1.0 + 1e-9); // defeat the memo
                }
                t.push(start.elapsed().as_secs_f64() / 10.0);
            }
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "one symmetric product: f32 storage {:.2} ms, f64 storage {:.2} ms",
            med(t32) * 1e3,
            med(t64) * 1e3
        );
    }
}
