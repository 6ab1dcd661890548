//! Which container, if any, a cgroup path belongs to: the naming rules of
//! each runtime and of Kubernetes' pod nesting, on either cgroup driver.
//! Pure functions over the path text (no file is read), for the sources
//! that discover containers from the cgroup tree.
//!
//! | runtime | cgroupfs driver | systemd driver |
//! |---|---|---|
//! | Docker | `/docker/<id>` | `/system.slice/docker-<id>.scope` |
//! | containerd | `/<namespace>/<id>` | `cri-containerd-<id>.scope` |
//! | CRI-O | `…/crio-<id>` | `crio-<id>.scope` |
//! | Podman | `/libpod_parent/libpod-<id>` | `libpod-<id>.scope` |
//!
//! Kubernetes puts each pod's containers under a pod cgroup:
//! `/kubepods[/burstable|/besteffort]/pod<uid>/<container>` (cgroupfs) or
//! `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_with_underscores>.slice/<container>`
//! (systemd). Directories below a container's own (a container's inner
//! cgroups, Podman's `container` sub-cgroup) belong to that container; a
//! runtime's monitor scopes (`crio-conmon-<id>.scope`,
//! `libpod-conmon-<id>.scope`) are not containers.

/// The runtime whose naming rule matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Containerd,
    Crio,
    Podman,
    /// A bare id under a Kubernetes pod cgroup (cgroupfs driver): Docker,
    /// containerd and CRI-O all name it so; the runtime's files tell.
    Unknown,
}

/// Kubernetes quality-of-service class, from the pod cgroup's parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

/// The container a cgroup path belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    pub runtime: Runtime,
    /// The container id as the runtime knows it.
    pub id: &'a str,
    /// The container's own cgroup path (`path` up to the container's
    /// directory): the `id` label, and where its files are.
    pub cgroup: &'a str,
    /// The pod's uid with dashes, under Kubernetes.
    pub pod_uid: Option<String>,
    pub qos: Option<Qos>,
}

/// Exactly 64 lower-case hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The container of `path` (a cgroup path as `/proc/<pid>/cgroup` shows it,
/// from the hierarchy's root). `containerd_namespaces` are the namespaces
/// whose tasks the containerd state lists: only under those is a plain
/// `/<namespace>/<name>` taken for a containerd container, since any
/// two-level path has that shape.
pub fn classify<'a, N: AsRef<str>>(
    path: &'a str,
    containerd_namespaces: &[N],
) -> Option<Found<'a>> {
    let mut pod_uid = None;
    let mut qos = None;
    let mut in_kubepods = false;
    let mut offset = 0usize;
    let mut parts = path.split('/').peekable();
    let mut depth = 0usize;
    let mut first = None;
    while let Some(part) = parts.next() {
        let start = offset;
        offset += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        depth += 1;
        let end = start + part.len();
        if depth == 1 {
            first = Some(part);
            in_kubepods = part == "kubepods" || part == "kubepods.slice";
        }
        if in_kubepods {
            if let Some(q) = qos_of(part) {
                qos = Some(q);
                continue;
            }
            if let Some(uid) = pod_uid_of(part) {
                pod_uid = Some(uid);
                qos.get_or_insert(Qos::Guaranteed);
                continue;
            }
        }
        let named = match scope_id(part) {
            Some(hit) => Some(hit),
            None if part.starts_with("docker-") || part.starts_with("crio-conmon-") => None,
            None => bare_id(part, depth, first, pod_uid.is_some(), containerd_namespaces),
        };
        if let Some((runtime, id)) = named {
            return Some(Found {
                runtime,
                id,
                cgroup: &path[..end],
                pod_uid,
                qos: if in_kubepods { qos } else { None },
            });
        }
        // Past the pod level nothing but a container may follow.
        if pod_uid.is_some() && parts.peek().is_none() {
            return None;
        }
    }
    None
}

/// `<prefix><id>.scope` (systemd driver) or `<prefix><id>` (cgroupfs):
/// the runtime and the id. Monitor scopes are no containers.
fn scope_id(part: &str) -> Option<(Runtime, &str)> {
    const PREFIXES: [(&str, Runtime); 4] = [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in PREFIXES {
        let Some(rest) = part.strip_prefix(prefix) else {
            continue;
        };
        let id = rest.strip_suffix(".scope").unwrap_or(rest);
        if is_full_id(id) {
            return Some((runtime, id));
        }
    }
    None
}

/// A directory named by the id alone: Docker's `/docker/<id>` (or under
/// `--cgroup-parent`), a container under a pod cgroup, containerd's
/// `/<namespace>/<id>`.
fn bare_id<'a>(
    part: &'a str,
    depth: usize,
    first: Option<&str>,
    under_pod: bool,
    containerd_namespaces: &[impl AsRef<str>],
) -> Option<(Runtime, &'a str)> {
    if depth == 2 && first.is_some_and(|ns| containerd_namespaces.iter().any(|n| n.as_ref() == ns))
    {
        return Some((Runtime::Containerd, part));
    }
    if !is_full_id(part) {
        return None;
    }
    Some(match (under_pod, first) {
        (true, _) => (Runtime::Unknown, part),
        (false, Some("docker")) if depth == 2 => (Runtime::Docker, part),
        (false, Some("libpod_parent")) => (Runtime::Podman, part),
        // `--cgroup-parent=/anything`: Docker names the leaf by the id.
        _ => (Runtime::Docker, part),
    })
}

fn qos_of(part: &str) -> Option<Qos> {
    match part {
        "burstable" | "kubepods-burstable.slice" => Some(Qos::Burstable),
        "besteffort" | "kubepods-besteffort.slice" => Some(Qos::BestEffort),
        _ => None,
    }
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_with_underscores>.slice`.
fn pod_uid_of(part: &str) -> Option<String> {
    let uid = match part.strip_suffix(".slice") {
        Some(slice) => {
            let at = slice.rfind("-pod")?;
            if !slice.starts_with("kubepods") {
                return None;
            }
            slice[at + 4..].replace('_', "-")
        }
        None => part.strip_prefix("pod")?.to_owned(),
    };
    let uuid_like = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    uuid_like.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2f1b1c8a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a";
    const UID: &str = "8b0f2a1c-3d4e-4f5a-8b6c-7d8e9f0a1b2c";

    fn found(path: &str) -> Option<Found<'_>> {
        classify(path, &["k8s.io", "default"])
    }

    #[test]
    fn docker_both_drivers_and_cgroup_parent() {
        let p = format!("/docker/{ID}");
        let f = found(&p).unwrap();
        assert_eq!(
            (f.runtime, f.id, f.cgroup),
            (Runtime::Docker, ID, p.as_str())
        );
        assert_eq!((f.pod_uid, f.qos), (None, None));
        let p = format!("/system.slice/docker-{ID}.scope");
        let f = found(&p).unwrap();
        assert_eq!((f.runtime, f.cgroup), (Runtime::Docker, p.as_str()));
        let p = format!("/my-parent/{ID}");
        assert_eq!(found(&p).unwrap().runtime, Runtime::Docker);
        // A container's own inner cgroups belong to it.
        let p = format!("/docker/{ID}/init.scope");
        let f = found(&p).unwrap();
        assert_eq!(f.cgroup, &p[..8 + 64]);
    }

    #[test]
    fn kubernetes_cgroupfs_nesting() {
        let p = format!("/kubepods/burstable/pod{UID}/{ID}");
        let f = found(&p).unwrap();
        assert_eq!(f.runtime, Runtime::Unknown, "the runtime's files tell");
        assert_eq!(f.pod_uid.as_deref(), Some(UID));
        assert_eq!(f.qos, Some(Qos::Burstable));
        let p = format!("/kubepods/besteffort/pod{UID}/crio-{ID}");
        let f = found(&p).unwrap();
        assert_eq!((f.runtime, f.qos), (Runtime::Crio, Some(Qos::BestEffort)));
        let p = format!("/kubepods/pod{UID}/{ID}");
        assert_eq!(found(&p).unwrap().qos, Some(Qos::Guaranteed));
        // The pod's own cgroup and the QoS level are no containers.
        assert_eq!(found(&format!("/kubepods/burstable/pod{UID}")), None);
        assert_eq!(found("/kubepods/burstable"), None);
        assert_eq!(found("/kubepods"), None);
        // Not a uuid: no pod.
        assert_eq!(found("/kubepods/burstable/podnope/x"), None);
    }

    #[test]
    fn kubernetes_systemd_nesting() {
        let u = UID.replace('-', "_");
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
        );
        let f = found(&p).unwrap();
        assert_eq!(f.runtime, Runtime::Containerd);
        assert_eq!(f.id, ID);
        assert_eq!(f.pod_uid.as_deref(), Some(UID));
        assert_eq!(f.qos, Some(Qos::Burstable));
        let p = format!("/kubepods.slice/kubepods-pod{u}.slice/crio-{ID}.scope");
        let f = found(&p).unwrap();
        assert_eq!((f.runtime, f.qos), (Runtime::Crio, Some(Qos::Guaranteed)));
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/docker-{ID}.scope"
        );
        assert_eq!(found(&p).unwrap().runtime, Runtime::Docker);
        // CRI-O's monitor scope sits beside the container's.
        let p = format!("/kubepods.slice/kubepods-pod{u}.slice/crio-conmon-{ID}.scope");
        assert_eq!(found(&p), None);
    }

    #[test]
    fn podman_both_drivers() {
        let p = format!("/libpod_parent/libpod-{ID}");
        assert_eq!(found(&p).unwrap().runtime, Runtime::Podman);
        let p = format!("/machine.slice/libpod-{ID}.scope");
        assert_eq!(found(&p).unwrap().runtime, Runtime::Podman);
        let p = format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        );
        let f = found(&p).unwrap();
        assert_eq!(f.runtime, Runtime::Podman);
        assert!(f.cgroup.ends_with(".scope"), "{}", f.cgroup);
        assert_eq!(
            found(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn containerd_namespaces_only_when_known() {
        let f = found("/k8s.io/my-task").unwrap();
        assert_eq!((f.runtime, f.id), (Runtime::Containerd, "my-task"));
        let p = format!("/default/{ID}");
        assert_eq!(found(&p).unwrap().runtime, Runtime::Containerd);
        // Any other two-level path is not a container.
        assert_eq!(found("/system.slice/cron.service"), None);
        assert_eq!(found("/user.slice/user-1000.slice"), None);
        assert_eq!(classify::<&str>("/k8s.io/my-task", &[]), None);
    }

    #[test]
    fn not_containers() {
        for p in [
            "/",
            "",
            "/init.scope",
            "/system.slice/docker.service",
            "/system.slice/containerd.service",
            "/docker",
            "/docker/abc",
            &format!("/docker/{}", &ID[..63]),
            &format!("/docker/{}", ID.to_uppercase()),
            &format!("/system.slice/docker-{ID}.mount"),
        ] {
            assert_eq!(found(p), None, "{p}");
        }
    }
}
