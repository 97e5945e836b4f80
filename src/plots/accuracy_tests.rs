//! Tests of the accuracy plot: series, ranges, labels and the SVG it draws.

use super::accuracy_svg;
use crate::engine::pipeline::{Curve, MethodId};
use crate::plots::fixtures::{GAMF, NONE, curve, example_report, parse, save, texts, with_attr};

/// The numeric tick labels above 1.5: the y axis (the x axis runs over 0..1).
fn y_ticks(svg: &str) -> Vec<f64> {
    texts(&parse(svg))
        .iter()
        .filter_map(|t| t.parse::<f64>().ok())
        .filter(|&v| v > 1.5)
        .collect()
}

#[test]
fn accuracy_figure_is_well_formed_with_title_axes_and_the_four_legend_labels() {
    let svg = accuracy_svg(&example_report());
    save("accuracy.svg", &svg);
    let texts = texts(&parse(&svg));
    for label in [
        "Fused Model Accuracy",
        "Fusion Proportion",
        "Accuracy (%)",
        "Graph Matching Fusion",
        "No Matching Fusion",
        "Model 1 Accuracy",
        "Model 2 Accuracy",
        "mnist-cnn on mnist-test",
        "10000 samples scored",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "missing {label:?} in {texts:?}"
        );
    }
    // The x ticks are the example's proportions.
    for tick in ["0.0", "0.1", "0.5", "0.9", "1.0"] {
        assert!(texts.iter().any(|t| t == tick), "missing x tick {tick}");
    }
}

#[test]
fn each_curve_has_one_line_through_eleven_points_and_one_star_per_point() {
    let svg = accuracy_svg(&example_report());
    let doc = parse(&svg);
    for colour in ["#FF0000", "#0000FF"] {
        let lines: Vec<_> = with_attr(&doc, "polyline", "stroke", colour).collect();
        let with_eleven = lines
            .iter()
            .filter(|l| {
                l.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
                    == 11
            })
            .count();
        assert_eq!(with_eleven, 1, "{colour}: one polyline through 11 points");
        // 11 markers on the curve and one in the legend.
        assert_eq!(
            with_attr(&doc, "polygon", "fill", colour).count(),
            12,
            "{colour}"
        );
    }
}

#[test]
fn model_accuracies_are_dashed_gray_and_brown_lines() {
    let svg = accuracy_svg(&example_report());
    let doc = parse(&svg);
    // A dashed line is many short segments; the legend adds a few more.
    for colour in ["#808080", "#A52A2A"] {
        let dashes = with_attr(&doc, "polyline", "stroke", colour).count();
        assert!(dashes > 10, "{colour}: {dashes} dashes");
    }
}

#[test]
fn y_range_follows_the_data_not_a_fixed_70_to_87() {
    // The example's curves fall to 47.16 % (none, α = 0.5): the range must show it.
    let ticks = y_ticks(&accuracy_svg(&example_report()));
    let (lo, hi) = (
        ticks.iter().copied().fold(f64::INFINITY, f64::min),
        ticks.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    assert!(lo <= 50.0 && lo > 40.0, "lowest y tick {lo} in {ticks:?}");
    assert!(
        (85.0..=90.0).contains(&hi),
        "highest y tick {hi} in {ticks:?}"
    );

    // A flat curve (84.0 … 85.5 %) gets a tight range, not one from 70.
    let mut flat = example_report();
    let acc: Vec<f64> = (0..=10).map(|k| 84.0 + 0.15 * f64::from(k)).collect();
    flat.curves.iter_mut().for_each(|c| c.points = curve(&acc));
    let svg = accuracy_svg(&flat);
    save("accuracy-flat.svg", &svg);
    let ticks = y_ticks(&svg);
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert!(
        ticks.iter().all(|&t| (83.0..=86.5).contains(&t)),
        "{ticks:?}"
    );
}

#[test]
fn a_report_without_gamf_or_inputs_draws_only_the_no_matching_curve() {
    let mut report = example_report();
    report.curves.retain(|c| c.method != MethodId::Gamf);
    report.inputs.clear();
    let svg = accuracy_svg(&report);
    let doc = parse(&svg);
    let texts = texts(&doc);
    assert!(texts.iter().any(|t| t == "No Matching Fusion"));
    for absent in [
        "Graph Matching Fusion",
        "Model 1 Accuracy",
        "Model 2 Accuracy",
    ] {
        assert!(!texts.iter().any(|t| t == absent), "{absent} drawn");
    }
    assert_eq!(with_attr(&doc, "polygon", "fill", "#FF0000").count(), 0);
    assert_eq!(with_attr(&doc, "polygon", "fill", "#0000FF").count(), 12);
}

#[test]
fn non_finite_and_empty_curves_still_give_a_well_formed_figure() {
    let mut report = example_report();
    let mut acc = GAMF;
    acc[3] = f64::NAN;
    acc[4] = f64::INFINITY;
    report.curves[0].points = curve(&acc);
    report.inputs[1].accuracy = f64::NAN;
    let doc_svg = accuracy_svg(&report);
    let doc = parse(&doc_svg);
    // 9 finite points + the legend's star.
    assert_eq!(with_attr(&doc, "polygon", "fill", "#FF0000").count(), 10);
    assert!(!texts(&doc).iter().any(|t| t == "Model 2 Accuracy"));

    report.curves.iter_mut().for_each(|c| c.points.clear());
    report.inputs.clear();
    let empty = accuracy_svg(&report);
    let doc = parse(&empty);
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("polygon"))
            .count(),
        2
    );
}

#[test]
fn every_method_of_the_report_gets_its_own_titled_curve() {
    let mut report = example_report();
    let wm: Vec<f64> = NONE.iter().map(|a| (a + 5.0).min(99.0)).collect();
    report.curves.insert(
        1,
        Curve {
            method: MethodId::WeightMatching,
            solver: None,
            points: curve(&wm),
            repaired: Vec::new(),
        },
    );
    let doc_svg = accuracy_svg(&report);
    let doc = parse(&doc_svg);
    let texts = texts(&doc);
    for title in [
        "Graph Matching Fusion",
        "Weight Matching Fusion",
        "No Matching Fusion",
    ] {
        assert!(texts.iter().any(|t| t == title), "{title} missing");
    }
    for colour in ["#FF0000", "#008000", "#0000FF"] {
        assert_eq!(
            with_attr(&doc, "polygon", "fill", colour).count(),
            12,
            "{colour}"
        );
    }
}
