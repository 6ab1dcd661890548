//! outlyer-agent: a single-threaded container-monitoring agent.
//!
//! Data flows one way: the Docker socket feeds the registry of tracked
//! containers; each tick the collector reads their cgroup and /proc files
//! through pure parsers; the metrics views are served on :8000 and uploaded.
#![deny(unsafe_code)]

pub mod agent;
pub mod cgroup;
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
