//! Incremental HTTP/1.1 response decoder for the Docker client (sans-IO).
//!
//! Bytes go in as they arrive from the socket, split anywhere; decoded body
//! bytes are appended to a caller-owned `Vec<u8>` so a streaming consumer
//! (the `/events` line splitter) can drain them as they come. Docker uses all
//! three framings (docs/compat.md §1.1): `Content-Length` for short replies,
//! `Transfer-Encoding: chunked` once a handler writes more than 2 KiB or
//! flushes, and read-until-close for HTTP/1.0 and some error replies.
//!
//! ```text
//!             ┌──────────── Done (surplus kept, same connection) ◀───────────┐
//!             ▼                                                              │
//!        ExpectHead ──Head──▶ ExpectFixedBody ──────────────────────────────▶┤
//!                        ├──▶ ExpectChunkSize ◀─▶ ExpectChunkData/DataEnd    │
//!                        │         └─(size 0)──▶ ExpectTrailers ────────────▶┤
//!                        ├──▶ ExpectClose ──eof()──────────────────────────▶─┘
//!                        └──▶ MessageEnd (no body) ──────────────────────────┘
//! ```
//!
//! Driving it: after new bytes arrive call [`ResponseDecoder::feed`] once
//! with them, then keep calling `feed(&[], body)` while it returns
//! [`Progress::Head`] or [`Progress::Done`]; stop at [`Progress::NeedMore`].
//! On EOF (after draining) call [`ResponseDecoder::eof`]. After any error
//! drop the connection. An interim 1xx response is reported as its own
//! `Head` + `Done`; the final response follows.

use core::fmt;

/// Longest response head (status line + headers + blank line) accepted.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Most header fields in one response head (Docker sends fewer than 10).
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Longest chunk-size line, extensions included.
pub const MAX_CHUNK_SIZE_LINE: usize = 1024;
/// Most trailer bytes after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;
/// Longest excerpt of peer bytes an error message carries.
pub const EXCERPT_MAX: usize = 48;

/// A short, escaped, one-line excerpt of peer bytes for error messages: at
/// most [`EXCERPT_MAX`] input bytes, non-printable bytes as `\xNN`, `…` when cut.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len() > EXCERPT_MAX;
    let shown = bytes.get(..EXCERPT_MAX).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if cut {
        s.push('…');
    }
    s
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: 1xx, 204, 304, or the reply to a HEAD request.
    NoBody,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing header: the body ends when the server closes.
    UntilClose,
}

/// What the caller needs from a response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    /// Reason phrase as sent (may contain `:`), lossily decoded.
    pub reason: String,
    /// `Content-Type` value, if present.
    pub content_type: Option<String>,
    pub framing: Framing,
    /// The connection cannot carry another request after this response:
    /// `Connection: close`, HTTP/1.0 without `keep-alive`, or a body that
    /// ends at close.
    pub close_after: bool,
}

/// What one [`ResponseDecoder::feed`] call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Everything given was consumed (or buffered); wait for more bytes.
    NeedMore,
    /// A response head was decoded; body bytes follow into `body`.
    Head(ResponseHead),
    /// The current message is complete; the decoder expects the next
    /// response on the same connection and keeps any surplus bytes.
    Done,
}

/// A response the decoder cannot accept. The connection must be dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// No blank line within [`MAX_RESPONSE_HEAD`] bytes.
    HeadTooLarge,
    /// httparse rejected the head.
    BadHead {
        reason: &'static str,
        excerpt: String,
    },
    /// Unusable framing headers (bad or conflicting `Content-Length`, an
    /// unsupported `Transfer-Encoding`).
    BadFraming { reason: &'static str },
    /// A malformed chunk-size line or missing CRLF after chunk data.
    BadChunk { excerpt: String },
    /// A chunk-size line longer than [`MAX_CHUNK_SIZE_LINE`].
    ChunkSizeLineTooLong,
    /// More than [`MAX_TRAILERS`] bytes of trailers.
    TrailersTooLarge,
    /// The body exceeds the configured limit.
    BodyTooLarge { limit: u64 },
    /// The connection closed in the middle of a response.
    Truncated { expecting: &'static str },
    /// The connection closed before any byte of the expected response: on a
    /// reused keep-alive connection, retry once on a fresh one.
    ClosedBeforeResponse,
}

impl HttpError {
    /// True when the request may be retried on a fresh connection.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::ClosedBeforeResponse)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => {
                write!(f, "response head longer than {MAX_RESPONSE_HEAD} bytes")
            }
            HttpError::BadHead { reason, excerpt } => {
                write!(f, "malformed response head ({reason}): \"{excerpt}\"")
            }
            HttpError::BadFraming { reason } => write!(f, "unusable response framing: {reason}"),
            HttpError::BadChunk { excerpt } => write!(f, "malformed chunk framing: \"{excerpt}\""),
            HttpError::ChunkSizeLineTooLong => {
                write!(f, "chunk-size line longer than {MAX_CHUNK_SIZE_LINE} bytes")
            }
            HttpError::TrailersTooLarge => write!(f, "trailers longer than {MAX_TRAILERS} bytes"),
            HttpError::BodyTooLarge { limit } => {
                write!(f, "response body larger than the {limit}-byte limit")
            }
            HttpError::Truncated { expecting } => {
                write!(f, "connection closed while expecting {expecting}")
            }
            HttpError::ClosedBeforeResponse => write!(f, "connection closed before a response"),
        }
    }
}

impl std::error::Error for HttpError {}

/// What the decoder waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A status line and headers up to the blank line.
    ExpectHead { scanned: usize },
    /// `remaining` more body bytes (Content-Length).
    ExpectFixedBody { remaining: u64 },
    /// A chunk-size line.
    ExpectChunkSize,
    /// `remaining` more bytes of the current chunk.
    ExpectChunkData { remaining: u64 },
    /// The CRLF that ends chunk data.
    ExpectChunkDataEnd,
    /// Trailer lines up to the blank line; `seen` bytes so far.
    ExpectTrailers { seen: usize },
    /// Body bytes until the peer closes.
    ExpectClose,
    /// Nothing: the message is complete and `Done` is still to be reported.
    MessageEnd,
}

impl State {
    fn expecting(self) -> &'static str {
        match self {
            State::ExpectHead { .. } => "the response head",
            State::ExpectFixedBody { .. } => "the rest of a Content-Length body",
            State::ExpectChunkSize => "a chunk-size line",
            State::ExpectChunkData { .. } => "the rest of a chunk",
            State::ExpectChunkDataEnd => "the CRLF after a chunk",
            State::ExpectTrailers { .. } => "the end of the trailers",
            State::ExpectClose => "the end of the body",
            State::MessageEnd => "nothing",
        }
    }
}

/// Incremental decoder for the responses on one connection.
#[derive(Debug)]
pub struct ResponseDecoder {
    state: State,
    /// Bytes received but not consumed: a partial head, chunk-size line or
    /// trailer, or the start of the next pipelined response.
    pending: Vec<u8>,
    body_limit: Option<u64>,
    /// Body bytes of the current message so far (for the limit).
    body_seen: u64,
    /// The next response answers a HEAD request.
    head_request: bool,
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        ResponseDecoder::new(None)
    }
}

impl ResponseDecoder {
    /// A decoder for a fresh connection. `body_limit` caps the decoded body
    /// of each message (`None` for streams such as `/events`).
    pub fn new(body_limit: Option<u64>) -> ResponseDecoder {
        ResponseDecoder {
            state: State::ExpectHead { scanned: 0 },
            pending: Vec::new(),
            body_limit,
            body_seen: 0,
            head_request: false,
        }
    }

    /// Changes the body cap; applies to the message in progress too.
    pub fn set_body_limit(&mut self, limit: Option<u64>) {
        self.body_limit = limit;
    }

    /// The next response answers a HEAD request, so it has no body even if
    /// it carries `Content-Length`. Applies to one response only.
    pub fn expect_head_response(&mut self) {
        self.head_request = true;
    }

    /// Bytes held back (partial framing or surplus after a message).
    pub fn buffered_len(&self) -> usize {
        self.pending.len()
    }

    /// True between messages with nothing buffered: no response has started.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::ExpectHead { .. }) && self.pending.is_empty()
    }

    /// Consumes `input`, appending decoded body bytes to `body`, and stops
    /// at the first head or message end. Call again with `&[]` after `Head`
    /// or `Done`: more may already be buffered.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Progress, HttpError> {
        let result = if self.pending.is_empty() {
            self.step(input, body).map(|(progress, used)| {
                self.pending
                    .extend_from_slice(input.get(used..).unwrap_or_default());
                progress
            })
        } else {
            self.pending.extend_from_slice(input);
            let mut pending = core::mem::take(&mut self.pending);
            let result = self.step(&pending, body).map(|(progress, used)| {
                pending.drain(..used.min(pending.len()));
                progress
            });
            self.pending = pending;
            result
        };
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// The peer closed the connection. Completes a read-until-close body or
    /// reports what was cut short; afterwards the decoder is fresh again.
    pub fn eof(&mut self) -> Result<Progress, HttpError> {
        let state = self.state;
        let had_bytes = !self.pending.is_empty();
        self.reset();
        match state {
            State::ExpectClose => Ok(Progress::Done),
            State::MessageEnd => Ok(Progress::Done),
            State::ExpectHead { .. } if !had_bytes => Err(HttpError::ClosedBeforeResponse),
            other => Err(HttpError::Truncated {
                expecting: other.expecting(),
            }),
        }
    }

    fn reset(&mut self) {
        self.state = State::ExpectHead { scanned: 0 };
        self.pending = Vec::new();
        self.body_seen = 0;
        self.head_request = false;
    }

    /// Advances over `buf`; returns the progress and how many bytes were used.
    fn step(&mut self, buf: &[u8], body: &mut Vec<u8>) -> Result<(Progress, usize), HttpError> {
        let mut pos = 0;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            match self.state {
                State::ExpectHead { scanned } => {
                    return match self.decode_head(rest, scanned)? {
                        Some((head, len)) => Ok((Progress::Head(head), pos + len)),
                        None => Ok((Progress::NeedMore, pos)),
                    };
                }
                State::ExpectFixedBody { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    self.append_body(rest.get(..take).unwrap_or_default(), body)?;
                    pos += take;
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        return Ok((self.finish_message(), pos));
                    }
                    self.state = State::ExpectFixedBody { remaining };
                    return Ok((Progress::NeedMore, pos));
                }
                State::ExpectChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        // httparse takes a bare CRLF as size 0; require a digit.
                        if !rest.first().is_some_and(u8::is_ascii_hexdigit) {
                            return Err(bad_chunk(rest));
                        }
                        if len > MAX_CHUNK_SIZE_LINE {
                            return Err(HttpError::ChunkSizeLineTooLong);
                        }
                        pos += len;
                        if size == 0 {
                            self.state = State::ExpectTrailers { seen: 0 };
                        } else {
                            self.check_limit(size)?;
                            self.state = State::ExpectChunkData { remaining: size };
                        }
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > MAX_CHUNK_SIZE_LINE {
                            return Err(HttpError::ChunkSizeLineTooLong);
                        }
                        return Ok((Progress::NeedMore, pos));
                    }
                    Err(httparse::InvalidChunkSize) => return Err(bad_chunk(rest)),
                },
                State::ExpectChunkData { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    self.append_body(rest.get(..take).unwrap_or_default(), body)?;
                    pos += take;
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.state = State::ExpectChunkData { remaining };
                        return Ok((Progress::NeedMore, pos));
                    }
                    self.state = State::ExpectChunkDataEnd;
                }
                State::ExpectChunkDataEnd => match rest {
                    [] | [b'\r'] => return Ok((Progress::NeedMore, pos)),
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::ExpectChunkSize;
                    }
                    [b'\n', ..] => {
                        pos += 1;
                        self.state = State::ExpectChunkSize;
                    }
                    _ => return Err(bad_chunk(rest)),
                },
                State::ExpectTrailers { seen } => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if seen.saturating_add(rest.len()) > MAX_TRAILERS {
                            return Err(HttpError::TrailersTooLarge);
                        }
                        return Ok((Progress::NeedMore, pos));
                    };
                    let line_len = nl + 1;
                    let seen = seen.saturating_add(line_len);
                    if seen > MAX_TRAILERS {
                        return Err(HttpError::TrailersTooLarge);
                    }
                    pos += line_len;
                    if matches!(rest.get(..nl), Some(b"") | Some(b"\r")) {
                        return Ok((self.finish_message(), pos));
                    }
                    self.state = State::ExpectTrailers { seen };
                }
                State::ExpectClose => {
                    self.append_body(rest, body)?;
                    return Ok((Progress::NeedMore, buf.len()));
                }
                State::MessageEnd => return Ok((self.finish_message(), pos)),
            }
        }
    }

    fn finish_message(&mut self) -> Progress {
        self.state = State::ExpectHead { scanned: 0 };
        self.body_seen = 0;
        Progress::Done
    }

    fn check_limit(&self, more: u64) -> Result<(), HttpError> {
        match self.body_limit {
            Some(limit) if self.body_seen.saturating_add(more) > limit => {
                Err(HttpError::BodyTooLarge { limit })
            }
            _ => Ok(()),
        }
    }

    fn append_body(&mut self, data: &[u8], body: &mut Vec<u8>) -> Result<(), HttpError> {
        self.check_limit(data.len() as u64)?;
        self.body_seen += data.len() as u64;
        body.extend_from_slice(data);
        Ok(())
    }

    /// Looks for the end of the head from `scanned` on, then parses it.
    fn decode_head(
        &mut self,
        buf: &[u8],
        scanned: usize,
    ) -> Result<Option<(ResponseHead, usize)>, HttpError> {
        let Some(end) = find_head_end(buf, scanned) else {
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            // Rescan the last 3 bytes next time: the terminator may straddle.
            self.state = State::ExpectHead {
                scanned: buf.len().saturating_sub(3),
            };
            return Ok(None);
        };
        if end > MAX_RESPONSE_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        let head_bytes = buf.get(..end).unwrap_or_default();
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = httparse::ParserConfig::default()
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_spaces_after_header_name_in_responses(true)
            .parse_response(&mut response, head_bytes);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            // The terminator we found is not where httparse ends; treat as
            // malformed rather than waiting forever.
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::BadHead {
                    reason: "incomplete head",
                    excerpt: excerpt(head_bytes),
                })
            }
            Err(e) => {
                return Err(HttpError::BadHead {
                    reason: super::httparse_reason(e, "invalid token", "not HTTP/1.x"),
                    excerpt: excerpt(head_bytes),
                })
            }
        };
        let (Some(minor_version), Some(status)) = (response.version, response.code) else {
            return Err(HttpError::BadHead {
                reason: "no version or status",
                excerpt: excerpt(head_bytes),
            });
        };
        let head = self.interpret_head(&response, minor_version, status)?;
        self.head_request = false;
        self.body_seen = 0;
        self.state = match head.framing {
            Framing::NoBody | Framing::Length(0) => State::MessageEnd,
            Framing::Length(n) => {
                self.check_limit(n)?;
                State::ExpectFixedBody { remaining: n }
            }
            Framing::Chunked => State::ExpectChunkSize,
            Framing::UntilClose => State::ExpectClose,
        };
        Ok(Some((head, len)))
    }

    fn interpret_head(
        &self,
        response: &httparse::Response<'_, '_>,
        minor_version: u8,
        status: u16,
    ) -> Result<ResponseHead, HttpError> {
        let mut content_type = None;
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        let mut conn_close = false;
        let mut conn_keep_alive = false;
        for h in response.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(String::from_utf8_lossy(h.value).trim().to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = super::parse_content_length(h.value).ok_or(HttpError::BadFraming {
                    reason: "invalid Content-Length",
                })?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpError::BadFraming {
                        reason: "conflicting Content-Length headers",
                    });
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the last coding decides; anything but a final
                // `chunked` is unsupported (Docker never compresses).
                for coding in tokens(h.value) {
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked = true;
                    } else if !coding.eq_ignore_ascii_case(b"identity") {
                        chunked = false;
                        other_coding = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in tokens(h.value) {
                    conn_close |= token.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        if other_coding && !chunked {
            return Err(HttpError::BadFraming {
                reason: "unsupported Transfer-Encoding",
            });
        }
        let no_body =
            self.head_request || (100..200).contains(&status) || status == 204 || status == 304;
        let framing = if no_body {
            Framing::NoBody
        } else if chunked {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
            Framing::Chunked
        } else if let Some(n) = content_length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        let close_after = conn_close
            || (minor_version == 0 && !conn_keep_alive)
            || framing == Framing::UntilClose;
        Ok(ResponseHead {
            minor_version,
            status,
            reason: response.reason.unwrap_or("").to_string(),
            content_type,
            framing,
            close_after,
        })
    }
}

fn bad_chunk(rest: &[u8]) -> HttpError {
    HttpError::BadChunk {
        excerpt: excerpt(rest),
    }
}

/// Index just past the blank line that ends a head, searching from `from`.
/// Accepts CRLF and bare-LF line endings, like httparse.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') => match buf.get(nl + 2) {
                Some(b'\n') => return Some(nl + 3),
                Some(_) => {}
                None => return None,
            },
            Some(_) => {}
            None => return None,
        }
        i = nl + 1;
    }
    None
}

/// Comma-separated list items, trimmed of spaces and tabs, empties skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One decoded message: head, body, and whether it ended by EOF.
    #[derive(Debug, PartialEq, Eq)]
    struct Message {
        head: ResponseHead,
        body: Vec<u8>,
    }

    /// Feeds `pieces` in order, draining after each; calls `eof()` at the
    /// end when `close` is set. Returns complete messages, or the first error.
    fn decode(
        dec: &mut ResponseDecoder,
        pieces: &[&[u8]],
        close: bool,
    ) -> Result<Vec<Message>, HttpError> {
        let mut out = Vec::new();
        let mut head = None;
        let mut body = Vec::new();
        for piece in pieces {
            let mut input = *piece;
            loop {
                let progress = dec.feed(input, &mut body)?;
                input = &[];
                match progress {
                    Progress::NeedMore => break,
                    Progress::Head(h) => {
                        assert!(head.is_none(), "head twice");
                        head = Some(h);
                    }
                    Progress::Done => out.push(Message {
                        head: head.take().expect("Done without Head"),
                        body: core::mem::take(&mut body),
                    }),
                }
            }
        }
        if close {
            match dec.eof() {
                Ok(Progress::Done) => out.push(Message {
                    head: head.take().expect("Done without Head"),
                    body: core::mem::take(&mut body),
                }),
                Ok(other) => panic!("eof gave {other:?}"),
                // A clean close between messages.
                Err(HttpError::ClosedBeforeResponse) => assert!(head.is_none()),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn decode_whole(bytes: &[u8], close: bool) -> Result<Vec<Message>, HttpError> {
        decode(&mut ResponseDecoder::new(Some(1 << 20)), &[bytes], close)
    }

    /// The same bytes fed whole, byte by byte, and split in two at every
    /// point must decode identically.
    fn assert_split_invariant(bytes: &[u8], close: bool) -> Vec<Message> {
        let whole = decode_whole(bytes, close);
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let by_byte = decode(&mut ResponseDecoder::new(Some(1 << 20)), &pieces, close);
        assert_eq!(by_byte, whole, "byte-by-byte differs");
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            let two = decode(&mut ResponseDecoder::new(Some(1 << 20)), &[a, b], close);
            assert_eq!(two, whole, "split at {split} differs");
        }
        whole.expect("decodes")
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;name=value;x=\"q\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n";

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let msgs = assert_split_invariant(CHUNKED, false);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].body, b"hello 0123456789");
        assert_eq!(msgs[0].head.framing, Framing::Chunked);
        assert_eq!(
            msgs[0].head.content_type.as_deref(),
            Some("application/json")
        );
        assert!(!msgs[0].head.close_after);
    }

    #[test]
    fn chunk_extension_without_value_and_uppercase_hex() {
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1F;ext\r\n0123456789abcdef0123456789abcde\r\n0;last\r\n\r\n";
        let msgs = assert_split_invariant(bytes, false);
        assert_eq!(msgs[0].body.len(), 0x1f);
    }

    #[test]
    fn real_docker_20_10_info_chunked() {
        let bytes = include_bytes!("../../tests/fixtures/docker/info-20.10.http");
        let msgs = assert_split_invariant(bytes, true);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(m.head.status, 200);
        assert_eq!(m.head.framing, Framing::Chunked);
        assert!(m.head.close_after, "request sent Connection: close");
        assert_eq!(m.body.len(), 0x8ba);
        assert!(m.body.starts_with(b"{\"ID\":\"") && m.body.ends_with(b"}\n"));
    }

    #[test]
    fn docker_1_7_version_with_content_length() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Tue, 03 Nov 2015 09:33:20 GMT\r\nContent-Length: 156\r\n\r\n{\"Version\":\"1.7.1\",\"ApiVersion\":\"1.19\",\"GitCommit\":\"786b29d\",\"GoVersion\":\"go1.4.2\",\"Os\":\"linux\",\"Arch\":\"amd64\",\"KernelVersion\":\"4.1.10-17.31.amzn1.x86_64\"}\n";
        let msgs = assert_split_invariant(bytes, false);
        assert_eq!(msgs[0].head.framing, Framing::Length(156));
        assert_eq!(msgs[0].body.len(), 156);
        assert!(!msgs[0].head.close_after);
        let info = crate::docker::version::parse_version_body(&msgs[0].body).unwrap();
        assert_eq!(info.version, "1.7.1");
    }

    #[test]
    fn real_docker_20_10_version_content_length() {
        let bytes = include_bytes!("../../tests/fixtures/docker/version-20.10.http");
        let msgs = assert_split_invariant(bytes, true);
        assert_eq!(msgs[0].head.framing, Framing::Length(792));
        assert_eq!(msgs[0].body.len(), 792);
    }

    #[test]
    fn bad_request_with_colon_in_reason_read_until_close() {
        let bytes = include_bytes!("../../tests/fixtures/docker/no-host-400.http");
        let msgs = assert_split_invariant(bytes, true);
        let m = &msgs[0];
        assert_eq!(m.head.status, 400);
        assert_eq!(m.head.reason, "Bad Request: missing required Host header");
        assert_eq!(m.head.framing, Framing::UntilClose);
        assert!(m.head.close_after);
        assert_eq!(
            m.head.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(m.body, b"400 Bad Request: missing required Host header");
    }

    #[test]
    fn until_close_body_needs_eof_to_complete() {
        let bytes = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"status\":\"start\"}\n{\"status\":\"die\"}\n";
        let mut dec = ResponseDecoder::new(None);
        let without_eof = decode(&mut dec, &[bytes], false).unwrap();
        assert!(
            without_eof.is_empty(),
            "until-close body cannot end before EOF"
        );
        let msgs = assert_split_invariant(bytes, true);
        assert_eq!(msgs[0].head.minor_version, 0);
        assert!(msgs[0].head.close_after);
        assert_eq!(
            msgs[0].body,
            b"{\"status\":\"start\"}\n{\"status\":\"die\"}\n"
        );
    }

    #[test]
    fn real_http10_events_reply_without_events() {
        let bytes = include_bytes!("../../tests/fixtures/docker/events-http10-empty.http");
        let msgs = assert_split_invariant(bytes, true);
        assert_eq!(msgs[0].head.framing, Framing::UntilClose);
        assert!(msgs[0].body.is_empty());
    }

    #[test]
    fn real_pipelined_responses_in_one_buffer() {
        let bytes = include_bytes!("../../tests/fixtures/docker/pipelined-ping-404.http");
        let msgs = assert_split_invariant(bytes, true);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].head.status, 200);
        assert_eq!(msgs[0].body, b"OK");
        assert!(!msgs[0].head.close_after);
        assert_eq!(msgs[1].head.status, 404);
        assert_eq!(msgs[1].body, b"{\"message\":\"No such container: nope\"}\n");
        assert!(msgs[1].head.close_after);
    }

    #[test]
    fn pipelined_chunked_then_length_keeps_surplus() {
        let mut bytes = CHUNKED.to_vec();
        bytes.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 2");
        let mut dec = ResponseDecoder::new(None);
        let msgs = decode(&mut dec, &[&bytes], false).unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1].head.status, 204);
        assert_eq!(msgs[1].head.framing, Framing::NoBody);
        assert_eq!(msgs[2].body, b"abc");
        assert_eq!(dec.buffered_len(), b"HTTP/1.1 2".len());
        assert!(!dec.is_idle());
        // The rest of the next response arrives later.
        let more = decode(&mut dec, &[b"00 OK\r\nContent-Length: 1\r\n\r\nz"], false).unwrap();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].body, b"z");
        assert!(dec.is_idle());
    }

    #[test]
    fn events_stream_drains_as_chunks_arrive() {
        let event = br#"{"status":"die","id":"4d4a","from":"nginx:1.25","Type":"container","Action":"die","Actor":{"ID":"4d4a","Attributes":{"exitCode":"137","image":"nginx:1.25","name":"web"}},"scope":"local","time":1730800800,"timeNano":1730800800123456789}
"#;
        let head = b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nServer: Docker/27.3.1 (linux)\r\nDate: Tue, 05 Nov 2024 10:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunk = |data: &[u8]| {
            let mut c = format!("{:x}\r\n", data.len()).into_bytes();
            c.extend_from_slice(data);
            c.extend_from_slice(b"\r\n");
            c
        };
        let mut dec = ResponseDecoder::new(None);
        let mut body = Vec::new();
        assert!(
            matches!(dec.feed(head, &mut body), Ok(Progress::Head(h)) if h.framing == Framing::Chunked)
        );
        assert_eq!(dec.feed(&[], &mut body), Ok(Progress::NeedMore));
        // Each event is visible as soon as its chunk arrives; the consumer
        // drains the body in between.
        for _ in 0..3 {
            assert_eq!(dec.feed(&chunk(event), &mut body), Ok(Progress::NeedMore));
            assert_eq!(body, event);
            body.clear();
        }
        // A half chunk shows its half at once.
        let c = chunk(event);
        let (a, b) = c.split_at(100);
        assert_eq!(dec.feed(a, &mut body), Ok(Progress::NeedMore));
        let size_line = format!("{:x}\r\n", event.len()).len();
        assert_eq!(body, &event[..100 - size_line]);
        assert_eq!(dec.feed(b, &mut body), Ok(Progress::NeedMore));
        assert_eq!(body, event);
        assert_eq!(dec.feed(b"0\r\n\r\n", &mut body), Ok(Progress::Done));
        assert!(dec.is_idle());
        // Killed daemon: EOF mid-stream is truncation.
        let mut dec = ResponseDecoder::new(None);
        let mut body = Vec::new();
        let mut stream = head.to_vec();
        stream.extend_from_slice(&chunk(event));
        let _ = dec.feed(&stream, &mut body).unwrap();
        let _ = dec.feed(&[], &mut body).unwrap();
        assert_eq!(body, event);
        assert!(matches!(dec.eof(), Err(HttpError::Truncated { .. })));
    }

    #[test]
    fn eof_before_any_byte_is_retryable() {
        let mut dec = ResponseDecoder::new(None);
        let err = dec.eof().unwrap_err();
        assert_eq!(err, HttpError::ClosedBeforeResponse);
        assert!(err.is_retryable());
        // Also after a completed keep-alive response.
        let mut body = Vec::new();
        let mut dec = ResponseDecoder::new(None);
        let msgs = decode(
            &mut dec,
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"],
            false,
        )
        .unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(dec.eof(), Err(HttpError::ClosedBeforeResponse));
        // But not once part of a status line arrived.
        assert_eq!(dec.feed(b"HTTP/1.", &mut body), Ok(Progress::NeedMore));
        let err = dec.eof().unwrap_err();
        assert!(matches!(err, HttpError::Truncated { .. }), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn truncated_inside_content_length_body() {
        let err =
            decode_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", true).unwrap_err();
        assert_eq!(
            err,
            HttpError::Truncated {
                expecting: "the rest of a Content-Length body"
            }
        );
    }

    #[test]
    fn truncated_inside_chunk_and_chunk_framing() {
        let base = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (tail, expecting) in [
            (&b""[..], "a chunk-size line"),
            (b"a", "a chunk-size line"),
            (b"a\r\n01234", "the rest of a chunk"),
            (b"5\r\n01234", "the CRLF after a chunk"),
            (b"5\r\n01234\r", "the CRLF after a chunk"),
            (b"5\r\n01234\r\n", "a chunk-size line"),
            (b"5\r\n01234\r\n0\r\n", "the end of the trailers"),
            (b"5\r\n01234\r\n0\r\nX: y\r\n", "the end of the trailers"),
        ] {
            let mut bytes = base.to_vec();
            bytes.extend_from_slice(tail);
            let err = decode_whole(&bytes, true).unwrap_err();
            assert_eq!(
                err,
                HttpError::Truncated { expecting },
                "{}",
                tail.escape_ascii()
            );
        }
    }

    #[test]
    fn truncated_head() {
        let err = decode_whole(b"HTTP/1.1 200 OK\r\nContent-Le", true).unwrap_err();
        assert_eq!(
            err,
            HttpError::Truncated {
                expecting: "the response head"
            }
        );
    }

    #[test]
    fn oversize_head_is_an_error_not_a_wait() {
        let mut bytes = b"HTTP/1.1 200 OK\r\n".to_vec();
        while bytes.len() <= MAX_RESPONSE_HEAD {
            bytes.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        // Without a terminator: detected once the cap is passed.
        let mut dec = ResponseDecoder::new(None);
        let mut body = Vec::new();
        let mut result = Ok(Progress::NeedMore);
        for piece in bytes.chunks(1000) {
            result = dec.feed(piece, &mut body);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::HeadTooLarge));
        // With a terminator beyond the cap, in one piece.
        bytes.extend_from_slice(b"\r\n");
        assert_eq!(decode_whole(&bytes, false), Err(HttpError::HeadTooLarge));
        // A head just under the cap is fine.
        let mut ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Filler: ".to_vec();
        ok.resize(MAX_RESPONSE_HEAD - 4, b'a');
        ok.extend_from_slice(b"\r\n\r\n");
        assert_eq!(ok.len(), MAX_RESPONSE_HEAD);
        assert_eq!(decode_whole(&ok, false).unwrap().len(), 1);
    }

    #[test]
    fn oversize_body_content_length_chunked_and_until_close() {
        let limit = 10;
        let cases: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
            b"HTTP/1.0 200 OK\r\n\r\n01234567890",
        ];
        for bytes in cases {
            let mut dec = ResponseDecoder::new(Some(limit));
            let err = decode(&mut dec, &[bytes], false).unwrap_err();
            assert_eq!(
                err,
                HttpError::BodyTooLarge { limit },
                "{}",
                bytes.escape_ascii()
            );
        }
        // Exactly at the limit is accepted, and the count restarts per message.
        let mut dec = ResponseDecoder::new(Some(limit));
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(decode(&mut dec, &[two], false).unwrap().len(), 2);
        // No limit for streams.
        let mut dec = ResponseDecoder::new(None);
        let big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n";
        assert_eq!(decode(&mut dec, &[big], false).unwrap().len(), 0);
    }

    #[test]
    fn oversize_chunk_size_line() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
        bytes.resize(bytes.len() + MAX_CHUNK_SIZE_LINE, b'x');
        assert_eq!(
            decode_whole(&bytes, false),
            Err(HttpError::ChunkSizeLineTooLong)
        );
        bytes.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(
            decode_whole(&bytes, false),
            Err(HttpError::ChunkSizeLineTooLong)
        );
        // 17 hex digits overflow what httparse accepts.
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n";
        assert!(matches!(
            decode_whole(bytes, false),
            Err(HttpError::BadChunk { .. })
        ));
    }

    #[test]
    fn oversize_trailers() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        while bytes.len() < 2 * MAX_TRAILERS {
            bytes.extend_from_slice(b"X-T: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(
            decode_whole(&bytes, false),
            Err(HttpError::TrailersTooLarge)
        );
    }

    #[test]
    fn malformed_chunks() {
        let base = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for tail in [
            &b"\r\n"[..],
            b"zz\r\n",
            b"-1\r\n",
            b" 5\r\nhello\r\n",
            b"5\rhello",
            b"5\r\nhelloXY0\r\n\r\n",
            b"5\r\nhello\r\r",
        ] {
            let mut bytes = base.to_vec();
            bytes.extend_from_slice(tail);
            let err = decode_whole(&bytes, false).unwrap_err();
            assert!(
                matches!(err, HttpError::BadChunk { .. }),
                "{}: {err}",
                tail.escape_ascii()
            );
        }
    }

    #[test]
    fn malformed_heads_and_framing() {
        for (bytes, want) in [
            (&b"HTTP/2.0 200 OK\r\n\r\n"[..], "not HTTP/1.x"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid status"),
            (b"hello world\r\n\r\n", "not HTTP/1.x"),
            (
                b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
                "invalid header name",
            ),
        ] {
            match decode_whole(bytes, false) {
                Err(HttpError::BadHead { reason, .. }) => assert_eq!(reason, want),
                other => panic!("{}: {other:?}", bytes.escape_ascii()),
            }
        }
        for (bytes, want) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..],
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "conflicting Content-Length headers",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "unsupported Transfer-Encoding",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                "unsupported Transfer-Encoding",
            ),
        ] {
            assert_eq!(
                decode_whole(bytes, false),
                Err(HttpError::BadFraming { reason: want })
            );
        }
        // Repeated identical Content-Length is fine; TE overrides CL.
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nOK";
        assert_eq!(decode_whole(ok, false).unwrap()[0].body, b"OK");
        let te = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n";
        assert_eq!(decode_whole(te, false).unwrap()[0].body, b"OK");
    }

    #[test]
    fn error_messages_are_one_line_and_escaped() {
        let err = decode_whole(b"\x00\x01garbage\r\nwith\nnewlines\r\n\r\n", false).unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains('\n') && !text.contains('\r') && !text.contains('\0'),
            "{text}"
        );
        let long = vec![b'q'; 5000];
        let text = HttpError::BadChunk {
            excerpt: excerpt(&long),
        }
        .to_string();
        assert!(text.len() < 120, "{text}");
        assert!(text.ends_with("…\""));
    }

    #[test]
    fn no_body_statuses_and_head_requests() {
        for status in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let bytes = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            let msgs = decode_whole(bytes.as_bytes(), false).unwrap();
            assert_eq!(msgs.len(), 1, "{status}");
            assert_eq!(msgs[0].head.framing, Framing::NoBody);
        }
        // A HEAD reply carries the GET's Content-Length but no body; the
        // next response follows at once. The HEAD flag applies once.
        let mut dec = ResponseDecoder::new(None);
        dec.expect_head_response();
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let msgs = decode(&mut dec, &[bytes], false).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].head.framing, Framing::NoBody);
        assert_eq!(msgs[1].body, b"hello");
    }

    #[test]
    fn connection_semantics() {
        let cases: [(&[u8], bool); 6] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", true),
        ];
        for (bytes, close) in cases {
            let msgs = decode_whole(bytes, true).unwrap();
            assert_eq!(msgs[0].head.close_after, close, "{}", bytes.escape_ascii());
        }
    }

    #[test]
    fn bare_lf_heads_are_accepted() {
        let msgs = assert_split_invariant(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nOK", false);
        assert_eq!(msgs[0].body, b"OK");
    }

    #[test]
    fn decoder_is_fresh_after_error_and_eof() {
        let mut dec = ResponseDecoder::new(None);
        let mut body = Vec::new();
        assert!(dec.feed(b"HTTP/9.9 200 OK\r\n\r\n", &mut body).is_err());
        assert!(dec.is_idle());
        let msgs = decode(
            &mut dec,
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"],
            false,
        )
        .unwrap();
        assert_eq!(msgs[0].body, b"x");
    }

    /// Deterministic pseudo-random bytes (xorshift), no extra crates.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Random bodies, chunked with random sizes, extensions and trailers,
    /// then cut at random points: the decoded body must equal the original
    /// (the reference decoder is the identity on the body we encoded).
    #[test]
    fn random_chunkings_round_trip() {
        for seed in 1..300u64 {
            let r = noise(seed, 64);
            let body = noise(seed * 7919, usize::from(r[0]) * 13);
            let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let mut rest = &body[..];
            let mut k = 1;
            while !rest.is_empty() {
                let n = (usize::from(r[k % 64]) % 97 + 1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                if r[(k + 1) % 64] % 3 == 0 {
                    wire.extend_from_slice(format!("{n:X};ext={k}\r\n").as_bytes());
                } else {
                    wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                }
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = tail;
                k += 1;
            }
            wire.extend_from_slice(b"0\r\n");
            if r[1] % 2 == 0 {
                wire.extend_from_slice(b"X-Checksum: 1\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            // Cut into random pieces.
            let mut pieces = Vec::new();
            let mut at = 0;
            let mut j = 2;
            while at < wire.len() {
                let n = (usize::from(r[j % 64]) % 40 + 1).min(wire.len() - at);
                pieces.push(&wire[at..at + n]);
                at += n;
                j += 1;
            }
            let msgs = decode(&mut ResponseDecoder::new(None), &pieces, false).unwrap();
            assert_eq!(msgs.len(), 1, "seed {seed}");
            assert_eq!(msgs[0].body, body, "seed {seed}");
        }
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let bases: [&[u8]; 3] = [
            CHUNKED,
            include_bytes!("../../tests/fixtures/docker/pipelined-ping-404.http"),
            include_bytes!("../../tests/fixtures/docker/no-host-400.http"),
        ];
        for seed in 0..400u64 {
            let base = bases[(seed % 3) as usize];
            let mut bytes = base.to_vec();
            let r = noise(seed + 1, 8);
            for k in 0..4 {
                let at = usize::from(r[k]) * bytes.len() / 256;
                bytes[at] = r[k + 4];
            }
            let split = usize::from(r[0]) * bytes.len() / 256;
            let (a, b) = bytes.split_at(split);
            let mut dec = ResponseDecoder::new(Some(4096));
            let _ = decode(&mut dec, &[a, b], true);
            let _ = decode_whole(&noise(seed, 300), true);
        }
    }
}
