//! `gmfuse bench`: stage timings (stub).

/// Arguments of `gmfuse bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

/// Run `gmfuse bench`.
pub fn run(_args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
