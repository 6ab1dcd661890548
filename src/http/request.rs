//! HTTP/1.1 request encoding for the Docker client (and any other client
//! the agent drives by hand).

use std::io::Write as _;

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("outlyer-agent/", env!("CARGO_PKG_VERSION"));

/// Appends one HTTP/1.1 request to `out`.
///
/// Always sends `Host` (Docker ≥ 1.12 rejects HTTP/1.1 without it; docs/compat.md
/// §1.1) and `User-Agent`, then `headers`, then `Content-Length` and the
/// body when `body` is given. Caller headers named `Host`, `User-Agent` or
/// `Content-Length` are ignored (those are ours), as are headers containing
/// CR, LF or NUL. Control bytes and spaces in `path` are percent-encoded so
/// a path can never break the request line.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    for &b in path.as_bytes() {
        if b <= b' ' || b == 0x7f {
            push_pct(out, b);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend(host.bytes().filter(|&b| b > b' ' && b != 0x7f));
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let ours = ["host", "user-agent", "content-length"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
        let unsafe_text = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
        if ours || name.is_empty() || name.contains(':') || unsafe_text(name) || unsafe_text(value)
        {
            continue;
        }
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

fn push_pct(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0F)]]);
}

/// Percent-encodes a query value: RFC 3986 unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) pass, every other byte becomes `%XX`.
pub fn percent_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_without_body() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "GET",
            "/v1.41/containers/json",
            "docker",
            &[],
            None,
        );
        let want = format!(
            "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\nUser-Agent: outlyer-agent/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn post_with_body_and_headers() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/agents/x/ping",
            "agent.example",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer k"),
                ("Host", "evil"),
                ("content-length", "999"),
                ("X-Bad", "a\r\nInjected: 1"),
            ],
            Some(b"{}"),
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("POST /agents/x/ping HTTP/1.1\r\nHost: agent.example\r\n"));
        assert!(text.contains("\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
        assert!(!text.contains("evil") && !text.contains("999") && !text.contains("Injected"));
        // The result is a request httparse accepts as complete.
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let len = req.parse(&out).unwrap().unwrap();
        assert_eq!(&out[len..], b"{}");
        assert_eq!(req.method, Some("POST"));
    }

    #[test]
    fn empty_body_still_sends_length() {
        let mut out = Vec::new();
        write_request(&mut out, "POST", "/x", "h", &[], Some(b""));
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn path_and_host_cannot_break_the_request_line() {
        let mut out = Vec::new();
        write_request(&mut out, "GET", "/a b\r\nX: y", "do\r\ncker", &[], None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /a%20b%0D%0AX:%20y HTTP/1.1\r\nHost: docker\r\n"));
    }

    #[test]
    fn percent_encoding() {
        let mut s = String::new();
        percent_encode(&mut s, r#"{"type":["container"]}"#);
        assert_eq!(s, "%7B%22type%22%3A%5B%22container%22%5D%7D");
        s.clear();
        percent_encode(&mut s, "AZaz09-._~ /?&=+é");
        assert_eq!(s, "AZaz09-._~%20%2F%3F%26%3D%2B%C3%A9");
        s.clear();
        percent_encode(&mut s, "");
        assert_eq!(s, "");
    }
}
