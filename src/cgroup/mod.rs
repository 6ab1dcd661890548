//! cgroup v1/v2: mount discovery, per-container path resolution, file parsers.

pub mod mounts;
pub mod parse;
pub mod resolve;
pub mod runtime;
pub mod tree;
