//! Command-line front ends: `gmfuse fuse`, `gmfuse bench` and `gmfuse arch explain` (the
//! engine), `gmfuse keys` (API keys); `fuse`'s progress display ([`progress`]) and output
//! checks ([`outputs`]).

pub mod arch;
pub mod bench;
pub mod bench_presets;
pub mod export_onnx;
pub mod fuse;
pub mod fused_out;
pub mod inputs;
pub mod keys;
pub mod outputs;
pub mod progress;
