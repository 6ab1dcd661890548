//! The cgroup-tree source: every container on the node, whatever runs it.
//!
//! The cgroup tree says what runs ([`CgroupTree`], inotify); the runtime's
//! own files say what it is ([`bundle`]: containerd's and CRI-O's OCI
//! bundles). Docker's and Podman's cgroups are left to the Docker API
//! source, which knows more about them; a bare id under a Kubernetes pod
//! cgroup is taken when a bundle names it, or when no Docker API source
//! runs.
//!
//! A container is reported once its bundle and its init pid are on disk:
//! the runtime writes the pid file after every controller's directory is
//! made and joined, so the collector resolves all of them at once. Until
//! then the container is pending and looked at again after 5, 10, 20 …
//! 200 ms; after [`GRACE`] it is reported with what is known (its cgroup,
//! the first pid of its `cgroup.procs`), so a runtime whose state directory
//! the agent cannot see costs names, not containers.

use std::collections::{HashSet, VecDeque};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bundle::{Bundle, Kind, Stores};
use crate::cgroup::mounts::{Hierarchies, Hierarchy, Layout};
use crate::cgroup::runtime::Runtime;
use crate::cgroup::tree::{CgroupTree, ContainerCgroup, TreeEvent};
use crate::registry::{
    ContainerInfo, CRI_CONTAINER_TYPE, K8S_CONTAINER_NAME, K8S_NAMESPACE, K8S_POD_NAME, K8S_POD_UID,
};
use crate::source::Change;

use crate::{info, warn};

/// How long a container may wait for its bundle and pid file.
pub const GRACE: Duration = Duration::from_secs(2);
/// The walk of the whole tree that catches what events missed.
pub const SAFETY_WALK: Duration = Duration::from_secs(60);
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MAX: Duration = Duration::from_millis(200);

/// What the source looks for.
#[derive(Clone, Debug)]
pub struct Settings {
    /// containerd's state directory (`/run/containerd`), when used.
    pub containerd_state: Option<PathBuf>,
    /// CRI-O's state directory (`/run/containers/storage`), when used.
    pub crio_state: Option<PathBuf>,
    /// A Docker API source runs beside this one: Docker's and Podman's
    /// containers, and bare ids no bundle names, are its to report.
    pub docker_api: bool,
}

struct Pending {
    c: ContainerCgroup,
    since: Instant,
    next: Instant,
    tries: u32,
}

pub struct CgroupSource {
    tree: CgroupTree,
    /// The watched hierarchy (for `cgroup.procs`).
    hierarchy: Hierarchy,
    stores: Stores,
    kinds: Vec<Kind>,
    /// What it was started with.
    settings: Settings,
    pending: Vec<Pending>,
    /// Ids reported as added and not yet removed.
    reported: HashSet<Box<str>>,
    changes: VecDeque<Change>,
    events: Vec<TreeEvent>,
    next_walk: Option<Instant>,
    walked: bool,
}

/// The hierarchy whose directories tell containers apart: the v2 tree, or
/// on v1 the one whose path is the `id` label (cpuacct), then any.
pub fn watched_hierarchy(h: &Hierarchies) -> Option<&Hierarchy> {
    if h.layout == Layout::V2 {
        return h.unified.as_ref();
    }
    [&h.cpuacct, &h.memory, &h.cpu, &h.pids, &h.blkio]
        .into_iter()
        .find_map(Option::as_ref)
}

impl CgroupSource {
    pub fn new(hier: &Hierarchies, settings: &Settings) -> std::io::Result<CgroupSource> {
        let Some(h) = watched_hierarchy(hier) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no cgroup hierarchy found",
            ));
        };
        let tree = CgroupTree::new(&h.path, &h.root)?;
        let mut kinds = Vec::new();
        if settings.containerd_state.is_some() {
            kinds.push(Kind::Containerd);
        }
        if settings.crio_state.is_some() {
            kinds.push(Kind::Crio);
        }
        Ok(CgroupSource {
            tree,
            hierarchy: h.clone(),
            stores: Stores::new(
                settings.containerd_state.as_deref(),
                settings.crio_state.as_deref(),
            ),
            kinds,
            settings: settings.clone(),
            pending: Vec::new(),
            reported: HashSet::new(),
            changes: VecDeque::new(),
            events: Vec::new(),
            next_walk: None,
            walked: false,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.tree.raw_fd()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where the tree is read.
    pub fn mount(&self) -> &Path {
        &self.hierarchy.path
    }

    /// The first walk happened: what runs now is known.
    pub fn is_synced(&self) -> bool {
        self.walked
    }

    /// Containers reported and still running.
    pub fn known(&self) -> usize {
        self.reported.len()
    }

    /// Inotify watches held.
    pub fn watches(&self) -> usize {
        self.tree.watches()
    }

    /// The first walk (and every safety walk).
    pub fn walk(&mut self, now: Instant) {
        self.tree
            .set_namespaces(self.stores.containerd_namespaces());
        self.tree.walk(&mut self.events);
        self.walked = true;
        self.next_walk = Some(now + SAFETY_WALK);
        self.take_events(now);
    }

    /// The inotify descriptor is readable.
    pub fn ready(&mut self, now: Instant) {
        self.tree.drain(&mut self.events);
        // A namespace made since the last look makes its tasks' directories
        // containers: a walk tells them.
        self.tree
            .set_namespaces(self.stores.containerd_namespaces());
        if self.tree.needs_walk() {
            self.tree.walk(&mut self.events);
        }
        self.take_events(now);
    }

    /// Pending containers looked at again, the safety walk.
    pub fn tick(&mut self, now: Instant) {
        if self.next_walk.is_some_and(|t| t <= now) || self.tree.needs_walk() {
            self.walk(now);
        }
        if self.pending.iter().any(|p| p.next <= now) {
            let pending = std::mem::take(&mut self.pending);
            for p in pending {
                if p.next <= now {
                    self.consider(p, now);
                } else {
                    self.pending.push(p);
                }
            }
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        let soonest = self.pending.iter().map(|p| p.next).min();
        match (soonest, self.next_walk) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn next_change(&mut self) -> Option<Change> {
        self.changes.pop_front()
    }

    fn take_events(&mut self, now: Instant) {
        for ev in std::mem::take(&mut self.events) {
            match ev {
                TreeEvent::Appeared(c) => {
                    if self.wanted(&c) {
                        let p = Pending {
                            c,
                            since: now,
                            next: now,
                            tries: 0,
                        };
                        self.consider(p, now);
                    }
                }
                TreeEvent::Gone { id, .. } => {
                    self.pending.retain(|p| p.c.id != id);
                    if self.reported.remove(id.as_str()) {
                        self.changes.push_back(Change::Removed {
                            id,
                            why: "its cgroup was removed",
                        });
                    }
                }
            }
        }
    }

    /// Whether the container is this source's to report at all.
    fn wanted(&self, c: &ContainerCgroup) -> bool {
        match c.runtime {
            Runtime::Docker | Runtime::Podman => false,
            Runtime::Containerd => self.kinds.contains(&Kind::Containerd),
            Runtime::Crio => self.kinds.contains(&Kind::Crio),
            Runtime::Unknown => !self.kinds.is_empty(),
        }
    }

    /// Reports the container if its files are there, else keeps it pending.
    fn consider(&mut self, mut p: Pending, now: Instant) {
        let namespace = containerd_namespace(&p.c.cgroup);
        let kinds: &[Kind] = match p.c.runtime {
            Runtime::Containerd => &[Kind::Containerd],
            Runtime::Crio => &[Kind::Crio],
            _ => &self.kinds,
        };
        let late = now.saturating_duration_since(p.since) >= GRACE;
        let bundle = match self.stores.find(&p.c.id, namespace, kinds) {
            Ok(b) => b,
            Err(e) => {
                warn!(
                    "{} {}: {e}; reporting it by its cgroup alone",
                    kinds.first().map_or("runtime", |k| k.name()),
                    crate::registry::short_id(&p.c.id)
                );
                self.report(&p.c, None);
                return;
            }
        };
        match bundle {
            Some(b) if b.pid.is_some() => self.report(&p.c, Some(&b)),
            Some(b) if late => self.report(&p.c, Some(&b)),
            None if late => {
                // A bare id nobody's files name is the Docker API's, when one runs.
                if p.c.runtime == Runtime::Unknown && self.settings.docker_api {
                    return;
                }
                info!(
                    "no runtime files for container {} (cgroup {}): reporting it by its cgroup alone",
                    crate::registry::short_id(&p.c.id),
                    p.c.cgroup
                );
                self.report(&p.c, None);
            }
            _ => {
                let step = RETRY_FIRST.saturating_mul(1 << p.tries.min(10));
                p.next = now + step.min(RETRY_MAX);
                p.tries += 1;
                self.pending.push(p);
            }
        }
    }

    fn report(&mut self, c: &ContainerCgroup, bundle: Option<&Bundle>) {
        let pid = bundle
            .and_then(|b| b.pid)
            .or_else(|| self.first_pid(&c.cgroup))
            .unwrap_or(0);
        let info = container_info(c, bundle, pid);
        self.reported.insert(c.id.as_str().into());
        self.changes.push_back(Change::Added(Box::new(info)));
    }

    /// The first pid listed in the container's `cgroup.procs`.
    fn first_pid(&self, cgroup: &str) -> Option<u32> {
        let dir = self.hierarchy.dir_of(cgroup)?;
        let text = std::fs::read(dir.join("cgroup.procs")).ok()?;
        crate::cgroup::parse::pids(&text)
            .filter_map(Result::ok)
            .find(|&p| p > 0)
    }
}

/// `k8s.io` of `/k8s.io/<id>`: containerd's own cgroup layout names the namespace.
fn containerd_namespace(cgroup: &str) -> Option<&str> {
    let mut parts = cgroup.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(ns), Some(_), None) if !ns.starts_with("kubepods") => Some(ns),
        _ => None,
    }
}

/// What the registry, the collector and the uploader know of a container
/// found in the tree, from its bundle when there is one.
pub fn container_info(c: &ContainerCgroup, bundle: Option<&Bundle>, pid: u32) -> ContainerInfo {
    let mut info = ContainerInfo {
        id: c.id.clone(),
        name: c.id.clone(),
        pid,
        cgroup: c.cgroup.clone(),
        fingerprint: crate::uuid::container_fingerprint(&c.id),
        ..ContainerInfo::default()
    };
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(b) = bundle {
        info.started_at = b.started_at;
        info.env_tags = b.spec.env_tags.clone();
        info.network_mode = if b.spec.has_netns { "pod" } else { "host" }.to_owned();
        if let Some(k) = b.spec.kube() {
            info.image = k.image.clone();
            info.name = format!("{}/{}/{}", k.namespace, k.pod, k.container);
            info.kubelet_labels = true;
            // Only what the registry and the kubelet's labels use (kept per
            // container for its lifetime): the identity, and the sandbox mark.
            for (key, value) in [
                (K8S_NAMESPACE, &k.namespace),
                (K8S_POD_NAME, &k.pod),
                (K8S_CONTAINER_NAME, &k.container),
                (K8S_POD_UID, &k.pod_uid),
            ] {
                labels.push((key.to_owned(), value.clone()));
            }
            if k.sandbox {
                // The mark the registry leaves a sandbox out by.
                labels.push((CRI_CONTAINER_TYPE[0].to_owned(), "sandbox".to_owned()));
            }
        } else {
            labels = b.spec.annotations.clone();
            if let Some(ns) = &b.namespace {
                info.name = format!("{ns}/{}", c.id);
            }
        }
    }
    if !info.kubelet_labels {
        if let Some(uid) = &c.pod_uid {
            // Under a pod cgroup with no files to name it: the pod is known.
            info.kubelet_labels = true;
            labels.push((K8S_POD_UID.to_owned(), uid.clone()));
        }
    }
    labels.sort();
    info.labels = labels;
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_namespace_only_for_its_own_layout() {
        assert_eq!(containerd_namespace("/k8s.io/abc"), Some("k8s.io"));
        assert_eq!(containerd_namespace("/kubepods/pod1/abc"), None);
        assert_eq!(containerd_namespace("/kubepods/abc"), None);
        assert_eq!(containerd_namespace("/a/b/c"), None);
    }
}
