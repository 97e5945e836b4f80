#!/usr/bin/env bash
# Regenerate crates/gmfuse-engine/src/onnx/proto.rs from the vendored
# crates/gmfuse-engine/proto/onnx.proto with prost-build + protox (no protoc), in a throwaway
# crate outside the workspace, so that the engine itself depends on `prost` alone.
#
#   scripts/onnx-proto-gen.sh      # then review `git diff crates/gmfuse-engine/src/onnx/proto.rs`
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
cp "$root/crates/gmfuse-engine/proto/onnx.proto" "$work/"
cat >"$work/Cargo.toml" <<'TOML'
[package]
name = "onnx-proto-gen"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
prost-build = "=0.14.6"
protox = "=0.9.1"
TOML
cat >"$work/src/main.rs" <<'RS'
fn main() {
    let fds = protox::compile(["onnx.proto"], ["."]).expect("onnx.proto compiles");
    prost_build::Config::new().out_dir("out").compile_fds(fds).expect("codegen");
}
RS
(cd "$work" && cargo run --quiet --release)
out="$root/crates/gmfuse-engine/src/onnx/proto.rs"
{
    sed -n '1,/^#!\[allow/p' "$out"
    echo
    cat "$work/out/onnx.rs"
} >"$out.new"
mv "$out.new" "$out"
echo "onnx-proto-gen.sh: wrote $out" >&2
