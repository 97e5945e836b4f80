//! gmfuse: model fusion by graph matching (GAMF) as a library and an HTTP service.
//!
//! [`engine`] is the pure compute core, the `gmfuse-engine` crate (no async runtime, web stack
//! or database);
//! the service modules are built on top of it: [`store`] (database and blobs), [`jobs`]
//! (queue consumer and compute bridge), [`http`] (the REST API), [`plots`] (SVG reports),
//! [`auth`] (API keys), [`telemetry`] (Prometheus metrics) and [`config`]. [`train`] trains the demo models.

pub mod auth;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod http;
pub mod jobs;
pub mod plots;
pub mod store;
pub mod telemetry;
pub mod train;

/// The compute core, a crate of its own (`crates/gmfuse-engine`), re-exported under its old path.
pub use gmfuse_engine as engine;
