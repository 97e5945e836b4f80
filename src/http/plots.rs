//! Server-side plots of a report, rendered by [`crate::plots`] (SVG).

use super::error::ApiError;
use crate::engine::pipeline::{FusionReport, MatchingReport};

/// Accuracy against proportion (the example's third figure).
///
/// # Errors
/// None today; the signature leaves room for a renderer that can fail.
pub fn accuracy(report: &FusionReport) -> Result<String, ApiError> {
    Ok(crate::plots::accuracy_svg(report))
}

/// The block matching matrix (the example's second figure).
///
/// # Errors
/// None today; the signature leaves room for a renderer that can fail.
pub fn matching(matching: &MatchingReport) -> Result<String, ApiError> {
    Ok(crate::plots::matching_svg(matching))
}
