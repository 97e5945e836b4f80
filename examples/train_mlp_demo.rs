//! Train the demo MLP pair (`784 → 128 → 128 → 10` with biases, preset `mlp`) on opposite digit
//! splits of the MNIST training set and write `model-a.safetensors` and `model-b.safetensors`.
//!
//! ```text
//! cargo run --release --example train_mlp_demo -- [OUT_DIR] [SEED] [--mnist DIR]
//! ```
//! The split: every training sample of digits 0–4 goes to model A and of 5–9 to model B, except
//! that each sample moves to the other model with probability `--minority` (default 0.1, one
//! draw per sample from `SplitMix64::new(SEED)`, [`label_skew_split`]). So each model sees
//! about 90 % of its own half's samples and 10 % of the other half's. The defaults
//! (`assets/demo-mlp`, seed 0) regenerate the committed assets; see `assets/demo-mlp/README.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use gmfuse::train::{
    DEMO_SIZES, Images, Mlp, TrainConfig, evaluate_mlp, label_skew_split, train_mlp,
};
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(about = "Train the two opposite-digit-split demo MLPs")]
struct Args {
    /// Where to write model-a.safetensors and model-b.safetensors.
    #[arg(default_value = "assets/demo-mlp")]
    out_dir: PathBuf,
    /// Seeds the split (SEED), model A (SEED + 1) and model B (SEED + 2).
    #[arg(default_value_t = 0)]
    seed: u64,
    /// Folder with the MNIST IDX files (train-* and t10k-*, gzipped or raw).
    #[arg(long, env = "GMFUSE_MNIST_DIR", default_value = "../shared/data/mnist")]
    mnist: PathBuf,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.02)]
    lr: f32,
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Weight init scale (1/√3 ≈ 0.577: PyTorch's nn.Linear default; √2 ≈ 1.414: He init).
    #[arg(long, default_value_t = std::f32::consts::SQRT_2)]
    init_gain: f32,
    /// Probability that a sample goes to the model whose half of the digits it is not in.
    #[arg(long, default_value_t = 0.1)]
    minority: f64,
}

/// Accuracy (percent) on the test digits `0..5` and `5..10` separately.
fn halves(m: &Mlp, test: &Images) -> (f64, f64) {
    let part = |keep: fn(u8) -> bool| evaluate_mlp(m, &test.filter_labels(keep)).0;
    (part(|l| l < 5), part(|l| l >= 5))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let trainset = Images::from_mnist_dir(&args.mnist, "train")?;
    let test = Images::from_mnist_dir(&args.mnist, "t10k")?;
    let shards = label_skew_split(&trainset.labels, &[0, 1, 2, 3, 4], args.minority, args.seed);
    std::fs::create_dir_all(&args.out_dir)?;
    let mut models = Vec::new();
    for (k, (name, shard)) in ["a", "b"].iter().zip(&shards).enumerate() {
        let mut counts = [0usize; 10];
        for &i in shard {
            counts[usize::from(trainset.labels[i])] += 1;
        }
        println!(
            "model {name}: {} training images, per digit {counts:?}",
            shard.len()
        );
        let cfg = TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            momentum: args.momentum,
            init_gain: args.init_gain,
            seed: args.seed + 1 + k as u64,
        };
        let start = Instant::now();
        let m = train_mlp(&DEMO_SIZES, &trainset, shard, &cfg, |s| {
            println!(
                "  epoch {}: loss {:.4}, train accuracy {:.2} % ({:.1} s)",
                s.epoch,
                s.loss,
                s.accuracy,
                start.elapsed().as_secs_f64()
            );
        });
        let (acc, loss) = evaluate_mlp(&m, &test);
        let (lo, hi) = halves(&m, &test);
        println!(
            "  test: accuracy {acc:.2} % (digits 0-4: {lo:.2} %, 5-9: {hi:.2} %), loss {loss:.4}"
        );
        let provenance = format!(
            "gmfuse examples/train_mlp_demo.rs model {name}: mlp {DEMO_SIZES:?} with biases, \
             seed {}, digits {} mostly, minority {}, epochs {}, batch {}, lr {}, momentum {}, \
             init gain {}; MNIST test accuracy {acc:.2} %",
            args.seed,
            if k == 0 { "0-4" } else { "5-9" },
            args.minority,
            args.epochs,
            args.batch_size,
            args.lr,
            args.momentum,
            args.init_gain
        );
        let bytes = m.to_safetensors(&provenance)?;
        let path = args.out_dir.join(format!("model-{name}.safetensors"));
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "  wrote {} ({} bytes, sha256 {})",
            path.display(),
            bytes.len(),
            hex::encode(Sha256::digest(&bytes))
        );
        models.push(m);
    }
    let mut average = models[0].clone();
    for (a, b) in average.data.iter_mut().zip(&models[1].data) {
        *a = 0.5 * (*a + b);
    }
    let (acc, _) = evaluate_mlp(&average, &test);
    println!("plain 50/50 weight average (no alignment): test accuracy {acc:.2} %");
    println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
