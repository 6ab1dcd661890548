//! A real `/events` stream captured from Docker 20.10.24 (API 1.41) while a
//! container was created, started, paused, unpaused, renamed, exec'd into,
//! signalled, stopped, restarted and removed, plus a second short-lived
//! container and an image tag/untag. Decoded end to end: chunked framing →
//! line splitter → event parser.

use outlyer_agent::docker::events::{parse_event_line, ContainerEvent, EventAction, LineSplitter};
use outlyer_agent::http::response::{Framing, HttpError, Progress, ResponseDecoder};

const STREAM: &[u8] = include_bytes!("fixtures/docker/events-20.10-raw.http");
const ID1: &str = "e07d5888f493d797f93a2ea1217bf53652fb6436c76100b0df7a55f5ac92b9a9";
const ID2: &str = "311a717088c3d70adfcdda26c57f235f481ef03635b50cfbb8078b8d21444724";

/// Decodes `pieces` as they would arrive from the socket; returns the
/// container events, the number of lines that were not container events,
/// and what EOF reported.
fn run(pieces: &[&[u8]]) -> (Vec<ContainerEvent>, usize, Result<Progress, HttpError>) {
    let mut dec = ResponseDecoder::new(None);
    let mut lines = LineSplitter::new();
    let mut events = Vec::new();
    let mut others = 0;
    let mut heads = 0;
    for piece in pieces {
        let mut input = *piece;
        loop {
            let progress = dec.feed(input, lines.buffer_mut()).expect("valid framing");
            input = &[];
            while let Some(line) = lines.next_line() {
                match parse_event_line(line.expect("short lines")).expect("valid event") {
                    Some(ev) => events.push(ev),
                    None => others += 1,
                }
            }
            match progress {
                Progress::NeedMore => break,
                Progress::Head(head) => {
                    heads += 1;
                    assert_eq!(head.status, 200);
                    assert_eq!(head.framing, Framing::Chunked);
                    assert!(!head.close_after);
                }
                Progress::Done => panic!("the capture has no terminating chunk"),
            }
        }
    }
    assert_eq!(heads, 1);
    (events, others, dec.eof())
}

fn summary(events: &[ContainerEvent]) -> Vec<(EventAction, &str, Option<&str>)> {
    events
        .iter()
        .map(|e| {
            let which = if e.id == ID1 {
                "1"
            } else if e.id == ID2 {
                "2"
            } else {
                panic!("unexpected id {}", e.id)
            };
            (e.action.clone(), which, e.name.as_deref())
        })
        .collect()
}

#[test]
fn captured_stream_decodes_to_the_container_lifecycle() {
    let (events, others, eof) = run(&[STREAM]);
    use EventAction::*;
    let other = |s: &str| Other(s.to_string());
    let r = Some("hh-ev1-renamed");
    assert_eq!(
        summary(&events),
        vec![
            (Create, "1", Some("hh-ev1")),
            (Start, "1", Some("hh-ev1")),
            (Pause, "1", Some("hh-ev1")),
            (Unpause, "1", Some("hh-ev1")),
            (Rename, "1", r),
            (other("exec_create"), "1", r),
            (other("exec_start"), "1", r),
            (other("exec_die"), "1", r),
            (Kill, "1", r),
            (Kill, "1", r),
            (Kill, "1", r),
            (Die, "1", r),
            (Stop, "1", r),
            (Start, "1", r),
            (Kill, "1", r),
            (Die, "1", r),
            (Destroy, "1", r),
            (Create, "2", Some("hh-ev2")),
            (other("attach"), "2", Some("hh-ev2")),
            (Start, "2", Some("hh-ev2")),
            (Die, "2", Some("hh-ev2")),
            (Destroy, "2", Some("hh-ev2")),
        ]
    );
    // 6 network connect/disconnect + image tag + untag.
    assert_eq!(others, 8);
    // Times are nanoseconds and never go backwards within the capture.
    assert!(events.windows(2).all(|w| w[0].time_nano <= w[1].time_nano));
    assert!(events[0].time_nano > 1_700_000_000_000_000_000);
    // The capture was cut while the stream was open.
    assert!(matches!(eof, Err(HttpError::Truncated { .. })));
}

#[test]
fn captured_stream_is_split_invariant() {
    let (whole, whole_others, _) = run(&[STREAM]);
    let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
    let (by_byte, others, _) = run(&bytes);
    assert_eq!(by_byte, whole);
    assert_eq!(others, whole_others);
    for split in (0..STREAM.len()).step_by(7) {
        let (a, b) = STREAM.split_at(split);
        let (got, others, _) = run(&[a, b]);
        assert_eq!(got, whole, "split at {split}");
        assert_eq!(others, whole_others);
    }
}
