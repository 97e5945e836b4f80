//! A small, deterministic trainer for any [`ArchSpec`](crate::engine::arch::ArchSpec): it
//! trains the demo pairs of every preset, with the forward and backward passes written by hand.
//!
//! Why by hand: the only Rust training stack that fits (candle) is most of a 12-minute release
//! build on the project's machines, and its kernels and RNG streams change between versions.
//! The ops of an ArchSpec, written out (im2col + GEMM through the `gemm` crate), fit in a few
//! hundred lines, train the demo models in minutes, and reproduce them bit for bit from a seed
//! ([`rng::SplitMix64`] for init, shuffling and the data split).
//!
//! - [`rng`]: SplitMix64, shuffling.
//! - [`dense`], [`conv`], [`pool`], [`norm`]: the layers, forward and backward (linear;
//!   convolution with stride and padding; padding, ReLU, max and average pooling; batch norm,
//!   residual add, global average pooling).
//! - [`graph`]: a [`Net`] built from a spec and its tensor shapes: nodes, the parameter table,
//!   init, safetensors output. [`exec`]: its forward and backward passes.
//! - [`loss`]: softmax cross-entropy.
//! - [`data`]: a minimal gz-IDX reader and the label-skewed two-client split.
//! - [`trainer`]: mini-batch SGD with momentum, data-parallel and deterministic; evaluation.
//! - [`demo`]: a demo pair, trained and written.
//!
//! `examples/train_demo.rs` trains and writes the pairs of `mnist-cnn` (`assets/demo`),
//! `cnn-bn` and `resnet-mini` (`assets/demo-<preset>`); `examples/train_mlp_demo.rs` the MLP
//! pair (`assets/demo-mlp`).

pub mod conv;
pub mod data;
pub mod demo;
pub mod dense;
pub mod exec;
#[cfg(test)]
mod gradcheck;
pub mod graph;
pub mod loss;
#[cfg(test)]
mod mnist_cnn_tests;
pub mod norm;
pub mod pool;
pub mod rng;
pub mod trainer;
pub mod weights_out;

pub use data::{Images, TrainError, label_skew_split};
pub use graph::Net;
pub use trainer::{EpochStats, TrainConfig, evaluate, train};
