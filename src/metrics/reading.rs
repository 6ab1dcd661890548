//! Raw figures of one reading, fixed-size so a collection cycle allocates nothing.

use crate::cgroup::parse::Limit;
use crate::procfs::parse::TcpStates;
use std::time::Instant;

/// Interfaces kept per container (beyond that, rows still count in the totals).
pub(crate) const MAX_IFACES: usize = 4;
/// Block devices kept per container (beyond that, rows still count in the totals).
pub(crate) const MAX_DEVS: usize = 4;

/// Network counters in `/proc/net/dev` order of interest.
pub(crate) const NET_RX_BYTES: usize = 0;
pub(crate) const NET_RX_PACKETS: usize = 1;
pub(crate) const NET_RX_ERRS: usize = 2;
pub(crate) const NET_RX_DROP: usize = 3;
pub(crate) const NET_TX_BYTES: usize = 4;
pub(crate) const NET_TX_PACKETS: usize = 5;
pub(crate) const NET_TX_ERRS: usize = 6;
pub(crate) const NET_TX_DROP: usize = 7;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Iface {
    pub name: [u8; 16],
    pub len: u8,
    pub c: [u64; 8],
}

impl Iface {
    pub(crate) fn name(&self) -> &str {
        std::str::from_utf8(self.name.get(..self.len as usize).unwrap_or(&[])).unwrap_or("?")
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Net {
    pub n: u8,
    pub ifaces: [Iface; MAX_IFACES],
    pub total: [u64; 8],
}

impl Net {
    /// Adds one `/proc/<pid>/net/dev` row (loopback skipped by the caller).
    pub(crate) fn add(&mut self, name: &[u8], c: [u64; 8]) {
        for (t, v) in self.total.iter_mut().zip(c) {
            *t = t.saturating_add(v);
        }
        if (self.n as usize) < MAX_IFACES && name.len() <= 16 {
            let i = &mut self.ifaces[self.n as usize];
            i.name[..name.len()].copy_from_slice(name);
            i.len = name.len() as u8;
            i.c = c;
            self.n += 1;
        }
    }

    pub(crate) fn ifaces(&self) -> &[Iface] {
        &self.ifaces[..self.n as usize]
    }
}

/// Block IO counters: read bytes, write bytes, reads, writes.
pub(crate) const BLK_READ_BYTES: usize = 0;
pub(crate) const BLK_WRITE_BYTES: usize = 1;
pub(crate) const BLK_READS: usize = 2;
pub(crate) const BLK_WRITES: usize = 3;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DevIo {
    pub major: u32,
    pub minor: u32,
    pub c: [u64; 4],
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Blk {
    pub n: u8,
    pub devs: [DevIo; MAX_DEVS],
    pub total: [u64; 4],
}

impl Blk {
    pub(crate) fn add(&mut self, major: u32, minor: u32, counter: usize, v: u64) {
        if let Some(t) = self.total.get_mut(counter) {
            *t = t.saturating_add(v);
        }
        let n = self.n as usize;
        let slot = match self.devs[..n]
            .iter()
            .position(|d| d.major == major && d.minor == minor)
        {
            Some(i) => i,
            None if n < MAX_DEVS => {
                self.devs[n] = DevIo {
                    major,
                    minor,
                    c: [0; 4],
                };
                self.n += 1;
                n
            }
            None => return,
        };
        if let Some(c) = self.devs[slot].c.get_mut(counter) {
            *c = c.saturating_add(v);
        }
    }

    pub(crate) fn devs(&self) -> &[DevIo] {
        &self.devs[..self.n as usize]
    }
}

/// Memory figures in bytes (counts for `failcnt`/`oom_kills`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mem {
    pub usage: u64,
    pub working_set: u64,
    pub rss: Option<u64>,
    pub cache: Option<u64>,
    pub swap: Option<u64>,
    pub mapped_file: Option<u64>,
    pub max_usage: Option<u64>,
    pub failcnt: Option<u64>,
    pub oom_kills: Option<u64>,
    pub active: Option<u64>,
    pub inactive: Option<u64>,
}

/// One reading of one container.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reading {
    pub at: Option<Instant>,
    /// Host `/proc/stat` docker total (first seven columns) at the time, ticks.
    pub host_ticks: u64,
    pub online_cpus: u32,
    pub cpu_ns: Option<u64>,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub cfs_periods: Option<u64>,
    pub cfs_throttled: Option<u64>,
    pub cfs_throttled_ns: Option<u64>,
    pub mem: Option<Mem>,
    /// Interface totals (per-interface rows are in [`Detail`]).
    pub net: Option<[u64; 8]>,
    /// Device totals (per-device rows are in [`Detail`]).
    pub blk: Option<[u64; 4]>,
    pub processes: Option<u64>,
    pub threads: Option<u64>,
    /// Tasks running or in uninterruptible sleep (for the load average).
    pub runnable: Option<u32>,
}

/// The rows behind a container's totals, stored at their real count (most
/// containers have one interface and no block device with traffic) and
/// updated in place, so a steady cycle allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Detail {
    pub ifaces: Vec<Iface>,
    pub devs: Vec<DevIo>,
    /// Only with `--tcp-states`.
    pub tcp: Option<Box<TcpStates>>,
}

impl Detail {
    /// Stores this cycle's rows (`None`: not read this cycle, none shown).
    pub(crate) fn set(&mut self, net: Option<&Net>, blk: Option<&Blk>, tcp: Option<&TcpStates>) {
        copy_exact(&mut self.ifaces, net.map_or(&[][..], Net::ifaces));
        copy_exact(&mut self.devs, blk.map_or(&[][..], Blk::devs));
        match (tcp, &mut self.tcp) {
            (Some(s), Some(kept)) => **kept = *s,
            (Some(s), None) => self.tcp = Some(Box::new(*s)),
            (None, _) => self.tcp = None,
        }
    }
}

/// `dst = src`, reusing `dst`'s allocation when the count is unchanged and
/// allocating exactly `src.len()` elements when it changed.
fn copy_exact<T: Copy>(dst: &mut Vec<T>, src: &[T]) {
    if dst.len() == src.len() {
        dst.copy_from_slice(src);
    } else {
        *dst = src.to_vec();
    }
}

/// What a rate needs from the previous reading (kept instead of a whole [`Reading`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateBase {
    pub at: Option<Instant>,
    pub host_ticks: u64,
    pub cpu_ns: Option<u64>,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub net: Option<[u64; 8]>,
    pub blk: Option<[u64; 4]>,
}

impl RateBase {
    pub(crate) fn of(r: &Reading) -> RateBase {
        RateBase {
            at: r.at,
            host_ticks: r.host_ticks,
            cpu_ns: r.cpu_ns,
            user_ns: r.user_ns,
            system_ns: r.system_ns,
            net: r.net,
            blk: r.blk,
        }
    }
}

/// Slow-moving figures, re-read at track, on metadata change, and every few cycles.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spec {
    pub mem_limit: Option<Limit>,
    /// v1: `memory.memsw.limit_in_bytes` (memory + swap); v2: `memory.swap.max`.
    pub swap_limit: Option<Limit>,
    /// True on v1, where `swap_limit` is memory + swap.
    pub swap_limit_includes_memory: bool,
    pub cpu_quota: Option<Limit>,
    pub cpu_period: Option<u64>,
    pub threads_max: Option<Limit>,
}

/// The host's reading.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HostReading {
    pub at: Option<Instant>,
    pub docker_ticks: u64,
    pub busy_ticks: u64,
    pub user_ticks: u64,
    pub system_ticks: u64,
    pub online_cpus: u32,
    pub mem_total: Option<u64>,
    pub mem_available: Option<u64>,
    pub cached: Option<u64>,
    pub active: Option<u64>,
    pub inactive: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    pub load: Option<[f64; 3]>,
    pub net: Option<Net>,
}
