//! Tests of the affinity: the implicit product against the dense formulas, the entries, and
//! an ignored timing of the product's storage types.

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

mod timing {
    use super::super::block::Entries;
    use super::super::*;

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
