#!/usr/bin/env bash
# The agent's containerd source (--runtime containerd, no Docker socket)
# against a private containerd, with pods laid out as the CRI plugin lays
# them out (each a sandbox task and an app task in
# /kubepods/besteffort/pod<uid>/<id>, CRI annotations; the layout of
# tests/common/containerd.rs). The release agent. Run as root.
#
#  (a) discovery: BENCH_N (30) times a new pod, and for its app container
#      the time from `ctr run -d`'s return until its id is a `name` label on
#      /metrics (polled every 1 ms over a plain socket), agent --interval 30;
#      median / p90 / max;
#  (b) footprint: a fresh agent (--interval 1) with no container, then
#      BENCH_CONTAINERS (100) sleeping app containers (one pod each): VmRSS
#      at 0 and at 100, and per container;
#  (c) collection cost: outlyer_agent_collection_seconds over BENCH_SAMPLES
#      (10) cycles at 0 and at 100 containers (medians), per container;
#  (d) when Docker answers: the same number of Docker containers (sleeping
#      localbusy, bridge network) and a second agent (--runtime docker)
#      beside the first, their collection cycles sampled alternately in the
#      same seconds: both medians and the ratio containerd / Docker.
#
# Everything lives in /tmp/oe2ec-bench-<pid> (root, state, socket, runc
# root) and is removed on exit, with the cgroup directories made here.
#   BENCH_N=30 BENCH_CONTAINERS=100 BENCH_PORT=18125 scripts/bench-containerd.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Local mode whatever the caller's environment says (no uploads), and no
# Docker daemon for the agent to find.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^DATALOOP_' || true)
unset DOCKER_HOST CONTAINERD_ADDRESS CONTAINERD_NAMESPACE

N=${BENCH_N:-30}
COUNT=${BENCH_CONTAINERS:-100}
SAMPLES=${BENCH_SAMPLES:-10}
PORT=${BENCH_PORT:-18125}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${AGENT_BIN:-$TARGET/release/outlyer-agent}
# The prefix and the pid at the end: a test run sweeps what a killed bench
# leaves (tests/common/containerd.rs reads the same `cgroups` record).
DIR=/tmp/oe2ec-bench-$$
SOCK=$DIR/containerd.sock
STATE=$DIR/state
NS=k8s.io
IMAGE=docker.io/library/localbusy:latest
CTRD_PID=
AGENT_PID=
DOCKER_AGENT_PID=
DOCKER_PREFIX="oe2ec-bench-$$"
DOCKER_PORT=$((${BENCH_PORT:-18125} + 1))
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf 'bench-containerd: %s\n' "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}
ctr_() { ctr -a "$SOCK" -n "$NS" "$@"; }

stop_agent() {
    if [[ -n $AGENT_PID ]]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
        AGENT_PID=
    fi
}

# Kills and deletes every task and container (four at a time).
remove_all() {
    [[ -S $SOCK ]] || return 0
    local tasks=()
    mapfile -t tasks < <(ctr_ task ls -q 2>/dev/null || true)
    if ((${#tasks[@]} > 0)); then
        printf '%s\n' "${tasks[@]}" | xargs -r -P 4 -I{} ctr -a "$SOCK" -n "$NS" task kill -s KILL {} >/dev/null 2>&1 || true
        printf '%s\n' "${tasks[@]}" | xargs -r -P 4 -I{} ctr -a "$SOCK" -n "$NS" task rm -f {} >/dev/null 2>&1 || true
    fi
    ctr_ container ls -q 2>/dev/null | xargs -r -P 4 -I{} ctr -a "$SOCK" -n "$NS" container rm {} >/dev/null 2>&1 || true
}

cgroup_mounts() { awk '{ split($0, h, " - "); split(h[2], t, " "); if (t[1] == "cgroup" || t[1] == "cgroup2") print $5 }' /proc/self/mountinfo; }

cleanup() {
    local rc=$?
    stop_agent
    if [[ -n $DOCKER_AGENT_PID ]]; then
        kill "$DOCKER_AGENT_PID" 2>/dev/null || true
        wait "$DOCKER_AGENT_PID" 2>/dev/null || true
    fi
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        local ids
        ids=$(docker ps -aq --filter "name=$DOCKER_PREFIX-")
        # shellcheck disable=SC2086 # one id a word
        [[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1
    fi
    if [[ -n $CTRD_PID ]]; then
        remove_all
        kill "$CTRD_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$CTRD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$CTRD_PID" 2>/dev/null || true
        wait "$CTRD_PID" 2>/dev/null || true
    fi
    if [[ -d $DIR ]]; then
        # Shims (their command line names $SOCK) and container processes
        # that outlived the daemon, by PID.
        local p pid rel m child
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            [[ $pid == "$$" ]] && continue
            if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$DIR/"; then
                kill -9 "$pid" 2>/dev/null || true
            fi
        done
        local records=()
        [[ -f $DIR/cgroups ]] && mapfile -t records < <(grep '^/kubepods' "$DIR/cgroups" | sort -u | awk -F/ '{ print NF, $0 }' | sort -rn | cut -d' ' -f2-)
        for m in $(cgroup_mounts); do
            for rel in "${records[@]}"; do
                for child in "$m$rel"/*/; do
                    [[ -f $child/cgroup.procs ]] || continue
                    xargs -r kill -9 <"$child/cgroup.procs" 2>/dev/null || true
                done
            done
        done
        # Sockets of killed shims; the root filesystems' mounts.
        local address
        for address in "$STATE"/io.containerd.runtime.v2.task/*/*/address; do
            [[ -f $address ]] || continue
            p=$(<"$address")
            p=${p#unix://}
            [[ $p == /run/containerd/s/* ]] && rm -f "$p"
        done
        awk -v d="$DIR/" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2- |
            while read -r p; do umount -l "$p" 2>/dev/null || true; done
        # runc removes a container's cgroup, never its pod's nor the QoS
        # class's: those recorded here (made by this run) go, deepest first.
        for m in $(cgroup_mounts); do
            for rel in "${records[@]}"; do
                [[ -d $m$rel ]] || continue
                for child in "$m$rel"/*/; do
                    [[ -d $child ]] && { rmdir "$child" 2>/dev/null || { sleep 0.2; rmdir "$child" 2>/dev/null || true; }; }
                done
                rmdir "$m$rel" 2>/dev/null || true
            done
        done
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) == 0 ]] || die "run as root (containerd, runc and cgroups)"
for tool in containerd ctr containerd-shim-runc-v2 runc curl perl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/ci-setup.sh installs it)"
done
if curl -s --max-time 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
    die "port $PORT is in use; set BENCH_PORT"
fi
[[ -n ${AGENT_BIN:-} ]] || cargo build --release --quiet
[[ -x $BIN ]] || die "no agent binary at $BIN"

# The private containerd: the config of tests/common/containerd.rs.
mkdir -p "$DIR"
cat >"$DIR/config.toml" <<EOF
version = 2
root = "$DIR/root"
state = "$STATE"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$DIR/opt"
EOF
containerd --config "$DIR/config.toml" >"$DIR/containerd.log" 2>&1 </dev/null &
CTRD_PID=$!
for _ in $(seq 200); do
    [[ -S $SOCK ]] && ctr -a "$SOCK" version >/dev/null 2>&1 && break
    sleep 0.05
done
ctr -a "$SOCK" version >/dev/null 2>&1 || {
    tail -n 20 "$DIR/containerd.log" >&2
    die "the private containerd did not answer within 10 s"
}
bash scripts/ci-setup.sh --containerd-image "$SOCK" "$NS" 2>/dev/null || die "image import"
log "containerd $(containerd --version | awk '{ print $3 }') at $SOCK, $IMAGE imported"
# The QoS directories this run will make (so that cleanup removes them).
for rel in /kubepods /kubepods/besteffort; do
    exists=0
    for m in $(cgroup_mounts); do [[ -d $m$rel ]] && exists=1; done
    ((exists)) || echo "$rel" >>"$DIR/cgroups"
done

start_agent() { # interval
    "$BIN" --runtime containerd --containerd-state "$STATE" --rootfs / \
        --listen "127.0.0.1:$PORT" --interval "$1" 2>"$DIR/agent.log" &
    AGENT_PID=$!
    for _ in $(seq 100); do
        curl -sf --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$DIR/agent.log" >&2
    die "the agent did not come up"
}

# The pods and the measurements; one Perl for all (no fork per poll).
# `perl ... pods K`: K pods, one sleeping app container each, timing each app
# container's discovery (prints one line of ms per container). `perl ...
# all K`: K pods, then the time until every app container is listed.
bench() {
    perl - "$@" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($mode, $k, $port, $sock, $state, $ns, $image, $dir) = @ARGV;
my $runc_root = "$dir/runc";

sub metrics {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp') or return '';
    print $s "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    local $/;
    my $body = <$s>;
    close $s;
    return defined $body ? $body : '';
}

sub hex_id {
    my ($bytes) = @_;
    open my $r, '<:raw', '/dev/urandom' or die "urandom: $!\n";
    read($r, my $buf, $bytes) == $bytes or die "urandom short read\n";
    close $r;
    return unpack 'H*', $buf;
}

sub uuid {
    my $h = hex_id(16);
    substr($h, 12, 1) = '4';
    substr($h, 16, 1) = (qw(8 9 a b))[hex(substr($h, 16, 1)) % 4];
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

sub run_task {
    my ($id, $cgroup, $ann, $extra) = @_;
    my @cmd = ('ctr', '-a', $sock, '-n', $ns, 'run', '-d', '--null-io', '--runc-root', $runc_root,
        '--cgroup', $cgroup, (map { ('--annotation', "$_=$ann->{$_}") } sort keys %$ann), @$extra,
        $image, $id, 'sleep', '3600');
    system(@cmd) == 0 or die "ctr run $id failed\n";
    open my $f, '<', "$state/io.containerd.runtime.v2.task/$ns/$id/init.pid" or die "no init.pid for $id\n";
    my $pid = <$f>;
    close $f;
    chomp $pid;
    return $pid;
}

# A BestEffort pod's sandbox; returns (pod cgroup, sandbox id, sandbox pid, uid, name).
sub sandbox {
    my ($i) = @_;
    my ($uid, $id) = (uuid(), hex_id(32));
    my $parent = "/kubepods/besteffort/pod$uid";
    open my $rec, '>>', "$dir/cgroups" or die "cgroups record: $!\n";
    print $rec "$parent\n";
    close $rec;
    my $name = "bench-$i";
    my $pid = run_task($id, "$parent/$id", {
        'io.kubernetes.cri.container-type' => 'sandbox',
        'io.kubernetes.cri.sandbox-id' => $id,
        'io.kubernetes.cri.sandbox-name' => $name,
        'io.kubernetes.cri.sandbox-namespace' => 'bench',
        'io.kubernetes.cri.sandbox-uid' => $uid,
    }, []);
    return ($parent, $id, $pid, $uid, $name);
}

sub app {
    my ($parent, $sid, $spid, $uid, $name) = @_;
    my $id = hex_id(32);
    run_task($id, "$parent/$id", {
        'io.kubernetes.cri.container-type' => 'container',
        'io.kubernetes.cri.container-name' => 'app',
        'io.kubernetes.cri.image-name' => $image,
        'io.kubernetes.cri.sandbox-id' => $sid,
        'io.kubernetes.cri.sandbox-name' => $name,
        'io.kubernetes.cri.sandbox-namespace' => 'bench',
        'io.kubernetes.cri.sandbox-uid' => $uid,
    }, [map { ('--with-ns', "$_->[0]:/proc/$spid/ns/$_->[1]") } ['network', 'net'], ['ipc', 'ipc'], ['uts', 'uts']]);
    return $id;
}

if ($mode eq 'pods') {
    for my $i (1 .. $k) {
        my @pod = sandbox("d$i");
        my $id = app(@pod);
        my $t0 = time;
        my $needle = "name=\"$id\"";
        until (index(metrics(), $needle) >= 0) {
            die "$id not in /metrics 10 s after ctr run returned\n" if time - $t0 > 10;
            sleep 0.001;
        }
        printf "%.3f\n", (time - $t0) * 1000;
    }
} elsif ($mode eq 'all') {
    my @ids;
    push @ids, app(sandbox("f$_")) for 1 .. $k;
    my $t0 = time;
    while (1) {
        my $body = metrics();
        last unless grep { index($body, "name=\"$_\"") < 0 } @ids;
        die "not all of $k containers in /metrics 30 s after the last ctr run\n" if time - $t0 > 30;
        sleep 0.001;
    }
    printf "%.3f\n", (time - $t0) * 1000;
}
PERL
}
args() { echo "$PORT" "$SOCK" "$STATE" "$NS" "$IMAGE" "$DIR"; }

stats() { # label; one number a line on stdin
    sort -g | awk -v label="$1" '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = int(0.9 * NR + 0.999999)
        printf "%s, %d containers: median %.2f ms, p90 %.2f ms, max %.2f ms\n", label, NR, med, v[p], v[NR]
    }'
}

metric() { # name: the unlabelled sample
    curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2; exit }'
}

# outlyer_agent_collection_seconds of SAMPLES consecutive cycles (interval 1),
# median in seconds.
cost_median() {
    local i
    for ((i = 0; i < SAMPLES; i++)); do
        sleep 1.05
        metric outlyer_agent_collection_seconds
    done | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; printf "%.9f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$AGENT_PID/status"; }

# (a) discovery latency.
start_agent 30
log "(a) $N pods, discovery of each app container (agent --interval 30)"
# shellcheck disable=SC2046 # the arguments, one a word
bench pods "$N" $(args) >"$DIR/discovery.ms" || {
    tail -n 20 "$DIR/agent.log" >&2
    die "discovery run"
}
stats "discovery after ctr run -d" <"$DIR/discovery.ms"
stop_agent
remove_all

# (b), (c): a fresh agent at 0, then at COUNT.
# The same steps at 0 and at COUNT: 3 s, SAMPLES cycles, one more scrape, VmRSS.
start_agent 1
sleep 3
cost0=$(cost_median) || die "no outlyer_agent_collection_seconds on /metrics"
scrape=$(curl -sf "http://127.0.0.1:$PORT/metrics" | wc -c)
rss0=$(rss_kb)
log "(b) $COUNT pods with one sleeping app container each"
start=$SECONDS
# shellcheck disable=SC2046
listed_ms=$(bench all "$COUNT" $(args)) || {
    tail -n 20 "$DIR/agent.log" >&2
    die "footprint run"
}
log "   started in $((SECONDS - start)) s; all $COUNT listed ${listed_ms} ms after the last ctr run returned"
sleep 3
cost1=$(cost_median) || die "no outlyer_agent_collection_seconds on /metrics"
scrape1=$(curl -sf "http://127.0.0.1:$PORT/metrics" | wc -c)
rss1=$(rss_kb)
tracked=$(metric outlyer_agent_containers)
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$AGENT_PID/status")
kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited"
echo "agent with 0 containers: VmRSS $rss0 kB, /metrics $scrape bytes"
echo "agent with $COUNT containers (outlyer_agent_containers $tracked; $COUNT sandboxes beside them): VmRSS $rss1 kB, VmHWM $hwm kB, /metrics $scrape1 bytes"
awk -v a="$rss0" -v b="$rss1" -v n="$COUNT" 'BEGIN { printf "RSS per container: %.2f KiB ((%d - %d) / %d)\n", (b - a) / n, b, a, n }'
awk -v a="$cost0" -v b="$cost1" -v n="$COUNT" -v s="$SAMPLES" 'BEGIN {
    printf "collection (outlyer_agent_collection_seconds, median of %d cycles): %.1f us at 0, %.1f us at %d\n", s, a * 1e6, b * 1e6, n
    printf "collection cost per container at %d: %.2f us (whole cycle / %d), %.2f us above the 0-container cycle\n", n, b * 1e6 / n, n, (b - a) * 1e6 / n
}'

# (d) the same cycle for as many Docker containers, in the same seconds.
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
    log "(d) skipped: no Docker daemon answers"
    exit 0
fi
log "(d) $COUNT Docker containers beside them, a second agent (--runtime docker)"
for ((i = 1; i <= COUNT; i++)); do
    docker run -d --name "$DOCKER_PREFIX-$i" localbusy:latest sleep 3600 >/dev/null || die "docker run"
done
"$BIN" --runtime docker --rootfs / --listen "127.0.0.1:$DOCKER_PORT" --interval 1 2>"$DIR/docker-agent.log" &
DOCKER_AGENT_PID=$!
for _ in $(seq 300); do
    n=$(curl -sf --max-time 1 "http://127.0.0.1:$DOCKER_PORT/metrics" | awk '$1 == "outlyer_agent_containers" { print $2 }')
    [[ ${n:-0} -ge $COUNT ]] && break
    sleep 0.1
done
[[ ${n:-0} -ge $COUNT ]] || die "the Docker agent lists ${n:-0} of $COUNT containers"
sleep 3
for ((i = 0; i < SAMPLES; i++)); do
    sleep 1.05
    c=$(metric outlyer_agent_collection_seconds)
    d=$(curl -sf --max-time 5 "http://127.0.0.1:$DOCKER_PORT/metrics" | awk '$1 == "outlyer_agent_collection_seconds" { print $2; exit }')
    echo "$c $d"
done >"$DIR/pair"
awk -v n="$COUNT" '
    function median(a, k,   i, j, s) {
        for (i = 2; i <= k; i++) { s = a[i]; for (j = i - 1; j >= 1 && a[j] > s; j--) a[j + 1] = a[j]; a[j + 1] = s }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { c[NR] = $1; d[NR] = $2 }
    END {
        mc = median(c, NR); md = median(d, NR)
        printf "collection cycle, %d containers each, sampled alternately (%d pairs): containerd %.1f us (%.2f us per container), Docker %.1f us (%.2f us per container), ratio %.2f\n", n, NR, mc * 1e6, mc * 1e6 / n, md * 1e6, md * 1e6 / n, mc / md
    }' "$DIR/pair"

