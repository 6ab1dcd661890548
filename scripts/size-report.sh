#!/bin/sh
# Where the static binary's bytes go.
#
#   scripts/size-report.sh [N]    (N = rows per table, default 20)
#
# 1. Size of the shipped binary (target/x86_64-unknown-linux-musl/release/
#    outlyer-agent, built by scripts/build-static.sh) against the 1.6 MB
#    budget, and its ELF sections (`size -A`).
# 2. The same build without stripping (target/size-report/...), attributed
#    to crates and functions: with cargo-bloat when it is installed
#    (`cargo install cargo-bloat`), else with `nm --size-sort` grouped by
#    the first path segment of each demangled symbol. Symbols without a
#    Rust path are C code: musl libc and compiler builtins.
# With LTO, inlined code counts towards the function it was inlined into,
# so crate figures are estimates. SIZE_REPORT_TOOL=nm forces the nm view.
set -eu

TARGET=x86_64-unknown-linux-musl
BUDGET=${BIN_BUDGET:-1600000}
rows=${1:-20}
repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
shipped="$repo/target/$TARGET/release/outlyer-agent"
sr_dir="$repo/target/size-report"
unstripped="$sr_dir/$TARGET/release/outlyer-agent"

cd "$repo"

# Same code generation as scripts/build-static.sh (its own flags, from
# `build-static.sh --env`), only not stripped.
env_lines=$("$repo/scripts/build-static.sh" --env) || exit 2
eval "$env_lines"
CARGO_PROFILE_RELEASE_STRIP=false
export CARGO_PROFILE_RELEASE_STRIP

echo "== shipped binary"
if [ -f "$shipped" ]; then
    size=$(wc -c <"$shipped")
    verdict="within"
    [ "$size" -le "$BUDGET" ] || verdict="OVER"
    echo "$shipped"
    echo "size: $size bytes ($verdict the budget of $BUDGET bytes)"
    echo
    echo "== ELF sections of the shipped binary (size -A; .bss takes no file space)"
    size -A "$shipped" | awk 'NR > 2 && $2 > 0 { printf "%-22s %9d\n", $1, $2 }'
else
    echo "(not built yet: run scripts/build-static.sh)"
fi
echo

if [ "${SIZE_REPORT_TOOL:-}" != nm ] && command -v cargo-bloat >/dev/null 2>&1; then
    echo "== by crate (cargo bloat, unstripped build in $sr_dir)"
    cargo bloat --release --target "$TARGET" --target-dir "$sr_dir" \
        --bin outlyer-agent --crates -n "$rows" 2>/dev/null
    echo
    echo "== largest functions (cargo bloat)"
    cargo bloat --release --target "$TARGET" --target-dir "$sr_dir" \
        --bin outlyer-agent -n "$rows" 2>/dev/null
else
    echo "== by crate (nm --size-sort on the unstripped build in $sr_dir;"
    echo "   'cargo install cargo-bloat' for cargo bloat's view)"
    cargo build --quiet --release --locked --target "$TARGET" --target-dir "$sr_dir" \
        --bin outlyer-agent
    nm -S --size-sort --radix=d -C --defined-only "$unstripped" |
        awk '
            NF >= 4 && ($3 ~ /^[tTrRdDbBwWvV]$/) {
                sz = $2 + 0; kind = $3
                $1 = ""; $2 = ""; $3 = ""; name = substr($0, 4)
                if (index(name, "::") == 0) crate = "[C: musl libc, builtins]"
                else {
                    # last word before the first "::": skips C++ return
                    # types ("bool libunwind::...") and "<", "&", "*const"
                    crate = substr(name, 1, index(name, "::") - 1)
                    sub(/^.*[ <&*(]/, "", crate)
                    gsub(/[]>[]/, "", crate)
                }
                if (kind ~ /[tTwW]/) text[crate] += sz; else data[crate] += sz
                total += sz
            }
            END {
                for (c in text) all[c] = 1
                for (c in data) all[c] = 1
                for (c in all) printf "%9d %9d %9d %s\n", text[c] + data[c], text[c], data[c], c
                printf "%9d %9s %9s %s\n", total, "", "", "(all symbols)"
            }' | sort -rn | awk -v rows="$rows" '
            BEGIN { printf "%9s %9s %9s %s\n", "bytes", "code", "data", "crate" }
            NR <= rows + 1 { print }'
    echo
    echo "== largest symbols (nm --size-sort)"
    nm -S --size-sort --radix=d -C --defined-only "$unstripped" | tail -n "$rows" |
        awk '{ sz = $2 + 0; $1 = ""; $2 = ""; printf "%9d %s\n", sz, substr($0, 3) }' |
        sort -rn
fi
