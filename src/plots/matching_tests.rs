//! Tests of the matching plot: group bounds, layout and the SVG it draws.

use std::collections::BTreeSet;

use super::{FILLED, MAX_SIDE, matching_svg};
use crate::engine::pipeline::{LayerPermutation, MatchingReport};
use crate::plots::fixtures::{example_matching, parse, save, texts, with_attr};

const FILL: &str = "#08306B";

/// `(x, y, width, height)` of every filled cell.
fn filled_rects(svg: &str) -> Vec<(i32, i32, i32, i32)> {
    let doc = parse(svg);
    let num = |n: &roxmltree::Node<'_, '_>, a: &str| -> i32 {
        n.attribute(a)
            .and_then(|v| v.parse().ok())
            .expect("integer attribute")
    };
    with_attr(&doc, "rect", "fill", FILL)
        .map(|r| {
            (
                num(&r, "x"),
                num(&r, "y"),
                num(&r, "width"),
                num(&r, "height"),
            )
        })
        .collect()
}

#[test]
fn the_filled_colour_is_matplotlib_blues_at_one() {
    assert_eq!(
        format!("#{:02X}{:02X}{:02X}", FILLED.0, FILLED.1, FILLED.2),
        FILL
    );
}

#[test]
fn example_matrix_has_one_filled_cell_per_node_and_axis_labels() {
    let svg = matching_svg(&example_matching());
    save("matching.svg", &svg);
    // 1 + 32 + 64 + 32 + 10 = 139 nodes (DESIGN.md), one match each.
    assert_eq!(filled_rects(&svg).len(), 139);
    let texts = texts(&parse(&svg));
    assert!(texts.iter().any(|t| t == "model 2 node"));
    assert!(texts.iter().any(|t| t == "model 1 node"));
}

#[test]
fn the_matrix_has_a_title_and_each_layer_its_label() {
    let svg = matching_svg(&example_matching());
    let texts = texts(&parse(&svg));
    assert!(
        texts
            .iter()
            .any(|t| t == "Matching matrix: Graph Matching Fusion"),
        "{texts:?}"
    );
    // The example's groups: 1 input channel, conv 32, conv 64, fc 32, 10 classes; the
    // input's one row (4 px) is too thin for a label.
    for label in ["conv1 (32)", "conv2 (64)", "fc1 (32)", "output (10)"] {
        assert!(
            texts.iter().any(|t| t == label),
            "{label} missing: {texts:?}"
        );
    }
    assert!(!texts.iter().any(|t| t == "input (1)"));
}

#[test]
fn filled_cells_sit_at_row_i_column_perm_i_of_each_block() {
    let m = example_matching();
    let svg = matching_svg(&m);
    let rects = filled_rects(&svg);
    // 560 / 139 = 4 whole pixels per node.
    assert!(rects.iter().all(|r| r.2 == 4 && r.3 == 4), "{rects:?}");
    let x0 = rects.iter().map(|r| r.0).min().unwrap();
    let y0 = rects.iter().map(|r| r.1).min().unwrap();
    let got: BTreeSet<(i32, i32)> = rects
        .iter()
        .map(|r| ((r.1 - y0) / 4, (r.0 - x0) / 4))
        .collect();

    let mut want = BTreeSet::from([(0, 0)]);
    for (offset, p) in [1, 33, 97].into_iter().zip(&m.permutations) {
        for (i, &j) in (0..).zip(&p.perm) {
            want.insert((offset + i, offset + i32::try_from(j).unwrap()));
        }
    }
    want.extend((129..139).map(|i| (i, i)));
    assert_eq!(got, want);
}

#[test]
fn black_lines_split_the_groups() {
    let svg = matching_svg(&example_matching());
    let rects = filled_rects(&svg);
    let x0 = rects.iter().map(|r| r.0).min().unwrap();
    let doc = parse(&svg);
    let vertical: BTreeSet<i32> = with_attr(&doc, "polyline", "stroke", "#000000")
        .filter_map(|l| {
            let pts: Vec<(i32, i32)> = l
                .attribute("points")?
                .split_whitespace()
                .filter_map(|p| {
                    p.split_once(',')
                        .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
                })
                .collect();
            (pts.len() == 2 && pts[0].0 == pts[1].0 && pts[1].1 - pts[0].1 == 556)
                .then_some(pts[0].0 - x0)
        })
        .collect();
    // Group bounds after 1, 33, 97 and 129 nodes, 4 px per node.
    assert_eq!(vertical, BTreeSet::from([4, 132, 388, 516]));
}

#[test]
fn entries_outside_their_block_and_missing_permutations_are_left_empty() {
    let mut m = example_matching();
    m.permutations[0].perm[5] = 99; // block of 32
    m.permutations.truncate(2); // fc1 has no permutation
    let svg = matching_svg(&m);
    assert_eq!(filled_rects(&svg).len(), 139 - 1 - 32);
}

#[test]
fn a_wide_layer_gets_at_least_one_pixel_per_cell() {
    let m = MatchingReport {
        method: crate::engine::pipeline::MethodId::WeightMatching,
        objective: 0.0,
        objectives: vec![0.0],
        iterations: 1,
        seconds: 0.0,
        permutations: vec![LayerPermutation {
            layer: "fc.weight".to_owned(),
            perm: (0..3000).rev().collect(),
        }],
        models: Vec::new(),
        group_sizes: vec![1, 3000, 10],
        solver: None,
        picked_by_auto: None,
        max_abs_logit_delta: None,
    };
    let svg = matching_svg(&m);
    save("matching-wide.svg", &svg);
    let rects = filled_rects(&svg);
    assert_eq!(rects.len(), 3011);
    assert!(rects.iter().all(|r| r.2 >= 1 && r.3 >= 1));
    let doc = parse(&svg);
    let width: usize = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    assert!(width <= MAX_SIDE + 300, "{width}");
}

#[test]
fn empty_and_absurd_group_sizes_give_a_figure_without_cells() {
    let mut m = example_matching();
    m.group_sizes.clear();
    assert!(filled_rects(&matching_svg(&m)).is_empty());

    m.group_sizes = vec![usize::MAX, 2];
    let svg = matching_svg(&m);
    assert!(filled_rects(&svg).is_empty());
    assert!(
        texts(&parse(&svg))
            .iter()
            .any(|t| t == "matrix too large to draw")
    );
}
