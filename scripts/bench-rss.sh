#!/usr/bin/env bash
# Agent RSS with 0, 100 and 1000 synthetic containers (benches/agent_rss.rs):
# the real agent process, a synthetic host tree and a fake Docker 20.10
# daemon, local mode, --interval 1, CYCLES (10) collections before measuring.
# Both binaries: the shipped static musl one
# (target/x86_64-unknown-linux-musl/release/outlyer-agent, built with
# scripts/build-static.sh when missing or when STATIC_REBUILD=1) and the
# cargo-built glibc one (bench profile). v1 and v2 trees. The two binaries run
# side by side to stay under two minutes.
#
# Usage: scripts/bench-rss.sh
# Env: SIZES (default 100,1000; 0 always runs), LAYOUTS ("v1 v2"), CYCLES (10),
#      STATIC_REBUILD=1, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SIZES=${SIZES:-100,1000}
LAYOUTS=${LAYOUTS:-v1 v2}
CYCLES=${CYCLES:-10}
STATIC_BIN="$ROOT/target/x86_64-unknown-linux-musl/release/outlyer-agent"
WORK=$(mktemp -d /tmp/bench-rss.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "== building the bench and the cargo agent (bench profile)" >&2
BENCH=$(cargo bench --bench agent_rss --no-run --message-format=json 2>"$WORK/build.log" |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "agent_rss" and .executable != null) | .executable' |
    tail -n 1)
[[ -x $BENCH ]] || { cat "$WORK/build.log" >&2; echo "bench-rss: bench binary not found" >&2; exit 1; }

if [[ ! -x $STATIC_BIN || ${STATIC_REBUILD:-0} == 1 ]]; then
    echo "== building the static agent (scripts/build-static.sh)" >&2
    scripts/build-static.sh >&2
fi

run_bin() { # label, AGENT_BIN or empty
    local label=$1 bin=$2 layout
    for layout in $LAYOUTS; do
        AGENT_BIN=$bin "$BENCH" --containers "$SIZES" --layout "$layout" --cycles "$CYCLES" --label "$label"
    done >"$WORK/$label.out" 2>"$WORK/$label.err"
}

echo "== measuring (sizes 0,$SIZES; layouts $LAYOUTS; $CYCLES cycles each)" >&2
start=$SECONDS
run_bin static "$STATIC_BIN" &
pid_static=$!
run_bin cargo "" &
pid_cargo=$!
status=0
wait "$pid_static" || status=1
wait "$pid_cargo" || status=1
echo "   done in $((SECONDS - start)) s" >&2
if ((status != 0)); then
    cat "$WORK"/*.err >&2
fi

# One row per (binary, layout, N); before / after the first /metrics scrape.
cat "$WORK/static.out" "$WORK/cargo.out" | awk '
function kv(k,   i, p) {
    for (i = 2; i <= NF; i++) { split($i, p, "="); if (p[1] == k) return p[2] }
    return ""
}
$1 == "agent_rss" {
    key = kv("bin") " " kv("layout") " " kv("containers")
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    ph = kv("phase")
    rss[key, ph] = kv("VmRSS"); anon[key, ph] = kv("RssAnon"); file[key, ph] = kv("RssFile")
    hwm[key] = kv("VmHWM"); fds[key] = kv("fds"); per[key, ph] = kv("rss_per_container_kib")
    mb[key] = kv("metrics_bytes")
}
END {
    printf "%-7s %-3s %5s | %9s %9s %9s | %8s %8s | %6s %9s | %10s %10s\n", \
        "binary", "cg", "N", "RSS", "RSS+scr", "HWM", "anon", "file", "fds", "/metrics", "KiB/ctr", "KiB/ctr+s"
    printf "%-7s %-3s %5s | %9s %9s %9s | %8s %8s | %6s %9s | %10s %10s\n", \
        "", "", "", "KiB", "KiB", "KiB", "KiB", "KiB", "", "bytes", "", ""
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, f, " ")
        printf "%-7s %-3s %5s | %9s %9s %9s | %8s %8s | %6s %9s | %10s %10s\n", f[1], f[2], f[3], \
            rss[k, "before-scrape"], rss[k, "after-scrape"], hwm[k], anon[k, "before-scrape"], \
            file[k, "before-scrape"], fds[k], mb[k], per[k, "before-scrape"], per[k, "after-scrape"]
    }
    print "RSS = VmRSS before any scrape; RSS+scr = right after one GET /metrics; HWM = VmHWM then."
    print "KiB/ctr = (RSS at N - RSS at N=0) / N, same binary and layout."
}'
exit "$status"
