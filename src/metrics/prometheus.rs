//! The Prometheus view (text format 0.0.4), cAdvisor names and labels.
//!
//! Two cAdvisor families break the `promtool check metrics` naming lint
//! (`container_memory_failcnt` is a counter without `_total`,
//! `container_network_tcp_usage_total` a gauge with it); they keep their
//! cAdvisor names, which dashboards query, and are typed `untyped`.

use super::exposition::Family;
use super::reading::*;
use super::state::Tracked;
use crate::cgroup::parse::Limit;
use crate::procfs::parse::TCP_STATE_NAMES;
use std::io::Write as _;

/// What the view is rendered from: the collector's latest state.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub containers: &'a [Tracked],
    pub host: &'a HostReading,
    /// Duration of the last collection cycle.
    pub last_cycle_secs: Option<f64>,
    /// Reads whose content was unusable, since start.
    pub read_errors: u64,
}

/// One sample of `fam` with a container's labels (`id` first, when its
/// cgroup is resolved) and one more label; none when `v` is not finite.
fn sample(
    out: &mut Vec<u8>,
    fam: &mut Family,
    t: Option<&Tracked>,
    extra: Option<(&str, &str)>,
    v: f64,
) {
    if !v.is_finite() {
        return;
    }
    let mut s = fam.sample(out);
    if let Some(t) = t {
        if let Some(id) = t.cgroup_path.as_deref() {
            s = s.label("id", id);
        }
        s = s.labels(&t.label_rest);
    }
    if let Some((k, val)) = extra {
        s = s.label(k, val);
    }
    s.value(v);
}

type Getter = fn(&Tracked) -> Option<f64>;

fn limit_or_zero(l: Option<Limit>) -> Option<f64> {
    l.map(|l| l.value().unwrap_or(0) as f64)
}

/// Families with one sample per container: (name, type, help, getter).
const SCALARS: &[(&str, &str, &str, Getter)] = &[
    (
        "container_cpu_user_seconds_total",
        "counter",
        "Cumulative user cpu time consumed in seconds.",
        |t| t.cur.user_ns.map(|v| v as f64 / 1e9),
    ),
    (
        "container_cpu_system_seconds_total",
        "counter",
        "Cumulative system cpu time consumed in seconds.",
        |t| t.cur.system_ns.map(|v| v as f64 / 1e9),
    ),
    (
        "container_cpu_cfs_periods_total",
        "counter",
        "Number of elapsed enforcement period intervals.",
        |t| {
            // Only meaningful (and only reported by cAdvisor) with a quota.
            match t.spec.cpu_quota {
                Some(Limit::Bytes(_)) => t.cur.cfs_periods.map(|v| v as f64),
                _ => None,
            }
        },
    ),
    (
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        "Number of throttled period intervals.",
        |t| match t.spec.cpu_quota {
            Some(Limit::Bytes(_)) => t.cur.cfs_throttled.map(|v| v as f64),
            _ => None,
        },
    ),
    (
        "container_cpu_cfs_throttled_seconds_total",
        "counter",
        "Total time duration the container has been throttled.",
        |t| match t.spec.cpu_quota {
            Some(Limit::Bytes(_)) => t.cur.cfs_throttled_ns.map(|v| v as f64 / 1e9),
            _ => None,
        },
    ),
    (
        "container_memory_usage_bytes",
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed.",
        |t| t.cur.mem.map(|m| m.usage as f64),
    ),
    (
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set in bytes.",
        |t| t.cur.mem.map(|m| m.working_set as f64),
    ),
    (
        "container_memory_rss",
        "gauge",
        "Size of RSS in bytes.",
        |t| t.cur.mem.and_then(|m| m.rss).map(|v| v as f64),
    ),
    (
        "container_memory_cache",
        "gauge",
        "Number of bytes of page cache memory.",
        |t| t.cur.mem.and_then(|m| m.cache).map(|v| v as f64),
    ),
    (
        "container_memory_swap",
        "gauge",
        "Container swap usage in bytes.",
        |t| t.cur.mem.and_then(|m| m.swap).map(|v| v as f64),
    ),
    (
        "container_memory_mapped_file",
        "gauge",
        "Size of memory mapped files in bytes.",
        |t| t.cur.mem.and_then(|m| m.mapped_file).map(|v| v as f64),
    ),
    (
        "container_memory_max_usage_bytes",
        "gauge",
        "Maximum memory usage recorded in bytes.",
        |t| t.cur.mem.and_then(|m| m.max_usage).map(|v| v as f64),
    ),
    (
        "container_memory_failcnt",
        "untyped",
        "Number of memory usage hits limits.",
        |t| t.cur.mem.and_then(|m| m.failcnt).map(|v| v as f64),
    ),
    (
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container.",
        |t| t.cur.mem.and_then(|m| m.oom_kills).map(|v| v as f64),
    ),
    (
        "container_spec_memory_limit_bytes",
        "gauge",
        "Memory limit for the container.",
        |t| {
            t.cur.mem?;
            limit_or_zero(t.spec.mem_limit)
        },
    ),
    (
        "container_spec_cpu_quota",
        "gauge",
        "CPU quota of the container.",
        |t| match t.spec.cpu_quota {
            Some(Limit::Bytes(q)) => Some(q as f64),
            _ => None,
        },
    ),
    (
        "container_spec_cpu_period",
        "gauge",
        "CPU period of the container.",
        |t| t.spec.cpu_period.map(|v| v as f64),
    ),
    (
        "container_processes",
        "gauge",
        "Number of processes running inside the container.",
        |t| t.cur.processes.map(|v| v as f64),
    ),
    (
        "container_threads",
        "gauge",
        "Number of threads running inside the container.",
        |t| t.cur.threads.map(|v| v as f64),
    ),
    (
        "container_threads_max",
        "gauge",
        "Maximum number of threads allowed inside the container, infinity if value is zero.",
        |t| limit_or_zero(t.spec.threads_max),
    ),
    (
        "container_cpu_load_average_10s",
        "gauge",
        "Value of container cpu load average over the last 10 seconds.",
        |t| t.cur.runnable.map(|_| t.load[0]),
    ),
    (
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds.",
        |t| (t.started_at > 0.0).then_some(t.started_at),
    ),
    (
        "container_last_seen",
        "gauge",
        "Last time a container was seen by the exporter.",
        |t| Some(t.last_seen),
    ),
];

/// Per-interface network families: (name, help, counter index).
const NET: &[(&str, &str, usize)] = &[
    (
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received.",
        NET_RX_BYTES,
    ),
    (
        "container_network_receive_packets_total",
        "Cumulative count of packets received.",
        NET_RX_PACKETS,
    ),
    (
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving.",
        NET_RX_DROP,
    ),
    (
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving.",
        NET_RX_ERRS,
    ),
    (
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted.",
        NET_TX_BYTES,
    ),
    (
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted.",
        NET_TX_PACKETS,
    ),
    (
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting.",
        NET_TX_DROP,
    ),
    (
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting.",
        NET_TX_ERRS,
    ),
];

/// Per-device block IO families: (name, help, counter index).
const FS: &[(&str, &str, usize)] = &[
    (
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read.",
        BLK_READ_BYTES,
    ),
    (
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written.",
        BLK_WRITE_BYTES,
    ),
    (
        "container_fs_reads_total",
        "Cumulative count of reads completed.",
        BLK_READS,
    ),
    (
        "container_fs_writes_total",
        "Cumulative count of writes completed.",
        BLK_WRITES,
    ),
];

/// Where a rendering of the view stands, so a large one can be written a
/// piece at a time as the socket drains: the family and the next container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    family: usize,
    container: usize,
}

/// The per-container families in output order: the CPU usage, the scalars,
/// the per-interface, TCP-state and per-device families.
const CPU_FAMILIES: usize = 1;
const CONTAINER_FAMILIES: usize = CPU_FAMILIES + SCALARS.len() + NET.len() + 1 + FS.len();

/// Writes family `f`'s samples of container `t` (header first when the
/// family has none yet).
fn container_family(
    out: &mut Vec<u8>,
    fam: &mut Family,
    f: usize,
    t: &Tracked,
    dev: &mut [u8; 24],
) {
    let l = Some(t);
    let mut f = f;
    if f < CPU_FAMILIES {
        if let Some(ns) = t.cur.cpu_ns {
            sample(out, fam, l, Some(("cpu", "total")), ns as f64 / 1e9);
        }
        return;
    }
    f -= CPU_FAMILIES;
    if let Some((_, _, _, get)) = SCALARS.get(f) {
        if let Some(v) = get(t) {
            sample(out, fam, l, None, v);
        }
        return;
    }
    f -= SCALARS.len();
    if let Some((_, _, k)) = NET.get(f) {
        if t.cur.net.is_some() {
            for i in &t.detail.ifaces {
                sample(out, fam, l, Some(("interface", i.name())), i.c[*k] as f64);
            }
        }
        return;
    }
    f -= NET.len();
    if f == 0 {
        if let Some(s) = &t.detail.tcp {
            for (state, count) in TCP_STATE_NAMES.iter().zip(s.counts.iter()) {
                sample(out, fam, l, Some(("tcp_state", state)), *count as f64);
            }
        }
        return;
    }
    f -= 1;
    if let Some((_, _, k)) = FS.get(f) {
        if t.cur.blk.is_some() {
            for d in &t.detail.devs {
                let mut cur = std::io::Cursor::new(&mut dev[..]);
                let _ = write!(cur, "{}:{}", d.major, d.minor);
                let len = cur.position() as usize;
                let dev_name = std::str::from_utf8(dev.get(..len).unwrap_or(&[])).unwrap_or("");
                sample(out, fam, l, Some(("device", dev_name)), d.c[*k] as f64);
            }
        }
    }
}

/// (name, type, help) of per-container family `f`.
fn container_family_meta(f: usize) -> (&'static str, &'static str, &'static str) {
    let mut f = f;
    if f < CPU_FAMILIES {
        return (
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed in seconds.",
        );
    }
    f -= CPU_FAMILIES;
    if let Some((name, kind, help, _)) = SCALARS.get(f) {
        return (name, kind, help);
    }
    f -= SCALARS.len();
    if let Some((name, help, _)) = NET.get(f) {
        return (name, "counter", help);
    }
    f -= NET.len();
    if f == 0 {
        return (
            "container_network_tcp_usage_total",
            "untyped",
            "tcp connection usage statistic for container",
        );
    }
    f -= 1;
    match FS.get(f) {
        Some((name, help, _)) => (name, "counter", help),
        None => ("", "", ""),
    }
}

/// Appends the view from `cur` on until `out` holds at least `budget` bytes
/// (whole containers only) or the view is complete; true when complete.
/// Successive calls with the same cursor produce the same text as one call
/// with an unbounded budget, as long as the containers do not change in
/// between (a container that leaves is then missing from later families, one
/// that arrives is in later families only; no sample repeats).
pub(super) fn write_some(c: View<'_>, cur: &mut Cursor, out: &mut Vec<u8>, budget: usize) -> bool {
    let mut dev = [0u8; 24];
    while cur.family < CONTAINER_FAMILIES {
        let (name, kind, help) = container_family_meta(cur.family);
        // A family resumed in a later piece has its header out already.
        let mut fam = Family {
            name,
            kind,
            help,
            header: cur.container > 0,
        };
        while let Some(t) = c.containers.get(cur.container) {
            cur.container += 1;
            if t.ok {
                container_family(out, &mut fam, cur.family, t, &mut dev);
            }
            if out.len() >= budget && fam.header {
                // Resume here; a family with no sample yet starts over cleanly.
                return false;
            }
        }
        cur.family += 1;
        cur.container = 0;
    }
    if cur.family == CONTAINER_FAMILIES {
        write_host(c, out);
        cur.family += 1;
    }
    true
}

pub(super) fn write(c: View<'_>, out: &mut Vec<u8>) {
    write_some(c, &mut Cursor::default(), out, usize::MAX);
}

fn write_host(c: View<'_>, out: &mut Vec<u8>) {
    let h = c.host;
    let host = [
        (
            "machine_cpu_cores",
            "Number of logical CPU cores.",
            (h.online_cpus > 0).then_some(h.online_cpus as f64),
        ),
        (
            "machine_memory_bytes",
            "Amount of memory installed on the machine.",
            h.mem_total.map(|m| m as f64),
        ),
        (
            "outlyer_agent_collection_seconds",
            "Time the last collection cycle spent reading files, in seconds (a cycle is read in slices between socket events; the waits are not counted).",
            c.last_cycle_secs,
        ),
    ];
    for (name, help, v) in host {
        if let Some(v) = v {
            let mut fam = Family::new(name, "gauge", help);
            sample(out, &mut fam, None, None, v);
        }
    }
    let mut fam = Family::new(
        "outlyer_agent_read_errors_total",
        "counter",
        "Cgroup and proc file reads whose content was unusable (an I/O error, too large, cut short, or not parsable); the metrics they carry are omitted for that cycle.",
    );
    sample(out, &mut fam, None, None, c.read_errors as f64);
}
