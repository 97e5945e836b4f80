//! The equivalence check every job runs after each method aligns: permuting hidden channels
//! must not change what model 1 computes. Aligned model 1 and model 1 are run on a probe
//! batch (the first [`PROBE_SAMPLES`] samples of the job's dataset) and the largest
//! `|Δlogit|` is reported (`MatchingReport.max_abs_logit_delta`). Above the tolerance —
//! [`RELATIVE_TOLERANCE`] × the largest `|logit|` of model 1 on the batch — the permutation
//! structure does not describe the network (a wrong spec), and the job fails naming the first
//! group whose permutation alone changes the function, instead of reporting a meaningless
//! curve.
//!
//! Both models run in `f32`, so a correct alignment differs only by summation order: on the
//! seed models the delta is ~1e-6 with logits of ~10–30.

use ndarray::Array2;

use crate::arch::{ArchError, ArchSpec, PermStructure};
use crate::eval::Dataset;
use crate::forward::Network;
use crate::fusion::{FusionError, permute};
use crate::weights::WeightSet;

/// Samples of the probe batch (fewer when the dataset is smaller).
pub const PROBE_SAMPLES: usize = 64;
/// The largest `|Δlogit|` allowed, relative to the largest `|logit|` of model 1.
pub const RELATIVE_TOLERANCE: f64 = 1e-3;

/// Why aligned model 1 is not model 1.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EquivalenceError {
    #[error(
        "the permutation of group `{group}` alone changes model 1's logits by up to {delta:.3e} \
         (tolerance {tolerance:.3e}): the architecture's permutation structure does not \
         describe this network"
    )]
    Group {
        group: String,
        delta: f64,
        tolerance: f64,
    },
    #[error(
        "aligned model 1 differs from model 1 by up to {delta:.3e} in its logits (tolerance \
         {tolerance:.3e}), though no single group's permutation does"
    )]
    Combined { delta: f64, tolerance: f64 },
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error(transparent)]
    Fusion(#[from] FusionError),
}

/// The largest `|a − b|`.
fn max_abs_delta(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max(f64::from((x - y).abs())))
}

/// Model 1's probe logits, computed once per job and compared with every aligned model.
pub struct Probe<'a> {
    spec: &'a ArchSpec,
    structure: &'a PermStructure,
    original: &'a WeightSet,
    images: Array2<f32>,
    logits: Array2<f32>,
    tolerance: f64,
}

impl<'a> Probe<'a> {
    /// Run `original` on the first [`PROBE_SAMPLES`] samples of `data`.
    ///
    /// # Errors
    /// [`EquivalenceError::Arch`] when `original` does not fit `spec`.
    pub fn new(
        spec: &'a ArchSpec,
        structure: &'a PermStructure,
        original: &'a WeightSet,
        data: &Dataset,
    ) -> Result<Self, EquivalenceError> {
        let images = data.head(PROBE_SAMPLES).images;
        let logits = Network::new(spec, original)?.logits(images.view());
        let top = logits.iter().fold(0.0f64, |m, x| m.max(f64::from(x.abs())));
        Ok(Probe {
            spec,
            structure,
            original,
            images,
            logits,
            tolerance: RELATIVE_TOLERANCE * top,
        })
    }

    /// The max `|Δlogit|` of `aligned` (model 1 permuted by `perms`) against model 1.
    ///
    /// # Errors
    /// [`EquivalenceError::Group`] (or `Combined`) when it is above the tolerance.
    pub fn check(
        &self,
        aligned: &WeightSet,
        perms: &[Vec<usize>],
    ) -> Result<f64, EquivalenceError> {
        let delta = self.delta(aligned)?;
        if delta <= self.tolerance {
            return Ok(delta);
        }
        for (k, perm) in perms.iter().enumerate() {
            let mut alone: Vec<Vec<usize>> = self
                .structure
                .hidden
                .iter()
                .map(|g| (0..g.size).collect())
                .collect();
            alone[k].clone_from(perm);
            let d = self.delta(&permute(self.structure, self.original, &alone)?)?;
            if d > self.tolerance {
                let producer = self.structure.hidden[k].producer;
                return Err(EquivalenceError::Group {
                    group: self.structure.layers[producer].weight.clone(),
                    delta: d,
                    tolerance: self.tolerance,
                });
            }
        }
        Err(EquivalenceError::Combined {
            delta,
            tolerance: self.tolerance,
        })
    }

    fn delta(&self, w: &WeightSet) -> Result<f64, EquivalenceError> {
        let logits = Network::new(self.spec, w)?.logits(self.images.view());
        Ok(max_abs_delta(&self.logits, &logits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affinity::tests::tiny;

    fn probe_data(spec: &ArchSpec, n: usize) -> Dataset {
        let [c, h, w] = spec.input;
        let images = Array2::from_shape_fn((n, c * h * w), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 / 23.0 - 0.4
        });
        Dataset {
            name: "probe".into(),
            shape: spec.input,
            images,
            labels: vec![0; n],
        }
    }

    #[test]
    fn a_correct_permutation_passes_and_a_wrong_structure_names_its_group() {
        let (spec, m, _) = tiny();
        let s = spec.validate(&m).unwrap();
        let data = probe_data(&spec, 80);
        let perms = vec![vec![1, 2, 0], vec![3, 0, 2, 1]];
        let probe = Probe::new(&spec, &s, &m, &data).unwrap();
        let delta = probe
            .check(&permute(&s, &m, &perms).unwrap(), &perms)
            .unwrap();
        assert!(
            delta <= 1e-5,
            "a true permutation keeps the logits: {delta}"
        );

        // A wrong structure: the second group's permutation forgets the next layer's input
        // axis, so the permuted model computes something else.
        let mut wrong = s.clone();
        let consumer = wrong.layers[wrong.hidden[1].consumer].weight.clone();
        wrong.hidden[1].axes.retain(|a| a.tensor != consumer);
        let probe = Probe::new(&spec, &wrong, &m, &data).unwrap();
        let aligned = permute(&wrong, &m, &perms).unwrap();
        let err = probe.check(&aligned, &perms).unwrap_err();
        match &err {
            EquivalenceError::Group { group, delta, .. } => {
                assert_eq!(group, "l1.w");
                assert!(*delta > 1e-3);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("group `l1.w`"), "{err}");
    }
}
