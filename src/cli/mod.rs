//! Command-line front ends: `gmfuse fuse` and `gmfuse bench` (the engine), `gmfuse keys`
//! (API keys); `fuse`'s progress display ([`progress`]) and output checks ([`outputs`]).

pub mod bench;
pub mod fuse;
pub mod inputs;
pub mod keys;
pub mod outputs;
pub mod progress;
