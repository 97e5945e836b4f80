//! Train the two demo models (`mnist-cnn`) on two label-skewed halves of the MNIST training set
//! and write them as `model-a.safetensors` and `model-b.safetensors`.
//!
//! ```text
//! cargo run --release --example train_demo -- [OUT_DIR] [SEED] [--mnist DIR]
//! ```
//! The defaults (`assets/demo`, seed 0) regenerate the committed assets bit for bit; see
//! `assets/demo/README.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use gmfuse::train::{Images, Params, TrainConfig, evaluate, label_skew_split, train};
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(about = "Train the two label-skewed mnist-cnn demo models")]
struct Args {
    /// Where to write model-a.safetensors and model-b.safetensors.
    #[arg(default_value = "assets/demo")]
    out_dir: PathBuf,
    /// Seeds the split (SEED), model A (SEED + 1) and model B (SEED + 2).
    #[arg(default_value_t = 0)]
    seed: u64,
    /// Folder with the MNIST IDX files (train-* and t10k-*, gzipped or raw).
    #[arg(long, env = "GMFUSE_MNIST_DIR", default_value = "../shared/data/mnist")]
    mnist: PathBuf,
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.02)]
    lr: f32,
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Init scale (1/√3 ≈ 0.577: PyTorch's layer default; √2 ≈ 1.414: He init).
    #[arg(long, default_value_t = std::f32::consts::SQRT_2)]
    init_gain: f32,
    /// Share of each digit sent to the client that mostly lacks it.
    #[arg(long, default_value_t = 0.015)]
    minority: f64,
}

/// Accuracy (percent) on the test digits `0..5` and `5..10` separately.
fn halves(params: &Params, test: &Images) -> (f64, f64) {
    let part = |keep: fn(u8) -> bool| evaluate(params, &test.filter_labels(keep)).0;
    (part(|l| l < 5), part(|l| l >= 5))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
        let params = train(&trainset, shard, &cfg, |s| {
            println!(
                "  epoch {}: loss {:.4}, train accuracy {:.2} % ({:.1} s)",
                s.epoch,
                s.loss,
                s.accuracy,
                start.elapsed().as_secs_f64()
            );
        });
        let (acc, loss) = evaluate(&params, &test);
        let (lo, hi) = halves(&params, &test);
        println!(
            "  test: accuracy {acc:.2} % (digits 0-4: {lo:.2} %, 5-9: {hi:.2} %), loss {loss:.4}"
        );
        let provenance = format!(
            "gmfuse examples/train_demo.rs model {name}: seed {}, minority {}, epochs {}, \
             batch {}, lr {}, momentum {}, init gain {}; MNIST test accuracy {acc:.2} %",
            args.seed,
            args.minority,
            args.epochs,
            args.batch_size,
            args.lr,
            args.momentum,
            args.init_gain
        );
        let bytes = params.to_safetensors(&provenance)?;
        let path = args.out_dir.join(format!("model-{name}.safetensors"));
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "  wrote {} ({} bytes, sha256 {})",
            path.display(),
            bytes.len(),
            hex::encode(Sha256::digest(&bytes))
        );
        models.push(params);
    }
    let average = Params {
        data: models[0]
            .data
            .iter()
            .zip(&models[1].data)
            .map(|(a, b)| 0.5 * (a + b))
            .collect(),
    };
    let (acc, _) = evaluate(&average, &test);
    println!("plain 50/50 weight average (no alignment): test accuracy {acc:.2} %");
    Ok(())
}
