//! Server-side SVG figures of a fusion job, drawn with `plotters` (SVG backend, no system fonts).
//!
//! - [`accuracy_svg`]: accuracy against fusion proportion for each method, with the two input
//!   models' accuracies as reference lines (the pygmtools example's third figure).
//! - [`matching_svg`]: the full node matching matrix, block by block (the example's second figure).
//!
//! Text is measured with an embedded subset of DejaVu Sans (`assets/fonts/`), registered once as
//! plotters' `sans-serif` family; the SVG names `sans-serif` and the viewer draws the glyphs.
//! Both functions take stored reports, so they never panic on odd data: non-finite numbers are
//! left out and matching entries that do not fit their block are skipped.

mod accuracy;
mod matching;

pub use accuracy::accuracy_svg;
pub use matching::matching_svg;

use std::sync::Once;

use plotters::style::{FontStyle, register_font};

/// DejaVu Sans, cut down to Latin-1 and a few symbols (see `assets/fonts/README.md`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");

/// The font family every text element of these figures uses.
const FAMILY: &str = "sans-serif";

/// Register the embedded font with plotters (once per process).
fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a fixed, vendored TrueType file: failing to parse them is a build defect.
        assert!(
            register_font(FAMILY, FontStyle::Normal, FONT).is_ok(),
            "the embedded font assets/fonts/DejaVuSans-subset.ttf does not parse"
        );
    });
}

/// A tick label without trailing zeros: `84`, `82.5`, `0.25`.
fn tick_label(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A report built by hand from the pygmtools example's printed tables (DESIGN.md, "Expected,
    //! compat mode"), and helpers to read the SVG back.

    use crate::engine::eval::EvalResult;
    use crate::engine::pipeline::{
        Best, Curve, CurvePoint, FusionParams, FusionReport, LayerPermutation, MatchingReport,
        MethodId,
    };

    /// The example's accuracies (%) at α = 0.0, 0.1, …, 1.0.
    pub const GAMF: [f64; 11] = [
        84.18, 85.12, 85.21, 82.52, 71.11, 53.74, 63.26, 78.51, 82.81, 83.97, 83.81,
    ];
    pub const NONE: [f64; 11] = [
        84.18, 84.01, 81.91, 74.67, 60.39, 47.16, 55.34, 72.86, 79.64, 82.56, 83.81,
    ];

    pub fn alphas() -> Vec<f64> {
        (0..=10).map(|k| f64::from(k) / 10.0).collect()
    }

    /// A curve; the losses are not in the example's tables and are not plotted.
    pub fn curve(acc: &[f64]) -> Vec<CurvePoint> {
        alphas()
            .into_iter()
            .zip(acc)
            .map(|(proportion, &accuracy)| CurvePoint {
                proportion,
                accuracy,
                loss: 0.0,
            })
            .collect()
    }

    /// The example's network: 1 input channel, conv 32, conv 64, fc 32, 10 classes (139 nodes).
    /// The permutations are fixed shuffles `i ↦ (a·i + b) mod size` with `a` coprime to the size.
    pub fn example_matching() -> MatchingReport {
        let shuffle = |layer: &str, size: usize, a: usize, b: usize| LayerPermutation {
            layer: layer.to_owned(),
            perm: (0..size).map(|i| (a * i + b) % size).collect(),
        };
        MatchingReport {
            method: MethodId::Gamf,
            objective: 1.0,
            objectives: Vec::new(),
            iterations: 50,
            seconds: 0.0,
            permutations: vec![
                shuffle("conv1.weight", 32, 7, 3),
                shuffle("conv2.weight", 64, 5, 11),
                shuffle("fc1.weight", 32, 3, 0),
            ],
            models: Vec::new(),
            group_sizes: vec![1, 32, 64, 32, 10],
            solver: None,
            picked_by_auto: None,
            max_abs_logit_delta: None,
        }
    }

    pub fn example_report() -> FusionReport {
        let input = |accuracy| EvalResult {
            accuracy,
            loss: 0.0,
            samples: 10_000,
        };
        FusionReport {
            architecture: "mnist-cnn".to_owned(),
            dataset: "mnist-test".to_owned(),
            params: FusionParams::default(),
            samples: 10_000,
            inputs: vec![input(84.18), input(83.81)],
            alphas: alphas(),
            curves: vec![
                Curve {
                    method: MethodId::Gamf,
                    solver: None,
                    points: curve(&GAMF),
                    repaired: Vec::new(),
                },
                Curve {
                    method: MethodId::None,
                    solver: None,
                    points: curve(&NONE),
                    repaired: Vec::new(),
                },
            ],
            best: Best {
                method: MethodId::Gamf,
                solver: None,
                proportion: Some(0.2),
                accuracy: 85.21,
                repair: Default::default(),
            },
            merged: Vec::new(),
            anchor: None,
            weights: Vec::new(),
            matchings: vec![example_matching()],
            timings: Default::default(),
        }
    }

    /// Parse `svg` as XML (panics with the parser's message when it is not well-formed).
    pub fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML: {e}"))
    }

    /// The text content of every `<text>` element.
    pub fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
            .collect()
    }

    /// Elements named `tag` whose attribute `attr` is `value` (colours compared case-blind).
    pub fn with_attr<'a>(
        doc: &'a roxmltree::Document<'a>,
        tag: &'a str,
        attr: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> + 'a {
        doc.descendants().filter(move |n| {
            n.has_tag_name(tag)
                && n.attribute(attr)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    }

    /// Write `svg` to `$GMFUSE_PLOTS_OUT/name` when that variable is set, for looking at.
    pub fn save(name: &str, svg: &str) {
        if let Some(dir) = std::env::var_os("GMFUSE_PLOTS_OUT") {
            std::fs::write(std::path::Path::new(&dir).join(name), svg).expect("writing the SVG");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tick_label;

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick_label(84.0), "84");
        assert_eq!(tick_label(82.5), "82.5");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(-0.0001), "0");
    }
}
