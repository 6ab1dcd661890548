//! Parsers against captured files: `v1-docker20/` was read from a Docker 20.10
//! daemon on a 6.18 kernel (cgroup v1, cpu and cpuacct mounted separately, a
//! cgroup2 `unified` mount); `v2/` and `centos6/` reproduce the shapes of
//! `docs/compat.md` §3; `weird/` holds the corner cases (escapes, parens, glued
//! columns, disabled controllers).

use outlyer_agent::cgroup::parse::*;
use outlyer_agent::procfs::parse::*;

macro_rules! fx {
    ($path:literal) => {
        &include_bytes!(concat!("fixtures/files/", $path))[..]
    };
}

fn collect<T>(it: impl Iterator<Item = Result<T, ParseError>>) -> Vec<T> {
    it.map(|r| r.expect("row parses")).collect()
}

// ------------------------------------------------------------------ v1, captured

#[test]
fn v1_memory_stat_limited_container() {
    let s = parse_memory_stat(fx!("v1-docker20/mem/memory.stat")).unwrap();
    assert_eq!(s.cache, Some(0));
    assert_eq!(s.rss, Some(57_344));
    assert_eq!(s.rss_huge, Some(0));
    assert_eq!(s.swap, Some(0));
    assert_eq!(s.swapcached, Some(0));
    assert_eq!(s.pgfault, Some(1154));
    assert_eq!(s.pgmajfault, Some(0));
    assert_eq!(s.inactive_anon, Some(53_248));
    assert_eq!(s.active_anon, Some(4096));
    assert_eq!(s.workingset_refault_file, Some(0));
    assert_eq!(s.hierarchical_memory_limit, Some(67_108_864));
    assert_eq!(s.hierarchical_limit(), Some(Limit::Bytes(67_108_864)));
    assert_eq!(s.hierarchical_memsw_limit, Some(134_217_728));
    assert_eq!(s.total_rss, Some(57_344));
    assert_eq!(s.total_pgpgin, Some(843));
    assert_eq!(s.total_pgfault, Some(1154));
    assert_eq!(s.total_inactive_anon, Some(53_248));
    assert_eq!(s.total_inactive_file, Some(0));
    // v2-only keys stay absent on a v1 file.
    assert_eq!(s.anon, None);
    assert_eq!(s.file, None);
    assert_eq!(s.file_mapped, None);
}

#[test]
fn v1_memory_stat_unlimited_container() {
    let s = parse_memory_stat(fx!("v1-docker20/dd/memory.stat")).unwrap();
    assert_eq!(s.cache, Some(4096));
    assert_eq!(s.rss, Some(49_152));
    assert_eq!(s.total_cache, Some(4096));
    assert_eq!(s.pgfault, Some(1777));
    assert_eq!(s.hierarchical_memory_limit, Some(9_223_372_036_854_771_712));
    assert_eq!(s.hierarchical_limit(), Some(Limit::Unlimited));
}

#[test]
fn v1_single_value_files() {
    assert_eq!(
        parse_memory_limit(fx!("v1-docker20/mem/memory.limit_in_bytes")),
        Ok(Limit::Bytes(67_108_864))
    );
    assert_eq!(
        parse_memory_limit(fx!("v1-docker20/busy/memory.limit_in_bytes")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(
        parse_memory_limit(fx!("v1-docker20/mem/memory.memsw.limit_in_bytes")),
        Ok(Limit::Bytes(134_217_728))
    );
    assert_eq!(
        parse_single_u64(fx!("v1-docker20/busy/memory.usage_in_bytes")),
        Ok(737_280)
    );
    assert_eq!(
        parse_single_u64(fx!("v1-docker20/mem/memory.max_usage_in_bytes")),
        Ok(4_345_856)
    );
    assert_eq!(
        parse_single_u64(fx!("v1-docker20/mem/memory.failcnt")),
        Ok(0)
    );
    assert_eq!(
        parse_cfs_quota(fx!("v1-docker20/mem/cpu.cfs_quota_us")),
        Ok(Limit::Bytes(50_000))
    );
    assert_eq!(
        parse_cfs_quota(fx!("v1-docker20/busy/cpu.cfs_quota_us")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(
        parse_single_u64(fx!("v1-docker20/mem/cpu.cfs_period_us")),
        Ok(100_000)
    );
    assert_eq!(
        parse_single_u64(fx!("v1-docker20/mem/cpu.shares")),
        Ok(1024)
    );
    assert_eq!(parse_single_u64(fx!("v1-docker20/mem/pids.current")), Ok(1));
    assert_eq!(
        parse_memory_limit(fx!("v1-docker20/mem/pids.max")),
        Ok(Limit::Bytes(50))
    );
    assert_eq!(
        parse_memory_limit(fx!("v1-docker20/busy/pids.max")),
        Ok(Limit::Unlimited)
    );
}

#[test]
fn v1_cpuacct() {
    assert_eq!(
        parse_cpuacct_usage(fx!("v1-docker20/busy/cpuacct.usage")),
        Ok(33_942_738_068)
    );
    let p = parse_usage_percpu(fx!("v1-docker20/busy/cpuacct.usage_percpu")).unwrap();
    assert_eq!(p.count, 2);
    assert_eq!(p.nonzero, 2);
    assert_eq!(p.sum, 21_846_904_347 + 12_100_286_781);
    let values = collect(percpu_values(fx!("v1-docker20/mem/cpuacct.usage_percpu")));
    assert_eq!(values, [11_219_813_983, 12_830_056_432]);
    let s = parse_cpuacct_stat(fx!("v1-docker20/busy/cpuacct.stat")).unwrap();
    assert_eq!((s.user, s.system), (Some(3378), Some(15)));
}

#[test]
fn v1_cpu_stat_throttled() {
    let s = parse_cpu_stat(fx!("v1-docker20/mem/cpu.stat")).unwrap();
    assert_eq!(s.nr_periods, Some(554));
    assert_eq!(s.nr_throttled, Some(240));
    assert_eq!(s.throttled_time, Some(8_835_999_563));
    assert_eq!(s.nr_bursts, Some(0));
    assert_eq!(s.burst_time, Some(0));
    assert_eq!(s.usage_usec, None);
    assert_eq!(s.throttled_usec, None);
}

#[test]
fn unified_cpu_stat_on_hybrid_host() {
    // The controller-less cgroup2 mount of a hybrid host still has cpu.stat.
    let s = parse_cpu_stat(fx!("v1-docker20/mem/unified.cpu.stat")).unwrap();
    assert_eq!(s.usage_usec, Some(24_069_612));
    assert_eq!(s.user_usec, Some(23_864_302));
    assert_eq!(s.system_usec, Some(205_309));
    assert_eq!(s.nr_periods, None);
}

#[test]
fn v1_oom_control() {
    let o = parse_oom_control(fx!("v1-docker20/mem/memory.oom_control")).unwrap();
    assert_eq!(o.oom_kill_disable, Some(0));
    assert_eq!(o.under_oom, Some(0));
    assert_eq!(o.oom_kill, Some(0));
}

#[test]
fn v1_blkio_with_io() {
    let rows = collect(blkio_rows(fx!(
        "v1-docker20/dd/blkio.throttle.io_service_bytes"
    )));
    let vda = Device {
        major: 254,
        minor: 0,
    };
    assert_eq!(
        rows,
        [
            BlkioRow {
                device: vda,
                op: BlkioOp::Read,
                value: 52_428_800
            },
            BlkioRow {
                device: vda,
                op: BlkioOp::Write,
                value: 52_428_800
            },
            BlkioRow {
                device: vda,
                op: BlkioOp::Sync,
                value: 104_857_600
            },
            BlkioRow {
                device: vda,
                op: BlkioOp::Async,
                value: 0
            },
            BlkioRow {
                device: vda,
                op: BlkioOp::Discard,
                value: 0
            },
        ]
    );
    let t = parse_blkio_totals(fx!("v1-docker20/dd/blkio.throttle.io_serviced")).unwrap();
    assert_eq!(
        (t.read, t.write, t.sync, t.async_, t.discard),
        (50, 100, 150, 0, 0)
    );
    assert_eq!(t.rows, 5);
    let r = parse_blkio_totals(fx!(
        "v1-docker20/dd/blkio.throttle.io_service_bytes_recursive"
    ))
    .unwrap();
    assert_eq!((r.read, r.write), (52_428_800, 52_428_800));
}

#[test]
fn v1_blkio_idle_is_empty() {
    assert_eq!(
        blkio_rows(fx!("v1-docker20/dd/blkio.bfq.io_service_bytes_recursive")).count(),
        0
    );
    assert_eq!(
        parse_blkio_totals(fx!("v1-docker20/busy/blkio.bfq.io_serviced_recursive")),
        Ok(BlkioTotals::default())
    );
}

#[test]
fn v1_cgroup_procs() {
    assert_eq!(
        collect(pids(fx!("v1-docker20/busy/cgroup.procs"))),
        [13_858]
    );
    assert_eq!(count_pids(fx!("v1-docker20/mem/cgroup.procs")), Ok(1));
}

#[test]
fn v1_pid_cgroup_separate_cpu_cpuacct() {
    let rows = collect(pid_cgroup_rows(fx!("v1-docker20/busy/proc/cgroup")));
    assert_eq!(rows.len(), 10);
    let id = b"/docker/aefc5b04d8887885cd0855d31c00ce37cc37b9490de6b899f019d87f4e6397ef";
    assert!(rows.iter().all(|r| r.path == id && !r.deleted));
    let cpuacct = rows.iter().find(|r| r.has_controller("cpuacct")).unwrap();
    assert_eq!(cpuacct.hierarchy_id, 2);
    assert_eq!(cpuacct.controllers, b"cpuacct");
    let cpu = rows.iter().find(|r| r.has_controller("cpu")).unwrap();
    assert_eq!(cpu.hierarchy_id, 1);
    assert!(rows.iter().any(|r| r.has_controller("name=systemd")));
    let unified = rows.last().unwrap();
    assert!(unified.is_unified());
    assert_eq!(unified.hierarchy_id, 0);
}

#[test]
fn v1_container_mountinfo_has_container_roots() {
    let rows = collect(mountinfo_rows(fx!("v1-docker20/busy/proc/mountinfo")));
    assert_eq!(rows.len(), 28);
    let cpu = rows
        .iter()
        .find(|m| m.fstype == b"cgroup" && has_controller(m.super_options, "cpu"))
        .unwrap();
    assert_eq!(cpu.mount_point, b"/sys/fs/cgroup/cpu");
    assert_eq!(
        cpu.root,
        b"/docker/aefc5b04d8887885cd0855d31c00ce37cc37b9490de6b899f019d87f4e6397ef"
    );
    assert_eq!((cpu.major, cpu.minor), (0, 29));
    assert_eq!((cpu.mount_id, cpu.parent_id), (115, 114));
    assert_eq!(cpu.mount_options, b"ro,nosuid,nodev,noexec,relatime");
    assert_eq!(cpu.optional_fields, b"");
    let root = &rows[0];
    assert_eq!(root.fstype, b"overlay");
    assert_eq!(root.optional_fields, b"master:3");
}

#[test]
fn host_mountinfo_cgroup_hierarchies() {
    let rows = collect(mountinfo_rows(fx!("v1-docker20/host/self_mountinfo")));
    let v1: Vec<&[u8]> = rows
        .iter()
        .filter(|m| m.fstype == b"cgroup")
        .map(|m| m.mount_point)
        .collect();
    assert_eq!(
        v1,
        [
            &b"/sys/fs/cgroup/cpu"[..],
            b"/sys/fs/cgroup/cpuacct",
            b"/sys/fs/cgroup/cpuset",
            b"/sys/fs/cgroup/memory",
            b"/sys/fs/cgroup/devices",
            b"/sys/fs/cgroup/freezer",
            b"/sys/fs/cgroup/blkio",
            b"/sys/fs/cgroup/pids",
            b"/sys/fs/cgroup/systemd",
        ]
    );
    let v2 = rows.iter().find(|m| m.fstype == b"cgroup2").unwrap();
    assert_eq!(v2.mount_point, b"/sys/fs/cgroup/unified");
    assert_eq!(v2.root, b"/");
    assert_eq!(v2.super_options, b"rw");
}

// ------------------------------------------------------------------ /proc, captured

#[test]
fn host_proc_stat() {
    let s = parse_proc_stat(fx!("v1-docker20/host/stat")).unwrap();
    let cpu = s.cpu.unwrap();
    assert_eq!(cpu.user, Some(26_749));
    assert_eq!(cpu.nice, Some(0));
    assert_eq!(cpu.system, Some(5740));
    assert_eq!(cpu.idle, Some(141_981));
    assert_eq!(cpu.iowait, Some(1085));
    assert_eq!(cpu.irq, Some(0));
    assert_eq!(cpu.softirq, Some(112));
    assert_eq!(cpu.steal, Some(215));
    assert_eq!(cpu.guest, Some(0));
    assert_eq!(cpu.guest_nice, Some(0));
    assert_eq!(
        cpu.total_ticks(),
        26_749 + 5740 + 141_981 + 1085 + 112 + 215
    );
    assert_eq!(
        cpu.docker_total_ticks(),
        26_749 + 5740 + 141_981 + 1085 + 112
    );
    assert_eq!(s.cpu_lines, 2);
    assert_eq!(s.btime, Some(1_795_559_987));
}

#[test]
fn host_meminfo() {
    let m = parse_meminfo(fx!("v1-docker20/host/meminfo")).unwrap();
    assert_eq!(m.mem_total, Some(24_684_096 * 1024));
    assert_eq!(m.mem_free, Some(22_345_592 * 1024));
    assert_eq!(m.mem_available, Some(24_144_952 * 1024));
    assert_eq!(m.buffers, Some(14_628 * 1024));
    assert_eq!(m.cached, Some(1_952_760 * 1024));
    assert_eq!(m.swap_total, Some(0));
    assert_eq!(m.swap_free, Some(0));
}

#[test]
fn host_loadavg() {
    let l = parse_loadavg(fx!("v1-docker20/host/loadavg")).unwrap();
    assert_eq!(l.load_centi, [290, 103, 44]);
    assert_eq!((l.runnable, l.total, l.last_pid), (4, 178, 17_480));
    assert!((l.load1() - 2.90).abs() < 1e-9);
    assert!((l.load15() - 0.44).abs() < 1e-9);
}

#[test]
fn host_net_dev() {
    let rows = collect(net_dev_rows(fx!("v1-docker20/host/net_dev")));
    let names: Vec<&[u8]> = rows.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [&b"lo"[..], b"ifb0", b"ifb1", b"eth0", b"veth43b88eb"]
    );
    assert!(rows[0].is_loopback());
    assert_eq!((rows[0].rx_bytes, rows[0].tx_packets), (3493, 35));
    let eth0 = &rows[3];
    assert_eq!(eth0.rx_bytes, 183_898_247);
    assert_eq!(eth0.rx_packets, 6055);
    assert_eq!(eth0.tx_bytes, 304_390);
    assert_eq!(eth0.tx_packets, 3406);
    assert_eq!(eth0.rx_errs + eth0.tx_errs + eth0.rx_drop + eth0.tx_drop, 0);
    assert_eq!((rows[4].tx_bytes, rows[4].tx_packets), (1532, 18));
    let t = parse_net_dev_totals(fx!("v1-docker20/host/net_dev")).unwrap();
    assert_eq!(t.interfaces, 4);
    assert_eq!(t.rx_bytes, 183_898_247);
    assert_eq!(t.tx_bytes, 304_390 + 1532);
    assert_eq!(t.tx_packets, 3406 + 18);
    assert_eq!(t.rx_packets, 6055);
}

#[test]
fn container_net_dev_without_network() {
    let rows = collect(net_dev_rows(fx!("v1-docker20/busy/proc/net_dev")));
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_loopback());
    assert_eq!(rows[0].rx_bytes, 0);
}

#[test]
fn tcp_state_histograms() {
    let t = parse_tcp_states(fx!("v1-docker20/host/net_tcp.sockets")).unwrap();
    assert_eq!(t.get(0x01), 4); // ESTABLISHED
    assert_eq!(t.get(0x05), 1); // FIN_WAIT2
    assert_eq!(t.get(0x06), 1); // TIME_WAIT
    assert_eq!(t.get(0x08), 1); // CLOSE_WAIT
    assert_eq!(t.get(0x0A), 2); // LISTEN
    assert_eq!(t.total(), 9);
    assert_eq!(t.other, 0);
    let mut both = t;
    both.merge(&parse_tcp_states(fx!("v1-docker20/host/net_tcp6.sockets")).unwrap());
    assert_eq!(both.get(0x01), 6);
    assert_eq!(both.get(0x0A), 3);
    assert_eq!(TCP_STATE_NAMES[0x0A - 1], "listen");
    // A container without sockets: header only.
    assert_eq!(
        parse_tcp_states(fx!("v1-docker20/busy/proc/net_tcp")).unwrap(),
        TcpStates::default()
    );
}

#[test]
fn container_pid_stat_and_comm() {
    let s = parse_pid_stat(fx!("v1-docker20/busy/proc/stat")).unwrap();
    assert_eq!(s.pid, 13_858);
    assert_eq!(s.comm, b"sh");
    assert_eq!(s.state, b'R');
    assert_eq!(s.ppid, 13_836);
    assert_eq!(s.minflt, 1085);
    assert_eq!(s.majflt, 1);
    assert_eq!(s.utime, 3383);
    assert_eq!(s.stime, 15);
    assert_eq!(s.num_threads, 1);
    assert_eq!(s.starttime, 82_705);
    assert_eq!(s.vsize, 2_322_432);
    assert_eq!(s.rss, 364);
    assert_eq!(
        parse_comm(fx!("v1-docker20/busy/proc/comm")),
        Ok(&b"sh"[..])
    );
    assert_eq!(
        parse_comm(fx!("v1-docker20/hostnet/proc/comm")),
        Ok(&b"sleep"[..])
    );
}

#[test]
fn host_proc_cgroups() {
    let rows = collect(proc_cgroups_rows(fx!("v1-docker20/host/cgroups")));
    assert_eq!(rows.len(), 12);
    let memory = rows.iter().find(|r| r.name == b"memory").unwrap();
    assert_eq!(
        (memory.hierarchy, memory.num_cgroups, memory.enabled),
        (4, 42, true)
    );
    assert_eq!(
        is_controller_enabled(fx!("v1-docker20/host/cgroups"), "pids"),
        Some(true)
    );
    assert_eq!(
        is_controller_enabled(fx!("v1-docker20/host/cgroups"), "rdma"),
        None
    );
}

// ------------------------------------------------------------------ v2 shapes

#[test]
fn v2_memory_stat() {
    let s = parse_memory_stat(fx!("v2/memory.stat")).unwrap();
    assert_eq!(s.anon, Some(13_635_584));
    assert_eq!(s.file, Some(11_472_896));
    assert_eq!(s.kernel, Some(983_040));
    assert_eq!(s.kernel_stack, Some(98_304));
    assert_eq!(s.sock, Some(0));
    assert_eq!(s.file_mapped, Some(2_506_752));
    assert_eq!(s.file_dirty, Some(12_288));
    assert_eq!(s.file_writeback, Some(0));
    assert_eq!(s.anon_thp, Some(0));
    assert_eq!(s.slab, Some(663_552));
    assert_eq!(s.inactive_file, Some(8_044_544));
    assert_eq!(s.active_file, Some(3_428_352));
    assert_eq!(s.pgfault, Some(13_113));
    assert_eq!(s.pgmajfault, Some(41));
    assert_eq!(s.inactive_file_hierarchical(), Some(8_044_544));
    assert_eq!(s.cache, None);
    assert_eq!(s.total_rss, None);
    assert_eq!(s.hierarchical_memory_limit, None);
}

#[test]
fn v2_cpu() {
    let s = parse_cpu_stat(fx!("v2/cpu.stat")).unwrap();
    assert_eq!(s.usage_usec, Some(1_234_567));
    assert_eq!(s.user_usec, Some(800_000));
    assert_eq!(s.system_usec, Some(434_567));
    assert_eq!(s.nr_periods, Some(0));
    assert_eq!(s.throttled_usec, Some(0));
    assert_eq!(s.burst_usec, Some(0));
    assert_eq!(
        parse_cpu_max(fx!("v2/cpu.max")),
        Ok(CpuMax {
            quota: Limit::Unlimited,
            period: 100_000
        })
    );
    assert_eq!(
        parse_cpu_max(fx!("v2/cpu.max.limited")),
        Ok(CpuMax {
            quota: Limit::Bytes(50_000),
            period: 100_000
        })
    );
}

#[test]
fn v2_memory_single_values() {
    assert_eq!(parse_single_u64(fx!("v2/memory.current")), Ok(25_272_320));
    assert_eq!(
        parse_memory_limit(fx!("v2/memory.max")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(
        parse_memory_limit(fx!("v2/memory.max.limited")),
        Ok(Limit::Bytes(536_870_912))
    );
    assert_eq!(parse_single_u64(fx!("v2/memory.swap.current")), Ok(0));
    assert_eq!(
        parse_memory_limit(fx!("v2/memory.swap.max")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(parse_single_u64(fx!("v2/memory.peak")), Ok(31_457_280));
    assert_eq!(parse_single_u64(fx!("v2/pids.current")), Ok(3));
    assert_eq!(parse_memory_limit(fx!("v2/pids.max")), Ok(Limit::Unlimited));
    assert_eq!(count_pids(fx!("v2/cgroup.procs")), Ok(3));
}

#[test]
fn v2_memory_events() {
    let e = parse_memory_events(fx!("v2/memory.events")).unwrap();
    assert_eq!(e.low, Some(0));
    assert_eq!(e.high, Some(0));
    assert_eq!(e.max, Some(12));
    assert_eq!(e.oom, Some(1));
    assert_eq!(e.oom_kill, Some(1));
    assert_eq!(e.oom_group_kill, Some(0));
    let old = parse_memory_events(fx!("v2/memory.events.no-group-kill")).unwrap();
    assert_eq!(old.oom_kill, Some(1));
    assert_eq!(old.oom_group_kill, None);
}

#[test]
fn v2_io_stat() {
    let rows = collect(io_stat_rows(fx!("v2/io.stat")));
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0],
        IoStatRow {
            device: Device {
                major: 8,
                minor: 16
            },
            rbytes: Some(1_459_200),
            wbytes: Some(314_773_504),
            rios: Some(192),
            wios: Some(353),
            dbytes: Some(0),
            dios: Some(0),
        }
    );
    assert_eq!(rows[1].device.to_string(), "8:0");
    assert_eq!(rows[1].dbytes, Some(50_331_648));
    assert_eq!(rows[1].dios, Some(3021));

    let old = collect(io_stat_rows(fx!("v2/io.stat.old-kernel")));
    assert_eq!((old[0].rbytes, old[0].rios), (Some(4096), Some(1)));
    assert_eq!((old[0].dbytes, old[0].dios), (None, None));

    let iocost = collect(io_stat_rows(fx!("v2/io.stat.iocost")));
    assert_eq!(
        (
            iocost[0].rbytes,
            iocost[0].wbytes,
            iocost[0].rios,
            iocost[0].wios
        ),
        (Some(1), Some(2), Some(3), Some(4))
    );
    assert_eq!((iocost[0].dbytes, iocost[0].dios), (Some(5), Some(6)));
    assert_eq!(io_stat_rows(fx!("v2/io.stat.idle")).count(), 0);
    let t = parse_io_stat_totals(fx!("v2/io.stat")).unwrap();
    assert_eq!(t.rbytes, 1_459_200 + 90_430_464);
    assert_eq!(t.wbytes, 314_773_504 + 299_008_000);
    assert_eq!((t.rios, t.wios), (192 + 8950, 353 + 1252));
    assert_eq!((t.dbytes, t.dios, t.devices), (50_331_648, 3021, 2));
}

#[test]
fn v2_pid_cgroup_and_mountinfo() {
    let rows = collect(pid_cgroup_rows(fx!("v2/proc_pid_cgroup")));
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_unified());
    assert_eq!(
        rows[0].path,
        &b"/system.slice/docker-3f4c9a0c2b1e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e1.scope"[..]
    );
    let ns = collect(pid_cgroup_rows(fx!("v2/proc_pid_cgroup.cgroupns")));
    assert!(ns[0].path.starts_with(b"/../docker-"));
    let m = collect(mountinfo_rows(fx!("v2/mountinfo")));
    assert_eq!(m[0].fstype, b"cgroup2");
    assert_eq!(m[0].mount_point, b"/sys/fs/cgroup");
    assert_eq!(m[0].optional_fields, b"shared:9");
    assert!(has_controller(m[0].super_options, "memory_recursiveprot"));
    let cg = collect(proc_cgroups_rows(fx!("v2/proc_cgroups")));
    assert_eq!(cg.len(), 14);
    assert!(cg
        .iter()
        .all(|r| r.hierarchy == 0 && r.num_cgroups == 102 && r.enabled));
}

// ------------------------------------------------------------------ CentOS 6 shapes

#[test]
fn centos6_memory() {
    let s = parse_memory_stat(fx!("centos6/memory.stat")).unwrap();
    assert_eq!(s.cache, Some(36_864));
    assert_eq!(s.rss, Some(286_720));
    assert_eq!(s.total_inactive_file, Some(36_864));
    assert_eq!(s.swap, Some(0));
    // 2.6.32 lacks these: missing, not zero.
    assert_eq!(s.rss_huge, None);
    assert_eq!(s.shmem, None);
    assert_eq!(s.dirty, None);
    assert_eq!(s.writeback, None);
    assert_eq!(s.pgfault, None);
    assert_eq!(s.pgmajfault, None);
    assert_eq!(s.total_pgfault, None);
    assert_eq!(s.hierarchical_memory_limit, Some(i64::MAX as u64));
    assert_eq!(s.hierarchical_limit(), Some(Limit::Unlimited));
    assert_eq!(
        parse_memory_limit(fx!("centos6/memory.limit_in_bytes")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(
        parse_single_u64(fx!("centos6/memory.usage_in_bytes")),
        Ok(323_584)
    );
    let o = parse_oom_control(fx!("centos6/memory.oom_control")).unwrap();
    assert_eq!(
        (o.oom_kill_disable, o.under_oom, o.oom_kill),
        (Some(0), Some(0), None)
    );
}

#[test]
fn centos6_cpu() {
    let s = parse_cpuacct_stat(fx!("centos6/cpuacct.stat")).unwrap();
    assert_eq!((s.user, s.system), (Some(2547), Some(1163)));
    assert_eq!(
        parse_cpuacct_usage(fx!("centos6/cpuacct.usage")),
        Ok(37_108_347_262)
    );
    let p = parse_usage_percpu(fx!("centos6/cpuacct.usage_percpu")).unwrap();
    assert_eq!(p.count, 4);
    assert_eq!(
        p.sum,
        9_262_478_372 + 9_394_528_612 + 9_276_116_373 + 9_175_223_905
    );
    assert_eq!(
        parse_cfs_quota(fx!("centos6/cpu.cfs_quota_us")),
        Ok(Limit::Unlimited)
    );
    assert_eq!(parse_single_u64(fx!("centos6/cpu.shares")), Ok(1024));
}

#[test]
fn centos6_blkio_dm_stack() {
    let rows = collect(blkio_rows(fx!("centos6/blkio.throttle.io_service_bytes")));
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.op != BlkioOp::Discard));
    let t = parse_blkio_totals(fx!("centos6/blkio.throttle.io_service_bytes")).unwrap();
    // dm-0 and its backing disk both count (docs/compat.md §3).
    assert_eq!((t.read, t.write), (2 * 1_871_872, 2 * 40_960));
    let n = parse_blkio_totals(fx!("centos6/blkio.throttle.io_serviced")).unwrap();
    assert_eq!((n.read, n.write), (914, 20));
    assert_eq!(
        blkio_rows(fx!("centos6/blkio.io_service_bytes_recursive.idle")).count(),
        0
    );
    assert_eq!(collect(pids(fx!("centos6/cgroup.procs"))), [2314, 2320]);
}

#[test]
fn centos6_proc() {
    let s = parse_proc_stat(fx!("centos6/proc_stat")).unwrap();
    let cpu = s.cpu.unwrap();
    assert_eq!(cpu.user, Some(79_411));
    assert_eq!(cpu.steal, Some(0));
    assert_eq!(cpu.guest, Some(0));
    assert_eq!(cpu.guest_nice, None); // 9 columns before 2.6.33
    assert_eq!(s.cpu_lines, 4);
    assert_eq!(s.btime, Some(1_450_000_000));
    assert_eq!(s.ctxt, Some(8_561_424));
    assert_eq!(s.procs_running, Some(1));

    let m = parse_meminfo(fx!("centos6/proc_meminfo")).unwrap();
    assert_eq!(m.mem_total, Some(3_921_368 * 1024));
    assert_eq!(m.mem_available, None);
    assert_eq!(m.swap_free, Some(4_063_228 * 1024));
    assert_eq!(m.s_reclaimable, Some(101_808 * 1024));

    let l = parse_loadavg(fx!("centos6/proc_loadavg")).unwrap();
    assert_eq!(l.load_centi, [8, 3, 5]);
    assert_eq!(l.last_pid, 2318);

    let rows = collect(net_dev_rows(fx!("centos6/proc_net_dev")));
    assert_eq!(rows[1].name, b"eth0");
    assert_eq!(rows[1].rx_bytes, 123_456_789_012);
    assert_eq!(rows[1].rx_packets, 98_765_432);
    assert_eq!((rows[1].rx_errs, rows[1].rx_drop), (1, 2));
    assert_eq!(rows[1].tx_bytes, 98_765_432_101);
    assert_eq!((rows[1].tx_errs, rows[1].tx_drop), (3, 4));

    let p = parse_pid_stat(fx!("centos6/proc_pid_stat")).unwrap();
    assert_eq!((p.pid, p.comm, p.ppid), (2314, &b"docker"[..], 1));
    assert_eq!((p.utime, p.stime, p.num_threads), (150, 98, 9));
    assert_eq!((p.starttime, p.vsize, p.rss), (1573, 1_028_403_200, 5201));
}

#[test]
fn centos6_hierarchies() {
    let cg = collect(pid_cgroup_rows(fx!("centos6/proc_pid_cgroup")));
    let cpuacct = cg.iter().find(|r| r.has_controller("cpuacct")).unwrap();
    assert_eq!(cpuacct.hierarchy_id, 3);
    assert!(!cpuacct.has_controller("cpu"));
    let perf = cg.iter().find(|r| r.has_controller("perf_event")).unwrap();
    assert_eq!(perf.path, b"/");
    let m = collect(mountinfo_rows(fx!("centos6/mountinfo")));
    let mem = m
        .iter()
        .find(|r| r.fstype == b"cgroup" && has_controller(r.super_options, "memory"))
        .unwrap();
    assert_eq!(mem.mount_point, b"/cgroup/memory");
    assert_eq!((mem.major, mem.minor), (0, 20));
    let rows = collect(proc_cgroups_rows(fx!("centos6/proc_cgroups")));
    assert!(rows.iter().any(|r| r.name == b"ns" && r.hierarchy == 0));
    assert_eq!(
        is_controller_enabled(fx!("centos6/proc_cgroups"), "pids"),
        None
    );
}

// ------------------------------------------------------------------ weird inputs

#[test]
fn memory_accounting_off() {
    let buf = fx!("weird/proc_cgroups.memory-disabled");
    assert_eq!(is_controller_enabled(buf, "memory"), Some(false));
    assert_eq!(is_controller_enabled(buf, "cpuacct"), Some(true));
    let mem = collect(proc_cgroups_rows(buf))
        .into_iter()
        .find(|r| r.name == b"memory")
        .unwrap();
    assert_eq!(
        (mem.hierarchy, mem.num_cgroups, mem.enabled),
        (0, 44, false)
    );
}

#[test]
fn mountinfo_octal_escapes() {
    let rows = collect(mountinfo_rows(fx!("weird/mountinfo.escapes")));
    assert_eq!(rows.len(), 6);
    let mut buf = [0u8; 64];

    assert_eq!(rows[1].mount_point, b"/mnt/my\\040disk");
    let n = unescape_octal_into(rows[1].mount_point, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"/mnt/my disk");
    assert_eq!(
        rows[1].optional_fields,
        b"shared:30 master:2 propagate_from:1"
    );

    let n = unescape_octal_into(rows[2].root, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"/dir\twith\\tab");
    assert!(eq_unescaped(rows[2].mount_point, b"/mnt/odd\nname"));
    assert_eq!(rows[2].fstype, b"xfs");
    assert_eq!(rows[2].super_options, b"rw,attr2");

    // Backslashes without three octal digits pass through untouched.
    let n = unescape_octal_into(rows[3].mount_point, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"/mnt/no\\x-escape\\1");
    assert!(eq_unescaped(rows[3].source, b"tm pfs"));

    assert!(has_controller(rows[4].super_options, "cpuacct"));
    assert!(controllers_equal(b"cpuacct,cpu", b"cpu,cpuacct"));
    assert!(!controllers_equal(b"cpu", b"cpu,cpuacct"));
    assert!(rows[5].root.starts_with(b"/docker/3f4c"));
    assert_eq!(rows[5].optional_fields, b"master:13");

    assert_eq!(
        unescape_octal_into(rows[1].mount_point, &mut [0u8; 8]),
        Err(ParseError::TooLong)
    );
}

#[test]
fn pid_stat_comm_with_parens_and_spaces() {
    let s = parse_pid_stat(fx!("weird/proc_pid_stat.comm-parens")).unwrap();
    assert_eq!(s.comm, b"my (weird) proc");
    assert_eq!((s.pid, s.state, s.ppid), (4321, b'R', 1));
    assert_eq!((s.utime, s.stime, s.num_threads), (55, 44, 2));
    assert_eq!((s.starttime, s.vsize, s.rss), (777, 4096, 3));

    let s = parse_pid_stat(fx!("weird/proc_pid_stat.comm-space")).unwrap();
    assert_eq!((s.comm, s.state, s.ppid), (&b" "[..], b'S', 0));
    let s = parse_pid_stat(fx!("weird/proc_pid_stat.comm-empty")).unwrap();
    assert_eq!((s.comm, s.state, s.starttime), (&b""[..], b'Z', 5));

    // The state-only parser the load average uses reads the same letter.
    assert_eq!(
        parse_pid_state(fx!("weird/proc_pid_stat.comm-parens")),
        Ok(b'R')
    );
    assert_eq!(
        parse_pid_state(fx!("weird/proc_pid_stat.comm-space")),
        Ok(b'S')
    );
    assert_eq!(
        parse_pid_state(fx!("weird/proc_pid_stat.comm-empty")),
        Ok(b'Z')
    );
    assert_eq!(parse_pid_state(fx!("v1-docker20/busy/proc/stat")), Ok(b'R'));
    assert_eq!(
        parse_pid_state_threads(fx!("weird/proc_pid_stat.comm-parens")),
        Ok((b'R', 2))
    );
    assert_eq!(
        parse_pid_state_threads(b"1 (x) S 1 2 3\n"),
        Err(ParseError::MissingField)
    );
    assert_eq!(
        parse_pid_state_threads(b"1 (a) b) S 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 7 19\n"),
        Ok((b'S', 7))
    );

    assert_eq!(
        parse_comm(fx!("weird/proc_pid_comm.spaces")),
        Ok(&b"my (weird) proc"[..])
    );
}

#[test]
fn net_dev_glued_columns() {
    let rows = collect(net_dev_rows(fx!("weird/proc_net_dev.glued")));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].name, b"eth0");
    assert_eq!(rows[1].rx_bytes, 4_294_967_296);
    assert_eq!(rows[1].rx_packets, 4_000_000_000);
    assert_eq!(rows[1].tx_bytes, u64::MAX);
    assert_eq!(rows[1].tx_packets, 1);
    assert_eq!(rows[2].name, b"averyveryverylongname0");
    assert_eq!((rows[2].rx_bytes, rows[2].tx_compressed), (1, 16));
    assert_eq!(rows[2].tx_bytes, 9);
}

#[test]
fn pid_cgroup_centos7_order_colons_deleted() {
    let rows = collect(pid_cgroup_rows(fx!("weird/proc_pid_cgroup.centos7")));
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1].controllers, b"cpuacct,cpu");
    assert!(rows[1].has_controller("cpu") && rows[1].has_controller("cpuacct"));
    assert!(!rows[1].has_controller("cpuset"));
    assert!(controllers_equal(rows[1].controllers, b"cpu,cpuacct"));
    assert!(rows[2].has_controller("net_cls"));
    assert!(rows[3].has_controller("name=systemd"));
    assert!(!rows[3].has_controller("systemd"));
    let last = &rows[4];
    assert!(last.is_unified());
    assert_eq!(last.path, b"/odd:path:with:colons");
    assert!(last.deleted);
    assert!(!rows[0].deleted);
}

#[test]
fn malformed_inputs_are_errors() {
    assert_eq!(parse_memory_stat(b""), Err(ParseError::Empty));
    assert_eq!(
        parse_memory_stat(b"rss -5\n"),
        Err(ParseError::InvalidNumber)
    );
    assert_eq!(
        parse_memory_stat(b"rss 99999999999999999999\n"),
        Err(ParseError::Overflow)
    );
    assert_eq!(
        parse_proc_stat(b"cpu  1 2\n"),
        Err(ParseError::MissingField)
    );
    assert_eq!(
        parse_meminfo(b"MemTotal: 5 MB\n"),
        Err(ParseError::Malformed("meminfo unit"))
    );
    assert_eq!(
        parse_meminfo(b"MemTotal: 18446744073709551615 kB\n"),
        Err(ParseError::Overflow)
    );
    assert_eq!(
        parse_loadavg(b"0.1 0.2 0.3 1 5\n"),
        Err(ParseError::Malformed("loadavg tasks"))
    );
    assert!(parse_pid_stat(b"1 (x S 1\n").is_err());
    assert!(parse_pid_state(b"1 (x S 1\n").is_err());
    assert!(parse_pid_state(b"x (x) S 1\n").is_err());
    assert!(parse_pid_state(b"1 (x) SS 1\n").is_err());
    assert!(parse_pid_state(b"1 (x) \n").is_err());
    assert!(parse_pid_stat(b"1 (x) S 1 2\n").is_err());
    assert_eq!(
        parse_tcp_states(b"hdr\n 0: a b ZZ\n"),
        Err(ParseError::InvalidNumber)
    );
    assert_eq!(parse_comm(b"\n"), Err(ParseError::Empty));
    let bad: Vec<_> = blkio_rows(b"8:0 Read\nx:0 Write 5\n8:0 Write 7\n").collect();
    assert_eq!(bad[0], Err(ParseError::MissingField));
    assert_eq!(bad[1], Err(ParseError::InvalidNumber));
    assert_eq!(bad[2].unwrap().value, 7);
    let cg: Vec<_> = pid_cgroup_rows(b"x:cpu:/a\n1:cpu\n2:memory:/b\n").collect();
    assert_eq!(cg[0], Err(ParseError::InvalidNumber));
    assert_eq!(cg[1], Err(ParseError::MissingField));
    assert_eq!(cg[2].unwrap().path, b"/b");
    assert!(mountinfo_rows(b"1 2 0:3 / /x rw shared:1 ext4 src rw\n")
        .next()
        .unwrap()
        .is_err());
}

// ------------------------------------------------------------------ every fixture

/// Parses one fixture with the parser its name calls for; `Ok(None)` for
/// files no parser reads. Row iterators must yield only `Ok` rows.
fn parse_fixture(rel: &str, buf: &[u8]) -> Option<Result<(), ParseError>> {
    fn rows<T>(mut it: impl Iterator<Item = Result<T, ParseError>>) -> Result<(), ParseError> {
        it.try_for_each(|r| r.map(|_| ()))
    }
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let base = name.split('.').next().unwrap_or(name);
    let r = match name {
        "memory.stat" => parse_memory_stat(buf).map(|_| ()),
        "cpu.stat" | "unified.cpu.stat" => parse_cpu_stat(buf).map(|_| ()),
        "cpuacct.stat" => parse_cpuacct_stat(buf).map(|_| ()),
        "cpuacct.usage" => parse_cpuacct_usage(buf).map(|_| ()),
        "cpuacct.usage_percpu" => parse_usage_percpu(buf).map(|_| ()),
        "cpuacct.usage_all" => return None,
        "memory.oom_control" => parse_oom_control(buf).map(|_| ()),
        "cgroup.procs" => rows(pids(buf)),
        "memory.limit_in_bytes"
        | "memory.memsw.limit_in_bytes"
        | "memory.max"
        | "memory.max.limited"
        | "memory.swap.max"
        | "pids.max" => parse_memory_limit(buf).map(|_| ()),
        "cpu.cfs_quota_us" => parse_cfs_quota(buf).map(|_| ()),
        "memory.usage_in_bytes"
        | "memory.max_usage_in_bytes"
        | "memory.failcnt"
        | "memory.memsw.usage_in_bytes"
        | "memory.current"
        | "memory.peak"
        | "memory.swap.current"
        | "cpu.cfs_period_us"
        | "cpu.shares"
        | "cpu.weight"
        | "pids.current" => parse_single_u64(buf).map(|_| ()),
        "stat" if rel.contains("/proc/") => parse_pid_stat(buf).map(|_| ()),
        "stat" | "proc_stat" => parse_proc_stat(buf).map(|_| ()),
        "self_stat" => parse_pid_stat(buf).map(|_| ()),
        "meminfo" | "proc_meminfo" => parse_meminfo(buf).map(|_| ()),
        "loadavg" | "proc_loadavg" => parse_loadavg(buf).map(|_| ()),
        "comm" => parse_comm(buf).map(|_| ()),
        "cgroups" => rows(proc_cgroups_rows(buf)),
        "cgroup" | "self_cgroup" => rows(pid_cgroup_rows(buf)),
        _ => match base {
            "memory" if name.starts_with("memory.events") => parse_memory_events(buf).map(|_| ()),
            "cpu" if name.starts_with("cpu.max") => parse_cpu_max(buf).map(|_| ()),
            "blkio" => rows(blkio_rows(buf)),
            "io" if name.starts_with("io.stat") => rows(io_stat_rows(buf)),
            "net_dev" | "proc_net_dev" => rows(net_dev_rows(buf)),
            "net_tcp" | "net_tcp6" => parse_tcp_states(buf).map(|_| ()),
            "proc_pid_stat" => parse_pid_stat(buf).map(|_| ()),
            "proc_pid_comm" => parse_comm(buf).map(|_| ()),
            "proc_cgroups" => rows(proc_cgroups_rows(buf)),
            "proc_pid_cgroup" => rows(pid_cgroup_rows(buf)),
            "mountinfo" | "self_mountinfo" => rows(mountinfo_rows(buf)),
            _ => panic!("no parser mapped for fixture {rel}"),
        },
    };
    Some(r)
}

#[test]
fn every_fixture_parses_cleanly() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/files");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut parsed = 0;
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let buf = std::fs::read(path).unwrap();
        if let Some(result) = parse_fixture(&rel, &buf) {
            assert_eq!(result, Ok(()), "{rel}");
            parsed += 1;
        }
    }
    // Everything but the four cpuacct.usage_all captures has a parser.
    assert_eq!(parsed, files.len() - 4);
    assert!(parsed > 190, "{parsed}");
}
