#!/usr/bin/env bash
# Browser test of the web UI (tests/ui/ui.test.mjs): installs Debian's chromium and the pinned
# playwright-core when missing, builds gmfuse, and runs the test against a real `gmfuse serve`;
# the test prints where the screenshots are (target/ui-screenshots, or $GMFUSE_UI_SCREENSHOTS).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)

TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --locked --bin gmfuse
export GMFUSE_BIN="$(cd "$TARGET" && pwd)/debug/gmfuse"
export GMFUSE_UI_SCREENSHOTS="${GMFUSE_UI_SCREENSHOTS:-$PWD/target/ui-screenshots}"
mkdir -p "$GMFUSE_UI_SCREENSHOTS"
# The test prints the screenshots' folder and names; node's summary closes the output.
(cd tests/ui && node --test --test-reporter=spec ui.test.mjs)
