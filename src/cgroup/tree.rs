//! Watches one cgroup hierarchy for containers' cgroups appearing and
//! going, with inotify on its directories (registered with the event
//! loop's `mio::Poll`; nothing is polled). Which directory is a container
//! is [`runtime::classify`]'s rule; this file only keeps the watches.
//!
//! A directory is watched from before it is listed, so a child made in
//! between is seen by the listing, by an event or by both (a pod's cgroup
//! and its first container's are made within microseconds of each other).
//! A container's own directory is not watched or entered: its inner
//! cgroups are its own business, and its removal is an event of its parent.
//! A queue overflow, a rename or a full watch table ends in a walk of the
//! whole tree, which is also the caller's periodic safety net.

use super::runtime::{self, Qos, Runtime};
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io::{self, Read as _};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How deep below the hierarchy's root containers are looked for
/// (`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope` is 5).
pub const MAX_DEPTH: usize = 8;

const DIR_EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

/// A container's cgroup, as the tree found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub runtime: Runtime,
    pub id: String,
    /// The cgroup path inside the hierarchy (`/kubepods/besteffort/pod…/<id>`).
    pub cgroup: String,
    pub pod_uid: Option<String>,
    pub qos: Option<Qos>,
}

/// What one batch of events or a walk changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeEvent {
    Appeared(ContainerCgroup),
    Gone { id: String, cgroup: String },
}

pub struct CgroupTree {
    fd: std::fs::File,
    /// Where the hierarchy is mounted, as the agent reads it.
    mount: PathBuf,
    /// The mount's root inside the hierarchy, without a trailing `/` (`""` for a full mount).
    root: String,
    /// Watch descriptor → the directory's path below the mount (`""` for the mount itself).
    watched: HashMap<i32, Box<str>>,
    /// Container cgroup path → its id.
    containers: HashMap<Box<str>, Box<str>>,
    /// Namespaces whose `/<namespace>/<id>` directories are containerd's.
    namespaces: Vec<String>,
    /// A walk is needed: an overflow, a rename, a watch that could not be added.
    dirty: bool,
    /// The kernel's watch limit was met (logged once).
    out_of_watches: bool,
    buf: Box<[u8]>,
}

impl CgroupTree {
    /// Watches the hierarchy mounted at `mount` whose root is `root`
    /// (mountinfo's field 4). Nothing is read until [`CgroupTree::walk`].
    pub fn new(mount: &Path, root: &str) -> io::Result<CgroupTree> {
        if !mount.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", mount.display()),
            ));
        }
        Ok(CgroupTree {
            fd: sys::inotify_new()?,
            mount: mount.to_path_buf(),
            root: root.trim_end_matches('/').to_owned(),
            watched: HashMap::new(),
            containers: HashMap::new(),
            namespaces: Vec::new(),
            dirty: true,
            out_of_watches: false,
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The containerd namespaces (their task directories' names). A change
    /// makes the next [`CgroupTree::walk`] necessary.
    pub fn set_namespaces(&mut self, mut namespaces: Vec<String>) {
        namespaces.sort();
        if namespaces != self.namespaces {
            self.namespaces = namespaces;
            self.dirty = true;
        }
    }

    /// True when only a walk can tell what runs (see the module text).
    pub fn needs_walk(&self) -> bool {
        self.dirty
    }

    /// Containers known now.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    /// Watches taken.
    pub fn watches(&self) -> usize {
        self.watched.len()
    }

    /// Walks the whole tree: (re)adds every watch and reports containers
    /// that appeared or went since the last look.
    pub fn walk(&mut self, out: &mut Vec<TreeEvent>) {
        self.dirty = false;
        let mut seen: HashSet<Box<str>> = HashSet::with_capacity(self.containers.len());
        self.visit(String::new(), 0, out, Some(&mut seen));
        let gone: Vec<Box<str>> = self
            .containers
            .keys()
            .filter(|path| !seen.contains(*path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(id) = self.containers.remove(&path) {
                out.push(TreeEvent::Gone {
                    id: id.into(),
                    cgroup: path.into(),
                });
            }
        }
    }

    /// Reads every pending event; what they change goes to `out`.
    pub fn drain(&mut self, out: &mut Vec<TreeEvent>) {
        loop {
            let n = match self.fd.read(&mut self.buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            // The buffer is lent out while its events are handled (they
            // add watches through `self`): no copy of a name.
            let buf = std::mem::take(&mut self.buf);
            for (wd, mask, name) in events_in(&buf[..n]) {
                self.event(wd, mask, name, out);
            }
            self.buf = buf;
        }
    }

    fn event(&mut self, wd: i32, mask: u32, name: &[u8], out: &mut Vec<TreeEvent>) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            self.dirty = true;
            return;
        }
        if mask & libc::IN_IGNORED != 0 {
            self.watched.remove(&wd);
            return;
        }
        if mask & libc::IN_ISDIR == 0 {
            return;
        }
        let Some(parent) = self.watched.get(&wd) else {
            return;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        if name.is_empty() || name.contains('/') {
            return;
        }
        let rel = format!("{parent}/{name}");
        if mask & (libc::IN_MOVED_FROM | libc::IN_MOVED_TO) != 0 {
            // A renamed directory keeps its watch under its old path.
            self.dirty = true;
        }
        if mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
            let depth = rel.matches('/').count();
            self.visit(rel, depth, out, None);
        } else if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
            let path = format!("{}{rel}", self.root);
            if let Some(id) = self.containers.remove(path.as_str()) {
                out.push(TreeEvent::Gone {
                    id: id.into(),
                    cgroup: path,
                });
            }
        }
    }

    /// Looks at the directory `rel` (below the mount) at `depth`: a
    /// container is reported, anything else is watched, then listed.
    fn visit(
        &mut self,
        rel: String,
        depth: usize,
        out: &mut Vec<TreeEvent>,
        mut seen: Option<&mut HashSet<Box<str>>>,
    ) {
        let path = if rel.is_empty() && self.root.is_empty() {
            "/".to_owned()
        } else {
            format!("{}{rel}", self.root)
        };
        if let Some(found) = runtime::classify(&path, &self.namespaces) {
            if found.cgroup == path {
                if let Some(seen) = seen.as_deref_mut() {
                    seen.insert(path.as_str().into());
                }
                if !self.containers.contains_key(path.as_str()) {
                    let c = ContainerCgroup {
                        runtime: found.runtime,
                        id: found.id.to_owned(),
                        cgroup: found.cgroup.to_owned(),
                        pod_uid: found.pod_uid,
                        qos: found.qos,
                    };
                    self.containers
                        .insert(path.as_str().into(), c.id.as_str().into());
                    out.push(TreeEvent::Appeared(c));
                }
            }
            // Below a container nothing is looked at.
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        let dir = self.mount.join(rel.trim_start_matches('/'));
        if !self.watch(&dir, &rel) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut children: Vec<String> = Vec::new();
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                children.push(format!("{rel}/{name}"));
            }
        }
        for child in children {
            self.visit(child, depth + 1, out, seen.as_deref_mut());
        }
    }

    /// Adds the watch on `dir`; false when the directory cannot be watched
    /// (gone already, or the kernel's watch table is full).
    fn watch(&mut self, dir: &Path, rel: &str) -> bool {
        let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        match sys::inotify_add(&self.fd, &c, DIR_EVENTS) {
            Ok(wd) => {
                self.watched.insert(wd, rel.into());
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                if !self.out_of_watches {
                    self.out_of_watches = true;
                    crate::warn!(
                        "cgroups: the kernel's inotify watch limit is reached at {} directories; \
                         new containers below {} are found by the periodic walk only \
                         (raise fs.inotify.max_user_watches)",
                        self.watched.len(),
                        dir.display()
                    );
                }
                self.dirty = true;
                // Still listed: the walk finds what is there now.
                true
            }
            Err(_) => false,
        }
    }
}

/// The records of a buffer of `struct inotify_event`s: (wd, mask, name).
/// A 16-byte header (wd, mask, cookie, len) then `len` bytes of NUL-padded
/// name; a truncated record ends the walk.
pub fn events_in(buf: &[u8]) -> impl Iterator<Item = (i32, u32, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = buf.get(at..at + 16)?;
        let wd = i32::from_ne_bytes([head[0], head[1], head[2], head[3]]);
        let mask = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
        let len = u32::from_ne_bytes([head[12], head[13], head[14], head[15]]) as usize;
        let name = buf.get(at + 16..at + 16 + len)?;
        at += 16 + len;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some((wd, mask, &name[..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_records_parse_and_stop_at_a_truncated_one() {
        let mut buf = Vec::new();
        for (wd, mask, name) in [(3i32, libc::IN_CREATE | libc::IN_ISDIR, "pod1"), (4, 0, "")] {
            let padded = if name.is_empty() { 0 } else { 16 };
            buf.extend_from_slice(&wd.to_ne_bytes());
            buf.extend_from_slice(&mask.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&(padded as u32).to_ne_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize(padded, 0);
            buf.extend_from_slice(&n);
        }
        buf.extend_from_slice(&[1, 2, 3]);
        let got: Vec<_> = events_in(&buf).collect();
        assert_eq!(
            got,
            vec![
                (3, libc::IN_CREATE | libc::IN_ISDIR, &b"pod1"[..]),
                (4, 0, &b""[..])
            ]
        );
    }
}
