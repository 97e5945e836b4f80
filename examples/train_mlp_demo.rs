//! Train the demo MLP pair (`784 → 128 → 128 → 10` with biases, preset `mlp`) on opposite digit
//! splits of the MNIST training set and write `model-a.safetensors` and `model-b.safetensors`.
//!
//! ```text
//! cargo run --release --example train_mlp_demo -- [OUT_DIR] [SEED] [--mnist DIR]
//! ```
//! The split: every training sample of digits 0–4 goes to model A and of 5–9 to model B, except
//! that each sample moves to the other model with probability `--minority` (default 0.1, one
//! draw per sample from `SplitMix64::new(SEED)`, `label_skew_split`). So each model sees
//! about 90 % of its own half's samples and 10 % of the other half's. The defaults
//! (`assets/demo-mlp`, seed 0) regenerate the committed assets; see `assets/demo-mlp/README.md`.
//! The generic trainer runs each batch as one chunk (sequential, one GEMM per layer).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use gmfuse::engine::arch::preset_for;
use gmfuse::train::demo::{DemoSettings, train_pair};
use gmfuse::train::{Images, Net, TrainConfig};

/// The pair's layer widths: input, hidden…, output.
const SIZES: [usize; 4] = [784, 128, 128, 10];

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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let trainset = Images::from_mnist_dir(&args.mnist, "train")?;
    let test = Images::from_mnist_dir(&args.mnist, "t10k")?;
    let mut shapes = BTreeMap::new();
    for (l, w) in SIZES.windows(2).enumerate() {
        shapes.insert(format!("fc{}.weight", l + 1), vec![w[1], w[0]]);
        shapes.insert(format!("fc{}.bias", l + 1), vec![w[1]]);
    }
    let net = Net::new(&preset_for("mlp", &shapes)?, &shapes)?;
    let settings = DemoSettings {
        seed: args.seed,
        minority: args.minority,
        limit: None,
        train: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            chunk: args.batch_size,
            lr: args.lr,
            momentum: args.momentum,
            init_gain: args.init_gain,
            seed: args.seed,
        },
    };
    let provenance = |k: usize, acc: f64| {
        format!(
            "gmfuse examples/train_mlp_demo.rs model {}: mlp {SIZES:?} with biases, \
             seed {}, digits {} mostly, minority {}, epochs {}, batch {}, lr {}, momentum {}, \
             init gain {}; MNIST test accuracy {acc:.2} %",
            ["a", "b"][k],
            args.seed,
            if k == 0 { "0-4" } else { "5-9" },
            args.minority,
            args.epochs,
            args.batch_size,
            args.lr,
            args.momentum,
            args.init_gain
        )
    };
    train_pair(
        &net,
        &trainset,
        &test,
        &settings,
        &args.out_dir,
        provenance,
        |line| {
            println!("{line}");
        },
    )?;
    println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
