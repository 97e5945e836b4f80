//! Inputs for timing the engine: the random MLPs that `gmfuse bench` and the
//! `kernel_timing` example both match (one generator, so their figures are of the same
//! models), and the fingerprint the example prints to check that a faster kernel returns the
//! same permutations.

use crate::arch::ArchSpec;
use crate::weights::{DType, Tensor, WeightSet};

/// A `widths[0] → … → widths[last]` MLP with biases (`fc1, fc2, …`, ReLU between), input
/// `[1, 1, widths[0]]`.
///
/// # Panics
/// If `widths` has fewer than two entries or a zero width.
pub fn random_mlp(widths: &[usize]) -> ArchSpec {
    let mut ops = vec![serde_json::json!({"op": "flatten"})];
    for k in 1..widths.len() {
        if k > 1 {
            ops.push(serde_json::json!({"op": "relu"}));
        }
        ops.push(serde_json::json!({
            "op": "linear", "weight": format!("fc{k}.weight"), "bias": format!("fc{k}.bias")
        }));
    }
    serde_json::from_value(serde_json::json!({
        "name": "random-mlp", "input": [1, 1, widths[0]], "ops": ops
    }))
    .expect("a valid spec")
}

/// Weights for [`random_mlp`], uniform in ±1/√fan-in from an LCG seeded with `seed`.
pub fn random_mlp_weights(widths: &[usize], seed: u64) -> WeightSet {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let mut w = WeightSet::default();
    for k in 1..widths.len() {
        let scale = 1.0 / (widths[k - 1] as f64).sqrt();
        for (name, shape) in [
            (format!("fc{k}.weight"), vec![widths[k], widths[k - 1]]),
            (format!("fc{k}.bias"), vec![widths[k]]),
        ] {
            let data = ndarray::ArrayD::from_shape_simple_fn(shape, || next() * scale);
            w.tensors.insert(
                name,
                Tensor {
                    dtype: DType::F32,
                    data,
                },
            );
        }
    }
    w
}

/// FNV-1a over every entry of every permutation: equal fingerprints, equal permutations
/// (in practice). The start value is FNV's offset basis with its last decimal digit dropped,
/// as the first notes' fingerprints were computed; kept so that they still compare.
pub fn fingerprint(perms: &[Vec<usize>]) -> u64 {
    let mut h = 1_469_598_103_934_665_603_u64;
    for p in perms {
        for &x in p {
            h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The median of `xs` (the upper one of an even count).
///
/// # Panics
/// If `xs` is empty.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_random_mlp_is_valid_for_its_weights_and_seeded() {
        let widths = [6, 5, 4, 3];
        let spec = random_mlp(&widths);
        let w = random_mlp_weights(&widths, 1);
        let s = spec.validate(&w).unwrap();
        assert_eq!(s.hidden.iter().map(|g| g.size).collect::<Vec<_>>(), [5, 4]);
        let bound = 1.0 / 6f64.sqrt();
        assert!(
            w.tensors["fc1.weight"]
                .data
                .iter()
                .all(|x| x.abs() <= bound)
        );
        assert_eq!(random_mlp_weights(&widths, 1), w);
        assert_ne!(random_mlp_weights(&widths, 2), w);
    }

    #[test]
    fn the_fingerprint_tells_permutations_apart() {
        // No entries: the start value.
        assert_eq!(fingerprint(&[]), 1_469_598_103_934_665_603);
        assert_ne!(fingerprint(&[vec![0, 1]]), fingerprint(&[vec![1, 0]]));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
