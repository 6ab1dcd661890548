//! The Outlyer view (`base.*`, docs/metrics.md §1): derived from two readings.

use super::reading::*;

/// Every Outlyer path, in a fixed order; `Values` is indexed by it.
pub const OUTLYER_PATHS: [&str; 46] = [
    "base.count",
    "base.cpu",
    "base.cpu.cores",
    "base.cpu.user",
    "base.cpu.system",
    "base.memory",
    "base.swap",
    "base.vmem.used",
    "base.vmem.total",
    "base.vmem.available",
    "base.vmem.percent",
    "base.vmem.cached",
    "base.vmem.active",
    "base.vmem.inactive",
    "base.vmem.used_gb",
    "base.vmem.total_gb",
    "base.vmem.available_gb",
    "base.network.bytes_recv",
    "base.network.bytes_sent",
    "base.network.packets_recv",
    "base.network.packets_sent",
    "base.network.errin",
    "base.network.errout",
    "base.network.dropin",
    "base.network.dropout",
    "base.network.bytes_recv_per_sec",
    "base.network.bytes_sent_per_sec",
    "base.network.packets_recv_per_sec",
    "base.network.packets_sent_per_sec",
    "base.network.errin_per_sec",
    "base.network.errout_per_sec",
    "base.network.dropin_per_sec",
    "base.network.dropout_per_sec",
    "base.net_download",
    "base.net_upload",
    "base.disk.read_bytes",
    "base.disk.write_bytes",
    "base.disk.read_count",
    "base.disk.write_count",
    "base.disk.read_bytes_per_sec",
    "base.disk.write_bytes_per_sec",
    "base.disk.read_count_per_sec",
    "base.disk.write_count_per_sec",
    "base.load_1_min",
    "base.load_5_min",
    "base.load_15_min",
];

const COUNT: usize = 0;
const CPU: usize = 1;
const CPU_CORES: usize = 2;
const CPU_USER: usize = 3;
const CPU_SYSTEM: usize = 4;
const MEMORY: usize = 5;
const SWAP: usize = 6;
const VMEM_USED: usize = 7;
const VMEM_TOTAL: usize = 8;
const VMEM_AVAILABLE: usize = 9;
const VMEM_PERCENT: usize = 10;
const VMEM_CACHED: usize = 11;
const VMEM_ACTIVE: usize = 12;
const VMEM_INACTIVE: usize = 13;
const VMEM_USED_GB: usize = 14;
const VMEM_TOTAL_GB: usize = 15;
const VMEM_AVAILABLE_GB: usize = 16;
const NET_FIRST: usize = 17;
const NET_RATE_FIRST: usize = 25;
const NET_DOWNLOAD: usize = 33;
const NET_UPLOAD: usize = 34;
const DISK_FIRST: usize = 35;
const DISK_RATE_FIRST: usize = 39;
const LOAD_FIRST: usize = 43;

/// Order of the eight network paths against the [`Net`] counter indices.
const NET_ORDER: [usize; 8] = [
    NET_RX_BYTES,
    NET_TX_BYTES,
    NET_RX_PACKETS,
    NET_TX_PACKETS,
    NET_RX_ERRS,
    NET_TX_ERRS,
    NET_RX_DROP,
    NET_TX_DROP,
];

/// One value per path, with a presence mask.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Values {
    v: [f64; OUTLYER_PATHS.len()],
    set: u64,
}

impl Default for Values {
    fn default() -> Values {
        Values {
            v: [0.0; OUTLYER_PATHS.len()],
            set: 0,
        }
    }
}

impl Values {
    pub(crate) fn clear(&mut self) {
        self.set = 0;
    }

    fn put(&mut self, i: usize, v: f64) {
        if v.is_finite() && i < OUTLYER_PATHS.len() {
            self.v[i] = v;
            self.set |= 1 << i;
        }
    }

    fn put_opt(&mut self, i: usize, v: Option<f64>) {
        if let Some(v) = v {
            self.put(i, v);
        }
    }

    /// The value of a path index, if present.
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        (self.set & (1 << i) != 0).then(|| self.v[i])
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&'static str, f64)) {
        for (i, path) in OUTLYER_PATHS.iter().enumerate() {
            if let Some(v) = self.get(i) {
                f(path, v);
            }
        }
    }
}

/// Rounds to 2 decimals (the `_gb` paths).
fn gb(bytes: f64) -> f64 {
    (bytes / (1u64 << 30) as f64 * 100.0).round() / 100.0
}

/// A counter's increase, `None` when it went down (a restart): no negative rate, ever.
fn delta(cur: u64, prev: u64) -> Option<u64> {
    cur.checked_sub(prev)
}

fn rate(cur: u64, prev: u64, secs: f64) -> Option<f64> {
    if secs <= 0.0 {
        return None;
    }
    delta(cur, prev).map(|d| d as f64 / secs)
}

/// CPU percent of one core: Δns / Δhost_ns × online CPUs × 100.
fn cpu_pct(cur: Option<u64>, prev: Option<u64>, host_delta_ns: f64, cpus: u32) -> Option<f64> {
    if host_delta_ns <= 0.0 {
        return None;
    }
    let d = delta(cur?, prev?)?;
    Some(d as f64 / host_delta_ns * cpus as f64 * 100.0)
}

fn vmem(
    out: &mut Values,
    used: u64,
    total: u64,
    cached: Option<u64>,
    active: Option<u64>,
    inactive: Option<u64>,
) {
    let available = total.saturating_sub(used);
    out.put(VMEM_USED, used as f64);
    out.put(VMEM_TOTAL, total as f64);
    out.put(VMEM_AVAILABLE, available as f64);
    if total > 0 {
        let pct = used as f64 / total as f64 * 100.0;
        out.put(MEMORY, pct);
        out.put(VMEM_PERCENT, pct);
    }
    out.put_opt(VMEM_CACHED, cached.map(|v| v as f64));
    out.put_opt(VMEM_ACTIVE, active.map(|v| v as f64));
    out.put_opt(VMEM_INACTIVE, inactive.map(|v| v as f64));
    out.put(VMEM_USED_GB, gb(used as f64));
    out.put(VMEM_TOTAL_GB, gb(total as f64));
    out.put(VMEM_AVAILABLE_GB, gb(available as f64));
}

fn network(out: &mut Values, cur: &[u64; 8], prev: Option<&[u64; 8]>, secs: f64) {
    for (k, &c) in NET_ORDER.iter().enumerate() {
        out.put(NET_FIRST + k, cur[c] as f64);
        if let Some(p) = prev {
            out.put_opt(NET_RATE_FIRST + k, rate(cur[c], p[c], secs));
        }
    }
    if let Some(v) = out.get(NET_RATE_FIRST) {
        out.put(NET_DOWNLOAD, v / 1024.0);
    }
    if let Some(v) = out.get(NET_RATE_FIRST + 1) {
        out.put(NET_UPLOAD, v / 1024.0);
    }
}

/// Inputs for a container's Outlyer values besides its two readings.
pub(crate) struct HostContext {
    pub mem_total: Option<u64>,
    pub swap_total: Option<u64>,
}

/// Fills `out` from a container's current and previous readings.
pub(crate) fn container_values(
    out: &mut Values,
    cur: &Reading,
    prev: &RateBase,
    spec: &Spec,
    load: &[f64; 4],
    host: &HostContext,
) {
    out.clear();
    out.put(COUNT, 1.0);
    let secs = match (cur.at, prev.at) {
        (Some(c), Some(p)) if c > p => c.duration_since(p).as_secs_f64(),
        _ => 0.0,
    };
    let has_prev = secs > 0.0;
    let cpus = cur.online_cpus;
    if cpus > 0 {
        out.put(CPU_CORES, cpus as f64);
    }
    if has_prev {
        let host_delta_ns = cur.host_ticks.saturating_sub(prev.host_ticks) as f64 * 1e7;
        out.put_opt(CPU, cpu_pct(cur.cpu_ns, prev.cpu_ns, host_delta_ns, cpus));
        out.put_opt(
            CPU_USER,
            cpu_pct(cur.user_ns, prev.user_ns, host_delta_ns, cpus),
        );
        out.put_opt(
            CPU_SYSTEM,
            cpu_pct(cur.system_ns, prev.system_ns, host_delta_ns, cpus),
        );
    }
    if let Some(m) = &cur.mem {
        let host_total = host.mem_total.unwrap_or(0);
        let total = match spec.mem_limit.and_then(|l| l.value()) {
            Some(l) if host_total == 0 || l < host_total => l,
            _ => host_total,
        };
        vmem(out, m.working_set, total, m.cache, m.active, m.inactive);
        if let Some(swap) = m.swap {
            let swap_limit = spec.swap_limit.and_then(|l| l.value());
            let limit = match (swap_limit, spec.mem_limit.and_then(|l| l.value())) {
                // v1 memsw limit covers memory + swap.
                (Some(sw), Some(mem)) if spec.swap_limit_includes_memory => sw.checked_sub(mem),
                (Some(_), None) if spec.swap_limit_includes_memory => host.swap_total,
                (Some(sw), _) => Some(sw),
                _ => host.swap_total,
            };
            if let Some(limit) = limit.filter(|l| *l > 0) {
                out.put(SWAP, swap as f64 / limit as f64 * 100.0);
            }
        }
    }
    if let Some(n) = &cur.net {
        let p = if has_prev { prev.net.as_ref() } else { None };
        network(out, n, p, secs);
    }
    if let Some(b) = &cur.blk {
        for k in 0..4 {
            out.put(DISK_FIRST + k, b[k] as f64);
            if let (true, Some(p)) = (has_prev, &prev.blk) {
                out.put_opt(DISK_RATE_FIRST + k, rate(b[k], p[k], secs));
            }
        }
    }
    if cur.runnable.is_some() {
        for k in 0..3 {
            out.put(LOAD_FIRST + k, load[k + 1]);
        }
    }
}

/// Fills `out` from the host's current and previous readings.
pub(crate) fn host_values(out: &mut Values, cur: &HostReading, prev: &HostReading) {
    out.clear();
    out.put(COUNT, 1.0);
    let cpus = cur.online_cpus;
    if cpus > 0 {
        out.put(CPU_CORES, cpus as f64);
    }
    let secs = match (cur.at, prev.at) {
        (Some(c), Some(p)) if c > p => c.duration_since(p).as_secs_f64(),
        _ => 0.0,
    };
    if secs > 0.0 && prev.docker_ticks > 0 {
        let total = cur.docker_ticks.saturating_sub(prev.docker_ticks) as f64 * 1e7;
        let ns = |t: u64| Some(t.saturating_mul(10_000_000));
        out.put_opt(
            CPU,
            cpu_pct(ns(cur.busy_ticks), ns(prev.busy_ticks), total, cpus),
        );
        out.put_opt(
            CPU_USER,
            cpu_pct(ns(cur.user_ticks), ns(prev.user_ticks), total, cpus),
        );
        out.put_opt(
            CPU_SYSTEM,
            cpu_pct(ns(cur.system_ticks), ns(prev.system_ticks), total, cpus),
        );
    }
    if let (Some(total), Some(avail)) = (cur.mem_total, cur.mem_available) {
        vmem(
            out,
            total.saturating_sub(avail),
            total,
            cur.cached,
            cur.active,
            cur.inactive,
        );
    }
    if let (Some(t), Some(f)) = (cur.swap_total, cur.swap_free) {
        if t > 0 {
            out.put(SWAP, t.saturating_sub(f) as f64 / t as f64 * 100.0);
        }
    }
    if let Some(n) = &cur.net {
        let p = prev.net.as_ref().map(|p| &p.total);
        network(out, &n.total, if secs > 0.0 { p } else { None }, secs);
    }
    if let Some(l) = cur.load {
        for (k, v) in l.iter().enumerate() {
            out.put(LOAD_FIRST + k, *v);
        }
    }
}

/// Index of a path in [`OUTLYER_PATHS`].
pub fn path_index(path: &str) -> Option<usize> {
    OUTLYER_PATHS.iter().position(|p| *p == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cpu_percent_like_docker_stats() {
        // docs/metrics.md §1 worked example: 4 CPUs, Δusage 0.5 s, Δsystem 4 s → 50 %.
        let t0 = Instant::now();
        let prev = Reading {
            at: Some(t0),
            host_ticks: 1000,
            online_cpus: 4,
            cpu_ns: Some(1_000_000_000),
            ..Reading::default()
        };
        let cur = Reading {
            at: Some(t0 + Duration::from_secs(1)),
            host_ticks: 1400,
            online_cpus: 4,
            cpu_ns: Some(1_500_000_000),
            ..Reading::default()
        };
        let mut v = Values::default();
        let host = HostContext {
            mem_total: Some(1 << 34),
            swap_total: None,
        };
        container_values(
            &mut v,
            &cur,
            &RateBase::of(&prev),
            &Spec::default(),
            &[0.0; 4],
            &host,
        );
        let cpu = v.get(path_index("base.cpu").unwrap()).unwrap();
        assert!((cpu - 50.0).abs() < 1e-9, "{cpu}");
        assert_eq!(v.get(path_index("base.cpu.cores").unwrap()), Some(4.0));
        assert_eq!(v.get(path_index("base.count").unwrap()), Some(1.0));
    }

    #[test]
    fn counter_going_down_gives_no_rate() {
        let t0 = Instant::now();
        let mut net = Net::default();
        net.add(b"eth0", [1000, 10, 0, 0, 500, 5, 0, 0]);
        let prev = Reading {
            at: Some(t0),
            host_ticks: 1000,
            online_cpus: 2,
            cpu_ns: Some(5_000_000_000),
            net: Some(net.total),
            ..Reading::default()
        };
        let mut net2 = Net::default();
        net2.add(b"eth0", [100, 1, 0, 0, 600, 6, 0, 0]);
        let cur = Reading {
            at: Some(t0 + Duration::from_secs(2)),
            host_ticks: 1400,
            online_cpus: 2,
            cpu_ns: Some(1_000),
            net: Some(net2.total),
            ..Reading::default()
        };
        let mut v = Values::default();
        let host = HostContext {
            mem_total: None,
            swap_total: None,
        };
        container_values(
            &mut v,
            &cur,
            &RateBase::of(&prev),
            &Spec::default(),
            &[0.0; 4],
            &host,
        );
        assert_eq!(v.get(path_index("base.cpu").unwrap()), None);
        assert_eq!(
            v.get(path_index("base.network.bytes_recv_per_sec").unwrap()),
            None
        );
        assert_eq!(v.get(path_index("base.net_download").unwrap()), None);
        assert_eq!(
            v.get(path_index("base.network.bytes_sent_per_sec").unwrap()),
            Some(50.0)
        );
        assert_eq!(
            v.get(path_index("base.network.bytes_recv").unwrap()),
            Some(100.0)
        );
    }

    #[test]
    fn memory_total_is_limit_or_host() {
        let cur = Reading {
            mem: Some(Mem {
                usage: 80 << 20,
                working_set: 32 << 20,
                ..Mem::default()
            }),
            ..Reading::default()
        };
        let spec = Spec {
            mem_limit: Some(crate::cgroup::parse::Limit::Bytes(64 << 20)),
            ..Spec::default()
        };
        let host = HostContext {
            mem_total: Some(1 << 30),
            swap_total: None,
        };
        let mut v = Values::default();
        container_values(&mut v, &cur, &RateBase::default(), &spec, &[0.0; 4], &host);
        assert_eq!(
            v.get(path_index("base.vmem.total").unwrap()),
            Some((64 << 20) as f64)
        );
        assert_eq!(v.get(path_index("base.memory").unwrap()), Some(50.0));
        assert_eq!(v.get(path_index("base.vmem.used_gb").unwrap()), Some(0.03));
        let unlimited = Spec {
            mem_limit: Some(crate::cgroup::parse::Limit::Bytes(1 << 40)),
            ..Spec::default()
        };
        container_values(
            &mut v,
            &cur,
            &RateBase::default(),
            &unlimited,
            &[0.0; 4],
            &host,
        );
        assert_eq!(
            v.get(path_index("base.vmem.total").unwrap()),
            Some((1u64 << 30) as f64)
        );
        // No previous reading: no rates at all.
        assert_eq!(v.get(path_index("base.cpu").unwrap()), None);
    }
}
