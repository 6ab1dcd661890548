#!/usr/bin/env bash
# Two revisions side by side: static binary size, agent RSS with synthetic
# containers, collection cost per container. For refactors that must not
# make any of them worse; the machines are shared and noisy, so the runs
# alternate (A B A B ...) and both sides are printed.
#
# Usage: scripts/compare-builds.sh REV_A REV_B [ROUNDS]
#   REV_A, REV_B: anything `git worktree add` takes (a commit, a branch)
#   ROUNDS: alternations of the RSS and collection benches (default 3)
# Env: SIZES (agent RSS, default 0,1000), LAYOUT (v1).
#
# Each revision is checked out into a temporary worktree with its own
# target directory; its static binary comes from its own
# scripts/build-static.sh, its collection bench from its own benches/.
# RSS is measured with REV_B's agent_rss harness for both binaries (it only
# spawns the binary and reads /proc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v jq >/dev/null || { echo "compare-builds: needs jq (apt-get install jq)" >&2; exit 1; }
ROOT=$PWD
A=${1:?usage: compare-builds.sh REV_A REV_B [ROUNDS]}
B=${2:?usage: compare-builds.sh REV_A REV_B [ROUNDS]}
ROUNDS=${3:-3}
SIZES=${SIZES:-0,1000}
LAYOUT=${LAYOUT:-v1}
WORK=$(mktemp -d /tmp/compare-builds.XXXXXX)
cleanup() {
    for side in a b; do
        git -C "$ROOT" worktree remove --force "$WORK/$side" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

build() { # side rev
    local side=$1 rev=$2 dir=$WORK/$1
    git -C "$ROOT" worktree add -q --detach "$dir" "$rev"
    echo "== $side = $rev ($(git -C "$dir" log --oneline -1))" >&2
    (cd "$dir" && scripts/build-static.sh >"$WORK/$side.static.log" 2>&1) ||
        { cat "$WORK/$side.static.log" >&2; exit 1; }
    (cd "$dir" && CARGO_TARGET_DIR=$dir/target cargo bench --bench collect --no-run \
        --message-format=json 2>"$WORK/$side.bench.log" |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "collect" and .executable != null) | .executable' |
        tail -n 1) >"$WORK/$side.collect"
    [[ -x $(cat "$WORK/$side.collect") ]] || { cat "$WORK/$side.bench.log" >&2; exit 1; }
}
build a "$A"
build b "$B"
RSS=$(cd "$WORK/b" && CARGO_TARGET_DIR=$WORK/b/target cargo bench --bench agent_rss --no-run \
    --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "agent_rss" and .executable != null) | .executable' |
    tail -n 1)

bin() { echo "$WORK/$1/target/x86_64-unknown-linux-musl/release/outlyer-agent"; }
for side in a b; do
    printf 'size %s %s bytes\n' "$side" "$(stat -c %s "$(bin $side)")"
done
for round in $(seq "$ROUNDS"); do
    for side in a b; do
        AGENT_BIN=$(bin $side) "$RSS" --containers "$SIZES" --layout "$LAYOUT" --cycles 5 \
            --label "$side" 2>&1 | grep '^agent_rss bin=' | grep 'after-scrape' |
            sed "s/^/round $round rss /"
        (cd "$WORK/$side" && "$(cat "$WORK/$side.collect")" 2>&1) | grep -E '^synthetic' |
            sed "s/^/round $round collect $side /"
    done
done
