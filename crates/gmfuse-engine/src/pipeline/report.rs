//! What a job reports ([`FusionReport`]): the inputs' accuracy, one curve per method (the
//! `none` baseline always last), one matching per aligning method, the best fused model and
//! the timings — and how reports stored before several methods existed still read
//! (`curves: {gamf: [...], none: [...]}` and one `matching` object).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::params::FusionParams;
use super::repair::Repair;
use super::stage::Stage;
use crate::eval::EvalResult;
use crate::methods::MethodId;
use crate::solvers::SolverId;

/// The permutation found for one hidden layer: `perm[i] = j` puts model 1's channel `i` at
/// model 2's channel `j`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct LayerPermutation {
    /// The weight tensor that produces the layer's channels.
    #[cfg_attr(feature = "utoipa", schema(example = "conv1.weight"))]
    pub layer: String,
    pub perm: Vec<usize>,
}

fn gamf() -> MethodId {
    MethodId::Gamf
}

/// One aligning method's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct MatchingReport {
    /// The method (reports stored before `method` existed are GAMF's).
    #[serde(default = "gamf")]
    pub method: MethodId,
    /// GAMF's QAP solver (absent for other methods, and in GAMF reports stored before solvers
    /// existed: those are `sm`'s).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub solver: Option<SolverId>,
    /// The method's final objective: for GAMF the discrete `vec(P)ᵀ K vec(P)` of the
    /// assignment found (reports stored before solvers existed hold `vᵀ K v` of the unit
    /// eigenvector), `Σ ⟨W_B, π(W_A)⟩` over the permuted tensors for weight matching.
    pub objective: f64,
    /// The objective per iteration (GAMF: per solver step) or sweep (weight matching).
    #[serde(default)]
    pub objectives: Vec<f64>,
    /// Iterations or sweeps run.
    pub iterations: usize,
    /// Seconds the method took.
    #[serde(default)]
    pub seconds: f64,
    /// Model 1's permutations onto model 2 (jobs of two models; empty for k ≥ 3).
    pub permutations: Vec<LayerPermutation>,
    /// Jobs of k ≥ 3 models: every model's permutations into the common frame (the anchor's,
    /// or with MergeMany model 0's first, identity where nothing moves). Empty for two models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelPermutations>,
    /// Node count of each group (input, hidden…, output): the block sizes of the matching matrix.
    #[cfg_attr(feature = "utoipa", schema(example = json!([1, 32, 64, 32, 10])))]
    pub group_sizes: Vec<usize>,
    /// Why `auto` picked this method (only when the job asked for `auto`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub picked_by_auto: Option<String>,
    /// The equivalence check: max |Δlogit| between aligned model 1 and model 1 on the probe
    /// batch (absent in reports stored before the check existed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_abs_logit_delta: Option<f64>,
}

/// One model's permutations in a k-model job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ModelPermutations {
    /// Index into the job's models.
    pub model: usize,
    pub permutations: Vec<LayerPermutation>,
}

/// The fused model of a k ≥ 3 job for one method: `Σ wᵢ·aligned(modelᵢ)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Merged {
    pub method: MethodId,
    /// Percent of samples classified correctly.
    pub accuracy: f64,
    /// Mean negative log-likelihood.
    pub loss: f64,
}

/// One point of an accuracy curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CurvePoint {
    #[cfg_attr(feature = "utoipa", schema(example = 0.5))]
    pub proportion: f64,
    /// Percent of samples classified correctly.
    #[cfg_attr(feature = "utoipa", schema(example = 83.9))]
    pub accuracy: f64,
    /// Mean negative log-likelihood.
    #[cfg_attr(feature = "utoipa", schema(example = 0.55))]
    pub loss: f64,
}

/// Accuracy per proportion of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Curve {
    pub method: MethodId,
    /// GAMF's QAP solver (GAMF curves only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub solver: Option<SolverId>,
    pub points: Vec<CurvePoint>,
    /// The same fused models after the job's `repair`, one point per proportion (absent when
    /// the job asked for no repair).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<CurvePoint>,
}

impl Curve {
    /// The curve's title in tables and plots: the method's, or GAMF's solver's.
    pub fn title(&self) -> &'static str {
        match self.solver {
            Some(s) if self.method == MethodId::Gamf => s.gamf_title(),
            _ => self.method.title(),
        }
    }
}

/// The best fused model found: the most accurate point of every curve the job computed,
/// repaired points included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Best {
    pub method: MethodId,
    /// GAMF's QAP solver of the best curve (absent for other methods, and in reports stored
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverId>,
    /// The proportion (two-model jobs; absent for k ≥ 3, whose fused model is the weighted
    /// average).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(example = 0.2))]
    pub proportion: Option<f64>,
    #[cfg_attr(feature = "utoipa", schema(example = 85.21))]
    pub accuracy: f64,
    /// The repair of the best point: the job's `repair` when it is a point of a curve's
    /// `repaired` list, absent (`none`) when it is an unrepaired point.
    #[serde(default, skip_serializing_if = "Repair::is_none")]
    pub repair: Repair,
}

impl Best {
    /// The first most accurate point of `curves` (two-model jobs), in curve order (methods as
    /// asked, then `none`) and, within a curve, every unrepaired point before the repaired
    /// ones — so a repaired point wins only when it is strictly better. `repair` is the job's.
    /// `None` when the curves hold no point.
    pub fn of(curves: &[Curve], repair: Repair) -> Option<Best> {
        let points = curves.iter().flat_map(|c| {
            let plain = c.points.iter().map(move |p| (c, p, Repair::None));
            plain.chain(c.repaired.iter().map(move |p| (c, p, repair)))
        });
        points.fold(None, |best, (c, p, r)| match best {
            Some(b) if b.accuracy >= p.accuracy => Some(b),
            _ => Some(Best {
                method: c.method,
                solver: c.solver,
                proportion: Some(p.proportion),
                accuracy: p.accuracy,
                repair: r,
            }),
        })
    }
}

/// Everything a fusion job produces except the fused weights (recomputed on demand with
/// [`super::fused_weights`] from the permutations).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionReport {
    pub architecture: String,
    pub dataset: String,
    pub params: FusionParams,
    /// Evaluation samples used.
    pub samples: usize,
    pub inputs: Vec<EvalResult>,
    pub alphas: Vec<f64>,
    /// One curve per method run, in the order asked, then `none` (two-model jobs; empty for
    /// k ≥ 3).
    #[serde(deserialize_with = "curves")]
    pub curves: Vec<Curve>,
    /// Jobs of k ≥ 3 models: the fused model of each method, in the order asked, then `none`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<Merged>,
    /// Jobs of k ≥ 3 models: the model the others were aligned onto (absent with MergeMany
    /// alone, or for two models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<usize>,
    /// Jobs of k ≥ 3 models: the normalised averaging weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    pub best: Best,
    /// One entry per aligning method, in the order run.
    #[serde(default, alias = "matching", deserialize_with = "matchings")]
    pub matchings: Vec<MatchingReport>,
    /// Seconds per stage.
    pub timings: BTreeMap<Stage, f64>,
}

impl FusionReport {
    /// The curve of `method`, if it ran.
    pub fn curve(&self, method: MethodId) -> Option<&[CurvePoint]> {
        self.curves
            .iter()
            .find(|c| c.method == method)
            .map(|c| &c.points[..])
    }

    /// The matching of `method`, if it ran (and aligns).
    pub fn matching(&self, method: MethodId) -> Option<&MatchingReport> {
        self.matching_by(method, None)
    }

    /// The matching of `method` found with GAMF's `solver` (`None`: the first one the job
    /// ran). GAMF matchings stored before solvers existed are `sm`'s.
    pub fn matching_by(
        &self,
        method: MethodId,
        solver: Option<SolverId>,
    ) -> Option<&MatchingReport> {
        self.matchings
            .iter()
            .filter(|m| m.method == method)
            .find(|m| solver.is_none_or(|s| m.solver.unwrap_or(SolverId::Sm) == s))
    }
}

/// `curves` as a list, or as the object `{gamf?, none}` reports were stored with before.
fn curves<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Curve>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        List(Vec<Curve>),
        Legacy {
            #[serde(default)]
            gamf: Option<Vec<CurvePoint>>,
            none: Vec<CurvePoint>,
        },
    }
    Ok(match Wire::deserialize(d)? {
        Wire::List(c) => c,
        Wire::Legacy { gamf, none } => gamf
            .map(|points| Curve {
                method: MethodId::Gamf,
                solver: None,
                points,
                repaired: Vec::new(),
            })
            .into_iter()
            .chain([Curve {
                method: MethodId::None,
                solver: None,
                points: none,
                repaired: Vec::new(),
            }])
            .collect(),
    })
}

/// `matchings` as a list, or the single `matching` object (or `null`) stored before.
fn matchings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MatchingReport>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        List(Vec<MatchingReport>),
        One(Box<MatchingReport>),
        Null(()),
    }
    Ok(match Wire::deserialize(d)? {
        Wire::List(m) => m,
        Wire::One(m) => vec![*m],
        Wire::Null(()) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(acc: &[(f64, f64)]) -> Vec<CurvePoint> {
        acc.iter()
            .map(|&(proportion, accuracy)| CurvePoint {
                proportion,
                accuracy,
                loss: 0.0,
            })
            .collect()
    }

    #[test]
    fn best_is_the_first_most_accurate_point_of_every_curve_repaired_ones_included() {
        // The cnn-bn pair's weight matching midpoint (16.58 %, 88.36 % with reset_bn, README)
        // beside averaging's (22.04 %, 77.07 %).
        let curves = vec![
            Curve {
                method: MethodId::Gamf,
                solver: Some(SolverId::Rrwm),
                points: points(&[(0.0, 95.40), (0.5, 23.39)]),
                repaired: points(&[(0.0, 95.40), (0.5, 82.66)]),
            },
            Curve {
                method: MethodId::WeightMatching,
                solver: None,
                points: points(&[(0.5, 16.58)]),
                repaired: points(&[(0.5, 88.36)]),
            },
            Curve {
                method: MethodId::None,
                solver: None,
                points: points(&[(0.5, 22.04)]),
                repaired: points(&[(0.5, 77.07)]),
            },
        ];
        // The input at α = 0 is best, unrepaired: a tie goes to the earlier, unrepaired point.
        let best = Best::of(&curves, Repair::ResetBn).unwrap();
        assert_eq!(
            (best.method, best.solver, best.proportion, best.repair),
            (
                MethodId::Gamf,
                Some(SolverId::Rrwm),
                Some(0.0),
                Repair::None
            )
        );
        // Without the ends, the best point is a repaired one, and says so.
        let mids: Vec<Curve> = curves
            .into_iter()
            .map(|mut c| {
                c.points.retain(|p| p.proportion == 0.5);
                c.repaired.retain(|p| p.proportion == 0.5);
                c
            })
            .collect();
        let best = Best::of(&mids, Repair::ResetBn).unwrap();
        assert_eq!(
            best,
            Best {
                method: MethodId::WeightMatching,
                solver: None,
                proportion: Some(0.5),
                accuracy: 88.36,
                repair: Repair::ResetBn,
            }
        );
        let json = serde_json::to_value(&best).unwrap();
        assert_eq!(json["repair"], "reset_bn");
        // An unrepaired best point keeps the stored form reports had before (no `repair`).
        let mut none = mids[2].clone();
        none.repaired.clear();
        let plain = Best::of(&[none], Repair::None).unwrap();
        assert_eq!((plain.accuracy, plain.repair), (22.04, Repair::None));
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("repair").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<Best>(json).unwrap(), plain);
        assert_eq!(Best::of(&[], Repair::None), None);
    }
}
