//! Capacity limits of one process: idle half-open connections cannot starve the server and are
//! closed after the header timeout; uploads beyond `GMFUSE_MAX_CONCURRENT_UPLOADS` and jobs
//! beyond `GMFUSE_MAX_QUEUED_JOBS` are answered 503 with `Retry-After`.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend::{Backend, both_backends};
use crate::fixtures::{job_request, mnist_cnn_model};
use crate::helpers::{assert_problem, spawn_app_with};

/// Connections the slow-client test holds open.
const HALF_OPEN: usize = 2000;

/// Raise the soft file-descriptor limit to the hard one (the test holds two ends of 2,000
/// connections in one process; many systems default to 1,024).
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_open_connections_do_not_stop_healthz_and_are_closed() {
    let limit = raise_fd_limit();
    assert!(
        limit >= 2 * HALF_OPEN as u64 + 200,
        "RLIMIT_NOFILE is {limit}: raise it (ulimit -n 8192) to run this test"
    );
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.workers = 0;
        c.header_timeout_secs = 2.0;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /heal")
            .await
            .expect("half a request line");
        slow.push(s);
    }
    let opened = Instant::now();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let res = reqwest::Client::new()
            .get(app.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(res.status(), 200);
        worst = worst.max(t.elapsed());
    }
    eprintln!("{HALF_OPEN} half-open connections: /healthz worst of 5 in {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    // Past the 2 s header timeout every slow connection has been closed by the server.
    let mut closed = 0;
    for s in &mut slow {
        let mut buf = [0u8; 256];
        let left = Duration::from_secs(6).saturating_sub(opened.elapsed());
        let wait = left.max(Duration::from_millis(10));
        if tokio::time::timeout(wait, s.read(&mut buf)).await.is_ok() {
            closed += 1;
        }
    }
    eprintln!("closed by the server within 6 s: {closed} of {HALF_OPEN}");
    assert_eq!(closed, HALF_OPEN);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.workers = 0;
        c.header_timeout_secs = 1.0;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "EOF");
    let took = t.elapsed();
    assert!(
        took > Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
    app.stop().await;
}

both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_upload_past_the_concurrent_limit_is_503_with_retry_after
);
async fn an_upload_past_the_concurrent_limit_is_503_with_retry_after(db: Backend) {
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.max_concurrent_uploads = 1;
    })
    .await;
    // A first upload that sends part of its body and then waits.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::from_static(b"\x10\0\0\0\0\0\0\0")))
        .await
        .unwrap();
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let first = tokio::spawn(
        app.client
            .post(app.url("/v1/models"))
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = app.upload_model(mnist_cnn_model(3136, 1), "").await;
    assert_eq!(res.headers()["retry-after"], "2");
    let body = assert_problem(res, 503, "uploads_busy").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 uploads are in progress"),
        "{body}"
    );
    drop(tx);
    let _ = first.await;
    // The slot is free again.
    let res = app.upload_model(mnist_cnn_model(3136, 1), "").await;
    assert_eq!(res.status(), 201);
    app.stop().await;
}

both_backends!(a_job_past_the_queue_limit_is_503_queue_full);
async fn a_job_past_the_queue_limit_is_503_queue_full(db: Backend) {
    let app = spawn_app_with(&db, |c| {
        c.workers = 0;
        c.max_queued_jobs = 2;
    })
    .await;
    let a = app.model_id(mnist_cnn_model(3136, 1), "a").await;
    let b = app.model_id(mnist_cnn_model(3136, 2), "b").await;
    app.job_id(&job_request(&a, &b)).await;
    app.job_id(&job_request(&b, &a)).await;
    let res = app.post_json("/v1/jobs", &job_request(&a, &b)).await;
    assert_eq!(res.headers()["retry-after"], "5");
    let body = assert_problem(res, 503, "queue_full").await;
    assert!(
        body["detail"].as_str().unwrap().contains("holds 2 jobs"),
        "{body}"
    );
    assert_eq!(app.count("jobs").await, 2);
    app.stop().await;
}
