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
