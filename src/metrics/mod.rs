//! Readings → rates → the Outlyer (`base.*`) and Prometheus (cAdvisor) views.

mod collector;
mod files;
mod outlyer;
mod pidscan;
mod prometheus;
mod reading;

pub use collector::Collector;
pub use outlyer::{path_index, OUTLYER_PATHS};
pub use prometheus::Cursor as PromCursor;
