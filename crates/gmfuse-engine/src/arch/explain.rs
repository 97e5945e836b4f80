//! A readable view of a network's permutation groups: each group with its size, the layers
//! that produce it and every tensor axis it moves — what `gmfuse arch explain` prints and
//! `GET /v1/architectures/{name}` shows.
//!
//! ```
//! use gmfuse_engine::arch::{preset, preset_tensors};
//! let s = preset("cnn-bn").unwrap().check_shapes(&preset_tensors("cnn-bn").unwrap()).unwrap();
//! let text = s.explain("cnn-bn");
//! assert!(text.contains("group 0: 16 channels"));
//! // fc1 reads conv2's 32 channels, flattened, in blocks of 7·7.
//! assert!(text.lines().any(|l| l.trim_start().starts_with("fc1.weight ")
//!     && l.ends_with("axis 1 in blocks of 49")));
//! ```

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::perm::{AxisRef, PermStructure};

/// One permutation group as shown to users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct GroupView {
    /// The group's index: its permutation is the `index`-th of a method's answer.
    pub index: usize,
    /// Channels in the group (absent when the widths are not known: an architecture seen
    /// without a model).
    pub size: Option<usize>,
    /// The weights of the layers that produce its channels (several when residual `add`s tie
    /// their outputs).
    pub producers: Vec<String>,
    /// Every tensor axis the group's permutation moves.
    pub axes: Vec<AxisRef>,
}

impl PermStructure {
    /// Every group as a [`GroupView`]; `sized`: whether the widths are the real ones.
    pub fn group_views(&self, sized: bool) -> Vec<GroupView> {
        self.hidden
            .iter()
            .enumerate()
            .map(|(index, g)| GroupView {
                index,
                size: sized.then_some(g.size),
                producers: g
                    .producers
                    .iter()
                    .map(|&l| self.layers[l].weight.clone())
                    .collect(),
                axes: g.axes.clone(),
            })
            .collect()
    }

    /// The groups as text: a header line, then per group its size and producers and one line
    /// per axis.
    pub fn explain(&self, name: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{name}: {} permutation group(s); the {} input channel(s) and {} output(s) are fixed",
            self.hidden.len(),
            self.n_input,
            self.n_output()
        );
        let width = self
            .hidden
            .iter()
            .flat_map(|g| g.axes.iter().map(|a| a.tensor.len()))
            .max()
            .unwrap_or(0);
        for (k, view) in self.group_views(true).into_iter().enumerate() {
            let tied = if view.producers.len() > 1 {
                " (tied by add)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "group {k}: {} channels, produced by {}{tied}",
                self.hidden[k].size,
                view.producers.join(", ")
            );
            for a in &view.axes {
                let block = if a.block > 1 {
                    format!(" in blocks of {}", a.block)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  {:<width$}  axis {}{block}", a.tensor, a.axis);
            }
        }
        out
    }
}
