//! Request metrics: [`tag_route`] (a route layer) marks each response with the route template
//! that served it, and [`track`] (a layer around the whole router, so requests no route matched
//! are seen too) counts every request and its latency under that template — `unmatched` when
//! none — in the process's [`crate::telemetry::Metrics`], and writes the access log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::AppState;

/// The route template that served a response (a response extension).
#[derive(Clone, Debug)]
pub struct RouteTemplate(pub String);

/// Route layer: record the matched route template on the response.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut res = next.run(req).await;
    if let Some(route) = route {
        res.extensions_mut().insert(RouteTemplate(route));
    }
    res
}

/// Layer: count the request under its route template, method and status, time it, and log
/// one access line (request id, method, route, status, latency in ms) at the info level.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = crate::telemetry::method_label(req.method().as_str());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    let route = res
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str());
    let status = res.status().as_u16();
    state
        .jobs
        .metrics
        .observe_request(method, route, status, seconds);
    tracing::info!(
        target: "gmfuse::access",
        request_id = %request_id,
        method,
        route,
        status,
        latency_ms = seconds * 1000.0,
        "request"
    );
    res
}
