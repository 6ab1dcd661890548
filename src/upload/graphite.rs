//! The Graphite sink: carbon's plaintext protocol,
//! `<finger>.<path> <value> <unix seconds>\n` per sample, over TCP or TLS.

use super::buffer::Sample;
use super::sink::{Context, Framing, SampleSink};

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

/// Characters Graphite accepts in a path node; anything else becomes `_`
/// (a space or newline would split the line).
fn push_graphite_path(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().map(|b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':') {
            b
        } else {
            b'_'
        }
    }));
}

/// `<finger>.<path> <value> <unix seconds>\n`. Non-finite values are
/// skipped (carbon rejects them); returns whether a line was written.
pub fn write_graphite_line(
    out: &mut Vec<u8>,
    finger: &str,
    path: &str,
    value: f64,
    unix_secs: f64,
) -> bool {
    if !value.is_finite() {
        return false;
    }
    push_graphite_path(out, finger);
    out.push(b'.');
    push_graphite_path(out, path);
    let _ = std::io::Write::write_fmt(out, format_args!(" {} {}\n", value, unix_secs as i64));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphite_lines() {
        let mut out = Vec::new();
        assert!(write_graphite_line(
            &mut out,
            "f-1",
            "base.cpu",
            12.5,
            1_732_480_000.7
        ));
        assert!(write_graphite_line(
            &mut out,
            "f 2\n",
            "base.vmem.used",
            1e6,
            1.0
        ));
        assert!(!write_graphite_line(&mut out, "f", "x", f64::NAN, 1.0));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "f-1.base.cpu 12.5 1732480000\nf_2_.base.vmem.used 1000000 1\n"
        );
    }
}
