#!/usr/bin/env bash
# Idle footprint with many containers: starts BENCH_CONTAINERS (100) sleeping
# containers, runs the release agent (interval 30), waits 10 s, then reports
# VmRSS / VmHWM and the CPU used over BENCH_IDLE_SECS (60) as % of one core
# (utime+stime from /proc/<pid>/stat). Cleans up on exit. Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Local mode whatever the caller's environment says (no uploads).
while read -r var; do unset "$var"; done < <(compgen -e | grep '^DATALOOP_' || true)

COUNT=${BENCH_CONTAINERS:-100}
IDLE=${BENCH_IDLE_SECS:-60}
PORT=${BENCH_PORT:-18124}
SOCKET=${BENCH_DOCKER_SOCKET:-/var/run/docker.sock}
PREFIX="oe2e-idle-$$"
TARGET=${CARGO_TARGET_DIR:-target}
# AGENT_BIN=target/x86_64-unknown-linux-musl/release/outlyer-agent measures
# the shipped static binary (musl's allocator) instead of the glibc build.
BIN=${AGENT_BIN:-$TARGET/release/outlyer-agent}
LOG=$(mktemp /tmp/oe2e-bench-idle.XXXXXX)
AGENT_PID=
export DOCKER_HOST="unix://$SOCKET"

cleanup() {
    if [[ -n $AGENT_PID ]]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    local ids
    ids=$(docker ps -aq --filter "name=$PREFIX-")
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086 # one ID per word
        docker rm -f $ids >/dev/null || true
    fi
    rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$AGENT_PID/status"; }
cpu_ticks() {
    # Fields after the last ')' start at field 3; utime and stime are 14 and 15.
    local stat rest
    stat=$(<"/proc/$AGENT_PID/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest
    echo $((${12} + ${13}))
}

if curl -s --max-time 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
    echo "bench-idle: port $PORT is in use; set BENCH_PORT" >&2
    exit 1
fi
[[ -n ${AGENT_BIN:-} ]] || cargo build --release --quiet

echo "starting $COUNT containers..."
start=$SECONDS
seq "$COUNT" | xargs -P 4 -I{} docker run -d --network none --name "$PREFIX-{}" localbusy:latest sleep 3600 >/dev/null
echo "  started in $((SECONDS - start)) s"

"$BIN" --docker-socket "$SOCKET" --listen "127.0.0.1:$PORT" --interval 30 2>"$LOG" &
AGENT_PID=$!
sleep 10
kill -0 "$AGENT_PID" 2>/dev/null || {
    echo "bench-idle: agent exited; its log:" >&2
    cat "$LOG" >&2
    exit 1
}
tracked=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '$1 == "outlyer_agent_containers" { print $2 }')
bytes=$(curl -sf "http://127.0.0.1:$PORT/metrics" | wc -c)
rss0=$(status_kb VmRSS)
ticks0=$(cpu_ticks)
echo "idle for $IDLE s..."
sleep "$IDLE"
ticks1=$(cpu_ticks)
rss1=$(status_kb VmRSS)
hwm=$(status_kb VmHWM)
hz=$(getconf CLK_TCK)
cpu=$(awk -v d=$((ticks1 - ticks0)) -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.3f", d / hz / s * 100 }')
echo "tracked containers: $tracked (ours: $COUNT), /metrics size: $bytes bytes"
echo "VmRSS after 10 s: $rss0 kB, after $((IDLE + 10)) s: $rss1 kB, VmHWM: $hwm kB"
echo "CPU over $IDLE s idle: $((ticks1 - ticks0)) ticks = $cpu % of one core (interval 30 s)"
