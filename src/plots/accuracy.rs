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
#[path = "accuracy_tests.rs"]
mod tests;
