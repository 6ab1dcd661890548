#!/usr/bin/env bash
# Prepares a Debian 12 machine (with Rust installed) for the test suite:
# system packages, the musl target, a running Docker daemon and the
# `localbusy:latest` test image. Idempotent: every step checks first.
#
#   scripts/ci-setup.sh                         full setup (run as root)
#   scripts/ci-setup.sh --import-image HOST     only import localbusy:latest into
#                                               the daemon at HOST (unix:///path),
#                                               used by the tests' private dockerd
set -euo pipefail

PACKAGES=(docker.io busybox-static musl-tools prometheus curl strace file iptables procps iproute2 util-linux perl graphite-carbon python3-whisper docker-compose python3-yaml)
SHARED_SOCKET=/var/run/docker.sock
DOCKERD_LOG=/tmp/outlyer-dockerd.log
IMAGE=localbusy:latest
# Applets linked into the image; tests and benches use only these.
APPLETS=(sh sleep dd cat yes top ls head)

log() { printf 'ci-setup: %s\n' "$*" >&2; }
die() {
    printf 'ci-setup: FAILED: %s\n' "$*" >&2
    exit 1
}

find_busybox() {
    local candidate
    for candidate in /bin/busybox /usr/bin/busybox; do
        if [[ -x $candidate ]] && file -L "$candidate" | grep -q 'statically linked'; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# The one recipe for the test image: a tar of a static busybox plus applet
# symlinks, imported with `docker import`. No registry is needed.
import_localbusy() {
    local host=$1
    if docker -H "$host" image inspect "$IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    local busybox rootfs applet
    busybox=$(find_busybox) || die "no statically linked busybox (install busybox-static)"
    rootfs=$(mktemp -d /tmp/outlyer-localbusy.XXXXXX)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in "${APPLETS[@]}"; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    local rc=0
    tar -C "$rootfs" -cf - . | docker -H "$host" import - "$IMAGE" >/dev/null || rc=$?
    rm -rf "$rootfs"
    ((rc == 0)) || die "docker import of $IMAGE into $host failed"
    log "imported $IMAGE into $host"
}

docker_answers() {
    local socket=$1
    [[ -S $socket ]] || return 1
    [[ $(curl -sS --max-time 2 --unix-socket "$socket" http://docker/_ping 2>/dev/null) == OK ]]
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "packages present"
        return 0
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]}"
}

add_musl_target() {
    if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
        log "musl target present"
        return 0
    fi
    rustup target add x86_64-unknown-linux-musl || die "rustup target add x86_64-unknown-linux-musl"
}

start_dockerd() {
    if docker_answers "$SHARED_SOCKET"; then
        log "dockerd answers on $SHARED_SOCKET"
        return 0
    fi
    if ! pgrep -x dockerd >/dev/null; then
        log "starting dockerd (log: $DOCKERD_LOG)"
        setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    else
        log "dockerd is running but does not answer yet; waiting"
    fi
    local i
    for ((i = 0; i < 120; i++)); do
        if docker_answers "$SHARED_SOCKET"; then
            log "dockerd answers on $SHARED_SOCKET"
            return 0
        fi
        sleep 0.5
    done
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer /_ping within 60 s"
}

# A dockerd started with `--bridge none` in the host network namespace deletes
# `docker0`; the shared daemon then fails every `docker run` on the default
# network ("could not find bridge docker0") until it is restarted. Recreate the
# bridge from the daemon's own network record instead of restarting it.
repair_docker0() {
    if ip link show docker0 >/dev/null 2>&1; then
        return 0
    fi
    local subnet gateway
    subnet=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}' 2>/dev/null) || return 0
    gateway=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null)
    [[ -n $subnet ]] || return 0
    if [[ -z $gateway ]]; then
        gateway="${subnet%/*}"
        gateway="${gateway%.*}.1"
    fi
    log "docker0 is missing; recreating it as $gateway/${subnet#*/}"
    ip link add name docker0 type bridge || die "ip link add docker0"
    ip addr add "$gateway/${subnet#*/}" dev docker0 || die "ip addr add $gateway on docker0"
    ip link set docker0 up || die "ip link set docker0 up"
}

main() {
    if [[ ${1:-} == --import-image ]]; then
        [[ -n ${2:-} ]] || die "usage: $0 --import-image unix:///path/to/docker.sock"
        import_localbusy "$2"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "run as root (sudo $0): installs packages and starts dockerd"
    install_packages
    add_musl_target
    start_dockerd
    repair_docker0
    import_localbusy "unix://$SHARED_SOCKET"
    log "ready"
}

main "$@"
