//! Every kernel against a scalar loop that forms each sum in the order [`super`]'s docs give,
//! bit for bit: widths of the `c` range across 16-entry blocks, chunk sizes and tails, `f32`
//! and `f64` entries, symmetric or not. On a CPU with AVX-512 both the AVX-512 kernel and the
//! portable one run (the dispatch alone would pick one).

use proptest::prelude::*;

use super::super::block::Entry;
use super::{DOT_LANES, LANES, Node};

/// The documented order, one entry at a time: `(to_pre, to_cur)`.
fn in_order<T: Entry>(
    rows: &[T],
    x_cur_b: &[f64],
    x_pre: &[f64],
    np: usize,
    symmetric: bool,
) -> (Vec<f64>, Vec<f64>) {
    let nc = x_cur_b.len();
    let at = |a: usize, d: usize, c: usize| rows[(a * nc + d) * np + c].wide();
    let mut to_pre = vec![0.0; np * np];
    let mut dots = vec![[0.0f64; DOT_LANES]; nc];
    let whole = np - np % LANES;
    for a in 0..np {
        for c in 0..np {
            let mut acc = 0.0;
            for (d, xv) in x_cur_b.iter().enumerate() {
                acc += xv * at(a, d, c);
            }
            to_pre[a * np + c] += acc;
        }
        for (d, dd) in dots.iter_mut().enumerate() {
            for c0 in (0..whole).step_by(LANES) {
                let mut part = [0.0; DOT_LANES];
                for k in 0..LANES {
                    part[k % DOT_LANES] += at(a, d, c0 + k) * x_pre[a * np + c0 + k];
                }
                for (s, p) in dd.iter_mut().zip(part) {
                    *s += p;
                }
            }
            for c in whole..np {
                dd[0] += at(a, d, c) * x_pre[a * np + c];
            }
        }
    }
    let to_cur = if symmetric {
        dots.iter()
            .map(|dd| 0.0 + ((dd[0] + dd[1]) + (dd[2] + dd[3])))
            .collect()
    } else {
        Vec::new()
    };
    (to_pre, to_cur)
}

/// xorshift64*: values in `[0, 1)`.
fn uniform(seed: &mut u64) -> f64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

type Kernel<T> = fn(Node<'_, T>, &mut [f64], &mut [f64]);

fn run<T: Entry>(
    kernel: Kernel<T>,
    rows: &[T],
    x_cur_b: &[f64],
    x_pre: &[f64],
    np: usize,
    symmetric: bool,
) -> (Vec<u64>, Vec<u64>) {
    let mut to_pre = vec![0.0; np * np];
    let mut to_cur = vec![0.0; if symmetric { x_cur_b.len() } else { 0 }];
    let node = Node {
        rows,
        x_cur_b,
        x_pre,
        np,
    };
    kernel(node, &mut to_pre, &mut to_cur);
    bits_of((to_pre, to_cur))
}

fn bits_of((p, c): (Vec<f64>, Vec<f64>)) -> (Vec<u64>, Vec<u64>) {
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect();
    (bits(p), bits(c))
}

#[cfg(target_arch = "x86_64")]
fn avx512(node: Node<'_, f32>, to_pre: &mut [f64], to_cur: &mut [f64]) {
    // SAFETY: only called where the CPU has AVX-512F (checked by the caller).
    unsafe { super::super::kernel_avx512::apply(node, to_pre, to_cur) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_kernel_forms_every_sum_in_the_documented_order(
        np in 1usize..=80,
        nc in 1usize..=9,
        zeros in 0usize..4,
        seed in 1u64..,
    ) {
        let mut s = seed;
        // Entries in (0, 1] as the affinity's; inputs in [0, 1), some exactly zero (the
        // power iterate's entries outside a converged support are 0).
        let rows: Vec<f64> = (0..np * nc * np).map(|_| 1.0 - uniform(&mut s)).collect();
        let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
        let mut x = |n: usize| -> Vec<f64> {
            (0..n).map(|i| if i % 4 < zeros { 0.0 } else { uniform(&mut s) }).collect()
        };
        let (x_cur_b, x_pre) = (x(nc), x(np * np));
        for symmetric in [true, false] {
            let want = bits_of(in_order(&rows32, &x_cur_b, &x_pre, np, symmetric));
            let kernels: Vec<Kernel<f32>> = vec![super::portable, f32::block_apply];
            for k in kernels {
                prop_assert_eq!(&run(k, &rows32, &x_cur_b, &x_pre, np, symmetric), &want);
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                prop_assert_eq!(&run(avx512, &rows32, &x_cur_b, &x_pre, np, symmetric), &want);
            }
            let want = bits_of(in_order(&rows, &x_cur_b, &x_pre, np, symmetric));
            prop_assert_eq!(&run(f64::block_apply, &rows, &x_cur_b, &x_pre, np, symmetric), &want);
        }
    }
}
