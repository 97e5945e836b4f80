//! Start-up and shutdown: [`Application::build`] opens and migrates the database, opens the
//! blob store (clearing uploads left by a dead process), loads the demo models, binds the
//! socket; [`Application::run_until_stopped`] serves HTTP and runs the workers until SIGTERM,
//! ctrl-c or [`Application::shutdown_token`] fires, then stops claiming, gives running jobs the
//! grace period, and re-queues what is still running.

use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::auth::AuthSettings;
use super::router::{RouteLimits, router};
use super::state::{App, AppState};
use crate::config::Config;
use crate::jobs::{ComputePool, JobService, Jobs, WorkerSettings, ingest};
use crate::store::{self, BlobStore, DEFAULT_TENANT, Db, TenantQuota};

/// A built service, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    config: Config,
    shutdown: CancellationToken,
}

impl Application {
    /// Open everything and bind the socket.
    ///
    /// # Errors
    /// Bad settings, an unusable database or data directory, or a taken port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.check().map_err(anyhow::Error::msg)?;
        let db = store::open_db(&config).await?;
        db.migrate().await.context("applying migrations")?;
        let blobs = store::open_blobs(&config).await?;
        let removed = blobs
            .clean_staging()
            .await
            .context("clearing staged uploads")?;
        if removed > 0 {
            info!(removed, "removed uploads left by a previous process");
        }
        let compute =
            ComputePool::new(config.compute_threads()).context("starting the compute pool")?;
        let jobs: Jobs = Arc::new(JobService::new(
            db.clone(),
            blobs.clone(),
            compute,
            WorkerSettings::from_config(&config),
        ));
        if !config.no_demo {
            preload_demo(&config, db.as_ref(), blobs.as_ref()).await;
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let auth = AuthSettings::new(config.require_auth, config.metrics_key.clone());
        if !auth.required(db.as_ref()).await.unwrap_or(true) {
            warn!(
                "NO AUTHENTICATION: no API key exists, so every /v1 request acts as the `default` \
                 tenant with full access. Create a key with `gmfuse keys create --tenant NAME` \
                 (or set GMFUSE_REQUIRE_AUTH=1) before exposing this service."
            );
        }
        let shutdown = CancellationToken::new();
        let state = AppState(Arc::new(App {
            auth,
            limits: super::limits::TenantLimits::new(
                config.tenant_quota(),
                config.tenant_rate_per_sec,
                config.tenant_rate_burst,
            ),
            idempotency_retention: config.idempotency_retention(),
            idempotency_stale: config.request_timeout().saturating_mul(2),
            db,
            blobs,
            jobs,
            max_upload_bytes: config.max_upload_bytes,
            data_dir: config.data_dir.clone(),
            min_free_bytes: config.min_free_bytes,
            upload_slots: super::slots::UploadSlots::new(config.max_concurrent_uploads),
            shutdown: shutdown.clone(),
        }));
        Ok(Application {
            listener,
            state,
            config,
            shutdown,
        })
    }

    /// The port bound (the real one when the configuration asked for 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// A token that stops the service like SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The job service (tests drain the queue with it).
    pub fn jobs(&self) -> Jobs {
        self.state.jobs.clone()
    }

    /// The database.
    pub fn db(&self) -> Arc<dyn Db> {
        self.state.db.clone()
    }

    /// Serve until stopped, then shut down gracefully.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            config,
            shutdown,
        } = self;
        let limits = RouteLimits {
            max_upload_bytes: config.max_upload_bytes,
            request_timeout: config.request_timeout(),
        };
        let app = router(state.clone(), limits, &config.cors_origins);
        let jobs = state.jobs.clone();
        let workers_stop = shutdown.child_token();
        let mut workers = jobs.spawn_workers(config.workers, workers_stop.clone());
        info!(
            addr = %listener.local_addr()?,
            workers = config.workers,
            compute_threads = jobs.compute.threads(),
            database = state.db.backend(),
            "gmfuse listening"
        );
        let grace = config.shutdown_grace();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        let limits = super::serve::ConnLimits {
            header_timeout: config.header_timeout(),
            drain: grace.max(std::time::Duration::from_secs(1)),
        };
        let server = super::serve::serve(listener, app, limits, shutdown.clone());
        let drain = async {
            shutdown.cancelled().await;
            info!("shutting down: no new jobs are claimed");
            workers_stop.cancel();
            jobs.drain(&mut workers, grace).await;
        };
        tokio::join!(server, drain);
        state.db.close().await;
        info!("stopped");
        Ok(())
    }
}

/// Wait for ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The demo models built into the binary (`assets/demo/`).
const DEMO_MODELS: [(&str, &str, &[u8]); 2] = [
    (
        "demo-a",
        "model-a.safetensors",
        include_bytes!("../../assets/demo/model-a.safetensors"),
    ),
    (
        "demo-b",
        "model-b.safetensors",
        include_bytes!("../../assets/demo/model-b.safetensors"),
    ),
];

/// Upload the two demo models: from `--demo-dir` when given (skipped when a file is not
/// there), else the built-in copies.
async fn preload_demo(config: &Config, db: &dyn Db, blobs: &dyn BlobStore) {
    for (name, file, builtin) in DEMO_MODELS {
        let (path, bytes) = match &config.demo_dir {
            None => (std::path::PathBuf::from(file), builtin.to_vec()),
            Some(dir) => {
                let path = dir.join(file);
                match tokio::fs::read(&path).await {
                    Ok(b) => (path, b),
                    Err(_) => {
                        info!(path = %path.display(), "demo model not found; skipped");
                        continue;
                    }
                }
            }
        };
        let body = futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed();
        let ingested = ingest::ingest_model(
            db,
            blobs,
            DEFAULT_TENANT,
            body,
            ingest::UploadLimits {
                max_bytes: u64::MAX,
                quota: TenantQuota::UNLIMITED,
            },
            ingest::ModelUpload {
                name: Some(name.into()),
                format: Some(crate::store::ModelFormat::Safetensors),
                ..Default::default()
            },
        )
        .await;
        match ingested {
            Ok((m, _)) => info!(id = %m.id, name, "demo model ready"),
            Err(e) => warn!(path = %path.display(), error = %e, "demo model refused"),
        }
    }
}
