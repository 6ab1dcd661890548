#!/bin/sh
# Uploader figures: added RSS of the TLS uploader at steady state, bytes on
# the wire per container per cycle, time to drain a 10 000-sample backlog.
# The fake backend runs in a process of its own (not counted as the agent's).
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo test --release --test upload_tls figures -- --ignored --nocapture --test-threads=1 2>&1 |
    grep '^FIGURE' | sed 's/^FIGURE /upload: /'
