//! Whole replies captured from Podman 4.3.1's Docker-compatible API
//! (`podman system service`, cgroupfs manager, file events backend; wire
//! bytes, headers and framing included), decoded as the client decodes them
//! and parsed by the model for their endpoint, then played through the
//! sync. What differs from Docker: `MinAPIVersion` 1.24, the image named
//! `localhost/...`, chunked `/info` and inspect replies, and events Docker
//! does not send (`init`, `cleanup`, `remove` where Docker says `destroy`,
//! `restart` before the `stop`/`die`/`start` it stands for), and an `/info`
//! `ID` that is a new random UUID on every call.

use outlyer_agent::docker::api::{parse_container_list, parse_info, parse_inspect};
use outlyer_agent::docker::client::{Output, Request};
use outlyer_agent::docker::events::{parse_event_line, ContainerEvent, EventAction, LineSplitter};
use outlyer_agent::docker::sync::{Action, DockerSync};
use outlyer_agent::docker::version::{parse_version_body, ApiVersion};
use outlyer_agent::http::response::{Framing, Progress, ResponseDecoder, ResponseHead};
use outlyer_agent::source::{Change, Update};
use std::time::Instant;

const VERSION: &[u8] = include_bytes!("fixtures/podman/version-4.3.http");
const INFO: &[u8] = include_bytes!("fixtures/podman/info-4.3.http");
const LIST: &[u8] = include_bytes!("fixtures/podman/list-4.3.http");
const INSPECT: &[u8] = include_bytes!("fixtures/podman/inspect-4.3-pm-web.http");
const EVENTS: &[u8] = include_bytes!("fixtures/podman/events-4.3-raw.http");
const WEB: &str = "bc13d3beefbb1a12a5a3c10a24ab083d85600466bf19ee656d19c828e3902e7b";
const EV: &str = "11195dc46aa23a3c0e898d8e9c1cf28ef9463baee3cd65cfaa8622acb3cc03d6";

/// Decodes the one response in `wire`, fed in `piece`-byte reads, then EOF.
fn decode(wire: &[u8], piece: usize) -> (ResponseHead, Vec<u8>) {
    let mut dec = ResponseDecoder::new(Some(1 << 20));
    let mut head = None;
    let mut body = Vec::new();
    let mut done = false;
    for chunk in wire.chunks(piece) {
        let mut input = chunk;
        loop {
            match dec.feed(input, &mut body).unwrap() {
                Progress::NeedMore => break,
                Progress::Head(h) => head = Some(h),
                Progress::Done => done = true,
            }
            input = &[];
        }
    }
    if !done {
        assert!(
            matches!(dec.eof(), Ok(Progress::Done)),
            "reply not complete"
        );
    }
    (head.expect("a head"), body)
}

/// The reply decoded at several read sizes, all equal.
fn reply(wire: &[u8]) -> (ResponseHead, Vec<u8>) {
    let whole = decode(wire, wire.len());
    for piece in [1, 2, 7, 64, 4096] {
        assert_eq!(decode(wire, piece), whole, "read size {piece}");
    }
    whole
}

fn ok(request: Request, wire: &[u8]) -> Output {
    let (head, body) = reply(wire);
    assert_eq!(head.status, 200);
    Output::Reply {
        request,
        status: head.status,
        content_type: Some("application/json".into()),
        body,
    }
}

#[test]
fn version_negotiates_1_41() {
    let (head, body) = reply(VERSION);
    assert_eq!(head.framing, Framing::Length(body.len() as u64));
    let v = parse_version_body(&body).unwrap();
    assert_eq!(v.version, "4.3.1");
    assert_eq!(v.api_version, ApiVersion::new(1, 41));
    // The top-level minimum, not the libpod API's 4.0.0 in `Components`.
    assert_eq!(v.min_api_version, Some(ApiVersion::new(1, 24)));
    assert_eq!(v.negotiated(), ApiVersion::new(1, 41));
}

#[test]
fn info_is_chunked_and_names_the_cgroupfs_driver() {
    let (head, body) = reply(INFO);
    assert_eq!(head.framing, Framing::Chunked);
    let info = parse_info(&body).unwrap();
    assert_eq!(
        info.id.as_deref(),
        Some("12300573-4150-4d2d-8188-d4af2345ff2e")
    );
    assert_eq!(info.name.as_deref(), Some("vm"));
    assert_eq!(info.cgroup_driver.as_deref(), Some("cgroupfs"));
    // Podman's tell, and the reason its ID is no host identity: a second
    // call answers another random UUID.
    assert!(info.podman);
}

#[test]
fn list_and_inspect() {
    let (_, body) = reply(LIST);
    let list = parse_container_list(&body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, WEB);
    assert_eq!(list[0].name(), Some("pm-web"));
    assert_eq!(list[0].state.as_deref(), Some("running"));
    assert_eq!(list[0].image, "localhost/localbusy:latest");

    let (head, body) = reply(INSPECT);
    assert_eq!(head.framing, Framing::Chunked);
    let got = parse_inspect(&body).unwrap();
    let info = &got.info;
    assert_eq!(info.id, WEB);
    assert_eq!(info.name, "pm-web");
    assert_eq!(info.image, "localhost/localbusy:latest");
    assert_eq!(
        info.labels,
        vec![
            ("app".into(), "web".into()),
            ("com.example.team".into(), "payments".into()),
        ]
    );
    assert_eq!(
        info.env_tags,
        vec!["staging".to_string(), "checkout".to_string()]
    );
    assert_eq!(info.pid, 12469);
    assert_eq!(info.network_mode, "none");
    assert!(info.ips.is_empty() && !info.has_own_netns());
    assert_eq!(info.cgroup_parent, "");
    assert!((info.started_at - 1_796_317_235.688_808).abs() < 1e-5);
    assert!(got.running && !info.paused);
    assert_eq!(got.hostname, "pm-web-host");
    assert!(!format!("{got:?}").contains("hunter2"));
}

/// The captured stream's container events, fed in `piece`-byte reads.
fn events(piece: usize) -> Vec<ContainerEvent> {
    let mut dec = ResponseDecoder::new(None);
    let mut lines = LineSplitter::new();
    let mut out = Vec::new();
    for chunk in EVENTS.chunks(piece) {
        let mut input = chunk;
        loop {
            let progress = dec.feed(input, lines.buffer_mut()).expect("valid framing");
            input = &[];
            while let Some(line) = lines.next_line() {
                if let Some(ev) = parse_event_line(line.expect("short lines")).expect("valid event")
                {
                    out.push(ev);
                }
            }
            match progress {
                Progress::NeedMore => break,
                Progress::Head(head) => {
                    assert_eq!(head.status, 200);
                    assert_eq!(head.framing, Framing::Chunked);
                }
                Progress::Done => panic!("the capture has no terminating chunk"),
            }
        }
    }
    // The capture ends with the stream still open: EOF there is an error.
    assert!(dec.eof().is_err());
    out
}

#[test]
fn events_stream_decodes_to_podman_lifecycle() {
    let got = events(EVENTS.len());
    for piece in [1, 3, 64, 1000] {
        assert_eq!(events(piece), got, "read size {piece}");
    }
    use EventAction::*;
    let other = |s: &str| Other(s.to_string());
    let summary: Vec<(EventAction, &str)> = got
        .iter()
        .map(|e| (e.action.clone(), e.name.as_deref().unwrap_or("")))
        .collect();
    let (ev, ren, short) = ("pm-ev", "pm-ev-renamed", "pm-short");
    assert_eq!(
        summary,
        vec![
            (Create, ev),
            (other("init"), ev),
            (Start, ev),
            (Pause, ev),
            (Unpause, ev),
            (Rename, ren),
            (Restart, ren),
            (Stop, ren),
            (Die, ren),
            (other("init"), ren),
            (Start, ren),
            (Kill, ren),
            (Die, ren),
            (other("cleanup"), ren),
            (other("remove"), ren),
            (Create, short),
            (other("init"), short),
            (Start, short),
            (other("attach"), short),
            (Die, short),
            (other("remove"), short),
        ]
    );
    assert!(got[..15].iter().all(|e| e.id == EV));
    assert!(got.windows(2).all(|w| w[0].time_nano <= w[1].time_nano));
}

fn drain(s: &mut DockerSync) -> Vec<Action> {
    std::iter::from_fn(|| s.next_action()).collect()
}

fn changes(actions: Vec<Action>) -> Vec<Change> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Change(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The sync through the captured conversation: version, info, the events
/// head, the list, the inspection; then the first container's lifecycle
/// from the stream, each start answered with the captured inspection's
/// shape for that container.
#[test]
fn sync_tracks_the_captured_conversation() {
    let now = Instant::now();
    let mut s = DockerSync::new();
    s.connect();
    drain(&mut s);
    s.handle(ok(Request::Version, VERSION), now);
    let acts = drain(&mut s);
    assert!(acts.contains(&Action::SetVersion(ApiVersion::new(1, 41))));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::OpenEvents(p) if p.starts_with("/v1.41/events?"))));
    s.handle(ok(Request::Info, INFO), now);
    // Podman's ID changes with every call: it is not offered as the host's.
    assert!(drain(&mut s).contains(&Action::Daemon {
        id: None,
        name: Some("vm".into())
    }));
    s.handle(Output::EventsOpen { status: 200 }, now);
    let acts = drain(&mut s);
    assert!(acts.contains(&Action::Send(Request::List)));
    s.handle(ok(Request::List, LIST), now);
    assert!(drain(&mut s).contains(&Action::Send(Request::Inspect(WEB.into()))));
    s.handle(ok(Request::Inspect(WEB.into()), INSPECT), now);
    let added = changes(drain(&mut s));
    assert!(
        matches!(&added[..], [Change::Added(info)] if info.name == "pm-web"),
        "{added:?}"
    );

    // pm-ev's events, its inspections answered with pm-web's reply made
    // pm-ev's (same shape, other id and name).
    let (_, web_body) = reply(INSPECT);
    let ev_body = String::from_utf8(web_body)
        .unwrap()
        .replace(WEB, EV)
        .replace("\"Name\":\"/pm-web\"", "\"Name\":\"/pm-ev\"");
    let mut seen = Vec::new();
    for e in events(EVENTS.len()).into_iter().filter(|e| e.id == EV) {
        s.handle(Output::Event(e), now);
        for a in drain(&mut s) {
            match a {
                Action::Send(Request::Inspect(id)) => {
                    assert_eq!(id, EV);
                    s.handle(
                        Output::Reply {
                            request: Request::Inspect(id),
                            status: 200,
                            content_type: Some("application/json".into()),
                            body: ev_body.clone().into_bytes(),
                        },
                        now,
                    );
                    seen.extend(changes(drain(&mut s)));
                }
                Action::Change(c) => seen.push(c),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let kinds: Vec<String> = seen
        .iter()
        .map(|c| match c {
            Change::Added(i) => format!("added {}", i.name),
            Change::Removed { why, .. } => format!("removed ({why})"),
            Change::Updated {
                update: Update::Paused(p),
                ..
            } => format!("paused {p}"),
            Change::Updated {
                update: Update::Name(n),
                ..
            } => format!("renamed {n}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "added pm-ev",
            "paused true",
            "paused false",
            "renamed pm-ev-renamed",
            "removed (died)",
            "added pm-ev",
            "removed (died)",
        ]
    );
}
