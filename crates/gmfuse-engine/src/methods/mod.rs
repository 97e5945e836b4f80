//! Alignment methods, one module each, behind one object-safe trait.
//!
//! A [`Method`] takes the two models' weights, their permutation groups
//! ([`PermStructure`]), optional calibration data and the job's parameters, and returns one
//! permutation per group (`perm[i] = j` puts model 1's channel `i` at model 2's channel `j`,
//! the convention of [`crate::fusion::permute`]) plus its diagnostics. [`MethodId`] is the one
//! name of each method: its snake_case string is what serde, [`FromStr`], [`Display`], the CLI
//! and the stores use.
//!
//! Adding a method is one module here and one line in the `registry!` below.
//!
//! ```
//! use gmfuse_engine::methods::MethodId;
//! let id: MethodId = "weight_matching".parse().unwrap();
//! assert_eq!(id, MethodId::WeightMatching);
//! assert_eq!(id.to_string(), "weight_matching");
//! assert_eq!(serde_json::to_string(&id).unwrap(), "\"weight_matching\"");
//! ```

pub mod activation_matching;
mod auto;
mod gamf;
mod gram;
mod identity;
mod merge_many;
mod support;
pub mod weight_matching;

pub use auto::{AutoPick, resolve_auto};
pub use merge_many::merge_many;
pub use support::{Unsupported, check_supported};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::arch::{ArchError, ArchSpec, PermStructure};
use crate::eval::Dataset;
use crate::fusion::FusionError;
use crate::pipeline::{FusionParams, Observer, Stage};
use crate::solvers::{SolveError, SolverId};
use crate::weights::{WeightSet, WeightsError};

/// Everything a method may look at.
pub struct MethodInput<'a> {
    pub spec: &'a ArchSpec,
    /// The permutation groups shared by both models (validated against `spec`).
    pub structure: &'a PermStructure,
    /// `[model 1, model 2]`: model 1 is aligned onto model 2.
    pub models: [&'a WeightSet; 2],
    /// Samples to run the models on (never the scored test set), for methods that need them.
    pub calibration: Option<&'a Dataset>,
    pub params: &'a FusionParams,
    /// Progress reports and cancellation.
    pub observer: &'a dyn Observer,
}

/// A method's answer: one permutation per group, and how it got there.
#[derive(Clone, Debug, PartialEq)]
pub struct Alignment {
    /// `perms[k]` permutes [`PermStructure::hidden`]`[k]`.
    pub perms: Vec<Vec<usize>>,
    /// The method's final objective (what it maximises).
    pub objective: f64,
    /// The objective after each iteration or sweep.
    pub objectives: Vec<f64>,
    /// Iterations or sweeps run.
    pub iterations: usize,
    /// Seconds of the method's own stages (empty: the pipeline times the whole method as
    /// [`Stage::Align`]).
    pub stages: Vec<(Stage, f64)>,
}

/// Why a method failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MethodError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Solve(#[from] SolveError),
    #[error(transparent)]
    Fusion(#[from] FusionError),
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error("method `{0}` needs calibration data (a non-empty `calibration` dataset)")]
    NeedsCalibration(MethodId),
    #[error("`auto` must be resolved against the job's budget before alignment")]
    UnresolvedAuto,
    #[error("canceled")]
    Canceled,
}

/// Everything a method may look at when it aligns k ≥ 3 models jointly.
pub struct ManyInput<'a> {
    pub spec: &'a ArchSpec,
    pub structure: &'a PermStructure,
    /// Every model, in the job's order.
    pub models: &'a [&'a WeightSet],
    pub calibration: Option<&'a Dataset>,
    pub params: &'a FusionParams,
    pub observer: &'a dyn Observer,
}

/// A joint alignment of k models into one common frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ManyAlignment {
    /// `perms[m][k]` permutes group `k` of model `m`.
    pub perms: Vec<Vec<Vec<usize>>>,
    pub objective: f64,
    /// The objective after each round.
    pub objectives: Vec<f64>,
    /// Rounds run.
    pub iterations: usize,
}

/// One alignment of a method run, with the solver that found it (GAMF: one per solver asked
/// for; other methods: one, `solver: None`) and its seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub solver: Option<SolverId>,
    pub alignment: Alignment,
    pub seconds: f64,
}

/// One way of aligning model 1's hidden channels onto model 2's.
pub trait Method: Send + Sync {
    /// Whether [`MethodInput::calibration`] must be given (the method runs the models).
    fn needs_calibration(&self) -> bool {
        false
    }

    /// One permutation per group of `input.structure`.
    ///
    /// # Errors
    /// [`MethodError`]; [`MethodError::Canceled`] once `input.observer.should_stop()`.
    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError>;

    /// Align k ≥ 3 models jointly (weight matching's MergeMany). `None`: the method has no
    /// joint form, and the pipeline aligns every model onto an anchor with [`Method::align`].
    fn align_many(&self, _input: &ManyInput<'_>) -> Option<Result<ManyAlignment, MethodError>> {
        None
    }

    /// Every alignment the job asks of this method: [`Method::align`], timed, unless the
    /// method has several solvers (GAMF).
    ///
    /// # Errors
    /// As [`Method::align`].
    fn align_runs(&self, input: &MethodInput<'_>) -> Result<Vec<Run>, MethodError> {
        let started = std::time::Instant::now();
        let alignment = self.align(input)?;
        Ok(vec![Run {
            solver: None,
            alignment,
            seconds: started.elapsed().as_secs_f64(),
        }])
    }
}

/// Declares [`MethodId`] (with its one string form and title) and the registry [`method`].
macro_rules! registry {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, $title:literal, $imp:expr; )*) => {
        /// A method's one name. Serialized (and parsed, displayed, offered by the CLI) as its
        /// snake_case string.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum MethodId {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant, )*
        }

        impl MethodId {
            /// Every method, in registry order.
            pub const ALL: &'static [MethodId] = &[$(MethodId::$variant),*];

            /// The canonical string form.
            pub fn as_str(self) -> &'static str {
                match self { $(MethodId::$variant => $name,)* }
            }

            /// The curve's title in tables and plots.
            pub fn title(self) -> &'static str {
                match self { $(MethodId::$variant => $title,)* }
            }
        }

        /// The implementation of `id`.
        pub fn method(id: MethodId) -> Box<dyn Method> {
            match id { $(MethodId::$variant => Box::new($imp),)* }
        }
    };
}

registry! {
    /// Graph-matching fusion (GAMF): affinity → spectral matching → Hungarian per layer.
    Gamf => "gamf", "Graph Matching Fusion", gamf::Gamf;
    /// Git Re-Basin weight matching: coordinate ascent on `Σ ⟨W_B, π(W_A)⟩`, one LAP per group.
    WeightMatching => "weight_matching", "Weight Matching Fusion", weight_matching::WeightMatching;
    /// Activation matching: Pearson correlation of post-ReLU activations on calibration data, one LAP per group.
    ActivationMatching => "activation_matching", "Activation Matching Fusion", activation_matching::ActivationMatching;
    /// Plain weight averaging, no alignment (the baseline of every report).
    None => "none", "No Matching Fusion", identity::Identity;
    /// GAMF when its pre-flight estimate fits the budget, weight matching otherwise; resolved
    /// before alignment ([`resolve_auto`]), never in a curve.
    Auto => "auto", "Auto", auto::Unresolved;
}

impl MethodId {
    /// Whether the method permutes anything (every method but `none`, and `auto`, which is
    /// replaced by one that does before alignment).
    pub fn aligns(self) -> bool {
        !matches!(self, MethodId::None | MethodId::Auto)
    }

    /// Whether the method runs the models on calibration data ([`Method::needs_calibration`]).
    pub fn needs_calibration(self) -> bool {
        method(self).needs_calibration()
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method name that is not in the registry.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("unknown method `{0}` (known: {known})", known = known())]
pub struct UnknownMethod(pub String);

fn known() -> String {
    MethodId::ALL
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for MethodId {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MethodId::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for MethodId {
    fn value_variants<'a>() -> &'a [Self] {
        MethodId::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()).help(self.title()))
    }
}

// The schema is written by hand: `derive(ToSchema)` inside `registry!` does not see the
// `serde(rename)` of each variant and would document the Rust names (`Gamf`), not the wire ones.
#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for MethodId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::string_enum_schema(
            "A fusion method: `gamf`, `weight_matching`, `activation_matching`, `none` (plain \
             averaging, the baseline) or `auto` (the best method that fits the budget).",
            MethodId::ALL.iter().map(|m| m.as_str()),
        )
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for MethodId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_one_string_form_for_serde_parse_and_display() {
        for &m in MethodId::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<MethodId>(&json).unwrap(), m);
            assert_eq!(m.to_string().parse::<MethodId>().unwrap(), m);
        }
        assert_eq!(MethodId::WeightMatching.as_str(), "weight_matching");
        let e = "wm".parse::<MethodId>().unwrap_err().to_string();
        assert!(e.contains("gamf, weight_matching"), "{e}");
    }
}

#[cfg(test)]
#[path = "preset_tests.rs"]
mod preset_tests;
