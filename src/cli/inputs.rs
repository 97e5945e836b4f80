//! Loading what the command-line tools work on: architectures, datasets and models by name
//! or path (an ONNX model's external data read from beside it), and the models that ship with
//! (or beside) the project.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::engine::arch::{ArchSpec, SHAPE_DRIVEN, preset, preset_for};
use crate::engine::eval::Dataset;
use crate::engine::onnx::{self, OnnxError};
use crate::engine::weights::WeightSet;
use crate::jobs::model_file::{self, ModelFile};
use crate::store::ModelFormat;

/// A preset name (`mnist-cnn`, or `mlp`, read from `model`'s tensors) or the path of an
/// ArchSpec JSON file.
pub fn load_arch(arg: &str, model: &WeightSet) -> anyhow::Result<ArchSpec> {
    if SHAPE_DRIVEN.contains(&arg) {
        let shapes = model
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.data.shape().to_vec()))
            .collect();
        return Ok(preset_for(arg, &shapes)?);
    }
    if let Ok(spec) = preset(arg) {
        return Ok(spec);
    }
    let path = Path::new(arg);
    if !path.exists() {
        bail!("unknown architecture `{arg}`: not a preset (mnist-cnn, mlp) and no such file");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing architecture {arg}"))
}

/// `mnist-test` or `mnist-train-5k` (built in), a `.safetensors` file with `images` and
/// `labels`, or `IMAGES.idx[.gz],LABELS.idx[.gz]`.
pub fn load_dataset(arg: &str) -> anyhow::Result<Dataset> {
    if let Some(d) = crate::builtin::builtin(arg) {
        return Ok(d);
    }
    if let Some((images, labels)) = arg.split_once(',') {
        let img = std::fs::read(images).with_context(|| format!("reading {images}"))?;
        let lab = std::fs::read(labels).with_context(|| format!("reading {labels}"))?;
        return Dataset::from_idx(arg, &img, &lab).with_context(|| format!("dataset {arg}"));
    }
    if arg.ends_with(".safetensors") {
        let bytes = std::fs::read(arg).with_context(|| format!("reading {arg}"))?;
        return Dataset::from_safetensors(arg, &bytes).with_context(|| format!("dataset {arg}"));
    }
    bail!(
        "unknown dataset `{arg}`: use mnist-test, mnist-train-5k, DATA.safetensors or \
         IMAGES,LABELS (IDX files)"
    )
}

/// The bytes of a model file. An ONNX model whose tensors live in external files comes back
/// self-contained, the files read from the model file's directory (see [`inline_beside`]).
pub fn read_model(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "onnx") || onnx::looks_like_onnx(&bytes) {
        return inline_beside(path, bytes);
    }
    Ok(bytes)
}

/// `bytes` of the ONNX model at `path` with its external data inlined: each location its
/// tensors name is read relative to the model's directory, the sizes bounded before reading
/// (2 GiB in all, protobuf's limit). Bytes that are not a model come back as they are, for
/// [`parse_model`] to say why.
fn inline_beside(path: &Path, bytes: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let loading = || format!("loading {}", path.display());
    let refs = match onnx::external_refs(&bytes) {
        Ok(refs) if refs.is_empty() => return Ok(bytes),
        Ok(refs) => refs,
        Err(OnnxError::Malformed(_)) => return Ok(bytes),
        Err(e) => return Err(anyhow::Error::new(e).context(loading())),
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let max = onnx::limits::MAX_FILE_BYTES as u64;
    let mut total = bytes.len() as u64;
    let mut files = onnx::ExternalFiles::new();
    for r in refs {
        let file = dir.join(&r.location);
        let unreadable = |e: std::io::Error| {
            anyhow!(
                "{}: tensor `{}` stores its data in {}, which cannot be read: {e}",
                loading(),
                r.tensor,
                file.display()
            )
        };
        total += std::fs::metadata(&file).map_err(unreadable)?.len();
        if total > max {
            bail!(
                "{}: the model and its external data files are over {max} bytes",
                loading()
            );
        }
        files.insert(
            r.location.clone(),
            std::fs::read(&file).map_err(unreadable)?,
        );
    }
    onnx::inline_external(&bytes, &files, onnx::limits::MAX_FILE_BYTES).with_context(loading)
}

/// Read and validate a model file, safetensors or ONNX (see [`parse_model`]).
pub fn load_model(path: &Path) -> anyhow::Result<ModelFile> {
    parse_model(path, &read_model(path)?)
}

/// Validate the bytes read from `path`: ONNX when the name ends in `.onnx` or the bytes start
/// like an ONNX model, else safetensors.
pub fn parse_model(path: &Path, bytes: &[u8]) -> anyhow::Result<ModelFile> {
    let format = if path.extension().is_some_and(|e| e == "onnx") {
        ModelFormat::Onnx
    } else {
        model_file::detect(bytes)
    };
    model_file::read(format, bytes).with_context(|| format!("loading {}", path.display()))
}

/// The architecture of `models`: `--arch` when given (a preset or an ArchSpec file), else the
/// one their ONNX graphs describe (they must describe one), else `mnist-cnn`.
pub fn resolve_arch(
    arg: Option<&str>,
    paths: &[PathBuf],
    models: &[ModelFile],
) -> anyhow::Result<ArchSpec> {
    if let Some(arg) = arg {
        return load_arch(arg, &models[0].weights);
    }
    let derived: Vec<(&PathBuf, &ArchSpec)> = paths
        .iter()
        .zip(models)
        .filter_map(|(p, m)| m.architecture.as_ref().map(|a| (p, a)))
        .collect();
    let Some(&(first_path, first)) = derived.first() else {
        return preset("mnist-cnn").map_err(Into::into);
    };
    for &(path, spec) in &derived[1..] {
        if let Some(diff) = first.first_difference(spec) {
            bail!(
                "{} and {} describe different architectures: {diff}",
                first_path.display(),
                path.display()
            );
        }
    }
    Ok(first.clone())
}

/// The pygmtools example's two models: `$GMFUSE_SEED_MODELS`, else `../shared/data/seed-models`
/// beside the project (they are not ours to ship).
pub fn seed_models_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("GMFUSE_SEED_MODELS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../shared/data/seed-models"),
            manifest.join("../../shared/data/seed-models"),
        ])
        .find(|d| d.join("model1.safetensors").is_file())
}

/// The project's own demo models (`assets/demo/model-{a,b}.safetensors`).
pub fn demo_models() -> [PathBuf; 2] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    [
        dir.join("model-a.safetensors"),
        dir.join("model-b.safetensors"),
    ]
}
