//! Upload to the monitoring backend (docs/protocol.md): virtual agents
//! over the agent API, metrics to Graphite and/or the series API, over TLS
//! driven by the agent's single mio loop.
//!
//! Layers: pure wire formats ([`wire`], [`dns`], [`proxy`], [`retry`],
//! [`buffer`]); the sinks, each saying what its requests carry (the agent
//! API's calls in [`agent_api`]; the metrics backends behind
//! [`sink::SampleSink`]: [`series`], [`graphite`]); the sans-IO scheduler
//! ([`core`]: requests out, outcomes in, time passed in); and the thin
//! socket shell ([`conn`], [`Uploader`]).
//!
//! Wiring into the event loop:
//!
//! ```text
//! start-up   UploadSettings::from_env(env)?  → None: no key, no upload
//!            Uploader::new(settings, host, FIRST_TOKEN, now)?   (tokens FIRST_TOKEN..+TOKENS)
//! events     up.container_started(&info, processes_of_pids(rootfs, &collector.container_pids(id)), now)
//!            up.container_stopped(&id, &finger, now)
//! per cycle  up.push_samples(unix_secs, [(finger, "base.cpu", 12.5), ...])
//!            up.update_processes(&finger, processes_of_pids(...))   (optional, for the next ping)
//! poll       timeout ≤ up.next_deadline(); for each event with up.owns(token): up.ready(reg, token, now);
//!            then (or when the deadline passed) up.tick(reg, now)
//! SIGTERM    up.shutdown(reg, now); keep polling until up.is_shutdown_complete() (≤ 4.5 s)
//! /metrics   up.write_prometheus(&mut body)
//! ```

pub mod agent_api;
pub mod buffer;
pub mod conn;
pub mod core;
pub mod dns;
pub mod graphite;
pub mod proxy;
pub mod retry;
pub mod series;
pub mod settings;
pub mod sink;
pub mod uploader;
pub mod wire;

pub use self::core::{Endpoint, Outcome, Request};
pub use self::settings::UploadSettings;
pub use self::uploader::{Uploader, TOKENS};
pub use self::wire::{processes_of, processes_of_pids, HostIdentity};
