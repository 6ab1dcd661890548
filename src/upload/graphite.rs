//! The Graphite sink: carbon's plaintext protocol,
//! `<finger>.<path> <value> <unix seconds>\n` per sample, over TCP or TLS.

use super::buffer::Sample;
use super::sink::{Context, Framing, SampleSink};
use super::wire::write_graphite_line;

/// Lines per Graphite write.
pub const GRAPHITE_BATCH: usize = 1000;

pub struct Graphite;

impl SampleSink for Graphite {
    fn name(&self) -> &'static str {
        "graphite"
    }

    fn batch_size(&self) -> usize {
        GRAPHITE_BATCH
    }

    fn framing(&self) -> Framing {
        Framing::Stream
    }

    fn encode(&self, batch: &[Sample], cx: &Context<'_>, out: &mut Vec<u8>) {
        for s in batch {
            write_graphite_line(
                out,
                cx.names.get(s.finger),
                cx.names.get(s.path),
                s.value,
                s.unix_secs,
            );
        }
    }
}
