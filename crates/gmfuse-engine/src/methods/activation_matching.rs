//! Activation matching (Git Re-Basin's second method: Ainsworth, Hayase & Srinivasa, ICLR
//! 2023), as DESIGN.md specifies it.
//!
//! Both models run on calibration samples (never the scored set). For each permutation group
//! the units are observed at the group's tap points ([`PermGroup::taps`]: a producing layer's
//! output after the batchnorm, `add` and ReLU that follow it; [`Network::activations`]); for a
//! convolution every spatial position of every sample is one observation, and a group tied by
//! residual `add`s pools the observations of all its tap points. With the streamed sums `Σa, Σb, Σa², Σb²` per unit and the cross moments
//! `Σ a_i b_j` (an `n × n` matrix per group, through [`add_abt`]), the Pearson correlation
//! `C[i, j]` of model 1's unit `i` with model 2's unit `j` follows; the LAP maximising
//! `Σ C[i, π(i)]` gives the group's permutation. A unit's activations do not depend on how the
//! units of other layers are ordered, so every group's correlations come from one pass.
//!
//! A unit constant on the calibration data (a ReLU that never fires) correlates with nothing,
//! so correlations cannot tell such units apart. For a pair that involves one, the LAP's score
//! is instead [`TIE_BREAK`] × the cosine similarity of the two units' incoming weights (the
//! producer's weight row and bias, model 1's earlier groups already permuted): a dead unit
//! goes to its twin when there is one; pairs of live units keep their correlation.
//!
//! Bounds: at most [`MAX_CALIBRATION_SAMPLES`] samples are used (the first ones); they run in
//! batches holding at most [`BATCH_VALUES`] activation values per model, so memory is one batch
//! of activations plus the `n × n` moments, whatever the dataset's size.

use ndarray::{Array2, ArrayView2, Axis, s};

use super::gram::{add_abt, rows};
use super::{Alignment, Method, MethodError, MethodId, MethodInput};
use crate::arch::{ArchSpec, PermGroup, PermStructure};
use crate::eval::Dataset;
use crate::forward::Network;
use crate::fusion::{FusionError, permute_group};
use crate::pipeline::Stage;
use crate::solvers::hungarian;
use crate::weights::WeightSet;

/// Calibration samples used at most (the first ones of the dataset).
pub const MAX_CALIBRATION_SAMPLES: usize = 5_000;
/// Activation values (over all groups, per model) one batch may hold.
pub const BATCH_VALUES: usize = 1 << 22;
/// Samples per batch at most.
pub const MAX_BATCH: usize = 256;
/// A unit whose standard deviation is below this is constant: it correlates with nothing.
const MIN_STD: f64 = 1e-12;
/// The weight of the incoming-weight cosine similarity in a pair that involves a constant unit.
pub const TIE_BREAK: f64 = 1e-3;

/// Activation matching as a [`Method`].
pub struct ActivationMatching;

impl Method for ActivationMatching {
    fn needs_calibration(&self) -> bool {
        true
    }

    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        let id = MethodId::ActivationMatching;
        let data = input
            .calibration
            .filter(|d| !d.is_empty())
            .ok_or(MethodError::NeedsCalibration(id))?;
        let observer = input.observer;
        let corr = correlations(input.spec, input.structure, input.models, data, &|done| {
            observer.progress(Stage::Align(id), done);
            observer.should_stop()
        })?;
        let (mut total, mut units) = (0.0, 0);
        let mut perms = Vec::with_capacity(corr.len());
        let mut cur = input.models[0].clone();
        for (g, c) in input.structure.hidden.iter().zip(&corr) {
            let scores = c.scores(&cosines(g, &cur, input.models[1])?);
            let (_, perm) = hungarian(scores.view())?;
            total += perm
                .iter()
                .enumerate()
                .map(|(i, &j)| c.corr[[i, j]])
                .sum::<f64>();
            units += g.size;
            permute_group(&mut cur, g, &perm)?;
            perms.push(perm);
        }
        // The mean correlation of matched units.
        let objective = if units == 0 {
            0.0
        } else {
            total / units as f64
        };
        Ok(Alignment {
            perms,
            objective,
            objectives: vec![objective],
            iterations: 1,
            stages: Vec::new(),
        })
    }
}

/// One group's correlations, and which of its units are constant.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupCorrelation {
    /// `corr[[i, j]]`: the Pearson correlation of model 1's unit `i` with model 2's unit `j`;
    /// 0 where either is constant.
    pub corr: Array2<f64>,
    /// `[model 1, model 2]`: whether each unit is constant on the calibration data.
    pub constant: [Vec<bool>; 2],
}

impl GroupCorrelation {
    /// The LAP's scores: the correlation, or [`TIE_BREAK`]` × cos[[i, j]]` for a pair that
    /// involves a constant unit.
    fn scores(&self, cos: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn(self.corr.dim(), |(i, j)| {
            if self.constant[0][i] || self.constant[1][j] {
                TIE_BREAK * cos[[i, j]]
            } else {
                self.corr[[i, j]]
            }
        })
    }
}

/// Cosine similarity of the incoming weights (the group's axis-0 tensors: the producer's
/// weight and bias, and its batch norms' — in blocks of H·W after a flatten) of `a`'s unit
/// `i` and `b`'s unit `j`; 0 for a zero row.
fn cosines(g: &PermGroup, a: &WeightSet, b: &WeightSet) -> Result<Array2<f64>, MethodError> {
    let n = g.size;
    let mut dot = Array2::zeros((n, n));
    let (mut na, mut nb) = (vec![0.0; n], vec![0.0; n]);
    for ax in g.axes.iter().filter(|ax| ax.axis == 0) {
        let unit_rows = |w: &WeightSet| {
            w.tensors
                .get(&ax.tensor)
                .map(|t| rows(&t.data, 0, ax.block, n, None).mapv(f64::from))
                .ok_or_else(|| FusionError::Missing(ax.tensor.clone()))
        };
        let (ra, rb) = (unit_rows(a)?, unit_rows(b)?);
        add_abt(&mut dot, ra.view(), rb.view());
        for (k, (x, y)) in ra.rows().into_iter().zip(rb.rows()).enumerate() {
            na[k] += x.dot(&x);
            nb[k] += y.dot(&y);
        }
    }
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        let d = (na[i] * nb[j]).sqrt();
        if d > 0.0 { dot[[i, j]] / d } else { 0.0 }
    }))
}

/// For each group of `structure`, the Pearson correlations of model 1's units with model 2's
/// over the first [`MAX_CALIBRATION_SAMPLES`] samples of `data`. `before_batch(done)` is
/// called before each batch with the fraction done and answers whether to stop.
///
/// # Errors
/// [`MethodError::Arch`] when a model does not fit `spec`; [`MethodError::Canceled`].
pub fn correlations(
    spec: &ArchSpec,
    structure: &PermStructure,
    models: [&WeightSet; 2],
    data: &Dataset,
    before_batch: &dyn Fn(f64) -> bool,
) -> Result<Vec<GroupCorrelation>, MethodError> {
    let nets = [
        Network::new(spec, models[0])?,
        Network::new(spec, models[1])?,
    ];
    // Every group's tap points, as ops (value `v` is op `v − 1`'s output), one after another.
    let taps: Vec<usize> = structure
        .hidden
        .iter()
        .flat_map(|g| g.taps.iter().map(|&v| v - 1))
        .collect();
    let per_sample: usize = taps
        .iter()
        .map(|&op| {
            let (rows, units) = nets[0].activation_shape(op);
            rows * units
        })
        .sum();
    let batch = (BATCH_VALUES / per_sample.max(1)).clamp(1, MAX_BATCH);
    let n = data.len().min(MAX_CALIBRATION_SAMPLES);
    let images = data.images.slice(s![..n, ..]);
    let mut moments: Vec<Moments> = structure
        .hidden
        .iter()
        .map(|g| Moments::new(g.size))
        .collect();
    // Group of each tap.
    let owner: Vec<usize> = (structure.hidden.iter().enumerate())
        .flat_map(|(k, g)| std::iter::repeat_n(k, g.taps.len()))
        .collect();
    for start in (0..n).step_by(batch) {
        if before_batch(start as f64 / n as f64) {
            return Err(MethodError::Canceled);
        }
        let x = images.slice(s![start..(start + batch).min(n), ..]);
        let (a, b) = rayon::join(
            || nets[0].activations(x, &taps),
            || nets[1].activations(x, &taps),
        );
        for ((&k, a), b) in owner.iter().zip(&a).zip(&b) {
            moments[k].add(a.view(), b.view());
        }
    }
    Ok(moments.iter().map(Moments::correlation).collect())
}

/// Streamed first and second moments of one group's units in both models.
struct Moments {
    /// Observations so far.
    rows: usize,
    sum_a: Array2<f64>,
    sum_b: Array2<f64>,
    sq_a: Array2<f64>,
    sq_b: Array2<f64>,
    /// `Σ a_i b_j`, `n × n`.
    cross: Array2<f64>,
}

impl Moments {
    fn new(n: usize) -> Self {
        let row = || Array2::zeros((1, n));
        Moments {
            rows: 0,
            sum_a: row(),
            sum_b: row(),
            sq_a: row(),
            sq_b: row(),
            cross: Array2::zeros((n, n)),
        }
    }

    /// Add the observations `a` (rows × units of model 1) and `b` (the same rows, model 2).
    fn add(&mut self, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) {
        debug_assert_eq!(a.dim(), b.dim());
        let (a, b) = (a.mapv(f64::from), b.mapv(f64::from));
        self.rows += a.nrows();
        let sums = |x: &Array2<f64>| x.sum_axis(Axis(0)).insert_axis(Axis(0));
        let squares = |x: &Array2<f64>| {
            x.fold_axis(Axis(0), 0.0, |acc, &v| acc + v * v)
                .insert_axis(Axis(0))
        };
        self.sum_a += &sums(&a);
        self.sum_b += &sums(&b);
        self.sq_a += &squares(&a);
        self.sq_b += &squares(&b);
        add_abt(&mut self.cross, a.t(), b.t());
    }

    /// `C[i, j] = cov(a_i, b_j) / (σ(a_i) σ(b_j))`, 0 where a unit is constant.
    fn correlation(&self) -> GroupCorrelation {
        let n = self.rows.max(1) as f64;
        let stats = |sum: &Array2<f64>, sq: &Array2<f64>| -> Vec<(f64, f64)> {
            sum.iter()
                .zip(sq)
                .map(|(&s, &q)| {
                    let mean = s / n;
                    (mean, (q / n - mean * mean).max(0.0).sqrt())
                })
                .collect()
        };
        let (sa, sb) = (
            stats(&self.sum_a, &self.sq_a),
            stats(&self.sum_b, &self.sq_b),
        );
        let corr = Array2::from_shape_fn(self.cross.dim(), |(i, j)| {
            let ((ma, da), (mb, db)) = (sa[i], sb[j]);
            if da < MIN_STD || db < MIN_STD {
                return 0.0;
            }
            ((self.cross[[i, j]] / n - ma * mb) / (da * db)).clamp(-1.0, 1.0)
        });
        let constant = |s: &[(f64, f64)]| s.iter().map(|&(_, d)| d < MIN_STD).collect();
        GroupCorrelation {
            corr,
            constant: [constant(&sa), constant(&sb)],
        }
    }
}

#[cfg(test)]
#[path = "activation_matching_tests.rs"]
mod tests;
