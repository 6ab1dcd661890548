#!/usr/bin/env bash
# Collection cost against the floor of the reads alone, side by side.
#
# Starts N busybox containers (default 20, image localbusy:latest), builds
# the reference floor reader (tools/cgread.c, mode 2: every file opened
# once, one pread at offset 0 per sweep) and the collector bench
# (benches/collect.rs, real mode), then runs them interleaved RUNS times
# each (default 5) on the same container list and prints both medians of
# the CPU per container per cycle and their RATIO (issue 12: target <= 1.25).
# Then one strace -c run of the collector: syscalls per container per cycle
# (a setup-only run subtracted), with the openat count on its own.
# Removes its containers on exit.
#
# Usage: scripts/bench-floor.sh [N]
# Env: DOCKER (default /usr/bin/docker), IMAGE, RUNS, CYCLES (default 500),
#      PROCS (processes per container, default 1: the idle sleep loop),
#      CARGO_TARGET_DIR, NO_STRACE=1.
set -euo pipefail

N="${1:-20}"
DOCKER="${DOCKER:-/usr/bin/docker}"
IMAGE="${IMAGE:-localbusy:latest}"
RUNS="${RUNS:-5}"
CYCLES="${CYCLES:-500}"
PROCS="${PROCS:-1}"
SOCK=/var/run/docker.sock
PREFIX="oa-floor-bench-$$"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
LIST="$WORK/containers"
IDS="$WORK/ids"

cleanup() {
    local ids
    ids="$("$DOCKER" ps -aq --filter "name=^${PREFIX}-" 2>/dev/null || true)"
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
    fi
    "$DOCKER" network rm "$PREFIX" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -S "$SOCK" ] || { echo "no Docker daemon at $SOCK" >&2; exit 1; }

echo "== building the floor reader and the bench"
gcc -O2 -o "$WORK/cgread" "$ROOT/tools/cgread.c"
cd "$ROOT"
BENCH="$(cargo bench --bench collect --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "collect" and .executable != null) | .executable' |
    tail -n 1)"
[ -x "$BENCH" ] || { echo "bench binary not found" >&2; exit 1; }

# The workload: the idle loop (its sleep child is new every second), plus
# PROCS-1 more sleeping processes.
CMD='while :; do sleep 1; done'
if [ "$PROCS" -gt 1 ]; then
    CMD="for i in \$(seq 2 $PROCS); do sleep 100000 & done; $CMD"
fi
"$DOCKER" network create "$PREFIX" >/dev/null
echo "== starting $N containers ($IMAGE, $PROCS process(es) each)"
for i in $(seq 1 "$N"); do
    "$DOCKER" run -d --name "${PREFIX}-$i" --network "$PREFIX" "$IMAGE" sh -c "$CMD" >/dev/null
done
: >"$LIST"
: >"$IDS"
for i in $(seq 1 "$N"); do
    line="$("$DOCKER" inspect --format '{{.Id}} {{.State.Pid}} {{.HostConfig.NetworkMode}}' "${PREFIX}-$i")"
    echo "$line" >>"$LIST"
    echo "${line%% *}" >>"$IDS"
done
sleep 2

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== interleaved, $RUNS runs each, $CYCLES cycles per run (CPU per container per cycle)"
: >"$WORK/agent"
: >"$WORK/floor"
for r in $(seq 1 "$RUNS"); do
    out="$("$BENCH" --rootfs / --containers-file "$LIST" --cycles "$CYCLES" --quiet 2>/dev/null)"
    a="$(sed -n 's/.*cpu\/container=\([0-9.]*\)us.*/\1/p' <<<"$out")"
    split="$(sed -n 's/.*split per container per cycle: //p' <<<"$out")"
    echo "$a" >>"$WORK/agent"
    out="$("$WORK/cgread" "$IDS" "$CYCLES" 2)"
    b="$(sed -n 's/.*cpu(user+sys) \([0-9.]*\) us.*/\1/p' <<<"$out")"
    echo "$b" >>"$WORK/floor"
    echo "run $r: collector ${a}us ($split), floor ${b}us"
done
am="$(median <"$WORK/agent")"
fm="$(median <"$WORK/floor")"
echo "collector median: ${am}us per container per cycle"
echo "floor median:     ${fm}us per container per cycle (tools/cgread.c mode 2)"
awk -v a="$am" -v b="$fm" 'BEGIN { printf "RATIO collector/floor: %.2f (target <= 1.25)\n", a / b }'

[ "${NO_STRACE:-}" = 1 ] && exit 0
command -v strace >/dev/null || { echo "no strace: syscall count skipped"; exit 0; }
echo "== collector syscalls per container per cycle (strace -f -c, setup-only run subtracted)"
K=50
cycles=$((K + 3)) # measure() runs 3 warm-up cycles
count() { # <file> <syscall or total>
    awk -v s="$2" '$NF == s { print ($5 ~ /^[0-9]+$/ && NF == 6) ? $4 : $4; f = 1; exit } END { if (!f) print 0 }' "$1"
}
strace -f -c -o "$WORK/s0" "$BENCH" --rootfs / --containers-file "$LIST" --cycles 0 --quiet >/dev/null 2>&1
strace -f -c -o "$WORK/s1" "$BENCH" --rootfs / --containers-file "$LIST" --cycles "$K" --quiet >/dev/null 2>&1
for s in total pread64 openat read close; do
    awk -v a="$(count "$WORK/s0" "$s")" -v b="$(count "$WORK/s1" "$s")" -v c="$cycles" -v n="$N" -v s="$s" \
        'BEGIN { printf "  %-8s %.2f\n", s, (b - a) / c / n }'
done
echo "  floor: 11 pread64 per container per sweep, no openat"
