//! Training and evaluation of an [`Mlp`]: mini-batch SGD with momentum with the loss of
//! [`net`](crate::train::net) and the update rule [`trainer::sgd_momentum_step`]. Training is
//! sequential (one GEMM per layer per batch, no threads), so the weights are a function of the
//! seed alone on one CPU type.

use crate::train::data::Images;
use crate::train::mlp::{Mlp, MlpWorkspace, mlp_backward, mlp_forward};
use crate::train::net::{CLASSES, softmax_cross_entropy};
use crate::train::rng::SplitMix64;
use crate::train::trainer::{EpochStats, TrainConfig, sgd_momentum_step};

/// Stream ids for [`SplitMix64::derive`] (the same purposes as the CNN trainer's).
const INIT_STREAM: u64 = 1;
const SHUFFLE_STREAM: u64 = 2;

/// Train a fresh MLP of widths `sizes` (output `CLASSES`) on the samples `indices` of `data`;
/// `on_epoch` is called after every epoch. The same [`TrainConfig`] fields and seed streams as
/// the CNN trainer: init from stream 1, shuffling from stream 2.
///
/// # Panics
/// When `batch_size` is 0 or the widths do not fit the data.
pub fn train_mlp(
    sizes: &[usize],
    data: &Images,
    indices: &[usize],
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Mlp {
    assert!(cfg.batch_size > 0, "batch size must be positive");
    assert_eq!(
        sizes[0],
        data.rows * data.cols,
        "input width must be the image size"
    );
    assert_eq!(
        sizes[sizes.len() - 1],
        CLASSES,
        "the MLP must output {CLASSES} classes"
    );
    let mut rng = SplitMix64::derive(cfg.seed, INIT_STREAM);
    let mut params = Mlp::kaiming_uniform(sizes, &mut rng, cfg.init_gain);
    let mut velocity = Mlp::zeros(sizes);
    let mut grad = Mlp::zeros(sizes);
    let mut shuffle = SplitMix64::derive(cfg.seed, SHUFFLE_STREAM);
    let mut order = indices.to_vec();
    let mut ws = MlpWorkspace::new(sizes, cfg.batch_size);
    let mut dz = vec![0.0; cfg.batch_size * CLASSES];
    let mut labels = Vec::with_capacity(cfg.batch_size);
    for epoch in 1..=cfg.epochs {
        shuffle.shuffle(&mut order);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for batch in order.chunks(cfg.batch_size) {
            let n = batch.len();
            load(data, batch, ws.input_mut(n), &mut labels);
            mlp_forward(&params, &mut ws);
            let dz = &mut dz[..n * CLASSES];
            let (l, c) = softmax_cross_entropy(ws.logits(), &labels, 1.0 / n as f32, dz);
            (loss, correct) = (loss + l, correct + c);
            grad.data.fill(0.0);
            mlp_backward(&params, &mut ws, dz, &mut grad);
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

fn load(data: &Images, batch: &[usize], x: &mut [f32], labels: &mut Vec<u8>) {
    let width = data.rows * data.cols;
    for (dst, &i) in x.chunks_exact_mut(width).zip(batch) {
        dst.copy_from_slice(data.image(i));
    }
    labels.clear();
    labels.extend(batch.iter().map(|&i| data.labels[i]));
}

/// Accuracy (percent) and mean cross-entropy of `m` on all of `data`.
pub fn evaluate_mlp(m: &Mlp, data: &Images) -> (f64, f64) {
    const EVAL_CHUNK: usize = 500;
    let mut ws = MlpWorkspace::new(&m.sizes, EVAL_CHUNK);
    let (mut loss, mut correct) = (0.0, 0);
    let mut labels = Vec::new();
    let mut dz = vec![0.0; EVAL_CHUNK * CLASSES];
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(EVAL_CHUNK) {
        load(data, chunk, ws.input_mut(chunk.len()), &mut labels);
        mlp_forward(m, &mut ws);
        let dz = &mut dz[..chunk.len() * CLASSES];
        let (l, c) = softmax_cross_entropy(ws.logits(), &labels, 1.0, dz);
        (loss, correct) = (loss + l, correct + c);
    }
    let n = data.len().max(1) as f64;
    (100.0 * correct as f64 / n, loss / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_a_tiny_mlp_lowers_the_loss_and_is_repeatable() {
        let mut rng = SplitMix64::new(17);
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for i in 0..90 {
            let class = i % 3;
            for p in 0..4 {
                pixels.push(if p == class { 1.0 } else { 0.0 } + 0.3 * rng.next_f32());
            }
            labels.push(class as u8);
        }
        let data = Images {
            pixels,
            labels,
            rows: 2,
            cols: 2,
        };
        let cfg = TrainConfig {
            epochs: 8,
            batch_size: 16,
            lr: 0.05,
            momentum: 0.9,
            init_gain: 1.0,
            seed: 3,
        };
        let indices: Vec<usize> = (0..data.len()).collect();
        let mut losses = Vec::new();
        let sizes = [4, 8, CLASSES];
        let m = train_mlp(&sizes, &data, &indices, &cfg, |s| losses.push(s.loss));
        assert!(losses[7] < 0.5 * losses[0], "losses {losses:?}");
        assert_eq!(evaluate_mlp(&m, &data).0, 100.0);
        assert_eq!(train_mlp(&sizes, &data, &indices, &cfg, |_| ()), m);
    }
}
