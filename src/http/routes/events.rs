//! `GET /v1/jobs/{id}/events`: Server-Sent Events with a job's status and progress, in order,
//! ending after the terminal status. The job row is polled, so events reach clients of any API
//! process, whichever process runs the job.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::jobs::{JobStatusDoc, ProgressView, stage_name};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::ApiPath;
use crate::http::state::AppState;
use crate::store::{Db, JobRecord, JobStatus};

/// How often the job row is read.
const POLL: Duration = Duration::from_millis(100);

/// The name of an event of `GET /v1/jobs/{id}/events`.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobEventName {
    /// The status or attempt changed (the first event is always one).
    Status,
    /// The stage or its fraction moved.
    Progress,
}

impl JobEventName {
    fn as_str(self) -> &'static str {
        match self {
            JobEventName::Status => "status",
            JobEventName::Progress => "progress",
        }
    }
}

/// The `data` of an event of `GET /v1/jobs/{id}/events` (JSON).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    pub status: JobStatusDoc,
    pub attempt: u32,
    pub progress: Option<ProgressView>,
}

/// What was last sent, to send only changes.
#[derive(Clone, PartialEq)]
struct Seen {
    status: JobStatus,
    attempt: u32,
    progress: Option<(String, u64)>,
}

fn seen(job: &JobRecord) -> Seen {
    Seen {
        status: job.status,
        attempt: job.attempt,
        progress: job
            .progress
            .map(|p| (stage_name(p.stage), (p.fraction * 1e6).round() as u64)),
    }
}

fn event(kind: JobEventName, id: u64, job: &JobRecord) -> Event {
    let data = JobEvent {
        status: job.status.into(),
        attempt: job.attempt,
        progress: job.progress.map(|p| ProgressView {
            stage: stage_name(p.stage),
            fraction: p.fraction,
        }),
    };
    Event::default()
        .event(kind.as_str())
        .id(id.to_string())
        .json_data(data)
        .unwrap_or_else(|_| Event::default().comment("unserializable"))
}

struct Cursor {
    db: std::sync::Arc<dyn Db>,
    tenant: Tenant,
    id: Uuid,
    shutdown: tokio_util::sync::CancellationToken,
    last: Option<Seen>,
    seq: u64,
    done: bool,
    first: bool,
}

/// Stream a job's events: `status` when the status or attempt changes (the first event is
/// always a `status`), `progress` when the stage or fraction moves. The stream ends after the
/// terminal status.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", operation_id = "get_job_events",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "A `text/event-stream` (the body is SSE text, read it as a string or a stream): events named `status` or `progress` (`JobEventName`), each with an increasing `id` and a `data` line holding one `JobEvent` as JSON. It ends after the terminal status.",
            content_type = "text/event-stream", body = String),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job_events(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    app.db
        .get_job(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))?;
    let cursor = Cursor {
        db: app.db.clone(),
        tenant,
        id,
        shutdown: app.shutdown.clone(),
        last: None,
        seq: 0,
        done: false,
        first: true,
    };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if c.done {
                return None;
            }
            if !c.first {
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = c.shutdown.cancelled() => return None,
                }
            }
            c.first = false;
            let job = match c.db.get_job(c.tenant.as_str(), c.id).await {
                Ok(Some(j)) => j,
                Ok(None) | Err(_) => return None,
            };
            let now = seen(&job);
            let kind = match &c.last {
                None => JobEventName::Status,
                Some(prev) if prev.status != now.status || prev.attempt != now.attempt => {
                    JobEventName::Status
                }
                Some(prev) if prev.progress != now.progress => JobEventName::Progress,
                Some(_) => continue,
            };
            c.seq += 1;
            c.done = job.status.is_terminal();
            c.last = Some(now);
            return Some((Ok(event(kind, c.seq, &job)), c));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
