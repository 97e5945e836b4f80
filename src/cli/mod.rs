//! Command-line front ends: `gmfuse fuse`, `gmfuse bench` and `gmfuse arch explain` (the
//! engine), `gmfuse keys` (API keys).

pub mod arch;
pub mod bench;
pub mod bench_presets;
pub mod fuse;
pub mod inputs;
pub mod keys;
