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

for d in seeds/*/; do
    n=$(find "$d" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "no seeds for $d" >&2; exit 1; }
done
echo "seeded $(find seeds -type f | wc -l) files in $(ls seeds | wc -l) targets"
