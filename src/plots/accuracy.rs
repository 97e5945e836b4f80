//! Accuracy against fusion proportion: the pygmtools example's "Fused Model Accuracy" figure.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::element::{DashedPathElement, EmptyElement, PathElement, Polygon, Text};
use plotters::prelude::*;
use plotters::series::{DashedLineSeries, LineSeries};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FAMILY, ensure_font, tick_label};
use crate::engine::pipeline::{CurvePoint, FusionReport, MethodId};
use crate::engine::solvers::SolverId;

/// Figure size in pixels, and the strip on the right that holds the legend.
const WIDTH: u32 = 880;
const HEIGHT: u32 = 540;
const LEGEND_WIDTH: u32 = 230;

/// matplotlib's `r`, `b`, `gray` and `brown`, as in the example; `g`, `orange` and `purple`
/// for the methods the example does not have.
const GAMF_COLOR: RGBColor = RGBColor(0xFF, 0x00, 0x00);
const NONE_COLOR: RGBColor = RGBColor(0x00, 0x00, 0xFF);
const OTHER_COLORS: [RGBColor; 3] = [
    RGBColor(0x00, 0x80, 0x00),
    RGBColor(0xFF, 0xA5, 0x00),
    RGBColor(0x80, 0x00, 0x80),
];
const MODEL1_COLOR: RGBColor = RGBColor(0x80, 0x80, 0x80);
const MODEL2_COLOR: RGBColor = RGBColor(0xA5, 0x2A, 0x2A);

/// Outer and inner radius of the star markers, in pixels.
const STAR_OUTER: f64 = 7.0;
const STAR_INNER: f64 = 3.0;

/// One line of the figure.
struct Series {
    label: String,
    color: RGBColor,
    kind: Kind,
}

enum Kind {
    /// A solid line with star markers through `(proportion, accuracy)` points.
    Curve(Vec<(f64, f64)>),
    /// A dashed horizontal line at one accuracy.
    Level(f64),
}

/// The accuracy of every fused model against its fusion proportion, as an SVG document.
///
/// One line with stars per curve, titled by its method: red for Graph Matching Fusion (`gamf`),
/// blue for No Matching Fusion (`none`), green, orange and purple for the other methods in
/// the order they come; dashed gray and brown lines: the accuracies of model 1 and model 2
/// (`inputs[0]`, `inputs[1]`, when present). The y range follows the data with a small margin
/// (within 0–100 %). Points with a non-finite proportion or accuracy are left out.
#[must_use]
pub fn accuracy_svg(report: &FusionReport) -> String {
    ensure_font();
    let series = collect(report);
    let (x_range, y_range) = ranges(&series);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        // An in-memory SVG backend only fails on a missing font, which ensure_font() rules out.
        let about = about(report);
        draw(&root, &series, x_range, y_range, &about).expect("drawing an SVG into a String");
        root.present().expect("finishing an SVG in a String");
    }
    svg
}

/// The lines under the legend: what was fused and what it was scored on.
fn about(report: &FusionReport) -> [String; 2] {
    [
        format!("{} on {}", report.architecture, report.dataset),
        format!("{} samples scored", report.samples),
    ]
}

fn collect(report: &FusionReport) -> Vec<Series> {
    let points = |curve: &[CurvePoint]| -> Vec<(f64, f64)> {
        curve
            .iter()
            .map(|p| (p.proportion, p.accuracy))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let mut series = Vec::new();
    let mut others = OTHER_COLORS.iter().cycle();
    for c in &report.curves {
        let sm = c.solver.is_none_or(|s| s == SolverId::Sm);
        let color = match c.method {
            MethodId::Gamf if sm => GAMF_COLOR,
            MethodId::None => NONE_COLOR,
            _ => *others.next().expect("a cycle never ends"),
        };
        series.push(Series {
            label: c.title().to_string(),
            color,
            kind: Kind::Curve(points(&c.points)),
        });
    }
    // A job of three or more models has no curves: each method's weighted average is a level.
    for m in &report.merged {
        let color = match m.method {
            MethodId::Gamf => GAMF_COLOR,
            MethodId::None => NONE_COLOR,
            _ => *others.next().expect("a cycle never ends"),
        };
        if m.accuracy.is_finite() {
            series.push(Series {
                label: format!("{} (average of {})", m.method.title(), report.inputs.len()),
                color,
                kind: Kind::Level(m.accuracy),
            });
        }
    }
    for (i, input) in report.inputs.iter().enumerate() {
        if input.accuracy.is_finite() {
            series.push(Series {
                label: format!("Model {} Accuracy", i + 1),
                color: if i == 1 { MODEL2_COLOR } else { MODEL1_COLOR },
                kind: Kind::Level(input.accuracy),
            });
        }
    }
    series
}

/// The x range spans the proportions plus 5 % on each side (matplotlib's default margin); the y
/// range spans every accuracy drawn plus 8 % of its spread (at least half a point), within
/// [0, 100].
fn ranges(series: &[Series]) -> (Range<f64>, Range<f64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in series {
        match &s.kind {
            Kind::Curve(points) => {
                xs.extend(points.iter().map(|p| p.0));
                ys.extend(points.iter().map(|p| p.1));
            }
            Kind::Level(y) => ys.push(*y),
        }
    }
    let span = |v: &[f64]| -> Option<(f64, f64)> {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo <= hi).then_some((lo, hi))
    };
    let (x_lo, x_hi) = span(&xs).unwrap_or((0.0, 1.0));
    let x_pad = if x_hi > x_lo {
        0.05 * (x_hi - x_lo)
    } else {
        0.05
    };
    let y_range = match span(&ys) {
        Some((lo, hi)) => {
            let pad = (0.08 * (hi - lo)).max(0.5);
            let (lo, hi) = ((lo - pad).max(0.0), (hi + pad).min(100.0));
            if lo < hi { lo..hi } else { 0.0..100.0 }
        }
        None => 0.0..100.0,
    };
    ((x_lo - x_pad)..(x_hi + x_pad), y_range)
}

/// `0.0`, `0.1`, … at tenths (as the example prints proportions), shortest form otherwise.
fn proportion_label(v: f64) -> String {
    if ((v * 10.0).round() - v * 10.0).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        tick_label(v)
    }
}

/// A filled five-pointed star centred on the origin, pixel offsets (matplotlib's `*` marker).
fn star_offsets() -> Vec<(i32, i32)> {
    (0..10)
        .map(|k| {
            let r = if k % 2 == 0 { STAR_OUTER } else { STAR_INNER };
            let angle = std::f64::consts::PI * (f64::from(k) / 5.0 - 0.5);
            // Rounded pixel offsets of a few pixels: the casts cannot overflow.
            #[expect(clippy::cast_possible_truncation)]
            let offset = (
                (r * angle.cos()).round() as i32,
                (r * angle.sin()).round() as i32,
            );
            offset
        })
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Series],
    x_range: Range<f64>,
    y_range: Range<f64>,
    about: &[String],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (x_lo, x_hi) = (x_range.start, x_range.end);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption("Fused Model Accuracy", (FAMILY, 26))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
        .x_labels(11)
        .y_labels(10)
        .x_label_formatter(&|v| proportion_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style((FAMILY, 15))
        .x_desc("Fusion Proportion")
        .y_desc("Accuracy (%)")
        .axis_desc_style((FAMILY, 18))
        .draw()?;

    let star = star_offsets();
    // The levels span the proportions drawn, not the margins.
    let (level_lo, level_hi) = (x_lo + (x_hi - x_lo) / 22.0, x_hi - (x_hi - x_lo) / 22.0);
    for s in series {
        if let Kind::Level(y) = s.kind {
            chart.draw_series(DashedLineSeries::new(
                [(level_lo, y), (level_hi, y)],
                10,
                6,
                s.color.stroke_width(2),
            ))?;
        }
    }
    // Draw the blue curve first so the red one (the method of interest) lies on top.
    for s in series.iter().rev() {
        if let Kind::Curve(points) = &s.kind {
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                s.color.stroke_width(2),
            ))?;
            chart.draw_series(
                points
                    .iter()
                    .map(|&p| EmptyElement::at(p) + Polygon::new(star.clone(), s.color.filled())),
            )?;
        }
    }

    // The legend sits beside the plot, so it never hides a curve.
    let top = 70;
    let row = 30;
    let rows = i32::try_from(series.len()).unwrap_or(4);
    let right = i32::try_from(LEGEND_WIDTH).unwrap_or(230) - 14;
    legend_area.draw(&Rectangle::new(
        [(0, top - 20), (right, top + rows * row - 10)],
        RGBColor(0xBB, 0xBB, 0xBB).stroke_width(1),
    ))?;
    let text_style =
        TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, s) in (0..).zip(series) {
        let y = top + k * row;
        match s.kind {
            Kind::Curve(_) => {
                legend_area.draw(&PathElement::new(
                    vec![(10, y), (46, y)],
                    s.color.stroke_width(2),
                ))?;
                let points: Vec<(i32, i32)> =
                    star.iter().map(|(dx, dy)| (28 + dx, y + dy)).collect();
                legend_area.draw(&Polygon::new(points, s.color.filled()))?;
            }
            Kind::Level(_) => {
                legend_area.draw(&DashedPathElement::new(
                    [(10, y), (46, y)],
                    10,
                    6,
                    s.color.stroke_width(2),
                ))?;
            }
        }
        legend_area.draw(&Text::new(s.label.as_str(), (56, y), text_style.clone()))?;
    }
    let note_style =
        TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, line) in (0..).zip(about) {
        let y = top + rows * row + 16 + k * 22;
        legend_area.draw(&Text::new(line.as_str(), (10, y), note_style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::accuracy_svg;
    use crate::engine::pipeline::{Curve, MethodId};
    use crate::plots::fixtures::{
        GAMF, NONE, curve, example_report, parse, save, texts, with_attr,
    };

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
}
