//! One layer's block of the affinity and its share of `K·x`: a register-blocked kernel over
//! `f32` or `f64` entries that accumulates in `f64`, one rayon task per model-1 output node.

use rayon::prelude::*;

/// One layer's edge-pair affinities: `m[e1·E + e2]` for model-1 edge `e1 = b·n_in + a` and
/// model-2 edge `e2 = d·n_in + c` (`b, d` outputs, `a, c` inputs).
pub(super) struct LayerBlock {
    /// Group index (0 = input, then [`PermStructure::hidden`], then the output) of the
    /// layer's inputs; for a chain, its outputs are group `pre + 1`.
    ///
    /// [`PermStructure::hidden`]: crate::arch::PermStructure::hidden
    pub(super) pre: usize,
    /// Group index of the layer's outputs (an `add` may tie several layers' outputs).
    pub(super) cur: usize,
    pub(super) n_in: usize,
    pub(super) n_out: usize,
    pub(super) m: Entries,
}

/// A block's entries: `f64` for the example's layout, `f32` for the symmetric one.
pub(super) enum Entries {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// `body` with `$m` bound to the entries' vector, whichever their type (every use is generic
/// over [`Entry`]).
macro_rules! with_entries {
    ($entries:expr, $m:ident => $body:expr) => {
        match $entries {
            Entries::F64($m) => $body,
            Entries::F32($m) => $body,
        }
    };
}

impl Entries {
    pub(super) fn len(&self) -> usize {
        with_entries!(self, m => m.len())
    }

    pub(super) fn bytes(&self) -> usize {
        with_entries!(self, m => std::mem::size_of_val(m.as_slice()))
    }
}

/// A stored entry type, widened to `f64` for every product.
trait Entry: Copy + Send + Sync + 'static {
    fn wide(self) -> f64;
}

impl Entry for f64 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
}

impl Entry for f32 {
    #[inline(always)]
    fn wide(self) -> f64 {
        f64::from(self)
    }
}

impl LayerBlock {
    /// This layer's share of `K x`: `(to_pre, to_cur)`; `to_cur` is empty unless symmetric.
    pub(super) fn product(
        &self,
        x_pre: &[f64],
        x_cur: &[f64],
        symmetric: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        with_entries!(&self.m, m => self.product_of(m, x_pre, x_cur, symmetric))
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
