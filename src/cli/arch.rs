//! `gmfuse arch explain SPEC|PRESET|MODEL.onnx [--model FILE]`: print an architecture's
//! permutation groups, each with the tensor axes it moves; for an ONNX model, the architecture
//! its graph describes, with its own widths.

use std::path::{Path, PathBuf};

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
        /// A preset (mnist-cnn, cnn-bn, resnet-mini; mlp with --model), an ArchSpec JSON
        /// file, or an ONNX model (its graph's architecture; external data files are read from
        /// the model file's directory).
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
    let onnx = Path::new(arch);
    let (spec, shapes) = match model {
        None if onnx.is_file() && is_onnx(onnx)? => {
            let m = load_model(onnx)?;
            let spec = m
                .architecture
                .context("an ONNX model has an architecture")?;
            (spec, m.weights.shapes())
        }
        Some(path) => {
            let m = load_model(path)?;
            (load_arch(arch, &m.weights)?, m.weights.shapes())
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

/// An ONNX file by its name (`.onnx`) or, for another name, its first bytes (an ArchSpec is
/// JSON).
fn is_onnx(path: &Path) -> anyhow::Result<bool> {
    if path.extension().is_some_and(|e| e == "onnx") {
        return Ok(true);
    }
    let mut head = [0u8; 64];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let n = std::io::Read::read(&mut file, &mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::jobs::model_file::detect(&head[..n]) == crate::store::ModelFormat::Onnx)
}
