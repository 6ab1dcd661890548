//! Which files a container (and the host) is read from, and how they are
//! opened: once at resolve time, then kept open for the per-cycle reads.

use super::files::{self, Src};
use crate::cgroup::mounts::{Hierarchies, Layout};
use crate::cgroup::parse as cg;
use crate::cgroup::resolve::{self, CgroupDirs};
use crate::sys;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Per-container files, by index into [`Opened::files`].
pub(super) mod f {
    pub const CPUACCT_USAGE: usize = 0;
    pub const CPUACCT_STAT: usize = 1;
    /// v1 CFS counters / v2 every CPU counter.
    pub const CPU_STAT: usize = 2;
    /// v1 `memory.usage_in_bytes` / v2 `memory.current`.
    pub const MEM_USAGE: usize = 3;
    /// v1 `memory.max_usage_in_bytes` / v2 `memory.peak`.
    pub const MEM_MAX_USAGE: usize = 4;
    pub const MEM_FAILCNT: usize = 5;
    pub const MEM_STAT: usize = 6;
    /// v1 `memory.oom_control` / v2 `memory.events`.
    pub const MEM_OOM: usize = 7;
    /// v2 `memory.swap.current`.
    pub const SWAP_CURRENT: usize = 8;
    /// v1 service bytes (throttle or CFQ recursive) / v2 `io.stat`.
    pub const BLK_BYTES: usize = 9;
    pub const BLK_IOS: usize = 10;
    pub const PIDS_CURRENT: usize = 11;
    pub const PROCS: usize = 12;
    /// v1 `tasks` / v2 `cgroup.threads`.
    pub const TASKS: usize = 13;
    pub const NET_DEV: usize = 14;
    pub const TCP: usize = 15;
    pub const TCP6: usize = 16;
    pub const COUNT: usize = 17;
}

/// The host's per-cycle files.
pub(super) struct HostFiles {
    pub stat: Src,
    pub meminfo: Src,
    pub loadavg: Src,
    pub net_dev: Src,
}

impl HostFiles {
    pub(super) fn open(rootfs: &Path) -> HostFiles {
        let proc = rootfs.join("proc");
        HostFiles {
            stat: Src::open(&proc.join("stat")),
            meminfo: Src::open(&proc.join("meminfo")),
            loadavg: Src::open(&proc.join("loadavg")),
            // PID 1's view is the host network namespace (the agent's own may be a container's).
            net_dev: match Src::open(&proc.join("1/net/dev")) {
                Src::Missing => Src::open(&proc.join("net/dev")),
                s => s,
            },
        }
    }
}

/// What identifies a container's cgroup and network files.
pub(super) struct Target<'a> {
    pub id: &'a str,
    pub pid: u32,
    /// The exact cgroup path, when the container's source knows it.
    pub cgroup: &'a str,
    pub cgroup_parent: &'a str,
    pub own_netns: bool,
}

/// A container's files, opened after its cgroup was resolved.
pub(super) struct Opened {
    /// Per-cycle files, indexed by [`f`].
    pub files: Vec<Src>,
    pub spec_dirs: SpecDirs,
    /// The cgroup path (the `id` label).
    pub cgroup_path: Box<str>,
}

/// Resolves a container's cgroup under `rootfs` and opens its files (the
/// TCP tables only with `tcp_states`). `None` when its cgroup was not found.
pub(super) fn open(
    hier: &Hierarchies,
    rootfs: &Path,
    t: Target<'_>,
    tcp_states: bool,
) -> Option<Opened> {
    let v2 = hier.layout == Layout::V2;
    let dirs = resolve::resolve(hier, rootfs, t.id, t.pid, t.cgroup, t.cgroup_parent)?;
    let proc_dir = if t.pid > 0 {
        Some(rootfs.join(format!("proc/{}", t.pid)))
    } else {
        None
    };
    let files = open_files(
        &dirs,
        proc_dir.as_deref(),
        t.own_netns,
        tcp_states,
        v2,
        hier.memory_enabled,
    );
    Some(Opened {
        files,
        spec_dirs: SpecDirs::open(&dirs, v2),
        cgroup_path: dirs.path.into_boxed_str(),
    })
}

fn open_files(
    d: &CgroupDirs,
    proc_dir: Option<&Path>,
    own_netns: bool,
    tcp_states: bool,
    v2: bool,
    memory: bool,
) -> Vec<Src> {
    let mut files: Vec<Src> = (0..f::COUNT).map(|_| Src::Missing).collect();
    let mut set = |i: usize, dir: &Option<PathBuf>, name: &str| {
        if let Some(dir) = dir {
            files[i] = Src::open(&dir.join(name));
        }
    };
    if v2 {
        let u = &d.unified;
        set(f::CPU_STAT, u, "cpu.stat");
        if memory {
            set(f::MEM_USAGE, u, "memory.current");
            set(f::MEM_MAX_USAGE, u, "memory.peak");
            set(f::MEM_STAT, u, "memory.stat");
            set(f::MEM_OOM, u, "memory.events");
            set(f::SWAP_CURRENT, u, "memory.swap.current");
        }
        set(f::BLK_BYTES, u, "io.stat");
        set(f::PIDS_CURRENT, u, "pids.current");
        set(f::PROCS, u, "cgroup.procs");
        set(f::TASKS, u, "cgroup.threads");
    } else {
        set(f::CPUACCT_USAGE, &d.cpuacct, "cpuacct.usage");
        set(f::CPUACCT_STAT, &d.cpuacct, "cpuacct.stat");
        set(f::CPU_STAT, &d.cpu, "cpu.stat");
        if memory {
            set(f::MEM_USAGE, &d.memory, "memory.usage_in_bytes");
            set(f::MEM_MAX_USAGE, &d.memory, "memory.max_usage_in_bytes");
            set(f::MEM_FAILCNT, &d.memory, "memory.failcnt");
            set(f::MEM_STAT, &d.memory, "memory.stat");
            set(f::MEM_OOM, &d.memory, "memory.oom_control");
        }
        // What `docker stats` reads: CFQ recursive files when they carry data, else throttle.
        let cfq = d
            .blkio
            .as_ref()
            .and_then(|b| std::fs::read(b.join("blkio.io_serviced_recursive")).ok())
            .is_some_and(|c| cg::blkio_rows(&c).any(|r| r.is_ok()));
        if cfq {
            set(f::BLK_BYTES, &d.blkio, "blkio.io_service_bytes_recursive");
            set(f::BLK_IOS, &d.blkio, "blkio.io_serviced_recursive");
        } else {
            set(f::BLK_BYTES, &d.blkio, "blkio.throttle.io_service_bytes");
            set(f::BLK_IOS, &d.blkio, "blkio.throttle.io_serviced");
        }
        set(f::PIDS_CURRENT, &d.pids, "pids.current");
        let procs_dir = if d.cpuacct.is_some() {
            &d.cpuacct
        } else {
            &d.cpu
        };
        set(f::PROCS, procs_dir, "cgroup.procs");
        set(f::TASKS, procs_dir, "tasks");
    }
    if files[f::TASKS].is_open() {
        // Threads are counted from the task list read for the load average.
        files[f::PIDS_CURRENT] = Src::Missing;
    }
    if let Some(p) = proc_dir {
        if own_netns {
            files[f::NET_DEV] = Src::open(&p.join("net/dev"));
            if tcp_states {
                files[f::TCP] = Src::open(&p.join("net/tcp"));
                files[f::TCP6] = Src::open(&p.join("net/tcp6"));
            }
        }
    }
    files
}

/// Directory handles for the limit files (v2: all in slot `MEM`).
#[derive(Debug, Default)]
pub(super) struct SpecDirs([Option<OwnedFd>; 3]);

impl SpecDirs {
    pub(super) const MEM: usize = 0;
    pub(super) const PIDS: usize = 1;
    pub(super) const CPU: usize = 2;

    fn open(d: &CgroupDirs, v2: bool) -> SpecDirs {
        let handle = |p: &Option<PathBuf>| {
            p.as_deref()
                .and_then(|p| sys::open_dir_handle(p).ok())
                .and_then(files::keep)
        };
        if v2 {
            SpecDirs([handle(&d.unified), None, None])
        } else {
            SpecDirs([handle(&d.memory), handle(&d.pids), handle(&d.cpu)])
        }
    }

    pub(super) fn get(&self, slot: usize) -> Option<&OwnedFd> {
        self.0.get(slot)?.as_ref()
    }
}
