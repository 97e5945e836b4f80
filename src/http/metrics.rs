//! Prometheus text exposition for `/metrics`: HTTP requests by route and status (counted by a
//! middleware), jobs by status and queue depth (read from the database at scrape time), and job
//! durations (recorded by this process's workers).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::AppState;
use crate::jobs::metrics::{BUCKETS, Histogram};
use crate::store::JobStatus;

/// (method, route template, status).
type RequestKey = (String, String, u16);

/// Request counts and total seconds by [`RequestKey`].
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<RequestKey, (u64, f64)>>,
}

impl HttpMetrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let e = m
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        e.0 += 1;
        e.1 += seconds;
    }
}

/// Middleware: count every request under its route template (`unmatched` for unknown paths).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe(
        &method,
        &route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition text.
pub fn render(
    http: &HttpMetrics,
    jobs: &[(JobStatus, u64)],
    durations: &[(String, Histogram)],
    running_here: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP gmfuse_http_requests_total HTTP requests served."
    );
    let _ = writeln!(out, "# TYPE gmfuse_http_requests_total counter");
    let requests = http
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((method, route, status), (n, _)) in &requests {
        let _ = writeln!(
            out,
            "gmfuse_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(method),
            label(route)
        );
    }
    let _ = writeln!(
        out,
        "# HELP gmfuse_http_request_duration_seconds_sum Seconds spent serving requests."
    );
    let _ = writeln!(
        out,
        "# TYPE gmfuse_http_request_duration_seconds_sum counter"
    );
    for ((method, route, status), (_, s)) in &requests {
        let _ = writeln!(
            out,
            "gmfuse_http_request_duration_seconds_sum{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {s}",
            label(method),
            label(route)
        );
    }
    let _ = writeln!(out, "# HELP gmfuse_jobs Jobs in the database by status.");
    let _ = writeln!(out, "# TYPE gmfuse_jobs gauge");
    for (status, n) in jobs {
        let _ = writeln!(out, "gmfuse_jobs{{status=\"{}\"}} {n}", status.as_str());
    }
    let queued = jobs
        .iter()
        .find(|(s, _)| *s == JobStatus::Queued)
        .map_or(0, |(_, n)| *n);
    let _ = writeln!(out, "# HELP gmfuse_queue_depth Jobs waiting to be claimed.");
    let _ = writeln!(out, "# TYPE gmfuse_queue_depth gauge");
    let _ = writeln!(out, "gmfuse_queue_depth {queued}");
    let _ = writeln!(
        out,
        "# HELP gmfuse_jobs_running_here Jobs running in this process."
    );
    let _ = writeln!(out, "# TYPE gmfuse_jobs_running_here gauge");
    let _ = writeln!(out, "gmfuse_jobs_running_here {running_here}");
    let _ = writeln!(
        out,
        "# HELP gmfuse_job_duration_seconds Duration of job attempts run by this process."
    );
    let _ = writeln!(out, "# TYPE gmfuse_job_duration_seconds histogram");
    for (outcome, h) in durations {
        let o = label(outcome);
        for (bound, n) in BUCKETS.iter().zip(h.cumulative()) {
            let _ = writeln!(
                out,
                "gmfuse_job_duration_seconds_bucket{{outcome=\"{o}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "gmfuse_job_duration_seconds_bucket{{outcome=\"{o}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "gmfuse_job_duration_seconds_sum{{outcome=\"{o}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "gmfuse_job_duration_seconds_count{{outcome=\"{o}\"}} {}",
            h.count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_jobs_and_queue_depth() {
        let http = HttpMetrics::default();
        http.observe("GET", "/v1/jobs/{id}", 200, 0.01);
        http.observe("GET", "/v1/jobs/{id}", 200, 0.03);
        let jobs = [(JobStatus::Queued, 3), (JobStatus::Succeeded, 1)];
        let text = render(&http, &jobs, &[], 0);
        assert!(text.contains(
            "gmfuse_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\",status=\"200\"} 2"
        ));
        assert!(text.contains("gmfuse_jobs{status=\"queued\"} 3"));
        assert!(text.contains("gmfuse_queue_depth 3"));
    }
}
