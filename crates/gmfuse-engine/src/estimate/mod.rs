//! Pre-flight estimate of a fusion job's peak memory and compute, from the architecture, the
//! models' tensor shapes and the parameters alone — before any weight is read.
//!
//! Memory follows what [`pipeline::run`](crate::pipeline::run) holds at once:
//! - **always**: both model files, both models widened to `f64`, the dataset and the
//!   calibration set (`f32` pixels);
//! - **matching** (GAMF): the affinity's stored entries, exactly as [`Affinity`] stores them
//!   (one `E × E` block of `f64` per weighted layer, `E = n_in·n_out` edges, plus the
//!   diagonal's (index, value) pairs), and its transients (the transposed features of the
//!   largest layer, the per-layer memo, the partial products, the power iteration's vectors);
//!   activation matching's two compiled networks, one batch of both models' activations (and
//!   the `f64` copy of the largest group's), and the `n × n` moments of every group — the
//!   larger of the two, as methods run one after the other;
//! - **evaluation**: the aligned model, the fused model, every evaluated weight set kept by the
//!   evaluation cache, one compiled `f32` network, and per compute thread the forward pass's
//!   activation buffers (two of `chunk × longest sample`, the im2col buffer, the logits, and
//!   one more of `chunk × longest sample` for every value a graph keeps aside — a residual
//!   `add`'s branch: [`Graph::saved_values`], the forward plan's save slots).
//!
//! The peak is the common part plus the larger of the two phases. Compute is counted in
//! multiply-accumulates: MACs per sample × samples × evaluated models, plus the matching's
//! affinity build (`E² × feature length` per layer) and power iterations (`E²` per product),
//! plus activation matching's two forward passes per calibration sample used (at most
//! [`MAX_CALIBRATION_SAMPLES`]) and its cross moments (`rows × n²` per group).
//!
//! [`Affinity`]: crate::affinity::Affinity

use std::collections::BTreeMap;

use serde::Serialize;

use crate::arch::{ArchError, ArchSpec, Graph, NodeGroup, Op, PermStructure, Shape};
use crate::eval::EVAL_BATCH;
use crate::forward::{CHUNK_BYTES, COLS_BUDGET, LANES, MAX_CHUNK};
use crate::methods::MethodId;
use crate::methods::activation_matching::{BATCH_VALUES, MAX_BATCH, MAX_CALIBRATION_SAMPLES};
use crate::pipeline::{Compat, FusionParams};

/// What a job will run, as known before its weights are read.
#[derive(Clone, Debug)]
pub struct Workload<'a> {
    pub spec: &'a ArchSpec,
    /// The models' tensor shapes by name (as in their safetensors headers).
    pub tensors: &'a BTreeMap<String, Vec<usize>>,
    /// Size of each model file, bytes (one per model: 2, or k ≥ 3 for a k-model job).
    pub file_bytes: &'a [u64],
    pub params: &'a FusionParams,
    /// Samples of the dataset as loaded, and samples evaluated (after any evaluation limit).
    pub dataset_samples: u64,
    pub eval_samples: u64,
    /// Samples of the calibration set as loaded (0: none).
    pub calibration_samples: u64,
    /// Threads of the compute pool (each holds its own activation buffers).
    pub threads: usize,
}

/// The estimate: bytes and multiply-accumulates. Sums saturate at `u64::MAX`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Peak memory of the job, bytes.
    pub peak_bytes: u64,
    /// Model files, both models in `f64`, the dataset: held throughout.
    pub common_bytes: u64,
    /// The dataset's pixels and labels (included in `common_bytes`).
    pub dataset_bytes: u64,
    /// Elements of one model.
    pub weight_elems: u64,
    /// Stored entries of the GAMF affinity (0 without matching): what `Affinity::nnz` reports.
    pub affinity_entries: u64,
    /// Bytes those entries take (`Affinity::bytes`).
    pub affinity_bytes: u64,
    /// The matching phase on top of `common_bytes`: the affinity and its transients.
    pub matching_bytes: u64,
    /// The evaluation phase on top of `common_bytes`: weight copies, one compiled network and
    /// every thread's activation buffers.
    pub evaluation_bytes: u64,
    /// All threads' activation buffers (included in `evaluation_bytes`).
    pub activation_bytes: u64,
    /// All threads' buffers for values kept aside for a later `add` (included in
    /// `activation_bytes`; 0 for a chain).
    pub saved_bytes: u64,
    /// One forward pass of one sample.
    pub macs_per_sample: u64,
    /// Models evaluated: the inputs plus one per proportion and curve (k ≥ 3 models: one
    /// fused model per curve).
    pub evaluations: u64,
    /// `macs_per_sample × eval_samples × evaluations`.
    pub eval_macs: u64,
    /// Affinity build and power iterations.
    pub matching_macs: u64,
    /// `eval_macs + matching_macs`.
    pub total_macs: u64,
}

fn sum(items: impl IntoIterator<Item = u64>) -> u64 {
    items.into_iter().fold(0u64, u64::saturating_add)
}

fn prod(items: impl IntoIterator<Item = u64>) -> u64 {
    items.into_iter().fold(1u64, u64::saturating_mul)
}

fn len(shape: Shape) -> u64 {
    match shape {
        Shape::Chw(c, h, w) => prod([c as u64, h as u64, w as u64]),
        Shape::Flat(n) => n as u64,
    }
}

/// Per-op costs of one sample: (MACs, longest sample in `f32`s, im2col floats per thread,
/// compiled network bytes).
fn forward_costs(
    spec: &ArchSpec,
    graph: &Graph,
    tensors: &BTreeMap<String, Vec<usize>>,
) -> (u64, u64, u64, u64) {
    let shapes = &graph.shapes;
    let (mut macs, mut longest, mut cols, mut net) = (0u64, len(shapes[0]), 0u64, 0u64);
    let mut largest_linear = 0u64;
    for (i, op) in spec.op_list().enumerate() {
        let (cur, next) = (graph.input_shape(i), shapes[i + 1]);
        longest = longest.max(len(next));
        match (op, cur, next) {
            (
                Op::Conv2d {
                    weight,
                    bias,
                    padding,
                    ..
                },
                Shape::Chw(c, h, w),
                Shape::Chw(co, oh, ow),
            ) => {
                let ws = &tensors[weight];
                let (kh, kw) = (ws[2] as u64, ws[3] as u64);
                let (c, co, pixels) = (c as u64, co as u64, oh as u64 * ow as u64);
                let p2 = 2 * *padding as u64;
                longest = longest.max(prod([c, h as u64 + p2, w as u64 + p2]));
                macs = sum([macs, prod([pixels, co, c, kh, kw])]);
                let depth = prod([kh, kw, c]);
                let one = prod([pixels, depth]);
                cols = cols.max(one.max(COLS_BUDGET as u64));
                let co_pad = co.div_ceil(LANES as u64) * LANES as u64;
                net = sum([
                    net,
                    prod([depth, co_pad, 4]),
                    if bias.is_some() { co_pad * 4 } else { 0 },
                ]);
            }
            (Op::Linear { weight, bias }, _, _) => {
                let ws = &tensors[weight];
                let (o, n) = (ws[0] as u64, ws[1] as u64);
                macs = sum([macs, prod([o, n])]);
                net = sum([net, prod([o, n, 4]), if bias.is_some() { o * 4 } else { 0 }]);
                largest_linear = largest_linear.max(prod([o, n, 8]));
            }
            (Op::Maxpool2d { kernel, .. } | Op::Avgpool2d { kernel, .. }, _, _) => {
                macs = sum([macs, prod([len(next), *kernel as u64, *kernel as u64])]);
            }
            _ => macs = sum([macs, len(next)]),
        }
    }
    // Compiling a linear layer transposes its f64 weight once (a transient copy).
    (macs, longest, cols, sum([net, largest_linear]))
}

/// The GAMF affinity of `structure`: (stored entries, stored bytes, transient bytes, MACs).
fn affinity_costs(structure: &PermStructure, params: &FusionParams) -> (u64, u64, u64, u64) {
    let layers = &structure.layers;
    let sq = |n: usize| prod([n as u64, n as u64]);
    // The diagonal: every input pair, every output pair, and the bias pairs of hidden layers.
    let mut diag = sum([
        structure.n_input as u64,
        layers.last().map_or(0, |l| l.n_out as u64),
    ]);
    let (mut blocks, mut build, mut apply, mut transient) = (0u64, 0u64, 0u64, 0u64);
    let (mut memo, mut largest_f2t, mut largest_parts) = (0u64, 0u64, 0u64);
    for l in layers {
        if l.bias.is_some() && matches!(l.output, NodeGroup::Hidden(_)) {
            diag = sum([diag, sq(l.n_out)]);
        }
        let edges = prod([l.n_in as u64, l.n_out as u64]);
        let block = prod([edges, edges]);
        blocks = sum([blocks, block]);
        build = sum([build, prod([block, l.feat as u64])]);
        apply = sum([apply, block]);
        memo = sum([memo, prod([2, sum([sq(l.n_in), sq(l.n_out)]), 8])]);
        largest_f2t = largest_f2t.max(prod([l.feat as u64, edges, 8]));
        largest_parts =
            largest_parts.max(prod([l.n_out as u64, sum([sq(l.n_in), l.n_out as u64]), 8]));
    }
    let dim = sum(structure.group_sizes().into_iter().map(sq));
    // The solvers' pair vectors (IPFP holds eight: v, Kv, b, Kb, their difference, the best,
    // the assignment's; SM five, RRWM six).
    transient = sum([
        transient,
        memo,
        largest_f2t,
        largest_parts,
        prod([8, dim, 8]),
    ]);
    let entries = sum([blocks, diag]);
    let symmetric = params.compat != Some(Compat::PygmtoolsExample);
    // The symmetric layout stores `f32` entries, the example's `f64` (see `Affinity`).
    let entry_bytes = if symmetric { 4 } else { 8 };
    let bytes = sum([prod([blocks, entry_bytes]), prod([diag, 16])]);
    let per_iter = if symmetric { prod([2, apply]) } else { apply };
    // Every solver runs up to `max_iter` products, plus one (RRWM's row sums, IPFP's start,
    // the discrete objective).
    let solvers = params.solvers().len().max(1) as u64;
    let iters = sum([params.max_iter as u64, 1]);
    let macs = sum([build, prod([solvers, iters, per_iter])]);
    (entries, bytes, transient, macs)
}

/// Activation matching of `structure` on `samples` calibration samples (at most
/// [`MAX_CALIBRATION_SAMPLES`] are used): (bytes on top of the common part, MACs), given one
/// compiled network's bytes, one thread's forward buffers and the MACs of one sample.
fn activation_costs(
    structure: &PermStructure,
    shapes: &[Shape],
    samples: u64,
    (network, per_thread, threads): (u64, u64, u64),
    macs_per_sample: u64,
) -> (u64, u64) {
    let used = samples.min(MAX_CALIBRATION_SAMPLES as u64);
    // (rows per sample, units) of each tap point's activations.
    let groups: Vec<(u64, u64)> = structure
        .hidden
        .iter()
        .flat_map(|g| g.taps.iter())
        .map(|&v| match shapes[v] {
            Shape::Chw(c, h, w) => (h as u64 * w as u64, c as u64),
            Shape::Flat(n) => (1, n as u64),
        })
        .collect();
    let per_sample = sum(groups.iter().map(|&(r, n)| prod([r, n])));
    let batch = (BATCH_VALUES as u64 / per_sample.max(1)).clamp(1, MAX_BATCH as u64);
    let largest = groups.iter().map(|&(r, n)| prod([r, n])).max().unwrap_or(0);
    let moments = sum(structure.hidden.iter().map(|g| {
        let n = g.size as u64;
        prod([sum([prod([n, n]), 4 * n]), 8])
    }));
    let bytes = sum([
        prod([2, network]),
        prod([2, threads, per_thread]),
        prod([2, batch, per_sample, 4]),
        prod([2, batch, largest, 8]),
        moments,
    ]);
    let cross = sum(groups.iter().map(|&(r, n)| prod([r, n, n])));
    let macs = prod([used, sum([prod([2, macs_per_sample]), cross])]);
    (bytes, macs)
}

/// Estimate `work`'s peak memory and compute.
///
/// # Errors
/// The [`ArchError`] of [`ArchSpec::check_shapes`] when the tensors do not fit the spec.
pub fn estimate(work: &Workload<'_>) -> Result<Estimate, ArchError> {
    let structure = work.spec.check_shapes(work.tensors)?;
    let graph = work.spec.graph_with(|n| work.tensors.get(n).cloned())?;
    let shapes = &graph.shapes;
    let weight_elems = sum(work
        .tensors
        .values()
        .map(|s| prod(s.iter().map(|&d| d as u64))));
    let (macs_per_sample, longest, cols, network) = forward_costs(work.spec, &graph, work.tensors);
    let classes = len(*shapes.last().expect("non-empty"));

    let sample = len(shapes[0]);
    let set_bytes = |n: u64| sum([prod([n, sample, 4]), prod([n, 4])]);
    let mut dataset_bytes = sum([
        set_bytes(work.dataset_samples),
        set_bytes(work.calibration_samples),
    ]);
    if work.eval_samples < work.dataset_samples {
        dataset_bytes = sum([dataset_bytes, set_bytes(work.eval_samples)]);
    }
    let weights_f64 = prod([weight_elems, 8]);
    let k = work.file_bytes.len().max(2) as u64;
    let common_bytes = sum([
        sum(work.file_bytes.iter().copied()),
        prod([k, weights_f64]),
        dataset_bytes,
    ]);

    // k ≥ 3 models: one weighted average per curve instead of the proportion sweep.
    let proportions = if k == 2 {
        work.params.proportions.len() as u64
    } else {
        1
    };
    // The `none` baseline is always evaluated, plus one curve per other method.
    let aligned = work
        .params
        .methods
        .iter()
        .filter(|m| **m != MethodId::None)
        .count();
    // GAMF gives one curve per solver.
    let extra_solvers = if work.params.methods.contains(&MethodId::Gamf) {
        work.params.solvers().len().saturating_sub(1)
    } else {
        0
    };
    let curves = 1 + (aligned + extra_solvers) as u64;
    let affinity = work
        .params
        .methods
        .contains(&MethodId::Gamf)
        .then(|| affinity_costs(&structure, work.params));
    let (affinity_entries, affinity_bytes, affinity_transient, pair_macs) =
        affinity.unwrap_or_default();
    // One affinity at a time, built and solved once per model aligned onto the anchor.
    let evaluations = sum([k, prod([curves, proportions])]);

    let chunk = (CHUNK_BYTES as u64 / prod([4, longest])).clamp(1, MAX_CHUNK as u64);
    let saved_per_thread = prod([graph.saved_values().len() as u64, chunk, longest, 4]);
    let per_thread = sum([
        prod([2, chunk, longest, 4]),
        prod([cols, 4]),
        prod([EVAL_BATCH as u64, classes, 4]),
        saved_per_thread,
    ]);
    let threads = work.threads.max(1) as u64;
    let activation_bytes = prod([per_thread, threads]);
    // The aligned models, the fused model being built, and the cache's copy of every evaluated one.
    let copies = prod([sum([evaluations, k]), weights_f64]);
    let evaluation_bytes = sum([copies, network, activation_bytes]);
    let (activation_matching_bytes, activation_matching_macs) =
        if work.params.methods.iter().any(|m| m.needs_calibration()) {
            let forward = (network, per_thread, work.threads.max(1) as u64);
            activation_costs(
                &structure,
                shapes,
                work.calibration_samples,
                forward,
                macs_per_sample,
            )
        } else {
            (0, 0)
        };
    let matching_bytes = sum([affinity_bytes, affinity_transient]).max(activation_matching_bytes);
    let matching_macs = sum([prod([pair_macs, k - 1]), activation_matching_macs]);

    let eval_macs = prod([macs_per_sample, work.eval_samples, evaluations]);
    Ok(Estimate {
        peak_bytes: sum([common_bytes, matching_bytes.max(evaluation_bytes)]),
        common_bytes,
        dataset_bytes,
        weight_elems,
        affinity_entries,
        affinity_bytes,
        matching_bytes,
        evaluation_bytes,
        activation_bytes,
        saved_bytes: prod([saved_per_thread, threads]),
        macs_per_sample,
        evaluations,
        eval_macs,
        matching_macs,
        total_macs: sum([eval_macs, matching_macs]),
    })
}

#[cfg(test)]
mod tests;
