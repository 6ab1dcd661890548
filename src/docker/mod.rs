//! Docker Engine API over the unix socket (also Podman's compatible API):
//! reply models, events, version negotiation, the client that moves the
//! bytes (`client`), the sans-IO sync that decides what to ask and what the
//! answers mean (`sync`), and the watch on the socket's directory.

pub mod api;
pub mod client;
pub mod events;
pub mod socket_watch;
pub mod sync;
pub mod version;
