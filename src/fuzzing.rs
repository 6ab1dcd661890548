//! Entry points for the fuzz targets in `fuzz/`: each drives one parser over
//! arbitrary bytes, draining iterators, so a target is a one-line call.
//! Not part of the agent's API.

use crate::cgroup::parse as cg;
use crate::parse as p;
use crate::procfs::parse as pr;

/// Shared helpers: numbers, limits, splitting.
pub fn fuzz_parse_common(data: &[u8]) {
    let _ = p::parse_u64(data);
    let _ = p::parse_i64(data);
    let _ = p::parse_hex_u64(data);
    let _ = p::parse_limit(data);
    let _ = p::trim_ascii(data);
    for _ in p::fields(data) {}
    for _ in p::key_values(data) {}
}

/// `memory.stat`.
pub fn fuzz_memory_stat(data: &[u8]) {
    let _ = cg::parse_memory_stat(data);
}

/// Single-value files and limits.
pub fn fuzz_single_value(data: &[u8]) {
    let _ = cg::parse_single_u64(data);
    let _ = cg::parse_memory_limit(data);
    let _ = cg::parse_cfs_quota(data);
    let _ = cg::parse_cpuacct_usage(data);
}

/// `cpuacct.usage_percpu`.
pub fn fuzz_usage_percpu(data: &[u8]) {
    let _ = cg::parse_usage_percpu(data);
    for _ in cg::percpu_values(data) {}
}

/// `cpuacct.stat`.
pub fn fuzz_cpuacct_stat(data: &[u8]) {
    let _ = cg::parse_cpuacct_stat(data);
}

/// `cpu.stat`.
pub fn fuzz_cpu_stat(data: &[u8]) {
    let _ = cg::parse_cpu_stat(data);
}

/// `cpu.max`.
pub fn fuzz_cpu_max(data: &[u8]) {
    let _ = cg::parse_cpu_max(data);
}

/// v1 blkio files.
pub fn fuzz_blkio(data: &[u8]) {
    for _ in cg::blkio_rows(data) {}
    let _ = cg::parse_blkio_totals(data);
}

/// v2 `io.stat`.
pub fn fuzz_io_stat(data: &[u8]) {
    for _ in cg::io_stat_rows(data) {}
    let _ = cg::parse_io_stat_totals(data);
}

/// `memory.events`.
pub fn fuzz_memory_events(data: &[u8]) {
    let _ = cg::parse_memory_events(data);
}

/// `memory.oom_control`.
pub fn fuzz_oom_control(data: &[u8]) {
    let _ = cg::parse_oom_control(data);
}

/// `cgroup.procs`.
pub fn fuzz_cgroup_procs(data: &[u8]) {
    for _ in cg::pids(data) {}
    let _ = cg::count_pids(data);
}

/// `/proc/stat`.
pub fn fuzz_proc_stat(data: &[u8]) {
    if let Ok(s) = pr::parse_proc_stat(data) {
        if let Some(cpu) = s.cpu {
            let _ = cpu.total_ticks();
            let _ = cpu.docker_total_ticks();
        }
    }
}

/// `/proc/meminfo`.
pub fn fuzz_meminfo(data: &[u8]) {
    let _ = pr::parse_meminfo(data);
}

/// `/proc/loadavg`.
pub fn fuzz_loadavg(data: &[u8]) {
    let _ = pr::parse_loadavg(data);
}

/// `/proc/<pid>/net/dev`.
pub fn fuzz_net_dev(data: &[u8]) {
    for _ in pr::net_dev_rows(data) {}
    let _ = pr::parse_net_dev_totals(data);
}

/// `/proc/<pid>/net/tcp{,6}`.
pub fn fuzz_net_tcp(data: &[u8]) {
    let _ = pr::parse_tcp_states(data);
}

/// `/proc/<pid>/stat`.
pub fn fuzz_pid_stat(data: &[u8]) {
    let state = pr::parse_pid_state(data);
    let brief = pr::parse_pid_state_threads(data);
    if let Ok(s) = pr::parse_pid_stat(data) {
        assert_eq!(state, Ok(s.state), "the state-only parser disagrees");
        assert_eq!(
            brief,
            Ok((s.state, s.num_threads)),
            "the state-and-threads parser disagrees"
        );
    }
}

/// `/proc/<pid>/comm`.
pub fn fuzz_comm(data: &[u8]) {
    let _ = pr::parse_comm(data);
}

/// `/proc/cgroups`.
pub fn fuzz_proc_cgroups(data: &[u8]) {
    for _ in pr::proc_cgroups_rows(data) {}
    let _ = pr::is_controller_enabled(data, "memory");
}

/// `/proc/<pid>/cgroup`.
pub fn fuzz_pid_cgroup(data: &[u8]) {
    for row in pr::pid_cgroup_rows(data).flatten() {
        let _ = row.has_controller("cpuacct");
        let _ = pr::controllers_equal(row.controllers, b"cpu,cpuacct");
    }
}

/// `/proc/<pid>/mountinfo`, decoding every path into a small stack buffer.
pub fn fuzz_mountinfo(data: &[u8]) {
    let mut buf = [0u8; 256];
    for row in pr::mountinfo_rows(data).flatten() {
        let _ = pr::unescape_octal_into(row.mount_point, &mut buf);
        let _ = pr::unescape_octal_into(row.root, &mut buf);
        let _ = pr::has_controller(row.super_options, "memory");
    }
    let _ = pr::unescape_octal_into(data, &mut buf);
}

/// Every cgroup parser on the same input.
pub fn fuzz_all_cgroup(data: &[u8]) {
    fuzz_memory_stat(data);
    fuzz_single_value(data);
    fuzz_usage_percpu(data);
    fuzz_cpuacct_stat(data);
    fuzz_cpu_stat(data);
    fuzz_cpu_max(data);
    fuzz_blkio(data);
    fuzz_io_stat(data);
    fuzz_memory_events(data);
    fuzz_oom_control(data);
    fuzz_cgroup_procs(data);
}

/// Every /proc parser on the same input.
pub fn fuzz_all_procfs(data: &[u8]) {
    fuzz_proc_stat(data);
    fuzz_meminfo(data);
    fuzz_loadavg(data);
    fuzz_net_dev(data);
    fuzz_net_tcp(data);
    fuzz_pid_stat(data);
    fuzz_comm(data);
    fuzz_proc_cgroups(data);
    fuzz_pid_cgroup(data);
    fuzz_mountinfo(data);
}

/// Every parser on the same input.
pub fn fuzz_all(data: &[u8]) {
    fuzz_parse_common(data);
    fuzz_all_cgroup(data);
    fuzz_all_procfs(data);
}
