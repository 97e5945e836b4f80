//! The BatchNorm and residual presets for 28×28 MNIST, and the tensor shapes of every fixed
//! preset ([`preset_tensors`]), from which a trainer or a benchmark builds a model.
//!
//! - `cnn-bn`: conv 3×3 (1→16) → BN → ReLU → max-pool 2, conv 3×3 (16→32) → BN → ReLU →
//!   max-pool 2, flatten (32·7·7 = 1568), fc1 (→32, no bias) → BN → ReLU, fc2 (→10, bias).
//!   Convolutions have no bias (the BN that follows has one).
//! - `resnet-mini`: stem conv 3×3 (1→16) → BN → ReLU → max-pool 2 (16×14×14); `layer1`: a
//!   basic residual block 16→16 with an identity shortcut; `layer2`: 16→32 with stride 2
//!   (32×7×7) and a 1×1 stride-2 conv + BN projection shortcut; `layer3`: 32→32, identity;
//!   global average pooling (32), `fc` (→10, bias). A basic block is conv 3×3 → BN → ReLU →
//!   conv 3×3 → BN, `add` the shortcut, ReLU; the block's output is named after the block
//!   (`layer1`, …), the stem's `stem`.
//!
//! ```
//! use gmfuse_engine::arch::{preset, preset_tensors};
//! for name in ["cnn-bn", "resnet-mini"] {
//!     let spec = preset(name).unwrap();
//!     assert!(spec.check_tensors(&preset_tensors(name).unwrap()).is_ok());
//! }
//! ```

use std::collections::BTreeMap;

use super::error::ArchError;
use super::spec::{ArchSpec, Node, Op};

fn conv(weight: &str, stride: usize, padding: usize) -> Op {
    Op::Conv2d {
        weight: weight.into(),
        bias: None,
        stride,
        padding,
    }
}

/// A batchnorm whose tensors are `<prefix>.weight`, `.bias`, `.running_mean`, `.running_var`
/// (PyTorch's state-dict keys), eps 1e-5.
fn bn(prefix: &str, two_d: bool) -> Op {
    let t = |s: &str| format!("{prefix}.{s}");
    let (weight, bias, running_mean, running_var, eps) = (
        t("weight"),
        t("bias"),
        t("running_mean"),
        t("running_var"),
        1e-5,
    );
    if two_d {
        Op::Batchnorm2d {
            weight,
            bias,
            running_mean,
            running_var,
            eps,
        }
    } else {
        Op::Batchnorm1d {
            weight,
            bias,
            running_mean,
            running_var,
            eps,
        }
    }
}

fn pool2() -> Op {
    Op::Maxpool2d {
        kernel: 2,
        stride: None,
        padding: 0,
    }
}

/// `cnn-bn`; see the module doc.
pub(super) fn cnn_bn() -> ArchSpec {
    let mut ops = Vec::new();
    for k in 1..=2 {
        ops.extend([
            conv(&format!("conv{k}.weight"), 1, 1),
            bn(&format!("bn{k}"), true),
            Op::Relu {},
            pool2(),
        ]);
    }
    ops.extend([
        Op::Flatten {},
        Op::Linear {
            weight: "fc1.weight".into(),
            bias: None,
        },
        bn("bn3", false),
        Op::Relu {},
        Op::Linear {
            weight: "fc2.weight".into(),
            bias: Some("fc2.bias".into()),
        },
    ]);
    ArchSpec::chain("cnn-bn", [1, 28, 28], ops)
}

/// A basic residual block named `name` reading `input`; `projection` adds a 1×1 stride-2
/// conv + BN shortcut (and the block's first conv has stride 2).
fn block(name: &str, input: &str, projection: bool) -> Vec<Node> {
    let stride = if projection { 2 } else { 1 };
    let mut nodes: Vec<Node> = vec![
        Node::from(conv(&format!("{name}.conv1.weight"), stride, 1)),
        bn(&format!("{name}.bn1"), true).into(),
        Op::Relu {}.into(),
        conv(&format!("{name}.conv2.weight"), 1, 1).into(),
        Node::from(bn(&format!("{name}.bn2"), true)).named(&format!("{name}.bn2")),
    ];
    let shortcut = if projection {
        let short = format!("{name}.shortcut");
        nodes.push(Node::from(conv(&format!("{short}.conv.weight"), 2, 0)).reading(input));
        nodes.push(Node::from(bn(&format!("{short}.bn"), true)).named(&short));
        short
    } else {
        input.to_string()
    };
    nodes.push(Node::add(&format!("{name}.bn2"), &shortcut));
    nodes.push(Node::from(Op::Relu {}).named(name));
    nodes
}

/// `resnet-mini`; see the module doc.
pub(super) fn resnet_mini() -> ArchSpec {
    let mut ops: Vec<Node> = vec![
        conv("stem.conv.weight", 1, 1).into(),
        bn("stem.bn", true).into(),
        Op::Relu {}.into(),
        Node::from(pool2()).named("stem"),
    ];
    ops.extend(block("layer1", "stem", false));
    ops.extend(block("layer2", "layer1", true));
    ops.extend(block("layer3", "layer2", false));
    ops.push(Op::GlobalAvgpool {}.into());
    ops.push(
        Op::Linear {
            weight: "fc.weight".into(),
            bias: Some("fc.bias".into()),
        }
        .into(),
    );
    ArchSpec {
        name: "resnet-mini".into(),
        input: [1, 28, 28],
        ops,
    }
}

/// The tensors (name → shape) of a model of fixed preset `name`: `mnist-cnn` as the
/// pygmtools example's, `cnn-bn` and `resnet-mini` as in the module doc.
///
/// # Errors
/// [`ArchError::UnknownPreset`] for any other name (`mlp` has no fixed widths).
pub fn preset_tensors(name: &str) -> Result<BTreeMap<String, Vec<usize>>, ArchError> {
    let mut t: Vec<(String, Vec<usize>)> = Vec::new();
    let bn = |t: &mut Vec<(String, Vec<usize>)>, prefix: &str, c: usize| {
        for s in ["weight", "bias", "running_mean", "running_var"] {
            t.push((format!("{prefix}.{s}"), vec![c]));
        }
    };
    let w = |name: &str, shape: &[usize]| (name.to_string(), shape.to_vec());
    match name {
        "mnist-cnn" => t.extend([
            w("conv1.weight", &[32, 1, 5, 5]),
            w("conv2.weight", &[64, 32, 5, 5]),
            w("fc1.weight", &[32, 3136]),
            w("fc2.weight", &[10, 32]),
        ]),
        "cnn-bn" => {
            t.push(w("conv1.weight", &[16, 1, 3, 3]));
            bn(&mut t, "bn1", 16);
            t.push(w("conv2.weight", &[32, 16, 3, 3]));
            bn(&mut t, "bn2", 32);
            t.push(w("fc1.weight", &[32, 1568]));
            bn(&mut t, "bn3", 32);
            t.extend([w("fc2.weight", &[10, 32]), w("fc2.bias", &[10])]);
        }
        "resnet-mini" => {
            t.push(w("stem.conv.weight", &[16, 1, 3, 3]));
            bn(&mut t, "stem.bn", 16);
            for (layer, cin, cout) in [("layer1", 16, 16), ("layer2", 16, 32), ("layer3", 32, 32)] {
                t.push(w(&format!("{layer}.conv1.weight"), &[cout, cin, 3, 3]));
                bn(&mut t, &format!("{layer}.bn1"), cout);
                t.push(w(&format!("{layer}.conv2.weight"), &[cout, cout, 3, 3]));
                bn(&mut t, &format!("{layer}.bn2"), cout);
                if cin != cout {
                    t.push(w(
                        &format!("{layer}.shortcut.conv.weight"),
                        &[cout, cin, 1, 1],
                    ));
                    bn(&mut t, &format!("{layer}.shortcut.bn"), cout);
                }
            }
            t.extend([w("fc.weight", &[10, 32]), w("fc.bias", &[10])]);
        }
        _ => return Err(ArchError::UnknownPreset(name.to_string())),
    }
    Ok(t.into_iter().collect())
}
