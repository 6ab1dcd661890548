//! The series API sink: a JSON body of samples, each with its host (the
//! fingerprint of the host or container agent), the container's name as a
//! label, the metric path, a millisecond timestamp, counter or gauge.

use super::buffer::Sample;
use super::sink::{Context, Framing, SampleSink};
use super::wire::push_json_str;
use std::fmt::Write as _;

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

/// Label values: `-._A-Za-z0-9`, at most 80 characters.
pub fn sanitize_label(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

/// Counters in the Outlyer catalog: the cumulative network and disk
/// values; their `_per_sec` forms and everything else are gauges.
pub fn is_counter_path(path: &str) -> bool {
    (path.starts_with("base.network.") || path.starts_with("base.disk."))
        && !path.ends_with("_per_sec")
}

/// One sample of the series body.
pub struct SeriesSample<'a> {
    pub host: &'a str,
    /// Container name, when the fingerprint is a container's.
    pub container: Option<&'a str>,
    pub name: &'a str,
    pub unix_secs: f64,
    pub value: f64,
}

/// `{"samples":[...]}` for `POST .../series`. Non-finite values are
/// skipped (JSON has no NaN); returns the number written.
pub fn write_series_body<'a>(
    out: &mut String,
    samples: impl IntoIterator<Item = SeriesSample<'a>>,
) -> usize {
    out.push_str("{\"samples\":[");
    let mut n = 0;
    for s in samples {
        if !s.value.is_finite() {
            continue;
        }
        if n > 0 {
            out.push(',');
        }
        n += 1;
        out.push_str("{\"host\":");
        push_json_str(out, s.host);
        out.push_str(",\"labels\":{");
        if let Some(c) = s.container {
            out.push_str("\"container\":");
            push_json_str(out, &sanitize_label(c));
        }
        out.push_str("},\"name\":");
        push_json_str(out, s.name);
        let _ = write!(
            out,
            ",\"timestamp\":{},\"type\":\"{}\",\"value\":{}}}",
            (s.unix_secs * 1000.0) as i64,
            if is_counter_path(s.name) {
                "counter"
            } else {
                "gauge"
            },
            s.value
        );
    }
    out.push_str("]}");
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_body() {
        let mut out = String::new();
        let n = write_series_body(
            &mut out,
            [
                SeriesSample {
                    host: "f",
                    container: Some("web/1 x"),
                    name: "base.cpu",
                    unix_secs: 1_732_480_000.5,
                    value: 12.5,
                },
                SeriesSample {
                    host: "f",
                    container: None,
                    name: "base.network.bytes_recv",
                    unix_secs: 1.0,
                    value: 3.0,
                },
                SeriesSample {
                    host: "f",
                    container: None,
                    name: "base.x",
                    unix_secs: 1.0,
                    value: f64::INFINITY,
                },
            ],
        );
        assert_eq!(n, 2);
        assert_eq!(
            out,
            r#"{"samples":[{"host":"f","labels":{"container":"web_1_x"},"name":"base.cpu","timestamp":1732480000500,"type":"gauge","value":12.5},{"host":"f","labels":{},"name":"base.network.bytes_recv","timestamp":1000,"type":"counter","value":3}]}"#
        );
        assert!(
            is_counter_path("base.disk.read_bytes")
                && !is_counter_path("base.disk.read_bytes_per_sec")
        );
        assert_eq!(sanitize_label(&"x".repeat(100)).len(), 80);
    }
}
