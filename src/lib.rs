//! outlyer-agent: a single-threaded container-monitoring agent.
//!
//! Data flows one way: container sources (the Docker API through
//! `docker::sync`) report changes (`source::Change`) that `tracking` applies
//! to the registry, the collector and the uploader; each tick the collector
//! reads the containers' cgroup and /proc files through pure parsers; the
//! metrics views are served on :8000 (`pages`) and uploaded through the
//! sinks (`upload`). See docs/architecture.md.
#![deny(unsafe_code)]

pub mod agent;
pub mod bundle;
pub mod cgroup;
pub mod cgroup_source;
pub mod cli;
pub mod config;
pub mod docker;
pub mod http;
pub mod log;
pub mod metrics;
pub mod pages;
pub mod parse;
pub mod procfs;
pub mod registry;
pub mod secret;
pub mod server;
pub mod setting;
pub mod source;
pub mod sys;
pub mod time;
pub mod tracking;
pub mod upload;
pub mod url;
pub mod uuid;

#[doc(hidden)]
pub mod fuzzing;
