#!/usr/bin/env bash
# Discovery latency against the real Docker daemon: the release agent runs,
# then BENCH_N (50) times `docker run -d`, and for each the time from the
# command's return until the container's name is in /metrics (polled every
# 1 ms over a plain socket). Prints median / p90 / max. Run as root.
#   BENCH_N=50 BENCH_PORT=18123 scripts/bench-discovery.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Local mode whatever the caller's environment says (no uploads).
while read -r var; do unset "$var"; done < <(compgen -e | grep '^DATALOOP_' || true)

N=${BENCH_N:-50}
PORT=${BENCH_PORT:-18123}
SOCKET=${BENCH_DOCKER_SOCKET:-/var/run/docker.sock}
PREFIX="oe2e-bench-$$"
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/outlyer-agent
LOG=$(mktemp /tmp/oe2e-bench-discovery.XXXXXX)
AGENT_PID=

cleanup() {
    if [[ -n $AGENT_PID ]]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    local ids
    ids=$(docker -H "unix://$SOCKET" ps -aq --filter "name=$PREFIX-")
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086 # one ID per word
        docker -H "unix://$SOCKET" rm -f $ids >/dev/null || true
    fi
    rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s --max-time 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
    echo "bench-discovery: port $PORT is in use; set BENCH_PORT" >&2
    exit 1
fi
cargo build --release --quiet
"$BIN" --docker-socket "$SOCKET" --listen "127.0.0.1:$PORT" --interval 30 2>"$LOG" &
AGENT_PID=$!
for _ in $(seq 100); do
    curl -sf --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null || {
    echo "bench-discovery: agent did not come up; its log:" >&2
    cat "$LOG" >&2
    exit 1
}

DOCKER_HOST="unix://$SOCKET" perl - "$N" "$PORT" "$PREFIX" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($n, $port, $prefix) = @ARGV;

sub metrics {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp') or return '';
    print $s "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    local $/;
    my $body = <$s>;
    close $s;
    return defined $body ? $body : '';
}

my @ms;
for my $i (1 .. $n) {
    my $name = "$prefix-$i";
    system("docker run -d --network none --name $name localbusy:latest sleep 3600 >/dev/null") == 0
        or die "docker run $name failed\n";
    my $t0 = time;
    my $needle = "name=\"$name\"";
    until (index(metrics(), $needle) >= 0) {
        die "$name not in /metrics 10 s after docker run returned\n" if time - $t0 > 10;
        sleep 0.001;
    }
    push @ms, (time - $t0) * 1000;
}
my @s = sort { $a <=> $b } @ms;
my $median = @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
my $p90 = $s[int(0.9 * @s + 0.999999) - 1];
printf "discovery after docker run, %d containers: median %.2f ms, p90 %.2f ms, max %.2f ms\n",
    scalar @s, $median, $p90, $s[-1];
PERL
