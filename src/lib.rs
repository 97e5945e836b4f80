//! gmfuse: model fusion by graph matching (GAMF) as a library and an HTTP service.
//!
//! [`engine`] is the pure compute core (no async runtime, web stack or database);
//! the service modules are built on top of it.

pub mod cli;
pub mod engine;
pub mod plots;
pub mod train;
