//! Command-line front ends of the engine: `gmfuse fuse` and `gmfuse bench`.

pub mod bench;
pub mod fuse;
pub mod inputs;
