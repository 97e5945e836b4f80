//! Request heads over the limits (issue 7, part 6): a very long URI answers 414 and too many or
//! too large header fields 431, both as problem+json, sent over a raw TCP connection as a
//! client that ignores every convention would.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::Backend;
use crate::helpers::spawn_app_with;

/// Send `head` (a request head without its final blank line) and read the whole response;
/// returns the status, the headers (lower-cased) and the body.
async fn raw(base: &str, head: &str) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}Host: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut out),
    );
    read.await.expect("the server answers and closes").unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn assert_problem_text(status: u16, head: &str, body: &str, want: u16, code: &str) {
    assert_eq!(status, want, "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON: {body}"));
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], want, "{body}");
}

#[tokio::test]
async fn a_long_uri_is_414_and_large_or_many_headers_are_431_as_problem_json() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.workers = 0).await;
    // 9,000 bytes of path: over the 8 KiB limit (gmfuse::http::head::MAX_URI_BYTES).
    let (s, h, b) = raw(
        &app.base,
        &format!("GET /v1/models/{} HTTP/1.1\r\n", "a".repeat(9000)),
    )
    .await;
    assert_problem_text(s, &h, &b, 414, "uri_too_long");
    // One 40 KiB header value: over the 32 KiB of header fields.
    let (s, h, b) = raw(
        &app.base,
        &format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n",
            "v".repeat(40 * 1024)
        ),
    )
    .await;
    assert_problem_text(s, &h, &b, 431, "headers_too_large");
    // 150 small header fields: over the 100 allowed.
    let many: String = (0..150).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let (s, h, b) = raw(&app.base, &format!("GET /healthz HTTP/1.1\r\n{many}")).await;
    assert_problem_text(s, &h, &b, 431, "headers_too_large");
    // Within the limits the same request is served.
    let (s, _, _) = raw(&app.base, "GET /healthz HTTP/1.1\r\nX-Small: 1\r\n").await;
    assert_eq!(s, 200);
    app.stop().await;
}
