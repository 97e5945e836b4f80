//! The demo pairs: two models of one architecture trained on opposite, label-skewed halves of
//! the MNIST training set, written as `model-a.safetensors` and `model-b.safetensors`. The
//! examples `train_demo` (any preset) and `train_mlp_demo` drive it.

use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::train::data::{Images, TrainError, label_skew_split};
use crate::train::graph::Net;
use crate::train::trainer::{TrainConfig, evaluate, train};

/// How a demo pair is trained.
#[derive(Clone, Debug)]
pub struct DemoSettings {
    /// Seeds the split (`seed`), model A (`seed + 1`) and model B (`seed + 2`).
    pub seed: u64,
    /// Probability that a sample goes to the model whose half of the digits (A: 0–4, B: 5–9)
    /// it is not in ([`label_skew_split`]).
    pub minority: f64,
    /// Train each model on the first `limit` samples of its shard only (all when `None`).
    pub limit: Option<usize>,
    /// The training hyper-parameters; `seed` is replaced per model.
    pub train: TrainConfig,
}

/// One trained model of the pair.
pub struct DemoModel {
    pub params: Vec<f32>,
    /// Accuracy on the whole test set, percent.
    pub accuracy: f64,
}

/// Accuracy (percent) on the test digits `0..5` and `5..10` separately.
fn halves(net: &Net, params: &[f32], test: &Images) -> (f64, f64) {
    let part = |keep: fn(u8) -> bool| evaluate(net, params, &test.filter_labels(keep)).0;
    (part(|l| l < 5), part(|l| l >= 5))
}

/// Train the pair, write it to `out_dir` with the metadata `provenance(model index, test
/// accuracy)`, and report progress through `say`. Returns both models.
///
/// # Errors
/// [`TrainError`] when a file cannot be written or serialised.
pub fn train_pair(
    net: &Net,
    trainset: &Images,
    test: &Images,
    s: &DemoSettings,
    out_dir: &Path,
    provenance: impl Fn(usize, f64) -> String,
    mut say: impl FnMut(String),
) -> Result<Vec<DemoModel>, TrainError> {
    let shards = label_skew_split(&trainset.labels, &[0, 1, 2, 3, 4], s.minority, s.seed);
    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    let mut models = Vec::new();
    for (k, (name, shard)) in ["a", "b"].iter().zip(&shards).enumerate() {
        let shard = &shard[..s.limit.unwrap_or(usize::MAX).min(shard.len())];
        let mut counts = [0usize; 10];
        for &i in shard {
            counts[usize::from(trainset.labels[i])] += 1;
        }
        say(format!(
            "model {name}: {} training images, per digit {counts:?}",
            shard.len()
        ));
        let cfg = TrainConfig {
            seed: s.seed + 1 + k as u64,
            ..s.train.clone()
        };
        let start = Instant::now();
        let params = train(net, trainset, shard, &cfg, |e| {
            say(format!(
                "  epoch {}: loss {:.4}, train accuracy {:.2} % ({:.1} s)",
                e.epoch,
                e.loss,
                e.accuracy,
                start.elapsed().as_secs_f64()
            ));
        });
        let (accuracy, loss) = evaluate(net, &params, test);
        let (lo, hi) = halves(net, &params, test);
        say(format!(
            "  test: accuracy {accuracy:.2} % (digits 0-4: {lo:.2} %, 5-9: {hi:.2} %), loss {loss:.4}"
        ));
        let bytes = net.to_safetensors(&params, &provenance(k, accuracy))?;
        let path = out_dir.join(format!("model-{name}.safetensors"));
        std::fs::write(&path, &bytes).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        say(format!(
            "  wrote {} ({} bytes, sha256 {})",
            path.display(),
            bytes.len(),
            hex::encode(Sha256::digest(&bytes))
        ));
        models.push(DemoModel { params, accuracy });
    }
    let average: Vec<f32> = models[0]
        .params
        .iter()
        .zip(&models[1].params)
        .map(|(a, b)| 0.5 * (a + b))
        .collect();
    let (acc, _) = evaluate(net, &average, test);
    say(format!(
        "plain 50/50 weight average (no alignment): test accuracy {acc:.2} %"
    ));
    Ok(models)
}
