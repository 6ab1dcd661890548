//! Upload to the monitoring backend (outlyer-protocol.md): virtual agents
//! over the agent API, metrics to Graphite and/or the series API, over TLS
//! driven by the agent's single mio loop.
//!
//! Layers: pure wire formats ([`wire`], [`dns`], [`proxy`], [`retry`]),
//! the sans-IO scheduler ([`core`]), and the thin socket shell
//! ([`conn`], [`Uploader`]).

pub mod buffer;
pub mod conn;
pub mod core;
pub mod dns;
pub mod proxy;
pub mod retry;
pub mod settings;
pub mod uploader;
pub mod wire;

pub use self::core::{Endpoint, Outcome, Request};
pub use self::settings::UploadSettings;
pub use self::uploader::{Uploader, TOKENS};
pub use self::wire::{processes_of, HostIdentity};
