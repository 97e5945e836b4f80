//! Matching solvers: the QAP solvers on the GAMF affinity — [`sm`] (spectral matching),
//! [`rrwm`] (reweighted random walks) and [`ipfp`] (integer projected fixed point), each
//! with pygmtools' semantics — and [`hungarian`] (optimal linear assignment, maximising), which
//! every QAP solver ends with, once per group; [`Lap`] is a linear assignment solver that
//! warm-starts from its last solve (weight matching's repeated LAPs).
//!
//! [`SolverId`] is each QAP solver's one name: its snake_case string is what serde,
//! [`FromStr`], [`Display`], the CLI (`--solver`) and the API (`solvers`) use.
//!
//! ```
//! use gmfuse_engine::solvers::SolverId;
//! let id: SolverId = "rrwm".parse().unwrap();
//! assert_eq!(id, SolverId::Rrwm);
//! assert_eq!(serde_json::to_string(&id).unwrap(), "\"rrwm\"");
//! ```

pub mod groups;
pub mod hungarian;
pub mod ipfp;
pub mod lap;
pub mod rrwm;
pub mod sm;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use groups::Groups;
pub use hungarian::hungarian;
pub use ipfp::ipfp;
pub use lap::Lap;
pub use rrwm::{RrwmParams, rrwm};
pub use sm::{Operator, SmParams, SmResult, sm};

/// Why a solver refused its input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SolveError {
    #[error("score matrix has a non-finite entry at ({row}, {col})")]
    NonFinite { row: usize, col: usize },
    #[error("score matrix must be square, got {rows}x{cols}")]
    NotSquare { rows: usize, cols: usize },
    #[error("the power iteration produced a zero vector (the affinity is zero)")]
    ZeroVector,
    #[error("canceled")]
    Canceled,
}

/// Declares [`SolverId`] with its one string form and its curve title.
macro_rules! solvers {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, $title:literal; )*) => {
        /// A QAP solver's one name. Serialized (and parsed, displayed, offered by the CLI) as
        /// its snake_case string.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum SolverId {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant, )*
        }

        impl SolverId {
            /// Every solver, in registry order.
            pub const ALL: &'static [SolverId] = &[$(SolverId::$variant),*];

            /// The canonical string form.
            pub fn as_str(self) -> &'static str {
                match self { $(SolverId::$variant => $name,)* }
            }

            /// The title of a GAMF curve solved with it (SM keeps GAMF's own title).
            pub fn gamf_title(self) -> &'static str {
                match self { $(SolverId::$variant => $title,)* }
            }
        }
    };
}

solvers! {
    /// Spectral matching: the leading eigenvector by power iteration.
    Sm => "sm", "Graph Matching Fusion";
    /// Reweighted random walks (Cho et al. 2010) with Sinkhorn jumps.
    Rrwm => "rrwm", "Graph Matching Fusion (RRWM)";
    /// Integer projected fixed point (Leordeanu et al. 2009).
    Ipfp => "ipfp", "Graph Matching Fusion (IPFP)";
}

impl fmt::Display for SolverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A solver name that is not in the registry.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("unknown solver `{0}` (known: sm, rrwm, ipfp)")]
pub struct UnknownSolver(pub String);

impl FromStr for SolverId {
    type Err = UnknownSolver;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SolverId::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownSolver(s.to_string()))
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for SolverId {
    fn value_variants<'a>() -> &'a [Self] {
        SolverId::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// What a QAP solver hands back before the final per-group Hungarian: a vector on the
/// operator's compact pair space (SM's eigenvector, RRWM's walk, IPFP's best discrete point).
#[derive(Clone, Debug, PartialEq)]
pub struct QapResult {
    pub v: Vec<f64>,
    /// `vᵀKv / vᵀv` of `v`.
    pub objective: f64,
    /// Iterations run.
    pub iterations: usize,
    /// The solver's objective per iteration (SM, RRWM: `vᵀKv` of the unit iterate each step
    /// started from; IPFP: `bᵀKb` of each step's discrete point).
    pub objectives: Vec<f64>,
}

/// Run solver `id` on `k`, whose compact pair space is laid out as `groups`; `full_dim` is
/// the full pair space (`n²`, for SM's exact first convergence test).
///
/// # Errors
/// [`SolveError::ZeroVector`] for a vanishing affinity; [`SolveError::Canceled`] on `stop()`.
pub fn solve(
    id: SolverId,
    k: &dyn Operator,
    groups: &Groups,
    full_dim: usize,
    params: SmParams,
    stop: &dyn Fn() -> bool,
) -> Result<QapResult, SolveError> {
    match id {
        SolverId::Sm => sm(k, full_dim, params, stop).map(|r| QapResult {
            v: r.v,
            objective: r.objective,
            iterations: r.iterations,
            objectives: r.objectives,
        }),
        SolverId::Rrwm => rrwm(k, groups, RrwmParams::with(params), stop),
        SolverId::Ipfp => ipfp(k, groups, params.max_iter, stop),
    }
}

#[cfg(test)]
mod qap_tests;

// Written by hand for the reason given at `MethodId`'s schema.
#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for SolverId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::string_enum_schema(
            "GAMF's QAP solver: `sm` (spectral matching), `rrwm` (reweighted random walks), \
             `ipfp` (integer projected fixed point).",
            SolverId::ALL.iter().map(|s| s.as_str()),
        )
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for SolverId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_solver_has_one_string_form_for_serde_parse_and_display() {
        for &s in SolverId::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<SolverId>(&json).unwrap(), s);
            assert_eq!(s.to_string().parse::<SolverId>().unwrap(), s);
        }
        assert_eq!(
            "SM".parse::<SolverId>().unwrap_err().to_string(),
            "unknown solver `SM` (known: sm, rrwm, ipfp)"
        );
    }
}
