//! The process's Prometheus metrics, kept by `metrics-exporter-prometheus` in a recorder of
//! this process's own (not the global one, so several services in one test process keep apart
//! counts). What is recorded:
//!
//! - `gmfuse_http_requests_total{method,route,status}` (counter) and
//!   `gmfuse_http_request_duration_seconds{method,route,status}` (histogram, [`HTTP_BUCKETS`]):
//!   every request, by its matched route template (`unmatched` when none matched — 404s are
//!   counted) and a method from a fixed set ([`method_label`]), so no request can add series;
//! - `gmfuse_job_duration_seconds{outcome}` (histogram, [`JOB_BUCKETS`]): attempts run here;
//! - `gmfuse_jobs{status}`, `gmfuse_queue_depth`, `gmfuse_jobs_running_here` (gauges), set from
//!   the database at scrape time.

use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
use ::metrics::{gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::store::JobStatus;

/// Upper bounds of the request-latency buckets, in seconds.
pub const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
/// Upper bounds of the job-duration buckets, in seconds.
pub const JOB_BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];

const REQUESTS: &str = "gmfuse_http_requests_total";
const LATENCY: &str = "gmfuse_http_request_duration_seconds";
const JOB_DURATION: &str = "gmfuse_job_duration_seconds";

/// The HTTP methods that get a label of their own; every other method string is `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The metrics of one process.
pub struct Metrics {
    recorder: PrometheusRecorder,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with the histograms' buckets and every metric's help text.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &HTTP_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(JOB_DURATION.into()), &JOB_BUCKETS)
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let metrics = Metrics { recorder };
        metrics.with(|| {
            describe_counter!(REQUESTS, "HTTP requests served.");
            describe_histogram!(LATENCY, Unit::Seconds, "Time to serve an HTTP request.");
            describe_histogram!(
                JOB_DURATION,
                Unit::Seconds,
                "Duration of job attempts run by this process."
            );
            describe_gauge!("gmfuse_jobs", "Jobs in the database by status.");
            describe_gauge!("gmfuse_queue_depth", "Jobs waiting to be claimed.");
            describe_gauge!("gmfuse_jobs_running_here", "Jobs running in this process.");
            // Shown (empty) from the start, so the metric's type is known before any job.
            let _ = histogram!(JOB_DURATION, "outcome" => "succeeded");
        });
        metrics
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        with_local_recorder(&self.recorder, f)
    }

    /// Count one request and its latency. `route` must be a route template or `unmatched`.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = [
            ("method", method_label(method).to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        self.with(|| {
            counter!(REQUESTS, &labels).increment(1);
            histogram!(LATENCY, &labels).record(seconds);
        });
    }

    /// Record one finished job attempt (`outcome`: the outcome's fixed name).
    pub fn observe_job(&self, outcome: &str, seconds: f64) {
        let outcome = outcome.to_string();
        self.with(|| histogram!(JOB_DURATION, "outcome" => outcome).record(seconds));
    }

    /// The exposition text, with the gauges set from `jobs` (count per status) and the jobs
    /// running in this process.
    pub fn render(&self, jobs: &[(JobStatus, u64)], running_here: usize) -> String {
        self.with(|| {
            for (status, n) in jobs {
                gauge!("gmfuse_jobs", "status" => status.as_str()).set(*n as f64);
            }
            let queued = jobs
                .iter()
                .find(|(s, _)| *s == JobStatus::Queued)
                .map_or(0, |(_, n)| *n);
            gauge!("gmfuse_queue_depth").set(queued as f64);
            gauge!("gmfuse_jobs_running_here").set(running_here as f64);
        });
        let handle = self.recorder.handle();
        handle.run_upkeep();
        handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_a_latency_histogram_jobs_and_queue_depth() {
        let m = Metrics::new();
        m.observe_request("GET", "/v1/jobs/{id}", 200, 0.003);
        m.observe_request("GET", "/v1/jobs/{id}", 200, 0.02);
        m.observe_request("BREW", "unmatched", 404, 0.0001);
        let jobs = [(JobStatus::Queued, 3), (JobStatus::Succeeded, 1)];
        let text = m.render(&jobs, 0);
        let get = r#"method="GET",route="/v1/jobs/{id}",status="200""#;
        assert!(
            text.contains(&format!("gmfuse_http_requests_total{{{get}}} 2")),
            "{text}"
        );
        assert!(text.contains("# TYPE gmfuse_http_request_duration_seconds histogram"));
        // 0.003 s is in the 0.005 bucket, 0.02 s from the 0.025 bucket on.
        assert!(
            text.contains(&format!(
                "gmfuse_http_request_duration_seconds_bucket{{{get},le=\"0.005\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "gmfuse_http_request_duration_seconds_bucket{{{get},le=\"0.025\"}} 2"
        )));
        assert!(text.contains(&format!(
            "gmfuse_http_request_duration_seconds_count{{{get}}} 2"
        )));
        assert!(text.contains(
            r#"gmfuse_http_requests_total{method="other",route="unmatched",status="404"} 1"#
        ));
        assert!(text.contains("gmfuse_jobs{status=\"queued\"} 3"));
        assert!(text.contains("gmfuse_queue_depth 3"));
        assert!(text.contains("# TYPE gmfuse_job_duration_seconds histogram"));
    }

    #[test]
    fn only_the_fixed_methods_get_a_label_of_their_own() {
        assert_eq!(method_label("DELETE"), "DELETE");
        assert_eq!(method_label("get"), "other");
        assert_eq!(method_label("X-RANDOM-1234"), "other");
    }
}
