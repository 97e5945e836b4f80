//! Train a demo pair of any preset on two label-skewed halves of the MNIST training set and
//! write them as `model-a.safetensors` and `model-b.safetensors`.
//!
//! ```text
//! cargo run --release --example train_demo -- [OUT_DIR] [SEED] [--preset P] [--mnist DIR]
//! ```
//! `--preset mnist-cnn` (the default) with the defaults (`assets/demo`, seed 0) regenerates the
//! committed `assets/demo` bit for bit; `--preset cnn-bn` and `--preset resnet-mini` write
//! `assets/demo-cnn-bn` and `assets/demo-resnet-mini` (see the README in each folder). Every
//! training option left out takes the preset's default ([`Recipe`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use gmfuse::engine::arch::{preset, preset_tensors};
use gmfuse::train::demo::{DemoSettings, train_pair};
use gmfuse::train::{Images, Net, TrainConfig};

#[derive(Parser)]
#[command(about = "Train a label-skewed demo pair of a preset")]
struct Args {
    /// Where to write model-a.safetensors and model-b.safetensors (default: the preset's
    /// folder under assets/).
    out_dir: Option<PathBuf>,
    /// Seeds the split (SEED), model A (SEED + 1) and model B (SEED + 2).
    #[arg(default_value_t = 0)]
    seed: u64,
    /// mnist-cnn, cnn-bn or resnet-mini.
    #[arg(long, default_value = "mnist-cnn")]
    preset: String,
    /// Folder with the MNIST IDX files (train-* and t10k-*, gzipped or raw).
    #[arg(long, env = "GMFUSE_MNIST_DIR", default_value = "../shared/data/mnist")]
    mnist: PathBuf,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Samples per parallel work item (batch norm: statistics per chunk).
    #[arg(long)]
    chunk: Option<usize>,
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long)]
    momentum: Option<f32>,
    /// Init scale (1/√3 ≈ 0.577: PyTorch's layer default; √2 ≈ 1.414: He init).
    #[arg(long)]
    init_gain: Option<f32>,
    /// Share of each digit sent to the client that mostly lacks it.
    #[arg(long)]
    minority: Option<f64>,
    /// Train each model on the first LIMIT samples of its shard.
    #[arg(long)]
    limit: Option<usize>,
}

/// A preset's demo: its folder and default settings (the shapes are the preset's own,
/// `preset_tensors`).
struct Recipe {
    dir: &'static str,
    epochs: usize,
    batch_size: usize,
    chunk: usize,
    lr: f32,
    minority: f64,
    limit: Option<usize>,
}

fn recipe(preset: &str) -> anyhow::Result<Recipe> {
    Ok(match preset {
        "mnist-cnn" => Recipe {
            dir: "assets/demo",
            epochs: 2,
            batch_size: 64,
            chunk: 16,
            lr: 0.02,
            minority: 0.015,
            limit: None,
        },
        // Batch norm: each batch is one chunk, so it normalises with the batch's statistics.
        "cnn-bn" => Recipe {
            dir: "assets/demo-cnn-bn",
            epochs: 1,
            batch_size: 64,
            chunk: 64,
            lr: 0.02,
            minority: 0.1,
            limit: Some(20_000),
        },
        "resnet-mini" => Recipe {
            dir: "assets/demo-resnet-mini",
            epochs: 1,
            batch_size: 64,
            chunk: 64,
            lr: 0.02,
            minority: 0.1,
            limit: Some(20_000),
        },
        other => bail!("no demo recipe for preset `{other}` (mnist-cnn, cnn-bn, resnet-mini)"),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let r = recipe(&args.preset)?;
    let net = Net::new(&preset(&args.preset)?, &preset_tensors(&args.preset)?)?;
    let trainset = Images::from_mnist_dir(&args.mnist, "train")?;
    let test = Images::from_mnist_dir(&args.mnist, "t10k")?;
    let settings = DemoSettings {
        seed: args.seed,
        minority: args.minority.unwrap_or(r.minority),
        limit: args.limit.or(r.limit),
        train: TrainConfig {
            epochs: args.epochs.unwrap_or(r.epochs),
            batch_size: args.batch_size.unwrap_or(r.batch_size),
            chunk: args.chunk.unwrap_or(r.chunk),
            lr: args.lr.unwrap_or(r.lr),
            momentum: args.momentum.unwrap_or(0.9),
            init_gain: args.init_gain.unwrap_or(std::f32::consts::SQRT_2),
            seed: args.seed,
        },
    };
    let origin = match args.preset.as_str() {
        "mnist-cnn" => "gmfuse examples/train_demo.rs".to_string(),
        p => format!("gmfuse examples/train_demo.rs --preset {p}"),
    };
    // The mnist-cnn provenance keeps the form its committed files were written with.
    let extra = match (args.preset.as_str(), settings.limit) {
        ("mnist-cnn", None) => String::new(),
        (_, limit) => {
            let limit = limit.map_or(String::new(), |l| format!(", first {l} of each shard"));
            format!("{limit}, chunk {}", settings.train.chunk)
        }
    };
    let t = &settings.train;
    let provenance = |k: usize, acc: f64| {
        format!(
            "{origin} model {}: seed {}, minority {}{extra}, epochs {}, batch {}, lr {}, \
             momentum {}, init gain {}; MNIST test accuracy {acc:.2} %",
            ["a", "b"][k],
            args.seed,
            settings.minority,
            t.epochs,
            t.batch_size,
            t.lr,
            t.momentum,
            t.init_gain
        )
    };
    let out_dir = args.out_dir.clone().unwrap_or_else(|| r.dir.into());
    train_pair(
        &net,
        &trainset,
        &test,
        &settings,
        &out_dir,
        provenance,
        |line| {
            println!("{line}");
        },
    )?;
    println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
