//! The built-in presets: fixed specs (`mnist-cnn`, the pygmtools example's net; `cnn-bn` and
//! `resnet-mini` of [`super::zoo`]) and
//! shape-driven ones (`mlp`), whose ops are read from a model's tensor names and shapes.
//!
//! ```
//! use std::collections::BTreeMap;
//! use gmfuse_engine::arch::preset_for;
//! let shapes = BTreeMap::from([
//!     ("fc1.weight".to_string(), vec![128, 784]),
//!     ("fc1.bias".to_string(), vec![128]),
//!     ("fc2.weight".to_string(), vec![10, 128]),
//! ]);
//! let spec = preset_for("mlp", &shapes).unwrap();
//! assert_eq!(spec.input, [1, 28, 28]);
//! assert_eq!(spec.tensor_names(), ["fc1.weight", "fc1.bias", "fc2.weight"]);
//! assert!(spec.check_shapes(&shapes).is_ok());
//! ```

use std::collections::BTreeMap;

use super::error::ArchError;
use super::spec::{ArchSpec, Op, PadMode};
use super::zoo;

/// The presets whose spec is read from a model's tensors (resolve them with [`preset_for`]).
pub const SHAPE_DRIVEN: [&str; 1] = ["mlp"];

/// The fixed presets.
pub fn presets() -> Vec<ArchSpec> {
    vec![mnist_cnn(), zoo::cnn_bn(), zoo::resnet_mini()]
}

/// A fixed preset by name.
///
/// # Errors
/// [`ArchError::ShapeDriven`] for a preset of [`SHAPE_DRIVEN`]; [`ArchError::UnknownPreset`]
/// for any other name but those of [`presets`].
pub fn preset(name: &str) -> Result<ArchSpec, ArchError> {
    if SHAPE_DRIVEN.contains(&name) {
        return Err(ArchError::ShapeDriven(name.to_string()));
    }
    presets()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ArchError::UnknownPreset(name.to_string()))
}

/// Any preset, resolved against a model's tensor shapes by name: a fixed preset as it is, a
/// shape-driven one built from the tensors (check the result with [`ArchSpec::check_shapes`]).
///
/// # Errors
/// [`ArchError::UnknownPreset`]; [`ArchError::PresetMismatch`] when a shape-driven preset
/// finds nothing to build from.
pub fn preset_for(
    name: &str,
    tensors: &BTreeMap<String, Vec<usize>>,
) -> Result<ArchSpec, ArchError> {
    match name {
        "mlp" => mlp(tensors),
        _ => preset(name),
    }
}

/// `mlp`: the linear layers `fc1, fc2, …` or `layers.0, layers.1, …` (by number; either
/// family, not both), each with its `.bias` when present, ReLU between them and none after the
/// last; the input is flattened — `[1, 28, 28]` when the first layer takes 784 features
/// (MNIST), else `[1, 1, in]`.
///
/// # Errors
/// [`ArchError::PresetMismatch`] when no such layer exists, both families do, or a weight is
/// not 2-D.
pub fn mlp(tensors: &BTreeMap<String, Vec<usize>>) -> Result<ArchSpec, ArchError> {
    let bad = |reason: String| ArchError::PresetMismatch {
        preset: "mlp".into(),
        reason,
    };
    let mut layers: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    for name in tensors.keys() {
        let Some(prefix) = name.strip_suffix(".weight") else {
            continue;
        };
        let numbered =
            [("fc", "fc"), ("layers", "layers.")]
                .into_iter()
                .find_map(|(family, head)| {
                    let k = prefix.strip_prefix(head)?;
                    let digits = !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit());
                    Some((family, k.parse::<u64>().ok().filter(|_| digits)?))
                });
        if let Some(key) = numbered {
            layers.insert(key, prefix);
        }
    }
    let families: std::collections::BTreeSet<&str> = layers.keys().map(|k| k.0).collect();
    if families.len() > 1 {
        return Err(bad("it mixes `fc<k>` and `layers.<k>` layers".into()));
    }
    let first = *layers
        .values()
        .next()
        .ok_or_else(|| bad("no `fc<k>.weight` or `layers.<k>.weight` tensor".into()))?;
    let in_features = match tensors[&format!("{first}.weight")][..] {
        [_, n] => n,
        ref s => return Err(bad(format!("`{first}.weight` is {s:?}, not 2-D"))),
    };
    let mut ops = vec![Op::Flatten {}];
    for (k, prefix) in layers.values().enumerate() {
        if k > 0 {
            ops.push(Op::Relu {});
        }
        let bias = format!("{prefix}.bias");
        ops.push(Op::Linear {
            weight: format!("{prefix}.weight"),
            bias: tensors.contains_key(&bias).then_some(bias),
        });
    }
    let input = if in_features == 784 {
        [1, 28, 28]
    } else {
        [1, 1, in_features]
    };
    Ok(ArchSpec::chain("mlp", input, ops))
}

/// The pygmtools example's `SimpleNet`: ReplicationPad2d(1) → conv 5×5 (1→32) → ReLU →
/// MaxPool2d(2, padding=1), twice (32→64), flatten (64·7·7 = 3136), fc1 (→32), fc2 (→10);
/// no biases, no ReLU between fc1 and fc2.
fn mnist_cnn() -> ArchSpec {
    let conv = |w: &str| Op::Conv2d {
        weight: w.into(),
        bias: None,
        stride: 1,
        padding: 0,
    };
    let pad = Op::Pad2d {
        mode: PadMode::Replicate,
        padding: 1,
    };
    let pool = Op::Maxpool2d {
        kernel: 2,
        stride: Some(2),
        padding: 1,
    };
    ArchSpec::chain(
        "mnist-cnn",
        [1, 28, 28],
        vec![
            pad.clone(),
            conv("conv1.weight"),
            Op::Relu {},
            pool.clone(),
            pad,
            conv("conv2.weight"),
            Op::Relu {},
            pool,
            Op::Flatten {},
            Op::Linear {
                weight: "fc1.weight".into(),
                bias: None,
            },
            Op::Linear {
                weight: "fc2.weight".into(),
                bias: None,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(v: &[(&str, &[usize])]) -> BTreeMap<String, Vec<usize>> {
        v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
    }

    #[test]
    fn mlp_reads_numbered_layers_in_numeric_order_with_optional_biases() {
        let t = shapes(&[
            ("layers.10.weight", &[10, 64]),
            ("layers.2.weight", &[64, 32]),
            ("layers.2.bias", &[64]),
            ("layers.0.weight", &[32, 20]),
        ]);
        let spec = mlp(&t).unwrap();
        assert_eq!(spec.input, [1, 1, 20]);
        assert_eq!(
            spec.tensor_names(),
            [
                "layers.0.weight",
                "layers.2.weight",
                "layers.2.bias",
                "layers.10.weight"
            ]
        );
        let kinds: Vec<&str> = spec.op_list().map(Op::kind).collect();
        assert_eq!(
            kinds,
            ["flatten", "linear", "relu", "linear", "relu", "linear"]
        );
        let s = spec.check_shapes(&t).unwrap();
        assert_eq!(s.hidden.len(), 2);
    }

    #[test]
    fn mlp_refuses_what_it_cannot_read_and_preset_names_it() {
        let mixed = shapes(&[("fc1.weight", &[4, 784]), ("layers.0.weight", &[4, 4])]);
        assert!(matches!(mlp(&mixed), Err(ArchError::PresetMismatch { .. })));
        assert!(matches!(
            mlp(&shapes(&[("conv1.weight", &[3, 1, 5, 5])])),
            Err(ArchError::PresetMismatch { .. })
        ));
        assert_eq!(preset("mlp"), Err(ArchError::ShapeDriven("mlp".into())));
        assert_eq!(preset_for("mnist-cnn", &mixed).unwrap(), mnist_cnn());
        // `fc1x` and `fc` are not numbered layers; extra tensors are left to check_shapes.
        let t = shapes(&[
            ("fc1.weight", &[8, 784]),
            ("fc2.weight", &[10, 8]),
            ("fc1x.weight", &[1, 1]),
        ]);
        let spec = mlp(&t).unwrap();
        assert_eq!(spec.tensor_names(), ["fc1.weight", "fc2.weight"]);
        assert!(
            matches!(spec.check_shapes(&t), Err(ArchError::UnusedTensor(n)) if n == "fc1x.weight")
        );
    }
}
