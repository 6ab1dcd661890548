//! Readings → rates → the Outlyer (`base.*`) and Prometheus (cAdvisor) views.
//!
//! Each file uses only those listed after it: `collector` (the cycle and
//! the public API) → `prometheus` (renders the state) → `state` (per
//! container and host) → `read` (per-cycle reads) → `open` (which files,
//! opened how) → `tasks`, `pidscan` (processes, load) → `outlyer`,
//! `reading`, `files`, `exposition`.

mod collector;
pub(crate) mod exposition;
mod files;
mod open;
mod outlyer;
mod pidscan;
mod prometheus;
mod read;
mod reading;
mod state;
mod tasks;

pub use collector::{Collector, SCAN_NEW_AFTER};
pub use files::{set_fd_limit, FD_RESERVE};
pub use outlyer::{path_index, OUTLYER_PATHS};
pub use prometheus::Cursor as PromCursor;
