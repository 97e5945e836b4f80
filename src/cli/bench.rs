//! `gmfuse bench`: times the engine's stages on the seed models (or the demo models) — GAMF's
//! matching in both conventions, weight matching, MergeMany of three models, one evaluation, a
//! whole run — weight matching on two random 4 × 1024 MLPs, one 10k evaluation of each preset
//! (random weights; [`super::bench_presets`]), and prints medians, with the peak memory of
//! GAMF's matching stage.
//!
//! Peak memory is the process's resident high-water mark (`VmHWM`), reset before each stage
//! through `/proc/self/clear_refs` (Linux); elsewhere it is not reported.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;

use super::inputs::{demo_models, load_dataset, load_model, seed_models_dir};
use crate::engine::arch::{ArchSpec, PermStructure, preset};
use crate::engine::bench::{median, random_mlp, random_mlp_weights};
use crate::engine::eval::evaluate;
use crate::engine::forward::Network;
use crate::engine::fusion::permute;
use crate::engine::matching::{Convention, match_models, match_with};
use crate::engine::methods::merge_many;
use crate::engine::methods::weight_matching::{WmParams, weight_matching};
use crate::engine::pipeline::{self, Compat, FusionParams, Quiet};
use crate::engine::solvers::SmParams;
use crate::engine::solvers::SolverId;
use crate::engine::weights::WeightSet;

/// Arguments of `gmfuse bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Repetitions of each timed stage (medians are printed).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Skip the whole-pipeline run (about 20 evaluations).
    #[arg(long)]
    pub quick: bool,
    /// Only time one 10k evaluation of each preset (random weights).
    #[arg(long)]
    pub presets: bool,
    /// Two mnist-cnn models; default: the seed models if present, else the demo models.
    pub models: Vec<PathBuf>,
}

/// Resident memory high-water mark in MiB, after resetting it when `reset`.
fn peak_mib(reset: bool) -> Option<f64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn current_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Run `gmfuse bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.presets {
        return print_presets(&load_dataset("mnist-test")?, args.repeat.max(1));
    }
    let paths = match &args.models[..] {
        [a, b] => [a.clone(), b.clone()],
        [] => match seed_models_dir() {
            Some(d) => [d.join("model1.safetensors"), d.join("model2.safetensors")],
            None => demo_models(),
        },
        _ => bail!("give two models or none"),
    };
    let repeat = args.repeat.max(1);
    let models = [
        load_model(&paths[0])?.weights,
        load_model(&paths[1])?.weights,
    ];
    let spec = preset("mnist-cnn")?;
    let structure = spec.validate(&models[0])?;
    let threads = rayon::current_num_threads();
    println!(
        "gmfuse bench: {} and {}",
        paths[0].display(),
        paths[1].display()
    );
    println!("rayon threads: {threads}; repeats: {repeat} (medians)");

    for (name, convention) in [
        ("default", Convention::Consistent),
        ("pygmtools-example", Convention::PygmtoolsExample),
    ] {
        let base = current_mib();
        let mut peak = None;
        let mut stages: [Vec<f64>; 3] = Default::default();
        for _ in 0..repeat {
            peak_mib(true);
            let m = match_models(
                &structure,
                [&models[0], &models[1]],
                convention,
                SmParams::default(),
                &|| false,
            )?;
            if let Some(p) = peak_mib(false) {
                peak = Some(p.max(peak.unwrap_or(0.0)));
            }
            for (v, s) in stages.iter_mut().zip(m.seconds) {
                v.push(s);
            }
        }
        let [a, s, h] = stages.map(median);
        println!(
            "matching ({name}): affinity {:.1} ms, sm {:.1} ms, hungarian {:.2} ms, total {:.1} ms",
            a * 1e3,
            s * 1e3,
            h * 1e3,
            (a + s + h) * 1e3
        );
        if let (Some(p), Some(b)) = (peak, base) {
            println!(
                "matching ({name}): peak RSS {p:.1} MiB (process before the stage: {b:.1} MiB, stage adds {:.1} MiB)",
                p - b
            );
        }
    }

    let mut solves: [Vec<f64>; 2] = Default::default();
    for _ in 0..repeat {
        let all = match_with(
            &structure,
            [&models[0], &models[1]],
            Convention::Consistent,
            &[SolverId::Rrwm, SolverId::Ipfp],
            SmParams::default(),
            &|| false,
        )?;
        for (v, m) in solves.iter_mut().zip(&all) {
            v.push(m.seconds[1]);
        }
    }
    let [rrwm, ipfp] = solves.map(median);
    println!(
        "matching (default): rrwm {:.1} ms, ipfp {:.1} ms (solver only)",
        rrwm * 1e3,
        ipfp * 1e3
    );

    let (wm, (sweeps, _)) = time_weight_matching(&spec, [&models[0], &models[1]], repeat)?;
    println!("weight matching: {:.1} ms ({sweeps} sweeps)", wm * 1e3);
    let (mm, rounds) = time_merge_many(&structure, &models, repeat)?;
    println!(
        "weight matching, 3 models (MergeMany: model 1, model 2, model 2 channel-reversed): {:.1} ms ({rounds} rounds)",
        mm * 1e3
    );
    let widths = [784, 1024, 1024, 1024, 1024, 10];
    let (mlp, a, b) = (
        random_mlp(&widths),
        random_mlp_weights(&widths, 1),
        random_mlp_weights(&widths, 2),
    );
    let (wm, (sweeps, j)) = time_weight_matching(&mlp, [&a, &b], repeat)?;
    println!(
        "weight matching, two random 4 x 1024 MLPs (784-1024x4-10): {wm:.3} s ({sweeps} sweeps, J = {j:.6})"
    );

    let data = load_dataset("mnist-test")?;
    let net = Network::new(&spec, &models[0])?;
    let mut evals = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let r = evaluate(&net, &data, &|| false)?;
        evals.push(t.elapsed().as_secs_f64());
        if evals.len() == 1 {
            println!(
                "evaluation: accuracy {:.2}% on {} images",
                r.accuracy, r.samples
            );
        }
    }
    let e = median(evals);
    println!(
        "evaluation (10k images): {:.3} s ({:.0} images/s)",
        e,
        data.labels.len() as f64 / e
    );

    print_presets(&data, repeat)?;

    if !args.quick {
        let params = FusionParams {
            compat: Some(Compat::PygmtoolsExample),
            ..FusionParams::default()
        };
        let t = Instant::now();
        let r = pipeline::run(&spec, [&models[0], &models[1]], &data, &params, &Quiet)?;
        println!(
            "whole fuse run (compat, gamf + none, 11 proportions each): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let stages: Vec<String> = r
            .timings
            .iter()
            .map(|(s, t)| format!("{s} {t:.2}s"))
            .collect();
        println!("  stages: {}", stages.join(", "));
    }
    if let Some(p) = peak_mib(false) {
        println!("process peak RSS since the last reset: {p:.1} MiB");
    }
    Ok(())
}

/// Time and print one evaluation of `data` by each preset.
fn print_presets(data: &crate::engine::eval::Dataset, repeat: usize) -> anyhow::Result<()> {
    println!(
        "rayon threads: {}; repeats: {repeat} (medians)",
        rayon::current_num_threads()
    );
    for (name, secs) in super::bench_presets::time_presets(data, repeat)? {
        println!(
            "evaluation ({} images), {name} with random weights: {secs:.3} s ({:.0} images/s)",
            data.labels.len(),
            data.labels.len() as f64 / secs
        );
    }
    Ok(())
}

/// Median seconds of weight matching `models` (and the sweeps it took, and its final `J`).
fn time_weight_matching(
    spec: &ArchSpec,
    models: [&WeightSet; 2],
    repeat: usize,
) -> anyhow::Result<(f64, (usize, f64))> {
    let structure = spec.validate(models[0])?;
    let mut times = Vec::new();
    let mut last = (0, 0.0);
    for _ in 0..repeat {
        let t = Instant::now();
        let r = weight_matching(&structure, models, &WmParams::default(), &|_| false)?;
        times.push(t.elapsed().as_secs_f64());
        last = (
            r.objectives.len(),
            r.objectives.last().copied().unwrap_or(r.initial),
        );
    }
    Ok((median(times), last))
}

/// Median seconds of MergeMany on three models: `models` and model 2 with every group's
/// channels reversed (and the rounds it took).
fn time_merge_many(
    structure: &PermStructure,
    models: &[WeightSet; 2],
    repeat: usize,
) -> anyhow::Result<(f64, usize)> {
    let reversed: Vec<Vec<usize>> = structure
        .hidden
        .iter()
        .map(|g| (0..g.size).rev().collect())
        .collect();
    let third = permute(structure, &models[1], &reversed)?;
    let all = [&models[0], &models[1], &third];
    let mut times = Vec::new();
    let mut rounds = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = merge_many(structure, &all, &WmParams::default(), &|_| false)?;
        times.push(t.elapsed().as_secs_f64());
        rounds = r.iterations;
    }
    Ok((median(times), rounds))
}
