//! The accept loop: one task per connection on hyper-util's HTTP/1 + HTTP/2 server, with the
//! connection limits `axum::serve` lacks, and graceful shutdown.
//!
//! - **Header timeout.** A client has [`ConnLimits::header_timeout`] to send a request's
//!   headers (hyper's `header_read_timeout`). hyper restarts that timer whenever it waits for
//!   the next request on a keep-alive connection, so it is also the idle timeout between
//!   requests. A connection that has not sent one complete request head within the timeout —
//!   even one stuck before hyper can tell HTTP/1 from HTTP/2 — is closed too.
//! - **Head size.** hyper refuses more than [`super::head::HYPER_MAX_HEADERS`] header fields
//!   itself; below that the router's [`super::head`] limits answer 414/431 as problem+json.
//! - **Accept errors** (out of file descriptors, say) are logged and retried after a pause,
//!   never fatal: the connections already open keep being served.
//! - **Shutdown.** On the token, accepting stops; open connections finish their requests (idle
//!   ones close at once), for at most [`ConnLimits::drain`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Time to send a request's headers, and most idle time between requests.
    pub header_timeout: Duration,
    /// How long shutdown waits for open connections.
    pub drain: Duration,
}

/// A request mapper that records that the connection completed a request head.
fn mark_served<B>(flag: Arc<AtomicBool>) -> impl Fn(Request<B>) -> Request<B> + Clone {
    move |req| {
        flag.store(true, Ordering::Relaxed);
        req
    }
}

/// Serve `app` on `listener` until `shutdown` fires, then drain the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(super::head::HYPER_MAX_HEADERS)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accepting a connection failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Set on the first request head the connection completes.
        let served = Arc::new(AtomicBool::new(false));
        let service = app.clone().map_request(mark_served(served.clone()));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        let first_request = limits.header_timeout;
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep(first_request) => {}
            }
            if served.load(Ordering::Relaxed) {
                let _ = conn.await;
            } else {
                debug!(%peer, "no request head within the header timeout; closed");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after the drain period; closing them");
    }
}
