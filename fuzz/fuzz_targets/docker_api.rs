#![no_main]
//! Docker API body parsers (container list, inspect, info, error bodies,
//! RFC 3339 timestamps, ids): any bytes give a value or an error, never a panic.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::docker::api;

fuzz_target!(|data: &[u8]| {
    let _ = api::parse_container_list(data);
    let _ = api::parse_inspect(data);
    let _ = api::parse_info(data);
    let _ = api::error_message(Some("application/json"), data);
    let _ = api::error_message(Some("text/plain; charset=utf-8"), data);
    let _ = api::error_message(None, data);
    let text = String::from_utf8_lossy(data);
    let _ = api::parse_rfc3339(&text);
    let _ = api::is_valid_id(&text);
    if let Ok(list) = api::parse_container_list(data) {
        for c in &list {
            let _ = c.name();
        }
    }
});
