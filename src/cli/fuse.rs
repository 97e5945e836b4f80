//! `gmfuse fuse`: one fusion from the command line (stub).

/// Arguments of `gmfuse fuse`.
#[derive(clap::Args, Debug)]
pub struct FuseArgs {}

/// Run `gmfuse fuse`.
pub fn run(_args: &FuseArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
