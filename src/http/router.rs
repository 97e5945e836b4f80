//! The router: every route registered with its OpenAPI operation (utoipa-axum), the
//! middleware stack, the docs UI, and the OpenAPI document itself ([`openapi`]).

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::doc::ApiDoc;
use super::error::{ApiError, InternalDetail, PROBLEM_JSON, problem_for_status};
use super::extract::JSON_BODY_LIMIT;
use super::routes::{architectures, datasets, events, jobs, models, ops, results};
use super::state::AppState;

/// Limits the routes need.
#[derive(Clone, Copy, Debug)]
pub struct RouteLimits {
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
}

impl Default for RouteLimits {
    fn default() -> Self {
        RouteLimits {
            max_upload_bytes: 256 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
        }
    }
}

fn api_routes(limits: RouteLimits) -> OpenApiRouter<AppState> {
    let multipart_limit = usize::try_from(limits.max_upload_bytes.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let timed = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(models::get_model, models::delete_model))
        .routes(routes!(models::get_model_weights))
        .routes(routes!(
            architectures::list_architectures,
            architectures::create_architecture
        ))
        .routes(routes!(architectures::get_architecture))
        .routes(routes!(datasets::get_dataset, datasets::delete_dataset))
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job, jobs::delete_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::list_job_attempts))
        .routes(routes!(results::get_job_report))
        .routes(routes!(results::get_job_report_svg))
        .routes(routes!(results::get_job_matching_svg))
        .routes(routes!(results::get_job_fused))
        .routes(routes!(ops::get_health))
        .routes(routes!(ops::get_readiness))
        .routes(routes!(ops::get_metrics))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    // Multipart forms (a dataset; a model with its external data) are read under this limit;
    // raw bodies are capped by the staging limit instead.
    let uploads = OpenApiRouter::new()
        .routes(routes!(models::create_model, models::list_models))
        .routes(routes!(datasets::list_datasets, datasets::create_dataset))
        .layer(DefaultBodyLimit::max(multipart_limit));
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let streams = OpenApiRouter::new().routes(routes!(events::get_job_events));
    timed.merge(uploads).layer(timeout).merge(streams)
}

/// The OpenAPI document of this build (what `gmfuse openapi` prints and `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    document(api_routes(RouteLimits::default())).1
}

/// The routes and their completed OpenAPI document.
fn document(routes: OpenApiRouter<AppState>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut doc) = routes.split_for_parts();
    super::doc::complete(&mut doc);
    (api, doc)
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

/// The policy of HTML pages (the docs UI): scripts, styles and images from this origin only,
/// no framing, no plugins.
pub const HTML_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// `X-Content-Type-Options: nosniff` on every response, and [`HTML_CSP`] on HTML.
async fn security_headers(mut res: Response) -> Response {
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(HTML_CSP),
        );
    }
    res
}

/// Give every error response a problem+json body (axum's 405, timeouts, body limits…) and log
/// the hidden detail of 5xx responses.
async fn problem_bodies(res: Response) -> Response {
    let status = res.status();
    if let Some(InternalDetail(detail)) = res.extensions().get::<InternalDetail>() {
        tracing::error!(status = status.as_u16(), %detail, "request failed");
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out = problem_for_status(status).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                header::AUTHORIZATION,
            ])
            .expose_headers([
                header::LOCATION,
                header::ETAG,
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
            ]),
    )
}

/// The whole application router over `state`.
pub fn router(state: AppState, limits: RouteLimits, cors_origins: &[String]) -> Router {
    let (api, doc) = document(api_routes(limits));
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
    });
    let track = axum::middleware::from_fn_with_state(state.clone(), super::metrics::track);
    let auth = axum::middleware::from_fn_with_state(state.clone(), super::auth::authenticate);
    let mut app = api
        .route_layer(auth)
        .merge(
            SwaggerUi::new("/docs")
                .url("/openapi.json", doc)
                // No validator badge: it would send the document to validator.swagger.io.
                .config(Config::default().validator_url("none")),
        )
        .route("/", axum::routing::get(super::ui::index))
        .route("/ui/{file}", axum::routing::get(super::ui::asset))
        .route_layer(axum::middleware::from_fn(super::metrics::tag_route))
        .fallback(route_not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(super::head::check_head))
        // Around the fallback too: requests no route matched are counted (`unmatched`).
        .layer(track)
        .layer(axum::middleware::map_response(problem_bodies))
        .layer(axum::middleware::map_response(security_headers))
        .layer(CompressionLayer::new());
    if let Some(cors) = cors(cors_origins) {
        app = app.layer(cors);
    }
    app.layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
