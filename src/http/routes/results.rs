//! A succeeded job's results: the report (JSON), its two plots (SVG) and the fused weights
//! (safetensors, computed on demand, with an ETag).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::engine::pipeline::{FusionReport, MethodId, Repair};
use crate::engine::solvers::SolverId;
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::report::ReportView;
use crate::http::state::AppState;
use crate::jobs::fused::{Fused, WEIGHTED_AVERAGE};
use crate::store::{JobRecord, JobStatus, ModelFormat};

async fn succeeded(
    app: &AppState,
    tenant: &Tenant,
    id: Uuid,
) -> Result<(JobRecord, FusionReport), ApiError> {
    let job = app
        .db
        .get_job(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    match (job.status, job.report.clone()) {
        (JobStatus::Succeeded, Some(report)) => Ok((job, report)),
        (status, _) => Err(ApiError::Conflict {
            code: "job_not_succeeded",
            detail: format!(
                "job {id} is {}; results exist once it has succeeded",
                status.as_str()
            ),
        }),
    }
}

/// The report: input accuracies, one curve per method plus the `none` baseline (accuracy and
/// loss per α), the best method and α, one matching per aligning method (objective per
/// iteration, permutations, seconds), stage timings, input sha256s and the request.
#[utoipa::path(get, path = "/v1/jobs/{id}/report", tag = "results", operation_id = "get_job_report",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The report", body = ReportView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job_report(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReportView>, ApiError> {
    let (job, report) = succeeded(&app, &tenant, id).await?;
    Ok(Json(ReportView::new(&job, &report)))
}

fn svg(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        body,
    )
        .into_response()
}

/// Accuracy against proportion α for every method of the job and `none`, with the two input
/// models as dashed lines.
#[utoipa::path(get, path = "/v1/jobs/{id}/report.svg", tag = "results", operation_id = "get_job_report_svg",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "SVG plot", content_type = "image/svg+xml", body = String),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job_report_svg(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let (_, report) = succeeded(&app, &tenant, id).await?;
    Ok(svg(crate::http::plots::accuracy(&report)?))
}

/// Which method's matching to draw.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatchingQuery {
    /// An aligning method the job ran; defaults to the first (`gamf` when `solver` is given).
    pub method: Option<MethodId>,
    /// GAMF's QAP solver, one the job ran; defaults to the first.
    pub solver: Option<SolverId>,
}

/// The method and solver a query names: with a solver, the method is GAMF (the only one that
/// has solvers); without a method, the job's first.
fn method_and_solver(
    method: Option<MethodId>,
    solver: Option<SolverId>,
    first: MethodId,
) -> Result<(MethodId, Option<SolverId>), ApiError> {
    match (method, solver) {
        (Some(m), Some(s)) if m != MethodId::Gamf => Err(ApiError::InvalidParameters(format!(
            "solver `{s}` applies to method `gamf` only, not `{m}`"
        ))),
        (m, Some(s)) => Ok((m.unwrap_or(MethodId::Gamf), Some(s))),
        (m, None) => Ok((m.unwrap_or(first), None)),
    }
}

/// The matching matrix between the two models' channels, block by layer.
#[utoipa::path(get, path = "/v1/jobs/{id}/matching.svg", tag = "results", operation_id = "get_job_matching_svg",
    params(("id" = Uuid, Path, description = "Job id"), MatchingQuery),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "SVG plot", content_type = "image/svg+xml", body = String),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded or ran without matching", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `solver` with a method other than `gamf` (`invalid_parameters`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job_matching_svg(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MatchingQuery>,
) -> Result<Response, ApiError> {
    let (_, report) = succeeded(&app, &tenant, id).await?;
    let first = report.matchings.first().ok_or_else(|| ApiError::Conflict {
        code: "no_matching",
        detail: format!("job {id} ran with method `none` only: there is no matching"),
    })?;
    let (method, solver) = method_and_solver(q.method, q.solver, first.method)?;
    let matching = report
        .matching_by(method, solver)
        .ok_or_else(|| ApiError::Conflict {
            code: "no_matching",
            detail: match solver {
                Some(s) => format!("job {id} did not run method `{method}` with solver `{s}`"),
                None => format!("job {id} did not run the aligning method `{method}`"),
            },
        })?;
    Ok(svg(crate::http::plots::matching(matching)?))
}

/// Which fused model to download.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FusedQuery {
    /// Model 2's share α in [0, 1]; defaults to the report's best proportion. Jobs of three or
    /// more models have no proportion (their fused model is the weighted average): leave it out.
    #[param(example = 0.2, minimum = 0.0, maximum = 1.0)]
    pub proportion: Option<f64>,
    /// Defaults to the job's first method (`gamf` when `solver` is given).
    pub method: Option<MethodId>,
    /// GAMF's QAP solver, one the job ran; defaults to the first. Only the first solver's
    /// files are stored; another's are computed for the request.
    pub solver: Option<SolverId>,
    /// `safetensors` (default), or `onnx` for a job of ONNX models: the last model's graph
    /// (model 2 of a pair) with the fused initializers.
    pub format: Option<ModelFormat>,
    /// `none`, or the job's own `repair`: the fused model as its curve's `repaired` point
    /// scored it (computed for the request, not stored). Defaults to the report's best
    /// point's repair when the download is that point (method, solver and proportion), else
    /// `none` — so the default download of a job whose best point is repaired is repaired.
    pub repair: Option<Repair>,
}

/// The repair a download applies: `asked`, checked against the job's, or by default the best
/// point's when the download is the best point.
fn download_repair(
    report: &FusionReport,
    (method, solver): (MethodId, Option<SolverId>),
    proportion: f64,
    asked: Option<Repair>,
) -> Result<Repair, ApiError> {
    let ran = report.params.repair;
    match asked {
        Some(r) if r.is_none() || (r == ran && report.best.proportion.is_some()) => Ok(r),
        Some(r) => Err(ApiError::InvalidParameters(format!(
            "repair `{r}`: this job can give `none` or its own repair `{ran}` (jobs of two models)"
        ))),
        None => {
            let best = &report.best;
            let solver = report.matching_by(method, solver).and_then(|m| m.solver);
            let is_best =
                (best.method, best.solver, best.proportion) == (method, solver, Some(proportion));
            Ok(if is_best { best.repair } else { Repair::None })
        }
    }
}

/// Fused weights as safetensors: the inputs' tensor names and dtypes, `__metadata__` with
/// `gmfuse.job_id`, `gmfuse.method`, `gmfuse.proportion` and `gmfuse.input_sha256`.
/// The ETag is the file's sha256. The job's own proportions are stored once computed; any
/// other proportion is computed for the request and not kept. With `format=onnx` (jobs of ONNX
/// models) the fused model is the last model's ONNX file with the fused initializers, every
/// other field kept (`application/onnx`).
#[utoipa::path(get, path = "/v1/jobs/{id}/fused", tag = "results", operation_id = "get_job_fused",
    params(("id" = Uuid, Path, description = "Job id"), FusedQuery),
    responses(
        (status = 200, description = "The fused model", content((inline(super::Binary) = "application/octet-stream"), (inline(super::Binary) = "application/onnx")),
            headers(("ETag" = String, description = "Quoted sha256 of the file"))),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "Bad query, or the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Proportion outside [0, 1], a proportion for a job of three or more models, a `solver` with a method other than `gamf`, a `repair` other than `none` and the job's own, or `format=onnx` for a job of safetensors models", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "The server's disk is full (`insufficient_storage`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job_fused(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<FusedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job, report) = succeeded(&app, &tenant, id).await?;
    let (method, solver) = method_and_solver(q.method, q.solver, job.spec.params.primary())?;
    let (proportion, label) = match (report.best.proportion, q.proportion) {
        (None, Some(_)) => {
            return Err(ApiError::InvalidParameters(format!(
                "job {id} fuses {} models into their weighted average: it has no proportion",
                job.spec.models.len()
            )));
        }
        (None, None) => (WEIGHTED_AVERAGE, "average".to_string()),
        (Some(best), asked) => {
            let p = asked.unwrap_or(best);
            if !(0.0..=1.0).contains(&p) {
                return Err(ApiError::InvalidParameters(format!(
                    "proportion {p} is outside [0, 1]"
                )));
            }
            (p, p.to_string())
        }
    };
    let repair = download_repair(&report, (method, solver), proportion, q.repair)?;
    let solver_label = solver.map(|s| format!("-{s}")).unwrap_or_default();
    let repair_label = match repair {
        Repair::None => String::new(),
        r => format!("-{r}"),
    };
    let format = q.format.unwrap_or_default();
    let filename = format!(
        "fused-{id}-{method}{solver_label}-{label}{repair_label}.{}",
        format.extension()
    );
    if format == ModelFormat::Onnx {
        let (bytes, sha256) = app
            .jobs
            .fused_onnx(&job, (method, solver), proportion, repair)
            .await?;
        return super::serve_bytes(&headers, bytes, &sha256, &filename);
    }
    match app
        .jobs
        .fused(&job, (method, solver), proportion, repair)
        .await?
    {
        Fused::Stored(output) => super::serve_blob(&app, &headers, &output.sha256, &filename).await,
        Fused::Transient { bytes, sha256 } => {
            super::serve_bytes(&headers, bytes, &sha256, &filename)
        }
    }
}
