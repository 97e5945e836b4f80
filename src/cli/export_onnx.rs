//! `gmfuse export-onnx --arch PRESET|SPEC WEIGHTS OUT`: a safetensors model and its
//! architecture written as one ONNX model (input `input`, `[N, C, H, W]` float; output `logits`)
//! by the engine's writer — how the demo pairs become ONNX files for `gmfuse fuse a.onnx b.onnx`
//! and for onnxruntime.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::fused_out::write_atomic;
use super::inputs::{load_arch, load_model};
use crate::engine::onnx;
use crate::store::ModelFormat;

/// Arguments of `gmfuse export-onnx`.
#[derive(clap::Args, Debug)]
pub struct ExportOnnxArgs {
    /// Architecture: a preset (`mnist-cnn`, `cnn-bn`, `resnet-mini`; `mlp`, read from the
    /// weights) or an ArchSpec JSON file.
    #[arg(long)]
    pub arch: String,
    /// The weights, safetensors.
    pub weights: PathBuf,
    /// The ONNX file to write.
    pub out: PathBuf,
}

/// Run `gmfuse export-onnx`.
///
/// # Errors
/// Unreadable weights, an unknown architecture, weights that do not fit it, or an unwritable
/// `OUT`.
pub fn run(args: &ExportOnnxArgs) -> anyhow::Result<()> {
    let model = load_model(&args.weights)?;
    if model.format != ModelFormat::Safetensors {
        bail!(
            "{} is already ONNX: export-onnx reads safetensors weights",
            args.weights.display()
        );
    }
    let spec = load_arch(&args.arch, &model.weights)?;
    spec.check_shapes(&model.weights.shapes())
        .with_context(|| format!("{} does not fit `{}`", args.weights.display(), spec.name))?;
    let bytes = onnx::export(&spec, &model.weights)
        .with_context(|| format!("exporting {}", args.weights.display()))?;
    write_atomic(&args.out, &bytes)?;
    eprintln!(
        "wrote {} ({} bytes, architecture {})",
        args.out.display(),
        bytes.len(),
        spec.name
    );
    Ok(())
}
