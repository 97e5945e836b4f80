//! A small, deterministic trainer for the `mnist-cnn` demo models (the pygmtools example's
//! SimpleNet), with the forward and backward passes written by hand.
//!
//! Why by hand: the only Rust training stack that fits (candle) is most of a 12-minute release
//! build on the project's machines, and its kernels and RNG streams change between versions.
//! This network needs six layer types; written out (im2col + GEMM through the `gemm` crate) they
//! fit in a few hundred lines, train the demo models in minutes, and reproduce them bit for bit
//! from a seed ([`rng::SplitMix64`] for init, shuffling and the data split).
//!
//! - [`rng`]: SplitMix64, shuffling.
//! - [`dense`], [`conv`], [`pool`]: the layers (forward and backward).
//! - [`mlp`], [`mlp_trainer`]: a multi-layer perceptron with biases (the demo MLP pair), its
//!   sequential trainer and evaluation.
//! - [`net`]: the network, its parameters, softmax cross-entropy, safetensors output.
//! - [`data`]: a minimal gz-IDX reader and the label-skewed two-client split.
//! - [`trainer`]: mini-batch SGD with momentum, data-parallel and deterministic; evaluation.
//!
//! `examples/train_demo.rs` trains and writes `assets/demo/model-{a,b}.safetensors`,
//! `examples/train_mlp_demo.rs` `assets/demo-mlp/model-{a,b}.safetensors`.

pub mod conv;
pub mod data;
pub mod dense;
#[cfg(test)]
mod gradcheck;
pub mod mlp;
pub mod mlp_trainer;
pub mod net;
pub mod pool;
pub mod rng;
pub mod trainer;

pub use data::{Images, TrainError, label_skew_split};
pub use mlp::{DEMO_SIZES, Mlp};
pub use mlp_trainer::{evaluate_mlp, train_mlp};
pub use net::Params;
pub use trainer::{EpochStats, TrainConfig, evaluate, train};
