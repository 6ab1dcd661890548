//! The `GET /events` stream: NDJSON line splitting and container events in
//! both the legacy (`status/id/from`) and current (`Type/Action/Actor`)
//! shapes (docs/compat.md §1.5).
//!
//! Feeding: pass [`LineSplitter::buffer_mut`] as the `body` argument of
//! [`crate::http::response::ResponseDecoder::feed`], then drain
//! [`LineSplitter::next_line`] until `None` and hand each line to
//! [`parse_event_line`]. Lines are slices of the splitter's buffer: the body
//! bytes are copied once, from the socket buffer into the splitter.

use crate::docker::api::{is_valid_id, parse_json, ApiError};
use crate::docker::version::ApiVersion;
use crate::http::request::percent_encode;

/// Longest event line kept; longer ones are reported once and skipped.
pub const MAX_EVENT_LINE: usize = 1 << 20;

/// What happened to a container. `Other` carries the action word without
/// any `: detail` suffix (`exec_start`, `health_status`, `attach`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventAction {
    Create,
    Start,
    Restart,
    Die,
    Stop,
    Kill,
    Oom,
    Pause,
    Unpause,
    Rename,
    Destroy,
    Other(String),
}

impl EventAction {
    /// Maps an action word; a `: detail` suffix is cut off first.
    pub fn parse(action: &str) -> EventAction {
        let word = action.split_once(": ").map_or(action, |(w, _)| w).trim();
        match word {
            "create" => EventAction::Create,
            "start" => EventAction::Start,
            "restart" => EventAction::Restart,
            "die" => EventAction::Die,
            "stop" => EventAction::Stop,
            "kill" => EventAction::Kill,
            "oom" => EventAction::Oom,
            "pause" => EventAction::Pause,
            "unpause" => EventAction::Unpause,
            "rename" => EventAction::Rename,
            "destroy" => EventAction::Destroy,
            other => EventAction::Other(other.to_string()),
        }
    }
}

/// One container event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEvent {
    pub action: EventAction,
    /// Container id (hex).
    pub id: String,
    /// `Actor.Attributes.name`: the container's name, the new one on
    /// `rename`. Absent in the legacy-only shape (Docker ≤ 1.9).
    pub name: Option<String>,
    /// `timeNano`, else `time` × 10⁹, else 0.
    pub time_nano: i64,
}

#[derive(miniserde::Deserialize)]
struct RawEvent {
    status: Option<String>,
    id: Option<String>,
    from: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "Actor")]
    actor: Option<RawActor>,
    time: Option<i64>,
    #[serde(rename = "timeNano")]
    time_nano: Option<i64>,
}

#[derive(miniserde::Deserialize)]
struct RawActor {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: Option<RawAttributes>,
}

/// Only the name; labels and extras are skipped by miniserde.
#[derive(miniserde::Deserialize)]
struct RawAttributes {
    name: Option<String>,
}

/// Parses one NDJSON line of the events stream.
///
/// `Ok(None)`: an empty line, or an event about something other than a
/// container (images, networks, volumes, …). A leading `0x1E` record
/// separator (`application/json-seq`) and surrounding whitespace are
/// ignored. `Err`: not JSON, or a container event without a usable id or
/// action.
pub fn parse_event_line(line: &[u8]) -> Result<Option<ContainerEvent>, ApiError> {
    let mut line = line.trim_ascii();
    while let Some(rest) = line.strip_prefix(b"\x1e") {
        line = rest.trim_ascii();
    }
    if line.is_empty() {
        return Ok(None);
    }
    let raw: RawEvent = parse_json("/events", line)?;
    let is_container = match raw.kind.as_deref() {
        Some(kind) => kind == "container",
        // Legacy shape: image events (pull, tag, untag, delete) have no `from`.
        None => raw.from.is_some(),
    };
    if !is_container {
        return Ok(None);
    }
    let (actor_id, name) = match raw.actor {
        Some(actor) => (actor.id, actor.attributes.and_then(|a| a.name)),
        None => (None, None),
    };
    let id = actor_id
        .filter(|id| !id.is_empty())
        .or(raw.id)
        .ok_or_else(|| ApiError::field("/events", "id", line))?;
    if !is_valid_id(&id) {
        return Err(ApiError::field("/events", "id", id.as_bytes()));
    }
    let action = raw
        .action
        .filter(|a| !a.is_empty())
        .or(raw.status)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::field("/events", "Action", line))?;
    let time_nano = match (raw.time_nano, raw.time) {
        (Some(ns), _) => ns,
        (None, Some(s)) => s.saturating_mul(1_000_000_000),
        (None, None) => 0,
    };
    Ok(Some(ContainerEvent {
        action: EventAction::parse(&action),
        id,
        name,
        time_nano,
    }))
}

/// The events request path: container events only (list-form filter, the
/// only form Docker 1.7 understands), optionally replaying from `since`
/// (Unix seconds).
pub fn events_path(version: ApiVersion, since: Option<i64>) -> String {
    let mut path = format!("/v{version}/events?filters=");
    percent_encode(&mut path, r#"{"type":["container"]}"#);
    if let Some(since) = since {
        path.push_str(&format!("&since={since}"));
    }
    path
}

/// Splits a streamed body into `\n`-terminated lines without copying them
/// out. A line longer than [`MAX_EVENT_LINE`] is reported once as
/// [`ApiError::LineTooLong`] and its bytes are dropped up to the next `\n`,
/// so memory stays bounded whatever the peer sends.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Start of the first line not yet returned.
    start: usize,
    /// Bytes from `start` already searched for `\n`.
    scanned: usize,
    /// Inside an overlong line: drop bytes until the next `\n`.
    skipping: bool,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// The buffer to append body bytes to (e.g. the decoder's `body`).
    /// Consumed lines are discarded first.
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        self.compact();
        &mut self.buf
    }

    /// Appends body bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer_mut().extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as lines.
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets everything (new connection).
    pub fn reset(&mut self) {
        *self = LineSplitter::default();
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete line (without its `\n`), an overlong-line error,
    /// or `None` when no complete line is buffered.
    pub fn next_line(&mut self) -> Option<Result<&[u8], ApiError>> {
        loop {
            let rest = self.buf.get(self.start..).unwrap_or_default();
            let from = self.scanned.min(rest.len());
            let newline = rest
                .get(from..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| from + i);
            match newline {
                Some(nl) => {
                    let line_start = self.start;
                    self.start += nl + 1;
                    self.scanned = 0;
                    if self.skipping {
                        // The tail of a line already reported.
                        self.skipping = false;
                        continue;
                    }
                    if nl > MAX_EVENT_LINE {
                        return Some(Err(ApiError::LineTooLong { len: nl }));
                    }
                    return self.buf.get(line_start..line_start + nl).map(Ok);
                }
                None => {
                    let len = rest.len();
                    if self.skipping {
                        self.buf.clear();
                        self.start = 0;
                        self.scanned = 0;
                        return None;
                    }
                    if len > MAX_EVENT_LINE {
                        self.buf.clear();
                        self.start = 0;
                        self.scanned = 0;
                        self.skipping = true;
                        return Some(Err(ApiError::LineTooLong { len }));
                    }
                    self.scanned = len;
                    return None;
                }
            }
        }
    }

    /// At the end of the stream: the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let skipping = core::mem::take(&mut self.skipping);
        let start = core::mem::replace(&mut self.start, self.buf.len());
        self.scanned = 0;
        let rest = self.buf.get(start..).unwrap_or_default();
        if skipping || rest.is_empty() || rest.len() > MAX_EVENT_LINE {
            None
        } else {
            Some(rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4d4a1e7f3c2b5a6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b5f40";

    fn ev(action: EventAction, name: Option<&str>, time_nano: i64) -> ContainerEvent {
        ContainerEvent {
            action,
            id: ID.to_string(),
            name: name.map(str::to_string),
            time_nano,
        }
    }

    #[test]
    fn docker_27_both_shapes_line() {
        let line = format!(
            r#"{{"status":"die","id":"{ID}","from":"nginx:1.25","Type":"container","Action":"die","Actor":{{"ID":"{ID}","Attributes":{{"exitCode":"137","image":"nginx:1.25","name":"web"}}}},"scope":"local","time":1730800800,"timeNano":1730800800123456789}}"#
        );
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(EventAction::Die, Some("web"), 1_730_800_800_123_456_789))
        );
    }

    #[test]
    fn docker_29_new_only_shape() {
        let line = format!(
            r#"{{"Type":"container","Action":"start","Actor":{{"ID":"{ID}","Attributes":{{"com.example.team":"a","image":"nginx","name":"web"}}}},"scope":"local","time":1760000000,"timeNano":1760000000000000001}}"#
        );
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(
                EventAction::Start,
                Some("web"),
                1_760_000_000_000_000_001
            ))
        );
        // Same with a json-seq record separator and CRLF.
        let framed = format!("\x1e{line}\r\n");
        assert!(parse_event_line(framed.as_bytes()).unwrap().is_some());
        // A network event is not a container event.
        let net = format!(
            r#"{{"Type":"network","Action":"connect","Actor":{{"ID":"7ed4b967173c","Attributes":{{"container":"{ID}","name":"bridge","type":"bridge"}}}},"scope":"local","time":1760000000,"timeNano":1760000000000000002}}"#
        );
        assert_eq!(parse_event_line(net.as_bytes()).unwrap(), None);
    }

    #[test]
    fn docker_1_7_old_shape() {
        let line =
            format!(r#"{{"status":"start","id":"{ID}","from":"nginx:1.9","time":1446543200}}"#);
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(EventAction::Start, None, 1_446_543_200_000_000_000))
        );
        // 1.9 adds timeNano.
        let line = format!(
            r#"{{"status":"destroy","id":"{ID}","from":"nginx:1.9","time":1446543200,"timeNano":1446543200987654321}}"#
        );
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(EventAction::Destroy, None, 1_446_543_200_987_654_321))
        );
        // Image events carry no `from`.
        for status in ["pull", "untag", "delete", "tag"] {
            let line = format!(
                r#"{{"status":"{status}","id":"sha256:a1a65066a1e73f87c7a0197b148392b4ce7ae5365b6f92389c6778ce655b4fdc","time":1446543200}}"#
            );
            assert_eq!(parse_event_line(line.as_bytes()).unwrap(), None, "{status}");
        }
    }

    #[test]
    fn action_suffixes_are_split() {
        for (action, want) in [
            (
                "exec_start: /bin/sh -c echo 'a: b'",
                EventAction::Other("exec_start".into()),
            ),
            (
                "health_status: healthy",
                EventAction::Other("health_status".into()),
            ),
            (
                "exec_create: sh -c true",
                EventAction::Other("exec_create".into()),
            ),
            ("kill", EventAction::Kill),
            ("oom", EventAction::Oom),
            ("rename", EventAction::Rename),
            ("pause", EventAction::Pause),
            ("unpause", EventAction::Unpause),
            ("stop", EventAction::Stop),
            ("restart", EventAction::Restart),
            ("create", EventAction::Create),
        ] {
            let line = format!(
                r#"{{"Type":"container","Action":"{}","Actor":{{"ID":"{ID}","Attributes":{{"name":"w"}}}},"time":1}}"#,
                action.replace('\'', "\\u0027")
            );
            let got = parse_event_line(line.as_bytes()).unwrap().unwrap();
            assert_eq!(got.action, want, "{action}");
            assert_eq!(got.time_nano, 1_000_000_000);
        }
    }

    #[test]
    fn rename_carries_new_name() {
        let line = format!(
            r#"{{"status":"rename","id":"{ID}","from":"x","Type":"container","Action":"rename","Actor":{{"ID":"{ID}","Attributes":{{"name":"new","oldName":"/old"}}}},"time":5,"timeNano":5000000001}}"#
        );
        let got = parse_event_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(got.action, EventAction::Rename);
        assert_eq!(got.name.as_deref(), Some("new"));
    }

    #[test]
    fn empty_and_whitespace_lines() {
        for line in [&b""[..], b"\n", b"\r\n", b"  \t ", b"\x1e", b"\x1e\n"] {
            assert_eq!(parse_event_line(line), Ok(None));
        }
    }

    #[test]
    fn garbage_lines_are_errors() {
        for line in [
            &b"garbage"[..],
            b"{",
            b"[]",
            b"null",
            b"42",
            b"\"start\"",
            b"{\"status\":\"start\",\"id\":\"ab\",\"from\":\"x\"}{",
            b"\xff\xfe",
            b"{\"Type\":\"container\",\"Action\":\"start\"}",
            b"{\"Type\":\"container\",\"Actor\":{\"ID\":\"abcd\"}}",
            b"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"../../etc\"}}",
            b"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\"}}",
            b"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"ab\"},\"timeNano\":\"x\"}",
            b"{\"status\":\"start\",\"from\":\"x\"}",
        ] {
            let err = parse_event_line(line).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn null_attributes_and_actor_tolerated() {
        let line = format!(
            r#"{{"status":"start","id":"{ID}","from":"x","Type":"container","Action":"start","Actor":{{"ID":"{ID}","Attributes":null}},"time":2}}"#
        );
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(EventAction::Start, None, 2_000_000_000))
        );
        let line = format!(r#"{{"status":"die","id":"{ID}","from":"x","Actor":null,"time":3}}"#);
        assert_eq!(
            parse_event_line(line.as_bytes()).unwrap(),
            Some(ev(EventAction::Die, None, 3_000_000_000))
        );
    }

    #[test]
    fn time_overflow_saturates() {
        let line =
            format!(r#"{{"status":"start","id":"{ID}","from":"x","time":9223372036854775807}}"#);
        let got = parse_event_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(got.time_nano, i64::MAX);
    }

    #[test]
    fn events_path_shapes() {
        let v = ApiVersion::new(1, 41);
        assert_eq!(
            events_path(v, None),
            "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
        );
        assert_eq!(
            events_path(ApiVersion::new(1, 19), Some(1_446_543_200)),
            "/v1.19/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D&since=1446543200"
        );
    }

    fn collect(s: &mut LineSplitter) -> Vec<Result<Vec<u8>, ApiError>> {
        let mut out = Vec::new();
        while let Some(r) = s.next_line() {
            out.push(r.map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn splitter_yields_lines_at_any_split() {
        let data = b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\npartial";
        let want: Vec<Result<Vec<u8>, ApiError>> = vec![
            Ok(b"{\"a\":1}".to_vec()),
            Ok(b"".to_vec()),
            Ok(b"{\"b\":2}\r".to_vec()),
            Ok(b"{\"c\":3}".to_vec()),
        ];
        for split in 0..=data.len() {
            let mut s = LineSplitter::new();
            s.push(&data[..split]);
            let mut got = collect(&mut s);
            s.push(&data[split..]);
            got.extend(collect(&mut s));
            assert_eq!(got, want, "split at {split}");
            assert_eq!(s.pending_len(), b"partial".len());
            assert_eq!(s.finish(), Some(&b"partial"[..]));
            assert_eq!(s.finish(), None);
        }
        let mut s = LineSplitter::new();
        let mut got = Vec::new();
        for b in data {
            s.push(std::slice::from_ref(b));
            got.extend(collect(&mut s));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn splitter_skips_overlong_line_once_and_recovers() {
        let mut s = LineSplitter::new();
        let block = vec![b'x'; 64 * 1024];
        let mut errors = 0;
        // 3 MiB without a newline, fed in 64 KiB pieces.
        for _ in 0..48 {
            s.push(&block);
            for r in collect(&mut s) {
                assert!(matches!(r, Err(ApiError::LineTooLong { .. })));
                errors += 1;
            }
            assert!(s.pending_len() <= MAX_EVENT_LINE + block.len());
        }
        assert_eq!(errors, 1);
        s.push(b"tail of the long line\n{\"ok\":1}\n");
        assert_eq!(collect(&mut s), vec![Ok(b"{\"ok\":1}".to_vec())]);
        assert_eq!(s.pending_len(), 0);
    }

    #[test]
    fn splitter_reports_overlong_complete_line() {
        let mut s = LineSplitter::new();
        let mut data = vec![b'y'; MAX_EVENT_LINE + 1];
        data.extend_from_slice(b"\nnext\n");
        s.push(&data);
        let got = collect(&mut s);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Err(ApiError::LineTooLong {
                len: MAX_EVENT_LINE + 1
            })
        );
        assert_eq!(got[1], Ok(b"next".to_vec()));
        // Exactly at the cap is fine.
        let mut s = LineSplitter::new();
        let mut data = vec![b'z'; MAX_EVENT_LINE];
        data.push(b'\n');
        s.push(&data);
        assert_eq!(collect(&mut s), vec![Ok(vec![b'z'; MAX_EVENT_LINE])]);
    }

    #[test]
    fn splitter_as_decoder_body() {
        use crate::http::response::{Progress, ResponseDecoder};
        let mut dec = ResponseDecoder::new(None);
        let mut s = LineSplitter::new();
        let wire =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}\n{\r\n3\r\n}\n\n\r\n";
        let mut lines = Vec::new();
        let mut input = &wire[..];
        loop {
            let p = dec.feed(input, s.buffer_mut()).unwrap();
            input = &[];
            lines.extend(collect(&mut s));
            if p == Progress::NeedMore {
                break;
            }
        }
        assert_eq!(
            lines,
            vec![Ok(b"{}".to_vec()), Ok(b"{}".to_vec()), Ok(b"".to_vec())]
        );
    }
}
