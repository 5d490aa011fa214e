#!/usr/bin/env bash
# The display benchmark: how decoded pictures reach the window. Builds the
# app optimised, runs it under its own Xvfb with NEXMILE_FEED_BENCH=<seconds
# per path>, and prints latency (picture handed over → drawn) and CPU of the
# app with its web processes for each path, beside a no-drawing baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PATH="${1:-10}"
cargo build --locked --release --quiet -p nexmile
BIN="${CARGO_TARGET_DIR:-target}/release/nexmile"
PROFILES=$(mktemp -d)
trap 'rm -rf "$PROFILES"' EXIT
# No server: the benchmark only draws. The app's listener retries quietly.
NEXMILE_SERVER=http://127.0.0.1:9 NEXMILE_PROFILES="$PROFILES" \
  NEXMILE_FEED_BENCH="$SECONDS_PER_PATH" WEBKIT_DISABLE_DMABUF_RENDERER=1 \
  xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$BIN" 2>/dev/null | grep -v '^{'
