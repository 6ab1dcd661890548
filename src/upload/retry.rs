//! Capped exponential backoff with full jitter, `Retry-After`, and the
//! small PRNG behind both (no crate: the jitter needs spread, not secrecy).

use std::time::Duration;

/// xorshift64*: deterministic for a given seed, which tests rely on.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A seed that differs between processes and runs.
    pub fn seed_from_env() -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max` (the modulo bias is irrelevant here).
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (max + 1)
        }
    }
}

/// Delay before attempt `n+1` after `n` consecutive failures: uniform in
/// `[0, min(cap, base × 2^(n-1))]` ("full jitter"), so that many agents
/// whose backend came back do not retry in lock-step.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The ceiling of the next delay (before jitter).
    pub fn ceiling(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << shift).min(self.cap)
    }

    /// Records a failure and draws the delay before the next attempt.
    pub fn fail(&mut self, rng: &mut Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.ceiling().as_millis() as u64;
        Duration::from_millis(rng.up_to(ceiling))
    }
}

/// Longest `Retry-After` honoured: a server asking for more is treated as
/// asking for this, so buffered data is not held back for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// `Retry-After: <seconds>` or `Retry-After: <HTTP-date>`. A date is taken
/// relative to the response's own `Date` header when present (immune to
/// clock skew between agent and server), else to `unix_now`.
///
/// `None` (no hint: the caller falls back to its own backoff) for anything
/// unparsable, including a date [`parse_http_date`] rejects as out of
/// range; only a well-formed value asking for too long is capped at
/// [`MAX_RETRY_AFTER`]. An unusable `Date` header just means `unix_now`.
pub fn parse_retry_after(value: &[u8], date: Option<&[u8]>, unix_now: u64) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let delay = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(text.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = parse_http_date(text)?;
        let reference = date
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| parse_http_date(d.trim()))
            .unwrap_or(unix_now);
        Duration::from_secs(at.saturating_sub(reference))
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Years an HTTP-date may carry: the 4-digit years (RFC 9110 §5.6.7) from
/// the Unix epoch on. Anything else is not a date a server means.
pub const HTTP_DATE_YEARS: std::ops::RangeInclusive<i64> = 1970..=crate::time::MAX_YEAR;

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) → Unix seconds. The
/// obsolete RFC 850 and asctime forms are not accepted (RFC 9110 §5.6.7
/// says senders must use IMF-fixdate). Strict about the shape (a day name,
/// two-digit day and time fields, a four-digit year in [`HTTP_DATE_YEARS`],
/// a date that exists) but not about the day name matching the date.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let (weekday, rest) = s.split_once(", ")?;
    if !matches!(
        weekday,
        "Mon" | "Tue" | "Wed" | "Thu" | "Fri" | "Sat" | "Sun"
    ) {
        return None;
    }
    let mut it = rest.split(' ');
    let day = digits(it.next()?, 2)?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = i64::from(digits(it.next()?, 4)?);
    let mut hms = it.next()?.split(':');
    let h = digits(hms.next()?, 2)?;
    let m = digits(hms.next()?, 2)?;
    let sec = digits(hms.next()?, 2)?;
    if hms.next().is_some() || it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    if !HTTP_DATE_YEARS.contains(&year) {
        return None;
    }
    let secs = crate::time::unix_seconds(year, month, day, h, m, sec)?;
    u64::try_from(secs).ok()
}

/// A field of exactly `len` ASCII digits (no sign, no spaces).
fn digits(field: &str, len: usize) -> Option<u32> {
    if field.len() != len {
        return None;
    }
    field.bytes().try_fold(0u32, |acc, b| {
        b.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u32::from(b - b'0')))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let mut rng = Rng::new(7);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut ceilings = Vec::new();
        let mut seen_below_half = false;
        for _ in 0..12 {
            let d = b.fail(&mut rng);
            ceilings.push(b.ceiling().as_millis());
            assert!(d <= b.ceiling());
            seen_below_half |= d < b.ceiling() / 2;
        }
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000, 30000]
        );
        assert!(seen_below_half, "full jitter spreads over [0, ceiling]");
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail(&mut rng) <= Duration::from_millis(500));
        // Many failures never overflow.
        for _ in 0..200 {
            assert!(b.fail(&mut rng) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn jitter_draws_cover_the_range() {
        let mut rng = Rng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            buckets[rng.up_to(999) as usize / 100] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(b"120", None, 0),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(b" 0 ", None, 0), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(b"99999999999999999999999", None, 0),
            Some(MAX_RETRY_AFTER)
        );
        let at = b"Sun, 06 Nov 1994 08:50:07 GMT";
        assert_eq!(
            parse_retry_after(at, Some(b"Sun, 06 Nov 1994 08:49:37 GMT"), 0),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(at, None, 784_111_797),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after(at, None, 784_200_000),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(b"-5", None, 0), None);
        assert_eq!(parse_retry_after(b"soon", None, 0), None);
        assert_eq!(parse_retry_after(b"\xff", None, 0), None);
    }

    /// The header from the bug report: an 11-digit year used to give the
    /// 600 s cap (and a 12-digit one overflowed, panicking a debug build).
    const OVERFLOW: &[u8] = b"Mon, 01 Jan 99999999999 00:00:00 GMT";

    #[test]
    fn absurd_retry_after_dates_are_no_hint() {
        let now = 1_700_000_000;
        let values: [&[u8]; 6] = [
            OVERFLOW,
            b"Mon, 01 Jan 999999999999 00:00:00 GMT",
            b"Mon, 01 Jan 9223372036854775807 00:00:00 GMT",
            b"Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
            b"Mon, 01 Jan -9223372036854775808 00:00:00 GMT",
            b"Mon, 01 Jan 10000 00:00:00 GMT",
        ];
        for value in values {
            let shown = String::from_utf8_lossy(value);
            assert_eq!(parse_retry_after(value, None, now), None, "{shown}");
            assert_eq!(parse_retry_after(value, Some(value), now), None, "{shown}");
            let date = Some(&b"Mon, 13 Nov 2023 22:13:20 GMT"[..]);
            assert_eq!(parse_retry_after(value, date, now), None, "{shown}");
        }
        // An absurd Date header is ignored in favour of the local clock.
        assert_eq!(
            parse_retry_after(b"Tue, 14 Nov 2023 22:13:30 GMT", Some(OVERFLOW), now),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn http_date_years_are_bounded() {
        let with_year = |y: &str| parse_http_date(&format!("Mon, 01 Jan {y} 00:00:00 GMT"));
        for year in [
            "0",
            "0000",
            "1969",
            "-1",
            "-001",
            "+999",
            "10000",
            "99999999999",
            "999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551616",
            "94",
            "",
        ] {
            assert_eq!(with_year(year), None, "{year}");
        }
        assert_eq!(with_year("1970"), Some(0));
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
    }

    #[test]
    fn http_dates_that_do_not_exist_are_rejected() {
        for s in [
            "Mon, 00 Jan 2024 00:00:00 GMT",
            "Mon, 32 Jan 2024 00:00:00 GMT",
            "Mon, 99 Jan 2024 00:00:00 GMT",
            "Wed, 31 Apr 2024 00:00:00 GMT",
            "Wed, 29 Feb 2023 00:00:00 GMT",
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Mon, 01 Jan 2024 24:00:00 GMT",
            "Mon, 01 Jan 2024 00:60:00 GMT",
            "Mon, 01 Jan 2024 00:00:61 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        // A leap second counts as the first second of the next minute.
        assert_eq!(
            parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800)
        );
    }

    #[test]
    fn http_date_shape_is_strict() {
        for s in [
            "Sun, 06 jan 1994 08:49:37 GMT",
            "Sun, 06 JAN 1994 08:49:37 GMT",
            "Sun, 06 January 1994 08:49:37 GMT",
            "Sun, 06 Jan. 1994 08:49:37 GMT",
            "Sun, 06  1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 -8:49:37 GMT",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
            "Foo, 06 Nov 1994 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\0",
            "Sun, \u{e9}6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 \u{e9}",
            "\u{e9}, 06 Nov 1994 08:49:37 GMT",
            ",",
            ", ",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
        // The day name is not checked against the date.
        assert_eq!(
            parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }
}
