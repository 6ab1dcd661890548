//! The collector: per tick, read the host and every tracked container from
//! the kernel's files (fds kept open, `pread` into one buffer) and keep the
//! latest readings for the Outlyer and Prometheus views.

use super::files::{Outcome, ReadBuf, Src};
use super::outlyer::{container_values, host_values, HostContext, Values};
use super::pidscan::{self, PidCounts};
use super::prometheus::{escape_label_value, Cursor as PromCursor};
use super::reading::*;
use crate::cgroup::mounts::{self, Hierarchies, Layout};
use crate::cgroup::parse::{self as cg, Limit};
use crate::cgroup::resolve::{self, CgroupDirs};
use crate::procfs::parse as pp;
use crate::registry::ContainerInfo;
use crate::sys;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Per-container files, by index into `Tracked::files`.
mod f {
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

/// Spec files are re-read every this many cycles (and on `update_info`).
const SPEC_EVERY: u64 = 30;
/// At most this many tasks are looked at for a container's load average.
const MAX_LOAD_TASKS: usize = 256;

/// One log line; the single place to swap for the logging module's macros.
/// The caller's line is the site the flood limit counts by.
#[track_caller]
fn log_line(args: std::fmt::Arguments<'_>) {
    crate::log::write("info", format_args!("collector: {args}"));
}

/// What the collector keeps of a container's Docker metadata: only what it
/// reads or publishes (the registry holds the rest).
pub(super) struct Tracked {
    pub id: Box<str>,
    /// Virtual-agent fingerprint, the Outlyer view's key.
    pub fingerprint: Box<str>,
    /// `State.StartedAt`, Unix seconds (0.0 unknown).
    pub started_at: f64,
    pid: u32,
    own_netns: bool,
    cgroup_parent: Box<str>,
    /// Prometheus label text after the `id` label (which is the cgroup path,
    /// known once resolved): `image="…",name="…",container_label_…`.
    pub label_rest: Box<str>,
    /// The cgroup path (the `id` label), once resolved.
    pub cgroup_path: Option<Box<str>>,
    /// Handles on the directories of the limit files, which are re-read
    /// rarely and so hold no open file between reads.
    spec_dirs: SpecDirs,
    files: Vec<Src>,
    pub cur: Reading,
    /// Per-interface, per-device and TCP-state rows of `cur`.
    pub detail: Detail,
    prev: RateBase,
    pub spec: Spec,
    /// Exponential load averages: 10 s, 1, 5, 15 min.
    pub load: [f64; 4],
    tasks: TaskCache,
    /// Foreign PID namespace only: what this cycle's scan of the host's
    /// processes found for the container (see `pidscan`).
    pids: Option<PidCounts>,
    /// The latest cycle produced a reading (series are published).
    pub ok: bool,
    /// The cgroup vanished; re-resolve before reading again.
    gone: bool,
    retry_at: u64,
    retries: u32,
    pub last_seen: f64,
}

pub(super) struct HostState {
    stat: Src,
    meminfo: Src,
    loadavg: Src,
    net_dev: Src,
    pub cur: HostReading,
    prev: HostReading,
    pub values: Values,
}

/// Reads host and container figures each tick; see the module docs.
pub struct Collector {
    rootfs: PathBuf,
    /// `rootfs` as text without a trailing `/`, for building `/proc/<tid>/stat` paths.
    rootfs_str: String,
    pub(super) host_finger: String,
    hier: Hierarchies,
    pub(super) containers: Vec<Tracked>,
    buf: ReadBuf,
    path_buf: String,
    pub(super) host: HostState,
    pub(super) last_cycle_secs: Option<f64>,
    cycle: u64,
    logged_swap_off: bool,
    logged_fd_limit: bool,
    tcp_states: bool,
    /// Fingerprint each container's processes (see [`Collector::processes_changed`]).
    process_fingerprints: bool,
    /// The agent does not see the host's PIDs in cgroup files (no `--pid host`).
    foreign_pidns: bool,
}

/// `container_label_<key>` with every byte outside `[a-zA-Z0-9_]` turned into `_`.
fn sanitize_label_name(key: &str) -> String {
    let mut s = String::from("container_label_");
    s.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    s
}

fn build_labels(info: &ContainerInfo) -> Box<str> {
    let mut s = String::with_capacity(128);
    s.push_str("image=\"");
    escape_label_value(&info.image, |p| s.push_str(p));
    s.push_str("\",name=\"");
    escape_label_value(&info.name, |p| s.push_str(p));
    s.push('"');
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in &info.labels {
        let name = sanitize_label_name(k);
        // Two keys may sanitize alike (`a.b`, `a-b`): a family cannot repeat a label name.
        if seen.contains(&name) {
            continue;
        }
        s.push(',');
        s.push_str(&name);
        s.push_str("=\"");
        escape_label_value(v, |p| s.push_str(p));
        s.push('"');
        seen.push(name);
    }
    s.into_boxed_str()
}

impl Tracked {
    fn new(info: &ContainerInfo) -> Tracked {
        Tracked {
            id: info.id.as_str().into(),
            fingerprint: info.fingerprint.as_str().into(),
            started_at: info.started_at,
            pid: info.pid,
            own_netns: info.has_own_netns(),
            cgroup_parent: info.cgroup_parent.as_str().into(),
            label_rest: build_labels(info),
            cgroup_path: None,
            spec_dirs: SpecDirs::default(),
            files: Vec::new(),
            cur: Reading::default(),
            detail: Detail::default(),
            prev: RateBase::default(),
            spec: Spec::default(),
            load: [0.0; 4],
            tasks: TaskCache::default(),
            pids: None,
            ok: false,
            gone: true,
            retry_at: 0,
            retries: 0,
            last_seen: 0.0,
        }
    }

    /// Takes new metadata; true when the cgroup must be resolved again (a new process).
    fn update(&mut self, info: &ContainerInfo) -> bool {
        let moved = self.pid != info.pid
            || self.own_netns != info.has_own_netns()
            || *self.cgroup_parent != *info.cgroup_parent;
        self.fingerprint = info.fingerprint.as_str().into();
        self.started_at = info.started_at;
        self.pid = info.pid;
        self.own_netns = info.has_own_netns();
        self.cgroup_parent = info.cgroup_parent.as_str().into();
        self.label_rest = build_labels(info);
        moved
    }

    pub(super) fn short_id(&self) -> &str {
        crate::registry::short_id(&self.id)
    }
}

impl Collector {
    /// Discovers the hierarchies under `rootfs` (logs once what it found, and
    /// the memory-accounting advice if needed).
    pub fn new(rootfs: &Path, host_finger: &str) -> Collector {
        let hier = mounts::discover(rootfs);
        log_line(format_args!("{}", hier.describe()));
        if hier.layout == Layout::Unknown {
            log_line(format_args!(
                "no cgroup hierarchy found under {} (mount the host's /sys/fs/cgroup there): container metrics unavailable",
                rootfs.display()
            ));
        } else if !hier.memory_enabled {
            log_line(format_args!(
                "memory accounting is disabled in the kernel: no container memory metrics; \
                 boot the host with the kernel parameters `cgroup_enable=memory swapaccount=1`"
            ));
        }
        let proc = rootfs.join("proc");
        let host = HostState {
            stat: Src::open(&proc.join("stat")),
            meminfo: Src::open(&proc.join("meminfo")),
            loadavg: Src::open(&proc.join("loadavg")),
            // PID 1's view is the host network namespace (the agent's own may be a container's).
            net_dev: match Src::open(&proc.join("1/net/dev")) {
                Src::Missing => Src::open(&proc.join("net/dev")),
                s => s,
            },
            cur: HostReading::default(),
            prev: HostReading::default(),
            values: Values::default(),
        };
        let foreign_pidns = pidscan::is_foreign_pid_namespace(rootfs);
        if foreign_pidns {
            log_line(format_args!(
                "the agent runs in its own PID namespace: container processes are found by a scan of {}/proc \
                 each cycle (`--pid host` makes the cgroup files usable and saves that scan)",
                rootfs.display()
            ));
        }
        let mut rootfs_str = rootfs.to_string_lossy().into_owned();
        while rootfs_str.ends_with('/') {
            rootfs_str.pop();
        }
        Collector {
            rootfs: rootfs.to_path_buf(),
            rootfs_str,
            host_finger: host_finger.to_string(),
            hier,
            containers: Vec::new(),
            buf: ReadBuf::new(),
            path_buf: String::with_capacity(256),
            host,
            last_cycle_secs: None,
            cycle: 0,
            logged_swap_off: false,
            logged_fd_limit: false,
            tcp_states: false,
            process_fingerprints: false,
            foreign_pidns,
        }
    }

    /// Opt in to `container_network_tcp_usage_total` (off by default, as in
    /// cAdvisor): reading `/proc/<pid>/net/tcp{,6}` walks the kernel's global
    /// socket hash on every read, about 0.9 ms of CPU per file per container
    /// on a 24 GiB host, some 80 times the rest of a container's reading.
    /// Applies to containers tracked (or re-resolved) afterwards.
    pub fn set_tcp_states(&mut self, on: bool) {
        self.tcp_states = on;
    }

    /// Opt in to [`Collector::processes_changed`] answering from a
    /// fingerprint of each container's processes, kept as the files are read
    /// anyway (off: it always answers true, and collection does no extra work).
    pub fn set_process_fingerprints(&mut self, on: bool) {
        self.process_fingerprints = on;
    }

    /// The hierarchies found at start.
    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hier
    }

    /// A container appeared: resolve its cgroup, open its files, take a
    /// baseline reading (so it shows in /metrics at once with counters;
    /// rates appear from the next reading).
    pub fn track(&mut self, info: &ContainerInfo, now: Instant, unix_secs: f64) {
        if let Some(t) = self.containers.iter_mut().find(|t| *t.id == *info.id) {
            // Same id again (restart): start over with the new pid.
            t.update(info);
            t.gone = true;
            t.retry_at = 0;
        } else {
            self.containers.push(Tracked::new(info));
        }
        // The host's /proc/stat at this instant, for the container's first
        // CPU rate; the host's own rate window stays as the last cycle left it.
        let fresh = read_host(&self.host, &mut self.buf, now);
        if self.host.cur.at.is_none() {
            // Before the first cycle there is no window to shift: the host
            // context (memory total, CPUs) comes from this reading.
            self.host.cur = fresh;
        }
        let idx = match self.containers.iter().position(|t| *t.id == *info.id) {
            Some(i) => i,
            None => return,
        };
        if self.foreign_pidns {
            // One scan for this container, so its processes show at once.
            let found = pidscan::scan(&self.rootfs, &[info.id.as_str()], MAX_LOAD_TASKS);
            self.containers[idx].pids = found.into_iter().next();
        }
        self.collect_one(idx, (fresh.docker_ticks, fresh.online_cpus), now, unix_secs);
    }

    pub fn untrack(&mut self, id: &str) {
        self.containers.retain(|t| &*t.id != id);
    }

    /// Metadata changed (rename, pause/unpause, `docker update`): update
    /// labels and re-read limits without reopening files.
    pub fn update_info(&mut self, info: &ContainerInfo) {
        let Some(t) = self.containers.iter_mut().find(|t| *t.id == *info.id) else {
            return;
        };
        if t.update(info) {
            t.gone = true;
            t.retry_at = 0;
        }
        if !t.gone {
            read_spec(
                t,
                &mut self.buf,
                self.hier.layout == Layout::V2,
                self.hier.memory_enabled,
            );
        }
    }

    /// One collection cycle: host + every tracked container. Zero heap
    /// allocations after warm-up (unless a container vanished and must be re-resolved,
    /// or the agent runs in its own PID namespace: the host-process scan allocates).
    pub fn collect(&mut self, now: Instant, unix_secs: f64) {
        let started = Instant::now();
        self.cycle += 1;
        let r = read_host(&self.host, &mut self.buf, now);
        self.host.prev = self.host.cur;
        self.host.cur = r;
        host_values(&mut self.host.values, &self.host.cur, &self.host.prev);
        if self.foreign_pidns {
            let ids: Vec<&str> = self.containers.iter().map(|t| &*t.id).collect();
            let found = pidscan::scan(&self.rootfs, &ids, MAX_LOAD_TASKS);
            for (t, counts) in self.containers.iter_mut().zip(found) {
                t.pids = Some(counts);
            }
        }
        let host = (self.host.cur.docker_ticks, self.host.cur.online_cpus);
        for i in 0..self.containers.len() {
            self.collect_one(i, host, now, unix_secs);
        }
        self.last_cycle_secs = Some(started.elapsed().as_secs_f64());
    }

    /// Reads one container (re-resolving it first if it had vanished);
    /// `host` is the host's `/proc/stat` docker total and online CPUs now.
    fn collect_one(&mut self, i: usize, host: (u64, u32), now: Instant, unix_secs: f64) {
        let v2 = self.hier.layout == Layout::V2;
        let cycle = self.cycle;
        let Some(t) = self.containers.get_mut(i) else {
            return;
        };
        // A reopen reads the spec files itself.
        let reopened = t.gone;
        if t.gone {
            if cycle < t.retry_at {
                t.ok = false;
                return;
            }
            if !self.reopen(i) {
                let t = &mut self.containers[i];
                t.retries = t.retries.saturating_add(1);
                t.retry_at = cycle + (1u64 << t.retries.min(5));
                t.ok = false;
                return;
            }
        }
        let t = &mut self.containers[i];
        if cycle % SPEC_EVERY == 0 && !reopened {
            read_spec(t, &mut self.buf, v2, self.hier.memory_enabled);
        }
        match read_container(
            &t.files,
            &t.spec,
            &mut t.tasks,
            &mut t.detail,
            &mut self.buf,
            &mut self.path_buf,
            ReadMode {
                rootfs: &self.rootfs_str,
                v2,
                foreign_pidns: self.foreign_pidns,
                process_fingerprints: self.process_fingerprints,
            },
        ) {
            Some(mut r) => {
                if self.foreign_pidns {
                    // The cgroup files listed none of the container's PIDs.
                    r.processes = t.pids.as_ref().map(|c| c.pids.len() as u64);
                    r.threads = t.pids.as_ref().map(|c| c.threads);
                    r.runnable = t.pids.as_ref().map(|c| c.runnable);
                }
                r.at = Some(now);
                (r.host_ticks, r.online_cpus) = host;
                update_load(&mut t.load, r.runnable, t.cur.at, now);
                t.prev = RateBase::of(&t.cur);
                t.cur = r;
                t.ok = true;
                t.last_seen = unix_secs;
            }
            None => {
                // Gone: drop it cleanly this cycle, re-resolve next cycle.
                t.ok = false;
                t.gone = true;
                t.retry_at = cycle + 1;
                t.retries = 0;
                t.cur = Reading::default();
                t.detail = Detail::default();
                t.prev = RateBase::default();
            }
        }
    }

    /// Resolves container `i` and opens its files. False when its cgroup was not found.
    fn reopen(&mut self, i: usize) -> bool {
        let v2 = self.hier.layout == Layout::V2;
        let t = &mut self.containers[i];
        let dirs = resolve::resolve(&self.hier, &self.rootfs, &t.id, t.pid, &t.cgroup_parent);
        let Some(dirs) = dirs else {
            if t.retries == 0 {
                log_line(format_args!(
                    "no cgroup found for container {} (pid {}); will retry",
                    t.short_id(),
                    t.pid
                ));
            }
            t.cgroup_path = None;
            t.spec_dirs = SpecDirs::default();
            return false;
        };
        let proc_dir = if t.pid > 0 {
            Some(self.rootfs.join(format!("proc/{}", t.pid)))
        } else {
            None
        };
        t.files = open_files(
            &dirs,
            proc_dir.as_deref(),
            t.own_netns,
            self.tcp_states,
            v2,
            self.hier.memory_enabled,
        );
        t.spec_dirs = SpecDirs::open(&dirs, v2);
        t.cgroup_path = Some(dirs.path.into_boxed_str());
        t.gone = false;
        t.retries = 0;
        t.load = [0.0; 4];
        t.tasks = TaskCache::default();
        read_spec(t, &mut self.buf, v2, self.hier.memory_enabled);
        if super::files::take_fd_exhausted() && !self.logged_fd_limit {
            self.logged_fd_limit = true;
            log_line(format_args!(
                "out of file descriptors opening container {}'s files: some metrics are missing; \
                 raise the open-files limit (ulimit -n, about 20 per container)",
                t.short_id()
            ));
        }
        if !v2
            && self.hier.memory_enabled
            && !self.logged_swap_off
            && t.files[f::MEM_USAGE].is_open()
            && t.spec.swap_limit.is_none()
        {
            self.logged_swap_off = true;
            log_line(format_args!(
                "swap accounting is off: no swap metrics; boot the host with the kernel parameter `swapaccount=1`"
            ));
        }
        true
    }

    /// Appends the Prometheus text of the latest readings.
    pub fn write_prometheus(&self, out: &mut Vec<u8>) {
        super::prometheus::write(self, out);
    }

    /// Appends the Prometheus text from `cursor` on, stopping once `out`
    /// holds `budget` bytes or more; true when the text is complete. Lets a
    /// scrape of thousands of containers go out in pieces instead of one
    /// buffer of several megabytes.
    pub fn write_prometheus_some(
        &self,
        cursor: &mut PromCursor,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> bool {
        super::prometheus::write_some(self, cursor, out, budget)
    }

    /// The Outlyer view: (fingerprint, path, value) for the host and every
    /// container, latest cycle.
    pub fn for_each_outlyer_sample(&self, mut f: impl FnMut(&str, &'static str, f64)) {
        self.host
            .values
            .for_each(|path, v| f(&self.host_finger, path, v));
        // Derived on demand from the latest reading and the previous one's rate base.
        let ctx = HostContext {
            mem_total: self.host.cur.mem_total,
            swap_total: self.host.cur.swap_total,
        };
        let mut values = Values::default();
        for t in self.containers.iter().filter(|t| t.ok) {
            container_values(&mut values, &t.cur, &t.prev, &t.spec, &t.load, &ctx);
            values.for_each(|path, v| f(&t.fingerprint, path, v));
        }
    }

    /// Host PIDs of a container's processes: from the latest scan of the
    /// host's processes when the agent runs in its own PID namespace, else
    /// re-read through the container's open `cgroup.procs` descriptor.
    /// Empty when unknown.
    pub fn container_pids(&self, id: &str) -> Vec<u32> {
        let Some(t) = self.containers.iter().find(|t| &*t.id == id) else {
            return Vec::new();
        };
        if let Some(c) = &t.pids {
            return c.pids.clone();
        }
        let Some(Src::Open(file)) = t.files.get(f::PROCS) else {
            return Vec::new();
        };
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        loop {
            if n == buf.len() {
                buf.resize(n * 2, 0);
            }
            match file.read_at(&mut buf[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => return Vec::new(),
            }
        }
        cg::pids(&buf[..n]).filter_map(Result::ok).collect()
    }

    /// True when container `id`'s processes may differ from when this last
    /// answered true: its process list or a process name changed. Always
    /// true when the agent cannot tell (fingerprints off, a foreign PID
    /// namespace, an unreadable list). Lets the uploader rebuild process lists only when
    /// they change instead of re-reading every process's name every cycle.
    pub fn processes_changed(&mut self, id: &str) -> bool {
        let foreign = self.foreign_pidns;
        let Some(t) = self.containers.iter_mut().find(|t| &*t.id == id) else {
            return true;
        };
        let sig = t.tasks.procs_sig;
        if foreign || sig == 0 || sig != t.tasks.procs_sig_reported {
            t.tasks.procs_sig_reported = sig;
            return true;
        }
        false
    }

    /// The cgroup path used as the `id` label, once resolved.
    pub fn cgroup_path(&self, id: &str) -> Option<&str> {
        self.containers
            .iter()
            .find(|t| &*t.id == id)
            .and_then(|t| t.cgroup_path.as_deref())
    }

    /// Containers tracked.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    /// Containers whose latest reading succeeded.
    pub fn published(&self) -> usize {
        self.containers.iter().filter(|t| t.ok).count()
    }

    /// Duration of the last collection cycle.
    pub fn last_cycle_seconds(&self) -> Option<f64> {
        self.last_cycle_secs
    }
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

/// Reads a file: `Err(())` when the container is gone, `Ok(None)` when the
/// file is missing or unreadable this cycle.
fn read<'b>(buf: &'b mut ReadBuf, src: &Src, multi: bool) -> Result<Option<&'b [u8]>, ()> {
    match buf.read(src, multi) {
        Outcome::Ok(n) => Ok(Some(buf.bytes(n))),
        Outcome::Gone => Err(()),
        Outcome::Missing | Outcome::Failed => Ok(None),
    }
}

fn read_u64(buf: &mut ReadBuf, src: &Src) -> Result<Option<u64>, ()> {
    Ok(read(buf, src, false)?.and_then(|b| cg::parse_single_u64(b).ok()))
}

/// Directory handles for the limit files (v2: all in slot `MEM`).
#[derive(Debug, Default)]
struct SpecDirs([Option<OwnedFd>; 3]);

impl SpecDirs {
    const MEM: usize = 0;
    const PIDS: usize = 1;
    const CPU: usize = 2;

    fn open(d: &CgroupDirs, v2: bool) -> SpecDirs {
        let handle = |p: &Option<PathBuf>| p.as_deref().and_then(|p| sys::open_dir_handle(p).ok());
        if v2 {
            SpecDirs([handle(&d.unified), None, None])
        } else {
            SpecDirs([handle(&d.memory), handle(&d.pids), handle(&d.cpu)])
        }
    }

    fn get(&self, slot: usize) -> Option<&OwnedFd> {
        self.0.get(slot)?.as_ref()
    }
}

/// Reads `name` in a limit directory through a freshly opened fd (limit files
/// are read rarely, so they hold no fd and no kernel read buffer).
fn read_in<'b>(buf: &'b mut ReadBuf, dir: Option<&OwnedFd>, name: &CStr) -> Option<&'b [u8]> {
    let src = match sys::open_at(dir?, name) {
        Ok(f) => Src::Open(f),
        Err(_) => Src::Missing,
    };
    match buf.read(&src, false) {
        Outcome::Ok(n) => Some(buf.bytes(n)),
        _ => None,
    }
}

fn read_limit(buf: &mut ReadBuf, dir: Option<&OwnedFd>, name: &CStr) -> Option<Limit> {
    read_in(buf, dir, name).and_then(|b| cg::parse_limit(b).ok())
}

/// Re-reads the limits: at track, on `update_info`, and every [`SPEC_EVERY`] cycles.
fn read_spec(t: &mut Tracked, buf: &mut ReadBuf, v2: bool, memory: bool) {
    if t.cgroup_path.is_none() {
        return;
    }
    let d = &t.spec_dirs;
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
        if let Some(m) = read_in(buf, u, c"cpu.max").and_then(|b| cg::parse_cpu_max(b).ok()) {
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
        s.cpu_period =
            read_in(buf, cpu, c"cpu.cfs_period_us").and_then(|b| cg::parse_single_u64(b).ok());
    }
    t.spec = s;
}

/// What decides which files a cycle reads, and where `/proc` is.
#[derive(Clone, Copy)]
struct ReadMode<'a> {
    /// The rootfs as text, without a trailing `/`.
    rootfs: &'a str,
    v2: bool,
    /// Cgroup process lists are of no use (see [`Collector::container_pids`]).
    foreign_pidns: bool,
    /// Keep the process fingerprint.
    process_fingerprints: bool,
}

/// Reads every per-cycle file of a container. `None` when it is gone.
fn read_container(
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
        if let Some(b) = read(buf, &fl[f::CPU_STAT], false).ok()? {
            if let Ok(s) = cg::parse_cpu_stat(b) {
                r.cpu_ns = s.usage_usec.map(|v| v.saturating_mul(1000));
                r.user_ns = s.user_usec.map(|v| v.saturating_mul(1000));
                r.system_ns = s.system_usec.map(|v| v.saturating_mul(1000));
                r.cfs_periods = s.nr_periods;
                r.cfs_throttled = s.nr_throttled;
                r.cfs_throttled_ns = s.throttled_usec.map(|v| v.saturating_mul(1000));
            }
        }
    } else {
        r.cpu_ns = read_u64(buf, &fl[f::CPUACCT_USAGE]).ok()?;
        if let Some(b) = read(buf, &fl[f::CPUACCT_STAT], false).ok()? {
            if let Ok(s) = cg::parse_cpuacct_stat(b) {
                r.user_ns = s.user.map(|v| v.saturating_mul(10_000_000));
                r.system_ns = s.system.map(|v| v.saturating_mul(10_000_000));
            }
        }
        // CFS counters matter only under a quota (they are published only then).
        let cfs = if quota_set {
            read(buf, &fl[f::CPU_STAT], false).ok()?
        } else {
            None
        };
        if let Some(b) = cfs {
            if let Ok(s) = cg::parse_cpu_stat(b) {
                r.cfs_periods = s.nr_periods;
                r.cfs_throttled = s.nr_throttled;
                r.cfs_throttled_ns = s.throttled_time;
            }
        }
    }
    r.mem = read_mem(fl, buf, v2).ok()?;
    let blk = read_blk(fl, buf, v2).ok()?;
    r.blk = blk.as_ref().map(|b| b.total);

    if !foreign_pidns {
        // Processes first: when each has one thread (most containers), their
        // states are the load and the task list need not be read at all.
        let procs = read(buf, &fl[f::PROCS], false).ok()?;
        task_cache.procs_sig = match procs {
            Some(b) if process_fingerprints => fnv1a(FNV_OFFSET, b),
            _ => 0,
        };
        r.processes = procs.and_then(|b| cg::count_pids(b).ok());
        let single = procs.and_then(|b| single_threaded_runnable(b, task_cache, path_buf, rootfs));
        if let Some(runnable) = single {
            r.runnable = Some(runnable);
            r.threads = r.processes;
        } else if let Some(b) = read(buf, &fl[f::TASKS], false).ok()? {
            let (tasks, runnable) = count_runnable(b, task_cache, path_buf, rootfs);
            r.runnable = Some(runnable);
            r.threads = Some(tasks);
        }
    }
    if r.threads.is_none() {
        r.threads = read_u64(buf, &fl[f::PIDS_CURRENT]).ok()?;
    }
    let mut net = None;
    let mut tcp: Option<pp::TcpStates> = None;
    if fl[f::NET_DEV].is_open() {
        // A vanished process is not fatal here: the cgroup files decide "gone".
        if let Ok(Some(b)) = read(buf, &fl[f::NET_DEV], true) {
            net = Some(net_of(b));
        }
        for i in [f::TCP, f::TCP6] {
            if !fl[i].is_open() {
                continue;
            }
            if let Ok(Some(b)) = read(buf, &fl[i], true) {
                if let Ok(s) = pp::parse_tcp_states(b) {
                    tcp.get_or_insert_with(Default::default).merge(&s);
                }
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
    if let Some(b) = read(buf, &fl[f::MEM_STAT], false)? {
        if let Ok(s) = cg::parse_memory_stat(b) {
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
    if let Some(b) = read(buf, &fl[f::MEM_OOM], false)? {
        m.oom_kills = if v2 {
            cg::parse_memory_events(b).ok().and_then(|e| e.oom_kill)
        } else {
            cg::parse_oom_control(b).ok().and_then(|e| e.oom_kill)
        };
    }
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
        for row in cg::io_stat_rows(b).filter_map(Result::ok) {
            let d = row.device;
            for (k, v) in [row.rbytes, row.wbytes, row.rios, row.wios]
                .into_iter()
                .enumerate()
            {
                blk.add(d.major, d.minor, k, v.unwrap_or(0));
            }
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
        for row in cg::blkio_rows(b).filter_map(Result::ok) {
            let k = match row.op {
                cg::BlkioOp::Read => read_k,
                cg::BlkioOp::Write => write_k,
                _ => continue,
            };
            blk.add(row.device.major, row.device.minor, k, row.value);
        }
    }
    Ok(any.then_some(blk))
}

/// Tasks whose `/proc/<tid>/stat` fd is kept open (most containers run a few).
const MAX_CACHED_TASKS: usize = 8;

/// Open `/proc/<tid>/stat` fds of a container's first tasks, so the load
/// average costs one `pread` per task instead of open + read + close.
#[derive(Debug, Default)]
pub(super) struct TaskCache {
    entries: Vec<(u32, File, u64)>,
    generation: u64,
    /// This cycle's fingerprint of the container's processes: the
    /// `cgroup.procs` list and the name of every task whose stat was read.
    /// 0 when unknown.
    procs_sig: u64,
    /// `procs_sig` when the process list was last handed out.
    procs_sig_reported: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `h`.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The `/proc/<tid>/stat` text of a task into `stat` (the byte count read):
/// through the cached fd, else a fresh open (cached when there is room).
/// Its `pid (comm)` goes into the container's process fingerprint.
fn read_task_stat(
    cache: &mut TaskCache,
    tid: u32,
    stat: &mut [u8; 1024],
    path_buf: &mut String,
    rootfs: &str,
) -> Option<usize> {
    let generation = cache.generation;
    let cached = cache.entries.iter_mut().find(|e| e.0 == tid).and_then(|e| {
        e.2 = generation;
        // On failure the task behind the fd died and the tid came back: reopen.
        e.1.read_at(stat, 0).map_err(|_| e.2 = 0).ok()
    });
    let n = match cached {
        Some(n) => n,
        None => {
            path_buf.clear();
            let _ = write!(path_buf, "{rootfs}/proc/{tid}/stat");
            let file = File::open(path_buf.as_str()).ok()?;
            let n = file.read_at(stat, 0).ok()?;
            cache.entries.retain(|e| e.0 != tid);
            if cache.entries.len() < MAX_CACHED_TASKS {
                cache.entries.push((tid, file, generation));
            }
            n
        }
    };
    let text = stat.get(..n)?;
    if cache.procs_sig != 0 {
        // A renamed or exec'd process changes the fingerprint.
        if let Some((head, _)) = crate::parse::rsplit_once_byte(text, b')') {
            cache.procs_sig = fnv1a(cache.procs_sig, head);
        }
    }
    Some(n)
}

/// State letter of a task (`R`, `S`, `D`…).
fn task_state(
    cache: &mut TaskCache,
    tid: u32,
    stat: &mut [u8; 1024],
    path_buf: &mut String,
    rootfs: &str,
) -> Option<u8> {
    let n = read_task_stat(cache, tid, stat, path_buf, rootfs)?;
    pp::parse_pid_state(stat.get(..n)?).ok()
}

/// How many processes of a `cgroup.procs` listing run or wait
/// uninterruptibly, when every one of them has a single thread (so the
/// processes are all the tasks). `None` when one has more threads, or its
/// stat is unreadable: the caller then reads the task list.
fn single_threaded_runnable(
    procs: &[u8],
    cache: &mut TaskCache,
    path_buf: &mut String,
    rootfs: &str,
) -> Option<u32> {
    let mut stat = [0u8; 1024];
    let mut runnable = 0u32;
    cache.generation += 1;
    for (i, pid) in cg::pids(procs).enumerate() {
        if i >= MAX_LOAD_TASKS {
            return None;
        }
        let n = read_task_stat(cache, pid.ok()?, &mut stat, path_buf, rootfs)?;
        let (state, threads) = pp::parse_pid_state_threads(stat.get(..n)?).ok()?;
        if threads != 1 {
            return None;
        }
        runnable += u32::from(matches!(state, b'R' | b'D'));
    }
    // Forget processes that left (their fds close here).
    let generation = cache.generation;
    cache.entries.retain(|e| e.2 == generation);
    Some(runnable)
}

/// Counts the tasks of a `tasks`/`cgroup.threads` listing and how many of
/// them run or wait uninterruptibly (`R`/`D` in `/proc/<tid>/stat`).
fn count_runnable(
    list: &[u8],
    cache: &mut TaskCache,
    path_buf: &mut String,
    rootfs: &str,
) -> (u64, u32) {
    let mut tasks = 0u64;
    let mut runnable = 0u32;
    let mut stat = [0u8; 1024];
    cache.generation += 1;
    for tid in cg::pids(list).filter_map(Result::ok) {
        tasks += 1;
        if tasks as usize > MAX_LOAD_TASKS {
            continue;
        }
        if let Some(b'R' | b'D') = task_state(cache, tid, &mut stat, path_buf, rootfs) {
            runnable += 1;
        }
    }
    // Forget tasks that left (their fds close here).
    let generation = cache.generation;
    cache.entries.retain(|e| e.2 == generation);
    (tasks, runnable)
}

/// Exponential averages like the kernel's: `load = load·e + n·(1 − e)`, `e = exp(−Δt/τ)`.
fn update_load(load: &mut [f64; 4], runnable: Option<u32>, prev_at: Option<Instant>, now: Instant) {
    let Some(n) = runnable else { return };
    let Some(prev) = prev_at else { return };
    let dt = now.saturating_duration_since(prev).as_secs_f64();
    if dt <= 0.0 {
        return;
    }
    for (l, tau) in load.iter_mut().zip([10.0, 60.0, 300.0, 900.0]) {
        let e = (-dt / tau).exp();
        *l = *l * e + n as f64 * (1.0 - e);
    }
}

/// The interface counters of a `net/dev` file, loopback left out.
fn net_of(net_dev: &[u8]) -> Net {
    let mut n = Net::default();
    for row in pp::net_dev_rows(net_dev).filter_map(Result::ok) {
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
    n
}

/// One reading of the host's files.
fn read_host(h: &HostState, buf: &mut ReadBuf, now: Instant) -> HostReading {
    let mut r = HostReading {
        at: Some(now),
        ..HostReading::default()
    };
    // /proc/stat and /proc/meminfo are single-show files: one read returns them whole.
    if let Ok(Some(b)) = read(buf, &h.stat, false) {
        if let Ok(s) = pp::parse_proc_stat(b) {
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
    if let Ok(Some(b)) = read(buf, &h.meminfo, false) {
        if let Ok(m) = pp::parse_meminfo(b) {
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
    if let Ok(Some(b)) = read(buf, &h.loadavg, false) {
        if let Ok(l) = pp::parse_loadavg(b) {
            r.load = Some([l.load1(), l.load5(), l.load15()]);
        }
    }
    if let Ok(Some(b)) = read(buf, &h.net_dev, true) {
        r.net = Some(net_of(b));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_sanitized_and_deduplicated() {
        let info = ContainerInfo {
            name: "web".into(),
            image: "img:1".into(),
            labels: vec![
                ("a.b".into(), "1".into()),
                ("a-b".into(), "2".into()),
                ("q".into(), "say \"hi\"\\\n".into()),
            ],
            ..ContainerInfo::default()
        };
        let l = build_labels(&info);
        assert_eq!(
            &*l,
            "image=\"img:1\",name=\"web\",container_label_a_b=\"1\",container_label_q=\"say \\\"hi\\\"\\\\\\n\""
        );
    }

    #[test]
    fn load_average_converges() {
        let t0 = Instant::now();
        let mut load = [0.0; 4];
        let mut at = t0;
        for _ in 0..100 {
            let next = at + std::time::Duration::from_secs(5);
            update_load(&mut load, Some(2), Some(at), next);
            at = next;
        }
        assert!((load[0] - 2.0).abs() < 1e-6);
        assert!((load[1] - 2.0).abs() < 1e-3);
        assert!(load[3] > 0.5 && load[3] < 2.0);
    }
}
