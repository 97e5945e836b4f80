//! Tests of the ONNX reader and writers: real exporter output from the `onnx` package's
//! backend test data (`backend.rs`), gmfuse's own exports and fused writes (`roundtrip.rs`),
//! PyTorch's dynamic flatten chains (`flatten.rs`), `auto_pad` (`padding.rs`), external data
//! inlined (`external.rs`), and hostile bytes (`malformed.rs`).

mod backend;
mod external;
mod flatten;
mod layouts;
mod malformed;
mod padding;
mod roundtrip;

use std::path::PathBuf;

/// The `onnx` package's `backend/test/data` directory: `GMFUSE_ONNX_DATA` (printed by
/// `scripts/onnx-data.sh`). `None` (with a SKIPPED line) when unset, a panic instead when
/// `GMFUSE_REQUIRE_SEED=1`.
pub(super) fn data_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GMFUSE_ONNX_DATA")
        .map(PathBuf::from)
        .filter(|d| d.join("pytorch-converted").is_dir() && d.join("light").is_dir());
    if dir.is_none() {
        assert!(
            std::env::var_os("GMFUSE_REQUIRE_SEED").is_none_or(|v| v != "1"),
            "GMFUSE_REQUIRE_SEED=1 but GMFUSE_ONNX_DATA is not the onnx backend test data (run scripts/onnx-data.sh)"
        );
        eprintln!(
            "SKIPPED {test}: set GMFUSE_ONNX_DATA to the onnx package's backend/test/data (scripts/onnx-data.sh)"
        );
    }
    dir
}
