//! The collector over a tree captured from the local Docker daemon
//! (cgroup v1, cpu and cpuacct mounted apart, a controller-less unified
//! mount, cgroupfs driver; `tests/fixtures/trees/capture.sh`). Expected
//! values are read from the captured files themselves.

use outlyer_agent::cgroup::mounts::Layout;
use outlyer_agent::metrics::Collector;
use outlyer_agent::registry::ContainerInfo;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trees/v1-hybrid-docker20")
}

fn file_u64(rel: &str) -> u64 {
    std::fs::read_to_string(tree().join(rel))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn stat_key(rel: &str, key: &str) -> u64 {
    std::fs::read_to_string(tree().join(rel))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap()
}

/// (info, role) for each captured container.
fn containers() -> Vec<(ContainerInfo, String)> {
    std::fs::read_to_string(tree().join("containers"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let info = ContainerInfo {
                id: f[0].into(),
                pid: f[1].parse().unwrap(),
                name: format!("captured-{}", f[2]),
                image: "localbusy:latest".into(),
                network_mode: f[3].into(),
                fingerprint: format!("finger-{}", f[2]),
                ..ContainerInfo::default()
            };
            (info, f[2].to_string())
        })
        .collect()
}

fn sample(text: &str, family: &str, id: &str) -> Option<String> {
    let label = format!("id=\"/docker/{id}\"");
    text.lines()
        .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

#[test]
fn captured_v1_hybrid_tree() {
    let mut c = Collector::new(&tree(), "host");
    let h = c.hierarchies();
    assert_eq!(h.layout, Layout::Hybrid);
    assert!(h.cpu.as_ref().unwrap().path.ends_with("sys/fs/cgroup/cpu"));
    assert!(h
        .cpuacct
        .as_ref()
        .unwrap()
        .path
        .ends_with("sys/fs/cgroup/cpuacct"));
    assert!(h.memory_enabled);
    let cs = containers();
    assert_eq!(cs.len(), 2);
    for (info, _) in &cs {
        c.track(info, Instant::now(), 1.0);
        assert_eq!(
            c.cgroup_path(&info.id),
            Some(format!("/docker/{}", info.id).as_str())
        );
    }
    let mut out = Vec::new();
    c.write_prometheus(&mut out);
    let text = String::from_utf8(out).unwrap();
    for (info, role) in &cs {
        let id = &info.id;
        let usage = file_u64(&format!("sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"));
        let got: f64 = sample(&text, "container_cpu_usage_seconds_total", id)
            .unwrap()
            .parse()
            .unwrap();
        assert!((got - usage as f64 / 1e9).abs() < 1e-9, "{got} vs {usage}");
        let mem = format!("sys/fs/cgroup/memory/docker/{id}");
        let used = file_u64(&format!("{mem}/memory.usage_in_bytes"));
        let inactive = stat_key(&format!("{mem}/memory.stat"), "total_inactive_file");
        assert_eq!(
            sample(&text, "container_memory_working_set_bytes", id),
            Some(used.saturating_sub(inactive).to_string())
        );
        assert_eq!(
            sample(&text, "container_memory_rss", id),
            Some(stat_key(&format!("{mem}/memory.stat"), "total_rss").to_string())
        );
        let limit = if role == "mem" { "67108864" } else { "0" };
        assert_eq!(
            sample(&text, "container_spec_memory_limit_bytes", id).as_deref(),
            Some(limit)
        );
        assert_eq!(
            sample(&text, "container_processes", id).as_deref(),
            Some("1")
        );
        assert!(sample(&text, "container_network_receive_bytes_total", id).is_some());
    }
    // Base view: the 64 MiB container's total is its limit; without a limit, host RAM.
    let mut totals = std::collections::HashMap::new();
    c.for_each_outlyer_sample(|f, p, v| {
        if p == "base.vmem.total" {
            totals.insert(f.to_string(), v);
        }
    });
    assert_eq!(totals.get("finger-mem"), Some(&67_108_864.0));
    let meminfo = std::fs::read_to_string(tree().join("proc/meminfo")).unwrap();
    let host_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(totals.get("finger-spin"), Some(&(host_kib * 1024.0)));
}
