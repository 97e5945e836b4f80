//! GAMF (Liu et al., ICML 2022) as a [`Method`]: [`crate::matching::match_with`] — the edge
//! affinity, a QAP solver (`sm`, `rrwm`, `ipfp`: the job's `solvers`) and a Hungarian
//! assignment per group — in the convention the job's `compat` asks for. Several solvers share
//! one affinity and give one [`Run`] each. Its stages keep their own timings (`affinity` once,
//! `matching` and `assignment` summed over the solvers).

use super::{Alignment, Method, MethodError, MethodInput, Run};
use crate::matching::{Convention, MatchError, match_with};
use crate::pipeline::{Compat, Stage};
use crate::solvers::{SmParams, SolveError};

/// Graph-matching fusion.
pub struct Gamf;

impl Method for Gamf {
    fn align(&self, input: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        let mut runs = self.align_runs(input)?;
        Ok(runs.remove(0).alignment)
    }

    fn align_runs(&self, input: &MethodInput<'_>) -> Result<Vec<Run>, MethodError> {
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
        let solvers = input.params.solvers();
        let matchings = match_with(
            input.structure,
            input.models,
            convention,
            &solvers,
            sm,
            &stop,
        )
        .map_err(|e| match e {
            MatchError::Solve(SolveError::Canceled) => MethodError::Canceled,
            MatchError::Solve(s) => MethodError::Solve(s),
            MatchError::Weights(w) => MethodError::Weights(w),
        })?;
        Ok(matchings
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                // The affinity is built once: the first run carries its stage.
                let [affinity, solve, assign] = m.seconds;
                let shared = if i == 0 { affinity } else { 0.0 };
                let stages = [
                    (Stage::Affinity, shared),
                    (Stage::Matching, solve),
                    (Stage::Assignment, assign),
                ];
                Run {
                    solver: Some(m.solver),
                    seconds: affinity + solve + assign,
                    alignment: Alignment {
                        perms: m.perms,
                        objective: m.discrete_objective,
                        objectives: m.objectives,
                        iterations: m.iterations,
                        stages: stages.into_iter().skip(usize::from(i > 0)).collect(),
                    },
                }
            })
            .collect())
    }
}
