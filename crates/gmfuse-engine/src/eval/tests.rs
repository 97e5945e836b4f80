//! Tests: the vendored MNIST set, strict readers, accuracy/loss semantics, and the seed models'
//! published accuracies.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayD, IxDyn, array};
use safetensors::{Dtype, tensor::TensorView};

use super::*;
use crate::arch::{ArchSpec, preset};
use crate::forward::tests::{load_seed_model, seed_models_dir};
use crate::weights::{DType, Tensor, WeightSet};

/// The MNIST test set vendored by the service under `assets/mnist/`, read from the workspace
/// at test time (the engine embeds no dataset).
pub(crate) fn mnist_test() -> Dataset {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    Dataset::from_idx(
        "mnist-test",
        &read("t10k-images.idx3-ubyte.gz"),
        &read("t10k-labels.idx1-ubyte.gz"),
    )
    .expect("the vendored MNIST test set is valid")
}

fn err(r: Result<Dataset, EvalError>) -> String {
    match r {
        Err(EvalError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A raw IDX file: `magic`, dims, data.
fn idx_file(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn safetensors(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn the_vendored_mnist_test_set_has_the_known_labels_and_pixels() {
    let d = mnist_test();
    assert_eq!(
        (d.len(), d.shape, d.images.dim()),
        (10_000, [1, 28, 28], (10_000, 784))
    );
    // The well-known first test labels, and the class counts of the MNIST test set.
    assert_eq!(d.labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let mut hist = [0; 10];
    d.labels.iter().for_each(|&l| hist[l as usize] += 1);
    assert_eq!(
        hist,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // Python's gzip over the vendored file: image 0 sums to 18454 (u8), its brightest pixel
    // (255) is at index 355; the whole file sums to 264923200.
    let first: f64 = d.images.row(0).iter().map(|&p| f64::from(p) * 255.0).sum();
    assert!((first - 18454.0).abs() < 1e-2, "{first}");
    assert_eq!(d.images[[0, 355]], 1.0);
    let total: f64 = d
        .images
        .iter()
        .map(|&p| (f64::from(p) * 255.0).round())
        .sum();
    assert_eq!(total, 264_923_200.0);
    assert_eq!(d.head(3).labels, [7, 2, 1]);
}

#[test]
fn idx_files_read_the_same_raw_or_gzipped() {
    let pixels = [0u8, 51, 255, 102, 0, 0, 1, 2, 3, 4, 5, 6];
    let images = idx_file(2051, &[2, 2, 3], &pixels);
    let labels = idx_file(2049, &[2], &[3, 9]);
    let raw = Dataset::from_idx("t", &images, &labels).unwrap();
    let zipped = Dataset::from_idx("t", &gz(&images), &gz(&labels)).unwrap();
    assert_eq!((raw.shape, &raw.labels), ([1, 2, 3], &vec![3, 9]));
    assert_eq!(raw.images, zipped.images);
    assert_eq!(raw.images.row(0).to_vec(), [0.0, 0.2, 1.0, 0.4, 0.0, 0.0]);
    let four = idx_file(2052, &[1, 2, 1, 3], &pixels[..6]);
    let d = Dataset::from_idx("t", &four, &idx_file(2049, &[1], &[0])).unwrap();
    assert_eq!(d.shape, [2, 1, 3]);
}

#[test]
fn malformed_idx_files_are_rejected_with_a_reason() {
    let images = idx_file(2051, &[2, 1, 2], &[1, 2, 3, 4]);
    let labels = idx_file(2049, &[2], &[0, 1]);
    let cases = [
        (
            idx_file(2049, &[4], &[1, 2, 3, 4]),
            labels.clone(),
            "magic number 2049",
        ),
        (images[..10].to_vec(), labels.clone(), "truncated"),
        (
            idx_file(2051, &[2, 1, 2], &[1, 2, 3]),
            labels.clone(),
            "need 4 bytes",
        ),
        (
            [&images[..], &[7]].concat(),
            labels.clone(),
            "the file has 5",
        ),
        (
            images.clone(),
            idx_file(2049, &[3], &[0, 1, 2]),
            "3 labels for 2 images",
        ),
        (
            idx_file(2051, &[0, 28, 28], &[]),
            idx_file(2049, &[0], &[]),
            "no samples",
        ),
        (
            idx_file(2051, &[1, 0, 5], &[]),
            idx_file(2049, &[1], &[0]),
            "zero dimension",
        ),
        (vec![0x1f, 0x8b, 8, 0, 1, 2], labels.clone(), "bad gzip"),
        (
            images.clone(),
            idx_file(2051, &[2], &[0, 1]),
            "labels: IDX magic",
        ),
    ];
    for (images, labels, needle) in cases {
        let msg = err(Dataset::from_idx("t", &images, &labels));
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(!msg.contains('\n'));
    }
}

#[test]
fn safetensors_datasets_scale_bytes_and_keep_floats() {
    let bytes = safetensors(&[
        ("images", Dtype::U8, vec![2, 1, 2], vec![0, 255, 51, 102]),
        (
            "labels",
            Dtype::I64,
            vec![2],
            [4i64, 0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    ]);
    let d = Dataset::from_safetensors("s", &bytes).unwrap();
    assert_eq!((d.shape, d.labels.clone()), ([1, 1, 2], vec![4, 0]));
    assert_eq!(d.images, array![[0.0, 1.0], [0.2, 0.4]]);
    let floats: Vec<u8> = [0.5f32, -1.5, 2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = safetensors(&[
        ("images", Dtype::F32, vec![1, 3, 1, 1], floats),
        ("labels", Dtype::U8, vec![1], vec![7]),
    ]);
    let d = Dataset::from_safetensors("s", &bytes).unwrap();
    assert_eq!(
        (d.shape, d.images.row(0).to_vec()),
        ([3, 1, 1], vec![0.5, -1.5, 2.0])
    );
}

#[test]
fn malformed_safetensors_datasets_are_rejected_with_a_reason() {
    let img = ("images", Dtype::U8, vec![2, 1, 1], vec![1, 2]);
    let lab = ("labels", Dtype::U8, vec![2], vec![0, 1]);
    let nan: Vec<u8> = [1.0f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let cases = [
        (vec![img.clone()], "`labels` is missing"),
        (
            vec![
                img.clone(),
                lab.clone(),
                ("extra", Dtype::U8, vec![1], vec![0]),
            ],
            "unexpected tensor `extra`",
        ),
        (
            vec![
                ("images", Dtype::U8, vec![2, 2], vec![1, 2, 3, 4]),
                lab.clone(),
            ],
            "expected shape [n, H, W]",
        ),
        (
            vec![img.clone(), ("labels", Dtype::U8, vec![1, 2], vec![0, 1])],
            "labels: expected shape [n]",
        ),
        (
            vec![img.clone(), ("labels", Dtype::U8, vec![3], vec![0, 1, 2])],
            "3 labels for 2 images",
        ),
        (
            vec![img.clone(), ("labels", Dtype::F32, vec![2], vec![0; 8])],
            "not an integer type",
        ),
        (
            vec![img.clone(), ("labels", Dtype::I8, vec![2], vec![0, 0xff])],
            "value -1 at index 1",
        ),
        (
            vec![("images", Dtype::F32, vec![2, 1, 1], nan), lab.clone()],
            "not finite",
        ),
        (
            vec![
                ("images", Dtype::I32, vec![2, 1, 1], vec![0; 8]),
                lab.clone(),
            ],
            "not supported",
        ),
    ];
    for (tensors, needle) in cases {
        let msg = err(Dataset::from_safetensors("s", &safetensors(&tensors)));
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    }
    assert!(err(Dataset::from_safetensors("s", b"not a file")).starts_with("safetensors:"));
}

/// Flatten + identity linear layer: the logits are the pixels.
fn identity_net(classes: usize) -> Network {
    let spec: ArchSpec = serde_json::from_str(&format!(
        r#"{{"name":"id","input":[1,1,{classes}],"ops":[{{"op":"flatten"}},{{"op":"linear","weight":"w"}}]}}"#
    ))
    .unwrap();
    let eye = ArrayD::from_shape_fn(IxDyn(&[classes, classes]), |i| {
        f64::from(u8::from(i[0] == i[1]))
    });
    let mut ws = WeightSet::default();
    ws.tensors.insert(
        "w".into(),
        Tensor {
            dtype: DType::F32,
            data: eye,
        },
    );
    Network::new(&spec, &ws).unwrap()
}

fn rows(images: Array2<f32>, labels: Vec<u32>) -> Dataset {
    Dataset {
        name: "rows".into(),
        shape: [1, 1, images.ncols()],
        images,
        labels,
    }
}

#[test]
fn accuracy_breaks_ties_to_the_first_class_and_loss_is_cross_entropy() {
    // numpy: x.argmax(1) = [1, 0, 2, 0]; mean −log_softmax(x)[y] = 0.8781822027106923.
    let x = array![
        [0.2, 0.5, 0.1],
        [0.7, 0.7, 0.1],
        [0.0, 0.0, 0.9],
        [0.3, 0.1, 0.2]
    ];
    let r = evaluate(&identity_net(3), &rows(x, vec![1, 1, 2, 2]), &|| false).unwrap();
    assert_eq!((r.accuracy, r.samples), (50.0, 4));
    assert!(
        (r.loss - 0.878_182_202_710_692_3).abs() < 1e-12,
        "{}",
        r.loss
    );
}

#[test]
fn evaluate_rejects_bad_labels_shapes_and_empty_sets() {
    let net = identity_net(3);
    let x = array![[0.2, 0.5, 0.1], [0.7, 0.7, 0.1]];
    let msg = |r: Result<EvalResult, EvalError>| match r {
        Err(EvalError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = msg(evaluate(&net, &rows(x.clone(), vec![0, 3]), &|| false));
    assert!(
        m.contains("label 3 of sample 1 is out of range for 3 classes"),
        "{m}"
    );
    let m = msg(evaluate(&net, &rows(array![[0.1, 0.2]], vec![0]), &|| {
        false
    }));
    assert!(m.contains("the network expects [1, 1, 3]"), "{m}");
    let m = msg(evaluate(
        &net,
        &rows(x.clone(), vec![0, 1]).head(0),
        &|| false,
    ));
    assert!(m.contains("is empty"), "{m}");
}

#[test]
fn evaluate_stops_when_asked() {
    let mut d = mnist_test().head(1000);
    d.shape = [1, 1, 784];
    let net = identity_net(784);
    d.labels.iter_mut().for_each(|l| *l = 0);
    let polls = AtomicUsize::new(0);
    let stop = || polls.fetch_add(1, Ordering::SeqCst) >= 2;
    assert_eq!(evaluate(&net, &d, &stop), Err(EvalError::Canceled));
    assert!(polls.load(Ordering::SeqCst) < 1000usize.div_ceil(EVAL_BATCH) + 2);
}

#[test]
fn seed_models_score_the_examples_accuracies() {
    let Some(dir) = seed_models_dir() else {
        eprintln!(
            "SKIPPED: seed models not found (set GMFUSE_SEED_MODELS); accuracies not checked"
        );
        return;
    };
    let data = mnist_test();
    let spec = preset("mnist-cnn").unwrap();
    // The example's printed accuracies (α = 0 and 1 of its tables); the losses are those of
    // reference/gamf_np.py's forward (f32) with the NLL taken in f64.
    for (file, acc, loss) in [
        ("model1.safetensors", "84.18", 0.434_951_696_924_654_4),
        ("model2.safetensors", "83.81", 0.486_951_397_623_201_4),
    ] {
        let net = Network::new(&spec, &load_seed_model(&dir.join(file))).unwrap();
        // Both convolution paths: the AVX-512 kernel (where present) and im2col + GEMM.
        for net in [net.clone(), net.portable()] {
            let r = evaluate(&net, &data, &|| false).unwrap();
            let got = (format!("{:.2}", r.accuracy), r.samples);
            assert_eq!(got, (acc.to_string(), 10_000), "{file}");
            assert!((r.loss - loss).abs() < 1e-5, "{file}: loss {}", r.loss);
        }
    }
}
