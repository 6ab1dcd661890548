//! The seam between container sources and the registry.
//!
//! A source is whatever learns which containers run: today the Docker API
//! (and Podman's Docker-compatible API) through `docker::sync`. Each source
//! keeps its own protocol state and reports what it learns as [`Change`]s;
//! `tracking::Followers::apply` feeds them to the registry, the collector and the
//! uploader. A new source (a cgroup-tree watcher, containerd, CRI-O, the
//! kubelet) is a new file that emits the same changes; the event loop only
//! routes its readiness and timers to it.

use crate::registry::ContainerInfo;

/// One thing a source learned about the running containers.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A running container, new or seen again (a re-inspection after a
    /// `start` event or a re-sync). The registry tells a restart (another
    /// init pid) from an unchanged container and an excluded one.
    Added(Box<ContainerInfo>),
    /// A tracked container changed in place.
    Updated { id: String, update: Update },
    /// The container stopped running or is gone.
    Removed { id: String, why: &'static str },
}

/// What changed in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// The container's name, without a leading `/`.
    Name(String),
    Paused(bool),
}
