//! `none`: the identity permutation of every group, so fusion is plain weight averaging — the
//! baseline every report includes.

use super::{Alignment, Method, MethodError, MethodInput};

/// No alignment.
pub struct Identity;

impl Method for Identity {
    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        Ok(Alignment {
            perms: input
                .structure
                .hidden
                .iter()
                .map(|g| (0..g.size).collect())
                .collect(),
            objective: 0.0,
            objectives: Vec::new(),
            iterations: 0,
            stages: Vec::new(),
        })
    }
}
