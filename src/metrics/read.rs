//! The per-cycle reads: every open file of the host and of a container,
//! `pread` into the one buffer and parsed in place, into a [`Reading`];
//! and the rarer re-read of a container's limits.

use super::files::{Outcome, ReadBuf, Src};
use super::open::{f, HostFiles, SpecDirs};
use super::reading::*;
use super::tasks::TaskCache;
use crate::cgroup::parse::{self as cg, Limit};
use crate::procfs::parse as pp;
use crate::sys;
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::time::Instant;

/// Reads a file: `Err(())` when the container is gone, `Ok(None)` when the
/// file is missing or unreadable this cycle.
fn read<'b>(buf: &'b mut ReadBuf, src: &Src, multi: bool) -> Result<Option<&'b [u8]>, ()> {
    match buf.read(src, multi) {
        Outcome::Ok(n) => Ok(Some(buf.bytes(n))),
        Outcome::Gone => Err(()),
        Outcome::Missing | Outcome::Failed => Ok(None),
    }
}

/// Reads and parses a file: `Err(())` when the container is gone; `None`
/// when missing or unusable, text that does not parse counted in
/// `buf.unusable` (as `buf.read` counts the reads that failed).
fn parsed<T, E>(
    buf: &mut ReadBuf,
    src: &Src,
    multi: bool,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<Option<T>, ()> {
    let Some(b) = read(buf, src, multi)? else {
        return Ok(None);
    };
    let v = parse(b).ok();
    if v.is_none() {
        buf.unusable += 1;
    }
    Ok(v)
}

fn read_u64(buf: &mut ReadBuf, src: &Src) -> Result<Option<u64>, ()> {
    parsed(buf, src, false, cg::parse_single_u64)
}

/// Reads `name` in a limit directory through a freshly opened fd (limit files
/// are read rarely, so they hold no fd and no kernel read buffer).
fn read_in<T, E>(
    buf: &mut ReadBuf,
    dir: Option<&OwnedFd>,
    name: &CStr,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Option<T> {
    let src = match sys::open_at(dir?, name) {
        Ok(f) => Src::Open(f),
        Err(_) => Src::Missing,
    };
    parsed(buf, &src, false, parse).ok().flatten()
}

fn read_limit(buf: &mut ReadBuf, dir: Option<&OwnedFd>, name: &CStr) -> Option<Limit> {
    read_in(buf, dir, name, cg::parse_limit)
}

/// Reads the limits in the directories `d` (re-read at track, on metadata
/// change, and every few cycles).
pub(super) fn read_spec(d: &SpecDirs, buf: &mut ReadBuf, v2: bool, memory: bool) -> Spec {
    let mut s = Spec {
        swap_limit_includes_memory: !v2,
        ..Spec::default()
    };
    if v2 {
        let u = d.get(SpecDirs::MEM);
        if memory {
            s.mem_limit = read_limit(buf, u, c"memory.max");
            s.swap_limit = read_limit(buf, u, c"memory.swap.max");
        }
        s.threads_max = read_limit(buf, u, c"pids.max");
        if let Some(m) = read_in(buf, u, c"cpu.max", cg::parse_cpu_max) {
            s.cpu_quota = Some(m.quota);
            s.cpu_period = Some(m.period);
        }
    } else {
        if memory {
            let m = d.get(SpecDirs::MEM);
            s.mem_limit = read_limit(buf, m, c"memory.limit_in_bytes");
            s.swap_limit = read_limit(buf, m, c"memory.memsw.limit_in_bytes");
        }
        s.threads_max = read_limit(buf, d.get(SpecDirs::PIDS), c"pids.max");
        let cpu = d.get(SpecDirs::CPU);
        s.cpu_quota = read_limit(buf, cpu, c"cpu.cfs_quota_us");
        s.cpu_period = read_in(buf, cpu, c"cpu.cfs_period_us", cg::parse_single_u64);
    }
    s
}

/// What decides which files a cycle reads, and where `/proc` is.
#[derive(Clone, Copy)]
pub(super) struct ReadMode<'a> {
    /// The rootfs as text, without a trailing `/`.
    pub rootfs: &'a str,
    pub v2: bool,
    /// Cgroup process lists are of no use (the agent runs in another PID namespace).
    pub foreign_pidns: bool,
    /// Keep the process fingerprint.
    pub process_fingerprints: bool,
}

/// Reads every per-cycle file of a container. `None` when it is gone.
pub(super) fn read_container(
    fl: &[Src],
    spec: &Spec,
    task_cache: &mut TaskCache,
    detail: &mut Detail,
    buf: &mut ReadBuf,
    path_buf: &mut String,
    mode: ReadMode<'_>,
) -> Option<Reading> {
    let ReadMode {
        rootfs,
        v2,
        foreign_pidns,
        process_fingerprints,
    } = mode;
    let quota_set = matches!(spec.cpu_quota, Some(Limit::Bytes(_)));
    let mut r = Reading::default();
    if v2 {
        if let Some(s) = parsed(buf, &fl[f::CPU_STAT], false, cg::parse_cpu_stat).ok()? {
            r.cpu_ns = s.usage_usec.map(|v| v.saturating_mul(1000));
            r.user_ns = s.user_usec.map(|v| v.saturating_mul(1000));
            r.system_ns = s.system_usec.map(|v| v.saturating_mul(1000));
            r.cfs_periods = s.nr_periods;
            r.cfs_throttled = s.nr_throttled;
            r.cfs_throttled_ns = s.throttled_usec.map(|v| v.saturating_mul(1000));
        }
    } else {
        r.cpu_ns = read_u64(buf, &fl[f::CPUACCT_USAGE]).ok()?;
        if let Some(s) = parsed(buf, &fl[f::CPUACCT_STAT], false, cg::parse_cpuacct_stat).ok()? {
            r.user_ns = s.user.map(|v| v.saturating_mul(10_000_000));
            r.system_ns = s.system.map(|v| v.saturating_mul(10_000_000));
        }
        // CFS counters matter only under a quota (they are published only then).
        let cfs = if quota_set {
            parsed(buf, &fl[f::CPU_STAT], false, cg::parse_cpu_stat).ok()?
        } else {
            None
        };
        if let Some(s) = cfs {
            r.cfs_periods = s.nr_periods;
            r.cfs_throttled = s.nr_throttled;
            r.cfs_throttled_ns = s.throttled_time;
        }
    }
    r.mem = read_mem(fl, buf, v2).ok()?;
    let blk = read_blk(fl, buf, v2).ok()?;
    r.blk = blk.as_ref().map(|b| b.total);

    if !foreign_pidns {
        // Processes first: when the kept task fds cover every process and
        // each has one thread (most containers), the processes are all the
        // tasks and the task list need not be read.
        let procs = read(buf, &fl[f::PROCS], false).ok()?;
        let procs_read = procs.is_some();
        task_cache.start_fingerprint(procs, process_fingerprints);
        task_cache.begin();
        r.processes = procs.and_then(|b| cg::count_pids(b).ok());
        let sample = procs.map(|b| task_cache.sample(b, path_buf, rootfs));
        if procs_read && r.processes.is_none() {
            buf.unusable += 1;
        }
        match sample {
            Some(s) if s.covered && s.single_threaded && r.processes.is_some() => {
                r.runnable = Some(s.runnable);
                r.threads = r.processes;
            }
            _ => match read(buf, &fl[f::TASKS], false) {
                Ok(Some(b)) => {
                    let s = task_cache.sample(b, path_buf, rootfs);
                    r.runnable = Some(s.runnable);
                    r.threads = cg::count_pids(b).ok();
                }
                Ok(None) => r.runnable = sample.map(|s| s.runnable),
                Err(()) => {
                    task_cache.end();
                    return None;
                }
            },
        }
        task_cache.end();
    }
    if r.threads.is_none() {
        r.threads = read_u64(buf, &fl[f::PIDS_CURRENT]).ok()?;
    }
    let mut net = None;
    let mut tcp: Option<pp::TcpStates> = None;
    if fl[f::NET_DEV].is_open() {
        // A vanished process is not fatal here: the cgroup files decide "gone".
        if let Ok(Some((n, bad))) = parsed(buf, &fl[f::NET_DEV], true, net_of) {
            buf.unusable += u64::from(bad);
            net = Some(n);
        }
        for i in [f::TCP, f::TCP6] {
            if !fl[i].is_open() {
                continue;
            }
            if let Ok(Some(s)) = parsed(buf, &fl[i], true, pp::parse_tcp_states) {
                tcp.get_or_insert_with(Default::default).merge(&s);
            }
        }
    }
    if r.cpu_ns.is_none() && r.mem.is_none() {
        // Nothing readable at all: treat like a vanished cgroup.
        return None;
    }
    r.net = net.as_ref().map(|n| n.total);
    detail.set(net.as_ref(), blk.as_ref(), tcp.as_ref());
    Some(r)
}

fn read_mem(fl: &[Src], buf: &mut ReadBuf, v2: bool) -> Result<Option<Mem>, ()> {
    let Some(usage) = read_u64(buf, &fl[f::MEM_USAGE])? else {
        return Ok(None);
    };
    let mut m = Mem {
        usage,
        working_set: usage,
        ..Mem::default()
    };
    {
        if let Some(s) = parsed(buf, &fl[f::MEM_STAT], false, cg::parse_memory_stat)? {
            if let Some(inactive) = s.inactive_file_hierarchical() {
                m.working_set = usage.saturating_sub(inactive);
            }
            if v2 {
                m.rss = s.anon;
                m.cache = s.file;
                m.mapped_file = s.file_mapped;
                m.active = add(s.active_anon, s.active_file);
                m.inactive = add(s.inactive_anon, s.inactive_file);
            } else {
                m.rss = s.total_rss.or(s.rss);
                m.cache = s.total_cache.or(s.cache);
                m.mapped_file = s.total_mapped_file.or(s.mapped_file);
                m.swap = s.total_swap.or(s.swap);
                m.active = add(
                    s.total_active_anon.or(s.active_anon),
                    s.total_active_file.or(s.active_file),
                );
                m.inactive = add(
                    s.total_inactive_anon.or(s.inactive_anon),
                    s.total_inactive_file.or(s.inactive_file),
                );
            }
        }
    }
    m.max_usage = read_u64(buf, &fl[f::MEM_MAX_USAGE])?;
    m.failcnt = read_u64(buf, &fl[f::MEM_FAILCNT])?;
    m.oom_kills = parsed(buf, &fl[f::MEM_OOM], false, |b| {
        if v2 {
            cg::parse_memory_events(b).map(|e| e.oom_kill)
        } else {
            cg::parse_oom_control(b).map(|e| e.oom_kill)
        }
    })?
    .flatten();
    if v2 {
        m.swap = read_u64(buf, &fl[f::SWAP_CURRENT])?;
    }
    Ok(Some(m))
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.saturating_add(b?))
}

fn read_blk(fl: &[Src], buf: &mut ReadBuf, v2: bool) -> Result<Option<Blk>, ()> {
    let mut blk = Blk::default();
    if v2 {
        let Some(b) = read(buf, &fl[f::BLK_BYTES], false)? else {
            return Ok(None);
        };
        let mut bad = false;
        for row in cg::io_stat_rows(b) {
            let Ok(row) = row else {
                bad = true;
                continue;
            };
            let d = row.device;
            for (k, v) in [row.rbytes, row.wbytes, row.rios, row.wios]
                .into_iter()
                .enumerate()
            {
                blk.add(d.major, d.minor, k, v.unwrap_or(0));
            }
        }
        if bad {
            buf.unusable += 1;
        }
        return Ok(Some(blk));
    }
    let mut any = false;
    for (i, read_k, write_k) in [
        (f::BLK_BYTES, BLK_READ_BYTES, BLK_WRITE_BYTES),
        (f::BLK_IOS, BLK_READS, BLK_WRITES),
    ] {
        let Some(b) = read(buf, &fl[i], false)? else {
            continue;
        };
        any = true;
        let mut bad = false;
        for row in cg::blkio_rows(b) {
            let Ok(row) = row else {
                bad = true;
                continue;
            };
            let k = match row.op {
                cg::BlkioOp::Read => read_k,
                cg::BlkioOp::Write => write_k,
                _ => continue,
            };
            blk.add(row.device.major, row.device.minor, k, row.value);
        }
        if bad {
            buf.unusable += 1;
        }
    }
    Ok(any.then_some(blk))
}

/// The interface counters of a `net/dev` file, loopback left out, and
/// whether a row did not parse (the others are kept).
fn net_of(net_dev: &[u8]) -> Result<(Net, bool), ()> {
    let mut n = Net::default();
    let mut bad = false;
    for row in pp::net_dev_rows(net_dev) {
        let Ok(row) = row else {
            bad = true;
            continue;
        };
        if row.is_loopback() {
            continue;
        }
        n.add(
            row.name,
            [
                row.rx_bytes,
                row.rx_packets,
                row.rx_errs,
                row.rx_drop,
                row.tx_bytes,
                row.tx_packets,
                row.tx_errs,
                row.tx_drop,
            ],
        );
    }
    Ok((n, bad))
}

/// One reading of the host's files.
pub(super) fn read_host(h: &HostFiles, buf: &mut ReadBuf, now: Instant) -> HostReading {
    let mut r = HostReading {
        at: Some(now),
        ..HostReading::default()
    };
    // /proc/stat and /proc/meminfo are single-show files: one read returns them whole.
    {
        if let Ok(Some(s)) = parsed(buf, &h.stat, false, pp::parse_proc_stat) {
            if let Some(c) = s.cpu {
                r.docker_ticks = c.docker_total_ticks();
                let idle = c.idle.unwrap_or(0).saturating_add(c.iowait.unwrap_or(0));
                r.busy_ticks = r.docker_ticks.saturating_sub(idle);
                r.user_ticks = c.user.unwrap_or(0).saturating_add(c.nice.unwrap_or(0));
                r.system_ticks = c.system.unwrap_or(0);
            }
            r.online_cpus = s.cpu_lines;
        }
    }
    {
        if let Ok(Some(m)) = parsed(buf, &h.meminfo, false, pp::parse_meminfo) {
            r.mem_total = m.mem_total;
            r.mem_available = m.mem_available.or_else(|| {
                Some(
                    m.mem_free?
                        .saturating_add(m.buffers.unwrap_or(0))
                        .saturating_add(m.cached.unwrap_or(0)),
                )
            });
            r.cached = m.cached;
            r.active = m.active;
            r.inactive = m.inactive;
            r.swap_total = m.swap_total;
            r.swap_free = m.swap_free;
        }
    }
    if let Ok(Some(l)) = parsed(buf, &h.loadavg, false, pp::parse_loadavg) {
        r.load = Some([l.load1(), l.load5(), l.load15()]);
    }
    if let Ok(Some((n, bad))) = parsed(buf, &h.net_dev, true, net_of) {
        buf.unusable += u64::from(bad);
        r.net = Some(n);
    }
    r
}
