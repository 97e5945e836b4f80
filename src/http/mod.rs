//! The REST API (v1): axum handlers kept thin ([`routes`]), API keys and tenants ([`auth`]), problem+json errors ([`error`]),
//! extractors whose rejections are problems ([`extract`]), the OpenAPI document's fixed parts
//! ([`doc`]), the routes and the middleware stack ([`router`]), metrics ([`metrics`]), per-tenant rate and quotas ([`limits`]), start-up/shutdown ([`server`]), the accept loop with its
//! connection limits ([`serve`]), the request-head limits ([`head`]), the upload slots ([`slots`]) and the web UI's files ([`ui`]).

pub mod auth;
mod convert;
pub mod doc;
pub mod error;
pub mod extract;
pub mod head;
pub mod idempotency;
pub mod limits;
pub mod metrics;
mod plots;
pub mod report;
pub mod router;
pub mod routes;
pub mod serve;
pub mod server;
pub mod slots;
pub mod state;
pub mod ui;

pub use error::{ApiError, Problem};
pub use router::{RouteLimits, openapi, router};
pub use server::Application;
pub use state::{App, AppState};
