//! Sans-IO HTTP/1.1: request encoding, response framing (Content-Length,
//! chunked, to-EOF), and the tiny server-side request-head parser.

pub mod request;
pub mod response;
pub mod server;

/// A `Content-Length` value: 1–19 ASCII digits, surrounding whitespace
/// allowed (requests and responses alike).
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.len() > 19 {
        return None;
    }
    crate::parse::parse_u64(digits).ok()
}

/// One line on why httparse refused a head. `token` and `version` say what
/// a bad token and a bad version mean in this direction (a request's method
/// or target; a response's status line).
pub(crate) fn httparse_reason(
    e: httparse::Error,
    token: &'static str,
    version: &'static str,
) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => token,
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => version,
    }
}
