//! Errors as RFC 9457 problem details: one [`ApiError`] enum, each variant with its status and
//! a stable `code` (no catch-all arm), rendered as `application/problem+json` [`Problem`].
//! Details of 5xx errors are not shown to clients; they travel in a response extension to the
//! logging middleware.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object with a stable machine-readable `code`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:gmfuse:problem:model_not_found",
    "title": "Not Found",
    "status": 404,
    "detail": "model 0192d4e2-7a4b-7cc1-8e0c-3f5a1b2c3d4e does not exist",
    "code": "model_not_found"
}))]
pub struct Problem {
    /// `urn:gmfuse:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable identifier of the error, for programs.
    pub code: String,
}

impl Problem {
    /// A problem for `status` with `code` and `detail`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:gmfuse:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// The hidden detail of a 5xx response, for the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalDetail(pub String);

/// Every error the API returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body does not match the schema: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error("invalid path parameter: {0}")]
    InvalidPath(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("the body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    UploadInterrupted(String),
    #[error("invalid safetensors file: {0}")]
    InvalidSafetensors(String),
    /// An ONNX model that cannot be parsed (400).
    #[error("{0}")]
    InvalidOnnx(String),
    /// A well-formed ONNX model that uses what gmfuse does not support (422).
    #[error("{0}")]
    UnsupportedOnnx(String),
    #[error("invalid architecture: {0}")]
    InvalidArchitecture(String),
    #[error("{0}")]
    ShapeMismatch(String),
    #[error("{0}")]
    ArchitectureMismatch(String),
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),
    #[error("{0}")]
    DatasetShapeMismatch(String),
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// The job's pre-flight estimate is over this service's budget.
    #[error("{0}")]
    JobOverBudget(String),
    /// This process is at a capacity limit (uploads in flight, queue depth): retry later.
    #[error("{detail}")]
    Busy {
        code: &'static str,
        detail: String,
        /// Seconds, sent as `Retry-After`.
        retry_after: u32,
    },
    /// A tenant limit: its request rate (`rate_limited`) or a quota (`quota_exceeded`).
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: String,
        /// Seconds, sent as `Retry-After`.
        retry_after: u32,
    },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    IdempotencyInFlight(String),
    #[error("{0}")]
    NotReady(String),
    /// The disk is full (ENOSPC): the upload or output could not be written.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status and the stable code of each variant.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound { what, .. } => (StatusCode::NOT_FOUND, not_found_code(what)),
            ApiError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "route_not_found"),
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UploadInterrupted(_) => (StatusCode::BAD_REQUEST, "upload_interrupted"),
            ApiError::InvalidSafetensors(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_safetensors")
            }
            ApiError::InvalidOnnx(_) => (StatusCode::BAD_REQUEST, "invalid_onnx"),
            ApiError::UnsupportedOnnx(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_onnx"),
            ApiError::InvalidArchitecture(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_architecture")
            }
            ApiError::ShapeMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "shape_mismatch"),
            ApiError::ArchitectureMismatch(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "architecture_mismatch")
            }
            ApiError::InvalidDataset(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_dataset"),
            ApiError::DatasetShapeMismatch(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "dataset_shape_mismatch")
            }
            ApiError::InvalidParameters(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameters")
            }
            ApiError::JobOverBudget(_) => (StatusCode::UNPROCESSABLE_ENTITY, "job_over_budget"),
            ApiError::Busy { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidIdempotencyKey(_) => {
                (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
            }
            ApiError::IdempotencyKeyReused(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            ApiError::IdempotencyInFlight(_) => (StatusCode::CONFLICT, "idempotency_in_flight"),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// A 404 for `what` (`model`, `job`, …) called `id`.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        ApiError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "model" => "model_not_found",
        "job" => "job_not_found",
        "architecture" => "architecture_not_found",
        "dataset" => "dataset_not_found",
        _ => "not_found",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Busy {
            detail,
            retry_after,
            ..
        }
        | ApiError::TooManyRequests {
            detail,
            retry_after,
            ..
        } = &self
        {
            let mut res = Problem::new(status, code, detail.clone()).into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            return res;
        }
        if status.is_server_error() {
            let mut res =
                Problem::new(status, code, "internal error; see the server log").into_response();
            if let ApiError::NotReady(d) = &self {
                res = Problem::new(status, code, d.clone()).into_response();
            }
            if let ApiError::InsufficientStorage(_) = &self {
                let detail = "the server's disk is full; nothing was stored, retry later";
                res = Problem::new(status, code, detail).into_response();
            }
            res.extensions_mut()
                .insert(InternalDetail(self.to_string()));
            return res;
        }
        let mut res = Problem::new(status, code, self.to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gmfuse\""),
            );
        }
        res
    }
}

/// A problem for a status produced outside the handlers (router, middleware layers).
pub fn problem_for_status(status: StatusCode) -> Problem {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("route_not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "the route does not accept this method",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "the content type is not accepted")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the service is unavailable"),
        StatusCode::INSUFFICIENT_STORAGE => ("insufficient_storage", "the server's disk is full"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "the header fields are too large")
        }
        s if s.is_server_error() => ("internal_error", "internal error; see the server log"),
        _ => ("bad_request", "the request was not accepted"),
    };
    Problem::new(status, code, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_detail() {
        let res = ApiError::Internal("disk on fire at /var/x".into()).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let detail = res.extensions().get::<InternalDetail>().unwrap();
        assert!(detail.0.contains("disk on fire"));
    }

    #[test]
    fn busy_answers_503_with_retry_after_and_its_detail() {
        let res = ApiError::Busy {
            code: "uploads_busy",
            detail: "4 uploads are in progress".into(),
            retry_after: 2,
        }
        .into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(res.extensions().get::<InternalDetail>().is_none());
    }

    #[test]
    fn a_problem_names_its_code_in_its_type() {
        let p = Problem::new(StatusCode::NOT_FOUND, "job_not_found", "x");
        assert_eq!(p.kind, "urn:gmfuse:problem:job_not_found");
        assert_eq!(p.title, "Not Found");
    }
}
