//! The stages of a job, named by one string each: `validate`, GAMF's `affinity`, `matching`
//! and `assignment`, `align_<method>` for every other method, `evaluate_inputs` and
//! `evaluate_<method>` — the names progress, timings and stored rows use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::methods::MethodId;

/// A stage of a job. Ordered as a job runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Validate,
    /// GAMF: building the affinity operator.
    Affinity,
    /// GAMF: the power iteration (spectral matching).
    Matching,
    /// GAMF: per-layer Hungarian assignments.
    Assignment,
    /// A method other than GAMF computing its permutations.
    Align(MethodId),
    EvaluateInputs,
    /// Evaluating one method's curve.
    Evaluate(MethodId),
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Validate => f.write_str("validate"),
            Stage::Affinity => f.write_str("affinity"),
            Stage::Matching => f.write_str("matching"),
            Stage::Assignment => f.write_str("assignment"),
            Stage::Align(m) => write!(f, "align_{m}"),
            Stage::EvaluateInputs => f.write_str("evaluate_inputs"),
            Stage::Evaluate(m) => write!(f, "evaluate_{m}"),
        }
    }
}

/// A stage name that is not one of [`Stage`]'s.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("unknown stage `{0}`")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownStage(s.to_string());
        Ok(match s {
            "validate" => Stage::Validate,
            "affinity" => Stage::Affinity,
            "matching" => Stage::Matching,
            "assignment" => Stage::Assignment,
            "evaluate_inputs" => Stage::EvaluateInputs,
            _ => {
                if let Some(m) = s.strip_prefix("align_") {
                    Stage::Align(m.parse().map_err(|_| unknown())?)
                } else if let Some(m) = s.strip_prefix("evaluate_") {
                    Stage::Evaluate(m.parse().map_err(|_| unknown())?)
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_round_trip_and_keep_the_names_of_stored_rows() {
        for (stage, name) in [
            (Stage::Validate, "validate"),
            (Stage::Affinity, "affinity"),
            (Stage::Assignment, "assignment"),
            (Stage::EvaluateInputs, "evaluate_inputs"),
            (Stage::Evaluate(MethodId::Gamf), "evaluate_gamf"),
            (Stage::Evaluate(MethodId::None), "evaluate_none"),
            (
                Stage::Align(MethodId::WeightMatching),
                "align_weight_matching",
            ),
        ] {
            assert_eq!(stage.to_string(), name);
            assert_eq!(name.parse::<Stage>().unwrap(), stage);
            let json = serde_json::to_value(stage).unwrap();
            assert_eq!(serde_json::from_value::<Stage>(json).unwrap(), stage);
        }
        assert!("evaluate_wm".parse::<Stage>().is_err());
        // Timings are a map keyed by stage, in job order.
        let t: std::collections::BTreeMap<Stage, f64> =
            serde_json::from_str(r#"{"evaluate_none": 2.0, "affinity": 1.0}"#).unwrap();
        assert_eq!(t.keys().next(), Some(&Stage::Affinity));
    }
}
