#!/usr/bin/env bash
# Rebuilds fuzz/seeds/<target>/ from the parser fixtures (tests/fixtures/files).
# Each seed is named after the fixture it copies; run after adding fixtures.
set -euo pipefail
cd "$(dirname "$0")"
F=../tests/fixtures/files

seed() { # target, then find -name patterns
    local target=$1; shift
    local dir=seeds/$target
    rm -rf "$dir"; mkdir -p "$dir"
    local args=() first=1
    for pat in "$@"; do
        if [ $first = 1 ]; then first=0; else args+=(-o); fi
        args+=(-path "$pat")
    done
    find "$F" -type f \( "${args[@]}" \) | sort | while read -r f; do
        local rel=${f#"$F"/}
        cp "$f" "$dir/${rel//\//_}"
    done
}

seed parse_common '*/cpu.cfs_quota_us' '*/memory.limit_in_bytes' '*/memory.max*' '*/pids.max' '*/cpuacct.usage'
seed memory_stat '*/memory.stat'
seed single_value '*/memory.usage_in_bytes' '*/memory.limit_in_bytes' '*/memory.max*' '*/memory.current' \
    '*/memory.peak' '*/memory.swap.*' '*/memory.failcnt' '*/memory.memsw.*' '*/cpu.cfs_*' '*/cpu.shares' \
    '*/cpu.weight' '*/pids.current' '*/pids.max' '*/cpuacct.usage'
seed usage_percpu '*/cpuacct.usage_percpu'
seed cpuacct_stat '*/cpuacct.stat'
seed cpu_stat '*cpu.stat'
seed cpu_max '*/cpu.max*'
seed blkio '*/blkio.*'
seed io_stat '*/io.stat*'
seed memory_events '*/memory.events*'
seed oom_control '*/memory.oom_control'
seed cgroup_procs '*/cgroup.procs'
seed proc_stat '*/host/stat' '*/proc_stat'
seed meminfo '*/meminfo' '*/proc_meminfo'
seed loadavg '*/loadavg' '*/proc_loadavg'
seed net_dev '*/net_dev' '*/proc_net_dev*'
seed net_tcp '*/net_tcp*'
seed pid_stat '*/proc/stat' '*/self_stat' '*/proc_pid_stat*'
seed comm '*/proc/comm' '*/proc_pid_comm*'
seed proc_cgroups '*/host/cgroups' '*/proc_cgroups*'
seed pid_cgroup '*/proc/cgroup' '*/self_cgroup' '*/proc_pid_cgroup*'
seed mountinfo '*mountinfo*'

# HTTP and Docker targets: captured replies, bodies and request heads.
D=../tests/fixtures/docker
seed_files() { # target, files...
    local target=$1; shift
    rm -rf "seeds/$target"; mkdir -p "seeds/$target"
    for f in "$@"; do cp "$f" "seeds/$target/"; done
}
seed_files http_response "$D"/*.http
seed_files docker_api "$D"/*.json
mkdir -p seeds/docker_api
printf 'Error: No such container: abc\n' > seeds/docker_api/error-plain
printf '{"message":"page not found"}' > seeds/docker_api/error-json
printf '2026-11-24T22:55:10.123456789Z' > seeds/docker_api/rfc3339
printf '2015-01-01T00:00:00+01:00' > seeds/docker_api/rfc3339-offset
printf '0001-01-01T00:00:00Z' > seeds/docker_api/rfc3339-zero
# The event lines of the captured stream, de-chunked.
rm -rf seeds/docker_events; mkdir -p seeds/docker_events
python3 - "$D/events-20.10-raw.http" seeds/docker_events <<'PY'
import sys
raw = open(sys.argv[1], 'rb').read()
body = raw.split(b'\r\n\r\n', 1)[1]
out = b''
while body:
    line, body = body.split(b'\r\n', 1)
    size = int(line.split(b';')[0], 16)
    if size == 0:
        break
    out += body[:size]
    body = body[size + 2:]
open(sys.argv[2] + '/stream', 'wb').write(out)
for i, ev in enumerate(out.split(b'\n')[:8]):
    if ev:
        open('%s/line-%d' % (sys.argv[2], i), 'wb').write(ev + b'\n')
PY
rm -rf seeds/http_request_head; mkdir -p seeds/http_request_head
printf 'GET /metrics HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: Prometheus/2.45\r\nAccept: text/plain;version=0.0.4\r\n\r\n' > seeds/http_request_head/prometheus
printf 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' > seeds/http_request_head/http10
printf 'POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' > seeds/http_request_head/post-body
printf 'GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n' > seeds/http_request_head/te
printf 'GET /healthz HTTP/1.1\nHost: x\n\n' > seeds/http_request_head/bare-lf
printf 'GET /metrics HTTP/2.0\r\n\r\n' > seeds/http_request_head/http2

rm -rf seeds/retry_after; mkdir -p seeds/retry_after
printf '120' > seeds/retry_after/delta-seconds
printf '0' > seeds/retry_after/delta-zero
printf '99999999999999999999999' > seeds/retry_after/delta-huge
printf 'Sun, 06 Nov 1994 08:49:37 GMT' > seeds/retry_after/imf-fixdate
printf 'Sun, 06 Nov 1994 08:50:07 GMT\nSun, 06 Nov 1994 08:49:37 GMT' > seeds/retry_after/imf-fixdate-with-date
printf 'Thu, 29 Feb 2024 12:00:00 GMT' > seeds/retry_after/leap-day
printf 'Mon, 01 Jan 99999999999 00:00:00 GMT' > seeds/retry_after/year-overflow
printf 'Sunday, 06-Nov-94 08:49:37 GMT' > seeds/retry_after/rfc850
printf 'Sun Nov  6 08:49:37 1994' > seeds/retry_after/asctime
printf 'soon' > seeds/retry_after/garbage

for d in seeds/*/; do
    n=$(find "$d" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "no seeds for $d" >&2; exit 1; }
done
echo "seeded $(find seeds -type f | wc -l) files in $(ls seeds | wc -l) targets"
