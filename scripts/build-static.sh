#!/bin/sh
# Build the fully static agent binary:
#   target/x86_64-unknown-linux-musl/release/outlyer-agent
#
# One-time set-up (Debian/Ubuntu):
#   rustup target add x86_64-unknown-linux-musl
#   apt-get install musl-tools
#
# The binary is linked statically and not position-independent by default
# (`file`: "statically linked", `ldd`: "not a dynamic executable"), which is
# a little smaller and starts a little faster. STATIC_PIE=1 builds a
# static-pie instead (the Rust default for musl: the kernel can load it at a
# random address, ASLR for the agent's own code).
#
# The unwind tables are left out at link time (scripts/no-unwind-tables.ld):
# with panic = "abort" nothing unwinds, a panic still prints its message and
# location and aborts.
#
# The output path is fixed (the repository's target/ dir, whatever
# CARGO_TARGET_DIR says) because Dockerfile.scratch copies it from there.
#
#   scripts/build-static.sh --env    prints the build's environment as
#                                    `export` lines and builds nothing
#                                    (scripts/size-report.sh evaluates them).
set -eu

TARGET=x86_64-unknown-linux-musl
repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
bin="$repo/target/$TARGET/release/outlyer-agent"

die() {
    echo "build-static: $*" >&2
    exit 2
}

command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"
sysroot=$(rustc --print sysroot)
[ -d "$sysroot/lib/rustlib/$TARGET/lib" ] ||
    die "Rust target $TARGET missing: run 'rustup target add $TARGET'"
command -v musl-gcc >/dev/null 2>&1 ||
    die "musl-gcc missing: run 'apt-get install musl-tools' (Debian/Ubuntu)"

# ring's C code is compiled against musl (the cc crate honours this).
CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc}

case "$repo" in
    *[[:space:]]*) die "the repository path must not contain white space (rustflags): $repo" ;;
esac
# Cargo does not track this file: after editing it, `cargo clean` or touch
# src/main.rs so that the binary is linked again.
ldscript="$repo/scripts/no-unwind-tables.ld"
[ -f "$ldscript" ] || die "$ldscript missing"
if [ "${STATIC_PIE:-0}" = 1 ]; then
    flags=""
else
    flags="-C relocation-model=static"
fi
flags="$flags -C link-arg=-Wl,-T,$ldscript"
# Target-scoped so that host builds (build scripts, proc macros) are untouched.
CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS:-} $flags"
export CC_x86_64_unknown_linux_musl CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS

if [ "${1:-}" = --env ]; then
    quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
    echo "export CC_x86_64_unknown_linux_musl=$(quote "$CC_x86_64_unknown_linux_musl")"
    echo "export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=$(quote "$CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS")"
    exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--env]"

cd "$repo"
cargo build --release --locked --target "$TARGET" --target-dir "$repo/target" \
    --bin outlyer-agent

[ -x "$bin" ] || die "cargo did not produce $bin"

# Prove it is static: file(1) names the linkage, ldd(1) finds no interpreter.
kind=$(file -b "$bin")
case "$kind" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "not a static binary: $kind" ;;
esac
if command -v ldd >/dev/null 2>&1; then
    # glibc's ldd prints "not a dynamic executable" for static binaries and
    # "statically linked" for static-pie; anything listing a .so is a failure.
    deps=$(ldd "$bin" 2>&1 || true)
    case "$deps" in
        *"not a dynamic executable"* | *"statically linked"*) ;;
        *) die "ldd found dynamic dependencies: $deps" ;;
    esac
fi

size=$(wc -c <"$bin")
echo "build-static: $bin"
echo "build-static: $size bytes; $kind"
