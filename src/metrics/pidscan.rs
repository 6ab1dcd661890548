//! Processes of containers seen from another PID namespace.
//!
//! The cgroup files `cgroup.procs` and `tasks` list only the PIDs the
//! reading process can see. An agent in a container of its own (the README
//! run lines have no `--pid host`) therefore reads them empty for every
//! other container. The host's procfs mounted under the rootfs still shows
//! every process with its host PID, so in that case the agent finds each
//! container's processes by the container id in `/proc/<pid>/cgroup`: one
//! pass over the host's processes per cycle, done only when needed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::procfs::parse as pp;
use crate::registry::container_ids;

/// True when `<rootfs>/proc` belongs to another PID namespace than the
/// agent's own: `<rootfs>/proc/self` then names the agent by a different PID
/// than `/proc/self` does.
pub fn is_foreign_pid_namespace(rootfs: &Path) -> bool {
    if rootfs == Path::new("/") {
        return false;
    }
    match (
        fs::read_link(rootfs.join("proc/self")),
        fs::read_link("/proc/self"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs != ours,
        _ => false,
    }
}

/// What one scan found for one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidCounts {
    /// Host PIDs of the container's processes.
    pub pids: Vec<u32>,
    pub threads: u64,
    /// Tasks running or in uninterruptible sleep (`R`/`D`).
    pub runnable: u32,
}

/// Reads a small single-show procfs file (`cgroup`, `stat`): one `read`
/// into `buf` (kept at 8 KiB), more only if it fills the buffer.
fn read_small<'b>(path: &Path, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    let mut f = File::open(path).ok()?;
    buf.resize(8192, 0);
    let n = f.read(buf).ok()?;
    if n == buf.len() {
        buf.truncate(n);
        f.read_to_end(buf).ok()?;
        return Some(buf);
    }
    buf.get(..n)
}

/// One pass over `<rootfs>/proc`: for each container id in `ids`, its
/// processes, threads and runnable tasks (the states of at most `max_tasks`
/// threads are read per process).
pub fn scan(rootfs: &Path, ids: &[&str], max_tasks: usize) -> Vec<PidCounts> {
    let mut out = vec![PidCounts::default(); ids.len()];
    if ids.is_empty() {
        return out;
    }
    let index: HashMap<&[u8], usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_bytes(), i))
        .collect();
    let proc = rootfs.join("proc");
    let Ok(dir) = fs::read_dir(&proc) else {
        return out;
    };
    let mut buf = Vec::new();
    let mut path = PathBuf::new();
    let mut task_path = PathBuf::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        path.clone_from(&proc);
        path.push(&name);
        path.push("cgroup");
        let Some(text) = read_small(&path, &mut buf) else {
            continue;
        };
        let Some(&i) = container_ids(text).find_map(|id| index.get(id)) else {
            continue;
        };
        path.set_file_name("stat");
        let Some(Ok(stat)) = read_small(&path, &mut buf).map(pp::parse_pid_stat) else {
            continue;
        };
        let (state, threads) = (stat.state, stat.num_threads.max(1));
        let c = &mut out[i];
        c.pids.push(pid);
        c.threads += threads;
        if threads == 1 {
            c.runnable += u32::from(matches!(state, b'R' | b'D'));
            continue;
        }
        // A multi-threaded process: each thread has its own state.
        path.set_file_name("task");
        let Ok(tasks) = fs::read_dir(&path) else {
            continue;
        };
        for task in tasks.flatten().take(max_tasks) {
            task_path.clone_from(&path);
            task_path.push(task.file_name());
            task_path.push("stat");
            if let Some(Ok(s)) = read_small(&task_path, &mut buf).map(pp::parse_pid_stat) {
                c.runnable += u32::from(matches!(s.state, b'R' | b'D'));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn finds_ids_only_as_whole_64_hex_runs() {
        let text = format!("4:memory:/docker/{A}\n0::/system.slice/docker-{B}.scope\n");
        let found: Vec<&[u8]> = container_ids(text.as_bytes()).collect();
        assert_eq!(found, vec![A.as_bytes(), B.as_bytes()]);
        assert_eq!(container_ids(format!("{A}0").as_bytes()).count(), 0);
        assert_eq!(container_ids(b"1:cpu:/\n").count(), 0);
    }

    #[test]
    fn counts_processes_threads_and_runnable_tasks_per_container() {
        let dir = std::env::temp_dir().join(format!("outlyer-pidscan-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // 100: single-threaded, running, in A. 200: 2 threads in B, one in D.
        // 300: in no container. "self" and non-numeric entries are skipped.
        write(&dir, "proc/100/cgroup", &format!("4:memory:/docker/{A}\n"));
        write(
            &dir,
            "proc/100/stat",
            "100 (yes) R 1 1 1 0 -1 0 0 0 0 0 5 1 0 0 20 0 1 0 50 1000 10",
        );
        write(
            &dir,
            "proc/200/cgroup",
            &format!("0::/system.slice/docker-{B}.scope\n"),
        );
        write(
            &dir,
            "proc/200/stat",
            "200 (java x) S 1 1 1 0 -1 0 0 0 0 0 5 1 0 0 20 0 2 0 50 1000 10",
        );
        write(
            &dir,
            "proc/200/task/200/stat",
            "200 (java x) S 1 1 1 0 -1 0 0 0 0 0 5 1 0 0 20 0 2 0 50 1000 10",
        );
        write(
            &dir,
            "proc/200/task/201/stat",
            "201 (gc) D 1 1 1 0 -1 0 0 0 0 0 5 1 0 0 20 0 2 0 50 1000 10",
        );
        write(&dir, "proc/300/cgroup", "1:cpu:/user.slice\n");
        write(
            &dir,
            "proc/300/stat",
            "300 (sshd) R 1 1 1 0 -1 0 0 0 0 0 5 1 0 0 20 0 1 0 50 1000 10",
        );
        write(&dir, "proc/meminfo", "MemTotal: 1 kB\n");
        let got = scan(&dir, &[A, B], 256);
        assert_eq!(
            got[0],
            PidCounts {
                pids: vec![100],
                threads: 1,
                runnable: 1
            }
        );
        assert_eq!(got[1].pids, vec![200]);
        assert_eq!((got[1].threads, got[1].runnable), (2, 1));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn same_namespace_at_the_real_root() {
        assert!(!is_foreign_pid_namespace(Path::new("/")));
    }
}
