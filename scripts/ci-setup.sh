#!/usr/bin/env bash
# Prepares a Debian 12 machine (with Rust installed) for the test suite:
# system packages, the musl target, a running Docker daemon and the
# `localbusy:latest` test image. Idempotent: every step checks first.
#
#   scripts/ci-setup.sh                         full setup (run as root)
#   scripts/ci-setup.sh --import-image HOST     only import localbusy:latest into
#                                               the daemon at HOST (unix:///path),
#                                               used by the tests' private dockerd
#   scripts/ci-setup.sh --containerd-image ADDRESS [NAMESPACE]
#                                               only import the same image into the
#                                               containerd at ADDRESS (a socket path),
#                                               namespace k8s.io unless given, as
#                                               docker.io/library/localbusy:latest;
#                                               used by tests/containerd.rs and
#                                               scripts/bench-containerd.sh
#   scripts/ci-setup.sh --image-tar             only write the localbusy rootfs tar
#                                               to stdout (tests/podman.rs pipes it
#                                               into `podman import`)
set -euo pipefail

# podman (tests/podman.rs) needs nothing more with --no-install-recommends:
# it brings conmon, containers-common and the CNI plugins, and runc is
# its OCI runtime; the tests run their containers with
# `--network none`, so neither slirp4netns nor netavark is wanted.
PACKAGES=(docker.io containerd runc busybox-static musl-tools prometheus curl strace file iptables procps iproute2 util-linux perl graphite-carbon python3-whisper docker-compose python3-yaml podman)
SHARED_SOCKET=/var/run/docker.sock
DOCKERD_LOG=/tmp/outlyer-dockerd.log
IMAGE=localbusy:latest
# The same image in containerd, named as the CRI plugin would name a pull of it.
CONTAINERD_IMAGE=docker.io/library/localbusy:latest
# Used by tests/containerd.rs and scripts/bench-containerd.sh (private containerd).
CONTAINERD_TOOLS=(containerd ctr containerd-shim-runc-v2 runc)
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
# symlinks, written to stdout. No registry is needed.
localbusy_tar() {
    local busybox rootfs applet
    busybox=$(find_busybox) || die "no statically linked busybox (install busybox-static)"
    rootfs=$(mktemp -d /tmp/outlyer-localbusy.XXXXXX)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in "${APPLETS[@]}"; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    local rc=0
    tar -C "$rootfs" -cf - . || rc=$?
    rm -rf "$rootfs"
    return "$rc"
}

# The tar imported with `docker import` into the daemon at $1.
import_localbusy() {
    local host=$1
    if docker -H "$host" image inspect "$IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    local rc=0
    localbusy_tar | docker -H "$host" import - "$IMAGE" >/dev/null || rc=$?
    ((rc == 0)) || die "docker import of $IMAGE into $host failed"
    log "imported $IMAGE into $host"
}

# The same rootfs as an OCI image layout (one uncompressed layer), imported
# with `ctr image import`: no Docker daemon and no registry is needed.
import_containerd_localbusy() {
    local address=$1 namespace=${2:-k8s.io}
    if ctr -a "$address" -n "$namespace" image ls -q 2>/dev/null | grep -qxF "$CONTAINERD_IMAGE"; then
        return 0
    fi
    local busybox work applet
    busybox=$(find_busybox) || die "no statically linked busybox (install busybox-static)"
    work=$(mktemp -d /tmp/outlyer-localbusy-oci.XXXXXX)
    local rootfs=$work/rootfs blobs=$work/oci/blobs/sha256
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc" "$blobs"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in "${APPLETS[@]}"; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    # blob NAME: moves $work/NAME into the layout under its digest, prints
    # "<hex digest> <size>".
    blob() {
        local hex size
        hex=$(sha256sum "$work/$1" | cut -d' ' -f1)
        size=$(stat -c %s "$work/$1")
        mv "$work/$1" "$blobs/$hex"
        echo "$hex $size"
    }
    local layer layer_size config config_size manifest manifest_size rc=0
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" . ||
        die "tar of the image rootfs"
    read -r layer layer_size < <(blob layer.tar)
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$layer" >"$work/config.json"
    read -r config config_size < <(blob config.json)
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
        "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
    read -r manifest manifest_size < <(blob manifest.json)
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
        "$manifest" "$manifest_size" "$CONTAINERD_IMAGE" >"$work/oci/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
    tar -C "$work/oci" -cf "$work/image.tar" oci-layout index.json blobs || rc=$?
    ((rc == 0)) && { ctr -a "$address" -n "$namespace" image import "$work/image.tar" >/dev/null || rc=$?; }
    rm -rf "$work"
    ((rc == 0)) || die "ctr image import of $CONTAINERD_IMAGE into $address (namespace $namespace) failed"
    log "imported $CONTAINERD_IMAGE into $address (namespace $namespace)"
}

check_containerd_tools() {
    local tool missing=()
    for tool in "${CONTAINERD_TOOLS[@]}"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing after install: ${missing[*]} (Debian packages containerd, runc)"
    log "containerd tools present: $(ctr --version)"
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
    if [[ ${1:-} == --containerd-image ]]; then
        [[ -n ${2:-} ]] || die "usage: $0 --containerd-image /path/to/containerd.sock [namespace]"
        import_containerd_localbusy "$2" "${3:-k8s.io}"
        return 0
    fi
    if [[ ${1:-} == --image-tar ]]; then
        localbusy_tar
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "run as root (sudo $0): installs packages and starts dockerd"
    install_packages
    check_containerd_tools
    add_musl_target
    start_dockerd
    repair_docker0
    import_localbusy "unix://$SHARED_SOCKET"
    log "ready"
}

main "$@"
