//! The collector: per tick, read the host and every tracked container from
//! the kernel's files (fds kept open, `pread` into one buffer) and keep the
//! latest readings for the Outlyer and Prometheus views.

use super::files::{self, ReadBuf, Src};
use super::open::{self, f, HostFiles};
use super::outlyer::{container_values, host_values, HostContext, Values};
use super::pidscan::{self, PidCounts};
use super::prometheus::{self, Cursor as PromCursor, View};
use super::read::{read_container, read_host, ReadMode};
use super::reading::HostReading;
use super::state::{HostState, Tracked};
use super::tasks::MAX_LOAD_TASKS;
use crate::cgroup::mounts::{self, Hierarchies, Layout};
use crate::cgroup::parse as cg;
use crate::registry::ContainerInfo;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Spec files are re-read every this many cycles (and on `update_info`).
const SPEC_EVERY: u64 = 30;

/// One log line; the single place to swap for the logging module's macros.
/// The caller's line is the site the flood limit counts by.
#[track_caller]
fn log_line(args: std::fmt::Arguments<'_>) {
    crate::log::write("info", format_args!("collector: {args}"));
}

/// Reads host and container figures each tick; see the module docs.
pub struct Collector {
    rootfs: PathBuf,
    /// `rootfs` as text without a trailing `/`, for building `/proc/<tid>/stat` paths.
    rootfs_str: String,
    host_finger: String,
    hier: Hierarchies,
    containers: Vec<Tracked>,
    buf: ReadBuf,
    path_buf: String,
    host: HostState,
    last_cycle_secs: Option<f64>,
    cycle: u64,
    logged_swap_off: bool,
    logged_fd_limit: bool,
    tcp_states: bool,
    /// Fingerprint each container's processes (see [`Collector::processes_changed`]).
    process_fingerprints: bool,
    /// The agent does not see the host's PIDs in cgroup files (no `--pid host`).
    foreign_pidns: bool,
    /// The cycle being read, a slice of containers per call.
    pending: Option<Pending>,
    /// Containers tracked since the last scan of the host's processes
    /// (foreign PID namespace only), and when the first of them came.
    unscanned: Vec<Box<str>>,
    unscanned_since: Option<Instant>,
    /// The current window of scans for newly tracked containers: when it
    /// began and how long its scans took.
    scan_window: Option<(Instant, Duration)>,
    /// Scan time per window that newly tracked containers may take at once.
    scan_budget: Duration,
    /// How long the last scan took (the next one is expected to cost as much).
    scan_cost: Duration,
}

/// A collection cycle in progress.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The next container to read, and the end of the cycle's range
    /// (containers tracked meanwhile were read by `track` and wait for
    /// the next cycle).
    next: usize,
    end: usize,
    now: Instant,
    unix_secs: f64,
    host: (u64, u32),
    /// Time spent reading so far (the slices, not the waits between them).
    busy: Duration,
}

/// Newly tracked containers' processes (foreign PID namespace only) are
/// found by scans of the host's processes, accounted per window of this
/// length: while the window's scans took less than [`SCAN_BUDGET`], a new
/// container is scanned for at once (its processes show with its first
/// reading); past that, those tracked in the rest of the window share one
/// scan at its end. A window lasts at least ten times the last scan, so a
/// few containers on a small host are all scanned for at once, and a
/// listing of thousands on a host of thousands of processes costs about a
/// tenth of the time in scans, not one scan per container.
pub const SCAN_NEW_AFTER: Duration = Duration::from_millis(200);
/// Scan time per window spent at once on newly tracked containers.
pub const SCAN_BUDGET: Duration = Duration::from_millis(20);

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
        let host = HostState {
            files: HostFiles::open(rootfs),
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
            pending: None,
            unscanned: Vec::new(),
            unscanned_since: None,
            scan_window: None,
            scan_budget: SCAN_BUDGET,
            scan_cost: Duration::ZERO,
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
            t.restart();
        } else {
            self.containers.push(Tracked::new(info));
        }
        // The host's /proc/stat at this instant, for the container's first
        // CPU rate; the host's own rate window stays as the last cycle left it.
        let fresh = read_host(&self.host.files, &mut self.buf, now);
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
            let (start, spent) = match self.scan_window {
                Some((start, spent))
                    if now.saturating_duration_since(start) < self.scan_window_len() =>
                {
                    (start, spent)
                }
                _ => (now, Duration::ZERO),
            };
            if self.unscanned.is_empty() && spent + self.scan_cost <= self.scan_budget {
                // One scan for this container, so its processes show at once.
                let found = timed_scan(&self.rootfs, &[info.id.as_str()], &mut self.scan_cost);
                self.containers[idx].pids = found.into_iter().next();
                self.scan_window = Some((start, spent + self.scan_cost));
            } else {
                self.scan_window = Some((start, spent));
                // The next scan, shared with every container tracked until
                // then (at most SCAN_NEW_AFTER away).
                self.unscanned.push(info.id.as_str().into());
                self.unscanned_since.get_or_insert(now);
            }
        }
        self.collect_one(idx, (fresh.docker_ticks, fresh.online_cpus), now, unix_secs);
    }

    pub fn untrack(&mut self, id: &str) {
        let Some(i) = self.containers.iter().position(|t| &*t.id == id) else {
            return;
        };
        self.containers.remove(i);
        if let Some(p) = self.pending.as_mut() {
            // The cycle's range keeps pointing at the same containers.
            if i < p.end {
                p.end -= 1;
                if i < p.next {
                    p.next -= 1;
                }
            }
        }
    }

    /// A window of scans for new containers: ten times the last scan, at
    /// least [`SCAN_NEW_AFTER`].
    fn scan_window_len(&self) -> Duration {
        SCAN_NEW_AFTER.max(self.scan_cost * 10)
    }

    /// Sets the scan time per window newly tracked containers may take at
    /// once (default [`SCAN_BUDGET`]; tests set zero to see a burst share).
    pub fn set_scan_budget(&mut self, budget: Duration) {
        self.scan_budget = budget;
    }

    /// When [`Collector::scan_new`] has work (foreign PID namespace only).
    pub fn deadline(&self) -> Option<Instant> {
        // The end of the current window.
        let since = self.unscanned_since?;
        Some(self.scan_window.map_or(since, |(start, _)| start) + self.scan_window_len())
    }

    /// One scan of the host's processes for every container tracked since
    /// the last one, once [`Collector::deadline`] has passed.
    pub fn scan_new(&mut self, now: Instant) {
        if self.deadline().is_none_or(|d| d > now) {
            return;
        }
        self.unscanned_since = None;
        let ids = std::mem::take(&mut self.unscanned);
        let wanted: Vec<&str> = ids.iter().map(|id| &**id).collect();
        let found = timed_scan(&self.rootfs, &wanted, &mut self.scan_cost);
        // The shared scan opens the next window, and counts in it.
        self.scan_window = Some((now, self.scan_cost));
        let mut found: HashMap<&str, PidCounts> = wanted.into_iter().zip(found).collect();
        for t in &mut self.containers {
            if let Some(counts) = found.remove(&*t.id) {
                // The first reading was taken without them: fill them in.
                t.cur.processes = Some(counts.pids.len() as u64);
                t.cur.threads = Some(counts.threads);
                t.cur.runnable = Some(counts.runnable);
                t.pids = Some(counts);
            }
        }
    }

    /// Metadata changed (rename, pause/unpause, `docker update`): update
    /// labels and re-read limits without reopening files.
    pub fn update_info(&mut self, info: &ContainerInfo) {
        let Some(t) = self.containers.iter_mut().find(|t| *t.id == *info.id) else {
            return;
        };
        if t.update(info) {
            t.restart();
        }
        if !t.gone {
            t.refresh_spec(
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
        self.begin_cycle(now, unix_secs);
        while !self.continue_cycle(usize::MAX) {}
    }

    /// Starts a cycle: the host's files and, in a foreign PID namespace, the
    /// scan of the host's processes; the containers follow in slices
    /// ([`Collector::continue_cycle`]), so that a loop tracking thousands
    /// answers its sockets between them. A cycle still in progress is
    /// finished first.
    pub fn begin_cycle(&mut self, now: Instant, unix_secs: f64) {
        while !self.continue_cycle(usize::MAX) {}
        let started = Instant::now();
        self.cycle += 1;
        let r = read_host(&self.host.files, &mut self.buf, now);
        self.host.prev = self.host.cur;
        self.host.cur = r;
        host_values(&mut self.host.values, &self.host.cur, &self.host.prev);
        if self.foreign_pidns {
            let ids: Vec<&str> = self.containers.iter().map(|t| &*t.id).collect();
            let found = timed_scan(&self.rootfs, &ids, &mut self.scan_cost);
            for (t, counts) in self.containers.iter_mut().zip(found) {
                t.pids = Some(counts);
            }
            self.unscanned.clear();
            self.unscanned_since = None;
        }
        self.pending = Some(Pending {
            next: 0,
            end: self.containers.len(),
            now,
            unix_secs,
            host: (self.host.cur.docker_ticks, self.host.cur.online_cpus),
            busy: started.elapsed(),
        });
    }

    /// Reads up to `budget` more containers of the cycle in progress; true
    /// when the cycle is complete (or none is in progress).
    pub fn continue_cycle(&mut self, budget: usize) -> bool {
        let Some(mut p) = self.pending else {
            return true;
        };
        let started = Instant::now();
        let stop = p.end.min(p.next.saturating_add(budget));
        while p.next < stop {
            let i = p.next;
            p.next += 1;
            // `collect_one` never removes a container: indices hold.
            self.collect_one(i, p.host, p.now, p.unix_secs);
        }
        p.busy += started.elapsed();
        if p.next >= p.end {
            self.pending = None;
            self.last_cycle_secs = Some(p.busy.as_secs_f64());
            return true;
        }
        self.pending = Some(p);
        false
    }

    /// A cycle is being read in slices.
    pub fn cycle_in_progress(&self) -> bool {
        self.pending.is_some()
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
                self.containers[i].not_found(cycle);
                return;
            }
        }
        let t = &mut self.containers[i];
        if cycle % SPEC_EVERY == 0 && !reopened {
            t.refresh_spec(&mut self.buf, v2, self.hier.memory_enabled);
        }
        // A container found gone makes its unusable reads count for nothing
        // (a cgroup being removed is no fault).
        let unusable = self.buf.unusable;
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
                t.record(r, now, unix_secs);
            }
            None => {
                self.buf.unusable = unusable;
                t.vanished(cycle);
            }
        }
    }

    /// Resolves container `i` and opens its files. False when its cgroup was not found.
    fn reopen(&mut self, i: usize) -> bool {
        let v2 = self.hier.layout == Layout::V2;
        let t = &mut self.containers[i];
        let Some(opened) = open::open(&self.hier, &self.rootfs, t.target(), self.tcp_states) else {
            if t.retries == 0 {
                log_line(format_args!(
                    "no cgroup found for container {} (pid {}); will retry",
                    t.short_id(),
                    t.pid
                ));
            }
            return false;
        };
        t.opened(opened);
        t.refresh_spec(&mut self.buf, v2, self.hier.memory_enabled);
        if files::take_fd_exhausted() && !self.logged_fd_limit {
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
        prometheus::write(self.view(), out);
    }

    /// What the Prometheus view renders.
    fn view(&self) -> View<'_> {
        View {
            containers: &self.containers,
            host: &self.host.cur,
            last_cycle_secs: self.last_cycle_secs,
            read_errors: self.buf.unusable,
        }
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
        prometheus::write_some(self.view(), cursor, out, budget)
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
        t.tasks.processes_changed(foreign)
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

    /// Cgroup and proc file reads whose content was unusable since start
    /// (`outlyer_agent_read_errors_total`).
    pub fn read_errors(&self) -> u64 {
        self.buf.unusable
    }

    /// Duration of the last collection cycle.
    pub fn last_cycle_seconds(&self) -> Option<f64> {
        self.last_cycle_secs
    }
}

/// One scan of the host's processes for `ids`; `cost` takes how long it took.
fn timed_scan(rootfs: &Path, ids: &[&str], cost: &mut Duration) -> Vec<PidCounts> {
    let started = Instant::now();
    let found = pidscan::scan(rootfs, ids, MAX_LOAD_TASKS);
    *cost = started.elapsed();
    found
}
