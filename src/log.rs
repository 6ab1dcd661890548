//! One line per event on stderr: `2026-11-24T22:40:00.123Z info docker: connected (API 1.41)`.
//!
//! The agent key is registered once with [`set_secret`]; every line is
//! scrubbed of it before it is written, as a second line of defence behind
//! never formatting the key in the first place.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: AtomicBool = AtomicBool::new(false);
static SECRET: OnceLock<String> = OnceLock::new();

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn is_debug() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Registers the agent key so that no log line can ever carry it.
pub fn set_secret(secret: &str) {
    if !secret.is_empty() {
        let _ = SECRET.set(secret.to_owned());
    }
}

/// Replaces every occurrence of the registered secret in `text`.
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    match SECRET.get() {
        Some(s) if text.contains(s.as_str()) => text.replace(s.as_str(), "[redacted]").into(),
        _ => text.into(),
    }
}

#[doc(hidden)]
pub fn write(level: &str, args: fmt::Arguments<'_>) {
    let mut line = String::with_capacity(160);
    write_timestamp(&mut line, SystemTime::now());
    let _ = write!(line, " {level} {args}");
    // One line per event: fold any newline a message carried.
    let mut out = scrub(&line).replace(['\n', '\r'], " ");
    out.push('\n');
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// RFC 3339 UTC with milliseconds.
pub fn write_timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = crate::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    );
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write("info", format_args!($($t)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write("warn", format_args!($($t)*)) };
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write("error", format_args!($($t)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::log::is_debug() {
            $crate::log::write("debug", format_args!($($t)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = String::new();
        write_timestamp(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(1_732_480_000_123),
        );
        assert_eq!(s, "2024-11-24T20:26:40.123Z");
        s.clear();
        write_timestamp(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
    }
}
