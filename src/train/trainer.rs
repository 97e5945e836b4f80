//! Mini-batch SGD with momentum for any [`Net`], data-parallel over fixed chunks of each batch,
//! and evaluation.
//!
//! Determinism: a batch is cut into chunks of [`TrainConfig::chunk`] samples whatever the thread
//! count; each chunk's gradient is computed sequentially into its own buffer, and the chunk
//! gradients are summed in chunk order. The result is bit-identical run to run and for any
//! rayon pool size (on one CPU type: the `gemm` crate picks its SIMD kernels at run time).
//!
//! Batch norm normalises each chunk with that chunk's statistics (with `chunk ≥ batch_size`,
//! the batch's), and its running statistics take one update per chunk, in chunk order, after
//! the step (PyTorch's momentum 0.1 and unbiased variance).

use rayon::prelude::*;

use crate::train::data::Images;
use crate::train::exec::{Mode, Workspace, backward, forward};
use crate::train::graph::{Layer, Net};
use crate::train::loss::softmax_cross_entropy;
use crate::train::norm::bn_update_running;
use crate::train::rng::SplitMix64;

/// Images per parallel work item of the `mnist-cnn` demo.
pub const CHUNK: usize = 16;

/// Training hyper-parameters.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Samples per parallel work item (see the module docs).
    pub chunk: usize,
    pub lr: f32,
    pub momentum: f32,
    /// Scale of the weight init (see [`Net::init`]).
    pub init_gain: f32,
    /// Seeds the initial weights and the shuffling.
    pub seed: u64,
}

/// Figures for one finished epoch.
#[derive(Clone, Copy, Debug)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch (weights changing as it goes).
    pub loss: f64,
    /// Training accuracy over the epoch, percent.
    pub accuracy: f64,
}

/// Stream ids for [`SplitMix64::derive`].
const INIT_STREAM: u64 = 1;
const SHUFFLE_STREAM: u64 = 2;

struct Slot {
    ws: Workspace,
    grads: Vec<f32>,
    dz: Vec<f32>,
    labels: Vec<u8>,
    loss: f64,
    correct: usize,
}

/// The initial parameters [`train`] starts from.
pub fn initial_params(net: &Net, cfg: &TrainConfig) -> Vec<f32> {
    net.init(
        &mut SplitMix64::derive(cfg.seed, INIT_STREAM),
        cfg.init_gain,
    )
}

/// Train `net` from [`initial_params`] on the samples `indices` of `data`; `on_epoch` is called
/// after every epoch. Returns the parameters (layout of [`Net::tensors`]).
///
/// # Panics
/// When `batch_size` or `chunk` is 0 or the images do not fit the net's input.
pub fn train(
    net: &Net,
    data: &Images,
    indices: &[usize],
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Vec<f32> {
    assert!(
        cfg.batch_size > 0 && cfg.chunk > 0,
        "batch size and chunk must be positive"
    );
    assert_eq!(
        data.rows * data.cols,
        net.input_len(),
        "images must fit the net's input"
    );
    let classes = net.output_len();
    let chunk = cfg.chunk.min(cfg.batch_size);
    let mut params = initial_params(net, cfg);
    let mut velocity = vec![0.0; net.n_params];
    let mut shuffle = SplitMix64::derive(cfg.seed, SHUFFLE_STREAM);
    let mut order = indices.to_vec();
    let mut slots: Vec<Slot> = (0..cfg.batch_size.div_ceil(chunk))
        .map(|_| Slot {
            ws: Workspace::new(net, chunk),
            grads: vec![0.0; net.n_params],
            dz: vec![0.0; chunk * classes],
            labels: Vec::with_capacity(chunk),
            loss: 0.0,
            correct: 0,
        })
        .collect();
    let mut grad = vec![0.0; net.n_params];
    for epoch in 1..=cfg.epochs {
        shuffle.shuffle(&mut order);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for batch in order.chunks(cfg.batch_size) {
            let scale = 1.0 / batch.len() as f32;
            let used = batch.len().div_ceil(chunk);
            slots[..used]
                .par_iter_mut()
                .zip(batch.par_chunks(chunk))
                .for_each(|(slot, part)| {
                    let n = part.len();
                    load(data, part, slot.ws.input_mut(n), &mut slot.labels);
                    forward(net, &params, &mut slot.ws, Mode::Train);
                    let dz = &mut slot.dz[..n * classes];
                    (slot.loss, slot.correct) =
                        softmax_cross_entropy(slot.ws.logits(), &slot.labels, scale, dz);
                    slot.grads.fill(0.0);
                    backward(net, &params, &mut slot.ws, dz, &mut slot.grads);
                });
            grad.fill(0.0);
            for slot in &slots[..used] {
                for (g, s) in grad.iter_mut().zip(&slot.grads) {
                    *g += s;
                }
                loss += slot.loss;
                correct += slot.correct;
            }
            sgd_momentum_step(&mut params, &mut velocity, &grad, cfg);
            for slot in &slots[..used] {
                update_running_stats(net, &slot.ws, &mut params);
            }
        }
        let n = order.len().max(1) as f64;
        on_epoch(&EpochStats {
            epoch,
            loss: loss / n,
            accuracy: 100.0 * correct as f64 / n,
        });
    }
    params
}

/// Copy the samples `part` of `data` into `x` and their labels into `labels`.
fn load(data: &Images, part: &[usize], x: &mut [f32], labels: &mut Vec<u8>) {
    let width = data.rows * data.cols;
    for (dst, &i) in x.chunks_exact_mut(width).zip(part) {
        dst.copy_from_slice(data.image(i));
    }
    labels.clear();
    labels.extend(part.iter().map(|&i| data.labels[i]));
}

/// Fold the batch statistics of `ws`'s last training-mode forward pass into the running ones.
fn update_running_stats(net: &Net, ws: &Workspace, params: &mut [f32]) {
    for (i, cache) in ws.bn_caches() {
        if let Layer::BatchNorm { mean, var, .. } = net.nodes[i].layer {
            let (m, v) = net.pair_mut(params, mean, var);
            bn_update_running(cache, m, v);
        }
    }
}

/// PyTorch's SGD with momentum (no dampening): `v ← μv + g`, `w ← w − lr·v`, element-wise.
pub fn sgd_momentum_step(
    weights: &mut [f32],
    velocity: &mut [f32],
    grad: &[f32],
    cfg: &TrainConfig,
) {
    for ((w, v), g) in weights.iter_mut().zip(velocity).zip(grad) {
        *v = cfg.momentum * *v + g;
        *w -= cfg.lr * *v;
    }
}

/// Accuracy (percent) and mean cross-entropy of `params` on all of `data`, batch norm in
/// inference mode.
pub fn evaluate(net: &Net, params: &[f32], data: &Images) -> (f64, f64) {
    const EVAL_CHUNK: usize = 100;
    let classes = net.output_len();
    let per_chunk: Vec<(f64, usize)> = (0..data.len())
        .collect::<Vec<_>>()
        .par_chunks(EVAL_CHUNK)
        .map(|part| {
            let mut ws = Workspace::new(net, part.len());
            let mut labels = Vec::new();
            load(data, part, ws.input_mut(part.len()), &mut labels);
            forward(net, params, &mut ws, Mode::Eval);
            let mut dz = vec![0.0; part.len() * classes];
            softmax_cross_entropy(ws.logits(), &labels, 1.0, &mut dz)
        })
        .collect();
    let n = data.len().max(1) as f64;
    let loss: f64 = per_chunk.iter().map(|c| c.0).sum();
    let correct: usize = per_chunk.iter().map(|c| c.1).sum();
    (100.0 * correct as f64 / n, loss / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mnist_cnn_tests::mnist_cnn;

    /// 96 noisy images of three easy classes: a bright top band (digit 0), a bright left band
    /// (digit 1), a bright centre square (digit 2).
    fn synthetic() -> Images {
        let mut rng = SplitMix64::new(17);
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..96 {
            let class = (i % 3) as u8;
            for r in 0..28 {
                for c in 0..28 {
                    let on = match class {
                        0 => r < 9,
                        1 => c < 9,
                        _ => (9..19).contains(&r) && (9..19).contains(&c),
                    };
                    pixels.push(if on { 0.8 } else { 0.0 } + 0.2 * rng.next_f32());
                }
            }
            labels.push(class);
        }
        Images {
            pixels,
            labels,
            rows: 28,
            cols: 28,
        }
    }

    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 3,
            batch_size: 40, // 3 chunks, the last one partial; the last batch is partial too
            chunk: CHUNK,
            lr: 0.02,
            momentum: 0.9,
            init_gain: 0.577_350_26,
            seed: 4,
        }
    }

    #[test]
    fn training_on_a_tiny_synthetic_problem_lowers_the_loss() {
        let data = synthetic();
        let net = mnist_cnn();
        let indices: Vec<usize> = (0..data.len()).collect();
        let mut losses = Vec::new();
        let params = train(&net, &data, &indices, &config(), |s| losses.push(s.loss));
        assert_eq!(losses.len(), 3);
        // Untrained: about ln 10 ≈ 2.30 per sample.
        assert!(
            losses[0] < 2.5 && losses[2] < 0.5 * losses[0],
            "losses {losses:?}"
        );
        let (accuracy, loss) = evaluate(&net, &params, &data);
        assert!(
            accuracy == 100.0 && loss < losses[2],
            "{accuracy} % / {loss}"
        );
    }

    #[test]
    fn training_is_bit_identical_for_any_thread_count() {
        let data = synthetic();
        let net = mnist_cnn();
        let indices: Vec<usize> = (0..data.len()).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| train(&net, &data, &indices, &config(), |_| ()))
        };
        let one = run(1);
        let three = run(3);
        assert!(
            one.iter()
                .zip(&three)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_ne!(one, initial_params(&net, &config()));
    }

    /// A small conv → BN → ReLU → global pooling → BN1d → linear net on the synthetic images.
    fn bn_net() -> Net {
        let spec = r#"{"name": "t", "input": [1, 28, 28], "ops": [
            {"op": "conv2d", "weight": "c.weight", "stride": 2, "padding": 1},
            {"op": "batchnorm2d", "weight": "bn.weight", "bias": "bn.bias",
             "running_mean": "bn.running_mean", "running_var": "bn.running_var"},
            {"op": "relu"},
            {"op": "global_avgpool"},
            {"op": "batchnorm1d", "weight": "bn1.weight", "bias": "bn1.bias",
             "running_mean": "bn1.running_mean", "running_var": "bn1.running_var"},
            {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}]}"#;
        let shapes = [
            ("c.weight", vec![8, 1, 3, 3]),
            ("bn.weight", vec![8]),
            ("bn.bias", vec![8]),
            ("bn.running_mean", vec![8]),
            ("bn.running_var", vec![8]),
            ("bn1.weight", vec![8]),
            ("bn1.bias", vec![8]),
            ("bn1.running_mean", vec![8]),
            ("bn1.running_var", vec![8]),
            ("fc.weight", vec![10, 8]),
            ("fc.bias", vec![10]),
        ];
        let shapes = shapes
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
        Net::new(&serde_json::from_str(spec).unwrap(), &shapes).unwrap()
    }

    #[test]
    fn batch_norm_nets_train_and_their_running_statistics_follow_the_batches() {
        let data = synthetic();
        let net = bn_net();
        let indices: Vec<usize> = (0..data.len()).collect();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 96,
            chunk: 96,
            lr: 0.0,
            ..config()
        };
        // With lr 0 the weights stay put and one batch of everything gives one update of the
        // running statistics: 0.9·(0, 1) + 0.1·(mean, unbiased variance) of the batch.
        let start = initial_params(&net, &cfg);
        let once = train(&net, &data, &indices, &cfg, |_| ());
        let mut ws = Workspace::new(&net, 96);
        load(&data, &indices, ws.input_mut(96), &mut Vec::new());
        forward(&net, &start, &mut ws, Mode::Train);
        let (_, cache) = ws.bn_caches().next().unwrap();
        let rm = net.slice(&once, 3);
        let rv = net.slice(&once, 4);
        let m = cache.count as f32;
        assert_eq!(cache.count, 96 * 14 * 14);
        for c in 0..8 {
            assert!((rm[c] - 0.1 * cache.mean[c]).abs() < 1e-6, "mean {c}");
            let want = 0.9 + 0.1 * cache.var[c] * m / (m - 1.0);
            assert!((rv[c] - want).abs() < 1e-5, "var {c}: {} vs {want}", rv[c]);
        }
        // Trained for real, the net fits the three classes, scored with running statistics.
        let cfg = TrainConfig {
            epochs: 6,
            batch_size: 16,
            chunk: 16,
            lr: 0.05,
            ..config()
        };
        let mut losses = Vec::new();
        let params = train(&net, &data, &indices, &cfg, |s| losses.push(s.loss));
        let (accuracy, _) = evaluate(&net, &params, &data);
        assert!(losses[5] < 0.5 * losses[0], "losses {losses:?}");
        assert!(accuracy > 90.0, "accuracy {accuracy} %");
    }
}
