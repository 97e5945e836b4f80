//! The node matching matrix: the pygmtools example's second figure.

use plotters::coord::Shift;
use plotters::element::{PathElement, Rectangle, Text};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FAMILY, ensure_font, tick_label};
use crate::engine::pipeline::{MatchingReport, MethodId};

/// The matrix side in pixels when the node count divides into it; larger matrices get one pixel
/// per node up to [`MAX_SIDE`].
const SIDE: usize = 560;
const MAX_SIDE: usize = 2048;
/// Above this many nodes the figure shows a note instead of the cells.
const MAX_NODES: usize = 100_000;

/// matplotlib's `Blues` colormap at 1 (a matched pair); 0 is left white.
pub(super) const FILLED: RGBColor = RGBColor(0x08, 0x30, 0x6B);

/// Margins around the matrix and the label strips, in pixels: tick labels below and left, the
/// title above, the layer names on the right.
const MARGIN: usize = 20;
const X_LABELS: usize = 60;
const Y_LABELS: usize = 70;
const TITLE: usize = 36;
const LAYER_LABELS: usize = 120;

/// The node matching matrix of `m` as an SVG document.
///
/// The matrix is `n × n` with `n` the sum of `m.group_sizes`; row `i` is a node of model 1 and
/// column `j` a node of model 2, in group order (input, hidden layers, output). Its diagonal
/// blocks hold the identity for the first and last groups and, for hidden layer `k`, the
/// permutation `m.permutations[k]`: cell `(i, perm[i])` is filled (dark blue, as matplotlib's
/// `Blues` at 1); every other cell is white. Black lines split the groups. A permutation entry
/// outside its block, or a missing permutation, leaves the cells (or the block) empty.
/// The title names the method (and GAMF's solver); each group is labelled on the right with
/// its layer (`conv1`, from the permutation's tensor name) and size, between `input` and
/// `output`.
#[must_use]
pub fn matching_svg(m: &MatchingReport) -> String {
    ensure_font();
    let n = m
        .group_sizes
        .iter()
        .try_fold(0usize, |acc, &s| acc.checked_add(s));
    let too_large = n.is_none_or(|n| n > MAX_NODES);
    let (layout, cells) = match n {
        Some(n) if !too_large => (Layout::new(n), filled_cells(m)),
        _ => (Layout::new(0), Vec::new()),
    };
    let note = too_large.then_some("matrix too large to draw");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (layout.width(), layout.height()))
            .into_drawing_area();
        // An in-memory SVG backend only fails on a missing font, which ensure_font() rules out.
        let labels = Labels {
            title: title(m),
            groups: group_names(m),
        };
        draw(
            &root,
            &layout,
            &cells,
            &group_bounds(&m.group_sizes, layout.n),
            note,
            &labels,
        )
        .expect("drawing an SVG into a String");
        root.present().expect("finishing an SVG in a String");
    }
    svg
}

/// The filled cells `(row, column)` of the matching matrix.
pub(super) fn filled_cells(m: &MatchingReport) -> Vec<(usize, usize)> {
    let groups = m.group_sizes.len();
    let mut cells = Vec::new();
    let mut offset = 0;
    for (g, &size) in m.group_sizes.iter().enumerate() {
        if g == 0 || g + 1 == groups {
            cells.extend((0..size).map(|i| (offset + i, offset + i)));
        } else if let Some(p) = m.permutations.get(g - 1) {
            cells.extend(
                p.perm
                    .iter()
                    .enumerate()
                    .filter(|&(i, &j)| i < size && j < size)
                    .map(|(i, &j)| (offset + i, offset + j)),
            );
        }
        offset += size;
    }
    cells
}

/// The figure's title: `Matching matrix: <method title>`, with GAMF's solver.
fn title(m: &MatchingReport) -> String {
    let method = match (m.method, m.solver) {
        (MethodId::Gamf, Some(s)) => s.gamf_title(),
        _ => m.method.title(),
    };
    format!("Matching matrix: {method}")
}

/// One label per group: `input (1)`, `conv1 (32)`, …, `output (10)`.
fn group_names(m: &MatchingReport) -> Vec<String> {
    let last = m.group_sizes.len().saturating_sub(1);
    m.group_sizes
        .iter()
        .enumerate()
        .map(|(g, size)| {
            let name = match g {
                0 => "input".to_owned(),
                g if g == last => "output".to_owned(),
                g => m.permutations.get(g - 1).map_or_else(
                    || format!("group {g}"),
                    |p| p.layer.trim_end_matches(".weight").to_owned(),
                ),
            };
            format!("{name} ({size})")
        })
        .collect()
}

/// The texts around the matrix.
struct Labels {
    title: String,
    groups: Vec<String>,
}

/// Node indices where one group ends and the next begins (0 and `n` excluded).
fn group_bounds(sizes: &[usize], n: usize) -> Vec<usize> {
    let mut bounds = Vec::new();
    let mut at = 0usize;
    for &s in sizes.iter().take(sizes.len().saturating_sub(1)) {
        at = at.saturating_add(s);
        if at > 0 && at < n {
            bounds.push(at);
        }
    }
    bounds
}

/// Pixel geometry of the matrix.
struct Layout {
    n: usize,
    side: usize,
}

impl Layout {
    fn new(n: usize) -> Layout {
        let side = match n {
            0 => SIDE,
            n if n <= SIDE => n * (SIDE / n),
            n => n.min(MAX_SIDE),
        };
        Layout { n, side }
    }

    fn width(&self) -> u32 {
        u32::try_from(self.side + 2 * MARGIN + Y_LABELS + LAYER_LABELS).unwrap_or(u32::MAX)
    }

    fn height(&self) -> u32 {
        u32::try_from(self.side + 2 * MARGIN + X_LABELS + TITLE).unwrap_or(u32::MAX)
    }
}

/// The group sizes again, from the bounds between them (the last group runs to `n`).
fn layout_groups(bounds: &[usize], n: usize) -> impl Iterator<Item = usize> + '_ {
    let starts = std::iter::once(0).chain(bounds.iter().copied());
    let ends = bounds.iter().copied().chain(std::iter::once(n));
    starts.zip(ends).map(|(a, b)| b.saturating_sub(a))
}

/// Pixel offset of node boundary `k` (0..=n) along a side of `len` pixels starting at `start`.
fn edge(start: i32, len: i32, k: usize, n: usize) -> i32 {
    if n == 0 {
        return start;
    }
    // k ≤ n ≤ MAX_NODES and len ≤ MAX_SIDE: the product fits easily in f64 and the result in i32.
    #[expect(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let offset = (k as f64 * f64::from(len) / n as f64).round() as i32;
    start + offset
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layout: &Layout,
    cells: &[(usize, usize)],
    bounds: &[usize],
    note: Option<&str>,
    labels: &Labels,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    let (title_area, rest) = root.split_vertically(u32::try_from(TITLE).unwrap_or(36));
    let (matrix_area, _) =
        rest.split_horizontally(width.saturating_sub(u32::try_from(LAYER_LABELS).unwrap_or(0)));
    let title_style =
        TextStyle::from((FAMILY, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let half = i32::try_from(width / 2).unwrap_or(0);
    title_area.draw(&Text::new(
        labels.title.as_str(),
        (half, i32::try_from(TITLE / 2 + 4).unwrap_or(0)),
        title_style,
    ))?;
    #[expect(clippy::cast_precision_loss)]
    let extent = layout.n.max(1) as f64;
    let mut chart = ChartBuilder::on(&matrix_area)
        .margin(u32::try_from(MARGIN).unwrap_or(20))
        .x_label_area_size(u32::try_from(X_LABELS).unwrap_or(60))
        .y_label_area_size(u32::try_from(Y_LABELS).unwrap_or(70))
        // Row 0 at the top, as matplotlib's imshow draws a matrix.
        .build_cartesian_2d(0.0..extent, extent..0.0)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style((FAMILY, 14))
        .x_desc("model 2 node")
        .y_desc("model 1 node")
        .axis_desc_style((FAMILY, 17))
        .draw()?;

    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (x0, y0) = (xs.start, ys.start);
    let (w, h) = (xs.end - xs.start, ys.end - ys.start);
    let n = layout.n;
    for &(i, j) in cells {
        let (left, top) = (edge(x0, w, j, n), edge(y0, h, i, n));
        // At least one pixel per cell, so very large matrices still show every match.
        let right = edge(x0, w, j + 1, n).max(left + 1);
        let bottom = edge(y0, h, i + 1, n).max(top + 1);
        root.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            FILLED.filled(),
        ))?;
    }
    for &b in bounds {
        let (x, y) = (edge(x0, w, b, n), edge(y0, h, b, n));
        root.draw(&PathElement::new(vec![(x, y0), (x, y0 + h)], BLACK))?;
        root.draw(&PathElement::new(vec![(x0, y), (x0 + w, y)], BLACK))?;
    }
    root.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        BLACK.stroke_width(1),
    ))?;
    // Layer names right of the matrix, at the middle of their group's rows.
    let label_style =
        TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut start = 0usize;
    for (size, name) in layout_groups(bounds, n).zip(&labels.groups) {
        let (top, bottom) = (edge(y0, h, start, n), edge(y0, h, start + size, n));
        if n > 0 && bottom - top >= 8 {
            root.draw(&Text::new(
                name.as_str(),
                (x0 + w + 8, (top + bottom) / 2),
                label_style.clone(),
            ))?;
        }
        start += size;
    }
    if let Some(note) = note {
        let style =
            TextStyle::from((FAMILY, 18).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(note, (x0 + w / 2, y0 + h / 2), style))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
