//! Whole replies captured from Docker 20.10.24 (wire bytes, headers and
//! framing included) decoded by the response decoder and parsed by the
//! model for their endpoint, as the client does.

use outlyer_agent::docker::api::{error_message, parse_info, parse_inspect};
use outlyer_agent::docker::version::{parse_version_body, ApiVersion};
use outlyer_agent::http::response::{Framing, HttpError, Progress, ResponseDecoder, ResponseHead};

/// Decodes every response in `wire`, fed in `piece`-byte reads, then EOF.
fn decode(wire: &[u8], piece: usize) -> Vec<(ResponseHead, Vec<u8>)> {
    let mut dec = ResponseDecoder::new(Some(1 << 20));
    let mut out = Vec::new();
    let mut head = None;
    let mut body = Vec::new();
    for chunk in wire.chunks(piece) {
        let mut input = chunk;
        loop {
            match dec.feed(input, &mut body).unwrap() {
                Progress::NeedMore => break,
                Progress::Head(h) => head = Some(h),
                Progress::Done => out.push((head.take().unwrap(), std::mem::take(&mut body))),
            }
            input = &[];
        }
    }
    match dec.eof() {
        Ok(Progress::Done) => out.push((head.take().unwrap(), body)),
        Err(HttpError::ClosedBeforeResponse) => assert!(head.is_none()),
        other => panic!("eof: {other:?}"),
    }
    out
}

fn all_read_sizes(wire: &[u8]) -> Vec<(ResponseHead, Vec<u8>)> {
    let whole = decode(wire, wire.len());
    for piece in [1, 2, 3, 7, 64, 512, 4096] {
        assert_eq!(decode(wire, piece), whole, "read size {piece}");
    }
    whole
}

#[test]
fn version_reply() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/version-20.10.http"));
    let (head, body) = &got[0];
    assert_eq!(head.status, 200);
    assert_eq!(head.framing, Framing::Length(body.len() as u64));
    let v = parse_version_body(body).unwrap();
    assert_eq!(v.api_version, ApiVersion::new(1, 41));
    assert_eq!(v.min_api_version, Some(ApiVersion::new(1, 12)));
    assert_eq!(v.negotiated(), ApiVersion::new(1, 41));
}

#[test]
fn info_reply_chunked() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/info-20.10.http"));
    let (head, body) = &got[0];
    assert_eq!(head.framing, Framing::Chunked);
    let info = parse_info(body).unwrap();
    assert_eq!(info.cgroup_driver.as_deref(), Some("cgroupfs"));
    assert_eq!(info.cgroup_version.as_deref(), Some("1"));
}

#[test]
fn inspect_reply_chunked_with_two_networks() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/inspect-20.10-hh-net1.http"));
    let (head, body) = &got[0];
    assert_eq!(head.framing, Framing::Chunked);
    let inspected = parse_inspect(body).unwrap();
    assert_eq!(inspected.info.name, "hh-net1");
    assert_eq!(inspected.info.ips, vec!["10.213.7.2", "10.213.8.2"]);
}

#[test]
fn plain_text_error_for_old_request_version() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/404-plain-v1.23.http"));
    let (head, body) = &got[0];
    assert_eq!(head.status, 404);
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        error_message(head.content_type.as_deref(), body),
        "No such container: nope"
    );
}

#[test]
fn json_error_after_pipelined_ping() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/pipelined-ping-404.http"));
    assert_eq!(got.len(), 2);
    let (head, body) = &got[1];
    assert_eq!(head.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        error_message(head.content_type.as_deref(), body),
        "No such container: nope"
    );
}

#[test]
fn missing_host_header_reply() {
    let got = all_read_sizes(include_bytes!("fixtures/docker/no-host-400.http"));
    let (head, body) = &got[0];
    assert_eq!(head.status, 400);
    assert_eq!(head.framing, Framing::UntilClose);
    assert_eq!(
        error_message(head.content_type.as_deref(), body),
        "400 Bad Request: missing required Host header"
    );
}
