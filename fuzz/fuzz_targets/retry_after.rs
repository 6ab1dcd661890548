#![no_main]
//! `Retry-After` and HTTP-date parsing: any bytes give a delay or no hint,
//! never a panic or overflow; a delay is never above the cap, and a date
//! is within the accepted years and is zero seconds after itself.
//!
//! The input is the `Retry-After` value, optionally followed by a newline
//! and a `Date` header value, so seeds stay plain header text.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::upload::retry::{parse_http_date, parse_retry_after, MAX_RETRY_AFTER};
use std::time::Duration;

/// 9999-12-31T23:59:60Z, the last second an HTTP-date can name.
const LAST: u64 = 253_402_300_800;

fuzz_target!(|data: &[u8]| {
    let (value, date) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    for now in [0, 1_700_000_000, LAST, u64::MAX] {
        if let Some(d) = parse_retry_after(value, date, now) {
            assert!(d <= MAX_RETRY_AFTER, "{d:?}");
        }
    }
    let text = String::from_utf8_lossy(value);
    if let Some(at) = parse_http_date(&text) {
        assert!(at <= LAST, "{at}");
        assert_eq!(parse_http_date(text.trim()), Some(at));
        assert_eq!(
            parse_retry_after(value, Some(value), 0),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(value, None, at), Some(Duration::ZERO));
    }
    if let Some(d) = date {
        let _ = parse_http_date(&String::from_utf8_lossy(d));
    }
});
