//! Server-side plots of a report, rendered by [`crate::plots`] (SVG).

use super::error::ApiError;
use crate::engine::pipeline::{FusionReport, MatchingReport};

/// Accuracy against proportion (the example's third figure).
///
/// # Errors
/// [`ApiError::Internal`] until the plots module is built in.
pub fn accuracy(_report: &FusionReport) -> Result<String, ApiError> {
    Err(ApiError::Internal("plots are not built in yet".into()))
}

/// The block matching matrix (the example's second figure).
///
/// # Errors
/// [`ApiError::Internal`] until the plots module is built in.
pub fn matching(_matching: &MatchingReport) -> Result<String, ApiError> {
    Err(ApiError::Internal("plots are not built in yet".into()))
}
