#!/usr/bin/env bash
# End-to-end proof of the static binary and the scratch image, against the
# real Docker daemon:
#
#   1. build both exactly as README.md says (deploy/run-lines.sh "build"),
#      check that the binary is static and both fit their size budgets, and
#      that the image holds the binary and nothing else;
#   2. start three workload containers (one busy), then run the image with the
#      README's own `docker run` lines, taken verbatim from deploy/run-lines.sh:
#      "most-linuxes", "amazon-linux-ecs" (the host cgroup tree bind-mounted
#      at a temporary /cgroup-like path), "host-network" (--net host) and
#      "non-root"; each time GET / must answer a fingerprint and GET /metrics
#      must list the three workloads (non-zero CPU for the busy one, more
#      than the idle one; their processes and eth0 counters, which only the
#      host's view gives) and not the agent; docker-compose.yaml likewise
#      when docker-compose is installed; deploy/ files mount the same paths;
#   3. copy the binary alone into a busybox container (no libc) and run
#      `--once` there: metrics on stdout, exit status 0;
#   4. measure: binary size, image size, cold start to the first /metrics
#      answer, RSS of the running image with the three workloads.
#
# Test-only additions to the README lines (the lines themselves are run as
# written): `--name` so that every container carries this run's prefix, and
# for --net host DATALOOP_LISTEN=127.0.0.1:<free port>, because port 8000 of
# this host may be taken. DATALOOP_AGENT_KEY is empty: local mode, nothing is
# uploaded. Everything started here is removed on exit.
#
# Needs: root (for the bind mount), docker, curl, python3 with PyYAML, and a
# local busybox image without libc (BUSYBOX_IMAGE, default localbusy:latest,
# made by scripts/ci-setup.sh); docker-compose is used when present.
# Prints "N passed, N failed" last; exit status 0 only if nothing failed.
set -uo pipefail

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$repo" || exit 2

IMAGE=outlyer/agent:latest
LOCAL_TAG=${LOCAL_TAG:-outlyer-agent:local}
BUSYBOX_IMAGE=${BUSYBOX_IMAGE:-localbusy:latest}
BIN=target/x86_64-unknown-linux-musl/release/outlyer-agent
# Size budgets. The binary's was 1.6 MB until the agent grew a second
# container source (the cgroup tree with containerd's and CRI-O's bundles,
# +45 KB); the budget for everything planned (push sinks included) is
# 1.70 MB, the image's (which holds the binary alone) too.
BIN_BUDGET=${BIN_BUDGET:-1700000}        # bytes
IMG_BUDGET=${IMG_BUDGET:-1700000}        # bytes
COLD_START_BUDGET_MS=${COLD_START_BUDGET_MS:-20}
METRICS_WAIT=${METRICS_WAIT:-75}         # s to wait for the first collection
P=imgtest-$$                             # prefix of every container made here

passed=0
failed=0
declare -A figure=()
figure_order=()
started=()
tmp=$(mktemp -d "/tmp/$P.XXXXXX")
mnt=""
compose_project=""

ok() {
    passed=$((passed + 1))
    echo "ok   - $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}
check() { # check "description" command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
note() { # note KEY VALUE: a measured figure for the summary
    [ -n "${figure[$1]+x}" ] || figure_order+=("$1")
    figure[$1]=$2
    echo "     $1: $2"
}
cleanup() {
    local c
    if [ -n "$compose_project" ]; then
        compose -p "$compose_project" -f "$repo/docker-compose.yaml" down -v >/dev/null 2>&1
    fi
    for c in "${started[@]}"; do
        command docker rm -f "$c" >/dev/null 2>&1
    done
    if [ -n "$mnt" ] && mountpoint -q "$mnt"; then
        umount -R "$mnt" || echo "warning: could not unmount $mnt" >&2
    fi
    # Never delete through a mount: $tmp/cgroup holds the host's cgroup tree.
    if [ -n "$mnt" ] && mountpoint -q "$mnt"; then
        echo "warning: $mnt is still mounted; left $tmp in place" >&2
    else
        rm -rf --one-file-system "$tmp"
    fi
}
summary() {
    local k
    echo
    echo "== figures"
    for k in "${figure_order[@]}"; do
        printf '%-44s %s\n' "$k" "${figure[$k]}"
    done
    echo
    echo "$passed passed, $failed failed"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# Options that only the test adds to a README line, and a `docker` that
# inserts them after `docker run`; every other call is the real docker.
extra=()
docker() {
    if [ "${1:-}" = run ]; then
        shift
        run_on_bridge "${extra[1]}" "${extra[@]}" "$@"
    else
        command docker "$@"
    fi
}

compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose "$@"
    else
        command docker compose "$@"
    fi
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- preconditions -----------------------------------------------------------
for tool in docker curl python3 file; do
    type -P "$tool" >/dev/null 2>&1 || {
        bad "precondition: $tool is installed"
        summary
        exit 1
    }
done
if ! command docker info >/dev/null 2>&1; then
    bad "precondition: the Docker daemon answers"
    summary
    exit 1
fi
# The README lines use Docker's default bridge network. A second dockerd
# started with `--bridge none` on the same host deletes the interface of that
# network (docker0) at its start-up, after which no container can join it
# until the shared daemon restarts. Put it back as the shared daemon made it.
ensure_default_bridge() {
    local ifname subnet gw
    ifname=$(command docker network inspect bridge \
        -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null) || return 0
    [ -n "$ifname" ] || return 0
    ip link show "$ifname" >/dev/null 2>&1 && return 0
    subnet=$(command docker network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}')
    gw=$(command docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
    if [ -z "$gw" ]; then # the daemon's default: the first address of the subnet
        gw=$(python3 -c 'import ipaddress, sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))' "$subnet")
    fi
    echo "warning: the default bridge interface $ifname is missing; recreating it ($gw, $subnet)" >&2
    ip link add "$ifname" type bridge &&
        ip addr add "$gw/${subnet#*/}" dev "$ifname" &&
        ip link set "$ifname" up
}
check "Docker's default bridge network is usable" ensure_default_bridge

# run_on_bridge NAME ARGS...: `docker run ARGS...` (ARGS include --name NAME);
# when docker0 vanished meanwhile, put it back and try once more.
run_on_bridge() {
    local name=$1 out rc
    shift
    ensure_default_bridge
    out=$(command docker run "$@" 2>"$tmp/run.err")
    rc=$?
    if [ $rc -ne 0 ] && grep -q 'could not find bridge' "$tmp/run.err"; then
        command docker rm -f "$name" >/dev/null 2>&1
        ensure_default_bridge
        out=$(command docker run "$@" 2>"$tmp/run.err")
        rc=$?
    fi
    cat "$tmp/run.err" >&2
    [ -z "$out" ] || printf '%s\n' "$out"
    return $rc
}
if ! command docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    bad "precondition: local busybox image $BUSYBOX_IMAGE exists (BUSYBOX_IMAGE=...)"
    summary
    exit 1
fi

# --- 1. build, exactly as the README says ------------------------------------
echo "== build (deploy/run-lines.sh build)"
build_ok=1
while IFS= read -r line; do
    [ -n "$line" ] || continue
    echo "\$ $line"
    if ! bash -c "$line" >"$tmp/build.log" 2>&1; then
        tail -n 30 "$tmp/build.log"
        build_ok=0
        break
    fi
    tail -n 2 "$tmp/build.log"
done < <(deploy/run-lines.sh build)
if [ "$build_ok" = 1 ]; then ok "README build commands succeed"; else
    bad "README build commands succeed"
    summary
    exit 1
fi

kind=$(file -b "$BIN")
echo "     file: $kind"
check "file(1) calls the binary statically linked" \
    grep -Eq 'statically linked|static-pie linked' <<<"$kind"
lddout=$(ldd "$BIN" 2>&1)
echo "     ldd: ${lddout//$'\n'/ }"
# static: "not a dynamic executable"; static-pie (STATIC_PIE=1): "statically linked"
check "ldd(1) finds no shared libraries" \
    grep -Eq 'not a dynamic executable|statically linked' <<<"$lddout"
bin_size=$(wc -c <"$BIN")
note "binary size (bytes)" "$bin_size"
check "binary size $bin_size <= $BIN_BUDGET bytes" [ "$bin_size" -le "$BIN_BUDGET" ]
check "binary prints --version" bash -c "'$BIN' --version | grep -q ."

command docker tag "$IMAGE" "$LOCAL_TAG"
img_id=$(command docker image inspect -f '{{.Id}}' "$IMAGE")
check "$LOCAL_TAG is the image just built" \
    [ "$(command docker image inspect -f '{{.Id}}' "$LOCAL_TAG")" = "$img_id" ]
img_size=$(command docker image inspect -f '{{.Size}}' "$IMAGE")
note "image size (bytes)" "$img_size"
check "image size $img_size <= $IMG_BUDGET bytes" [ "$img_size" -le "$IMG_BUDGET" ]
check "image entrypoint is the binary" \
    [ "$(command docker image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")" = '["/outlyer-agent"]' ]
check "image exposes 8000/tcp" \
    bash -c "command docker image inspect -f '{{json .Config.ExposedPorts}}' '$IMAGE' | grep -q '\"8000/tcp\"'"
user=$(command docker image inspect -f '{{.Config.User}}' "$IMAGE")
check "image user is root by design (docker.sock is root:docker 660), got '${user}'" \
    bash -c "[ -z '$user' ] || [ '$user' = 0 ] || [ '$user' = 0:0 ]"
# The image must hold exactly one layer with exactly one file: the binary.
mkdir -p "$tmp/save"
command docker save "$IMAGE" | tar -x -C "$tmp/save"
layers=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' \
    "$tmp/save/manifest.json")
files=""
for l in $layers; do files+=$(tar -t -f "$tmp/save/$l")$'\n'; done
files=$(sed '/^$/d' <<<"$files")
echo "     image files: ${files//$'\n'/ }"
check "image holds the binary and nothing else" [ "$files" = "outlyer-agent" ]

# deploy/ and docker-compose.yaml mount what the README lines mount.
check "deploy files mount the Docker socket (the daemonset: its directory, which holds containerd's and CRI-O's state too), /proc and the cgroup tree read-only like the README; the daemonset probes /healthz and /readyz" \
    python3 - "$repo" <<'PY'
import sys, yaml, os
repo = sys.argv[1]
want = {("/var/run/docker.sock", "/var/run/docker.sock"), ("/proc", "/rootfs/proc"),
        ("/sys/fs/cgroup", "/rootfs/sys/fs/cgroup")}
def vols(lst):
    got = set()
    for v in lst:
        parts = v.split(":")
        if len(parts) == 3 and parts[2] == "ro":
            got.add((parts[0], parts[1]))
    return got
errors = []
ds = yaml.safe_load(open(os.path.join(repo, "deploy/kubernetes-daemonset.yaml")))
spec = ds["spec"]["template"]["spec"]
paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
# The daemonset mounts the socket's directory, so that the pod starts on a
# node without Docker (no hostPath of type Socket) and sees a new socket.
want_ds = {("/var/run", "/rootfs/var/run"), ("/proc", "/rootfs/proc"),
           ("/sys/fs/cgroup", "/rootfs/sys/fs/cgroup")}
for v in spec["volumes"]:
    if v.get("hostPath", {}).get("type") == "Socket": errors.append("daemonset: hostPath of type Socket " + v["name"])
for c in spec["containers"]:
    got = {(paths[m["name"]], m["mountPath"]) for m in c["volumeMounts"] if m.get("readOnly")}
    if not want_ds <= got: errors.append("daemonset %s: %s" % (c["name"], sorted(got)))
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    if env.get("DOCKER_HOST") != "unix:///rootfs/var/run/docker.sock": errors.append("daemonset DOCKER_HOST %r" % env.get("DOCKER_HOST"))
    # containerd's and CRI-O's state directories, inside the /var/run mount.
    for var, host_dir in (("DATALOOP_CONTAINERD_STATE", "/run/containerd"), ("DATALOOP_CRIO_STATE", "/run/containers/storage")):
        if env.get(var) != "/rootfs/var" + host_dir: errors.append("daemonset %s %r" % (var, env.get(var)))
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz": errors.append("daemonset liveness probe")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz": errors.append("daemonset readiness probe")
    if c["image"] != "outlyer/agent:latest": errors.append("daemonset image " + c["image"])
if ds["kind"] != "DaemonSet": errors.append("not a DaemonSet")
for f in ("deploy/swarm-stack.yaml", "docker-compose.yaml"):
    doc = yaml.safe_load(open(os.path.join(repo, f)))
    for name, svc in doc["services"].items():
        if not want <= vols(svc["volumes"]): errors.append("%s %s: %s" % (f, name, svc["volumes"]))
        if svc["image"] != "outlyer/agent:latest": errors.append("%s %s image" % (f, name))
        if f.startswith("deploy/swarm") and svc["deploy"]["mode"] != "global":
            errors.append("%s %s not global" % (f, name))
for e in errors: print("     " + e)
sys.exit(1 if errors else 0)
PY

if command -v docker-compose >/dev/null 2>&1 || command docker compose version >/dev/null 2>&1; then
    for f in deploy/swarm-stack.yaml docker-compose.yaml; do
        check "compose validates $f" compose -f "$f" config -q
    done
fi

# README.md, once it carries the run lines, must carry them unchanged.
if [ -f README.md ]; then
    for b in $(deploy/run-lines.sh); do
        check "README.md shows block '$b' of deploy/run-lines.sh verbatim" \
            python3 -c 'import sys; sys.exit(0 if sys.argv[1] in open("README.md").read() else 1)' \
            "$(deploy/run-lines.sh "$b")"
    done
else
    echo "     (no README.md yet: drift check against it skipped)"
fi
check "CentOS 6 line is the Amazon Linux line" \
    [ "$(deploy/run-lines.sh centos6)" = "$(deploy/run-lines.sh amazon-linux-ecs)" ]

# --- 2. workloads -------------------------------------------------------------
echo "== workloads"
start_workload() { # NAME ARGS...
    local name=$1
    shift
    started+=("$name") # a failed run can still leave a created container
    run_on_bridge "$name" -d --name "$name" "$@" >/dev/null
}
check "workload $P-busy starts" start_workload "$P-busy" --cpus 0.25 "$BUSYBOX_IMAGE" \
    sh -c 'while :; do :; done'
check "workload $P-idle starts" start_workload "$P-idle" "$BUSYBOX_IMAGE" sleep 100000
check "workload $P-loop starts" start_workload "$P-loop" "$BUSYBOX_IMAGE" \
    sh -c 'while :; do sleep 1; done'
workloads=("$P-busy" "$P-idle" "$P-loop")

metric_value() { # FILE METRIC NAME [more label filters] -> first value, or nothing
    local file=$1 metric=$2 name=$3
    shift 3
    awk -v m="$metric" -v n="name=\"$name\"" -v more="$*" '
        index($0, m "{") == 1 && index($0, n) {
            k = split(more, f, " ")
            for (i = 1; i <= k; i++) if (!index($0, f[i])) next
            line = $0
            sub(/^[^}]*\} */, "", line)
            split(line, v, " ")
            print v[1]
            exit
        }' "$file"
}

metrics_complete() { # FILE: every workload seen, busy CPU > 0
    local w cpu
    for w in "${workloads[@]}"; do
        [ -n "$(metric_value "$1" container_last_seen "$w")" ] || return 1
    done
    cpu=$(metric_value "$1" container_cpu_usage_seconds_total "$P-busy" 'cpu="total"')
    [ -n "$cpu" ] && awk -v c="$cpu" 'BEGIN { exit !(c + 0 > 0) }'
}

# The host seen from inside a container: the workloads' processes (host PIDs,
# read under /rootfs/proc or from their cgroups) and their network namespaces.
host_view_checks() { # LABEL FILE
    local procs rx
    procs=$(metric_value "$2" container_processes "$P-busy")
    check "$1: container_processes of the busy workload >= 1 (got '${procs}')" \
        awk -v p="${procs:-0}" 'BEGIN { exit !(p + 0 >= 1) }'
    procs=$(metric_value "$2" container_threads "$P-busy")
    check "$1: container_threads of the busy workload >= 1 (got '${procs}')" \
        awk -v p="${procs:-0}" 'BEGIN { exit !(p + 0 >= 1) }'
    rx=$(metric_value "$2" container_network_receive_bytes_total "$P-busy" 'interface="eth0"')
    check "$1: eth0 counters of the busy workload, read through its host PID (got '${rx}')" \
        [ -n "$rx" ]
}

# run_line BLOCK LABEL MODE: run a README line and check what it serves.
# MODE is "bridge", "ecs" (bridge, /cgroup replaced by a bind of the host's
# cgroup tree) or "host" (the line says --net host).
run_line() {
    local block=$1 label=$2 mode=$3
    local name="$P-agent-$label" text cmd id url port t0 t1 body w cpu idle_cpu pid rss hwm
    echo "== README line '$block' ($label)"
    text=$(deploy/run-lines.sh "$block") || {
        bad "block $block exists"
        return
    }
    cmd=$(sed -n '/^docker run/,$p' <<<"$text")
    if [ "$mode" = ecs ]; then
        mnt="$tmp/cgroup"
        mkdir -p "$mnt"
        # A private recursive copy: unmounting it later cannot touch the host.
        if ! { mount --rbind /sys/fs/cgroup "$mnt" && mount --make-rprivate "$mnt"; }; then
            bad "$label: bind-mount /sys/fs/cgroup at $mnt (needs root)"
            return
        fi
        local before=$cmd
        cmd=${cmd//"-v /cgroup:/rootfs/sys/fs/cgroup:ro"/"-v $mnt:/rootfs/sys/fs/cgroup:ro"}
        if [ "$cmd" = "$before" ]; then
            bad "$label: the line mounts /cgroup at /rootfs/sys/fs/cgroup"
            return
        fi
    fi
    printf "     | %s\n" "${cmd//$'\n'/$'\n'     | }"
    extra=(--name "$name")
    if [ "$mode" = host ]; then
        port=$(free_port)
        extra+=(-e "DATALOOP_LISTEN=127.0.0.1:$port")
    fi

    started+=("$name")
    t0=$(now_ms)
    # shellcheck disable=SC2034 # both are read by the line through eval
    id=$(
        DATALOOP_AGENT_KEY=""
        DATALOOP_NAME="$P-host"
        eval "$cmd"
    )
    local rc=$?
    if [ $rc -ne 0 ] || [ -z "$id" ]; then
        bad "$label: the README line starts the agent (docker run exit $rc)"
        return
    fi
    ok "$label: the README line starts the agent"
    check "$label: the container runs the image just built" \
        [ "$(command docker inspect -f '{{.Image}}' "$name")" = "$img_id" ]

    if [ "$mode" = host ]; then
        url="http://127.0.0.1:$port"
    else
        local ip
        ip=$(command docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
        url="http://${ip:-no-ip-agent-not-running}:8000"
    fi

    body=""
    for _ in $(seq 1 200); do
        if body=$(curl -fsS -m 1 "$url/" 2>/dev/null); then break; fi
        body=""
        [ "$(command docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
        sleep 0.05
    done
    t1=$(now_ms)
    if [ -z "$body" ]; then
        bad "$label: GET $url/ answers"
        echo "     container state: $(command docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' "$name")"
        command docker logs "$name" 2>&1 | tail -n 20 | sed 's/^/     log: /'
        return
    fi
    ok "$label: GET $url/ answers"
    note "$label: docker run -> first GET / answer (ms)" "$((t1 - t0))"
    check "$label: GET / is a fingerprint (UUID), got '$(head -c 60 <<<"$body")'" \
        grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' <<<"$body"

    local m="$tmp/metrics-$label"
    : >"$m"
    for _ in $(seq 1 $((METRICS_WAIT * 2))); do
        curl -fsS -m 2 "$url/metrics" -o "$m" 2>/dev/null && metrics_complete "$m" && break
        [ "$(command docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
        sleep 0.5
    done
    check "$label: GET /metrics is Prometheus text" grep -q '^# TYPE ' "$m"
    for w in "${workloads[@]}"; do
        check "$label: /metrics has container_last_seen for $w" \
            [ -n "$(metric_value "$m" container_last_seen "$w")" ]
    done
    cpu=$(metric_value "$m" container_cpu_usage_seconds_total "$P-busy" 'cpu="total"')
    check "$label: busy workload CPU total > 0 (got '${cpu}')" \
        awk -v c="${cpu:-0}" 'BEGIN { exit !(c + 0 > 0) }'
    idle_cpu=$(metric_value "$m" container_cpu_usage_seconds_total "$P-idle" 'cpu="total"')
    check "$label: busy workload CPU ${cpu} > idle workload CPU ${idle_cpu}" \
        awk -v b="${cpu:-0}" -v i="${idle_cpu:-x}" 'BEGIN { exit !(i != "x" && b + 0 > i + 0) }'
    host_view_checks "$label" "$m"
    check "$label: /metrics does not list the agent itself" \
        bash -c "! grep -Eq 'name=\"$name\"|${id:0:12}' '$m'"
    check "$label: the agent logs once that it runs in container ${id:0:12}" \
        bash -c "[ \"\$(command docker logs '$name' 2>&1 | grep -c 'running in container ${id:0:12}')\" = 1 ]"

    pid=$(command docker inspect -f '{{.State.Pid}}' "$name")
    if [ -r "/proc/$pid/status" ]; then
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
        note "$label: agent RSS / peak RSS with 3 workloads (KiB)" "$rss / $hwm"
    fi
    if ! grep -q '^# TYPE ' "$m" || ! metrics_complete "$m"; then
        echo "     last /metrics answer (first 30 lines):"
        head -n 30 "$m" | sed 's/^/     | /'
        command docker logs "$name" 2>&1 | tail -n 20 | sed 's/^/     log: /'
    fi
    command docker rm -f "$name" >/dev/null 2>&1
}

run_line most-linuxes most-linuxes bridge
run_line amazon-linux-ecs ecs ecs
run_line host-network host-net host
# The image has no USER: the socket's group differs per host. The README's
# unprivileged variant adds it at run time and must serve the same series...
run_line non-root non-root bridge
if [ -f "$tmp/metrics-most-linuxes" ] && [ -f "$tmp/metrics-non-root" ]; then
    series() { sed -n 's/^\([a-z_]*\){.*name="'"$P"'-[a-z]*".*/\1/p' "$1" | sort -u; }
    check "non-root: the same metric families as root for the workloads" \
        [ "$(series "$tmp/metrics-most-linuxes")" = "$(series "$tmp/metrics-non-root")" ]
fi
# ...while a fixed non-root uid without the socket's group cannot see Docker.
started+=("$P-nogroup")
command docker run --rm --name "$P-nogroup" --network none --user 65534:65534 \
    -v /var/run/docker.sock:/var/run/docker.sock:ro -v /proc:/rootfs/proc:ro \
    -v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro "$IMAGE" --once >"$tmp/nogroup.out" 2>"$tmp/nogroup.err"
check "a non-root USER without the socket's group lists no workload (why the image runs as root)" \
    [ -z "$(metric_value "$tmp/nogroup.out" container_last_seen "$P-busy")" ]
check "... because the socket refuses it" grep -q 'ermission denied' "$tmp/nogroup.err"

# --- churn against the static binary: descriptors and RSS back to the baseline ---
echo "== churn (tests/churn.rs) against $BIN for 60 s"
if OUTLYER_AGENT_BIN="$PWD/$BIN" OUTLYER_CHURN_SECS=60 cargo test --quiet --test churn -- --nocapture >"$tmp/churn.log" 2>&1; then
    ok "churn: 20 starts/s for 60 s, nothing missed or left tracked, fds and RSS (within 64 KiB) back to the baseline"
    grep -a '^FIGURE' "$tmp/churn.log" | sed 's/^/     /'
else
    bad "churn: 20 starts/s for 60 s, nothing missed or left tracked, fds and RSS (within 64 KiB) back to the baseline"
    tail -n 30 "$tmp/churn.log" | sed 's/^/     /'
fi

# --- docker-compose.yaml, as shipped, on a free loopback port --------------------
if command -v docker-compose >/dev/null 2>&1 || command docker compose version >/dev/null 2>&1; then
    echo "== docker-compose.yaml"
    compose_project=${P//-/}compose
    cport=$(free_port)
    if OUTLYER_PUBLISH=127.0.0.1:$cport DATALOOP_AGENT_KEY="" \
        compose -p "$compose_project" -f docker-compose.yaml up -d >"$tmp/compose.log" 2>&1; then
        ok "compose: docker-compose.yaml starts the agent"
        cm="$tmp/metrics-compose"
        : >"$cm"
        for _ in $(seq 1 $((METRICS_WAIT * 2))); do
            curl -fsS -m 2 "http://127.0.0.1:$cport/metrics" -o "$cm" 2>/dev/null &&
                metrics_complete "$cm" && break
            sleep 0.5
        done
        for w in "${workloads[@]}"; do
            check "compose: /metrics on the published port has $w" \
                [ -n "$(metric_value "$cm" container_last_seen "$w")" ]
        done
        cid=$(compose -p "$compose_project" -f docker-compose.yaml ps -q 2>/dev/null | head -n 1)
        check "compose: /metrics does not list the agent itself" \
            bash -c "[ -n '$cid' ] && ! grep -q '${cid:0:12}' '$cm'"
    else
        bad "compose: docker-compose.yaml starts the agent"
        tail -n 20 "$tmp/compose.log" | sed 's/^/     /'
    fi
    compose -p "$compose_project" -f docker-compose.yaml down -v >/dev/null 2>&1 && compose_project=""
else
    echo "== docker-compose.yaml: no docker-compose here, not run (only its mounts were checked)"
fi

# --- 3. the binary alone in a busybox container --------------------------------
echo "== static binary in $BUSYBOX_IMAGE (no libc)"
bb="$P-busybox"
started+=("$bb")
if command docker create --name "$bb" --network none \
    -v /var/run/docker.sock:/var/run/docker.sock:ro \
    -v /proc:/rootfs/proc:ro \
    -v /sys/fs/cgroup:/rootfs/sys/fs/cgroup:ro \
    "$BUSYBOX_IMAGE" /outlyer-agent --once >/dev/null; then
    check "copy the binary into the container" command docker cp "$BIN" "$bb:/outlyer-agent"
    command docker export "$bb" | tar -t >"$tmp/bb-files"
    check "the container has no libc or dynamic loader" \
        bash -c "! grep -Eq '(^|/)(ld-musl|ld-linux|libc\\.so|libc\\.musl|libc-)' '$tmp/bb-files'"
    timeout 120 "$(type -P docker)" start -a "$bb" >"$tmp/once.out" 2>"$tmp/once.err"
    rc=$?
    check "--once exits 0 (got $rc)" [ "$rc" = 0 ]
    check "--once prints Prometheus text" grep -q '^# TYPE ' "$tmp/once.out"
    for w in "${workloads[@]}"; do
        check "--once lists $w" [ -n "$(metric_value "$tmp/once.out" container_last_seen "$w")" ]
    done
    host_view_checks "--once" "$tmp/once.out"
    if [ "$rc" != 0 ] || ! grep -q '^# TYPE ' "$tmp/once.out"; then
        head -n 20 "$tmp/once.out" | sed 's/^/     out: /'
        tail -n 20 "$tmp/once.err" | sed 's/^/     err: /'
    fi
else
    bad "create a $BUSYBOX_IMAGE container"
fi

# --- 4. cold start: exec of the binary -> first complete /metrics answer -------
echo "== cold start (binary on the host, 7 runs, median)"
port=$(free_port)
cold=$(
    env -u DATALOOP_AGENT_KEY python3 - "$repo/$BIN" "$port" <<'PY'
import socket, subprocess, sys, time
binary, port = sys.argv[1], int(sys.argv[2])

def get(path):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data

first, full = [], []
for run in range(7):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_first = t_full = None
    try:
        while time.perf_counter() - t0 < 5 and p.poll() is None:
            data = get(b"/metrics")
            if data is None:
                time.sleep(0.0002)
                continue
            if not data.startswith(b"HTTP/1.1 200"):
                continue
            now = time.perf_counter() - t0
            if t_first is None:
                t_first = now
            if b"\ncontainer_last_seen{" in data:
                t_full = now
                break
    finally:
        p.terminate()
        p.wait()
    if t_first is None or t_full is None:
        print("none")
        sys.exit(0)
    first.append(t_first * 1000)
    full.append(t_full * 1000)
first.sort()
full.sort()
print("%.1f %.1f %.1f %.1f" % (first[3], first[0], first[-1], full[3]))
PY
)
if [ -z "$cold" ] || [ "$cold" = none ]; then
    bad "the binary answers GET /metrics on 127.0.0.1:$port, with containers listed"
else
    read -r cold_med cold_min cold_max full_med <<<"$cold"
    note "cold start to first /metrics answer (ms, median [min-max])" "$cold_med [$cold_min-$cold_max]"
    note "cold start to first /metrics listing containers (ms, median)" "$full_med"
    check "cold start median ${cold_med} ms <= $COLD_START_BUDGET_MS ms" \
        awk -v t="$cold_med" -v b="$COLD_START_BUDGET_MS" 'BEGIN { exit !(t <= b) }'
fi

summary
[ "$failed" = 0 ]
