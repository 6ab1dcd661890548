#![no_main]
//! The events stream: the line splitter fed in pieces must return exactly
//! the `\n`-separated lines (and the unterminated tail at the end), and
//! every line goes through the event parser without panicking.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::docker::events::{parse_event_line, LineSplitter};

fuzz_target!(|data: &[u8]| {
    let mut splitter = LineSplitter::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let step = 1 + data.first().map_or(0, |&b| usize::from(b) % 97);
    for chunk in data.chunks(step) {
        splitter.push(chunk);
        while let Some(line) = splitter.next_line() {
            let line = line.expect("inputs are far below the line limit");
            let _ = parse_event_line(line);
            got.push(line.to_vec());
        }
    }
    if let Some(tail) = splitter.finish() {
        let _ = parse_event_line(tail);
        got.push(tail.to_vec());
    }
    let mut want: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if want.last().is_some_and(Vec::is_empty) {
        want.pop();
    }
    assert_eq!(got, want);
    let _ = parse_event_line(data);
});
