//! Matching solvers (stub).
