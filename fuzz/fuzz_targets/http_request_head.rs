#![no_main]
//! The :8000 request-head parser: never panics, reports a head length
//! within the input, and re-parsing exactly that head gives the same result.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::http::server::parse_request_head;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, len))) = parse_request_head(data) {
        assert!(len <= data.len());
        let again = parse_request_head(&data[..len]);
        assert_eq!(again, Ok(Some((head, len))));
    }
});
