//! k-model jobs on the tiny conv net: permuted copies land in one frame (each method's fused
//! model is the original), parameters that do not fit k are refused, and the fused weights
//! recomputed from a report equal the ones evaluated.

use ndarray::Array2;

use super::*;
use crate::affinity::tests::tiny;
use crate::forward::tests::Rng;
use crate::methods::MethodId;
use crate::pipeline::{ParamError, Quiet};

/// 64 random samples of the tiny net's input shape `[2, 4, 4]`, labels 0/1 at random.
fn data() -> Dataset {
    let mut rng = Rng::new(5);
    let images = Array2::from_shape_simple_fn((64, 32), || rng.next() as f32);
    let labels = (0..64).map(|_| u32::from(rng.next() > 0.0)).collect();
    Dataset {
        name: "random".into(),
        shape: [2, 4, 4],
        images,
        labels,
    }
}

/// `m` and two channel-shuffled copies of it.
fn copies(m: &WeightSet, structure: &PermStructure) -> Vec<WeightSet> {
    let shuffles = [
        vec![vec![0, 1, 2], vec![0, 1, 2, 3]],
        vec![vec![2, 0, 1], vec![3, 1, 0, 2]],
        vec![vec![1, 2, 0], vec![1, 3, 2, 0]],
    ];
    shuffles
        .iter()
        .map(|p| permute(structure, m, p).unwrap())
        .collect()
}

#[test]
fn three_permuted_copies_fuse_back_to_the_original_with_every_method() {
    let (spec, m, _) = tiny();
    let s = spec.validate(&m).unwrap();
    let models = copies(&m, &s);
    let refs: Vec<&WeightSet> = models.iter().collect();
    let data = data();
    let params = FusionParams::with_methods(&[MethodId::WeightMatching, MethodId::Gamf]);
    let r = run_many(&spec, &refs, &data, None, &params, &Quiet).unwrap();
    assert_eq!(r.inputs.len(), 3);
    let original = r.inputs[0].accuracy;
    assert!(r.inputs.iter().all(|i| i.accuracy == original));
    let methods: Vec<MethodId> = r.merged.iter().map(|m| m.method).collect();
    assert_eq!(
        methods,
        [MethodId::WeightMatching, MethodId::Gamf, MethodId::None]
    );
    for id in [MethodId::WeightMatching, MethodId::Gamf] {
        let merged = r.merged.iter().find(|m| m.method == id).unwrap();
        assert_eq!(merged.accuracy, original, "{id}");
        // Recomputing the fused model from the report gives the original's function back.
        let matching = r.matching(id).unwrap();
        assert_eq!(matching.models.len(), 3);
        let fused = fused_weights_many(&spec, &refs, Some(&matching.models), &r.weights).unwrap();
        let back = permute(
            &s,
            &fused,
            &matching.models[0]
                .permutations
                .iter()
                .map(|l| inverse(&l.perm))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for (name, t) in &m.tensors {
            for (x, y) in t.data.iter().zip(&back.tensors[name].data) {
                approx::assert_relative_eq!(*x, *y, epsilon = 1e-12);
            }
        }
    }
    // GAMF aligned onto the anchor (all inputs tie: the first), weight matching by MergeMany.
    assert_eq!(r.anchor, Some(0));
    assert_eq!(r.weights, [1.0 / 3.0; 3]);
    assert!(r.curves.is_empty() && r.alphas.is_empty());
    assert_eq!(r.best.proportion, None);
    assert_eq!(r.best.accuracy, original);
}

#[test]
fn an_anchor_and_weights_that_do_not_fit_k_are_refused() {
    let (spec, m, b) = tiny();
    let data = data();
    let three = [&m, &b, &m];
    let with = |anchor, weights| FusionParams {
        anchor,
        weights,
        ..FusionParams::with_methods(&[MethodId::WeightMatching])
    };
    let err = |p: &FusionParams, models: &[&WeightSet]| {
        run_many(&spec, models, &data, None, p, &Quiet).unwrap_err()
    };
    assert_eq!(
        err(&with(Some(3), None), &three),
        PipelineError::Params(ParamError::Anchor {
            anchor: 3,
            models: 3
        })
    );
    assert_eq!(
        err(&with(None, Some(vec![1.0, 2.0])), &three),
        PipelineError::Params(ParamError::WeightCount { models: 3, got: 2 })
    );
    assert_eq!(
        err(&with(None, Some(vec![1.0, -1.0, 1.0])), &three),
        PipelineError::Params(ParamError::Weights(vec![1.0, -1.0, 1.0]))
    );
    assert_eq!(
        err(&with(Some(0), None), &[&m, &b]),
        PipelineError::Params(ParamError::PairOnly)
    );
    let nine = [&m; 9];
    assert_eq!(
        err(&with(None, None), &nine),
        PipelineError::Params(ParamError::ModelCount { max: 8, got: 9 })
    );
    // A given anchor and weights are used as asked.
    let r = run_many(
        &spec,
        &three,
        &data,
        None,
        &with(Some(1), Some(vec![1.0, 1.0, 2.0])),
        &Quiet,
    )
    .unwrap();
    assert_eq!(r.anchor, Some(1));
    assert_eq!(r.weights, [0.25, 0.25, 0.5]);
    let wm = r.matching(MethodId::WeightMatching).unwrap();
    assert_eq!(
        wm.models[1].permutations[0].perm,
        [0, 1, 2],
        "the anchor is not moved"
    );
}

fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &j) in p.iter().enumerate() {
        inv[j] = i;
    }
    inv
}
