//! Processes and load average of a container seen from the agent's own PID
//! namespace: its cgroup's process and task lists, and the state of each
//! task in `/proc/<tid>/stat` (through fds kept open for the first few).
//! From another namespace `pidscan` finds them instead.

use crate::cgroup::parse as cg;
use crate::procfs::parse as pp;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// At most this many tasks are looked at for a container's load average.
pub(super) const MAX_LOAD_TASKS: usize = 256;

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
            // A task's fd is only a cache: past the ceiling it is not kept.
            if super::files::may_keep(&file) && cache.entries.len() < MAX_CACHED_TASKS {
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
pub(super) fn single_threaded_runnable(
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
pub(super) fn count_runnable(
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
