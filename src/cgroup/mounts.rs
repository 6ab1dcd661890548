//! Finding the cgroup hierarchies the agent can read.
//!
//! The host's mount table comes from `<rootfs>/proc/1/mountinfo` (host PID 1,
//! so mount points are real host paths) or, failing that, the agent's own
//! `/proc/self/mountinfo`. Host paths are then mapped to what the agent sees:
//! `/sys/fs/cgroup/memory` → `<rootfs>/sys/fs/cgroup/memory`, and the CentOS 6
//! `/cgroup/<controller>` layout → `<rootfs>/cgroup/<c>`, `/cgroup/<c>` or
//! `<rootfs>/sys/fs/cgroup/<c>`, whichever exists.

use crate::procfs::parse::{has_controller, is_controller_enabled, mountinfo_rows, unescaped};
use std::path::{Path, PathBuf};

/// How the controllers we read are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 controllers only.
    V1,
    /// v1 controllers plus a controller-less cgroup2 (`unified`) mount.
    Hybrid,
    /// Pure cgroup v2: one hierarchy holds every controller.
    V2,
    /// Nothing usable was found.
    Unknown,
}

/// One mounted hierarchy as the agent reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Root of the mount inside its hierarchy (mountinfo field 4), `/` for a full mount.
    pub root: String,
    /// Where the agent reads the mount (already mapped under the rootfs).
    pub path: PathBuf,
}

impl Hierarchy {
    /// The directory of a cgroup given its path inside the hierarchy
    /// (`/docker/<id>`), or `None` when the path lies outside this mount
    /// or escapes upwards (`/..`, cgroup-namespace relative).
    pub fn dir_of(&self, cgroup_path: &str) -> Option<PathBuf> {
        if cgroup_path.split('/').any(|c| c == "..") {
            return None;
        }
        let root = self.root.trim_end_matches('/');
        let rel = if root.is_empty() {
            cgroup_path
        } else {
            let rest = cgroup_path.strip_prefix(root)?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            Some(self.path.clone())
        } else {
            Some(self.path.join(rel))
        }
    }
}

/// The hierarchies holding the controllers the collector reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchies {
    pub layout: Layout,
    pub cpu: Option<Hierarchy>,
    pub cpuacct: Option<Hierarchy>,
    pub memory: Option<Hierarchy>,
    pub blkio: Option<Hierarchy>,
    pub pids: Option<Hierarchy>,
    /// The cgroup2 mount: every controller when `layout == V2`, controller-less on hybrid hosts.
    pub unified: Option<Hierarchy>,
    /// False when the kernel has the memory controller disabled
    /// (`/proc/cgroups` enabled column 0, or no memory hierarchy/controller).
    pub memory_enabled: bool,
}

impl Hierarchies {
    fn empty() -> Hierarchies {
        Hierarchies {
            layout: Layout::Unknown,
            cpu: None,
            cpuacct: None,
            memory: None,
            blkio: None,
            pids: None,
            unified: None,
            memory_enabled: false,
        }
    }

    /// Takes `at` for `controller` (one of [`CONTROLLERS`]) unless that
    /// controller already has a hierarchy; other names are ignored.
    fn offer(&mut self, controller: &str, at: &Hierarchy) {
        let slot = match controller {
            "cpu" => &mut self.cpu,
            "cpuacct" => &mut self.cpuacct,
            "memory" => &mut self.memory,
            "blkio" => &mut self.blkio,
            "pids" => &mut self.pids,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(at.clone());
        }
    }

    /// Decides the layout from the hierarchies found.
    fn settle_layout(&mut self) {
        let any_v1 = self.cpu.is_some() || self.cpuacct.is_some() || self.memory.is_some();
        self.layout = match (any_v1, self.unified.is_some()) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::V1,
            (false, true) => Layout::V2,
            (false, false) => Layout::Unknown,
        };
    }

    /// One line for the log: what was found where.
    pub fn describe(&self) -> String {
        let mut s = format!("cgroup layout {:?}", self.layout);
        let items = [
            ("cpu", &self.cpu),
            ("cpuacct", &self.cpuacct),
            ("memory", &self.memory),
            ("blkio", &self.blkio),
            ("pids", &self.pids),
            ("unified", &self.unified),
        ];
        for (name, h) in items {
            if let Some(h) = h {
                s.push_str(&format!(" {}={}", name, h.path.display()));
            }
        }
        s
    }
}

/// One cgroup mount of the table, paths decoded.
struct MountEntry<'a> {
    root: String,
    point: String,
    fstype: &'a [u8],
    super_opts: &'a [u8],
}

fn decode(field: &[u8]) -> String {
    let bytes: Vec<u8> = unescaped(field).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn cgroup_mounts(text: &[u8]) -> impl Iterator<Item = MountEntry<'_>> {
    mountinfo_rows(text)
        .filter_map(Result::ok)
        .map(|m| MountEntry {
            root: decode(m.root),
            point: decode(m.mount_point),
            fstype: m.fstype,
            super_opts: m.super_options,
        })
}

/// The controllers we read, in super-option spelling.
const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];

/// Builds the hierarchy table from mountinfo text. `map` turns a mount
/// point of that table into the path the agent reads (or `None` when the
/// agent cannot reach it).
pub fn hierarchies_from_mountinfo(
    text: &[u8],
    map: &dyn Fn(&str) -> Option<PathBuf>,
) -> Hierarchies {
    let mut h = Hierarchies::empty();
    // Two passes: full mounts (root `/`) first, container-scoped views only as a fallback.
    for want_full in [true, false] {
        for e in cgroup_mounts(text) {
            if (e.root == "/") != want_full {
                continue;
            }
            match e.fstype {
                b"cgroup" => {
                    let mut wanted = CONTROLLERS
                        .iter()
                        .filter(|c| has_controller(e.super_opts, c))
                        .peekable();
                    if wanted.peek().is_none() {
                        continue;
                    }
                    let Some(path) = map(&e.point) else {
                        continue;
                    };
                    let at = Hierarchy {
                        root: e.root.clone(),
                        path,
                    };
                    for c in wanted {
                        h.offer(c, &at);
                    }
                }
                b"cgroup2" => {
                    if h.unified.is_some() {
                        continue;
                    }
                    if let Some(path) = map(&e.point) {
                        h.unified = Some(Hierarchy {
                            root: e.root.clone(),
                            path,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    h.settle_layout();
    h
}

fn is_cgroup_dir(p: &Path) -> bool {
    p.join("cgroup.procs").is_file()
}

/// Maps a host mount point to the agent's view under `rootfs`.
pub fn map_host_mount(rootfs: &Path, host_point: &str) -> Option<PathBuf> {
    let rel = host_point.trim_start_matches('/');
    let under = rootfs.join(rel);
    if is_cgroup_dir(&under) {
        return Some(under);
    }
    let direct = PathBuf::from(host_point);
    if is_cgroup_dir(&direct) {
        return Some(direct);
    }
    // CentOS 6 `/cgroup/<c>` that the user mounted at `<rootfs>/sys/fs/cgroup`.
    let last = Path::new(host_point).file_name()?;
    let moved = rootfs.join("sys/fs/cgroup").join(last);
    if is_cgroup_dir(&moved) {
        return Some(moved);
    }
    None
}

/// Fallback when no mount table is readable: look at `<rootfs>/sys/fs/cgroup`.
fn hierarchies_from_scan(rootfs: &Path) -> Hierarchies {
    let mut h = Hierarchies::empty();
    let base = rootfs.join("sys/fs/cgroup");
    if base.join("cgroup.controllers").is_file() {
        h.unified = Some(Hierarchy {
            root: "/".into(),
            path: base,
        });
        h.layout = Layout::V2;
        return h;
    }
    let Ok(rd) = std::fs::read_dir(&base) else {
        return h;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let p = base.join(&name);
        if !is_cgroup_dir(&p) {
            continue;
        }
        if name == "unified" {
            h.unified = Some(Hierarchy {
                root: "/".into(),
                path: p,
            });
            continue;
        }
        let at = Hierarchy {
            root: "/".into(),
            path: p,
        };
        for c in name.split(',') {
            h.offer(c, &at);
        }
    }
    h.settle_layout();
    h
}

/// Discovers the hierarchies under `rootfs` (IO shell around the pure parts).
pub fn discover(rootfs: &Path) -> Hierarchies {
    let mut h = Hierarchies::empty();
    if let Ok(text) = std::fs::read(rootfs.join("proc/1/mountinfo")) {
        h = hierarchies_from_mountinfo(&text, &|p| map_host_mount(rootfs, p));
    }
    if h.layout == Layout::Unknown {
        if let Ok(text) = std::fs::read("/proc/self/mountinfo") {
            // The agent's own table: mount points are already agent paths;
            // prefer those under the rootfs.
            let root_prefix = rootfs.to_path_buf();
            let own = hierarchies_from_mountinfo(&text, &|p| {
                let pb = PathBuf::from(p);
                (pb.starts_with(&root_prefix) && is_cgroup_dir(&pb)).then_some(pb)
            });
            if own.layout != Layout::Unknown {
                h = own;
            }
        }
    }
    if h.layout == Layout::Unknown {
        h = hierarchies_from_scan(rootfs);
    }
    let listed = std::fs::read(rootfs.join("proc/cgroups"))
        .ok()
        .and_then(|c| is_controller_enabled(&c, "memory"));
    h.memory_enabled = match h.layout {
        Layout::V1 | Layout::Hybrid => h.memory.is_some() && listed != Some(false),
        Layout::V2 => {
            let ctl = h
                .unified
                .as_ref()
                .and_then(|u| std::fs::read(u.path.join("cgroup.controllers")).ok())
                .map(|c| c.split(|b| b.is_ascii_whitespace()).any(|w| w == b"memory"))
                .unwrap_or(false);
            ctl && listed != Some(false)
        }
        Layout::Unknown => false,
    };
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &[u8] = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn ident(p: &str) -> Option<PathBuf> {
        Some(PathBuf::from(format!("/r{p}")))
    }

    #[test]
    fn hybrid_separate_cpu_cpuacct() {
        let h = hierarchies_from_mountinfo(HYBRID, &ident);
        assert_eq!(h.layout, Layout::Hybrid);
        assert_eq!(h.cpu.unwrap().path, PathBuf::from("/r/sys/fs/cgroup/cpu"));
        assert_eq!(
            h.cpuacct.unwrap().path,
            PathBuf::from("/r/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            h.unified.unwrap().path,
            PathBuf::from("/r/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn comounted_either_order() {
        for opts in ["rw,cpu,cpuacct", "rw,cpuacct,cpu"] {
            let t = format!(
                "33 24 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:16 - cgroup cgroup {opts}\n\
                 26 24 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
            );
            let h = hierarchies_from_mountinfo(t.as_bytes(), &ident);
            assert_eq!(h.layout, Layout::V1);
            assert_eq!(h.cpu, h.cpuacct);
            assert!(h.memory.is_none());
        }
    }

    #[test]
    fn cpuset_is_not_cpu() {
        let t = b"34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
        let h = hierarchies_from_mountinfo(t, &ident);
        assert!(h.cpu.is_none());
        assert_eq!(h.layout, Layout::Unknown);
    }

    #[test]
    fn pure_v2_and_escapes() {
        let t = b"35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n\
                  36 24 0:31 / /mnt/with\\040space rw - ext4 /dev/sda1 rw\n";
        let h = hierarchies_from_mountinfo(t, &ident);
        assert_eq!(h.layout, Layout::V2);
        assert_eq!(h.unified.unwrap().path, PathBuf::from("/r/sys/fs/cgroup"));
    }

    #[test]
    fn full_mount_preferred_over_scoped_view() {
        let t = b"50 24 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  51 24 0:32 / /host/memory rw - cgroup cgroup rw,memory\n";
        let h = hierarchies_from_mountinfo(t, &ident);
        let m = h.memory.unwrap();
        assert_eq!(m.root, "/");
        assert_eq!(m.path, PathBuf::from("/r/host/memory"));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let t = b"garbage\n\n1 2 3\n32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        let h = hierarchies_from_mountinfo(t, &ident);
        assert!(h.cpu.is_some());
    }

    #[test]
    fn dir_of_joins_relative_to_root() {
        let full = Hierarchy {
            root: "/".into(),
            path: "/m".into(),
        };
        assert_eq!(full.dir_of("/docker/x"), Some(PathBuf::from("/m/docker/x")));
        assert_eq!(full.dir_of("/"), Some(PathBuf::from("/m")));
        assert_eq!(full.dir_of("/../docker-x.scope"), None);
        let scoped = Hierarchy {
            root: "/docker/x".into(),
            path: "/m".into(),
        };
        assert_eq!(scoped.dir_of("/docker/x"), Some(PathBuf::from("/m")));
        assert_eq!(
            scoped.dir_of("/docker/x/sub"),
            Some(PathBuf::from("/m/sub"))
        );
        assert_eq!(scoped.dir_of("/docker/xy"), None);
        assert_eq!(scoped.dir_of("/other"), None);
    }
}
