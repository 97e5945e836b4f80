//! `gmfuse worker`: a process that only consumes the queue — no API. Any number of them (and of
//! `gmfuse serve --workers 0` API processes) share one database and one blob store; the lease,
//! heartbeat, fencing and rescue of [`crate::store::JobStore`] keep each job to one result.
//!
//! With `--health-addr` it also answers `GET /healthz`, for container health checks.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{ComputePool, JobService, WorkerSettings};
use crate::config::Config;
use crate::store;

/// The settings of `gmfuse worker`: the service's, plus an optional health listener.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub config: Config,

    /// Answer `GET /healthz` on this address (for container health checks); off by default,
    /// so that a worker beside an API process on one host takes no port.
    #[arg(long, env = "GMFUSE_WORKER_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,
}

/// Run `config.workers` queue consumers until SIGTERM or ctrl-c, then give running jobs the
/// shutdown grace period and re-queue what is still running.
///
/// # Errors
/// Bad settings (zero slots included), an unusable database or blob store, a taken health port.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        crate::http::server::shutdown_signal().await;
        signal.cancel();
    });
    run_until(args, shutdown).await
}

/// [`run`], stopped by `shutdown` instead of a signal.
///
/// # Errors
/// As [`run`].
pub async fn run_until(args: WorkerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let WorkerArgs {
        config,
        health_addr,
    } = args;
    config.check().map_err(anyhow::Error::msg)?;
    if config.workers == 0 {
        anyhow::bail!("gmfuse worker needs at least one job slot: set GMFUSE_WORKERS to 1 or more");
    }
    let db = store::open_db(&config).await?;
    // Idempotent, and serialised between processes by the backend (an advisory lock on
    // PostgreSQL), so a worker may start before the API.
    db.migrate().await.context("applying migrations")?;
    // The API processes own the upload staging area: a worker never clears it.
    let blobs = store::open_blobs(&config).await?;
    let compute =
        ComputePool::new(config.compute_threads()).context("starting the compute pool")?;
    let jobs = Arc::new(JobService::new(
        db.clone(),
        blobs,
        compute,
        WorkerSettings::from_config(&config),
    ));
    let health = match health_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the health address {addr}"))?;
            let addr = listener.local_addr()?;
            let app = axum::Router::new().route(
                "/healthz",
                get(|| async { Json(serde_json::json!({"status": "ok"})) }),
            );
            let stopped = shutdown.clone();
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await });
            Some((addr, tokio::spawn(server.into_future())))
        }
        None => None,
    };
    let workers_stop = shutdown.child_token();
    let mut workers = jobs.spawn_workers(config.workers, workers_stop.clone());
    info!(
        process = %jobs.process_id,
        slots = config.workers,
        compute_threads = jobs.compute.threads(),
        database = db.backend(),
        health = health.as_ref().map(|(a, _)| a.to_string()),
        "gmfuse worker running"
    );
    shutdown.cancelled().await;
    info!("shutting down: no new jobs are claimed");
    workers_stop.cancel();
    jobs.drain(&mut workers, config.shutdown_grace()).await;
    if let Some((_, server)) = health {
        let _ = server.await;
    }
    db.close().await;
    info!("stopped");
    Ok(())
}
