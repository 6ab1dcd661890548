//! The series API sink: a JSON body of samples, each with its host (the
//! fingerprint of the host or container agent), the container's name as a
//! label, the metric path, a millisecond timestamp, counter or gauge.

use super::buffer::Sample;
use super::sink::{Context, Framing, SampleSink};
use super::wire::{write_series_body, SeriesSample};

/// Samples per series request (≈ 150 KB of JSON, far below the 10 MB cap).
pub const SERIES_BATCH: usize = 1000;

pub struct Series;

impl SampleSink for Series {
    fn name(&self) -> &'static str {
        "series"
    }

    fn batch_size(&self) -> usize {
        SERIES_BATCH
    }

    fn framing(&self) -> Framing {
        Framing::HttpPost {
            content_type: "application/json",
        }
    }

    fn encode(&self, batch: &[Sample], cx: &Context<'_>, out: &mut Vec<u8>) {
        // Written as text into the same allocation (empty on entry, so the
        // conversion checks nothing).
        let mut text = String::from_utf8(std::mem::take(out)).unwrap_or_default();
        write_series_body(
            &mut text,
            batch.iter().map(|s| {
                let finger = cx.names.get(s.finger);
                SeriesSample {
                    host: finger,
                    container: (cx.container_name)(finger),
                    name: cx.names.get(s.path),
                    unix_secs: s.unix_secs,
                    value: s.value,
                }
            }),
        );
        *out = text.into_bytes();
    }
}
