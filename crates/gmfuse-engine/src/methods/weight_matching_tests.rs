//! Weight matching on tiny nets: a permuted copy comes back exactly, the objective never
//! decreases, one group is solved to the brute-force optimum, and cancellation stops it.

use super::*;
use crate::affinity::tests::tiny;
use crate::arch::ArchSpec;
use crate::forward::tests::{Rng, random_weights};
use crate::fusion::permute;

/// A `sizes[0] → … → sizes[last]` MLP with biases (`fc1, fc2, …`) and one random weight set.
pub(crate) fn mlp(sizes: &[usize], seed: u64) -> (PermStructure, WeightSet) {
    let mut ops = Vec::new();
    let mut shapes = Vec::new();
    for (k, w) in sizes.windows(2).enumerate() {
        let (weight, bias) = (format!("fc{}.weight", k + 1), format!("fc{}.bias", k + 1));
        shapes.push((weight.clone(), vec![w[1], w[0]]));
        shapes.push((bias.clone(), vec![w[1]]));
        if k > 0 {
            ops.push(serde_json::json!({"op": "relu"}));
        }
        ops.push(serde_json::json!({"op": "linear", "weight": weight, "bias": bias}));
    }
    let ops: Vec<serde_json::Value> = std::iter::once(serde_json::json!({"op": "flatten"}))
        .chain(ops)
        .collect();
    let spec: ArchSpec = serde_json::from_value(serde_json::json!({
        "name": "mlp", "input": [1, 1, sizes[0]], "ops": ops
    }))
    .unwrap();
    let named: Vec<(&str, Vec<usize>)> = shapes
        .iter()
        .map(|(n, s)| (n.as_str(), s.clone()))
        .collect();
    let w = random_weights(&named, &mut Rng::new(seed));
    (spec.validate(&w).unwrap(), w)
}

pub(crate) fn shuffle(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    Lcg(seed).shuffle(&mut p);
    p
}

fn run(s: &PermStructure, a: &WeightSet, b: &WeightSet, params: &WmParams) -> WmResult {
    weight_matching(s, [a, b], params, &|_| false).unwrap()
}

#[test]
fn a_permuted_copy_is_recovered_exactly_on_conv_flatten_linear() {
    let (spec, m, _) = tiny();
    let s = spec.validate(&m).unwrap();
    let shuffle = vec![vec![1, 2, 0], vec![3, 0, 2, 1]];
    let copy = permute(&s, &m, &shuffle).unwrap();
    let r = run(&s, &m, &copy, &WmParams::default());
    assert_eq!(r.perms, shuffle);
    assert_eq!(permute(&s, &m, &r.perms).unwrap(), copy);
    // J is then ⟨W, W⟩ over every permuted tensor, the largest value it can take.
    let norm2: f64 = ["c.w", "c.b", "l1.w", "l1.b", "l2.w"]
        .iter()
        .map(|n| m.tensors[*n].data.iter().map(|x| x * x).sum::<f64>())
        .sum();
    approx::assert_relative_eq!(*r.objectives.last().unwrap(), norm2, max_relative = 1e-12);
}

#[test]
fn a_permuted_copy_of_a_wide_mlp_is_recovered_in_either_group_order() {
    let (s, m) = mlp(&[20, 64, 48, 32, 5], 3);
    let perms: Vec<Vec<usize>> = s
        .hidden
        .iter()
        .enumerate()
        .map(|(k, g)| shuffle(g.size, k as u64 + 11))
        .collect();
    let copy = permute(&s, &m, &perms).unwrap();
    for seed in [None, Some(5)] {
        let r = run(
            &s,
            &m,
            &copy,
            &WmParams {
                max_sweeps: 100,
                seed,
            },
        );
        assert_eq!(r.perms, perms, "seed {seed:?}");
    }
}

#[test]
fn the_objective_never_decreases_and_the_last_sweep_changes_nothing() {
    let (s, a) = mlp(&[16, 32, 32, 32, 4], 1);
    let (_, b) = mlp(&[16, 32, 32, 32, 4], 2);
    let r = run(&s, &a, &b, &WmParams::default());
    let mut last = r.initial;
    for (k, &j) in r.objectives.iter().enumerate() {
        assert!(j >= last, "sweep {k}: {j} < {last}");
        last = j;
    }
    assert!(
        r.objectives.len() >= 2 && r.objectives.len() < 100,
        "{:?}",
        r.objectives
    );
    let n = r.objectives.len();
    assert_eq!(
        r.objectives[n - 1],
        r.objectives[n - 2],
        "the last sweep changed J"
    );
    assert!(
        r.objectives[n - 1] > r.initial,
        "weight matching did not improve on identity"
    );
    // One more sweep from the answer finds nothing better for any group.
    let aligned = permute(&s, &a, &r.perms).unwrap();
    let again = run(&s, &aligned, &b, &WmParams::default());
    assert!(
        again
            .perms
            .iter()
            .all(|p| p.iter().enumerate().all(|(i, &j)| i == j))
    );
}

#[test]
fn one_group_is_solved_to_the_brute_force_optimum() {
    let (s, a) = mlp(&[6, 5, 3], 4);
    let (_, b) = mlp(&[6, 5, 3], 9);
    let r = run(&s, &a, &b, &WmParams::default());
    let score = |p: &[usize]| -> f64 {
        let pa = permute(&s, &a, &[p.to_vec()]).unwrap();
        // Every tensor the group touches (fc2.bias is not).
        pa.tensors
            .iter()
            .filter(|(n, _)| n.as_str() != "fc2.bias")
            .map(|(n, t)| {
                t.data
                    .iter()
                    .zip(&b.tensors[n].data)
                    .map(|(x, y)| x * y)
                    .sum::<f64>()
            })
            .sum()
    };
    // Every permutation of 5 units (Heap's algorithm).
    let mut best = f64::NEG_INFINITY;
    let mut p: Vec<usize> = (0..5).collect();
    let mut c = [0; 5];
    best = best.max(score(&p));
    let mut i = 0;
    while i < 5 {
        if c[i] < i {
            if i % 2 == 0 {
                p.swap(0, i)
            } else {
                p.swap(c[i], i)
            }
            best = best.max(score(&p));
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    approx::assert_relative_eq!(score(&r.perms[0]), best, max_relative = 1e-12);
    approx::assert_relative_eq!(*r.objectives.last().unwrap(), best, max_relative = 1e-12);
}

#[test]
fn weight_matching_stops_when_asked() {
    let (s, a) = mlp(&[8, 16, 4], 1);
    let (_, b) = mlp(&[8, 16, 4], 2);
    let r = weight_matching(&s, [&a, &b], &WmParams::default(), &|sweep| sweep >= 1);
    assert_eq!(r, Err(MethodError::Canceled));
}

/// Random weights for the `resnet-mini` preset (an `add` ties groups: a tensor can carry one
/// group on two axes) and its structure.
fn resnet(seed: u64) -> (PermStructure, WeightSet) {
    let shapes = crate::arch::preset_tensors("resnet-mini").unwrap();
    let named: Vec<(&str, Vec<usize>)> = shapes
        .iter()
        .map(|(n, s)| (n.as_str(), s.clone()))
        .collect();
    let w = random_weights(&named, &mut Rng::new(seed));
    let spec = crate::arch::preset("resnet-mini").unwrap();
    (spec.validate(&w).unwrap(), w)
}

#[test]
fn terms_follow_the_other_groups_moves_bit_for_bit() {
    let (spec, tiny_a, _) = tiny();
    let cases = [
        (spec.validate(&tiny_a).unwrap(), tiny_a),
        mlp(&[5, 6, 7, 3], 2),
        resnet(4),
    ];
    for (s, a) in cases {
        let groups = &s.hidden;
        let mut perms: Vec<Vec<usize>> = groups.iter().map(|g| (0..g.size).collect()).collect();
        let mut terms = terms(&s, [&a, &a], &perms);
        for step in 0..2 * groups.len() {
            // Move group g's units to a fresh random order, as an accepted solve does.
            let g = (step * 5 + 1) % groups.len();
            let new = shuffle(groups[g].size, step as u64 + 3);
            let mut delta = vec![0; new.len()];
            for (u, &p) in perms[g].iter().enumerate() {
                delta[p] = new[u];
            }
            terms.iter_mut().flatten().for_each(|t| t.shift(g, &delta));
            perms[g] = new;
            // Each term's rows are what extracting them from A permuted afresh gives.
            let now = permute(&s, &a, &perms).unwrap();
            for (h, (ts, group)) in terms.iter().zip(groups).enumerate() {
                for (t, ax) in ts.iter().zip(&group.axes) {
                    let data = &now.tensors[&ax.tensor].data;
                    let want = crate::methods::gram::rows(
                        data,
                        ax.axis,
                        ax.block,
                        group.size,
                        Some(&perms[h]),
                    );
                    assert_eq!(t.current_rows(), want, "{} after step {step}", ax.tensor);
                }
            }
        }
    }
}

#[test]
fn the_objective_read_through_the_permutations_is_the_permuted_copys_bit_for_bit() {
    let (s, a) = resnet(5);
    let (_, b) = resnet(6);
    let perms: Vec<Vec<usize>> = (s.hidden.iter().enumerate())
        .map(|(g, group)| shuffle(group.size, g as u64 + 21))
        .collect();
    let moved = permute(&s, &a, &perms).unwrap();
    let touched: std::collections::BTreeSet<&String> = s
        .hidden
        .iter()
        .flat_map(|g| g.axes.iter().map(|x| &x.tensor))
        .collect();
    let want: f64 = touched
        .iter()
        .map(|n| {
            let (x, y) = (&moved.tensors[*n].data, &b.tensors[*n].data);
            x.iter().zip(y).map(|(x, y)| x * y).sum::<f64>()
        })
        .sum();
    let got = objective::Objective::new(&s, [&a, &b]).value(&perms);
    assert_eq!(got.to_bits(), want.to_bits(), "{got} vs {want}");
}
