//! Export a model as ONNX (opset 13, input `input` `[N, C, H, W]`, output `logits`) from its
//! safetensors weights and architecture: `cargo run -p gmfuse-engine --example onnx_export --
//! ARCH WEIGHTS OUT`, where ARCH is a preset name (`mnist-cnn`, `mlp`, `cnn-bn`,
//! `resnet-mini`) or an ArchSpec JSON file. Prints the derived spec's op and group counts read
//! back from the written file.
use gmfuse_engine::arch::{ArchSpec, preset_for};
use gmfuse_engine::onnx;
use gmfuse_engine::weights::WeightSet;

fn run(arch: &str, weights: &str, out: &str) -> Result<String, String> {
    let bytes = std::fs::read(weights).map_err(|e| format!("{weights}: {e}"))?;
    let w = WeightSet::from_bytes(&bytes).map_err(|e| format!("{weights}: {e}"))?;
    let spec: ArchSpec = if std::path::Path::new(arch).is_file() {
        let text = std::fs::read_to_string(arch).map_err(|e| format!("{arch}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{arch}: {e}"))?
    } else {
        preset_for(arch, &w.shapes()).map_err(|e| e.to_string())?
    };
    let model = onnx::export(&spec, &w).map_err(|e| e.to_string())?;
    std::fs::write(out, &model).map_err(|e| format!("{out}: {e}"))?;
    let back = onnx::read(&model).map_err(|e| e.to_string())?;
    let groups = back.spec.validate(&back.weights).map_err(|e| e.to_string())?;
    Ok(format!(
        "{out}: {} bytes, {} ops, {} permutation groups",
        model.len(),
        back.spec.ops.len(),
        groups.hidden.len()
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, weights, out] = args.as_slice() else {
        eprintln!("usage: onnx_export ARCH|ARCH_JSON WEIGHTS.safetensors OUT.onnx");
        std::process::exit(2);
    };
    match run(arch, weights, out) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("onnx_export: {e}");
            std::process::exit(1);
        }
    }
}
