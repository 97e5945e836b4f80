//! The fusion engine: pure compute, no tokio, axum, sqlx or I/O beyond the bytes handed to it.
//!
//! Stages, in the order a fusion job runs them:
//! [`weights`] (strict safetensors) → [`arch`] (architecture spec, validation, permutation
//! structure) → [`affinity`] (GAMF edge affinity, never dense) → [`solvers`] (spectral matching,
//! Hungarian) → [`methods`] (one permutation per group: GAMF, weight matching, none) →
//! [`fusion`] (align and interpolate) → [`forward`] / [`eval`] (inference and accuracy)
//! — all tied together by [`pipeline`].

pub mod affinity;
pub mod arch;
pub mod estimate;
pub mod eval;
pub mod forward;
pub mod fusion;
pub mod matching;
pub mod methods;
pub mod onnx;
pub mod pipeline;
#[cfg(feature = "utoipa")]
mod schema;
pub mod solvers;
pub mod weights;
