//! Tests of the job parameters: rows stored before `methods` existed still read, ranges refused, solver defaults.

use super::*;

#[test]
fn params_stored_before_methods_existed_still_read() {
    // What gmfuse wrote before `methods` (src/store/records.rs JobSpec.params).
    let old = r#"{"method":"none","compat":"pygmtools-example","proportions":[0.0,0.5],
                  "max_iter":7,"tol":0.001}"#;
    let p: FusionParams = serde_json::from_str(old).unwrap();
    assert_eq!(p.methods, [MethodId::None]);
    assert_eq!(p.compat, Some(Compat::PygmtoolsExample));
    assert_eq!(
        (p.max_iter, p.tol, p.max_sweeps, p.seed),
        (7, 1e-3, 100, None)
    );
    // The new form round-trips.
    let new = FusionParams::with_methods(&[MethodId::WeightMatching, MethodId::Gamf]);
    let json = serde_json::to_string(&new).unwrap();
    assert!(
        json.contains(r#""methods":["weight_matching","gamf"]"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<FusionParams>(&json).unwrap(), new);
    assert_eq!(new.aligning(), [MethodId::WeightMatching, MethodId::Gamf]);
}

#[test]
fn out_of_range_sweeps_and_empty_methods_are_refused() {
    let mut p = FusionParams {
        max_sweeps: 0,
        ..FusionParams::default()
    };
    assert_eq!(
        p.check(),
        Err(ParamError::MaxSweeps {
            max: MAX_SWEEPS,
            got: 0
        })
    );
    p.max_sweeps = 1;
    p.methods.clear();
    assert_eq!(p.check(), Err(ParamError::NoMethods));
}

#[test]
fn solvers_default_to_sm_and_compat_accepts_only_sm() {
    let old = r#"{"methods":["gamf"],"compat":"pygmtools-example"}"#;
    let mut p: FusionParams = serde_json::from_str(old).unwrap();
    assert_eq!(p.solvers, [SolverId::Sm]);
    assert_eq!(p.check(), Ok(()));
    p.solvers = vec![SolverId::Sm, SolverId::Rrwm];
    let e = p.check().unwrap_err();
    assert_eq!(
        e,
        ParamError::CompatSolver {
            compat: Compat::PygmtoolsExample,
            solver: SolverId::Rrwm
        }
    );
    assert!(e.to_string().contains("solver `rrwm`"), "{e}");
    p.compat = None;
    p.solvers = vec![SolverId::Ipfp, SolverId::Sm, SolverId::Ipfp];
    assert_eq!(p.check(), Ok(()));
    assert_eq!(p.solvers(), [SolverId::Ipfp, SolverId::Sm]);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(r#""solvers":["ipfp","sm","ipfp"]"#), "{json}");
    assert!(!json.contains("auto"), "{json}");
    p.solvers.clear();
    assert_eq!(p.check(), Err(ParamError::NoSolvers));
}
