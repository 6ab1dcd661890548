//! The collector over synthetic host trees in every layout: v1 co-mounted,
//! CentOS 6 `/cgroup/<c>`, hybrid (systemd driver), pure v2, Kubernetes
//! nesting, cgroup-namespace relative paths, memory accounting off.

use outlyer_agent::metrics::{path_index, Collector};
use outlyer_testkit::{Driver, SyntheticHost, TreeLayout, TreeOptions};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// (fingerprint, path) → value of the Outlyer view.
fn outlyer(c: &Collector) -> HashMap<(String, String), f64> {
    let mut m = HashMap::new();
    c.for_each_outlyer_sample(|f, p, v| {
        m.insert((f.to_string(), p.to_string()), v);
    });
    m
}

fn prom(c: &Collector) -> String {
    let mut out = Vec::new();
    c.write_prometheus(&mut out);
    String::from_utf8(out).unwrap()
}

/// The value of the first sample line starting with `prefix`.
fn prom_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct Run {
    host: SyntheticHost,
    c: Collector,
    t0: Instant,
}

/// Tracks every container, advances 10 s, collects.
fn run(opts: TreeOptions) -> Run {
    let mut host = SyntheticHost::create(opts).unwrap();
    let mut c = Collector::new(host.rootfs(), "host-finger");
    c.set_tcp_states(true);
    let t0 = Instant::now();
    c.collect(t0, 1_700_000_000.0);
    for i in 0..host.containers.len() {
        c.track(&host.container_info(i), t0, 1_700_000_000.0);
    }
    host.advance(10.0).unwrap();
    c.collect(t0 + Duration::from_secs(10), 1_700_000_010.0);
    Run { host, c, t0 }
}

fn check_common(r: &Run, memory: bool) {
    let o = outlyer(&r.c);
    assert_eq!(r.c.len(), r.host.containers.len());
    for (i, sc) in r.host.containers.iter().enumerate() {
        let info = r.host.container_info(i);
        assert_eq!(
            r.c.cgroup_path(&sc.id),
            Some(sc.cgroup_path.as_str()),
            "cgroup path of container {i}"
        );
        let get = |p: &str| o.get(&(info.fingerprint.clone(), p.to_string())).copied();
        assert_eq!(get("base.count"), Some(1.0));
        let cpu = get("base.cpu").expect("base.cpu");
        assert!(
            (cpu - sc.cpu_cores * 100.0).abs() < 0.5,
            "container {i}: base.cpu {cpu}, expected {}",
            sc.cpu_cores * 100.0
        );
        assert_eq!(get("base.cpu.cores"), Some(4.0));
        let rx = get("base.network.bytes_recv_per_sec").expect("rx rate");
        assert!((rx - sc.net_rate as f64).abs() < 1.0, "rx rate {rx}");
        assert!((get("base.net_download").unwrap() - rx / 1024.0).abs() < 1e-9);
        let rd = get("base.disk.read_bytes_per_sec").expect("disk rate");
        assert!((rd - sc.blk_rate as f64).abs() < 1.0, "disk read rate {rd}");
        assert_eq!(get("base.disk.read_bytes"), Some(sc.read_bytes as f64));
        if memory {
            let used = get("base.vmem.used").expect("vmem.used");
            assert_eq!(used, (sc.mem_usage - sc.inactive_file) as f64);
            let total = get("base.vmem.total").unwrap();
            match sc.mem_limit {
                Some(l) => assert_eq!(total, l as f64),
                None => assert_eq!(total, (16_318_004u64 * 1024) as f64),
            }
            assert!((get("base.memory").unwrap() - used / total * 100.0).abs() < 1e-9);
        } else {
            assert_eq!(get("base.vmem.used"), None);
            assert_eq!(get("base.memory"), None);
        }
        // Every value is non-negative.
        for ((f, p), v) in &o {
            assert!(*v >= 0.0, "{f} {p} = {v}");
        }
    }
    // Host view.
    let h = |p: &str| o.get(&("host-finger".to_string(), p.to_string())).copied();
    assert_eq!(h("base.count"), Some(1.0));
    assert_eq!(h("base.load_1_min"), Some(0.42));
    assert!(h("base.vmem.total").unwrap() > 0.0);
    assert!(h("base.network.bytes_recv_per_sec").is_some());

    let text = prom(&r.c);
    let first = &r.host.containers[0];
    let id_label = format!("id=\"{}\"", first.cgroup_path);
    let cpu_line = text
        .lines()
        .find(|l| l.starts_with("container_cpu_usage_seconds_total{") && l.contains(&id_label))
        .expect("cpu usage line");
    assert!(cpu_line.contains("cpu=\"total\""));
    assert!(cpu_line.contains("name=\"synth-0\""));
    assert!(cpu_line.contains("container_label_com_example_team=\"core\""));
    assert!(cpu_line.contains("container_label_tier=\"web \\\"front\\\"\""));
    let v: f64 = cpu_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((v - first.cpu_ns as f64 / 1e9).abs() < 1e-6);
    assert_eq!(
        text.matches("# TYPE container_cpu_usage_seconds_total ")
            .count(),
        1
    );
    assert!(text.contains("container_network_receive_bytes_total{"));
    assert!(text.contains("interface=\"eth0\""));
    assert!(!text.contains("interface=\"lo\""));
    assert!(text.contains("device=\"8:0\""));
    assert!(text.contains("tcp_state=\"listen\""));
    assert_eq!(prom_value(&text, "machine_cpu_cores "), Some(4.0));
    assert_eq!(
        prom_value(&text, "machine_memory_bytes "),
        Some((16_318_004u64 * 1024) as f64)
    );
    assert_eq!(
        text.contains("container_memory_working_set_bytes{"),
        memory,
        "memory families present iff memory accounting is on"
    );
    // One HELP and one TYPE per family.
    let mut seen = std::collections::HashSet::new();
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        assert!(seen.insert(l.split(' ').nth(2).unwrap().to_string()), "{l}");
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# HELP ")).count(),
        seen.len()
    );
}

#[test]
fn v1_comounted_cgroupfs() {
    let r = run(TreeOptions::new(TreeLayout::V1Comounted, 3));
    check_common(&r, true);
    let text = prom(&r.c);
    // Container 0 has a 64 MiB limit; container 1 none (→ 0, as cAdvisor).
    let id0 = format!("id=\"{}\"", r.host.containers[0].cgroup_path);
    let id1 = format!("id=\"{}\"", r.host.containers[1].cgroup_path);
    let lim = |id: &str| {
        text.lines()
            .find(|l| l.starts_with("container_spec_memory_limit_bytes{") && l.contains(id))
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.to_string())
    };
    assert_eq!(lim(&id0).as_deref(), Some("67108864"));
    assert_eq!(lim(&id1).as_deref(), Some("0"));
    // Quota only on odd containers: CFS counters only there.
    assert!(!text
        .lines()
        .any(|l| l.starts_with("container_cpu_cfs_periods_total{") && l.contains(&id0)));
    assert!(text
        .lines()
        .any(|l| l.starts_with("container_cpu_cfs_periods_total{") && l.contains(&id1)));
    // Swap accounting on: base.swap present.
    let o = outlyer(&r.c);
    let f0 = r.host.container_info(0).fingerprint;
    assert!(o.contains_key(&(f0, "base.swap".to_string())));
}

#[test]
fn centos6_separate_mounts_under_slash_cgroup() {
    let r = run(TreeOptions::new(TreeLayout::V1CentOs6, 3));
    let h = r.c.hierarchies();
    assert!(h.cpu.as_ref().unwrap().path.ends_with("sys/fs/cgroup/cpu"));
    assert!(h
        .cpuacct
        .as_ref()
        .unwrap()
        .path
        .ends_with("sys/fs/cgroup/cpuacct"));
    assert!(h.pids.is_none());
    check_common(&r, true);
    let text = prom(&r.c);
    // LLONG_MAX "unlimited" of old kernels reads as no limit.
    let id1 = format!("id=\"{}\"", r.host.containers[1].cgroup_path);
    assert!(text
        .lines()
        .any(|l| l.starts_with("container_spec_memory_limit_bytes{")
            && l.contains(&id1)
            && l.ends_with(" 0")));
    // No oom_kill in oom_control on 2.6.32: no OOM series rather than a zero.
    assert!(!text.contains("container_oom_events_total{"));
}

#[test]
fn hybrid_systemd_driver() {
    let mut o = TreeOptions::new(TreeLayout::Hybrid, 3);
    o.driver = Driver::Systemd;
    let r = run(o);
    assert_eq!(
        r.c.hierarchies().layout,
        outlyer_agent::cgroup::mounts::Layout::Hybrid
    );
    check_common(&r, true);
    assert!(r.host.containers[0]
        .cgroup_path
        .starts_with("/system.slice/docker-"));
}

#[test]
fn v2_systemd() {
    let r = run(TreeOptions::new(TreeLayout::V2, 3));
    assert_eq!(
        r.c.hierarchies().layout,
        outlyer_agent::cgroup::mounts::Layout::V2
    );
    check_common(&r, true);
    let text = prom(&r.c);
    assert!(text.contains("container_memory_max_usage_bytes{"));
    assert!(text.contains("container_oom_events_total{"));
    // cpu.max "50000 100000" on odd containers.
    let id1 = format!("id=\"{}\"", r.host.containers[1].cgroup_path);
    assert!(text
        .lines()
        .any(|l| l.starts_with("container_spec_cpu_quota{")
            && l.contains(&id1)
            && l.ends_with(" 50000")));
}

#[test]
fn kubernetes_nesting_found() {
    let mut o = TreeOptions::new(TreeLayout::V1Comounted, 2);
    o.driver = Driver::Kubernetes;
    let r = run(o);
    assert!(r.host.containers[0]
        .cgroup_path
        .starts_with("/kubepods/burstable/pod"));
    check_common(&r, true);
}

#[test]
fn cgroup_namespace_relative_paths_fall_back_to_search() {
    for layout in [TreeLayout::V2, TreeLayout::Hybrid] {
        let mut o = TreeOptions::new(layout, 2);
        o.driver = Driver::Systemd;
        o.cgroupns_relative = true;
        let r = run(o);
        check_common(&r, true);
    }
}

#[test]
fn memory_accounting_off_degrades() {
    for layout in [
        TreeLayout::V1Comounted,
        TreeLayout::V2,
        TreeLayout::V1CentOs6,
    ] {
        let mut o = TreeOptions::new(layout, 2);
        o.memory_accounting = false;
        let r = run(o);
        assert!(!r.c.hierarchies().memory_enabled);
        check_common(&r, false);
    }
}

#[test]
fn no_swap_accounting_means_no_swap_series() {
    let mut o = TreeOptions::new(TreeLayout::V1Comounted, 2);
    o.swap_accounting = false;
    let r = run(o);
    check_common(&r, true);
    let o = outlyer(&r.c);
    assert!(!o
        .iter()
        .any(|((f, p), _)| p == "base.swap" && f != "host-finger"));
    assert!(!prom(&r.c).contains("container_memory_swap{"));
}

#[test]
fn exited_container_dropped_then_restart_gives_no_negative_rate() {
    let mut r = run(TreeOptions::new(TreeLayout::V1Comounted, 3));
    let gone_id = r.host.containers[0].id.clone();
    let gone_path = r.host.containers[0].cgroup_path.clone();
    r.host.remove_container(0).unwrap();
    r.host.advance(10.0).unwrap();
    r.c.collect(r.t0 + Duration::from_secs(20), 1_700_000_020.0);
    let text = prom(&r.c);
    assert!(
        !text.contains(&format!("id=\"{gone_path}\"")),
        "exited container still published"
    );
    assert!(text.contains(&format!("id=\"{}\"", r.host.containers[1].cgroup_path)));
    let o = outlyer(&r.c);
    let f0 = r.host.container_info(0).fingerprint;
    assert!(!o.keys().any(|(f, _)| *f == f0));
    // The event loop untracks it on `die`.
    r.c.untrack(&gone_id);
    assert_eq!(r.c.len(), 2);

    // Container 1 restarts: counters go down; rates are skipped once, never negative.
    r.host.reset_counters(1).unwrap();
    r.c.collect(r.t0 + Duration::from_secs(30), 1_700_000_030.0);
    let o = outlyer(&r.c);
    let f1 = r.host.container_info(1).fingerprint;
    assert_eq!(o.get(&(f1.clone(), "base.cpu".into())), None);
    assert_eq!(
        o.get(&(f1.clone(), "base.network.bytes_recv_per_sec".into())),
        None
    );
    assert_eq!(
        o.get(&(f1.clone(), "base.count".into())).copied(),
        Some(1.0)
    );
    for v in o.values() {
        assert!(*v >= 0.0);
    }
    r.host.advance(10.0).unwrap();
    r.c.collect(r.t0 + Duration::from_secs(40), 1_700_000_040.0);
    let o = outlyer(&r.c);
    let cpu = o.get(&(f1, "base.cpu".into())).copied().unwrap();
    assert!((cpu - 25.0).abs() < 0.5, "{cpu}");
}

#[test]
fn tracked_container_shows_at_once_with_counters_but_no_rates() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, 1)).unwrap();
    let mut c = Collector::new(host.rootfs(), "h");
    c.track(&host.container_info(0), Instant::now(), 1.0);
    let text = prom(&c);
    assert!(text.contains("container_cpu_usage_seconds_total{"));
    let o = outlyer(&c);
    let f = host.container_info(0).fingerprint;
    assert!(o.contains_key(&(f.clone(), "base.vmem.used".into())));
    assert!(!o.contains_key(&(f, "base.cpu".into())));
    assert!(path_index("base.cpu").is_some());
}

#[test]
fn tcp_states_are_opt_in() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, 1)).unwrap();
    let mut c = Collector::new(host.rootfs(), "h");
    c.track(&host.container_info(0), Instant::now(), 1.0);
    let text = prom(&c);
    assert!(text.contains("container_network_receive_bytes_total{"));
    assert!(!text.contains("container_network_tcp_usage_total"));
}

#[test]
fn host_network_container_gets_no_network_series() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, 1)).unwrap();
    let mut c = Collector::new(host.rootfs(), "h");
    let mut info = host.container_info(0);
    info.network_mode = "host".into();
    c.track(&info, Instant::now(), 1.0);
    let text = prom(&c);
    assert!(text.contains("container_cpu_usage_seconds_total{"));
    assert!(!text.contains("container_network_"));
    let o = outlyer(&c);
    assert!(!o
        .keys()
        .any(|(f, p)| *f == info.fingerprint && p.starts_with("base.network")));
}

#[test]
fn update_info_relabels_without_reopening() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, 1)).unwrap();
    let mut c = Collector::new(host.rootfs(), "h");
    let mut info = host.container_info(0);
    c.track(&info, Instant::now(), 1.0);
    info.name = "renamed".into();
    c.update_info(&info);
    let text = prom(&c);
    assert!(text.contains("name=\"renamed\""));
    assert!(!text.contains("name=\"synth-0\""));
}

/// `/proc/<tid>/stat` text with the given state and thread count.
fn pid_stat(tid: u32, state: char, threads: u32) -> String {
    format!(
        "{tid} (worker) {state} 1 {tid} {tid} 0 -1 4194560 100 0 0 0 13 7 0 0 20 0 {threads} 0 98765 \
         1327104 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
}

/// Processes, threads and load: a container whose processes are all
/// single-threaded is read from `cgroup.procs` and the processes' states
/// alone; one with a multi-threaded process falls back to the task list and
/// every thread's state.
#[test]
fn threads_and_load_from_processes_or_from_the_task_list() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, 2)).unwrap();
    let root = host.rootfs().to_path_buf();
    let write = |rel: String, body: String| std::fs::write(root.join(rel), body).unwrap();
    // Container 0: two single-threaded processes, one running.
    let (a, b) = (host.containers[0].pid, 20_001);
    std::fs::create_dir_all(root.join(format!("proc/{b}"))).unwrap();
    write(format!("proc/{a}/stat"), pid_stat(a, 'R', 1));
    write(format!("proc/{b}/stat"), pid_stat(b, 'S', 1));
    let cg0 = &host.containers[0].cgroup_path;
    for ctl in ["cpu", "cpuacct"] {
        let d = host.cgroup_dir(ctl, cg0);
        std::fs::write(d.join("cgroup.procs"), format!("{a}\n{b}\n")).unwrap();
        // A stale task list: the single-threaded path must not need it.
        std::fs::write(d.join("tasks"), format!("{a}\n")).unwrap();
    }
    // Container 1: one process with three threads, one running and one in D.
    let p = host.containers[1].pid;
    let tids = [p, 30_001, 30_002];
    for (tid, state) in tids.iter().zip(['S', 'R', 'D']) {
        std::fs::create_dir_all(root.join(format!("proc/{tid}"))).unwrap();
        write(format!("proc/{tid}/stat"), pid_stat(*tid, state, 3));
    }
    let cg1 = &host.containers[1].cgroup_path;
    for ctl in ["cpu", "cpuacct"] {
        let d = host.cgroup_dir(ctl, cg1);
        std::fs::write(d.join("cgroup.procs"), format!("{p}\n")).unwrap();
        std::fs::write(d.join("tasks"), format!("{p}\n30001\n30002\n")).unwrap();
    }

    let mut c = Collector::new(host.rootfs(), "host-finger");
    let t0 = Instant::now();
    for i in 0..2 {
        c.track(&host.container_info(i), t0, 0.0);
    }
    // Ten minutes of 10 s cycles: the 10 s load average settles on the runnable count.
    for k in 1..=60u64 {
        c.collect(t0 + Duration::from_secs(10 * k), 10.0 * k as f64);
    }
    let text = prom(&c);
    let value = |metric: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(metric) && l.contains(&format!("name=\"{name}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {metric} for {name}:\n{text}"))
    };
    let (n0, n1) = (&host.containers[0].name, &host.containers[1].name);
    assert_eq!(value("container_processes{", n0), 2.0);
    assert_eq!(value("container_threads{", n0), 2.0);
    assert!((value("container_cpu_load_average_10s{", n0) - 1.0).abs() < 1e-3);
    assert_eq!(value("container_processes{", n1), 1.0);
    assert_eq!(value("container_threads{", n1), 3.0);
    assert!((value("container_cpu_load_average_10s{", n1) - 2.0).abs() < 1e-3);
}

/// The view written a piece at a time (as /metrics streams it) is the same
/// text as written at once, whatever the piece size, and every piece but the
/// last ends on a whole line.
#[test]
fn prometheus_view_in_pieces_equals_the_whole() {
    let r = run(TreeOptions::new(TreeLayout::V1Comounted, 25));
    let whole = prom(&r.c);
    assert!(whole.matches("# TYPE ").count() > 20, "{whole}");
    for budget in [1, 100, 700, 4096, 1 << 20] {
        let mut cursor = outlyer_agent::metrics::PromCursor::default();
        let mut text = Vec::new();
        let mut pieces = 0;
        loop {
            let before = text.len();
            let done =
                r.c.write_prometheus_some(&mut cursor, &mut text, before + budget);
            pieces += 1;
            assert!(
                text.len() > before || done,
                "an empty piece that is not the last"
            );
            assert!(text.ends_with(b"\n"), "piece {pieces} ends mid-line");
            if done {
                break;
            }
            assert!(pieces < 100_000, "no progress");
        }
        assert_eq!(String::from_utf8(text).unwrap(), whole, "budget {budget}");
        if budget < 4096 {
            assert!(pieces > 10, "budget {budget} gave only {pieces} pieces");
        }
    }
}

/// The uploader's process lists are rebuilt only when a container's
/// processes change: its `cgroup.procs` list, or a process's name.
#[test]
fn processes_changed_follows_the_process_list_and_names() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, 1)).unwrap();
    let root = host.rootfs().to_path_buf();
    let (id, pid) = (host.containers[0].id.clone(), host.containers[0].pid);
    let mut c = Collector::new(host.rootfs(), "host-finger");
    let t0 = Instant::now();
    c.track(&host.container_info(0), t0, 0.0);
    c.collect(t0 + Duration::from_secs(5), 5.0);
    assert!(
        c.processes_changed(&id) && c.processes_changed(&id),
        "off: always"
    );
    c.set_process_fingerprints(true);
    let mut k = 0u64;
    let mut cycle = |c: &mut Collector| {
        k += 1;
        c.collect(t0 + Duration::from_secs(10 * k), 10.0 * k as f64);
    };
    cycle(&mut c);
    assert!(
        c.processes_changed(&id),
        "first look: unknown to the caller"
    );
    assert!(!c.processes_changed(&id), "asked twice in one cycle");
    cycle(&mut c);
    assert!(!c.processes_changed(&id), "nothing changed");
    // A second process joins.
    let extra = 20_002;
    std::fs::create_dir_all(root.join(format!("proc/{extra}"))).unwrap();
    std::fs::write(
        root.join(format!("proc/{extra}/stat")),
        pid_stat(extra, 'S', 1),
    )
    .unwrap();
    let cg = &host.containers[0].cgroup_path;
    std::fs::write(
        host.cgroup_dir("cpuacct", cg).join("cgroup.procs"),
        format!("{pid}\n{extra}\n"),
    )
    .unwrap();
    cycle(&mut c);
    assert!(c.processes_changed(&id), "a process joined");
    cycle(&mut c);
    assert!(!c.processes_changed(&id));
    // The same pid exec's another program: its name changes.
    let renamed = pid_stat(extra, 'S', 1).replace("(worker)", "(nginx)");
    std::fs::write(root.join(format!("proc/{extra}/stat")), renamed).unwrap();
    cycle(&mut c);
    assert!(c.processes_changed(&id), "a process was renamed");
    assert!(c.processes_changed("no-such-container"));
}

/// A cycle read in slices (as the agent does between socket events) gives
/// the very readings a cycle read at once gives, also when a container is
/// dropped and another tracked in the middle of it.
#[test]
fn a_cycle_read_in_slices_equals_one_read_at_once() {
    let mut host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, 10)).unwrap();
    let t0 = Instant::now();
    let mut whole = Collector::new(host.rootfs(), "host");
    let mut sliced = Collector::new(host.rootfs(), "host");
    for i in 0..9 {
        whole.track(&host.container_info(i), t0, 1.0);
        sliced.track(&host.container_info(i), t0, 1.0);
    }
    host.advance(10.0).unwrap();
    let t1 = t0 + std::time::Duration::from_secs(10);
    whole.untrack(&host.container_info(1).id);
    whole.collect(t1, 11.0);
    whole.track(&host.container_info(9), t1, 11.0);

    sliced.begin_cycle(t1, 11.0);
    assert!(sliced.cycle_in_progress());
    assert!(!sliced.continue_cycle(3), "3 of 9 read");
    // Container 1 was read already, container 9 arrives mid-cycle.
    sliced.untrack(&host.container_info(1).id);
    sliced.track(&host.container_info(9), t1, 11.0);
    assert!(!sliced.continue_cycle(3), "6 of 8 read");
    assert!(sliced.continue_cycle(3), "the last two, and done");
    assert!(!sliced.cycle_in_progress());
    assert!(sliced.continue_cycle(3), "nothing left");

    let text = |c: &Collector| {
        let mut out = Vec::new();
        c.write_prometheus(&mut out);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("outlyer_agent_collection_seconds"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert_eq!(text(&sliced), text(&whole));
    let samples = |c: &Collector| {
        let mut v = Vec::new();
        c.for_each_outlyer_sample(|f, p, x| v.push(format!("{f} {p} {x:?}")));
        v
    };
    assert_eq!(samples(&sliced), samples(&whole));
    assert!(text(&whole).contains("synth-8"));
    assert!(!text(&whole).contains("name=\"synth-1\""));
}

/// In a PID namespace of its own (the scratch image) the agent finds a
/// container's processes by scanning the host's. Within the scan budget
/// each new container is scanned for at once and shows its processes with
/// its first reading; past the budget a burst shares one scan at the end of
/// the window, not one scan each.
#[test]
fn foreign_pid_namespace_processes_show_at_once_and_bursts_share_a_scan() {
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, 3)).unwrap();
    let link = host.rootfs().join("proc/self");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("1", &link).unwrap();
    let processes = |c: &Collector, i: usize| {
        let mut out = Vec::new();
        c.write_prometheus(&mut out);
        let name = format!("name=\"synth-{i}\"");
        String::from_utf8(out)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("container_processes{") && l.contains(&name))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    // A few containers on a small host: all within the budget.
    let t0 = Instant::now();
    let mut c = Collector::new(host.rootfs(), "host");
    for i in 0..3 {
        c.track(&host.container_info(i), t0, 1.0);
        assert_eq!(
            processes(&c, i).as_deref(),
            Some("1"),
            "with the first reading"
        );
    }
    assert_eq!(c.deadline(), None);

    // The budget spent (zero here): the first is scanned for, the rest wait.
    let mut c = Collector::new(host.rootfs(), "host");
    c.set_scan_budget(Duration::ZERO);
    c.track(&host.container_info(0), t0, 1.0);
    assert_eq!(processes(&c, 0).as_deref(), Some("1"));
    assert_eq!(c.deadline(), None);
    let t1 = t0 + Duration::from_millis(5);
    c.track(&host.container_info(1), t1, 1.0);
    c.track(&host.container_info(2), t1, 1.0);
    assert_eq!(processes(&c, 1), None, "waits for the shared scan");
    let due = c.deadline().expect("a scan is due");
    assert_eq!(due, t0 + outlyer_agent::metrics::SCAN_NEW_AFTER);
    c.scan_new(due - Duration::from_millis(1));
    assert_eq!(processes(&c, 2), None, "not before the window ends");
    c.scan_new(due);
    assert_eq!(processes(&c, 1).as_deref(), Some("1"));
    assert_eq!(processes(&c, 2).as_deref(), Some("1"));
    assert_eq!(c.deadline(), None);
}
