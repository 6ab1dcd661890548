//! Finding one container's cgroup directories, once, when it appears.
//!
//! Order: (1) `<rootfs>/proc/<pid>/cgroup` joined with the mapped mounts;
//! (2) the usual driver patterns (`/docker/<id>`, `/system.slice/docker-<id>.scope`,
//! `--cgroup-parent`); (3) a bounded walk of the hierarchy for a directory
//! whose name holds the id (Kubernetes, ECS, DinD, cgroup-namespace `/..` paths).

use super::mounts::{Hierarchies, Hierarchy, Layout};
use crate::procfs::parse::pid_cgroup_rows;
use std::path::{Path, PathBuf};

/// Where one container's cgroup files live, per controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupDirs {
    /// The cgroup path inside its hierarchy (`/docker/<id>`), used as the `id` label.
    pub path: String,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    /// The cgroup v2 directory (pure v2 hosts only).
    pub unified: Option<PathBuf>,
}

/// The path of the hierarchy holding `controller` in a `/proc/<pid>/cgroup`
/// text. `""` names the v2 (`0::`) line. Controller lists compare as sets;
/// a ` (deleted)` path counts as absent.
pub fn path_for_controller<'a>(proc_cgroup: &'a [u8], controller: &str) -> Option<&'a str> {
    pid_cgroup_rows(proc_cgroup)
        .filter_map(Result::ok)
        .find(|r| {
            if controller.is_empty() {
                r.is_unified()
            } else {
                r.has_controller(controller)
            }
        })
        .filter(|r| !r.deleted)
        .and_then(|r| std::str::from_utf8(r.path).ok())
}

/// How deep the fallback walk goes below a hierarchy root
/// (`/kubepods.slice/…-burstable.slice/…-pod<uid>.slice/docker-<id>.scope` is 4).
const SEARCH_DEPTH: usize = 8;
/// Upper bound on directories visited by one fallback walk.
const SEARCH_BUDGET: usize = 50_000;

/// Whether a cgroup directory named `name` may be container `id`'s: the
/// name holds the id and is not the runtime monitor's, which Podman and
/// CRI-O put beside the container under the systemd driver
/// (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`).
fn may_be_container(name: &str, id: &str) -> bool {
    name.contains(id) && !name.contains("conmon")
}

/// Walks `h` breadth-first for a directory whose name contains `id`;
/// returns its path inside the hierarchy (`/kubepods/pod…/<id>`).
pub fn search_by_id(h: &Hierarchy, id: &str) -> Option<String> {
    if id.len() < 12 {
        return None;
    }
    let mut queue: Vec<(PathBuf, String, usize)> = vec![(h.path.clone(), String::new(), 0)];
    let mut visited = 0usize;
    let mut head = 0;
    while head < queue.len() {
        let (dir, rel, depth) = queue[head].clone();
        head += 1;
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            visited += 1;
            if visited > SEARCH_BUDGET {
                return None;
            }
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let child_rel = format!("{rel}/{name}");
            if may_be_container(name, id) {
                let root = h.root.trim_end_matches('/');
                return Some(format!("{root}{child_rel}"));
            }
            if depth + 1 < SEARCH_DEPTH {
                queue.push((entry.path(), child_rel, depth + 1));
            }
        }
    }
    None
}

/// The usual places for a container's cgroup when `/proc/<pid>/cgroup` is
/// unusable: Docker's, then Podman's (cgroupfs and systemd managers).
fn guessed_paths(id: &str, cgroup_parent: &str) -> Vec<String> {
    let mut v = vec![
        format!("/docker/{id}"),
        format!("/system.slice/docker-{id}.scope"),
        format!("/libpod_parent/libpod-{id}"),
        format!("/machine.slice/libpod-{id}.scope"),
    ];
    let parent = cgroup_parent.trim_end_matches('/');
    if !parent.is_empty() {
        let parent = if parent.starts_with('/') {
            parent.to_string()
        } else {
            format!("/{parent}")
        };
        v.push(format!("{parent}/{id}"));
        v.push(format!("{parent}/docker-{id}.scope"));
        v.push(format!("{parent}/libpod-{id}"));
        v.push(format!("{parent}/libpod-{id}.scope"));
    }
    v
}

fn existing_dir(h: &Hierarchy, path: &str) -> Option<PathBuf> {
    let d = h.dir_of(path)?;
    d.is_dir().then_some(d)
}

/// Resolves one controller: `/proc/<pid>/cgroup` path, else the path already
/// found for another controller, else the guesses, else a walk.
fn resolve_one(
    h: &Hierarchy,
    proc_path: Option<&str>,
    known: &mut Option<String>,
    id: &str,
    cgroup_parent: &str,
) -> Option<PathBuf> {
    if let Some(p) = proc_path {
        if p.contains(id) {
            if let Some(d) = existing_dir(h, p) {
                known.get_or_insert_with(|| p.to_string());
                return Some(d);
            }
        }
    }
    if let Some(k) = known.as_deref() {
        if let Some(d) = existing_dir(h, k) {
            return Some(d);
        }
    }
    for g in guessed_paths(id, cgroup_parent) {
        if let Some(d) = existing_dir(h, &g) {
            known.get_or_insert(g);
            return Some(d);
        }
    }
    let found = search_by_id(h, id)?;
    let d = existing_dir(h, &found)?;
    known.get_or_insert(found);
    Some(d)
}

/// Resolves a container's directories from an already-read `/proc/<pid>/cgroup`
/// text (empty when unreadable). `exact` is the container's cgroup path when
/// its source knows it (else empty): it comes after the pid's own paths and
/// before every guess. `None` when no controller directory was found.
pub fn resolve_with(
    h: &Hierarchies,
    proc_cgroup: &[u8],
    id: &str,
    exact: &str,
    cgroup_parent: &str,
) -> Option<CgroupDirs> {
    let mut known: Option<String> = (!exact.is_empty()).then(|| exact.to_owned());
    let mut dirs = CgroupDirs::default();
    if h.layout == Layout::V2 {
        let u = h.unified.as_ref()?;
        let p = path_for_controller(proc_cgroup, "");
        dirs.unified = resolve_one(u, p, &mut known, id, cgroup_parent);
    } else {
        // cpuacct first: its path is the label docker/cAdvisor users expect.
        let order: [(&str, &Option<Hierarchy>); 5] = [
            ("cpuacct", &h.cpuacct),
            ("memory", &h.memory),
            ("cpu", &h.cpu),
            ("blkio", &h.blkio),
            ("pids", &h.pids),
        ];
        for (name, hier) in order {
            let Some(hier) = hier else { continue };
            let p = path_for_controller(proc_cgroup, name);
            let d = resolve_one(hier, p, &mut known, id, cgroup_parent);
            match name {
                "cpuacct" => dirs.cpuacct = d,
                "memory" => dirs.memory = d,
                "cpu" => dirs.cpu = d,
                "blkio" => dirs.blkio = d,
                _ => dirs.pids = d,
            }
        }
    }
    dirs.path = known?;
    Some(dirs)
}

/// Resolves a container's directories, reading `<rootfs>/proc/<pid>/cgroup` when `pid > 0`.
pub fn resolve(
    h: &Hierarchies,
    rootfs: &Path,
    id: &str,
    pid: u32,
    exact: &str,
    cgroup_parent: &str,
) -> Option<CgroupDirs> {
    let text = if pid > 0 {
        std::fs::read(rootfs.join(format!("proc/{pid}/cgroup"))).unwrap_or_default()
    } else {
        Vec::new()
    };
    resolve_with(h, &text, id, exact, cgroup_parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[u8] = b"9:name=systemd:/docker/abc\n4:memory:/docker/abc\n\
                      3:cpuacct,cpu:/docker/abc\n0::/docker/abc\n";

    #[test]
    fn controller_lists_compare_as_sets() {
        assert_eq!(path_for_controller(V1, "cpu"), Some("/docker/abc"));
        assert_eq!(path_for_controller(V1, "cpuacct"), Some("/docker/abc"));
        assert_eq!(path_for_controller(V1, "memory"), Some("/docker/abc"));
        assert_eq!(path_for_controller(V1, "blkio"), None);
        assert_eq!(path_for_controller(V1, ""), Some("/docker/abc"));
        assert_eq!(path_for_controller(V1, "systemd"), None);
    }

    #[test]
    fn paths_with_colons_and_garbage() {
        let t = b"garbage\n5:pids:/a:b/c\n6:memory:/docker/x (deleted)\n";
        assert_eq!(path_for_controller(t, "memory"), None);
        assert_eq!(path_for_controller(t, "pids"), Some("/a:b/c"));
    }

    #[test]
    fn guesses_cover_parent_forms() {
        let g = guessed_paths("ID", "my.slice");
        assert!(g.contains(&"/my.slice/docker-ID.scope".to_string()));
        let g = guessed_paths("ID", "/foo/");
        assert!(g.contains(&"/foo/ID".to_string()));
        assert!(g.contains(&"/foo/libpod-ID".to_string()));
        assert_eq!(guessed_paths("ID", "").len(), 4);
    }

    /// A v2 tree with Podman's systemd-driver scopes: the monitor's
    /// `libpod-conmon-<id>.scope` beside the container's `libpod-<id>.scope`.
    fn podman_tree(tag: &str, parent: &str, id: &str) -> (PathBuf, Hierarchies) {
        let root =
            std::env::temp_dir().join(format!("outlyer-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for name in [
            format!("libpod-conmon-{id}.scope"),
            format!("libpod-{id}.scope"),
        ] {
            std::fs::create_dir_all(root.join(parent).join(name)).unwrap();
        }
        let h = Hierarchies {
            layout: Layout::V2,
            cpu: None,
            cpuacct: None,
            memory: None,
            blkio: None,
            pids: None,
            unified: Some(Hierarchy {
                root: "/".into(),
                path: root.clone(),
            }),
            memory_enabled: true,
        };
        (root, h)
    }

    #[test]
    fn monitor_scopes_are_not_containers() {
        for name in [
            "ID",
            "docker-ID.scope",
            "libpod-ID",
            "libpod-ID.scope",
            "crio-ID.scope",
        ] {
            assert!(may_be_container(name, "ID"), "{name}");
        }
        for name in [
            "libpod-conmon-ID.scope",
            "crio-conmon-ID.scope",
            "other.scope",
        ] {
            assert!(!may_be_container(name, "ID"), "{name}");
        }
    }

    #[test]
    fn podman_scope_found_not_its_conmon() {
        let id = "5f2ec6ac0b4b4f0b9c0a1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708";
        // A cgroup-namespace relative path (an agent in a container of its
        // own cgroupns) names no usable directory: the guess must do.
        let (root, h) = podman_tree("guess", "machine.slice", id);
        let d = resolve_with(&h, b"0::/../../machine.slice/x\n", id, "", "").unwrap();
        assert_eq!(d.path, format!("/machine.slice/libpod-{id}.scope"));
        std::fs::remove_dir_all(root).unwrap();
        // A parent nobody guesses: the walk must skip the monitor's scope.
        let (root, h) = podman_tree("walk", "custom.slice", id);
        let d = resolve_with(&h, b"", id, "", "").unwrap();
        assert_eq!(d.path, format!("/custom.slice/libpod-{id}.scope"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
