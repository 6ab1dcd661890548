#!/bin/sh
# Uploader figures.
#
# 1. In-process (tests/upload_tls.rs `figures`, release build): added RSS of
#    the TLS uploader at steady state, bytes on the wire per container per
#    cycle, time to drain a 10 000-sample backlog. The fake backend runs in
#    a process of its own, so its memory is not counted as the agent's.
# 2. With the real binary (AGENT_BIN, default the static build of
#    scripts/build-static.sh) when it exists and Docker answers: VmRSS of
#    the agent with and without DATALOOP_AGENT_KEY after the same number of
#    cycles, against the same fake backend.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo test --release --test upload_tls figures -- --ignored --nocapture --test-threads=1 2>&1 |
    grep '^FIGURE' | sed 's/^FIGURE /upload: /'

bin=${AGENT_BIN:-target/x86_64-unknown-linux-musl/release/outlyer-agent}
[ -x "$bin" ] || { echo "upload: no agent binary at $bin: skipping the whole-agent RSS figure"; exit 0; }
[ -S /var/run/docker.sock ] || { echo "upload: no Docker socket: skipping the whole-agent RSS figure"; exit 0; }

dir=$(mktemp -d /tmp/bench-upload.XXXXXX)
test_bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/upload_tls-* 2>/dev/null | grep -v '\.d$' | head -n 1)
UPL_BACKEND_DIR=$dir "$test_bin" --ignored --exact fake_backend_process --test-threads=1 >/dev/null 2>&1 &
backend=$!
cleanup() {
    rm -f "$dir/port"
    wait "$backend" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
i=0
while [ ! -f "$dir/port" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "upload: fake backend did not start" >&2; exit 1; }
    sleep 0.1
done
port=$(cat "$dir/port")

rss_after() { # $1 = with|without key; prints VmRSS in KiB after ~8 cycles
    if [ "$1" = with ]; then
        DATALOOP_AGENT_KEY=bench DATALOOP_SERVER="https://localhost:$port" \
            DATALOOP_SERIES_URL="https://localhost:$port/v2/accounts/bench/series" \
            DATALOOP_CA_FILE="$dir/ca.pem" \
            "$bin" --interval 1 --listen 127.0.0.1:0 >"$dir/agent.log" 2>&1 &
    else
        "$bin" --interval 1 --listen 127.0.0.1:0 >"$dir/agent.log" 2>&1 &
    fi
    pid=$!
    sleep 9
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    echo "$rss"
}
without=$(rss_after without)
with=$(rss_after with)
echo "upload: whole agent VmRSS after 8 cycles: ${without} KiB without a key, ${with} KiB uploading over TLS (+$((with - without)) KiB)"
