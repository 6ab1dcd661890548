#![no_main]
//! The HTTP/1.1 response decoder fed the same bytes whole and in random
//! splits: it must never panic or spin, and when the whole feed decodes
//! cleanly the split feed must yield the same heads, ends and body bytes.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::http::response::{HttpError, Progress, ResponseDecoder};

#[derive(Debug, PartialEq)]
enum Event {
    Head(String),
    Done,
    Eof(Result<(), HttpError>),
}

struct Outcome {
    events: Vec<Event>,
    body: Vec<u8>,
    error: Option<HttpError>,
}

fn decode(input: &[u8], chunks: &[usize]) -> Outcome {
    let mut dec = ResponseDecoder::new(Some(1 << 20));
    let mut out = Outcome {
        events: Vec::new(),
        body: Vec::new(),
        error: None,
    };
    // Each call either consumes input or reports a head/end; more calls
    // than this means the decoder stopped making progress.
    let mut budget = 4 * input.len() + 64;
    let mut rest = input;
    for &n in chunks {
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        let mut feed = chunk;
        loop {
            budget = budget.checked_sub(1).expect("decoder made no progress");
            match dec.feed(feed, &mut out.body) {
                Ok(Progress::NeedMore) => break,
                Ok(Progress::Head(h)) => out.events.push(Event::Head(format!("{h:?}"))),
                Ok(Progress::Done) => out.events.push(Event::Done),
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
            feed = &[];
        }
    }
    out.events.push(Event::Eof(dec.eof().map(|_| ())));
    out
}

/// Split sizes derived from the input itself, so seeds stay plain HTTP.
fn splits(data: &[u8]) -> Vec<usize> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut sizes = Vec::new();
    let mut left = data.len();
    while left > 0 {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        let n = match h % 8 {
            0 => 1,
            1..=5 => 1 + (h >> 8) as usize % 16,
            _ => 1 + (h >> 8) as usize % 512,
        };
        let n = n.min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(data, &[data.len()]);
    let split = decode(data, &splits(data));
    if whole.error.is_none() {
        assert_eq!(
            split.error, None,
            "split feed failed where the whole feed did not"
        );
        assert_eq!(whole.events, split.events);
        assert_eq!(whole.body, split.body);
    }
});
