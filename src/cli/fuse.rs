//! `gmfuse fuse`: one fusion from the command line, printed as the pygmtools example prints
//! it, with an optional JSON report and the fused weights for every proportion.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::fused_out::{self, write_atomic};
use super::inputs::{load_dataset, parse_model, read_model, resolve_arch};
use super::outputs::check_writable;
use super::progress::Progress;
use crate::config::default_job_bytes;
use crate::engine::eval::Dataset;
use crate::engine::pipeline::{self, Compat, FusionParams, FusionReport, MethodId, Repair};
use crate::engine::solvers::SolverId;
use crate::engine::weights::WeightSet;
use crate::jobs::preflight::{self, PreflightError};

/// Arguments of `gmfuse fuse`.
#[derive(clap::Args, Debug)]
pub struct FuseArgs {
    /// Architecture: a preset (`mnist-cnn`; `mlp`, read from model A's tensors) or an ArchSpec
    /// JSON file. Default: the architecture the ONNX models' graphs describe, else `mnist-cnn`.
    #[arg(long)]
    pub arch: Option<String>,
    /// Evaluation set: `mnist-test`, DATA.safetensors, or IMAGES,LABELS (IDX, gz or raw).
    #[arg(long, default_value = "mnist-test")]
    pub dataset: String,
    /// Calibration samples for `activation_matching` (same forms as `--dataset`, never the
    /// scored set; at most 5,000 are used); defaults to `mnist-train-5k` when a method needs
    /// them.
    #[arg(long)]
    pub calibration: Option<String>,
    /// Methods to run, in order (repeat the flag or list them with commas); plain averaging
    /// (`none`) is always reported as the baseline.
    #[arg(
        long = "method",
        value_enum,
        value_delimiter = ',',
        default_value = "gamf"
    )]
    pub methods: Vec<MethodId>,
    /// GAMF's QAP solvers, in order (repeat the flag or list them with commas): one curve each.
    #[arg(
        long = "solver",
        value_enum,
        value_delimiter = ',',
        default_value = "sm"
    )]
    pub solvers: Vec<SolverId>,
    /// GAMF: reproduce another implementation's conventions, bugs included (solver `sm` only).
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
    /// Proportions α of model B: `START:STOP:STEP` (inclusive) or a comma list.
    #[arg(long, default_value = "0:1:0.1")]
    pub alphas: String,
    /// Spectral matching: maximum power iterations.
    #[arg(long, default_value_t = 50)]
    pub max_iter: usize,
    /// Spectral matching: convergence tolerance.
    #[arg(long, default_value_t = 1e-5)]
    pub tol: f64,
    /// Weight matching: sweeps at most (it stops after a sweep that changes nothing).
    #[arg(long, default_value_t = 100)]
    pub max_sweeps: usize,
    /// Weight matching: visit the groups in a random order from this seed (default: layer order).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate on the first N samples only.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the fused weights of the first method: `FILE.onnx` or `FILE.safetensors` gets one
    /// model (the most accurate proportion, or the only `--alphas` value; ONNX keeps the last
    /// model's graph when it is ONNX), any other path is a directory that gets every
    /// proportion as safetensors.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Peak memory the fusion may need by its pre-flight estimate, bytes; defaults to a quarter
    /// of the machine's memory, at least 256 MiB.
    #[arg(long, env = "GMFUSE_MAX_JOB_BYTES")]
    pub max_job_bytes: Option<u64>,
    /// Multiply-accumulates the fusion may need by its pre-flight estimate.
    #[arg(
        long,
        env = "GMFUSE_MAX_EVAL_MACS",
        default_value_t = 50_000_000_000_000
    )]
    pub max_eval_macs: u64,
    /// Three or more models: align every model onto this one (0-based; default the most
    /// accurate, and MergeMany for weight matching).
    #[arg(long)]
    pub anchor: Option<usize>,
    /// Three or more models: averaging weights, one per model, comma-separated (default
    /// uniform).
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<f64>>,
    /// Two models: repair each fused model on the calibration samples before scoring it (the
    /// report gets a repaired curve beside each curve): `reset_bn` recomputes the batch norms'
    /// statistics, `repair` rescales every hidden unit (REPAIR).
    #[arg(long, value_enum, default_value = "none")]
    pub repair: Repair,
    /// When stderr is not a terminal (no progress bar), also print every tenth of each stage.
    #[arg(long, short)]
    pub verbose: bool,
    /// The models, safetensors or ONNX (told by a `.onnx` name or the bytes): two (model 1 is aligned onto model 2 and the proportions are
    /// swept) or up to eight (aligned into one frame and averaged). An ONNX model's external data
    /// files are read from the model file's directory, at the locations its tensors name.
    #[arg(required = true, num_args = 2..=8, value_name = "MODEL")]
    pub models: Vec<PathBuf>,
}

/// Parse `START:STOP:STEP` (inclusive, rounded to 1e-9) or `a,b,c`.
pub fn parse_alphas(s: &str) -> anyhow::Result<Vec<f64>> {
    let num = |t: &str| -> anyhow::Result<f64> {
        t.trim()
            .parse::<f64>()
            .with_context(|| format!("`{t}` in --alphas is not a number"))
    };
    let parts: Vec<&str> = s.split(':').collect();
    match parts[..] {
        [start, stop, step] => {
            let (start, stop, step) = (num(start)?, num(stop)?, num(step)?);
            if step.is_nan()
                || step <= 0.0
                || stop.is_nan()
                || stop < start
                || !start.is_finite()
                || !stop.is_finite()
            {
                bail!("--alphas {s}: need START <= STOP and STEP > 0");
            }
            let n = ((stop - start) / step + 1e-9).floor() as usize;
            if n > 10_000 {
                bail!("--alphas {s}: too many proportions");
            }
            Ok((0..=n)
                .map(|k| ((start + k as f64 * step) * 1e9).round() / 1e9)
                .collect())
        }
        [_] => s.split(',').map(num).collect(),
        _ => bail!("--alphas {s}: use START:STOP:STEP or a comma list"),
    }
}

/// The accuracy tables, in the format of the pygmtools example's output: one per method, in the
/// report's order (`none` last).
pub fn format_tables(report: &FusionReport) -> String {
    let mut out = String::new();
    let acc = |i: usize| report.inputs.get(i).map_or(f64::NAN, |r| r.accuracy);
    if report.inputs.len() > 2 {
        for (i, r) in report.inputs.iter().enumerate() {
            let _ = writeln!(out, "model{} accuracy = {:.2}%", i + 1, r.accuracy);
        }
        for m in &report.merged {
            let _ = writeln!(
                out,
                "{}: weighted average of {} models -> fused model accuracy: {:.2}%",
                m.method.title(),
                report.inputs.len(),
                m.accuracy
            );
        }
        return out;
    }
    let _ = writeln!(
        out,
        "model1 accuracy = {:.2}%, model2 accuracy = {:.2}%",
        acc(0),
        acc(1)
    );
    for curve in &report.curves {
        let _ = writeln!(out, "{}", curve.title());
        for p in &curve.points {
            let _ = writeln!(
                out,
                "{:.2} model1 + {:.2} model2 -> fused model accuracy: {:.2}%",
                1.0 - p.proportion,
                p.proportion,
                p.accuracy
            );
        }
    }
    out
}

/// The service's pre-flight check, with the budgets of `args`: refuse before loading weights.
/// Returns the parameters with `auto` resolved.
fn check_budget(
    args: &FuseArgs,
    spec: &crate::engine::arch::ArchSpec,
    params: &FusionParams,
    files: &[Vec<u8>],
    tensors: &BTreeMap<String, Vec<usize>>,
    samples: usize,
    calibration_samples: usize,
) -> anyhow::Result<FusionParams> {
    let file_bytes: Vec<u64> = files.iter().map(|f| f.len() as u64).collect();
    let inputs = preflight::Inputs {
        tensors,
        file_bytes: &file_bytes,
        dataset_samples: samples as u64,
        calibration_samples: calibration_samples as u64,
        eval_limit: None,
        threads: rayon::current_num_threads(),
    };
    let budgets = preflight::Budgets {
        max_job_bytes: args.max_job_bytes.unwrap_or_else(default_job_bytes),
        max_eval_macs: args.max_eval_macs,
    };
    let resolved = match preflight::resolve_auto(spec, params, inputs, budgets) {
        Ok(p) => p,
        Err(PreflightError::OverBudget(detail)) => bail!("refused: {detail}"),
        Err(PreflightError::Unsupported(u)) => bail!("refused: {u}"),
        Err(PreflightError::Arch(e)) => {
            return Err(e).with_context(|| {
                format!("{} does not fit the architecture", args.models[0].display())
            });
        }
    };
    match preflight::check(spec, &resolved, inputs, budgets) {
        Ok(_) => Ok(resolved),
        Err(PreflightError::OverBudget(detail)) => bail!("refused: {detail}"),
        Err(PreflightError::Unsupported(u)) => bail!("refused: {u}"),
        Err(PreflightError::Arch(e)) => Err(e)
            .with_context(|| format!("{} does not fit the architecture", args.models[0].display())),
    }
}

/// `--calibration`, or the built-in training slice when a method needs one; never the
/// scored dataset.
fn load_calibration(args: &FuseArgs, params: &FusionParams) -> anyhow::Result<Option<Dataset>> {
    let needed =
        params.methods.iter().any(|m| m.needs_calibration()) || params.repair != Repair::None;
    let name = match &args.calibration {
        Some(name) => name.as_str(),
        None if needed => crate::builtin::MNIST_TRAIN_5K,
        None => return Ok(None),
    };
    if name == args.dataset {
        bail!(
            "--calibration {name} is the scored dataset: calibrate on other samples \
             (default {})",
            crate::builtin::MNIST_TRAIN_5K
        );
    }
    Ok(Some(load_dataset(name)?))
}

/// Run `gmfuse fuse`.
pub fn run_fuse(args: &FuseArgs) -> anyhow::Result<FusionReport> {
    check_writable(args.report.as_deref(), args.out.as_deref())?;
    let files = args
        .models
        .iter()
        .map(|p| read_model(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let models = args
        .models
        .iter()
        .zip(&files)
        .map(|(p, f)| parse_model(p, f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spec = resolve_arch(args.arch.as_deref(), &args.models, &models)?;
    let mut data = load_dataset(&args.dataset)?;
    if let Some(n) = args.eval_limit {
        data = data.head(n);
    }
    let params = FusionParams {
        methods: args.methods.clone(),
        solvers: args.solvers.clone(),
        compat: args.compat,
        proportions: parse_alphas(&args.alphas)?,
        max_iter: args.max_iter,
        tol: args.tol,
        max_sweeps: args.max_sweeps,
        seed: args.seed,
        anchor: args.anchor,
        weights: args.weights.clone(),
        auto: None,
        repair: args.repair,
    };
    let calibration = load_calibration(args, &params)?;
    let cal_samples = calibration.as_ref().map_or(0, |c| c.len());
    let tensors = models[0].weights.shapes();
    let params = check_budget(
        args,
        &spec,
        &params,
        &files,
        &tensors,
        data.len(),
        cal_samples,
    )?;
    let observer = Progress::stderr(args.verbose);
    let refs: Vec<&WeightSet> = models.iter().map(|m| &m.weights).collect();
    let report = pipeline::run_many(
        &spec,
        &refs,
        &data,
        calibration.as_ref(),
        &params,
        &observer,
    );
    observer.finish();
    let report = report?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)?;
        write_atomic(path, &json)?;
    }
    if let Some(out) = &args.out {
        fused_out::write(out, &spec, &models, &files, &report, params.primary())?;
    }
    Ok(report)
}

/// Run `gmfuse fuse` and print the tables and timings.
pub fn run(args: &FuseArgs) -> anyhow::Result<()> {
    let report = run_fuse(args)?;
    print!("{}", format_tables(&report));
    let total: f64 = report.timings.values().sum();
    let stages: Vec<String> = report
        .timings
        .iter()
        .map(|(s, t)| format!("{s} {t:.3}s"))
        .collect();
    eprintln!("timings: {} (total {total:.2}s)", stages.join(", "));
    for m in &report.matchings {
        let solver = m.solver.map(|s| format!(" ({s})")).unwrap_or_default();
        eprintln!(
            "{}{solver}: objective {:.6e} after {} iterations, {:.3}s, max |Δlogit| {:.1e}",
            m.method,
            m.objective,
            m.iterations,
            m.seconds,
            m.max_abs_logit_delta.unwrap_or(f64::NAN)
        );
        if let Some(why) = &m.picked_by_auto {
            eprintln!("  picked by auto: {why}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_ranges_are_inclusive_and_rounded() {
        let a = parse_alphas("0:1:0.1").unwrap();
        assert_eq!(a.len(), 11);
        assert_eq!(a[3], 0.3);
        assert_eq!(a[10], 1.0);
        assert_eq!(parse_alphas("0.2, 0.5").unwrap(), [0.2, 0.5]);
        assert!(parse_alphas("1:0:0.1").is_err());
        assert!(parse_alphas("0:1:0").is_err());
        assert!(parse_alphas("x").is_err());
    }
}
