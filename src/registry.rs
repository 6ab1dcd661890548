//! The registry of tracked containers: what Docker told us about each one,
//! which ones we exclude, and their fingerprints.

/// Everything the agent keeps about one running container, taken once from
/// `GET /containers/{id}/json` (never re-inspected on a timer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerInfo {
    /// Full 64-hex container id.
    pub id: String,
    /// Docker name without the leading `/`.
    pub name: String,
    /// `Config.Image`: the image reference as the user gave it.
    pub image: String,
    /// Docker labels (`Config.Labels`), sorted by key.
    pub labels: Vec<(String, String)>,
    /// Values of the `ENV` and `APP_NAME` environment variables only (tags).
    pub env_tags: Vec<String>,
    /// `State.Pid`: host PID of the container's init process (0 if unknown).
    pub pid: u32,
    /// `HostConfig.NetworkMode`: `default`, `bridge`, `host`, `none`, `container:<id>`, a network name.
    pub network_mode: String,
    /// Every IP address of the container's networks.
    pub ips: Vec<String>,
    /// `State.StartedAt` as Unix seconds (0.0 when unknown).
    pub started_at: f64,
    /// `HostConfig.CgroupParent` (may be empty).
    pub cgroup_parent: String,
    /// Virtual-agent fingerprint: uuid5(NS, "/docker/" + id).
    pub fingerprint: String,
    /// `State.Paused`.
    pub paused: bool,
    /// The container's own cgroup path, when its source knows it (the
    /// cgroup-tree source); empty from the Docker API, whose containers are
    /// found through their pid.
    pub cgroup: String,
    /// Prometheus labels as cAdvisor inside the kubelet writes them
    /// (`container`, `namespace`, `pod`, `image`, `name` = the id) instead of
    /// one `container_label_*` per label: Kubernetes containers of
    /// containerd and CRI-O.
    pub kubelet_labels: bool,
}

impl ContainerInfo {
    /// True when the container has a network namespace of its own, so
    /// `/proc/<pid>/net/dev` shows its interfaces and not the host's or
    /// another container's.
    pub fn has_own_netns(&self) -> bool {
        !(self.network_mode == "host"
            || self.network_mode == "none"
            || self.network_mode.starts_with("container:"))
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        label(self, key)
    }

    /// The 12-character short id.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// The 12-character short form of a container id.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Why a running container is not tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// The agent's own container.
    SelfContainer,
    /// Kubernetes: a container of the `kube-system` namespace.
    KubeSystem,
    /// Kubernetes: a pod sandbox ("pause") container.
    PodSandbox,
    /// Kubernetes: another container of the agent's own pod.
    OwnPod,
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exclusion::SelfContainer => "the agent's own container",
            Exclusion::KubeSystem => "in the kube-system namespace",
            Exclusion::PodSandbox => "a pod sandbox (pause) container",
            Exclusion::OwnPod => "in the agent's own pod",
        })
    }
}

/// How the agent recognises its own container, from what names *its own*
/// container and nothing else:
///
/// - the host name Docker gives it (the 12-char id, unless `--net host` or
///   `--hostname`);
/// - the 64-hex ids in its own cgroup paths (`/proc/self/cgroup`);
/// - the ids in the sources of its own `/etc/hostname`, `/etc/hosts` and
///   `/etc/resolv.conf` mounts (Docker binds them from
///   `/var/lib/docker/containers/<id>/`, Podman from
///   `…/overlay-containers/<id>/userdata/`), which still name the container
///   under `--net host` and in a private cgroup namespace.
///
/// Other lines of the mount table are never read for ids: on the host, or
/// in a container that mounts host paths, they carry *other* containers'
/// ids (every Podman container's `shm` mount, every Docker container run
/// with `--ipc=shareable`), and taking those would drop those containers
/// from every output.
#[derive(Clone, Debug, Default)]
pub struct SelfIdentity {
    pub hostname: String,
    pub ids: Vec<String>,
}

/// The mount points whose sources name the agent's own container.
const OWN_CONTAINER_FILES: [&[u8]; 3] = [b"/etc/hostname", b"/etc/hosts", b"/etc/resolv.conf"];

impl SelfIdentity {
    pub fn detect() -> SelfIdentity {
        let cgroup = std::fs::read("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
        SelfIdentity::from_texts(crate::sys::hostname(), &cgroup, &mountinfo)
    }

    /// The identity from the host name and the texts of `/proc/self/cgroup`
    /// and `/proc/self/mountinfo`.
    pub fn from_texts(hostname: String, cgroup: &[u8], mountinfo: &[u8]) -> SelfIdentity {
        let mut ids: Vec<String> = Vec::new();
        let mut add = |text: &[u8]| {
            for id in container_ids(text) {
                if !ids.iter().any(|own| own.as_bytes() == id) {
                    ids.push(String::from_utf8_lossy(id).into_owned());
                }
            }
        };
        for line in cgroup.split(|&b| b == b'\n') {
            // `hierarchy-id:controllers:path`: only the path names a cgroup.
            let path = line.splitn(3, |&b| b == b':').nth(2).unwrap_or(b"");
            add(path);
        }
        for row in crate::procfs::parse::mountinfo_rows(mountinfo).flatten() {
            if OWN_CONTAINER_FILES.contains(&row.mount_point) {
                add(row.root);
                add(row.source);
            }
        }
        SelfIdentity { hostname, ids }
    }

    /// The agent's own container, by short id, or `None` on the host: the
    /// line logged once at start.
    pub fn describe(&self) -> String {
        match self.ids.first() {
            Some(id) => format!("running in container {}", &id[..12]),
            None if self.hostname_is_short_id() => {
                format!("running in container {} (by host name)", self.hostname)
            }
            None => "running on the host".to_string(),
        }
    }

    fn hostname_is_short_id(&self) -> bool {
        let h = self.hostname.as_bytes();
        h.len() == 12 && h.iter().all(u8::is_ascii_hexdigit)
    }

    pub fn is_self(&self, id: &str) -> bool {
        (self.hostname_is_short_id() && id.as_bytes().starts_with(self.hostname.as_bytes()))
            || self.ids.iter().any(|own| own == id)
    }
}

/// Every maximal run of exactly 64 lower-case hex digits in `text`: the
/// container ids in a `/proc/<pid>/cgroup` or mountinfo text. No allocation.
pub fn container_ids(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < text.len() {
            let start = i;
            while i < text.len() && matches!(text[i], b'0'..=b'9' | b'a'..=b'f') {
                i += 1;
            }
            if i == start {
                i += 1;
            } else if i - start == 64 {
                return text.get(start..i);
            }
        }
        None
    })
}

pub const K8S_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const K8S_POD_NAME: &str = "io.kubernetes.pod.name";
pub const K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const K8S_POD_UID: &str = "io.kubernetes.pod.uid";
const K8S_DOCKER_TYPE: &str = "io.kubernetes.docker.type";
/// containerd's CRI plugin and CRI-O: `sandbox` or `container`.
pub const CRI_CONTAINER_TYPE: [&str; 2] = [
    "io.kubernetes.cri.container-type",
    "io.kubernetes.cri-o.ContainerType",
];

fn label<'a>(info: &'a ContainerInfo, key: &str) -> Option<&'a str> {
    info.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A pause image: the last path component of the reference (before any tag
/// or digest) starts with `pause`, e.g. `google_containers/pause-amd64:3.0`
/// or `registry.k8s.io/pause:3.9`.
pub fn is_pause_image(image: &str) -> bool {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last).starts_with("pause")
}

/// The containers the agent tracks, keyed by full id: a vector sorted by id
/// (binary search), so the id is stored once and no tree nodes are half
/// empty; inserts and removals are rare next to lookups.
#[derive(Debug, Default)]
pub struct Registry {
    containers: Vec<ContainerInfo>,
    pub self_identity: SelfIdentity,
    /// Running under Kubernetes (`KUBERNETES_PORT` set).
    pub kubernetes: bool,
    /// The pod uid of the agent's own container, once seen.
    own_pod_uid: Option<String>,
    /// Running containers decided against (each decision is logged once).
    excluded: std::collections::HashSet<String>,
}

impl Registry {
    pub fn new(self_identity: SelfIdentity, kubernetes: bool) -> Registry {
        Registry {
            self_identity,
            kubernetes,
            ..Registry::default()
        }
    }

    /// Why `info` must not be tracked, if it must not. Seeing the agent's own
    /// container also teaches us its pod.
    pub fn exclusion(&mut self, info: &ContainerInfo) -> Option<Exclusion> {
        if self.self_identity.is_self(&info.id) {
            if let Some(uid) = label(info, K8S_POD_UID) {
                self.own_pod_uid = Some(uid.to_owned());
            }
            return Some(Exclusion::SelfContainer);
        }
        let k8s = self.kubernetes
            || info
                .labels
                .iter()
                .any(|(k, _)| k.starts_with("io.kubernetes."));
        if !k8s {
            return None;
        }
        if label(info, K8S_NAMESPACE) == Some("kube-system") {
            return Some(Exclusion::KubeSystem);
        }
        if label(info, K8S_DOCKER_TYPE) == Some("podsandbox")
            || CRI_CONTAINER_TYPE
                .iter()
                .any(|k| label(info, k) == Some("sandbox"))
            || is_pause_image(&info.image)
        {
            return Some(Exclusion::PodSandbox);
        }
        if let (Some(own), Some(uid)) = (&self.own_pod_uid, label(info, K8S_POD_UID)) {
            if own == uid {
                return Some(Exclusion::OwnPod);
            }
        }
        None
    }

    /// Ids of tracked containers that share the agent's pod (known only once
    /// the agent's own container was inspected).
    pub fn own_pod_members(&self) -> Vec<String> {
        match &self.own_pod_uid {
            Some(own) => self
                .containers
                .iter()
                .filter(|c| label(c, K8S_POD_UID) == Some(own.as_str()))
                .map(|c| c.id.clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Remembers that `id` is not tracked; true the first time.
    pub fn mark_excluded(&mut self, id: &str) -> bool {
        !self.excluded.contains(id) && self.excluded.insert(id.to_owned())
    }

    /// `id` no longer runs: a new container with it is judged afresh.
    pub fn forget_excluded(&mut self, id: &str) {
        self.excluded.remove(id);
    }

    fn find(&self, id: &str) -> Result<usize, usize> {
        self.containers.binary_search_by(|c| c.id.as_str().cmp(id))
    }

    /// Adds or replaces (same id) a container; the replaced one is returned.
    pub fn insert(&mut self, mut info: ContainerInfo) -> Option<ContainerInfo> {
        // Kept for the container's lifetime: no spare capacity from parsing.
        info.labels.shrink_to_fit();
        info.env_tags.shrink_to_fit();
        info.ips.shrink_to_fit();
        match self.find(&info.id) {
            Ok(i) => Some(std::mem::replace(&mut self.containers[i], info)),
            Err(i) => {
                self.containers.insert(i, info);
                None
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<ContainerInfo> {
        let i = self.find(id).ok()?;
        let gone = self.containers.remove(i);
        if self.containers.capacity() > 2 * self.containers.len() + 16 {
            self.containers.shrink_to(self.containers.len() + 8);
        }
        Some(gone)
    }

    pub fn get(&self, id: &str) -> Option<&ContainerInfo> {
        self.containers.get(self.find(id).ok()?)
    }

    /// The container with this id, to update in place; its `id` must not change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut ContainerInfo> {
        let i = self.find(id).ok()?;
        self.containers.get_mut(i)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.find(id).is_ok()
    }

    pub fn len(&self) -> usize {
        self.containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    /// Ids in sorted order.
    pub fn ids(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.id.clone()).collect()
    }

    /// Containers in id order.
    pub fn iter(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.containers.iter()
    }
}

/// Where the agent looks for a stable host identity, in order (under the
/// rootfs first, then as the agent itself sees them).
const HOST_ID_FILES: &[&str] = &[
    "sys/class/dmi/id/product_uuid",
    "proc/device-tree/system-id",
    "proc/device-tree/vm,uuid",
    "etc/machine-id",
];

/// The first readable non-empty host identifier (docs/protocol.md §1,
/// the `mac` field), or None when nothing is visible and Docker's `/info`
/// id must serve.
pub fn host_id(rootfs: &std::path::Path) -> Option<String> {
    let roots = [rootfs, std::path::Path::new("/")];
    for rel in HOST_ID_FILES {
        for root in roots {
            if let Ok(bytes) = std::fs::read(root.join(rel)) {
                let text = String::from_utf8_lossy(&bytes);
                let id = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
                if !id.is_empty() && id.len() <= 256 {
                    return Some(id.to_owned());
                }
            }
        }
    }
    None
}

/// The host agent's fingerprint when none is configured: a UUIDv5 over the
/// host identity and the configured agent name, so restarts keep it.
pub fn derive_host_fingerprint(host_id: &str, name: Option<&str>) -> String {
    let mut seed = String::from("outlyer-agent:");
    seed.push_str(host_id);
    if let Some(n) = name {
        seed.push(':');
        seed.push_str(n);
    }
    crate::uuid::format_uuid(&crate::uuid::uuid5(
        &crate::uuid::CONTAINER_NAMESPACE,
        seed.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`container_ids`], owned.
    fn container_ids_in(text: &[u8]) -> Vec<String> {
        container_ids(text)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect()
    }

    #[test]
    fn registry_is_keyed_by_id_in_order() {
        let mut reg = Registry::default();
        for id in ["c", "a", "b"] {
            assert!(reg.insert(info(id, "img", &[])).is_none());
        }
        assert_eq!(reg.ids(), ["a", "b", "c"]);
        let old = reg.insert(info("b", "img:2", &[])).expect("replaced");
        assert_eq!((old.id.as_str(), old.image.as_str()), ("b", "img"));
        assert_eq!(reg.get("b").map(|c| c.image.as_str()), Some("img:2"));
        assert_eq!(reg.len(), 3);
        reg.get_mut("c").expect("c").name = "renamed".into();
        assert_eq!(reg.get("c").map(|c| c.name.as_str()), Some("renamed"));
        assert_eq!(reg.remove("a").map(|c| c.id), Some("a".to_string()));
        assert!(reg.remove("a").is_none());
        assert!(!reg.contains("a") && reg.contains("b") && reg.get("zz").is_none());
        let order: Vec<&str> = reg.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(order, ["b", "c"]);
    }

    const ID: &str = "cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6";

    fn info(id: &str, image: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            image: image.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ContainerInfo::default()
        }
    }

    #[test]
    fn finds_ids_in_cgroup_and_mountinfo_text() {
        let cgroup = format!("4:memory:/docker/{ID}\n0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            container_ids_in(cgroup.as_bytes()),
            vec![ID.to_string(), ID.to_string()]
        );
        let mi = format!("812 790 253:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n");
        assert_eq!(container_ids_in(mi.as_bytes()), vec![ID.to_string()]);
        // 65 hex digits is not an id, nor is 63.
        let longer = format!("{ID}0 /{}", &ID[1..]);
        assert!(container_ids_in(longer.as_bytes()).is_empty());
        assert!(container_ids_in(b"0::/\n").is_empty());
    }

    #[test]
    fn self_by_hostname_or_cgroup() {
        let by_host = SelfIdentity {
            hostname: ID[..12].into(),
            ids: vec![],
        };
        assert!(by_host.is_self(ID));
        let not_hex = SelfIdentity {
            hostname: "my-laptop-01".into(),
            ids: vec![],
        };
        assert!(!not_hex.is_self(ID));
        let by_cgroup = SelfIdentity {
            hostname: "host-net".into(),
            ids: vec![ID.into()],
        };
        assert!(by_cgroup.is_self(ID));
        assert!(!by_cgroup.is_self(&"0".repeat(64)));
    }

    /// A host's mount table names other containers: Docker's
    /// `--ipc=shareable` shm mounts, Podman's shm and userdata mounts, an
    /// overlay layer. None of them is the agent's own container.
    #[test]
    fn foreign_ids_in_the_mount_table_are_not_self() {
        let mountinfo = include_bytes!("../tests/fixtures/files/weird/mountinfo.foreign-shm");
        // The fixture really carries foreign ids (three of them).
        let mut seen = container_ids_in(mountinfo);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3, "{seen:?}");
        let host =
            SelfIdentity::from_texts("vm".into(), b"0::/user.slice/session-3.scope\n", mountinfo);
        assert!(host.ids.is_empty(), "{:?}", host.ids);
        for id in &seen {
            assert!(!host.is_self(id), "{id} taken as the agent's own");
        }
        assert_eq!(host.describe(), "running on the host");
    }

    /// In a container under `--net host` with a private cgroup namespace
    /// (`0::/`), mounting host paths that carry other containers' ids: only
    /// the sources of its own `/etc/hostname`, `/etc/hosts` and
    /// `/etc/resolv.conf` name it.
    #[test]
    fn own_container_from_its_own_etc_mounts_only() {
        let other = "e".repeat(64);
        let mut mountinfo = std::str::from_utf8(include_bytes!(
            "../tests/fixtures/files/weird/mountinfo.foreign-shm"
        ))
        .unwrap()
        .replace(" / / rw", " /rootfs-x / rw");
        for file in ["resolv.conf", "hostname", "hosts"] {
            mountinfo.push_str(&format!(
                "9{} 22 254:1 /var/lib/docker/containers/{ID}/{file} /etc/{file} rw,relatime - ext4 /dev/vda1 rw\n",
                file.len()
            ));
        }
        mountinfo.push_str(&format!(
            "99 22 0:80 / /host/var/lib/docker/containers/{other}/mounts/shm rw - tmpfs shm rw\n"
        ));
        let me = SelfIdentity::from_texts("vm".into(), b"0::/\n", mountinfo.as_bytes());
        assert_eq!(me.ids, vec![ID.to_string()]);
        assert!(me.is_self(ID));
        assert!(!me.is_self(&other));
        assert!(!me.is_self(&"a".repeat(64)));
        assert_eq!(me.describe(), format!("running in container {}", &ID[..12]));

        // Podman binds them from its userdata directory.
        let podman = format!(
            "91 22 0:71 /overlay-containers/{other}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n"
        );
        let me = SelfIdentity::from_texts("vm".into(), b"0::/\n", podman.as_bytes());
        assert_eq!(me.ids, vec![other]);
    }

    /// The cgroup path names the container on v1 and v2, under both
    /// drivers; the controllers field never does.
    #[test]
    fn own_container_from_its_cgroup_path() {
        for text in [
            format!("4:memory:/docker/{ID}\n3:cpu,cpuacct:/docker/{ID}\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
        ] {
            let me = SelfIdentity::from_texts("vm".into(), text.as_bytes(), b"");
            assert_eq!(me.ids, vec![ID.to_string()], "{text}");
        }
        let me = SelfIdentity::from_texts("vm".into(), b"0::/init.scope\n", b"");
        assert!(me.ids.is_empty());
    }

    #[test]
    fn kubernetes_exclusions() {
        let me = SelfIdentity {
            hostname: "x".into(),
            ids: vec![ID.into()],
        };
        let mut reg = Registry::new(me, true);
        let ns = info(&"1".repeat(64), "nginx", &[(K8S_NAMESPACE, "kube-system")]);
        assert_eq!(reg.exclusion(&ns), Some(Exclusion::KubeSystem));
        let pause = info(
            &"2".repeat(64),
            "registry.k8s.io/pause:3.9",
            &[(K8S_NAMESPACE, "default")],
        );
        assert_eq!(reg.exclusion(&pause), Some(Exclusion::PodSandbox));
        let sandbox = info(&"3".repeat(64), "x", &[(K8S_DOCKER_TYPE, "podsandbox")]);
        assert_eq!(reg.exclusion(&sandbox), Some(Exclusion::PodSandbox));
        // containerd's and CRI-O's sandboxes, whatever their image.
        for key in CRI_CONTAINER_TYPE {
            let cri = info(&"5".repeat(64), "k8s.gcr.io/odd:1", &[(key, "sandbox")]);
            assert_eq!(reg.exclusion(&cri), Some(Exclusion::PodSandbox), "{key}");
            let app = info(&"6".repeat(64), "web:1", &[(key, "container")]);
            assert_eq!(reg.exclusion(&app), None, "{key}");
        }
        let app = info(
            &"4".repeat(64),
            "web:1",
            &[(K8S_NAMESPACE, "default"), (K8S_POD_UID, "pod-a")],
        );
        assert_eq!(reg.exclusion(&app), None);
        reg.insert(app.clone());
        let own = info(ID, "outlyer/agent", &[(K8S_POD_UID, "pod-a")]);
        assert_eq!(reg.exclusion(&own), Some(Exclusion::SelfContainer));
        assert_eq!(reg.exclusion(&app), Some(Exclusion::OwnPod));
        assert_eq!(reg.own_pod_members(), vec![app.id.clone()]);
    }

    #[test]
    fn pause_images() {
        assert!(is_pause_image("gcr.io/google_containers/pause-amd64:3.0"));
        assert!(is_pause_image("registry.k8s.io/pause:3.9"));
        assert!(is_pause_image("pause@sha256:abc"));
        assert!(!is_pause_image("nginx:pause"));
        assert!(!is_pause_image("pausable/web"));
    }

    #[test]
    fn without_kubernetes_nothing_but_self_is_excluded() {
        let mut reg = Registry::new(SelfIdentity::default(), false);
        let c = info(&"5".repeat(64), "registry.k8s.io/pause:3.9", &[]);
        assert_eq!(reg.exclusion(&c), None);
    }

    #[test]
    fn host_fingerprint_is_stable_and_name_scoped() {
        let a = derive_host_fingerprint("3d1219c7c4c5404aaa1f6d2a48adfda4", None);
        assert_eq!(
            a,
            derive_host_fingerprint("3d1219c7c4c5404aaa1f6d2a48adfda4", None)
        );
        assert_ne!(
            a,
            derive_host_fingerprint("3d1219c7c4c5404aaa1f6d2a48adfda4", Some("web"))
        );
        assert!(crate::uuid::parse_uuid(&a).is_some());
        assert_eq!(&a[14..15], "5", "a version-5 UUID");
    }
}
