//! `gmfuse arch explain SPEC|PRESET [--model FILE]`: print an architecture's permutation
//! groups, each with the tensor axes it moves.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::inputs::{load_arch, load_model};
use crate::engine::arch::{preset, preset_tensors};

/// Look into architectures.
#[derive(Args, Debug)]
pub struct ArchArgs {
    #[command(subcommand)]
    pub command: ArchCommand,
}

#[derive(Subcommand, Debug)]
pub enum ArchCommand {
    /// Print each permutation group with the tensor axes it moves.
    Explain {
        /// A preset (mnist-cnn, cnn-bn, resnet-mini; mlp with --model) or an ArchSpec JSON
        /// file.
        arch: String,
        /// A model (.safetensors) whose tensor shapes give the widths; default: the fixed
        /// preset's own.
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

/// Run an `arch` subcommand.
///
/// # Errors
/// An unknown architecture, an unreadable model, or one that does not fit the architecture.
pub fn run(args: &ArchArgs) -> anyhow::Result<()> {
    let ArchCommand::Explain { arch, model } = &args.command;
    let (spec, shapes) = match model {
        Some(path) => {
            let m = load_model(path)?;
            (load_arch(arch, &m)?, m.shapes())
        }
        None => {
            let spec = preset(arch).map_err(anyhow::Error::from).or_else(|_| {
                load_arch(arch, &Default::default()).with_context(|| {
                    format!("`{arch}`: give --model FILE when it is not a fixed preset")
                })
            })?;
            let shapes = preset_tensors(&spec.name).with_context(|| {
                format!("`{arch}` is not a fixed preset: give --model FILE for its widths")
            })?;
            (spec, shapes)
        }
    };
    let structure = spec
        .check_shapes(&shapes)
        .with_context(|| format!("architecture `{}`", spec.name))?;
    print!("{}", structure.explain(&spec.name));
    Ok(())
}
