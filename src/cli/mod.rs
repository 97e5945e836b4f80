//! Command-line front ends: `gmfuse fuse` and `gmfuse bench` (the engine), `gmfuse keys`
//! (API keys).

pub mod bench;
pub mod fuse;
pub mod inputs;
pub mod keys;
