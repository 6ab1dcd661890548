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

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) → Unix seconds. The
/// obsolete RFC 850 and asctime forms are not accepted (RFC 9110 §5.6.7
/// says senders must use IMF-fixdate).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.get(5..)?; // "Sun, "
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
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
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = crate::docker::api::days_from_civil(year, month, day as u32);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + sec)
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
}
