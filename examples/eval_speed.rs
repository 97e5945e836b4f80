//! Time one 10k-image MNIST evaluation of the example's seed models (mnist-cnn).
//!
//! ```text
//! cargo run --release --example eval_speed [-- REPEATS]
//! ```
//! Reads `GMFUSE_SEED_MODELS` (default `../shared/data/seed-models`), evaluates each model
//! REPEATS times (default 5) on the current rayon pool (`RAYON_NUM_THREADS` to change it) and
//! prints every time and the median.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use gmfuse::engine::arch::preset;
use gmfuse::engine::eval::evaluate;
use gmfuse::engine::forward::Network;
use gmfuse::engine::weights::{DType, Tensor, WeightSet};
use ndarray::{ArrayD, IxDyn};

/// An F32 safetensors file as a [`WeightSet`], read with the `safetensors` crate.
fn load(path: &PathBuf) -> Result<WeightSet> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut ws = WeightSet::default();
    for (name, view) in st.tensors() {
        ensure!(view.dtype() == safetensors::Dtype::F32, "{name} is not F32");
        let vals = view
            .data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        let data = ArrayD::from_shape_vec(IxDyn(view.shape()), vals)?;
        ws.tensors.insert(
            name,
            Tensor {
                dtype: DType::F32,
                data,
            },
        );
    }
    Ok(ws)
}

fn main() -> Result<()> {
    let repeats: usize = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    let dir = std::env::var_os("GMFUSE_SEED_MODELS").map_or_else(
        || PathBuf::from("../shared/data/seed-models"),
        PathBuf::from,
    );
    let t = Instant::now();
    let data = gmfuse::builtin::mnist_test();
    println!(
        "decoded {} images in {:.3} s; {} rayon threads",
        data.len(),
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let spec = preset("mnist-cnn")?;
    for file in ["model1.safetensors", "model2.safetensors"] {
        let net = Network::new(&spec, &load(&dir.join(file))?)?;
        let mut times = Vec::with_capacity(repeats);
        let mut last = None;
        for _ in 0..repeats {
            let t = Instant::now();
            last = Some(evaluate(&net, &data, &|| false)?);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let r = last.context("no repeats")?;
        println!(
            "{file}: accuracy {:.2} %, loss {:.6}; times {:?} s; median {median:.3} s ({:.0} img/s)",
            r.accuracy,
            r.loss,
            times
                .iter()
                .map(|t| (t * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            data.len() as f64 / median
        );
    }
    Ok(())
}
