//! One line per event on stderr: `2026-11-24T22:40:00.123Z info docker: connected (API 1.41)`.
//!
//! The agent key is registered once with [`set_secret`]; every line is
//! scrubbed of it before it is written, as a second line of defence behind
//! never formatting the key in the first place.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Lines one call site may write per [`FLOOD_WINDOW`] at levels other than
/// `info` (which are never held back); past that they are
/// counted, not written, and the count is logged with the site's next line
/// after the window (`… repeated 50000 times in 10 s`). A daemon that sends
/// garbage cannot fill a disk through the log.
pub const FLOOD_BURST: u32 = 100;
/// See [`FLOOD_BURST`].
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// One call site's share of the current window.
#[derive(Clone, Copy, Debug)]
struct Site {
    at: &'static Location<'static>,
    window_start: Instant,
    shown: u32,
    hidden: u64,
}

/// The per-call-site counts: as many entries as the code has log lines
/// that ever fired, so bounded by the source.
#[derive(Debug, Default)]
pub struct Flood {
    sites: Vec<Site>,
}

/// What [`Flood::admit`] decides for one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it.
    Show,
    /// Write first that `n` lines of this site were left out, then it.
    ShowAfterHidden(u64),
    /// Leave it out (counted).
    Hide,
}

impl Flood {
    pub fn admit(&mut self, at: &'static Location<'static>, now: Instant) -> Admit {
        let site = match self.sites.iter_mut().find(|s| *s.at == *at) {
            Some(s) => s,
            None => {
                self.sites.push(Site {
                    at,
                    window_start: now,
                    shown: 0,
                    hidden: 0,
                });
                self.sites.last_mut().expect("just pushed")
            }
        };
        if now.saturating_duration_since(site.window_start) >= FLOOD_WINDOW {
            let hidden = std::mem::take(&mut site.hidden);
            site.window_start = now;
            site.shown = 1;
            return if hidden > 0 {
                Admit::ShowAfterHidden(hidden)
            } else {
                Admit::Show
            };
        }
        if site.shown < FLOOD_BURST {
            site.shown += 1;
            Admit::Show
        } else {
            site.hidden += 1;
            Admit::Hide
        }
    }
}

static FLOOD: Mutex<Flood> = Mutex::new(Flood { sites: Vec::new() });

/// Writes one line for the calling log macro's site, unless that site is
/// flooding ([`FLOOD_BURST`]).
#[doc(hidden)]
#[track_caller]
pub fn write(level: &str, args: fmt::Arguments<'_>) {
    let at = Location::caller();
    // Info lines (one per container tracked, say) are never held back;
    // warnings, errors and debug lines are what floods are made of.
    let admit = match FLOOD.lock() {
        Ok(mut f) if level != "info" => f.admit(at, Instant::now()),
        _ => Admit::Show,
    };
    let now = SystemTime::now();
    let mut out = String::with_capacity(160);
    match admit {
        Admit::Hide => return,
        Admit::Show => {}
        Admit::ShowAfterHidden(n) => {
            write_timestamp(&mut out, now);
            let _ = writeln!(
                out,
                " {level} log: the line below (from {}:{}) repeated {n} times in the last {} s, not shown",
                at.file(),
                at.line(),
                FLOOD_WINDOW.as_secs()
            );
        }
    }
    let mut line = String::with_capacity(160);
    write_timestamp(&mut line, now);
    let _ = write!(line, " {level} {args}");
    push_printable(&mut out, &scrub(&line));
    out.push('\n');
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Appends `text` as one printable line: a newline or carriage return a
/// message carried becomes a space (one line per event), any other control
/// character (a container name may hold terminal escapes) is written as
/// `\xNN`.
pub fn push_printable(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_control() && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
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

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let mut out = String::new();
        push_printable(
            &mut out,
            "tracking we\u{1b}[31mird\nname\r\u{7}\u{7f}\u{9b}x\tok ü",
        );
        assert_eq!(out, "tracking we\\x1b[31mird name \\x07\\x7f\\x9bx\tok ü");
    }

    use super::*;
    use std::time::Duration;

    #[track_caller]
    fn site() -> &'static Location<'static> {
        Location::caller()
    }

    /// A flood from one site: the first FLOOD_BURST lines of a window, then
    /// nothing until the window is over, then the count with the next
    /// line; another site is not held back meanwhile.
    #[test]
    fn a_flooding_site_is_counted_not_written() {
        let (a, b) = (site(), site());
        assert_ne!(a, b);
        let mut f = Flood::default();
        let t0 = Instant::now();
        let mut shown = 0;
        for i in 0..50_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 100); // 5 s in all
            if f.admit(a, now) == Admit::Show {
                shown += 1;
            }
        }
        assert_eq!(shown, FLOOD_BURST);
        assert_eq!(f.admit(b, t0 + Duration::from_secs(5)), Admit::Show);
        assert_eq!(
            f.admit(a, t0 + FLOOD_WINDOW),
            Admit::ShowAfterHidden(50_000 - u64::from(FLOOD_BURST))
        );
        // The new window starts with that line: FLOOD_BURST - 1 more shown.
        let later = t0 + FLOOD_WINDOW + Duration::from_secs(1);
        let more = (0..200)
            .filter(|_| f.admit(a, later) == Admit::Show)
            .count();
        assert_eq!(more as u32, FLOOD_BURST - 1);
        // A quiet site's lines are all shown, window after window.
        for w in 0..5u32 {
            let now = t0 + FLOOD_WINDOW * (w + 2);
            assert_eq!(f.admit(b, now), Admit::Show);
        }
        assert_eq!(f.sites.len(), 2);
    }

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
