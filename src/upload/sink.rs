//! The seam between the uploader's scheduling and each metrics backend's
//! format. `core` buffers the samples of every cycle per sink, takes batches,
//! carries them over the shared connection, TLS, proxy and retry code, and
//! accounts for them; a sink only says how a batch looks on the wire.
//!
//! A new metrics backend is one file implementing [`SampleSink`], one
//! [`Endpoint`](super::core::Endpoint) and its setting.

use super::buffer::{Names, Sample};

/// How a sink's requests travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The batch is the body of an HTTP `POST` to the target's path; done
    /// when the backend answers.
    HttpPost { content_type: &'static str },
    /// The batch is written to the socket as it is (a line protocol); done
    /// when every byte is written.
    Stream,
}

/// What a sink may look up while encoding.
pub struct Context<'a> {
    /// The interned fingerprints and metric paths of the samples.
    pub names: &'a Names,
    /// The name of the container behind a fingerprint (none for the host).
    pub container_name: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// One metrics backend's wire format.
pub trait SampleSink: Sync {
    /// For logs and the `sink` label of the agent's own metrics.
    fn name(&self) -> &'static str;
    /// Samples per request.
    fn batch_size(&self) -> usize;
    fn framing(&self) -> Framing;
    /// Appends one batch to `out` (empty on entry, reused between batches).
    /// Non-finite values are never in a batch.
    fn encode(&self, batch: &[Sample], cx: &Context<'_>, out: &mut Vec<u8>);
}
