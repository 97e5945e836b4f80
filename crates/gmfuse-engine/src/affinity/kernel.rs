//! The per-node product of a layer block ([`super::block::Entry::block_apply`]): a register-
//! blocked loop that every kernel shares, and its portable chunk ([`Portable`]).
//!
//! Per model-1 input node `a`, the `c` range is cut into chunks of up to `MAX_BLOCKS` register
//! blocks of [`LANES`] entries, and `d` runs over a chunk's blocks side by side, so the entries
//! are read in storage order (`rows[a][d][c]`, a whole chunk of `c` per `d`) rather than one
//! block per row stride (the loop this replaced read 64 bytes per 128–256-byte stride, and the
//! loads stalled). Every sum is formed in one fixed order whatever the chunk size or the
//! vector width: lane `c` of `to_pre` adds its `d` terms in `d` order, and `to_cur[d]`'s
//! [`DOT_LANES`] partial sums add their `(a, c)` blocks in `a`, then `c` order — lane `l` of a
//! block's share being `p_l + p_{l+4} + p_{l+8} + p_{l+12}` from the left — so every kernel's
//! result is bit-identical to this file's.

use super::block::Entry;

/// Width of a register block: 16 `f64` of `to_pre` accumulate in registers across all `d`,
/// and each `d`'s share of `to_cur` is reduced to one 4-lane vector before it is added.
pub(super) const LANES: usize = 16;
/// Lanes of the per-`d` partial sums of `to_cur`.
pub(super) const DOT_LANES: usize = 4;

/// The portable kernel: vectorised by the compiler, with AVX2 where the CPU has it.
pub(super) fn portable<T: Entry>(node: Node<'_, T>, to_pre: &mut [f64], to_cur: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { portable_avx2(node, to_pre, to_cur) };
    }
    apply::<T, Portable, 2>(node, to_pre, to_cur);
}

/// 16 vector registers: two lane blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn portable_avx2<T: Entry>(node: Node<'_, T>, to_pre: &mut [f64], to_cur: &mut [f64]) {
    apply::<T, Portable, 2>(node, to_pre, to_cur);
}

/// One model-1 output node `b` of a layer block: its rows `[a][d][c]` (`np × nc × np`), its
/// inputs `x_cur_b` (`nc`: the pairs `(b, d)`) and `x_pre` (`np²`: the pairs `(a, c)`).
/// `to_pre[a·np + c] += Σ_d x_cur_b[d]·rows[a][d][c]`; when `to_cur` is non-empty (a
/// symmetric product), `to_cur[d] += Σ_a Σ_c rows[a][d][c]·x_pre[a·np + c]`.
#[derive(Clone, Copy)]
pub(super) struct Node<'a, T> {
    pub(super) rows: &'a [T],
    pub(super) x_cur_b: &'a [f64],
    pub(super) x_pre: &'a [f64],
    pub(super) np: usize,
}

/// How a chunk of `B` register blocks is computed.
pub(super) trait Chunks<T> {
    fn chunk<const B: usize, const SYMMETRIC: bool>(
        rows: &Rows<'_, T>,
        c0: usize,
        to: &mut [f64],
        dots: &mut [[f64; DOT_LANES]],
    );
}

/// One input node `a` of one output node `b`: its rows `[d][c]` and the inputs they meet.
pub(super) struct Rows<'a, T> {
    pub(super) row: &'a [T],
    pub(super) np: usize,
    pub(super) x_cur_b: &'a [f64],
    pub(super) x_pre_a: &'a [f64],
}

/// The loop over `a` and the chunks, with `K`'s chunks and the remaining `c` one at a time.
#[inline(always)]
pub(super) fn apply<T: Entry, K: Chunks<T>, const MAX_BLOCKS: usize>(
    node: Node<'_, T>,
    to_pre: &mut [f64],
    to_cur: &mut [f64],
) {
    let Node {
        rows,
        x_cur_b,
        x_pre,
        np,
    } = node;
    let nc = x_cur_b.len();
    assert_eq!(rows.len(), np * nc * np, "one output node's rows");
    let symmetric = !to_cur.is_empty();
    // Per model-2 output d, lane-wise partial sums of Σ_a Σ_c rows[a][d][c]·x_pre[a][c].
    let mut dots = vec![[0.0f64; DOT_LANES]; nc];
    let whole = np - np % LANES;
    for a in 0..np {
        let rows_a = Rows {
            row: &rows[a * nc * np..][..nc * np],
            np,
            x_cur_b,
            x_pre_a: &x_pre[a * np..][..np],
        };
        let to = &mut to_pre[a * np..][..np];
        let mut c0 = 0;
        while c0 < whole {
            let blocks = ((whole - c0) / LANES).min(MAX_BLOCKS);
            let dots = &mut dots[..];
            match (blocks, symmetric) {
                (4, true) => K::chunk::<4, true>(&rows_a, c0, to, dots),
                (4, false) => K::chunk::<4, false>(&rows_a, c0, to, dots),
                (3, true) => K::chunk::<3, true>(&rows_a, c0, to, dots),
                (3, false) => K::chunk::<3, false>(&rows_a, c0, to, dots),
                (2, true) => K::chunk::<2, true>(&rows_a, c0, to, dots),
                (2, false) => K::chunk::<2, false>(&rows_a, c0, to, dots),
                (_, true) => K::chunk::<1, true>(&rows_a, c0, to, dots),
                (_, false) => K::chunk::<1, false>(&rows_a, c0, to, dots),
            }
            c0 += blocks * LANES;
        }
        for (c, (o, &xp)) in to.iter_mut().zip(rows_a.x_pre_a).enumerate().skip(whole) {
            let mut acc = 0.0;
            for (d, (&xv, dd)) in x_cur_b.iter().zip(dots.iter_mut()).enumerate() {
                let m = rows_a.row[d * np + c].wide();
                acc += xv * m;
                if symmetric {
                    dd[0] += m * xp;
                }
            }
            *o += acc;
        }
    }
    for (t, dd) in to_cur.iter_mut().zip(&dots) {
        *t += (dd[0] + dd[1]) + (dd[2] + dd[3]);
    }
}

/// How far ahead of the entries in use (in entries) the next ones are fetched into L1: the
/// hardware prefetcher alone left the loads waiting (1.2× slower on the shared machine).
pub(super) const PREFETCH: usize = 512;

/// Fetch the lines `PREFETCH` entries past each of a chunk's `blocks` register blocks.
#[inline(always)]
pub(super) fn prefetch<T>(seg: &[T], blocks: usize) {
    #[cfg(target_arch = "x86_64")]
    for j in 0..blocks {
        let ahead = seg.as_ptr().wrapping_add(j * LANES + PREFETCH);
        // SAFETY: a prefetch never faults, so the address may lie past the rows (it is only
        // computed, wrapping); SSE is part of x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ahead.cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (seg, blocks);
}

/// The chunk in plain Rust over arrays the compiler keeps in vector registers.
pub(super) struct Portable;

impl<T: Entry> Chunks<T> for Portable {
    #[inline(always)]
    fn chunk<const B: usize, const SYMMETRIC: bool>(
        rows: &Rows<'_, T>,
        c0: usize,
        to: &mut [f64],
        dots: &mut [[f64; DOT_LANES]],
    ) {
        let xpc: [[f64; LANES]; B] = std::array::from_fn(|j| {
            rows.x_pre_a[c0 + j * LANES..][..LANES]
                .try_into()
                .expect("lane block")
        });
        let mut acc = [[0.0f64; LANES]; B];
        for (d, &xv) in rows.x_cur_b.iter().enumerate() {
            let seg = &rows.row[d * rows.np + c0..][..B * LANES];
            prefetch(seg, B);
            let mut dd = dots[d];
            for (j, acc) in acc.iter_mut().enumerate() {
                let seg: &[T; LANES] = seg[j * LANES..][..LANES].try_into().expect("lane block");
                let mut part = [0.0f64; DOT_LANES];
                for k in 0..LANES {
                    let m = seg[k].wide();
                    acc[k] += xv * m;
                    if SYMMETRIC {
                        part[k % DOT_LANES] += m * xpc[j][k];
                    }
                }
                if SYMMETRIC {
                    for k in 0..DOT_LANES {
                        dd[k] += part[k];
                    }
                }
            }
            dots[d] = dd;
        }
        for (j, acc) in acc.iter().enumerate() {
            for (o, v) in to[c0 + j * LANES..][..LANES].iter_mut().zip(acc) {
                *o += v;
            }
        }
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
