//! The :8000 server's wire format: request-head parsing and response heads.
//!
//! Pure functions over bytes; the connection handling (timeouts, buffers,
//! slots) lives in `crate::server`. The server answers only `GET`/`HEAD`
//! without bodies, so a request body is never interpreted: its
//! `Content-Length` is reported so the caller can skip it, and
//! `Transfer-Encoding` is refused.

use core::fmt;
use std::io::Write as _;

/// Longest request head accepted (431 beyond).
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Most header fields in one request head (431 beyond).
pub const MAX_REQUEST_HEADERS: usize = 32;

/// A parsed request head, borrowing the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Request target as sent (path and query).
    pub path: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// HTTP/1.1: on unless `Connection: close`; HTTP/1.0: off unless
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Length of a request body that follows the head (to be skipped).
    pub content_length: usize,
}

/// Why a request head is refused; [`RequestError::status`] gives the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Head longer than [`MAX_REQUEST_HEAD`] or too many headers (431).
    HeadTooLarge,
    /// Not a well-formed HTTP/1.x request head (400).
    Malformed(&'static str),
    /// A request line with an HTTP version other than 1.0/1.1 (505).
    UnsupportedVersion,
    /// `Transfer-Encoding` on a request (501): bodies are never expected.
    TransferEncoding,
}

impl RequestError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::HeadTooLarge => 431,
            RequestError::Malformed(_) => 400,
            RequestError::UnsupportedVersion => 505,
            RequestError::TransferEncoding => 501,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::HeadTooLarge => write!(f, "request head too large"),
            RequestError::Malformed(why) => write!(f, "malformed request head: {why}"),
            RequestError::UnsupportedVersion => write!(f, "unsupported HTTP version"),
            RequestError::TransferEncoding => write!(f, "Transfer-Encoding on a request"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Parses a request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more (the caller should still enforce
/// [`MAX_REQUEST_HEAD`] on its buffer; this function also reports
/// [`RequestError::HeadTooLarge`] once `buf` passes it without a blank line).
/// `Ok(Some((head, len)))`: `len` bytes form the head.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, RequestError> {
    let window = buf.get(..MAX_REQUEST_HEAD).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_REQUEST_HEAD {
                Err(RequestError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(httparse::Error::Version) if has_http_version_token(window) => {
            return Err(RequestError::UnsupportedVersion)
        }
        Err(e) => {
            return Err(RequestError::Malformed(super::httparse_reason(
                e,
                "invalid method or target",
                "invalid version",
            )))
        }
    };
    let (Some(method), Some(path), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(RequestError::Malformed("incomplete request line"));
    };
    let mut content_length: Option<usize> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::TransferEncoding);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = super::parse_content_length(h.value)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(RequestError::Malformed("bad Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(RequestError::Malformed("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                conn_close |= token.eq_ignore_ascii_case(b"close");
                conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    // A `close` anywhere wins over a `keep-alive` elsewhere.
    let keep_alive = !conn_close && (minor_version == 1 || conn_keep_alive);
    Ok(Some((
        RequestHead {
            method,
            path,
            minor_version,
            keep_alive,
            content_length: content_length.unwrap_or(0),
        },
        len,
    )))
}

/// True when the request line's third word starts with `HTTP/`, i.e. the
/// request is well-formed apart from the version number (505, not 400).
fn has_http_version_token(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf.get(..line_end).unwrap_or_default().trim_ascii();
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(_method), Some(_target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    version.len() > 5 && version.get(..5).is_some_and(|p| p == b"HTTP/")
}

/// The reason phrase for the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a response head for a body of `body_len` bytes (`None`: a
/// chunked body of unknown length); the caller appends the body unless the
/// request was HEAD. A 405 always carries
/// `Allow: GET, HEAD`. Extra headers with CR, LF or NUL are dropped, never
/// sent half-written.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&str>,
    body_len: Option<usize>,
    keep_alive: bool,
    extra_headers: &[(&str, &str)],
) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, reason(status));
    if let Some(ct) = content_type.filter(|v| is_safe_header_text(v)) {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    match body_len {
        Some(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n"
    } else {
        b"Connection: close\r\n"
    });
    let mut has_allow = false;
    for (name, value) in extra_headers {
        if name.is_empty()
            || !is_safe_header_text(name)
            || name.contains(':')
            || !is_safe_header_text(value)
        {
            continue;
        }
        has_allow |= name.eq_ignore_ascii_case("allow");
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if status == 405 && !has_allow {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn is_safe_header_text(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, RequestError> {
        parse_request_head(buf)
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nNEXT";
        let (head, len) = parse(buf).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/metrics");
        assert_eq!(head.minor_version, 1);
        assert!(head.keep_alive);
        assert_eq!(head.content_length, 0);
        assert_eq!(&buf[len..], b"NEXT");
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nconnection: Keep-Alive, close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
                false,
            ),
        ];
        for (buf, want) in cases {
            let (head, _) = parse(buf).unwrap().unwrap();
            assert_eq!(head.keep_alive, want, "{}", buf.escape_ascii());
        }
    }

    #[test]
    fn content_length_reported_for_skipping() {
        let buf = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let (head, len) = parse(buf).unwrap().unwrap();
        assert_eq!(head.content_length, 5);
        assert_eq!(&buf[len..], b"hello");
        let err = parse(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
        let err = parse(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .unwrap_err();
        assert_eq!(err.status(), 400);
        let err =
            parse(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn transfer_encoding_refused() {
        let err = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err();
        assert_eq!(err, RequestError::TransferEncoding);
        assert_eq!(err.status(), 501);
    }

    #[test]
    fn head_split_across_reads() {
        let buf = b"GET /healthz HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: probe\r\n\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        let (head, len) = parse(buf).unwrap().unwrap();
        assert_eq!(head.path, "/healthz");
        assert_eq!(len, buf.len());
    }

    #[test]
    fn oversize_head_is_431() {
        let mut buf = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        buf.resize(MAX_REQUEST_HEAD, b'a');
        assert_eq!(parse(&buf), Err(RequestError::HeadTooLarge));
        assert_eq!(RequestError::HeadTooLarge.status(), 431);
        // Terminated, but only beyond the cap.
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&buf), Err(RequestError::HeadTooLarge));
        // Just within the cap is fine.
        let mut ok = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        ok.resize(MAX_REQUEST_HEAD - 4, b'a');
        ok.extend_from_slice(b"\r\n\r\n");
        assert!(parse(&ok).unwrap().is_some());
        // Too many headers.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_REQUEST_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many).unwrap_err().status(), 431);
    }

    #[test]
    fn malformed_is_400() {
        for buf in [
            &b"GET\r\n\r\n"[..],
            b"GET / FOO\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
        ] {
            let err = parse(buf).unwrap_err();
            assert_eq!(err.status(), 400, "{}: {err}", buf.escape_ascii());
        }
    }

    #[test]
    fn other_versions_are_505() {
        for buf in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/0.9\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(
                parse(buf),
                Err(RequestError::UnsupportedVersion),
                "{}",
                buf.escape_ascii()
            );
        }
    }

    #[test]
    fn response_heads() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            Some("text/plain; version=0.0.4"),
            Some(12),
            true,
            &[],
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        write_response(&mut out, 405, None, Some(0), false, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"
        );
        out.clear();
        write_response(&mut out, 405, None, Some(0), false, &[("Allow", "GET")]);
        assert_eq!(out.windows(6).filter(|w| w == b"Allow:").count(), 1);
        out.clear();
        write_response(&mut out, 200, None, None, true, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        write_response(
            &mut out,
            503,
            None,
            Some(3),
            false,
            &[
                ("Retry-After", "5"),
                ("X-Bad", "a\r\nInjected: 1"),
                ("Bad:Name", "v"),
            ],
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Retry-After: 5\r\n"));
        assert!(!text.contains("Injected") && !text.contains("Bad:Name"));
    }

    #[test]
    fn reasons() {
        for (status, text) in [
            (200, "OK"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
        ] {
            assert_eq!(reason(status), text);
            let mut out = Vec::new();
            write_response(&mut out, status, None, Some(0), true, &[]);
            let (head, _) = {
                let mut headers = [httparse::EMPTY_HEADER; 8];
                let mut resp = httparse::Response::new(&mut headers);
                let n = resp.parse(&out).unwrap().unwrap();
                ((resp.code, resp.reason.map(str::to_string)), n)
            };
            assert_eq!(head, (Some(status), Some(text.to_string())));
        }
    }

    #[test]
    fn errors_format_on_one_line() {
        for e in [
            RequestError::HeadTooLarge,
            RequestError::Malformed("x"),
            RequestError::UnsupportedVersion,
            RequestError::TransferEncoding,
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
