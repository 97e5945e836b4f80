//! `gmfuse fuse --out`: the fused weights on disk. A directory gets every proportion of the
//! first method as safetensors (and the weighted average of three or more models); a file
//! name ending in `.onnx` or `.safetensors` gets one fused model in that format — the first
//! method at its most accurate proportion (pass one `--alphas` value to choose it).
//!
//! ONNX out is the last model's graph (model 2 of a pair) with the fused initializers when
//! that model is ONNX, else a whole ONNX model exported from the architecture.

use std::path::Path;

use anyhow::{Context, bail};

use crate::engine::arch::ArchSpec;
use crate::engine::onnx;
use crate::engine::pipeline::{FusionReport, MethodId, fused_weights, fused_weights_many};
use crate::engine::weights::WeightSet;
use crate::jobs::model_file::ModelFile;
use crate::store::ModelFormat;

/// The format `--out` asks for: one file of a format, or a directory.
pub fn out_format(path: &Path) -> Option<ModelFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => Some(ModelFormat::Onnx),
        Some("safetensors") => Some(ModelFormat::Safetensors),
        _ => None,
    }
}

/// Write `bytes` to `path` through a temporary file and a rename: never a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Write what `--out` names, for `method` (the first method the run asked for).
///
/// # Errors
/// A fusion or serialisation error, or an unwritable path.
pub fn write(
    out: &Path,
    spec: &ArchSpec,
    models: &[ModelFile],
    files: &[Vec<u8>],
    report: &FusionReport,
    method: MethodId,
) -> anyhow::Result<()> {
    let weights: Vec<&WeightSet> = models.iter().map(|m| &m.weights).collect();
    let Some(format) = out_format(out) else {
        return write_dir(out, spec, &weights, report, method);
    };
    let (mut fused, what) = if weights.len() > 2 {
        let perms = report.matching(method).map(|m| &m.models[..]);
        let w = fused_weights_many(spec, &weights, perms, &report.weights)?;
        (w, "the weighted average".to_string())
    } else {
        let alpha = chosen_proportion(report, method)?;
        let perms = report.matching(method).map(|m| &m.permutations[..]);
        let mut w = fused_weights(spec, [weights[0], weights[1]], perms, alpha)?;
        w.metadata.insert("proportion".into(), alpha.to_string());
        (w, format!("proportion {alpha}"))
    };
    fused.metadata.insert("method".into(), method.to_string());
    let bytes = match format {
        ModelFormat::Safetensors => fused.to_bytes()?,
        ModelFormat::Onnx => {
            let last = models.len() - 1;
            match models[last].format {
                ModelFormat::Onnx => onnx::write_fused(&files[last], &fused)?,
                ModelFormat::Safetensors => onnx::export(spec, &fused)?,
            }
        }
    };
    write_atomic(out, &bytes)?;
    eprintln!(
        "wrote {} ({}): method {method}, {what}",
        out.display(),
        format.as_str()
    );
    Ok(())
}

/// The proportion a one-file `--out` writes: the only one swept, else the most accurate on
/// `method`'s (first) curve.
fn chosen_proportion(report: &FusionReport, method: MethodId) -> anyhow::Result<f64> {
    if let [alpha] = report.alphas[..] {
        return Ok(alpha);
    }
    let Some(curve) = report.curves.iter().find(|c| c.method == method) else {
        bail!("the report has no `{method}` curve to pick a proportion from");
    };
    curve
        .points
        .iter()
        .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
        .map(|p| p.proportion)
        .context("the curve has no points")
}

/// Every proportion as `fused-<α>.safetensors` (and `fused-average.safetensors` for three or
/// more models) in `dir`.
fn write_dir(
    dir: &Path,
    spec: &ArchSpec,
    models: &[&WeightSet],
    report: &FusionReport,
    method: MethodId,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if models.len() > 2 {
        let perms = report.matching(method).map(|m| &m.models[..]);
        let mut w = fused_weights_many(spec, models, perms, &report.weights)?;
        w.metadata.insert("method".into(), method.to_string());
        write_atomic(&dir.join("fused-average.safetensors"), &w.to_bytes()?)?;
    }
    let perms = report.matching(method).map(|m| &m.permutations[..]);
    for &alpha in &report.alphas {
        let mut w = fused_weights(spec, [models[0], models[1]], perms, alpha)?;
        w.metadata.insert("method".into(), method.to_string());
        w.metadata.insert("proportion".into(), alpha.to_string());
        let name = format!("fused-{alpha:.2}.safetensors");
        write_atomic(&dir.join(name), &w.to_bytes()?)?;
    }
    Ok(())
}
