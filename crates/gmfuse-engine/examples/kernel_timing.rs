//! Engine-only timing of the kernels `gmfuse bench` times, without building the service (a
//! release build of the engine alone takes minutes less on the shared machine), with a
//! fingerprint of every result so that a change of a kernel can be checked for identical
//! permutations and objectives: `cargo run --release -p gmfuse-engine --example kernel_timing
//! -- REPEAT [all|sm|wm|seedwm|prod]`. The random MLPs are `gmfuse bench`'s
//! ([`gmfuse_engine::bench`]).
use std::time::Instant;

use gmfuse_engine::arch::preset;
use gmfuse_engine::bench::{fingerprint as hash, median, random_mlp, random_mlp_weights};
use gmfuse_engine::matching::{Convention, match_models};
use gmfuse_engine::methods::weight_matching::{WmParams, weight_matching};
use gmfuse_engine::solvers::SmParams;
use gmfuse_engine::weights::WeightSet;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args.get(1).map_or(5, |s| s.parse().unwrap());
    let what = args.get(2).cloned().unwrap_or_else(|| "all".into());
    if what == "all" || what == "sm" {
        let dir = std::path::Path::new("/work/shared/data/seed-models");
        let read = |n: &str| WeightSet::from_bytes(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        let (a, b) = (read("model1.safetensors"), read("model2.safetensors"));
        let s = preset("mnist-cnn").unwrap().validate(&a).unwrap();
        for (name, conv) in [
            ("default", Convention::Consistent),
            ("compat", Convention::PygmtoolsExample),
        ] {
            let mut st: [Vec<f64>; 4] = Default::default();
            let mut info = String::new();
            for _ in 0..repeat {
                let t = Instant::now();
                let m = match_models(&s, [&a, &b], conv, SmParams::default(), &|| false).unwrap();
                st[3].push(t.elapsed().as_secs_f64());
                for (v, x) in st.iter_mut().zip(m.seconds) {
                    v.push(x);
                }
                info = format!(
                    "iters {} obj {:.12} disc {:.9} perms {:016x}",
                    m.iterations,
                    m.objective,
                    m.discrete_objective,
                    hash(&m.perms)
                );
            }
            let [x, y, z, w] = st.map(median);
            println!(
                "sm {name}: affinity {:.1} ms sm {:.1} ms hung {:.2} ms total {:.1} ms | {info}",
                x * 1e3,
                y * 1e3,
                z * 1e3,
                w * 1e3
            );
        }
    }
    if what == "seedwm" {
        let dir = std::path::Path::new("/work/shared/data/seed-models");
        let read = |n: &str| WeightSet::from_bytes(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        let (a, b) = (read("model1.safetensors"), read("model2.safetensors"));
        let s = preset("mnist-cnn").unwrap().validate(&a).unwrap();
        let r = weight_matching(&s, [&a, &b], &WmParams::default(), &|_| false).unwrap();
        println!(
            "seed wm: sweeps {} J {:?} perms {:016x}",
            r.objectives.len(),
            r.objectives,
            hash(&r.perms)
        );
        let mm =
            gmfuse_engine::methods::merge_many(&s, &[&a, &b, &a], &WmParams::default(), &|_| false)
                .unwrap();
        let flat: Vec<Vec<usize>> = mm.perms.iter().flatten().cloned().collect();
        println!(
            "merge many: rounds {} obj {:?} perms {:016x}",
            mm.iterations,
            mm.objectives,
            hash(&flat)
        );
    }
    if what == "prod" {
        use gmfuse_engine::affinity::{Affinity, Direction};
        let dir = std::path::Path::new("/work/shared/data/seed-models");
        let read = |n: &str| WeightSet::from_bytes(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        let (a, b) = (read("model1.safetensors"), read("model2.safetensors"));
        let s = preset("mnist-cnn").unwrap().validate(&a).unwrap();
        let k = Affinity::build(&s, [&a, &b], Direction::Symmetric).unwrap();
        let mut x: Vec<f64> = (0..k.dim()).map(|i| 1.0 + (i % 7) as f64 * 1e-3).collect();
        let mut y = vec![0.0; x.len()];
        let mut t = Vec::new();
        for _ in 0..repeat {
            let st = Instant::now();
            k.apply(&x, &mut y);
            t.push(st.elapsed().as_secs_f64());
            x.iter_mut().for_each(|v| *v *= 1.0 + 1e-9);
        }
        println!(
            "one product ({:.1} MB): median {:.2} ms min {:.2} ms",
            k.bytes() as f64 / 1e6,
            median(t.clone()) * 1e3,
            t.iter().cloned().fold(f64::MAX, f64::min) * 1e3
        );
    }
    if what == "all" || what == "wm" {
        let widths = [784, 1024, 1024, 1024, 1024, 10];
        let (mlp, a, b) = (
            random_mlp(&widths),
            random_mlp_weights(&widths, 1),
            random_mlp_weights(&widths, 2),
        );
        let s = mlp.validate(&a).unwrap();
        let mut times = Vec::new();
        let mut info = String::new();
        for _ in 0..repeat {
            let t = Instant::now();
            let r = weight_matching(&s, [&a, &b], &WmParams::default(), &|_| false).unwrap();
            times.push(t.elapsed().as_secs_f64());
            info = format!(
                "sweeps {} J {:.9} perms {:016x}",
                r.objectives.len(),
                r.objectives.last().unwrap(),
                hash(&r.perms)
            );
        }
        println!(
            "wm 4x1024: {:.3} s (min {:.3}) | {info}",
            median(times.clone()),
            times.iter().cloned().fold(f64::MAX, f64::min)
        );
    }
}
