#!/usr/bin/env bash
# Collection cost on real cgroup files, side by side with `docker stats
# --no-stream` and the Docker stats API.
#
# Starts N busybox containers (default 20, image localbusy:latest), then
# measures, for one collector over all of them:
#   - CPU and wall time per cycle and per container (benches/collect.rs, real mode)
#   - syscalls per container per cycle (strace -c, setup-only run subtracted)
#   - RSS of the bench process
#   - one `docker stats --no-stream` sweep and one sweep of
#     GET /containers/{id}/stats?stream=false: wall time, client CPU and daemon CPU
# Removes its containers on exit.
#
# Usage: scripts/bench-collect.sh [N]
# Env: DOCKER (default /usr/bin/docker), IMAGE, CARGO_TARGET_DIR.
set -euo pipefail

N="${1:-20}"
DOCKER="${DOCKER:-/usr/bin/docker}"
IMAGE="${IMAGE:-localbusy:latest}"
SOCK=/var/run/docker.sock
PREFIX="oa-collector-bench-$$"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
LIST="$WORK/containers"

NET="$PREFIX"

cleanup() {
    local ids
    ids="$("$DOCKER" ps -aq --filter "name=^${PREFIX}-" 2>/dev/null || true)"
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
    fi
    "$DOCKER" network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -S "$SOCK" ] || { echo "no Docker daemon at $SOCK" >&2; exit 1; }

# A network of our own: independent of the state of the default bridge.
"$DOCKER" network create "$NET" >/dev/null
echo "== starting $N containers ($IMAGE)"
for i in $(seq 1 "$N"); do
    "$DOCKER" run -d --name "${PREFIX}-$i" --network "$NET" "$IMAGE" sh -c 'while :; do sleep 1; done' >/dev/null
done
: >"$LIST"
IDS=()
for i in $(seq 1 "$N"); do
    line="$("$DOCKER" inspect --format '{{.Id}} {{.State.Pid}} {{.HostConfig.NetworkMode}}' "${PREFIX}-$i")"
    echo "$line" >>"$LIST"
    IDS+=("${line%% *}")
done

echo "== building the bench"
cd "$ROOT"
BENCH="$(cargo bench --bench collect --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "collect" and .executable != null) | .executable' |
    tail -n 1)"
[ -x "$BENCH" ] || { echo "bench binary not found" >&2; exit 1; }

echo "== collector: cost per cycle (200 cycles)"
"$BENCH" --rootfs / --containers-file "$LIST" --cycles 200 --quiet 2>/dev/null

echo "== collector: syscalls per container per cycle (strace -c)"
K=20
strace_total() {
    strace -f -c -o "$WORK/strace.$1" "$BENCH" --rootfs / --containers-file "$LIST" --cycles "$1" --quiet >/dev/null 2>&1
    # Columns of the total row: % time, seconds, usecs/call, calls, [errors,] "total".
    awk '$NF == "total" { print $4 + 0; exit }' "$WORK/strace.$1"
}
base="$(strace_total 0)"
run="$(strace_total "$K")"
# measure() runs 3 warm-up cycles before the K measured ones.
cycles=$((K + 3))
echo "syscalls: setup-only $base, with $cycles cycles $run"
awk -v a="$base" -v b="$run" -v c="$cycles" -v n="$N" \
    'BEGIN { printf "syscalls per container per cycle: %.1f\n", (b - a) / c / n }'
echo "-- per-syscall breakdown of the ${cycles}-cycle run:"
head -n 20 "$WORK/strace.$K"

daemon_pid="$(cat /var/run/docker.pid 2>/dev/null || pgrep -xo dockerd)"
daemon_cpu() { awk '{ print $14 + $15 }' "/proc/$daemon_pid/stat"; }
ticks="$(getconf CLK_TCK)"

echo "== docker stats --no-stream (one sweep over $N containers)"
d0="$(daemon_cpu)"
/usr/bin/time -f "docker stats: wall %e s, client cpu %U s user + %S s sys" \
    "$DOCKER" stats --no-stream "${IDS[@]}" >/dev/null
d1="$(daemon_cpu)"
awk -v a="$d0" -v b="$d1" -v t="$ticks" 'BEGIN { printf "dockerd cpu during the sweep: %.2f s (shared daemon: includes other load)\n", (b - a) / t }'

echo "== Docker stats API, GET /containers/{id}/stats?stream=false, one after another"
d0="$(daemon_cpu)"
start="$(date +%s.%N)"
for id in "${IDS[@]}"; do
    curl -s --unix-socket "$SOCK" "http://docker/containers/$id/stats?stream=false" >/dev/null
done
end="$(date +%s.%N)"
d1="$(daemon_cpu)"
awk -v s="$start" -v e="$end" -v n="$N" 'BEGIN { printf "stats API: wall %.2f s for %d containers (%.0f ms each)\n", e - s, n, (e - s) * 1000 / n }'
awk -v a="$d0" -v b="$d1" -v t="$ticks" 'BEGIN { printf "dockerd cpu during the sweep: %.2f s\n", (b - a) / t }'
