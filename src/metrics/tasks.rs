//! Processes and load average of a container seen from the agent's own PID
//! namespace: its cgroup's process and task lists, and the state of each
//! task in `/proc/<tid>/stat` (through fds kept open for the first few
//! long-lived tasks, and only those: a bounded budget per cycle).
//! From another namespace `pidscan` finds them instead.

use crate::cgroup::parse as cg;
use crate::procfs::parse as pp;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// At most this many processes are looked at by the host-process scan
/// (foreign PID namespace) for a container's load average.
pub(super) const MAX_LOAD_TASKS: usize = 256;

/// The per-cycle budget of task reads: at most this many `/proc/<tid>/stat`
/// fds are kept per container, and only they are read (one `pread` each).
/// The load average and task states count the runnable tasks among them:
/// a container of more tasks costs no more, its load is a lower bound.
pub(super) const MAX_CACHED_TASKS: usize = 8;

/// One kept `/proc/<tid>/stat`: the tid, its fd, the cycle it was last
/// read in, and what that read found (state letter, threads).
#[derive(Debug)]
struct Kept {
    tid: u32,
    file: File,
    generation: u64,
    state: u8,
    threads: u64,
    /// Hash of its `pid (comm)` when opened.
    name0: u64,
}

/// Open `/proc/<tid>/stat` fds of a container's first long-lived tasks, so
/// the load average costs one `pread` per kept task and no open. A task is
/// opened only once it is listed in two cycles in a row (a short-lived
/// child, such as a shell loop's `sleep`, is never opened just to find it
/// exited), at most one open per cycle.
#[derive(Debug, Default)]
pub(super) struct TaskCache {
    entries: Vec<Kept>,
    /// Tasks listed last cycle and not kept: the candidates to open.
    seen: Vec<u32>,
    /// Tasks listed this cycle and not kept (the next cycle's `seen`).
    seen_next: Vec<u32>,
    /// An open was spent this cycle.
    opened: bool,
    generation: u64,
    /// This cycle's fingerprint of the container's processes: the
    /// `cgroup.procs` list and every kept task's change of name since it
    /// was opened.
    /// 0 when unknown.
    procs_sig: u64,
    /// `procs_sig` when the process list was last handed out.
    procs_sig_reported: u64,
}

/// What the kept tasks of one listing tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sample {
    /// Runnable (`R`, `D`) tasks among the kept ones listed.
    pub runnable: u32,
    /// Every listed task is kept and was read.
    pub covered: bool,
    /// Every kept task listed has one thread.
    pub single_threaded: bool,
}

impl TaskCache {
    /// Starts this cycle's process fingerprint from the `cgroup.procs`
    /// text (`None`, or `on` false: unknown).
    pub(super) fn start_fingerprint(&mut self, procs: Option<&[u8]>, on: bool) {
        self.procs_sig = match procs {
            Some(b) if on => fnv1a(FNV_OFFSET, b),
            _ => 0,
        };
    }

    /// True when the processes may differ from when this last answered
    /// true: the fingerprint changed, is unknown, or `unknown` is set.
    pub(super) fn processes_changed(&mut self, unknown: bool) -> bool {
        let sig = self.procs_sig;
        if unknown || sig == 0 || sig != self.procs_sig_reported {
            self.procs_sig_reported = sig;
            return true;
        }
        false
    }

    /// Starts a cycle's samples (a kept task is read once per cycle however
    /// many listings name it).
    pub(super) fn begin(&mut self) {
        self.generation += 1;
        self.opened = false;
        self.seen_next.clear();
    }

    /// Ends a cycle: tasks no listing named are forgotten (their fds close).
    pub(super) fn end(&mut self) {
        let generation = self.generation;
        self.entries.retain(|e| e.generation == generation);
        std::mem::swap(&mut self.seen, &mut self.seen_next);
        self.seen_next.clear();
    }

    /// Looks at the tasks of a listing (`cgroup.procs`, `tasks` or
    /// `cgroup.threads`) through the kept fds, opening at most one new.
    pub(super) fn sample(&mut self, list: &[u8], path_buf: &mut String, rootfs: &str) -> Sample {
        let mut s = Sample {
            runnable: 0,
            covered: true,
            single_threaded: true,
        };
        let mut stat = [0u8; 1024];
        let generation = self.generation;
        for tid in cg::pids(list) {
            let Ok(tid) = tid else {
                s.covered = false;
                continue;
            };
            let known = match self.entries.iter_mut().position(|e| e.tid == tid) {
                Some(i) => {
                    let e = &mut self.entries[i];
                    if e.generation == generation {
                        true
                    } else {
                        match read_kept(e, generation, &mut stat) {
                            Some(h) => {
                                let renamed = fnv1a(FNV_OFFSET, h) ^ e.name0;
                                if self.procs_sig != 0 && renamed != 0 {
                                    self.procs_sig = fnv1a(self.procs_sig, &renamed.to_le_bytes());
                                }
                                true
                            }
                            None => {
                                // Gone (or its tid reused): its fd closes.
                                self.entries.swap_remove(i);
                                false
                            }
                        }
                    }
                }
                None => self.try_open(tid, generation, &mut stat, path_buf, rootfs),
            };
            let Some(e) = self
                .entries
                .iter()
                .find(|e| known && e.tid == tid && e.generation == generation)
            else {
                s.covered = false;
                if self.seen_next.len() < MAX_CACHED_TASKS && !self.seen_next.contains(&tid) {
                    self.seen_next.push(tid);
                }
                continue;
            };
            s.runnable += u32::from(matches!(e.state, b'R' | b'D'));
            s.single_threaded &= e.threads == 1;
        }
        s
    }

    /// Opens `tid`'s stat if it was listed last cycle, no open was spent
    /// this cycle and there is room; true when it is now kept and read.
    fn try_open(
        &mut self,
        tid: u32,
        generation: u64,
        stat: &mut [u8; 1024],
        path_buf: &mut String,
        rootfs: &str,
    ) -> bool {
        if self.opened || self.entries.len() >= MAX_CACHED_TASKS || !self.seen.contains(&tid) {
            return false;
        }
        self.opened = true;
        path_buf.clear();
        let _ = write!(path_buf, "{rootfs}/proc/{tid}/stat");
        let Ok(file) = File::open(path_buf.as_str()) else {
            return false;
        };
        // A task's fd is only a cache: past the ceiling it is not kept.
        if !super::files::may_keep(&file) {
            return false;
        }
        let mut e = Kept {
            tid,
            file,
            generation: 0,
            state: 0,
            threads: 0,
            name0: 0,
        };
        let Some(head) = read_kept(&mut e, generation, stat) else {
            return false;
        };
        // Its name enters the fingerprint when it changes (its pid is in
        // the process list already).
        e.name0 = fnv1a(FNV_OFFSET, head);
        self.entries.push(e);
        true
    }
}

/// Reads a kept task's stat into `e`: its `pid (comm)` head (for the
/// process fingerprint) when readable and parsed.
fn read_kept<'s>(e: &mut Kept, generation: u64, stat: &'s mut [u8; 1024]) -> Option<&'s [u8]> {
    let n = e.file.read_at(stat, 0).ok()?;
    let text = stat.get(..n)?;
    let (state, threads) = pp::parse_pid_state_threads(text).ok()?;
    e.state = state;
    e.threads = threads;
    e.generation = generation;
    crate::parse::rsplit_once_byte(text, b')').map(|(head, _)| head)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `h`.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Exponential averages like the kernel's: `load = load·e + n·(1 − e)`, `e = exp(−Δt/τ)`.
pub(super) fn update_load(
    load: &mut [f64; 4],
    runnable: Option<u32>,
    prev_at: Option<Instant>,
    now: Instant,
) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(tid: u32, state: char) -> String {
        format!("{tid} (t{tid}) {state} 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1000 10\n")
    }

    #[test]
    fn task_reads_stay_within_the_budget() {
        let root = std::env::temp_dir().join(format!("outlyer-tasks-{}", std::process::id()));
        for tid in 1..=20u32 {
            std::fs::create_dir_all(root.join(format!("proc/{tid}"))).unwrap();
            let state = if tid % 2 == 0 { 'R' } else { 'S' };
            std::fs::write(root.join(format!("proc/{tid}/stat")), stat_line(tid, state)).unwrap();
        }
        let rootfs = root.to_str().unwrap();
        let list: String = (1..=20u32).map(|t| format!("{t}\n")).collect();
        let mut cache = TaskCache::default();
        let mut path = String::new();
        let mut cycle = |cache: &mut TaskCache, list: &str| {
            cache.begin();
            let s = cache.sample(list.as_bytes(), &mut path, rootfs);
            cache.end();
            s
        };
        // Listed once: nothing opened (a short-lived task is never opened).
        let s = cycle(&mut cache, &list);
        assert_eq!((s.runnable, s.covered, cache.entries.len()), (0, false, 0));
        // Then one open per cycle, up to the budget of 8 kept tasks.
        for k in 1..=12usize {
            let s = cycle(&mut cache, &list);
            assert_eq!(cache.entries.len(), k.min(MAX_CACHED_TASKS));
            assert!(!s.covered);
        }
        // Tasks 1..=8 are kept: 4 of them (the even ones) run.
        assert_eq!(cycle(&mut cache, &list).runnable, 4);
        // A kept task whose stat no longer reads (it exited) is dropped;
        // a short list is covered.
        std::fs::write(root.join("proc/2/stat"), "").unwrap();
        let s = cycle(&mut cache, "1\n2\n3\n");
        assert_eq!((s.runnable, s.covered, cache.entries.len()), (0, false, 2));
        let s = cycle(&mut cache, "1\n3\n");
        assert!(s.covered && s.single_threaded);
        std::fs::remove_dir_all(&root).unwrap();
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
