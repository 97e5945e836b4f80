//! Matching solvers: [`sm`] (spectral matching, a power iteration on the affinity) and
//! [`hungarian`] (optimal linear assignment, maximising).

pub mod hungarian;
pub mod sm;

pub use hungarian::hungarian;
pub use sm::{SmParams, SmResult, sm};

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
