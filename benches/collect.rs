//! Cost of one collection cycle per container.
//!
//! Synthetic: `cargo bench --bench collect` (100 and 1000 containers, v1 and v2 trees).
//! Real host: `cargo bench --bench collect -- --rootfs / --containers-file F`
//! where F has one `<id> <pid> <network_mode>` line per container
//! (`scripts/bench-collect.sh` writes it). `--cycles N` sets the measured
//! cycles (0 = only set up: the baseline for `strace -c`), `--quiet` prints one line.

use outlyer_agent::metrics::Collector;
use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::sys::process_cpu_seconds;
use outlyer_testkit::{SyntheticHost, TreeLayout, TreeOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// (user, system) CPU seconds of this process, from /proc/self/stat (USER_HZ = 100).
fn user_sys() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // Fields 14 and 15 overall; `rest` starts at field 3.
    (tick(11), tick(12))
}

struct Figures {
    containers: usize,
    cycles: u64,
    wall_per_cycle_us: f64,
    cpu_per_cycle_us: f64,
}

fn measure(c: &mut Collector, cycles: u64, t0: Instant) -> Figures {
    // Warm-up: buffers reach their final size.
    for k in 1..=3u64 {
        c.collect(t0 + Duration::from_secs(k), k as f64);
    }
    let cpu0 = process_cpu_seconds();
    let (u0, s0) = user_sys();
    let w0 = Instant::now();
    for k in 0..cycles {
        c.collect(t0 + Duration::from_secs(10 + k), (10 + k) as f64);
    }
    let wall = w0.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    let (u1, s1) = user_sys();
    let n = cycles.max(1) as f64 * c.len().max(1) as f64;
    println!(
        "  split per container per cycle: user {:.1}us, system {:.1}us",
        (u1 - u0) / n * 1e6,
        (s1 - s0) / n * 1e6
    );
    let n = cycles.max(1) as f64;
    Figures {
        containers: c.len(),
        cycles,
        wall_per_cycle_us: wall / n * 1e6,
        cpu_per_cycle_us: cpu / n * 1e6,
    }
}

fn report(label: &str, f: &Figures) {
    let per = |v: f64| v / f.containers.max(1) as f64;
    let line = format!(
        "{label}: containers={} cycles={} wall/cycle={:.1}us cpu/cycle={:.1}us wall/container={:.2}us cpu/container={:.2}us rss={}KiB",
        f.containers,
        f.cycles,
        f.wall_per_cycle_us,
        f.cpu_per_cycle_us,
        per(f.wall_per_cycle_us),
        per(f.cpu_per_cycle_us),
        rss_kib()
    );
    println!("{line}");
}

fn synthetic(layout: TreeLayout, n: usize, cycles: u64, quiet: bool) {
    let host = SyntheticHost::create(TreeOptions::new(layout, n)).expect("synthetic tree");
    let infos: Vec<ContainerInfo> = (0..n).map(|i| host.container_info(i)).collect();
    let rss0 = rss_kib();
    let mut c = Collector::new(host.rootfs(), "bench");
    let t0 = Instant::now();
    for info in &infos {
        c.track(info, t0, 0.0);
    }
    let f = measure(&mut c, cycles, t0);
    assert_eq!(c.published(), n, "every container read");
    report(&format!("synthetic {layout:?}"), &f);
    if quiet {
        return;
    }
    println!(
        "  collector memory: RSS grew {} KiB for {n} containers ({} open fds)",
        rss_kib().saturating_sub(rss0),
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    );
}

fn real(rootfs: &Path, list: &Path, cycles: u64) {
    let text = std::fs::read_to_string(list).expect("containers file");
    let mut c = Collector::new(rootfs, "bench");
    let t0 = Instant::now();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(id), Some(pid)) = (f.next(), f.next()) else {
            continue;
        };
        let info = ContainerInfo {
            id: id.to_string(),
            name: id.get(..12).unwrap_or(id).to_string(),
            pid: pid.parse().unwrap_or(0),
            network_mode: f.next().unwrap_or("bridge").to_string(),
            fingerprint: id.to_string(),
            ..ContainerInfo::default()
        };
        c.track(&info, t0, 0.0);
    }
    if cycles == 0 {
        println!(
            "setup only: containers={} published={}",
            c.len(),
            c.published()
        );
        return;
    }
    let f = measure(&mut c, cycles, t0);
    assert_eq!(c.published(), c.len(), "every container read");
    report("real", &f);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quiet = args.iter().any(|a| a == "--quiet");
    let cycles: Option<u64> = arg("--cycles").and_then(|v| v.parse().ok());
    if let Some(list) = arg("--containers-file") {
        let rootfs = PathBuf::from(arg("--rootfs").unwrap_or_else(|| "/".into()));
        real(&rootfs, Path::new(&list), cycles.unwrap_or(200));
        return;
    }
    let sizes: Vec<usize> = match arg("--containers") {
        Some(v) => vec![v.parse().expect("--containers N")],
        None => vec![100, 1000],
    };
    for layout in [TreeLayout::V1Comounted, TreeLayout::V2] {
        for &n in &sizes {
            let cycles = cycles.unwrap_or(if n >= 1000 { 20 } else { 200 });
            synthetic(layout, n, cycles, quiet);
        }
    }
}
