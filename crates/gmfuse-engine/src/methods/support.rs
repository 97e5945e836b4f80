//! Which method can handle which architecture, decided before any compute: [`check_supported`]
//! is called by the pipeline, and — through the pre-flight check — by the service's submission
//! (422) and the CLI (a one-line refusal), so that a method never runs where it would return a
//! wrong result.
//!
//! Every method aligns every graph gmfuse derives permutation groups for — groups tied by
//! `add` (a tied group is one node set of GAMF's affinity, one LAP of weight matching, one
//! pooled correlation of activation matching), batch norms, flattens (the presets'
//! self-recovery tests, `preset_tests.rs`). One mode is narrower: GAMF with `compat:
//! "pygmtools-example"` reproduces the example's one-directional affinity and column-major
//! read-back, which together apply the inverse of the permutation they mean (DESIGN.md "The
//! example's conventions"). That is the point on the example's own net, whose printed tables it
//! reproduces; on any other architecture it would only be a wrong alignment. The other
//! refusal of this kind, `repair: reset_bn` without batch norm, is the repair's own check
//! ([`crate::pipeline::repair::check`]).

use std::sync::OnceLock;

use super::MethodId;
use crate::arch::{ArchSpec, preset};
use crate::pipeline::{Compat, FusionParams};

/// A method that cannot handle an architecture, and why.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("method `{method}` cannot handle architecture `{architecture}`: {reason}")]
pub struct Unsupported {
    pub method: MethodId,
    pub architecture: String,
    pub reason: String,
}

/// The pygmtools example's net (`mnist-cnn`), whose ops compat mode is defined for.
fn example_net() -> &'static ArchSpec {
    static NET: OnceLock<ArchSpec> = OnceLock::new();
    NET.get_or_init(|| preset("mnist-cnn").expect("built-in preset"))
}

/// Whether `method`, with the job's `params`, can align models of `spec`.
fn supports(method: MethodId, spec: &ArchSpec, params: &FusionParams) -> Result<(), String> {
    let example = example_net();
    match (method, params.compat) {
        (MethodId::Gamf, Some(compat @ Compat::PygmtoolsExample))
            if (spec.input, &spec.ops) != (example.input, &example.ops) =>
        {
            Err(format!(
                "compat `{compat}` reproduces the pygmtools example's affinity and read-back, \
                 which apply the inverse of the permutation meant; it is defined for the \
                 example's net (`mnist-cnn`) only. Drop `compat` (the default mode aligns every \
                 architecture)"
            ))
        }
        _ => Ok(()),
    }
}

/// Every method of `params` (`auto` excepted: it is resolved to one that can) against `spec`.
///
/// # Errors
/// The first method, in the order asked, that cannot handle `spec`, with the reason.
pub fn check_supported(spec: &ArchSpec, params: &FusionParams) -> Result<(), Unsupported> {
    for &method in &params.methods {
        supports(method, spec, params).map_err(|reason| Unsupported {
            method,
            architecture: spec.name.clone(),
            reason,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_gamf_is_refused_outside_the_examples_net_and_nothing_else_is() {
        let compat = FusionParams {
            compat: Some(Compat::PygmtoolsExample),
            ..FusionParams::with_methods(&[MethodId::WeightMatching, MethodId::Gamf])
        };
        let default = FusionParams::with_methods(MethodId::ALL);
        for name in ["mnist-cnn", "cnn-bn", "resnet-mini"] {
            let spec = preset(name).unwrap();
            assert_eq!(check_supported(&spec, &default), Ok(()), "{name}");
            let got = check_supported(&spec, &compat);
            if name == "mnist-cnn" {
                assert_eq!(got, Ok(()));
                continue;
            }
            let e = got.unwrap_err();
            assert_eq!((e.method, e.architecture.as_str()), (MethodId::Gamf, name));
            let text = e.to_string();
            for needle in [
                "method `gamf`",
                name,
                "compat `pygmtools-example`",
                "mnist-cnn",
            ] {
                assert!(text.contains(needle), "`{text}` lacks `{needle}`");
            }
        }
        // Compat changes GAMF only: weight matching alone runs anywhere.
        let wm = FusionParams {
            methods: vec![MethodId::WeightMatching],
            ..compat
        };
        assert_eq!(
            check_supported(&preset("resnet-mini").unwrap(), &wm),
            Ok(())
        );
    }
}
