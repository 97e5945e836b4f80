//! GAMF (Liu et al., ICML 2022) as a [`Method`]: [`crate::matching::match_models`] — the
//! edge affinity, spectral matching and a Hungarian assignment per group — in the convention
//! the job's `compat` asks for. Its stages keep their own timings (`affinity`, `matching`,
//! `assignment`).

use super::{Alignment, Method, MethodError, MethodInput};
use crate::matching::{Convention, MatchError, match_models};
use crate::pipeline::{Compat, Stage};
use crate::solvers::{SmParams, SolveError};

/// Graph-matching fusion.
pub struct Gamf;

impl Method for Gamf {
    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        input.observer.progress(Stage::Affinity, 0.0);
        let convention = match input.params.compat {
            None => Convention::Consistent,
            Some(Compat::PygmtoolsExample) => Convention::PygmtoolsExample,
        };
        let sm = SmParams {
            max_iter: input.params.max_iter,
            tol: input.params.tol,
        };
        let stop = || input.observer.should_stop();
        let m = match_models(input.structure, input.models, convention, sm, &stop).map_err(
            |e| match e {
                MatchError::Solve(SolveError::Canceled) => MethodError::Canceled,
                MatchError::Solve(s) => MethodError::Solve(s),
                MatchError::Weights(w) => MethodError::Weights(w),
            },
        )?;
        Ok(Alignment {
            perms: m.perms,
            objective: m.objective,
            objectives: m.objectives,
            iterations: m.iterations,
            stages: [Stage::Affinity, Stage::Matching, Stage::Assignment]
                .into_iter()
                .zip(m.seconds)
                .collect(),
        })
    }
}
