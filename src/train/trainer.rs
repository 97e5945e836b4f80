//! Mini-batch SGD with momentum, data-parallel over fixed chunks of each batch, and evaluation.
//!
//! Determinism: a batch is cut into chunks of [`CHUNK`] images whatever the thread count; each
//! chunk's gradient is computed sequentially into its own buffer, and the chunk gradients are
//! summed in chunk order. The result is bit-identical run to run and for any rayon pool size
//! (on one CPU type: the `gemm` crate picks its SIMD kernels at run time).

use rayon::prelude::*;

use crate::train::data::Images;
use crate::train::net::{
    CLASSES, INPUT, Params, Workspace, backward, forward, softmax_cross_entropy,
};
use crate::train::rng::SplitMix64;

/// Images per parallel work item.
pub const CHUNK: usize = 16;

/// Training hyper-parameters.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub momentum: f32,
    /// See [`Params::kaiming_uniform`].
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
    grads: Params,
    dz: Vec<f32>,
    labels: Vec<u8>,
    loss: f64,
    correct: usize,
}

/// Train a fresh network on the samples `indices` of `data` (28×28 images); `on_epoch` is called
/// after every epoch.
///
/// # Panics
/// When `batch_size` is 0 or the images are not 28×28.
pub fn train(
    data: &Images,
    indices: &[usize],
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Params {
    assert!(cfg.batch_size > 0, "batch size must be positive");
    assert_eq!(data.rows * data.cols, INPUT, "images must be 28×28");
    let mut params = Params::kaiming_uniform(
        &mut SplitMix64::derive(cfg.seed, INIT_STREAM),
        cfg.init_gain,
    );
    let mut velocity = Params::zeros();
    let mut shuffle = SplitMix64::derive(cfg.seed, SHUFFLE_STREAM);
    let mut order = indices.to_vec();
    let mut slots: Vec<Slot> = (0..cfg.batch_size.div_ceil(CHUNK))
        .map(|_| Slot {
            ws: Workspace::new(CHUNK),
            grads: Params::zeros(),
            dz: vec![0.0; CHUNK * CLASSES],
            labels: Vec::with_capacity(CHUNK),
            loss: 0.0,
            correct: 0,
        })
        .collect();
    let mut grad = Params::zeros();
    for epoch in 1..=cfg.epochs {
        shuffle.shuffle(&mut order);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for batch in order.chunks(cfg.batch_size) {
            let scale = 1.0 / batch.len() as f32;
            let used = batch.len().div_ceil(CHUNK);
            slots[..used]
                .par_iter_mut()
                .zip(batch.par_chunks(CHUNK))
                .for_each(|(slot, chunk)| {
                    let n = chunk.len();
                    let x = slot.ws.input_mut(n);
                    for (dst, &i) in x.chunks_exact_mut(INPUT).zip(chunk) {
                        dst.copy_from_slice(data.image(i));
                    }
                    slot.labels.clear();
                    slot.labels.extend(chunk.iter().map(|&i| data.labels[i]));
                    forward(&params, &mut slot.ws);
                    let dz = &mut slot.dz[..n * CLASSES];
                    (slot.loss, slot.correct) =
                        softmax_cross_entropy(slot.ws.logits(), &slot.labels, scale, dz);
                    slot.grads.data.fill(0.0);
                    backward(&params, &mut slot.ws, dz, &mut slot.grads);
                });
            grad.data.fill(0.0);
            for slot in &slots[..used] {
                for (g, s) in grad.data.iter_mut().zip(&slot.grads.data) {
                    *g += s;
                }
                loss += slot.loss;
                correct += slot.correct;
            }
            sgd_momentum_step(&mut params.data, &mut velocity.data, &grad.data, cfg);
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

/// Accuracy (percent) and mean cross-entropy of `params` on all of `data`.
pub fn evaluate(params: &Params, data: &Images) -> (f64, f64) {
    const EVAL_CHUNK: usize = 100;
    let per_chunk: Vec<(f64, usize)> = (0..data.len())
        .collect::<Vec<_>>()
        .par_chunks(EVAL_CHUNK)
        .map(|chunk| {
            let mut ws = Workspace::new(chunk.len());
            let x = ws.input_mut(chunk.len());
            for (dst, &i) in x.chunks_exact_mut(INPUT).zip(chunk) {
                dst.copy_from_slice(data.image(i));
            }
            forward(params, &mut ws);
            let labels: Vec<u8> = chunk.iter().map(|&i| data.labels[i]).collect();
            let mut dz = vec![0.0; chunk.len() * CLASSES];
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
    use crate::train::net::TORCH_DEFAULT_GAIN;

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
            lr: 0.02,
            momentum: 0.9,
            init_gain: TORCH_DEFAULT_GAIN,
            seed: 4,
        }
    }

    #[test]
    fn training_on_a_tiny_synthetic_problem_lowers_the_loss() {
        let data = synthetic();
        let indices: Vec<usize> = (0..data.len()).collect();
        let mut losses = Vec::new();
        let params = train(&data, &indices, &config(), |s| losses.push(s.loss));
        assert_eq!(losses.len(), 3);
        // Untrained: about ln 10 ≈ 2.30 per sample.
        assert!(
            losses[0] < 2.5 && losses[2] < 0.5 * losses[0],
            "losses {losses:?}"
        );
        let (accuracy, loss) = evaluate(&params, &data);
        assert!(
            accuracy == 100.0 && loss < losses[2],
            "{accuracy} % / {loss}"
        );
    }

    #[test]
    fn training_is_bit_identical_for_any_thread_count() {
        let data = synthetic();
        let indices: Vec<usize> = (0..data.len()).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| train(&data, &indices, &config(), |_| ()))
        };
        let one = run(1);
        let three = run(3);
        assert!(
            one.data
                .iter()
                .zip(&three.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_ne!(
            one,
            Params::kaiming_uniform(&mut SplitMix64::derive(4, INIT_STREAM), config().init_gain)
        );
    }
}
