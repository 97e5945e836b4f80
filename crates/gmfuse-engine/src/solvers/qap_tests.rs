//! The QAP solvers against brute force on small dense problems (n ≤ 6 per group).

use super::*;
use crate::solvers::groups::quadratic;

/// A dense operator, for tests.
pub(crate) struct Dense(pub Vec<Vec<f64>>);

impl Dense {
    pub(crate) fn diag(d: &[f64]) -> Self {
        let n = d.len();
        Dense(
            (0..n)
                .map(|i| (0..n).map(|j| if i == j { d[i] } else { 0.0 }).collect())
                .collect(),
        )
    }
}

impl Operator for Dense {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (yi, row) in y.iter_mut().zip(&self.0) {
            *yi = row.iter().zip(x).map(|(a, b)| a * b).sum();
        }
    }
}

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

/// The best `xᵀKx` over every assignment of the hidden groups.
fn brute_force(k: &Dense, g: &Groups) -> (f64, Vec<Vec<usize>>) {
    let mut choices: Vec<Vec<Vec<usize>>> = vec![Vec::new()];
    for h in g.hidden() {
        let perms = permutations(g.sizes()[h]);
        choices = choices
            .into_iter()
            .flat_map(|c| {
                perms.iter().map(move |p| {
                    let mut c = c.clone();
                    c.push(p.clone());
                    c
                })
            })
            .collect();
    }
    choices
        .into_iter()
        .map(|c| (quadratic(k, &g.indicator(&c, false)), c))
        .fold((f64::NEG_INFINITY, Vec::new()), |best, c| {
            if c.0 > best.0 { c } else { best }
        })
}

/// A symmetric non-negative `K` on `groups`: noise in [0, noise) everywhere, plus 1 between
/// every two pairs of the planted assignment `plant`, if any.
#[allow(clippy::needless_range_loop)] // a symmetric fill reads best with both indices
fn problem(groups: &Groups, plant: Option<&[Vec<usize>]>, noise: f64, seed: u64) -> Dense {
    let n = groups.dim();
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut k = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let x = noise * next();
            k[i][j] = x;
            k[j][i] = x;
        }
    }
    let Some(plant) = plant else {
        return Dense(k);
    };
    let x = groups.indicator(plant, false);
    for i in 0..n {
        for j in 0..n {
            k[i][j] += x[i] * x[j];
        }
    }
    Dense(k)
}

fn found(id: SolverId, k: &Dense, g: &Groups) -> Vec<Vec<usize>> {
    let full = g.sizes().iter().sum::<usize>().pow(2);
    let r = solve(id, k, g, full, SmParams::default(), &|| false).unwrap();
    g.assign(&r.v, false).unwrap()
}

#[test]
fn every_solver_reaches_the_optimum_of_planted_problems() {
    for (sizes, plant) in [
        (vec![1, 6, 1], vec![vec![3, 0, 5, 1, 4, 2]]),
        (vec![2, 4, 3, 2], vec![vec![2, 3, 1, 0], vec![1, 2, 0]]),
        (vec![1, 5, 2], vec![vec![4, 2, 0, 3, 1]]),
    ] {
        let g = Groups::new(&sizes);
        for seed in 1..=3 {
            let k = problem(&g, Some(&plant), 0.3, seed);
            let (best, argmax) = brute_force(&k, &g);
            assert_eq!(argmax, plant, "the plant is the optimum");
            for &id in SolverId::ALL {
                let p = found(id, &k, &g);
                let obj = quadratic(&k, &g.indicator(&p, false));
                assert_eq!(p, plant, "{id} on {sizes:?}, seed {seed}");
                approx::assert_relative_eq!(obj, best, max_relative = 1e-12);
            }
        }
    }
}

#[test]
fn on_random_problems_every_solver_returns_permutations_no_better_than_brute_force() {
    let g = Groups::new(&[1, 4, 3, 1]);
    for seed in 1..=5 {
        // Pure noise: no planted structure, many near-optimal assignments.
        let k = problem(&g, None, 1.0, seed);
        let (best, _) = brute_force(&k, &g);
        let mean = {
            let all = permutations(4);
            let all3 = permutations(3);
            let mut s = 0.0;
            for p in &all {
                for q in &all3 {
                    s += quadratic(&k, &g.indicator(&[p.clone(), q.clone()], false));
                }
            }
            s / (all.len() * all3.len()) as f64
        };
        for &id in SolverId::ALL {
            let p = found(id, &k, &g);
            for (perm, size) in p.iter().zip([4, 3]) {
                let mut seen = perm.clone();
                seen.sort_unstable();
                assert_eq!(seen, (0..size).collect::<Vec<_>>(), "{id}: a permutation");
            }
            let obj = quadratic(&k, &g.indicator(&p, false));
            assert!(obj <= best + 1e-12, "{id}: {obj} above the optimum {best}");
            assert!(
                obj >= mean,
                "{id}: {obj} below a random assignment's mean {mean}"
            );
        }
    }
}
