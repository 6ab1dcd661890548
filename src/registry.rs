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

    /// The 12-character short id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}
