//! The `gmfuse` binary: the service and its command-line tools.

use clap::{Parser, Subcommand};

/// Model fusion by graph matching (GAMF).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fuse two models and print the accuracy tables (no service needed).
    Fuse(gmfuse::cli::fuse::FuseArgs),
    /// Time the engine's stages on the seed or demo models and print the figures.
    Bench(gmfuse::cli::bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fuse(args) => gmfuse::cli::fuse::run(&args),
        Command::Bench(args) => gmfuse::cli::bench::run(&args),
    };
    if let Err(err) = result {
        eprintln!("gmfuse: {err:#}");
        std::process::exit(1);
    }
}
