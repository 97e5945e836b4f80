//! The `gmfuse` binary: the service and its command-line tools. With no subcommand it serves.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use clap::{Parser, Subcommand};
use gmfuse::config::{Config, LogFormat};

/// Model fusion by graph matching (GAMF).
///
/// Without a subcommand, `gmfuse [OPTIONS]` is `gmfuse serve [OPTIONS]`.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API and run jobs (the default); `--workers 0` serves the API only.
    Serve(Config),
    /// Run only the job workers (no API) against the configured database and blob store.
    Worker(gmfuse::jobs::process::WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(Config),
    /// Print the OpenAPI document (JSON).
    Openapi,
    /// Exit 0 when the service at GMFUSE_ADDR answers GET /healthz with 200, else 1.
    Healthcheck(Config),
    /// Fuse two models and print the accuracy tables (no service needed).
    Fuse(gmfuse::cli::fuse::FuseArgs),
    /// Time the engine's stages on the seed or demo models and print the figures.
    Bench(gmfuse::cli::bench::BenchArgs),
    /// Look into architectures: `explain SPEC|PRESET|MODEL.onnx` prints their permutation groups.
    Arch(gmfuse::cli::arch::ArchArgs),
    /// Write a safetensors model and its architecture as one ONNX model.
    ExportOnnx(gmfuse::cli::export_onnx::ExportOnnxArgs),
    /// Manage API keys: `create --tenant NAME` (prints the key once), `list`, `revoke ID`.
    Keys(gmfuse::cli::keys::KeysArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_async(serve(cli.config)),
        Some(Command::Serve(config)) => run_async(serve(config)),
        Some(Command::Worker(args)) => run_async(worker(args)),
        Some(Command::Migrate(config)) => run_async(migrate(config)),
        Some(Command::Openapi) => print_openapi(),
        Some(Command::Healthcheck(config)) => healthcheck(config.addr),
        Some(Command::Fuse(args)) => gmfuse::cli::fuse::run(&args),
        Some(Command::Bench(args)) => gmfuse::cli::bench::run(&args),
        Some(Command::Arch(args)) => gmfuse::cli::arch::run(&args),
        Some(Command::ExportOnnx(args)) => gmfuse::cli::export_onnx::run(&args),
        Some(Command::Keys(args)) => run_async(gmfuse::cli::keys::run(args)),
    };
    if let Err(err) = result {
        eprintln!("gmfuse: {err:#}");
        std::process::exit(1);
    }
}

fn run_async(f: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(config.log_format);
    tracing::info!(?config, "starting");
    gmfuse::http::Application::build(config)
        .await?
        .run_until_stopped()
        .await
}

async fn worker(args: gmfuse::jobs::process::WorkerArgs) -> anyhow::Result<()> {
    init_tracing(args.config.log_format);
    tracing::info!(config = ?args.config, "starting a worker");
    gmfuse::jobs::process::run(args).await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    init_tracing(config.log_format);
    let db = gmfuse::store::open_db(&config).await?;
    db.migrate().await?;
    db.close().await;
    println!("migrations applied to {}", config.database_url().redacted());
    Ok(())
}

fn print_openapi() -> anyhow::Result<()> {
    println!("{}", gmfuse::http::openapi().to_pretty_json()?);
    Ok(())
}

/// GET /healthz over plain HTTP/1.1 (the container image has no curl).
fn healthcheck(addr: SocketAddr) -> anyhow::Result<()> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200") {
        Ok(())
    } else {
        anyhow::bail!(
            "{target} answered {:?}",
            String::from_utf8_lossy(&head).trim()
        )
    }
}
