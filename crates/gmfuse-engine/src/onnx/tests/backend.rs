//! The `onnx` package's backend test data (`onnx==1.23.2`): PyTorch-exported single-op models
//! with inputs and expected outputs (`pytorch-converted/*`), and real architectures with
//! placeholder weights (`light/light_*.onnx`). Which models are read and which are refused is
//! pinned, so that a regression shows.

use std::path::Path;

use ndarray::{Array2, ArrayD};
use prost::Message;

use super::data_dir;
use crate::arch::{ArchSpec, Op, Shape};
use crate::forward::Network;
use crate::onnx::limits::Budget;
use crate::onnx::proto::{ModelProto, TensorProto};
use crate::onnx::{OnnxError, import, read, spec, tensor};
use crate::weights::{DType, Tensor, WeightSet};

/// A `TensorProto` file (`input_0.pb`, `output_0.pb`) as `(N, rest)` values.
fn pb(path: &Path) -> Array2<f64> {
    let t = TensorProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    let a = tensor::to_tensor(&t, "pb", &mut Budget::default())
        .unwrap()
        .data;
    let n = a.shape()[0];
    let rest = a.len() / n;
    a.into_shape_with_order((n, rest)).unwrap()
}

/// A spec of weightless ops (which `validate` refuses: no layer) made computable by an
/// identity linear head, which passes every value through exactly.
fn with_identity_head(bytes: &[u8]) -> (ArchSpec, WeightSet) {
    let model = ModelProto::decode(bytes).unwrap();
    let imported = import::import(&model, crate::onnx::limits::MAX_TOTAL_ELEMS).unwrap();
    let mut spec = spec::to_spec("t", &imported);
    let mut weights = imported.weights;
    let graph = spec
        .graph_with(|n| weights.tensors.get(n).map(|t| t.data.shape().to_vec()))
        .unwrap();
    let Some(&Shape::Flat(n)) = graph.shapes.last() else {
        panic!("flat output")
    };
    let eye = ArrayD::from_shape_fn(vec![n, n], |i| if i[0] == i[1] { 1.0 } else { 0.0 });
    weights.tensors.insert(
        "__eye".into(),
        Tensor {
            dtype: DType::F32,
            data: eye,
        },
    );
    spec.ops.push(
        Op::Linear {
            weight: "__eye".into(),
            bias: None,
        }
        .into(),
    );
    (spec, weights)
}

/// The largest difference between gmfuse's forward pass and the expected output of the
/// pytorch-converted model in `dir`, or the error reading it.
fn forward_error(dir: &Path) -> Result<f64, OnnxError> {
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    assert!(crate::onnx::looks_like_onnx(&bytes), "{}", dir.display());
    let (spec, weights) = match read(&bytes) {
        Ok(m) => (m.spec, m.weights),
        Err(OnnxError::Shape(crate::arch::ArchError::NoLayers)) => with_identity_head(&bytes),
        Err(e) => return Err(e),
    };
    let net = Network::new(&spec, &weights).unwrap();
    let x = pb(&dir.join("test_data_set_0/input_0.pb")).mapv(|v| v as f32);
    let mut y = net.logits(x.view()).mapv(f64::from);
    let want = pb(&dir.join("test_data_set_0/output_0.pb"));
    let model = ModelProto::decode(bytes.as_slice()).unwrap();
    if model
        .graph
        .unwrap()
        .node
        .last()
        .and_then(|n| n.op_type.as_deref())
        == Some("Softmax")
    {
        for mut row in y.rows_mut() {
            let m = row.fold(f64::MIN, |a, &b| a.max(b));
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
    }
    assert_eq!(y.dim(), want.dim(), "{}", dir.display());
    Ok(y.iter()
        .zip(&want)
        .fold(0.0, |m, (a, b)| m.max((a - b).abs())))
}

/// `(node, op_type)` of an [`OnnxError::Unsupported`], or the error's text.
fn refusal(e: &OnnxError) -> String {
    match e {
        OnnxError::Unsupported { node, op_type, .. } => format!("{op_type} `{node}`"),
        e => e.to_string(),
    }
}

/// Every model of `folder` run ([`forward_error`] within 1e-4) or refused as unsupported:
/// the names that pass and `(name, refusal)` of the others.
fn run_folder(data: &Path, folder: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut dirs: Vec<_> = std::fs::read_dir(data.join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let (mut passed, mut refused) = (Vec::new(), Vec::new());
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match forward_error(dir) {
            Ok(d) => {
                assert!(d <= 1e-4, "{name}: forward differs by {d}");
                passed.push(name);
            }
            Err(e) => {
                assert!(e.is_unsupported(), "{name}: {e}");
                refused.push((name, refusal(&e)));
            }
        }
    }
    eprintln!("{folder} passed: {passed:?}\nrefused: {refused:#?}");
    (passed, refused)
}

fn pairs(pins: &[(&str, &str)]) -> Vec<(String, String)> {
    pins.iter()
        .map(|(m, r)| (m.to_string(), r.to_string()))
        .collect()
}

#[test]
fn pytorch_converted_models_reproduce_their_outputs_or_are_refused_naming_a_node() {
    let Some(data) = data_dir("pytorch_converted") else {
        return;
    };
    let (passed, refused) = run_folder(&data, "pytorch-converted");
    assert_eq!(passed, PASSED, "refused: {refused:#?}");
    assert_eq!(refused, pairs(&REFUSED));
}

#[test]
fn pytorch_operator_models_reproduce_their_outputs_or_are_refused_naming_a_node() {
    let Some(data) = data_dir("pytorch_operator") else {
        return;
    };
    let (passed, refused) = run_folder(&data, "pytorch-operator");
    assert_eq!(passed, OPERATOR_PASSED, "refused: {refused:#?}");
    assert_eq!(refused, pairs(&OPERATOR_REFUSED));
}

/// The pytorch-operator models (single PyTorch ops, onnx 1.23.2) that gmfuse runs: a Conv
/// without bias of `[20, 16, 50, 40]`, and a Flatten through an identity head.
const OPERATOR_PASSED: [&str; 2] = ["test_operator_conv", "test_operator_flatten"];

/// What refuses the other pytorch-operator models: unmapped ops, two graph inputs or a 1-D one,
/// a Reshape of `[1, 2]` to a shape that is not a flatten, Slice of an activation.
const OPERATOR_REFUSED: [(&str, &str); 33] = [
    ("test_operator_add_broadcast", "input `graph`"),
    ("test_operator_add_size1_broadcast", "input `graph`"),
    ("test_operator_add_size1_right_broadcast", "input `graph`"),
    (
        "test_operator_add_size1_singleton_broadcast",
        "input `graph`",
    ),
    ("test_operator_addconstant", "Add `2`"),
    ("test_operator_addmm", "input `graph`"),
    ("test_operator_basic", "Tanh `4`"),
    ("test_operator_chunk", "output `graph`"),
    ("test_operator_clip", "Clip `1`"),
    ("test_operator_concat2", "input `graph`"),
    ("test_operator_convtranspose", "ConvTranspose `2`"),
    ("test_operator_exp", "Exp `1`"),
    ("test_operator_index", "Slice `1`"),
    ("test_operator_max", "Max `2`"),
    ("test_operator_maxpool", "input `0`"),
    ("test_operator_min", "Min `2`"),
    ("test_operator_mm", "input `graph`"),
    ("test_operator_non_float_params", "Add `2`"),
    ("test_operator_pad", "Pad `1`"),
    ("test_operator_params", "Add `2`"),
    ("test_operator_permute2", "Transpose `1`"),
    ("test_operator_pow", "Pow `2`"),
    ("test_operator_reduced_mean", "ReduceMean `1`"),
    ("test_operator_reduced_mean_keepdim", "ReduceMean `1`"),
    ("test_operator_reduced_sum", "ReduceSum `1`"),
    ("test_operator_reduced_sum_keepdim", "ReduceSum `1`"),
    ("test_operator_repeat", "Tile `2`"),
    ("test_operator_repeat_dim_overflow", "Reshape `2`"),
    ("test_operator_selu", "Selu `1`"),
    ("test_operator_sqrt", "Sqrt `1`"),
    (
        "test_operator_symbolic_override",
        "InstanceNormalization `3`",
    ),
    ("test_operator_symbolic_override_nested", "output `graph`"),
    ("test_operator_view", "input `0`"),
];

/// The pytorch-converted models whose ops gmfuse maps (onnx 1.23.2's test data); their
/// outputs match within 1e-4. The weightless ones (pools, BN, ReLU, Softmax) run with an
/// identity head; the Softmax ones are compared after a softmax of gmfuse's logits.
const PASSED: [&str; 13] = [
    "test_AvgPool2d",
    "test_AvgPool2d_stride",
    "test_BatchNorm2d_eval",
    "test_BatchNorm2d_momentum_eval",
    "test_Conv2d",
    "test_Conv2d_no_bias",
    "test_Conv2d_padding",
    "test_Conv2d_strided",
    "test_Linear",
    "test_MaxPool2d",
    "test_ReLU",
    "test_Softmax",
    "test_softmax_lastdim",
];

/// What refuses the others: the first node whose op gmfuse does not map, else the node whose
/// form it does not (depthwise/grouped/dilated Conv, asymmetric Pad, Softmax over 4-D,
/// dilated MaxPool, a Reshape that is not a flatten), else the graph input (1-D and 3-D data;
/// the AvgPool1d models' Unsqueeze is a shape op gmfuse knows, so their 3-D input is named).
const REFUSED: [(&str, &str); 69] = [
    ("test_AvgPool1d", "input `0`"),
    ("test_AvgPool1d_stride", "input `0`"),
    ("test_AvgPool3d", "input `0`"),
    ("test_AvgPool3d_stride", "input `0`"),
    ("test_AvgPool3d_stride1_pad0_gpu_input", "input `0`"),
    ("test_BatchNorm1d_3d_input_eval", "input `0`"),
    ("test_BatchNorm3d_eval", "input `0`"),
    ("test_BatchNorm3d_momentum_eval", "input `0`"),
    ("test_ConstantPad2d", "Pad `1`"),
    ("test_Conv1d", "input `0`"),
    ("test_Conv1d_dilated", "input `0`"),
    ("test_Conv1d_groups", "input `0`"),
    ("test_Conv1d_pad1", "input `0`"),
    ("test_Conv1d_pad1size1", "input `0`"),
    ("test_Conv1d_pad2", "input `0`"),
    ("test_Conv1d_pad2size1", "input `0`"),
    ("test_Conv1d_stride", "input `0`"),
    ("test_Conv2d_depthwise", "Conv `3`"),
    ("test_Conv2d_depthwise_padded", "Conv `3`"),
    ("test_Conv2d_depthwise_strided", "Conv `3`"),
    ("test_Conv2d_depthwise_with_multiplier", "Conv `3`"),
    ("test_Conv2d_dilated", "Conv `3`"),
    ("test_Conv2d_groups", "Conv `3`"),
    ("test_Conv2d_groups_thnn", "Conv `3`"),
    ("test_Conv3d", "input `0`"),
    ("test_Conv3d_dilated", "input `0`"),
    ("test_Conv3d_dilated_strided", "input `0`"),
    ("test_Conv3d_groups", "input `0`"),
    ("test_Conv3d_no_bias", "input `0`"),
    ("test_Conv3d_stride", "input `0`"),
    ("test_Conv3d_stride_padding", "input `0`"),
    ("test_ConvTranspose2d", "ConvTranspose `3`"),
    ("test_ConvTranspose2d_no_bias", "ConvTranspose `2`"),
    ("test_ELU", "Elu `1`"),
    ("test_Embedding", "Gather `2`"),
    ("test_Embedding_sparse", "Gather `2`"),
    ("test_GLU", "Split `1`"),
    ("test_GLU_dim", "Split `1`"),
    ("test_LeakyReLU", "LeakyRelu `1`"),
    ("test_LeakyReLU_with_negval", "LeakyRelu `1`"),
    ("test_Linear_no_bias", "Transpose `2`"),
    ("test_LogSoftmax", "LogSoftmax `1`"),
    ("test_MaxPool1d", "input `0`"),
    ("test_MaxPool1d_stride", "input `0`"),
    ("test_MaxPool1d_stride_padding_dilation", "input `X`"),
    ("test_MaxPool2d_stride_padding_dilation", "MaxPool `Y`"),
    ("test_MaxPool3d", "input `0`"),
    ("test_MaxPool3d_stride", "input `0`"),
    ("test_MaxPool3d_stride_padding", "input `0`"),
    ("test_PReLU_1d", "PRelu `2`"),
    ("test_PReLU_1d_multiparam", "PRelu `2`"),
    ("test_PReLU_2d", "PRelu `2`"),
    ("test_PReLU_2d_multiparam", "PRelu `2`"),
    ("test_PReLU_3d", "PRelu `2`"),
    ("test_PReLU_3d_multiparam", "PRelu `2`"),
    ("test_PixelShuffle", "Reshape `2`"),
    ("test_PoissonNLLLLoss_no_reduce", "Exp `2`"),
    ("test_ReflectionPad2d", "Pad `1`"),
    ("test_ReplicationPad2d", "Pad `1`"),
    ("test_SELU", "Selu `1`"),
    ("test_Sigmoid", "Sigmoid `1`"),
    ("test_Softmin", "Neg `1`"),
    ("test_Softplus", "Softplus `1`"),
    ("test_Softsign", "Abs `1`"),
    ("test_Tanh", "Tanh `1`"),
    ("test_ZeroPad2d", "Pad `1`"),
    ("test_log_softmax_dim3", "LogSoftmax `1`"),
    ("test_log_softmax_lastdim", "LogSoftmax `1`"),
    ("test_softmax_functional_dim3", "Softmax `1`"),
];

#[test]
fn light_models_derive_their_groups_or_name_their_first_unsupported_node() {
    let Some(data) = data_dir("light_models") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(data.join("light"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    let mut got = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(f).unwrap();
        assert!(crate::onnx::looks_like_onnx(&bytes), "{name}");
        let line = match read(&bytes) {
            Ok(m) => {
                let s = m.spec.validate(&m.weights).unwrap();
                let widest = s.hidden.iter().map(|g| g.size).max().unwrap();
                format!(
                    "{name}: {} ops, {} groups, widest {widest}",
                    m.spec.ops.len(),
                    s.hidden.len()
                )
            }
            Err(e) => format!("{name}: refused at {}", refusal(&e)),
        };
        got.push(line);
    }
    eprintln!("{got:#?}");
    assert_eq!(got, LIGHT);
}

/// ResNet-50: 1 stem group (64), 4 stage groups tied by the residual sums (256 … 2048) and 2
/// per bottleneck × 16 = 37; VGG-19: 16 convs + 2 hidden linear layers = 18, widest fc6/fc7
/// (4096). The rest stop at an op gmfuse does not fuse (LRN, Concat, the BN-as-Mul of the
/// Caffe2 exports' Unsqueeze) or at ShuffleNet's grouped convolution.
const LIGHT: [&str; 9] = [
    "light_bvlc_alexnet: refused at LRN `n2`",
    "light_densenet121: refused at Unsqueeze `n2`",
    "light_inception_v1: refused at LRN `n3`",
    "light_inception_v2: refused at Unsqueeze `n2`",
    "light_resnet50: 175 ops, 37 groups, widest 2048",
    "light_shufflenet: refused at Conv `n4`",
    "light_squeezenet: refused at Concat `n9`",
    "light_vgg19: 43 ops, 18 groups, widest 4096",
    "light_zfnet512: refused at LRN `n2`",
];
