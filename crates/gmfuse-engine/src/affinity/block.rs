//! One layer's block of the affinity and its share of `K·x`, one rayon task per model-1 output
//! node; the per-node kernels over `f32` or `f64` entries, accumulating in `f64`, are in
//! [`kernel`] (portable) and [`kernel_avx512`] (the default layout on AVX-512).

use rayon::prelude::*;

use super::kernel::{self, Node};
#[cfg(target_arch = "x86_64")]
use super::kernel_avx512;

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
pub(super) trait Entry: Copy + Send + Sync + 'static {
    fn wide(self) -> f64;

    /// One output node's product ([`Node`]). Every kernel forms every sum in the same order
    /// ([`kernel`]), so the result does not depend on which one the CPU gets.
    fn block_apply(node: Node<'_, Self>, to_pre: &mut [f64], to_cur: &mut [f64]) {
        kernel::portable(node, to_pre, to_cur);
    }
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

    /// The `f32` entries (the default layout) have an AVX-512 kernel of their own.
    fn block_apply(node: Node<'_, f32>, to_pre: &mut [f64], to_cur: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { kernel_avx512::apply(node, to_pre, to_cur) };
        }
        kernel::portable(node, to_pre, to_cur);
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
                let mut to_pre = vec![0.0; np * np];
                let mut to_cur = vec![0.0; if symmetric { nc } else { 0 }];
                let node = Node {
                    rows: &m[b * np * nc * np..][..np * nc * np],
                    x_cur_b: &x_cur[b * nc..][..nc],
                    x_pre,
                    np,
                };
                T::block_apply(node, &mut to_pre, &mut to_cur);
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
