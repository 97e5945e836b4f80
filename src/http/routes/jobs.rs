//! `/v1/jobs`: submit (validated synchronously, then 202), list, status, cancel and the
//! attempt log. The types are in `job_views.rs`, progress events in `events.rs`, results in
//! `results.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use uuid::Uuid;

pub use super::job_views::*;
use super::page::{Page, PageItem, PageQuery};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::idempotency;
use crate::http::state::AppState;
use crate::store::{JobStatus, StoredResponse};

/// Seconds a client should wait between status polls.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Queue a fusion job. The request is validated now (models exist and share an architecture
/// whose shapes they fit, the dataset fits it, parameters are in range); poll `Location`.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", operation_id = "create_job",
    request_body = NewJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body get the first response again (kept 24 h by default); the key with another body is 422 `idempotency_key_reused`")),
    responses(
        (status = 202, description = "Queued; poll `Location`", body = JobView,
            headers(("Location" = String, description = "URL of the job"),
                    ("Retry-After" = u32, description = "Seconds to wait before polling"))),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A model, the architecture or the dataset does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is still being served (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The JSON body is over the server's limit (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request: schema, parameters, models that do not fit, or a job over the pre-flight budget (`job_over_budget`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant has its quota of queued + running jobs (`quota_exceeded`) or is over its request rate (`rate_limited`); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "The queue is full (`queue_full`); retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn create_job(
    State(app): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let Some(key) = idempotency::key_of(&headers)? else {
        return submit_job(&app, &tenant, raw).await.map(|(res, _)| res);
    };
    let hash = idempotency::request_hash(&[raw.to_string().as_bytes()]);
    match idempotency::begin(&app, &tenant, "jobs", key.clone(), &hash).await? {
        Err((stored_hash, stored)) => idempotency::replay(&key, &stored_hash, &hash, stored),
        Ok(claim) => {
            let out = submit_job(&app, &tenant, raw).await;
            let kept = out.as_ref().map(|(_, s)| s).map_err(|_| ());
            idempotency::finish(&app, claim, &hash, kept).await;
            out.map(|(res, _)| res)
        }
    }
}

async fn submit_job(
    app: &AppState,
    tenant: &Tenant,
    raw: serde_json::Value,
) -> Result<(Response, StoredResponse), ApiError> {
    let new: NewJob =
        serde_json::from_value(raw.clone()).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let job = app
        .jobs
        .submit(tenant.as_str(), new.into_request(raw))
        .await?;
    let location = format!("/v1/jobs/{}", job.id);
    let (mut res, stored) =
        idempotency::json_response(StatusCode::ACCEPTED, Some(location), &JobView::from(job))?;
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    Ok((res, stored))
}

impl PageItem for JobView {
    const PAGE_NAME: &'static str = "JobPage";
}

/// A page of jobs (newest first).
pub type JobPage = Page<JobView>;

/// List jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_jobs(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = q.limit()?;
    let jobs = app
        .db
        .list_jobs(tenant.as_str(), q.uuid_cursor()?, limit)
        .await?;
    let items = jobs.into_iter().map(JobView::from).collect();
    Ok(Json(Page::of(items, limit, |j: &JobView| j.id.to_string())))
}

/// A job's status, progress, stage timings and error.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<JobView>, ApiError> {
    let job = app
        .db
        .get_job(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    Ok(Json(job.into()))
}

/// Delete an ended job (succeeded, failed or canceled) with its report, attempts and fused
/// outputs; the blobs of its outputs and inputs go too unless another row names them. A
/// queued or running job is not deleted (409 `job_active`): cancel it first.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "delete_job",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is queued or running (`job_active`); cancel it first", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_job(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    crate::jobs::remove::delete_job(app.db.as_ref(), app.blobs.as_ref(), tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancel a job: a queued job is canceled at once; a running one stops at its next check
/// (within a second) and ends `canceled`.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancel_job",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Canceled, or asked to stop", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job had already finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_job(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let job = app
        .jobs
        .cancel(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    if job.status.is_terminal() && !(job.status == JobStatus::Canceled && job.cancel_requested) {
        return Err(ApiError::Conflict {
            code: "job_finished",
            detail: format!("job {id} already ended as {}", job.status.as_str()),
        });
    }
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// The attempt log of a job: who ran it and how each claim ended.
#[utoipa::path(get, path = "/v1/jobs/{id}/attempts", tag = "jobs", operation_id = "list_job_attempts",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Claims, oldest first", body = AttemptList),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_job_attempts(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AttemptList>, ApiError> {
    app.db
        .get_job(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    let attempts = app.db.attempts(id).await?;
    Ok(Json(AttemptList {
        items: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}
