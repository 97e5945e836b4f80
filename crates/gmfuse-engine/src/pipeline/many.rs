//! Jobs of k ≥ 3 models: evaluate every input, align them into one frame with each requested
//! method, average with the job's weights, and evaluate each fused model beside plain
//! averaging (`none`). Two models go to [`super::run`] (the proportion sweep).
//!
//! The frame: by default every method aligns each model onto the *anchor* — the most accurate
//! input (the first of equals) — with its pairwise [`Method::align`], except weight matching,
//! which uses its joint form (MergeMany: every model onto the mean of the others). A given
//! `anchor` makes every method, weight matching included, align onto that model.
//!
//! [`Method::align`]: crate::methods::Method::align

use std::collections::BTreeMap;
use std::time::Instant;

use super::equivalence::{EquivalenceError, Probe};
use super::{
    Best, EvalCache, FusionParams, FusionReport, MatchingReport, Merged, ModelPermutations,
    Observer, PipelineError, Repair, Stage, Stopwatch, check_inputs, group_sizes,
    layer_permutations, method_failed, run_calibrated, validate,
};
use crate::arch::{ArchSpec, PermStructure};
use crate::eval::Dataset;
use crate::fusion::{average, permute};
use crate::methods::{ManyInput, MethodId, MethodInput, method};
use crate::weights::WeightSet;

/// Run a fusion of `models` (2 ≤ k ≤ [`super::MAX_MODELS`]) and evaluate every fused model;
/// `calibration` as for [`run_calibrated`].
///
/// # Errors
/// Any [`PipelineError`]; [`PipelineError::Canceled`] when `observer.should_stop()`.
pub fn run_many(
    spec: &ArchSpec,
    models: &[&WeightSet],
    data: &Dataset,
    calibration: Option<&Dataset>,
    params: &FusionParams,
    observer: &dyn Observer,
) -> Result<FusionReport, PipelineError> {
    if let [a, b] = models {
        return run_calibrated(spec, [a, b], data, calibration, params, observer);
    }
    let mut watch = Stopwatch {
        clock: Instant::now(),
        timings: BTreeMap::new(),
    };
    let stop = || observer.should_stop();
    observer.progress(Stage::Validate, 0.0);
    let structure = check_inputs(spec, models, data, calibration, params)?;
    watch.lap(Stage::Validate);

    let mut cache = EvalCache {
        spec,
        data,
        done: Vec::new(),
    };
    let mut inputs = Vec::with_capacity(models.len());
    for (i, m) in models.iter().enumerate() {
        observer.progress(Stage::EvaluateInputs, i as f64 / models.len() as f64);
        inputs.push(cache.eval(m, &stop)?);
    }
    watch.lap(Stage::EvaluateInputs);
    let anchor = params.anchor.unwrap_or_else(|| {
        (0..inputs.len()).fold(0, |best, i| {
            if inputs[i].accuracy > inputs[best].accuracy {
                i
            } else {
                best
            }
        })
    });
    let weights = normalised(params.weights.as_deref(), models.len());

    let mut merged = Vec::new();
    let mut matchings = Vec::new();
    let mut used_anchor = false;
    // One probe per model (its logits on the probe batch), shared by every method's check.
    let probes = models
        .iter()
        .map(|m| Probe::new(spec, &structure, m, data))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PipelineError::Mismatch(e.to_string()))?;
    for id in params.aligning() {
        let started = Instant::now();
        let frame = Frame {
            spec,
            structure: &structure,
            models,
            calibration,
            params,
            observer,
        };
        let (joint, a) = frame.align(id, anchor)?;
        used_anchor |= !joint;
        let seconds = started.elapsed().as_secs_f64();
        *watch.timings.entry(Stage::Align(id)).or_default() += seconds;
        watch.clock = Instant::now();
        let aligned = models
            .iter()
            .zip(&a.perms)
            .map(|(m, p)| permute(&structure, m, p))
            .collect::<Result<Vec<_>, _>>()?;
        let delta = equivalent(&probes, &aligned, &a.perms)
            .map_err(|source| PipelineError::Equivalence { method: id, source })?;
        let refs: Vec<&WeightSet> = aligned.iter().collect();
        merged.push(evaluate_average(&mut cache, id, &refs, &weights, observer)?);
        watch.lap(Stage::Evaluate(id));
        matchings.push(MatchingReport {
            method: id,
            solver: (id == MethodId::Gamf).then(|| params.solvers()[0]),
            picked_by_auto: params.picked_by_auto(id),
            max_abs_logit_delta: Some(delta),
            objective: a.objective,
            objectives: a.objectives,
            iterations: a.iterations,
            seconds,
            permutations: Vec::new(),
            models: a
                .perms
                .into_iter()
                .enumerate()
                .map(|(model, p)| ModelPermutations {
                    model,
                    permutations: layer_permutations(&structure, p),
                })
                .collect(),
            group_sizes: group_sizes(&structure),
        });
    }
    merged.push(evaluate_average(
        &mut cache,
        MethodId::None,
        models,
        &weights,
        observer,
    )?);
    watch.lap(Stage::Evaluate(MethodId::None));

    // The first maximum in the order run (methods as asked, then `none`) wins.
    let top = merged.iter().fold(
        &merged[0],
        |b, m| if m.accuracy > b.accuracy { m } else { b },
    );
    let best = Best {
        method: top.method,
        solver: None,
        proportion: None,
        accuracy: top.accuracy,
        repair: Repair::None,
    };
    Ok(FusionReport {
        architecture: spec.name.clone(),
        dataset: data.name.clone(),
        params: params.clone(),
        samples: data.labels.len(),
        inputs,
        alphas: Vec::new(),
        curves: Vec::new(),
        merged,
        anchor: used_anchor.then_some(anchor),
        weights,
        best,
        matchings,
        timings: watch.timings,
    })
}

/// The weights, normalised to sum 1 (uniform when none are given). `check` has made sure
/// they are finite, non-negative, one per model, with a positive sum.
fn normalised(weights: Option<&[f64]>, k: usize) -> Vec<f64> {
    let w = weights.map_or_else(|| vec![1.0; k], <[f64]>::to_vec);
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|x| x / sum).collect()
}

/// A method's answer for k models: every model's permutations into one frame.
struct FrameAlignment {
    perms: Vec<Vec<Vec<usize>>>,
    objective: f64,
    objectives: Vec<f64>,
    iterations: usize,
}

/// What every method of a k-model job aligns.
struct Frame<'a> {
    spec: &'a ArchSpec,
    structure: &'a PermStructure,
    models: &'a [&'a WeightSet],
    calibration: Option<&'a Dataset>,
    params: &'a FusionParams,
    observer: &'a dyn Observer,
}

impl Frame<'_> {
    /// Method `id`'s joint alignment when it has one and no anchor was asked for (`true`),
    /// otherwise every model aligned onto `anchor` (`false`).
    fn align(&self, id: MethodId, anchor: usize) -> Result<(bool, FrameAlignment), PipelineError> {
        let m = method(id);
        if self.params.anchor.is_none() {
            let input = ManyInput {
                spec: self.spec,
                structure: self.structure,
                models: self.models,
                calibration: self.calibration,
                params: self.params,
                observer: self.observer,
            };
            if let Some(r) = m.align_many(&input) {
                let r = r.map_err(method_failed(id))?;
                return Ok((
                    true,
                    FrameAlignment {
                        perms: r.perms,
                        objective: r.objective,
                        objectives: r.objectives,
                        iterations: r.iterations,
                    },
                ));
            }
        }
        let identity: Vec<Vec<usize>> = self
            .structure
            .hidden
            .iter()
            .map(|g| (0..g.size).collect())
            .collect();
        // GAMF aligns each model with the job's first solver only.
        let one_solver = FusionParams {
            solvers: self.params.solvers().into_iter().take(1).collect(),
            ..self.params.clone()
        };
        let mut out = FrameAlignment {
            perms: Vec::with_capacity(self.models.len()),
            objective: 0.0,
            objectives: Vec::new(),
            iterations: 0,
        };
        for (i, &model) in self.models.iter().enumerate() {
            if i == anchor {
                out.perms.push(identity.clone());
                continue;
            }
            let input = MethodInput {
                spec: self.spec,
                structure: self.structure,
                models: [model, self.models[anchor]],
                calibration: self.calibration,
                params: &one_solver,
                observer: self.observer,
            };
            let a = m.align(&input).map_err(method_failed(id))?;
            out.objective += a.objective;
            out.objectives.push(a.objective);
            out.iterations += a.iterations;
            out.perms.push(a.perms);
        }
        Ok((false, out))
    }
}

/// The equivalence check of every model: each aligned model beside its original on the probe
/// batch; the largest `|Δlogit|` of all.
fn equivalent(
    probes: &[Probe<'_>],
    aligned: &[WeightSet],
    perms: &[Vec<Vec<usize>>],
) -> Result<f64, EquivalenceError> {
    let mut worst = 0.0f64;
    for ((probe, a), p) in probes.iter().zip(aligned).zip(perms) {
        worst = worst.max(probe.check(a, p)?);
    }
    Ok(worst)
}

/// Evaluate `Σ wᵢ·modelᵢ` as method `id`'s fused model.
fn evaluate_average(
    cache: &mut EvalCache<'_>,
    id: MethodId,
    models: &[&WeightSet],
    weights: &[f64],
    observer: &dyn Observer,
) -> Result<Merged, PipelineError> {
    observer.progress(Stage::Evaluate(id), 0.0);
    let fused = average(models, weights)?;
    let r = cache.eval(&fused, &|| observer.should_stop())?;
    Ok(Merged {
        method: id,
        accuracy: r.accuracy,
        loss: r.loss,
    })
}

/// The fused weights of a k ≥ 3 job for one method, given its per-model permutations (`None`
/// for `none`) and the report's normalised weights. Names and dtypes are the last model's.
///
/// # Errors
/// [`PipelineError::Arch`] when a model does not fit `spec`; [`PipelineError::Mismatch`] for
/// permutations that do not fit, or weights that are not one per model.
pub fn fused_weights_many(
    spec: &ArchSpec,
    models: &[&WeightSet],
    permutations: Option<&[ModelPermutations]>,
    weights: &[f64],
) -> Result<WeightSet, PipelineError> {
    let structure = validate(spec, models)?;
    let aligned = match permutations {
        None => models.iter().map(|m| (*m).clone()).collect::<Vec<_>>(),
        Some(p) => {
            if p.len() != models.len() {
                return Err(PipelineError::Mismatch(format!(
                    "{} models but permutations for {}",
                    models.len(),
                    p.len()
                )));
            }
            let mut out = Vec::with_capacity(models.len());
            for (m, mp) in models.iter().zip(p) {
                let perms: Vec<Vec<usize>> =
                    mp.permutations.iter().map(|l| l.perm.clone()).collect();
                out.push(permute(&structure, m, &perms)?);
            }
            out
        }
    };
    let refs: Vec<&WeightSet> = aligned.iter().collect();
    Ok(average(&refs, weights)?)
}

#[cfg(test)]
#[path = "many_tests.rs"]
mod tests;
