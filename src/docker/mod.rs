//! Docker Engine API over the unix socket: models, events, version
//! negotiation, and the client state machine driven by the event loop.

pub mod api;
pub mod client;
pub mod events;
pub mod sync;
pub mod version;
