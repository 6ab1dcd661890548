#!/usr/bin/env bash
# The project's one test command: `scripts/test.sh`, as root (run as
# another user it re-runs itself through sudo when sudo exists). Sets the machine up, then runs, stopping at the first
# failure: rustfmt check, clippy (warnings are errors), every test target of
# the workspace (the agent and testkit/) against the real Docker daemon, a
# short fuzz run and the static build check when those scripts exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null; then
        exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR,CI "$0" "$@"
    fi
    echo "test.sh: FAILED: must run as root (installs packages, starts dockerd, uses cgroups)" >&2
    exit 1
fi

# Under sudo, cargo may live in the invoking user's home.
if ! command -v cargo >/dev/null; then
    for home in "${HOME:-/root}" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
        if [[ -x $home/.cargo/bin/cargo ]]; then
            export PATH="$home/.cargo/bin:$PATH"
            [[ -d $home/.rustup ]] && export RUSTUP_HOME="${RUSTUP_HOME:-$home/.rustup}"
            break
        fi
    done
fi
command -v cargo >/dev/null || {
    echo "test.sh: FAILED: cargo not found (install Rust with rustup first)" >&2
    exit 1
}

SUMMARY=()
run_step() {
    local name=$1
    shift
    printf '\n==> %s: %s\n' "$name" "$*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - start))
    if ((rc != 0)); then
        printf '\ntest.sh: FAILED at step "%s" (exit %d after %d s): %s\n' "$name" "$rc" "$took" "$*" >&2
        exit "$rc"
    fi
    SUMMARY+=("$(printf '%-8s %4d s' "$name" "$took")")
}

run_step setup scripts/ci-setup.sh
run_step fmt cargo fmt --all -- --check
run_step clippy cargo clippy --workspace --all-targets -- -D warnings
# Debug build: the release profile (LTO, one codegen unit) would link every
# test binary with LTO, which costs far more than the tests gain.
run_step test env OUTLYER_REQUIRE_DOCKER=1 cargo test --workspace --all-targets
if [[ -f scripts/fuzz.sh ]]; then
    run_step fuzz bash scripts/fuzz.sh 20
else
    echo "(scripts/fuzz.sh absent: fuzz step skipped)"
fi
if [[ -f scripts/test-static.sh ]]; then
    run_step static bash scripts/test-static.sh
else
    echo "(scripts/test-static.sh absent: static build step skipped)"
fi

printf '\nall steps passed:\n'
printf '  %s\n' "${SUMMARY[@]}"
