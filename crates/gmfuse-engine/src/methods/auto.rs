//! `auto`: not a method of its own but a choice made before alignment — GAMF when the
//! pre-flight estimate says its affinity fits the job's budget, weight matching otherwise.
//! The budget is the caller's (the service's `GMFUSE_MAX_JOB_BYTES` / `GMFUSE_MAX_EVAL_MACS`,
//! the CLI's flags): [`resolve_auto`] takes the check as a closure and records the choice and
//! its reason in [`FusionParams::auto`], from where every report names it
//! (`MatchingReport.picked_by_auto`). A job that reaches the pipeline with `auto` unresolved
//! is refused.

use serde::{Deserialize, Serialize};

use super::{Alignment, Method, MethodError, MethodId, MethodInput};
use crate::pipeline::FusionParams;

/// What `auto` was resolved to, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct AutoPick {
    /// `gamf` or `weight_matching`.
    pub method: MethodId,
    /// The estimate against the budget, in words.
    pub reason: String,
}

/// The registry's entry for `auto`: it never aligns anything.
pub struct Unresolved;

impl Method for Unresolved {
    fn align(&self, _: &MethodInput<'_>) -> Result<Alignment, MethodError> {
        Err(MethodError::UnresolvedAuto)
    }
}

/// `params` with `auto` replaced: by `gamf` when `gamf_fits` accepts the parameters so
/// resolved (`Ok(why)`), else by `weight_matching` (`Err(why)`: why GAMF does not fit). A
/// method already asked for is not repeated. Parameters without `auto` come back with
/// [`FusionParams::auto`] cleared.
pub fn resolve_auto(
    params: &FusionParams,
    gamf_fits: impl FnOnce(&FusionParams) -> Result<String, String>,
) -> FusionParams {
    let mut out = params.clone();
    out.auto = None;
    if !params.methods.contains(&MethodId::Auto) {
        return out;
    }
    let with = |pick: MethodId| {
        let mut methods = Vec::with_capacity(params.methods.len());
        for &m in &params.methods {
            let m = if m == MethodId::Auto { pick } else { m };
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        methods
    };
    out.methods = with(MethodId::Gamf);
    let (method, reason) = match gamf_fits(&out) {
        Ok(why) => (MethodId::Gamf, format!("GAMF fits the budget: {why}")),
        Err(why) => (
            MethodId::WeightMatching,
            format!("GAMF does not fit the budget: {why}"),
        ),
    };
    out.methods = with(method);
    out.auto = Some(AutoPick { method, reason });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_becomes_gamf_when_it_fits_and_weight_matching_otherwise() {
        let p = FusionParams::with_methods(&[MethodId::Auto]);
        let fits = resolve_auto(&p, |q| {
            assert_eq!(q.methods, [MethodId::Gamf], "the check sees GAMF");
            Ok("peak 90 MiB of 1 GiB".into())
        });
        assert_eq!(fits.methods, [MethodId::Gamf]);
        assert_eq!(
            fits.picked_by_auto(MethodId::Gamf).unwrap(),
            "GAMF fits the budget: peak 90 MiB of 1 GiB"
        );
        let p = FusionParams::with_methods(&[MethodId::WeightMatching, MethodId::Auto]);
        let over = resolve_auto(&p, |_| Err("the affinity needs 40 GiB".into()));
        assert_eq!(over.methods, [MethodId::WeightMatching]);
        let pick = over.auto.as_ref().unwrap();
        assert_eq!(pick.method, MethodId::WeightMatching);
        assert!(pick.reason.contains("40 GiB"), "{}", pick.reason);
        // The choice survives the stored form; without `auto` it is cleared.
        let back: FusionParams =
            serde_json::from_str(&serde_json::to_string(&over).unwrap()).unwrap();
        assert_eq!(back, over);
        let plain = resolve_auto(&over, |_| unreachable!());
        assert_eq!(plain.auto, None);
    }
}
