//! Operations: liveness (`/healthz`), readiness (`/readyz`: database reachable, migrations
//! applied, blob store writable) and Prometheus metrics (`/metrics`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, Problem};
use crate::http::state::AppState;

/// A health answer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(example = "0.1.0")]
    pub version: String,
}

/// Readiness details.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub database: String,
    /// `local` or `s3`.
    #[schema(example = "local")]
    pub blobs: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "get_health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn get_health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness: the database answers with every migration applied, the blob store is usable, and
/// the data directory has at least `GMFUSE_MIN_FREE_BYTES` free.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "get_readiness",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reason", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_readiness(State(app): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    match app.db.ready().await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::NotReady(
                "database migrations are not applied".into(),
            ));
        }
        Err(e) => return Err(ApiError::NotReady(format!("database unreachable: {e}"))),
    }
    if !app.blobs.ready().await {
        return Err(ApiError::NotReady("blob store unavailable".into()));
    }
    let free = crate::store::disk::free_bytes(&app.data_dir).map_err(|e| {
        ApiError::NotReady(format!("the data directory's free space is unknown: {e}"))
    })?;
    if free < app.min_free_bytes {
        return Err(ApiError::NotReady(format!(
            "the data directory has {free} bytes free, under GMFUSE_MIN_FREE_BYTES = {}",
            app.min_free_bytes
        )));
    }
    Ok(Json(Readiness {
        status: "ready".into(),
        database: app.db.backend().into(),
        blobs: app.blobs.backend().into(),
    }))
}

/// Prometheus metrics: requests by route and status, jobs by status, queue depth, job
/// durations.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "get_metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 500, description = "The database could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let counts = app.db.job_counts().await?;
    let text = app.jobs.metrics.render(&counts, app.jobs.running.len());
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}
