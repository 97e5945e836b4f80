//! Service configuration: one [`Config`] read from command-line flags and environment variables
//! (flag > env > default), shared by `gmfuse serve`, `gmfuse migrate` and `gmfuse healthcheck`.
//!
//! Every setting is listed, with its variable and default, in the README's "Configuration" table.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the service reads at start.
#[derive(Clone, clap::Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "GMFUSE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Directory for the SQLite database, blobs and temporary uploads.
    #[arg(long, env = "GMFUSE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://…` (default `sqlite://<data dir>/gmfuse.db`) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Where blobs live: `s3://bucket/prefix` for an S3-compatible store, or `file:///dir`;
    /// defaults to the data directory.
    #[arg(long, env = "GMFUSE_BLOB_URL")]
    pub blob_url: Option<String>,

    /// S3 endpoint (MinIO, moto, …); defaults to AWS for the region.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// S3 region; defaults to `us-east-1`.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,

    /// S3 access key id; without one the AWS default credential chain applies.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub aws_access_key_id: Option<String>,

    /// S3 secret access key (never logged).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// Allow a plain-HTTP S3 endpoint (local test servers).
    #[arg(long, env = "AWS_ALLOW_HTTP")]
    pub aws_allow_http: bool,

    /// Largest accepted upload (model or dataset), in bytes.
    #[arg(long, env = "GMFUSE_MAX_UPLOAD_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Peak memory one job may need by its pre-flight estimate, in bytes; defaults to a quarter
    /// of the machine's memory (`MemTotal` in /proc/meminfo), at least 256 MiB.
    #[arg(long, env = "GMFUSE_MAX_JOB_BYTES")]
    pub max_job_bytes: Option<u64>,

    /// Multiply-accumulates one job may need by its pre-flight estimate (evaluation plus
    /// matching); the default, 5e13, is about 25 times the default MNIST job.
    #[arg(
        long,
        env = "GMFUSE_MAX_EVAL_MACS",
        default_value_t = 50_000_000_000_000
    )]
    pub max_eval_macs: u64,

    /// Uploads (models and datasets) this process receives at once; more answer 503.
    #[arg(long, env = "GMFUSE_MAX_CONCURRENT_UPLOADS", default_value_t = 4)]
    pub max_concurrent_uploads: usize,

    /// Jobs queued or running (in the whole queue) past which `POST /v1/jobs` answers 503.
    #[arg(long, env = "GMFUSE_MAX_QUEUED_JOBS", default_value_t = 1000)]
    pub max_queued_jobs: u64,

    /// Free bytes the data directory's file system must keep; below it `/readyz` answers 503.
    #[arg(long, env = "GMFUSE_MIN_FREE_BYTES", default_value_t = 100 << 20)]
    pub min_free_bytes: u64,

    /// Queued + running jobs one tenant may have; one more answers 429 `quota_exceeded`.
    #[arg(long, env = "GMFUSE_TENANT_MAX_ACTIVE_JOBS", default_value_t = 250)]
    pub tenant_max_active_jobs: u64,

    /// Bytes of models and datasets one tenant may store; an upload past it answers 429
    /// `quota_exceeded`.
    #[arg(long, env = "GMFUSE_TENANT_MAX_BYTES", default_value_t = 20 << 30)]
    pub tenant_max_bytes: u64,

    /// Requests per second one tenant may make to `/v1` (a token bucket refilled at this
    /// rate); more answer 429 `rate_limited`. 0 turns the limit off.
    #[arg(long, env = "GMFUSE_TENANT_RATE_PER_SEC", default_value_t = 100)]
    pub tenant_rate_per_sec: u32,

    /// Size of each tenant's token bucket: requests it may make at once after a quiet spell
    /// (at least the rate).
    #[arg(long, env = "GMFUSE_TENANT_RATE_BURST", default_value_t = 1000)]
    pub tenant_rate_burst: u32,

    /// Seconds a client has to send a request's headers, and the most a keep-alive connection
    /// stays idle between requests; then the connection is closed.
    #[arg(long, env = "GMFUSE_HEADER_TIMEOUT_SECS", default_value_t = 10.0)]
    pub header_timeout_secs: f64,

    /// Job slots in this process (jobs run at the same time); 0 serves the API only.
    #[arg(long, env = "GMFUSE_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// Threads of the compute pool shared by all jobs; defaults to the number of cores.
    #[arg(long, env = "GMFUSE_COMPUTE_THREADS")]
    pub compute_threads: Option<usize>,

    /// Origins allowed by CORS, comma-separated (`*` allows any); none by default.
    #[arg(long, env = "GMFUSE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Refuse `/v1` requests without an API key even while no key exists (`gmfuse keys`);
    /// once a key exists, keys are required anyway.
    #[arg(long, env = "GMFUSE_REQUIRE_AUTH")]
    pub require_auth: bool,

    /// Hours a served `Idempotency-Key` is remembered (`POST /v1/jobs`, `POST /v1/models`).
    #[arg(
        long,
        env = "GMFUSE_IDEMPOTENCY_RETENTION_HOURS",
        default_value_t = 24.0
    )]
    pub idempotency_retention_hours: f64,

    /// Bearer token `/metrics` requires; open when unset (never logged).
    #[arg(long, env = "GMFUSE_METRICS_KEY", hide_env_values = true)]
    pub metrics_key: Option<String>,

    /// Log format.
    #[arg(long, env = "GMFUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Evaluate jobs on the first N samples of their dataset only (fast demos and tests).
    #[arg(long, env = "GMFUSE_EVAL_LIMIT")]
    pub eval_limit: Option<usize>,

    /// Seconds a claimed job stays leased to this process without a heartbeat.
    #[arg(long, env = "GMFUSE_LEASE_SECS", default_value_t = 30.0)]
    pub lease_secs: f64,

    /// Seconds between lease renewals of a running job (must be below the lease).
    #[arg(long, env = "GMFUSE_HEARTBEAT_SECS", default_value_t = 5.0)]
    pub heartbeat_secs: f64,

    /// Seconds between queue polls when no wake-up arrives.
    #[arg(long, env = "GMFUSE_POLL_SECS", default_value_t = 1.0)]
    pub poll_secs: f64,

    /// Claims of one job before it is failed for good.
    #[arg(long, env = "GMFUSE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,

    /// Limit on one request (uploads included), in seconds; event streams are exempt.
    #[arg(long, env = "GMFUSE_REQUEST_TIMEOUT_SECS", default_value_t = 120.0)]
    pub request_timeout_secs: f64,

    /// On SIGTERM/ctrl-c, seconds running jobs get to finish before they are re-queued.
    #[arg(long, env = "GMFUSE_SHUTDOWN_GRACE_SECS", default_value_t = 20.0)]
    pub shutdown_grace_secs: f64,

    /// Load the two demo models (`model-a.safetensors`, `model-b.safetensors`) from this
    /// directory at start instead of the copies built into the binary.
    #[arg(long, env = "GMFUSE_DEMO_DIR")]
    pub demo_dir: Option<PathBuf>,

    /// Do not load the demo models at start.
    #[arg(long, env = "GMFUSE_NO_DEMO")]
    pub no_demo: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url().redacted())
            .field("blob_url", &self.blob_url)
            .field("aws_endpoint_url", &self.aws_endpoint_url)
            .field("aws_region", &self.aws_region)
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field(
                "aws_secret_access_key",
                &self.aws_secret_access_key.as_ref().map(|_| "***"),
            )
            .field("aws_allow_http", &self.aws_allow_http)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_job_bytes", &self.max_job_bytes())
            .field("max_eval_macs", &self.max_eval_macs)
            .field("tenant_quota", &self.tenant_quota())
            .field("tenant_rate_per_sec", &self.tenant_rate_per_sec)
            .field("workers", &self.workers)
            .field("compute_threads", &self.compute_threads())
            .field("cors_origins", &self.cors_origins)
            .field("require_auth", &self.require_auth)
            .field("metrics_key", &self.metrics_key.as_ref().map(|_| "***"))
            .field("eval_limit", &self.eval_limit)
            .field("lease_secs", &self.lease_secs)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .finish_non_exhaustive()
    }
}

/// A database URL whose password never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any `user:password@` part replaced by `***@`.
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &self.0[..s + 3], &self.0[at..]),
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Config {
    /// A configuration with every default, rooted at `data_dir`, listening on a free port, and
    /// without demo models: the starting point of tests.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Environment variables still apply to the fields not given here.
        let mut config =
            Wrapper::parse_from(["gmfuse", "--addr", "127.0.0.1:0", "--no-demo"]).config;
        config.data_dir = data_dir.into();
        config
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl(
            self.database_url.clone().unwrap_or_else(|| {
                format!("sqlite://{}", self.data_dir.join("gmfuse.db").display())
            }),
        )
    }

    /// Size of the compute pool.
    pub fn compute_threads(&self) -> usize {
        self.compute_threads.filter(|&n| n > 0).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The memory budget of one job: `GMFUSE_MAX_JOB_BYTES`, else a quarter of the machine's
    /// memory, at least 256 MiB.
    pub fn max_job_bytes(&self) -> u64 {
        self.max_job_bytes.unwrap_or_else(default_job_bytes)
    }

    /// The per-tenant quotas.
    pub fn tenant_quota(&self) -> crate::store::TenantQuota {
        crate::store::TenantQuota {
            max_active_jobs: self.tenant_max_active_jobs,
            max_bytes: self.tenant_max_bytes,
        }
    }

    /// The connection header-read (and keep-alive idle) timeout.
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_secs)
    }

    /// The lease of a claimed job.
    pub fn lease(&self) -> Duration {
        secs(self.lease_secs)
    }

    /// The heartbeat period, at most a third of the lease.
    pub fn heartbeat(&self) -> Duration {
        secs(self.heartbeat_secs.min(self.lease_secs / 3.0))
    }

    /// The queue poll period.
    pub fn poll(&self) -> Duration {
        secs(self.poll_secs)
    }

    /// How long a served idempotency key is remembered.
    pub fn idempotency_retention(&self) -> Duration {
        Duration::from_secs_f64(self.idempotency_retention_hours.max(0.0) * 3600.0)
    }

    /// The per-request time limit.
    pub fn request_timeout(&self) -> Duration {
        secs(self.request_timeout_secs)
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        secs(self.shutdown_grace_secs)
    }

    /// Refuse settings that cannot work, with the reason.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("GMFUSE_LEASE_SECS", self.lease_secs),
            ("GMFUSE_HEARTBEAT_SECS", self.heartbeat_secs),
            ("GMFUSE_POLL_SECS", self.poll_secs),
            ("GMFUSE_REQUEST_TIMEOUT_SECS", self.request_timeout_secs),
            ("GMFUSE_HEADER_TIMEOUT_SECS", self.header_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "{name} must be a positive number of seconds, got {v}"
                ));
            }
        }
        if !(self.shutdown_grace_secs.is_finite() && self.shutdown_grace_secs >= 0.0) {
            return Err("GMFUSE_SHUTDOWN_GRACE_SECS must be zero or more".into());
        }
        if self.max_attempts == 0 {
            return Err("GMFUSE_MAX_ATTEMPTS must be at least 1".into());
        }
        if self.max_concurrent_uploads == 0 {
            return Err("GMFUSE_MAX_CONCURRENT_UPLOADS must be at least 1".into());
        }
        if self.tenant_max_active_jobs == 0 {
            return Err("GMFUSE_TENANT_MAX_ACTIVE_JOBS must be at least 1".into());
        }
        if self.max_queued_jobs == 0 {
            return Err("GMFUSE_MAX_QUEUED_JOBS must be at least 1".into());
        }
        if self.eval_limit == Some(0) {
            return Err("GMFUSE_EVAL_LIMIT must be at least 1".into());
        }
        Ok(())
    }
}

/// The floor of the default job memory budget.
const MIN_JOB_BYTES: u64 = 256 << 20;

/// The default job memory budget: a quarter of the machine's memory, at least 256 MiB.
pub fn default_job_bytes() -> u64 {
    (mem_total().unwrap_or(0) / 4).max(MIN_JOB_BYTES)
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
