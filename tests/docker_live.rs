//! End to end against the local Docker daemon (`/var/run/docker.sock`):
//! the request encoder, response decoder, version negotiation, models and
//! the events stream, over real sockets. Blocking std sockets are fine here;
//! the agent drives the same sans-IO code from its event loop.
//!
//! Skipped (with a message) when the socket or the `docker` CLI is missing.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outlyer_agent::docker::api::{error_message, parse_container_list, parse_info, parse_inspect};
use outlyer_agent::docker::events::{events_path, parse_event_line, EventAction, LineSplitter};
use outlyer_agent::docker::version::{parse_version_body, ApiVersion};
use outlyer_agent::http::request::write_request;
use outlyer_agent::http::response::{Framing, Progress, ResponseDecoder, ResponseHead};

const SOCKET: &str = "/var/run/docker.sock";
const IMAGE: &str = "localbusy:latest";

fn daemon_available() -> bool {
    let ok = Path::new(SOCKET).exists()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: no Docker daemon at {SOCKET} or no {IMAGE} image");
    }
    ok
}

struct Conn {
    stream: UnixStream,
    decoder: ResponseDecoder,
}

impl Conn {
    fn open() -> Conn {
        let stream = UnixStream::connect(SOCKET).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn {
            stream,
            decoder: ResponseDecoder::new(Some(4 << 20)),
        }
    }

    /// One request/response on this (keep-alive) connection.
    fn get(&mut self, path: &str) -> (ResponseHead, Vec<u8>) {
        let mut req = Vec::new();
        write_request(&mut req, "GET", path, "docker", &[], None);
        self.stream.write_all(&req).unwrap();
        let mut head = None;
        let mut body = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut buf).expect("read");
            let mut input = &buf[..n];
            if n == 0 {
                assert_eq!(self.decoder.eof(), Ok(Progress::Done), "{path}");
                return (head.expect("head"), body);
            }
            loop {
                match self.decoder.feed(input, &mut body).expect("decode") {
                    Progress::NeedMore => break,
                    Progress::Head(h) => head = Some(h),
                    Progress::Done => return (head.expect("head"), body),
                }
                input = &[];
            }
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn negotiate_list_inspect_info_over_one_keep_alive_connection() {
    if !daemon_available() {
        return;
    }
    let name = format!("hh-live-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--label",
        "team=live",
        "-e",
        "ENV=itest",
        "-e",
        "APP_NAME=live",
        "-e",
        "SECRET=never-copy-me",
        IMAGE,
        "sleep",
        "300",
    ]);

    let mut conn = Conn::open();
    let (head, body) = conn.get("/version");
    assert_eq!(head.status, 200);
    let version = parse_version_body(&body).unwrap();
    let v = version.negotiated();
    assert!(v >= ApiVersion::new(1, 12));

    let (head, body) = conn.get(&format!("/v{v}/info"));
    assert_eq!(head.status, 200);
    assert!(!head.close_after, "keep-alive connection reused");
    let info = parse_info(&body).unwrap();
    assert!(info.ncpu.is_some_and(|n| n > 0));

    let (head, body) = conn.get(&format!("/v{v}/containers/json"));
    assert_eq!(head.status, 200);
    let list = parse_container_list(&body).unwrap();
    let listed = list
        .iter()
        .find(|c| c.id == id)
        .expect("our container is listed");
    assert_eq!(listed.name(), Some(name.as_str()));
    assert_eq!(
        listed.labels,
        vec![("team".to_string(), "live".to_string())]
    );

    let (head, body) = conn.get(&format!("/v{v}/containers/{id}/json"));
    assert_eq!(head.status, 200);
    // Inspect bodies exceed Go's 2 KiB buffer, so they come chunked.
    assert_eq!(head.framing, Framing::Chunked);
    let inspected = parse_inspect(&body).unwrap();
    assert_eq!(inspected.info.id, id);
    assert_eq!(inspected.info.name, name);
    assert_eq!(
        inspected.info.env_tags,
        vec!["itest".to_string(), "live".to_string()]
    );
    assert_eq!(inspected.info.network_mode, "none");
    assert!(inspected.running && inspected.info.pid > 0);
    assert!(inspected.info.started_at > 1.5e9);
    assert!(!format!("{inspected:?}").contains("never-copy-me"));

    let (head, body) = conn.get(&format!("/v{v}/containers/{}/json", "0".repeat(64)));
    assert_eq!(head.status, 404);
    let msg = error_message(head.content_type.as_deref(), &body);
    assert!(msg.starts_with("No such container"), "{msg}");
}

#[test]
fn events_stream_follows_a_container_lifecycle() {
    if !daemon_available() {
        return;
    }
    let mut conn = Conn::open();
    let (_, body) = conn.get("/version");
    let v = parse_version_body(&body).unwrap().negotiated();

    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut events = UnixStream::connect(SOCKET).unwrap();
    events
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut req = Vec::new();
    write_request(
        &mut req,
        "GET",
        &events_path(v, Some(since)),
        "docker",
        &[],
        None,
    );
    events.write_all(&req).unwrap();

    let name = format!("hh-live-ev-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    docker(&["pause", &name]);
    docker(&["unpause", &name]);
    docker(&["rm", "-f", &name]);

    let mut decoder = ResponseDecoder::new(None);
    let mut lines = LineSplitter::new();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(&EventAction::Destroy) {
        assert!(Instant::now() < deadline, "timed out; saw {seen:?}");
        let n = match events.read(&mut buf) {
            Ok(0) => panic!("daemon closed the events stream"),
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(e) => panic!("{e}"),
        };
        let mut input = &buf[..n];
        loop {
            let progress = decoder.feed(input, lines.buffer_mut()).unwrap();
            input = &[];
            while let Some(line) = lines.next_line() {
                // The filter asks for containers only; anything else parses to None.
                if let Some(ev) = parse_event_line(line.unwrap()).unwrap() {
                    if ev.id == id {
                        assert_eq!(ev.name.as_deref(), Some(name.as_str()));
                        assert!(ev.time_nano >= since * 1_000_000_000);
                        seen.push(ev.action);
                    }
                }
            }
            match progress {
                Progress::NeedMore => break,
                Progress::Head(h) => assert_eq!(h.status, 200),
                Progress::Done => panic!("stream ended"),
            }
        }
    }
    for want in [
        EventAction::Create,
        EventAction::Start,
        EventAction::Pause,
        EventAction::Unpause,
        EventAction::Die,
        EventAction::Destroy,
    ] {
        assert!(seen.contains(&want), "{want:?} missing from {seen:?}");
    }
    let pos = |a: &EventAction| seen.iter().position(|s| s == a).unwrap();
    assert!(pos(&EventAction::Create) < pos(&EventAction::Start));
    assert!(pos(&EventAction::Start) < pos(&EventAction::Pause));
    assert!(pos(&EventAction::Die) < pos(&EventAction::Destroy));
}
