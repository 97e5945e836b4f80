//! Limits on a request's head, answered as problem+json: a URI over [`MAX_URI_BYTES`] is 414
//! `uri_too_long`; more than [`MAX_HEADER_COUNT`] header fields, or more than
//! [`MAX_HEADER_BYTES`] of them, is 431 `headers_too_large`.
//!
//! hyper parses the head first, with limits of its own set above these (see
//! [`super::serve`]: [`HYPER_MAX_HEADERS`] fields, its read buffer of about 400 KiB, URIs of
//! 64 KiB): only a head past those gets hyper's own bodiless 431/414, and the connection is
//! closed.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Longest request target (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in one request.
pub const MAX_HEADER_COUNT: usize = 100;
/// Most bytes of header fields (names and values, 4 bytes each for `: ` and CRLF).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The header-field count past which hyper itself refuses a request (above
/// [`MAX_HEADER_COUNT`], so that ours answers first).
pub const HYPER_MAX_HEADERS: usize = 4 * MAX_HEADER_COUNT;

/// Middleware: refuse a head over the limits before anything else looks at it.
pub async fn check_head(req: Request, next: Next) -> Response {
    match over_limits(&req) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

fn over_limits(req: &Request) -> Option<ApiError> {
    let uri = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path().len(), |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(format!(
            "the request target is {uri} bytes, over the limit of {MAX_URI_BYTES}"
        )));
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADER_COUNT {
        return Some(ApiError::HeadersTooLarge(format!(
            "{} header fields, over the limit of {MAX_HEADER_COUNT}",
            headers.len()
        )));
    }
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge(format!(
            "{bytes} bytes of header fields, over the limit of {MAX_HEADER_BYTES}"
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn request(uri: &str, headers: &[(&str, String)]) -> Request {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn the_limits_themselves_pass_and_one_byte_more_does_not() {
        let path = format!("/{}", "a".repeat(MAX_URI_BYTES - 1));
        assert!(over_limits(&request(&path, &[])).is_none());
        let e = over_limits(&request(&format!("{path}a"), &[])).unwrap();
        assert_eq!(
            e.status_and_code(),
            (StatusCode::URI_TOO_LONG, "uri_too_long")
        );
        // One field of MAX_HEADER_BYTES: "x" + value + 4 bytes.
        let value = "v".repeat(MAX_HEADER_BYTES - 5);
        assert!(over_limits(&request("/", &[("x", value.clone())])).is_none());
        let e = over_limits(&request("/", &[("x", format!("{value}v"))])).unwrap();
        assert_eq!(
            e.status_and_code(),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large"
            )
        );
    }
}
