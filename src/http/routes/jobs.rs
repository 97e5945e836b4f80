//! `/v1/jobs`: submit (validated synchronously, then 202), list, status, cancel and the
//! attempt log. Progress events are in `events.rs`, results in `results.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::Items;
use crate::engine::pipeline::{Compat, FusionParams, Method};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::jobs::JobRequest;
use crate::store::{AttemptRecord, JobRecord, JobStatus};

/// Seconds a client should wait between status polls.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Which fusion to run; the vanilla `none` curve is always reported beside `gamf`.
#[derive(Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MethodDoc {
    /// Align model 1 onto model 2 by graph matching, then interpolate.
    #[default]
    Gamf,
    /// Interpolate without alignment.
    None,
}

impl From<MethodDoc> for Method {
    fn from(m: MethodDoc) -> Self {
        match m {
            MethodDoc::Gamf => Method::Gamf,
            MethodDoc::None => Method::None,
        }
    }
}

impl From<Method> for MethodDoc {
    fn from(m: Method) -> Self {
        match m {
            Method::Gamf => MethodDoc::Gamf,
            Method::None => MethodDoc::None,
        }
    }
}

/// Reproduce a known implementation's conventions instead of gmfuse's own.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CompatDoc {
    /// pygmtools' "Model Fusion by Graph Matching" example, its bug included.
    PygmtoolsExample,
}

/// Spectral matching options.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SolverOptions {
    /// Power iterations at most (1..=10000, default 50).
    #[schema(example = 50, minimum = 1, maximum = 10000)]
    pub max_iter: Option<usize>,
    /// Stop when the eigenvector moves less than this (default 1e-5).
    #[schema(example = 1e-5, exclusive_minimum = 0.0)]
    pub tol: Option<f64>,
}

/// A fusion job to run.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "models": ["0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e", "0192d4e2-7b10-7f00-9a11-22b3c4d5e6f7"],
    "architecture": "mnist-cnn",
    "dataset": "mnist-test",
    "method": "gamf",
    "proportions": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
}))]
pub struct NewJob {
    /// Two model ids; model 1 is aligned onto model 2, and proportion α is model 2's share.
    #[schema(min_items = 2, max_items = 2)]
    pub models: Vec<Uuid>,
    /// Defaults to the architecture recorded for both models.
    pub architecture: Option<String>,
    /// `mnist-test` (default) or an uploaded dataset's id.
    pub dataset: Option<String>,
    #[serde(default)]
    pub method: MethodDoc,
    pub compat: Option<CompatDoc>,
    /// Proportions α in [0, 1] to evaluate (1 to 101 of them; default 0, 0.1, …, 1).
    #[schema(min_items = 1, max_items = 101)]
    pub proportions: Option<Vec<f64>>,
    #[serde(default)]
    pub solver: SolverOptions,
}

impl NewJob {
    fn into_request(self, raw: serde_json::Value) -> JobRequest {
        let defaults = FusionParams::default();
        JobRequest {
            models: self.models,
            architecture: self.architecture,
            dataset: self.dataset.unwrap_or_else(|| "mnist-test".into()),
            params: FusionParams {
                method: self.method.into(),
                compat: self
                    .compat
                    .map(|CompatDoc::PygmtoolsExample| Compat::PygmtoolsExample),
                proportions: self.proportions.unwrap_or(defaults.proportions),
                max_iter: self.solver.max_iter.unwrap_or(defaults.max_iter),
                tol: self.solver.tol.unwrap_or(defaults.tol),
            },
            raw,
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatusDoc {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl From<JobStatus> for JobStatusDoc {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Queued => JobStatusDoc::Queued,
            JobStatus::Running => JobStatusDoc::Running,
            JobStatus::Succeeded => JobStatusDoc::Succeeded,
            JobStatus::Failed => JobStatusDoc::Failed,
            JobStatus::Canceled => JobStatusDoc::Canceled,
        }
    }
}

/// The stage a running job is in.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    /// `validate`, `affinity`, `matching`, `evaluate_inputs`, `evaluate_gamf` or `evaluate_none`.
    #[schema(example = "matching")]
    pub stage: String,
    /// Share of the stage done, 0..=1.
    #[schema(example = 0.4)]
    pub fraction: f64,
}

/// Seconds one stage took.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TimingView {
    #[schema(example = "affinity")]
    pub stage: String,
    #[schema(example = 0.42)]
    pub seconds: f64,
}

/// Why a job failed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobErrorView {
    #[schema(example = "invalid_model")]
    pub code: String,
    pub message: String,
}

/// URLs of a job's resources.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub events: String,
    pub cancel: String,
    pub report: String,
    pub report_svg: String,
    pub matching_svg: String,
    pub fused: String,
}

/// A job's status and progress.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub status: JobStatusDoc,
    /// Claims so far (a job left running by a dead worker is claimed again).
    pub attempt: u32,
    pub max_attempts: u32,
    pub cancel_requested: bool,
    pub progress: Option<ProgressView>,
    /// Seconds per stage: the stages finished so far while running, the engine's figures once
    /// succeeded.
    pub timings: Vec<TimingView>,
    pub error: Option<JobErrorView>,
    pub models: [Uuid; 2],
    #[schema(example = "mnist-cnn")]
    pub architecture: String,
    #[schema(example = "mnist-test")]
    pub dataset: String,
    pub method: MethodDoc,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub links: JobLinks,
}

/// The name the API shows for an engine stage.
pub fn stage_name(stage: crate::engine::pipeline::Stage) -> String {
    match serde_json::to_value(stage) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{stage:?}"),
    }
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        let base = format!("/v1/jobs/{}", j.id);
        JobView {
            id: j.id,
            status: j.status.into(),
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            cancel_requested: j.cancel_requested,
            progress: j.progress.map(|p| ProgressView {
                stage: stage_name(p.stage),
                fraction: p.fraction,
            }),
            // While running: the stages finished so far; once done, the engine's own laps.
            timings: match &j.report {
                Some(r) => r
                    .timings
                    .iter()
                    .map(|(&stage, &seconds)| TimingView {
                        stage: stage_name(stage),
                        seconds,
                    })
                    .collect(),
                None => j
                    .timings
                    .iter()
                    .map(|t| TimingView {
                        stage: stage_name(t.stage),
                        seconds: t.seconds,
                    })
                    .collect(),
            },
            error: j.error.map(|e| JobErrorView {
                code: e.code,
                message: e.message,
            }),
            models: j.spec.models,
            architecture: j.spec.architecture.name.clone(),
            dataset: j.spec.dataset.id(),
            method: j.spec.params.method.into(),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            links: JobLinks {
                events: format!("{base}/events"),
                cancel: format!("{base}/cancel"),
                report: format!("{base}/report"),
                report_svg: format!("{base}/report.svg"),
                matching_svg: format!("{base}/matching.svg"),
                fused: format!("{base}/fused"),
                self_: base,
            },
        }
    }
}

/// Queue a fusion job. The request is validated now (models exist and share an architecture
/// whose shapes they fit, the dataset fits it, parameters are in range); poll `Location`.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", operation_id = "create_job",
    request_body = NewJob,
    responses(
        (status = 202, description = "Queued; poll `Location`", body = JobView,
            headers(("Location" = String, description = "URL of the job"),
                    ("Retry-After" = u32, description = "Seconds to wait before polling"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A model, the architecture or the dataset does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request: schema, parameters, or models that do not fit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_job(
    State(app): State<AppState>,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let new: NewJob =
        serde_json::from_value(raw.clone()).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let job = app.jobs.submit(new.into_request(raw)).await?;
    let location = format!("/v1/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, location),
            (header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()),
        ],
        Json(JobView::from(job)),
    )
        .into_response())
}

/// Cursor paging of the job list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Jobs per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// A page of jobs, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// List jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_jobs(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1..=100, got {limit}"
        )));
    }
    let jobs = app.db.list_jobs(q.cursor, limit).await?;
    let next_cursor = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(Json(JobPage {
        items: jobs.into_iter().map(JobView::from).collect(),
        next_cursor,
    }))
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
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<JobView>, ApiError> {
    let job = app
        .db
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    Ok(Json(job.into()))
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
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let job = app
        .jobs
        .cancel(id)
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

/// One claim of a job.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    /// Worker that claimed it: `<pid>-<random>/<slot>`.
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `canceled`, `requeued`, `expired`, or absent while it runs.
    pub outcome: Option<String>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        AttemptView {
            attempt: a.attempt,
            worker: a.worker,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
        }
    }
}

/// The attempt log of a job: who ran it and how each claim ended.
#[utoipa::path(get, path = "/v1/jobs/{id}/attempts", tag = "jobs", operation_id = "list_job_attempts",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Claims, oldest first", body = Items<AttemptView>),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_job_attempts(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Items<AttemptView>>, ApiError> {
    app.db
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    let attempts = app.db.attempts(id).await?;
    Ok(Json(Items::new(
        attempts.into_iter().map(AttemptView::from).collect(),
    )))
}
