#!/usr/bin/env bash
# Short fuzz run over every parser target: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Long run: scripts/fuzz.sh --time TOTAL_SECONDS [TARGET...] splits the time
# evenly over the targets, then minimizes each corpus in place (libFuzzer
# -merge=1; fuzz/corpus/ is committed) and prints a Markdown table of the
# time, executions and crashes per target for the README.
#
# Installs cargo-fuzz when missing, seeds fuzz/corpus/<t> from fuzz/seeds/<t>,
# builds all targets once (nightly, sanitizer=address), then runs each built
# binary for N seconds (default 20). Exits non-zero when any target crashes,
# leaks, times out or fails to build; crash inputs and logs are left in
# fuzz/artifacts/. FUZZ_TARGET_DIR overrides fuzz/target, FUZZ_TOOLCHAIN nightly.
set -euo pipefail

TOTAL=
if [ "${1:-}" = --time ]; then
    TOTAL=${2:-}
    shift 2 || true
    case $TOTAL in
        '' | *[!0-9]*) echo "usage: $0 --time TOTAL_SECONDS [TARGET...]" >&2; exit 2 ;;
    esac
    SECONDS_PER_TARGET=0
else
    SECONDS_PER_TARGET=${1:-20}
    shift || true
fi
case $SECONDS_PER_TARGET in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"

TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
if ! cargo "+$TOOLCHAIN" --version >/dev/null 2>&1; then
    echo "fuzz: the $TOOLCHAIN toolchain is required (rustup toolchain install $TOOLCHAIN)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo "+$TOOLCHAIN" fuzz list)
fi
[ ${#TARGETS[@]} -gt 0 ] || { echo "fuzz: no targets" >&2; exit 1; }
if [ -n "$TOTAL" ]; then
    SECONDS_PER_TARGET=$((TOTAL / ${#TARGETS[@]}))
    [ "$SECONDS_PER_TARGET" -gt 0 ] || SECONDS_PER_TARGET=1
fi

for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    if [ -d "seeds/$t" ]; then
        cp -n "seeds/$t"/* "corpus/$t"/ 2>/dev/null || true
    fi
done

TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}
TRIPLE=$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')
BIN_DIR=$TARGET_DIR/$TRIPLE/release

start=$(date +%s)
echo "fuzz: building all targets (running ${#TARGETS[@]})"
cargo "+$TOOLCHAIN" fuzz build --target-dir "$TARGET_DIR"
built=$(date +%s)
echo "fuzz: build took $((built - start)) s"

# Run the binaries built above directly: `cargo fuzz run` would rebuild first,
# and the agent's sources may change under a running script.
failed=()
mkdir -p artifacts
for t in "${TARGETS[@]}"; do
    echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
    log="artifacts/$t.log"
    mkdir -p "artifacts/$t"
    # -timeout: one input taking over 10 s is a hang; the RSS limit keeps a
    # runaway target from starving the machine.
    if "$BIN_DIR/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus/$t" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/fuzz: $t /" || true
    else
        echo "fuzz: $t FAILED (log: fuzz/$log)" >&2
        tail -n 30 "$log" >&2
        failed+=("$t")
    fi
done
end=$(date +%s)
echo "fuzz: ${#TARGETS[@]} targets, build $((built - start)) s, total $((end - start)) s"

if [ -n "$TOTAL" ]; then
    echo
    echo "| target | seconds | executions | crashes | corpus before → after minimizing |"
    echo "|---|---|---|---|---|"
    for t in "${TARGETS[@]}"; do
        log="artifacts/$t.log"
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
        before=$(find "corpus/$t" -type f | wc -l)
        rm -rf "corpus.min/$t"
        mkdir -p "corpus.min/$t"
        "$BIN_DIR/$t" -merge=1 -timeout=10 -rss_limit_mb=2048 "corpus.min/$t" "corpus/$t" >"artifacts/$t.merge.log" 2>&1 &&
            rm -rf "corpus/$t" && mv "corpus.min/$t" "corpus/$t"
        after=$(find "corpus/$t" -type f | wc -l)
        echo "| \`$t\` | $SECONDS_PER_TARGET | ${execs:-?} | $crashes | $before → $after |"
    done
    rmdir corpus.min 2>/dev/null || true
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crashes"
