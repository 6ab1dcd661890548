//! Test support for outlyer-agent, used only as a dev-dependency (tests and
//! benches): nothing here is compiled into the agent.
//!
//! - [`SyntheticHost`]: a rootfs with `/proc` and cgroup files in a chosen
//!   [`TreeLayout`], whose counters [`SyntheticHost::advance`] moves forward.
//! - [`FakeDaemon`]: a fake Docker daemon on a unix socket, in one of three
//!   [`Flavor`]s (20.10, 1.7, 29), with scripted faults and a record of the
//!   requests it answered.
//! - [`sample_host`], [`sample_container`]: the fixtures of the upload tests.
//!
//! The agent's own `#[cfg(test)]` unit tests cannot use this crate (they
//! would see a second copy of the agent's types); they build what they need
//! inline.
#![deny(unsafe_code)]

mod daemon;
mod replies;
mod tree;

pub use daemon::{path_of, DaemonState, FakeDaemon, Flavor, Recorded};
pub use tree::{Driver, SynthContainer, SyntheticHost, TreeLayout, TreeOptions};

use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::upload::HostIdentity;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A number unique in this process (temp directory names).
pub(crate) fn next_seq() -> usize {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The host identity the upload tests use.
pub fn sample_host() -> HostIdentity {
    HostIdentity {
        finger: "11111111-2222-3333-4444-555555555555".into(),
        name: "node1".into(),
        mac: "mac-1".into(),
        tags: vec!["docker".into()],
        hostname: "docker-host".into(),
    }
}

/// Container `n` of the upload tests: id `nn…` (64 hex), name `c<n>`, one address.
pub fn sample_container(n: u8) -> ContainerInfo {
    let id = format!("{:02x}", n).repeat(32);
    ContainerInfo {
        fingerprint: outlyer_agent::uuid::container_fingerprint(&id),
        name: format!("c{n}"),
        image: "img".into(),
        ips: vec![format!("172.17.0.{n}")],
        id,
        ..ContainerInfo::default()
    }
}
