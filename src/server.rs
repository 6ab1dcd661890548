//! Port 8000: `GET /` (fingerprint), `/metrics`, `/healthz`, HTTP/1.1 only.
//!
//! Every connection is non-blocking and bounded: a request head must arrive
//! within [`HEAD_TIMEOUT`] and fit in 8 KiB, a response must drain within
//! [`WRITE_TIMEOUT`], at most [`MAX_CONNECTIONS`] are open. A newcomer is
//! never refused: when every slot is taken it displaces, in this order, the
//! connection that has waited longest for a request it has not finished
//! sending (a dribbled head or body, or an idle keep-alive), else the one
//! that has waited longest for its peer to read a response, else the oldest.
//! A response is produced only as fast as the socket takes it (one piece of
//! a streamed body in memory at a time), and a pipelined request is not even
//! parsed until the response before it is entirely written, and then only on
//! a later turn of the event loop, so a peer that sends requests but never
//! reads stops being served once its socket buffer is full and is closed at
//! the write deadline. A slow or hostile client only ever costs its own slot.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::http::server::{self as wire, MAX_REQUEST_HEAD};

pub const MAX_CONNECTIONS: usize = 64;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The two deadlines; the unit tests shorten them.
#[derive(Clone, Copy, Debug)]
struct Limits {
    head: Duration,
    write: Duration,
}

const LIMITS: Limits = Limits {
    head: HEAD_TIMEOUT,
    write: WRITE_TIMEOUT,
};

/// What a route answers.
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Body,
    pub headers: &'static [(&'static str, &'static str)],
}

pub enum Body {
    Empty,
    Static(&'static [u8]),
    Owned(Vec<u8>),
    Shared(Rc<Vec<u8>>),
    /// Made a piece at a time by [`Handler::produce`] as the socket drains,
    /// and sent with the chunked transfer coding: a large body never sits
    /// whole in memory.
    Stream(StreamState),
}

/// Where a streamed body stands; the server keeps it between pieces, the
/// handler interprets it.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamState {
    /// The Prometheus view's position.
    pub prom: crate::metrics::PromCursor,
    /// Set by the handler once the last piece was produced.
    pub done: bool,
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Empty | Body::Stream(_) => b"",
            Body::Static(b) => b,
            Body::Owned(v) => v,
            Body::Shared(v) => v,
        }
    }
}

/// What the server asks of the agent: answers, and the pieces of streamed bodies.
pub trait Handler {
    fn route(&mut self, req: &Request<'_>) -> Response;
    /// Appends the next piece of a streamed body to `out` (at least one
    /// byte unless it is done) and sets `stream.done` with the last one.
    fn produce(&mut self, stream: &mut StreamState, out: &mut Vec<u8>);
}

/// Room left in front of a chunk for its size line (`{:x}\r\n`).
const CHUNK_GAP: usize = 18;

impl Response {
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body: Body::Owned(body.into()),
            headers: &[],
        }
    }
}

enum State {
    /// Waiting for (the rest of) a request head.
    ExpectHead,
    /// Discarding `remaining` bytes of a request body before answering.
    ExpectBody { remaining: usize },
    /// Writing a response; `keep_alive` decides what follows.
    Writing { keep_alive: bool },
}

struct Conn {
    stream: TcpStream,
    state: State,
    inbuf: Vec<u8>,
    head: Vec<u8>,
    head_pos: usize,
    body: Body,
    body_pos: usize,
    deadline: Instant,
    /// When the current wait began: for a request, at the accept or the end
    /// of the previous response; for a response, when it was begun.
    since: Instant,
    /// A complete request head sits in `inbuf`, to be answered at the next
    /// readiness event (read ahead at the accept, or pipelined).
    head_ready: bool,
    /// A parsed request waiting for its body to be skipped.
    pending: Option<(String, String, bool)>,
}

/// Which connections make room for a newcomer first (lowest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Evict {
    /// Waiting for the client to finish sending a request (or to start one).
    Unfinished,
    /// Waiting for the peer to read a response.
    Unread,
    /// A complete request is buffered and about to be answered.
    Due,
}

impl Conn {
    fn evict_rank(&self) -> Evict {
        match self.state {
            State::ExpectHead if self.head_ready => Evict::Due,
            State::ExpectHead | State::ExpectBody { .. } => Evict::Unfinished,
            State::Writing { .. } => Evict::Unread,
        }
    }
}

/// Which connection makes room for a newcomer: the first by rank, then the
/// longest waiting.
fn choose_victim<'a>(conns: impl Iterator<Item = (usize, Evict, Instant)> + 'a) -> Option<usize> {
    conns
        .min_by_key(|&(_, rank, since)| (rank, since))
        .map(|(i, _, _)| i)
}

/// What [`drive`] leaves a connection waiting for.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The socket would block: the next readiness event.
    Wait,
    /// A pipelined request is buffered but a response was just finished:
    /// a later turn of the loop (the registration is renewed so that one
    /// comes).
    Turn,
    Close,
}

pub struct Server {
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    token_base: usize,
    limits: Limits,
    pub local_addr: SocketAddr,
}

/// What the agent's router sees of a request.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

impl Server {
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        listener_token: Token,
        token_base: usize,
    ) -> io::Result<Server> {
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        let conns = (0..MAX_CONNECTIONS).map(|_| None).collect();
        Ok(Server {
            listener,
            conns,
            token_base,
            limits: LIMITS,
            local_addr,
        })
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_base + MAX_CONNECTIONS).contains(&token.0)
    }

    pub fn open_connections(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// Accepts every pending connection. None is refused: when the slots
    /// are full, one connection makes room (see `choose_victim`).
    pub fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut stream, _peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for now.
                    crate::warn!("http: accept failed: {e}");
                    return;
                }
            };
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    let Some(i) = self.victim() else {
                        // Only with no slots at all.
                        drop(stream);
                        continue;
                    };
                    crate::debug!("http: connection limit reached, closing the connection in slot {i} for a newcomer");
                    self.close(registry, i);
                    i
                }
            };
            let _ = stream.set_nodelay(true);
            let token = Token(self.token_base + slot);
            if let Err(e) =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            {
                crate::warn!("http: cannot register a connection: {e}");
                continue;
            }
            let mut conn = Conn {
                stream,
                state: State::ExpectHead,
                inbuf: Vec::new(),
                head: Vec::new(),
                head_pos: 0,
                body: Body::Empty,
                body_pos: 0,
                deadline: now + self.limits.head,
                since: now,
                head_ready: false,
                pending: None,
            };
            // Read ahead: a client whose request is already here has
            // finished its head and is not the one to make room for the
            // next newcomer. It is answered at its readiness event (the
            // registration reports the socket writable).
            match fill(&mut conn) {
                Ok(_) => {
                    conn.head_ready = matches!(wire::parse_request_head(&conn.inbuf), Ok(Some(_)));
                    self.conns[slot] = Some(conn);
                }
                Err(_) => {
                    let _ = registry.deregister(&mut conn.stream);
                }
            }
        }
    }

    fn victim(&self) -> Option<usize> {
        choose_victim(
            self.conns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_ref().map(|c| (i, c.evict_rank(), c.since))),
        )
    }

    fn close(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut c) = self.conns[slot].take() {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    /// The earliest connection deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// Closes connections whose head or write deadline passed.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        for slot in 0..self.conns.len() {
            let expired = matches!(&self.conns[slot], Some(c) if c.deadline <= now);
            if !expired {
                continue;
            }
            if let Some(c) = self.conns[slot].as_mut() {
                if matches!(c.state, State::ExpectHead | State::ExpectBody { .. })
                    && !c.inbuf.is_empty()
                {
                    // A partial head: say why before closing (best effort).
                    let mut head = Vec::new();
                    wire::write_response(&mut head, 408, None, Some(0), false, &[]);
                    let _ = c.stream.write(&head);
                }
            }
            self.close(registry, slot);
        }
    }

    /// Drives one connection after a readiness event.
    pub fn ready<H: Handler>(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        route: &mut H,
    ) {
        let slot = token.0 - self.token_base;
        let limits = self.limits;
        let next = match self.conns.get_mut(slot).and_then(Option::as_mut) {
            Some(conn) => drive(conn, now, limits, route),
            None => return,
        };
        match next {
            Next::Wait => {}
            Next::Turn => {
                // Renewing the registration reports the (writable) socket
                // again at the next poll, after the other ready connections.
                let renewed = self.conns[slot].as_mut().is_some_and(|c| {
                    registry
                        .reregister(
                            &mut c.stream,
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                });
                if !renewed {
                    self.close(registry, slot);
                }
            }
            Next::Close => self.close(registry, slot),
        }
    }
}

/// Reads, parses, answers and writes until the socket would block, or
/// until a response is finished with another request already buffered:
/// that one waits for a later turn of the loop, so a pipelining peer gets
/// one response per turn like everyone else, and none while one is pending.
fn drive<H: Handler>(conn: &mut Conn, now: Instant, limits: Limits, route: &mut H) -> Next {
    conn.head_ready = false;
    loop {
        match conn.state {
            State::Writing { keep_alive } => match flush(conn, route) {
                Ok(true) => {
                    if !keep_alive {
                        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                        return Next::Close;
                    }
                    conn.state = State::ExpectHead;
                    conn.head.clear();
                    if conn.head.capacity() > 4096 {
                        // A streamed body's pieces went through it: give the memory back.
                        conn.head = Vec::new();
                    }
                    conn.head_pos = 0;
                    conn.body = Body::Empty;
                    conn.body_pos = 0;
                    conn.since = now;
                    conn.deadline = now + limits.head;
                    if !conn.inbuf.is_empty() {
                        // Pipelined bytes: parsed on the next turn.
                        conn.head_ready =
                            matches!(wire::parse_request_head(&conn.inbuf), Ok(Some(_)));
                        return Next::Turn;
                    }
                }
                Ok(false) => return Next::Wait,
                Err(_) => return Next::Close,
            },
            State::ExpectBody { remaining } => {
                let take = remaining.min(conn.inbuf.len());
                conn.inbuf.drain(..take);
                if take < remaining {
                    conn.state = State::ExpectBody {
                        remaining: remaining - take,
                    };
                    match fill(conn) {
                        Ok(true) => continue,
                        Ok(false) => return Next::Wait,
                        Err(_) => return Next::Close,
                    }
                }
                let (method, path, keep_alive) = conn.pending.take().unwrap_or_default();
                answer(
                    conn,
                    now,
                    limits,
                    &Request {
                        method: &method,
                        path: &path,
                    },
                    keep_alive,
                    route,
                );
            }
            State::ExpectHead => match wire::parse_request_head(&conn.inbuf) {
                Ok(Some((head, used))) => {
                    let method = head.method.to_string();
                    let path = head.path.to_string();
                    let keep_alive = head.keep_alive;
                    let body_len = head.content_length;
                    conn.inbuf.drain(..used);
                    if body_len > 64 * 1024 {
                        reject(conn, now, limits, 413);
                        continue;
                    }
                    // Answered once its body (usually none) is skipped.
                    conn.pending = Some((method, path, keep_alive));
                    conn.state = State::ExpectBody {
                        remaining: body_len,
                    };
                }
                Ok(None) => {
                    if conn.inbuf.len() > MAX_REQUEST_HEAD {
                        reject(conn, now, limits, 431);
                        continue;
                    }
                    match fill(conn) {
                        Ok(true) => continue,
                        Ok(false) => return Next::Wait,
                        Err(_) => return Next::Close,
                    }
                }
                Err(e) => {
                    reject(conn, now, limits, e.status());
                }
            },
        }
    }
}

fn reject(conn: &mut Conn, now: Instant, limits: Limits, status: u16) {
    conn.inbuf.clear();
    conn.head.clear();
    let reason = wire::reason(status);
    let body = format!("{status} {reason}\n").into_bytes();
    wire::write_response(
        &mut conn.head,
        status,
        Some("text/plain; charset=utf-8"),
        Some(body.len()),
        false,
        &[],
    );
    conn.head.extend_from_slice(&body);
    conn.head_pos = 0;
    conn.body = Body::Empty;
    conn.body_pos = 0;
    conn.since = now;
    conn.deadline = now + limits.write;
    conn.state = State::Writing { keep_alive: false };
}

fn answer<H: Handler>(
    conn: &mut Conn,
    now: Instant,
    limits: Limits,
    req: &Request<'_>,
    keep_alive: bool,
    route: &mut H,
) {
    let resp = route.route(req);
    let body_len = match resp.body {
        Body::Stream(_) => None,
        ref b => Some(b.bytes().len()),
    };
    conn.head.clear();
    wire::write_response(
        &mut conn.head,
        resp.status,
        resp.content_type,
        body_len,
        keep_alive,
        resp.headers,
    );
    conn.head_pos = 0;
    conn.body = if req.method == "HEAD" {
        Body::Empty
    } else {
        resp.body
    };
    conn.body_pos = 0;
    conn.since = now;
    conn.deadline = now + limits.write;
    conn.state = State::Writing { keep_alive };
}

/// Reads what is available into `inbuf` (bounded). Ok(true) = got bytes,
/// Ok(false) = would block, Err = closed or failed.
fn fill(conn: &mut Conn) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    let mut got = false;
    loop {
        if conn.inbuf.len() > MAX_REQUEST_HEAD + 64 * 1024 {
            return Ok(got);
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                return if got {
                    Ok(true)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
            Ok(n) => {
                conn.inbuf.extend_from_slice(&buf[..n]);
                got = true;
                if n < buf.len() {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// Puts the next piece of a streamed body into `conn.head` as one chunk
/// (plus the last-chunk marker after the last piece).
fn next_chunk<H: Handler>(conn: &mut Conn, route: &mut H, stream: &mut StreamState) {
    conn.head.clear();
    conn.head.resize(CHUNK_GAP, 0);
    route.produce(stream, &mut conn.head);
    let n = conn.head.len() - CHUNK_GAP;
    if n == 0 {
        conn.head_pos = CHUNK_GAP;
    } else {
        let mut line = [0u8; CHUNK_GAP];
        let mut cur = io::Cursor::new(&mut line[..]);
        let _ = write!(cur, "{n:x}\r\n");
        let len = cur.position() as usize;
        conn.head_pos = CHUNK_GAP - len;
        conn.head[conn.head_pos..CHUNK_GAP].copy_from_slice(&line[..len]);
        conn.head.extend_from_slice(b"\r\n");
    }
    if stream.done {
        conn.head.extend_from_slice(b"0\r\n\r\n");
    }
}

/// Writes the pending head and body. Ok(true) when everything is out.
fn flush<H: Handler>(conn: &mut Conn, route: &mut H) -> io::Result<bool> {
    loop {
        if conn.head_pos >= conn.head.len() {
            if let Body::Stream(mut stream) = conn.body {
                if stream.done {
                    return Ok(true);
                }
                next_chunk(conn, route, &mut stream);
                conn.body = Body::Stream(stream);
                continue;
            }
        }
        let (buf, pos) = if conn.head_pos < conn.head.len() {
            (&conn.head[conn.head_pos..], &mut conn.head_pos)
        } else {
            let body = conn.body.bytes();
            if conn.body_pos >= body.len() {
                return Ok(true);
            }
            (&body[conn.body_pos..], &mut conn.body_pos)
        };
        match conn.stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// Streams `pieces` pieces of 20 000 bytes each, then the end.
    struct Pieces {
        pieces: usize,
        produced: usize,
    }

    fn piece(i: usize) -> Vec<u8> {
        let line = format!("piece {i:04} ");
        line.bytes().cycle().take(20_000).collect()
    }

    impl Handler for Pieces {
        fn route(&mut self, _req: &Request<'_>) -> Response {
            Response {
                status: 200,
                content_type: Some("text/plain"),
                body: Body::Stream(StreamState::default()),
                headers: &[],
            }
        }

        fn produce(&mut self, stream: &mut StreamState, out: &mut Vec<u8>) {
            let i = self.produced;
            out.extend_from_slice(&piece(i));
            self.produced += 1;
            stream.done = self.produced % self.pieces == 0;
        }
    }

    /// Decodes a chunked body; None when the framing is wrong.
    fn dechunk(mut rest: &[u8]) -> Option<(Vec<u8>, &[u8])> {
        let mut body = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).ok()?, 16).ok()?;
            rest = &rest[eol + 2..];
            if size == 0 {
                return rest.strip_prefix(b"\r\n").map(|r| (body, r));
            }
            body.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size..)?.strip_prefix(b"\r\n")?;
        }
    }

    #[test]
    fn streamed_body_goes_out_chunked_and_the_connection_is_reused() {
        let mut poll = Poll::new().unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut server = Server::bind(addr, poll.registry(), Token(1), 16).unwrap();
        let at = server.local_addr;
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(at).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let mut handler = Pieces {
            pieces: 5,
            produced: 0,
        };
        let mut events = Events::with_capacity(16);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client.is_finished() && Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            for ev in &events {
                if ev.token() == Token(1) {
                    server.accept(poll.registry(), Instant::now());
                } else {
                    server.ready(poll.registry(), ev.token(), Instant::now(), &mut handler);
                }
            }
        }
        let all = client.join().unwrap();
        let want: Vec<u8> = (0..5).flat_map(piece).collect();
        // First GET: the head says chunked, the body is every piece in order.
        let text = String::from_utf8_lossy(&all[..200]).to_string();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n")
                && text.contains("Transfer-Encoding: chunked\r\n"),
            "{text}"
        );
        let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (body, rest) = dechunk(&all[head_end..]).expect("well-formed chunks");
        assert_eq!(body.len(), want.len());
        assert!(body == want, "pieces out of order or torn");
        // HEAD: the same head, no body at all.
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("chunked"),
            "{head}"
        );
        // The second GET on the same connection streams afresh.
        let rest = &rest[head_end..];
        assert!(rest.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (body, tail) = dechunk(&rest[head_end..]).expect("well-formed chunks");
        assert_eq!(body, (5..10).flat_map(piece).collect::<Vec<u8>>());
        assert!(tail.is_empty(), "bytes after the last chunk");
        assert_eq!(handler.produced, 10);
    }

    #[test]
    fn the_newcomer_displaces_unfinished_requests_first_then_unread_responses() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let pick = |c: &[(usize, Evict, Instant)]| choose_victim(c.iter().copied());
        let all = [
            (0, Evict::Due, at(0)),
            (1, Evict::Unread, at(1)),
            (2, Evict::Unfinished, at(5)),
            (3, Evict::Unfinished, at(3)),
            (4, Evict::Unread, at(0)),
        ];
        // The longest-waiting unfinished request, however young the rest.
        assert_eq!(pick(&all), Some(3));
        // Then the response waiting longest for its reader.
        assert_eq!(pick(&all[..2]), Some(1));
        assert_eq!(pick(&[all[0], all[1], all[4]]), Some(4));
        // A buffered, complete request only when nothing else is left.
        assert_eq!(pick(&all[..1]), Some(0));
        assert_eq!(pick(&[]), None);
    }

    /// Answers `/big` with [`BIG`] bytes (one shared buffer), anything else
    /// with a short text, and notes every path it routed.
    struct Paths {
        big: Rc<Vec<u8>>,
        routed: Vec<String>,
    }

    const BIG: usize = 256 * 1024;

    impl Paths {
        fn new() -> Paths {
            Paths {
                big: Rc::new(vec![b'x'; BIG]),
                routed: Vec::new(),
            }
        }
    }

    impl Handler for Paths {
        fn route(&mut self, req: &Request<'_>) -> Response {
            self.routed.push(req.path.to_string());
            let body = if req.path == "/big" {
                Body::Shared(self.big.clone())
            } else {
                Body::Static(b"ok\n")
            };
            Response {
                status: 200,
                content_type: Some("text/plain"),
                body,
                headers: &[],
            }
        }

        fn produce(&mut self, stream: &mut StreamState, _out: &mut Vec<u8>) {
            stream.done = true;
        }
    }

    /// A server on loopback and its event loop, turned by the test.
    struct Loop {
        poll: Poll,
        server: Server,
        events: Events,
    }

    impl Loop {
        fn new(limits: Limits) -> Loop {
            let poll = Poll::new().unwrap();
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let mut server = Server::bind(addr, poll.registry(), Token(1), 16).unwrap();
            server.limits = limits;
            Loop {
                poll,
                server,
                events: Events::with_capacity(256),
            }
        }

        fn addr(&self) -> SocketAddr {
            self.server.local_addr
        }

        /// One poll (up to 10 ms), its events, then the deadlines.
        fn turn<H: Handler>(&mut self, handler: &mut H) {
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(10)))
                .unwrap();
            for ev in &self.events {
                if ev.token() == Token(1) {
                    self.server.accept(self.poll.registry(), Instant::now());
                } else {
                    self.server
                        .ready(self.poll.registry(), ev.token(), Instant::now(), handler);
                }
            }
            self.server.expire(self.poll.registry(), Instant::now());
        }

        /// Turns until `done` or `limit` passes; false on the latter.
        fn turn_until<H: Handler>(
            &mut self,
            handler: &mut H,
            limit: Duration,
            mut done: impl FnMut(&Server, &H) -> bool,
        ) -> bool {
            let end = Instant::now() + limit;
            while !done(&self.server, handler) {
                if Instant::now() >= end {
                    return false;
                }
                self.turn(handler);
            }
            true
        }
    }

    fn connect(at: SocketAddr, send: &[u8]) -> std::net::TcpStream {
        let mut s = std::net::TcpStream::connect(at).unwrap();
        s.write_all(send).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    /// Some(bytes so far) once the server closed or reset the connection,
    /// None while it is open.
    fn drained_to_close(s: &mut std::net::TcpStream, got: &mut Vec<u8>) -> Option<usize> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Some(got.len()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(got.len()),
            }
        }
    }

    const SLOW: Limits = Limits {
        head: Duration::from_secs(30),
        write: Duration::from_secs(30),
    };

    #[test]
    fn full_slots_of_dribbled_heads_make_room_oldest_first() {
        let mut lp = Loop::new(SLOW);
        let mut h = Paths::new();
        let at = lp.addr();
        let mut dribblers = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            dribblers.push(connect(at, b"GET / HTTP/1.1\r\nX-Dri"));
            assert!(lp.turn_until(&mut h, Duration::from_secs(5), |s, _| {
                s.open_connections() == i + 1
            }));
        }
        // An idle keep-alive that finished a request after all of them is
        // younger than every dribbler.
        let mut keep = connect(at, b"GET /keep HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(lp.turn_until(&mut h, Duration::from_secs(5), |_, h| h.routed.len() == 1));
        let mut fresh = Vec::new();
        for _ in 0..3 {
            fresh.push(connect(
                at,
                b"GET /fresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ));
        }
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); 3];
        let answered = lp.turn_until(&mut h, Duration::from_secs(5), |_, _| {
            fresh
                .iter_mut()
                .zip(got.iter_mut())
                .all(|(s, g)| drained_to_close(s, g).is_some())
        });
        assert!(answered, "newcomers refused or unanswered: {:?}", h.routed);
        for g in &got {
            assert!(
                g.starts_with(b"HTTP/1.1 200 OK\r\n"),
                "{:?}",
                String::from_utf8_lossy(g)
            );
        }
        // Four newcomers (the keep-alive and three fresh) displaced the four
        // oldest dribblers; the others and the keep-alive are still open.
        let mut sink = Vec::new();
        for (i, d) in dribblers.iter_mut().enumerate() {
            let closed = drained_to_close(d, &mut sink).is_some();
            assert_eq!(closed, i < 4, "dribbler {i}");
        }
        assert!(
            drained_to_close(&mut keep, &mut sink).is_none(),
            "keep-alive closed"
        );
    }

    #[test]
    fn pipelined_requests_take_turns_and_wait_for_the_response_before() {
        let mut lp = Loop::new(SLOW);
        let mut h = Paths::new();
        let at = lp.addr();
        let many = |tag: &str| -> Vec<u8> {
            (1..=5)
                .flat_map(|i| format!("GET /{tag}{i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes())
                .collect()
        };
        let mut a = connect(at, &many("a"));
        let mut b = connect(at, &many("b"));
        assert!(lp.turn_until(&mut h, Duration::from_secs(5), |_, h| h.routed.len() == 10));
        // One answer per connection per turn of the loop, however many
        // requests each sent at once.
        let mut lead = 0i32;
        for p in &h.routed {
            lead += if p.starts_with("/a") { 1 } else { -1 };
            assert!(
                lead.abs() <= 1,
                "one client served twice in a row: {:?}",
                h.routed
            );
        }
        let mut sink = Vec::new();
        assert!(drained_to_close(&mut a, &mut sink).is_none());
        assert!(drained_to_close(&mut b, &mut sink).is_none());

        // A peer that sends 50 requests and reads nothing is answered until
        // its socket is full, and then no further request is parsed.
        let flood: Vec<u8> = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n".repeat(50);
        let mut mute = connect(at, &flood);
        let before = h.routed.len();
        lp.turn_until(&mut h, Duration::from_millis(500), |_, _| false);
        let answered = h.routed.len() - before;
        assert!(
            (1..50).contains(&answered),
            "{answered} of 50 pipelined requests routed to a peer that reads nothing"
        );
        lp.turn_until(&mut h, Duration::from_millis(500), |_, _| false);
        assert_eq!(h.routed.len() - before, answered, "parsed while blocked");
        assert!(drained_to_close(&mut mute, &mut sink).is_none());
    }

    #[test]
    fn peers_that_never_read_are_displaced_and_closed_at_the_write_deadline() {
        // Longer than the clients below take, so no deadline frees a slot
        // for them.
        let limits = Limits {
            head: Duration::from_secs(2),
            write: Duration::from_secs(2),
        };
        let mut lp = Loop::new(limits);
        let mut h = Paths::new();
        let at = lp.addr();
        // 100 clients pipeline 50 requests each for 256 KiB and never read,
        // then fresh clients scrape; the loop runs here, the clients there.
        let clients = std::thread::spawn(move || {
            let flood: Vec<u8> = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n".repeat(50);
            let mutes: Vec<std::net::TcpStream> = (0..100)
                .map(|_| {
                    let mut s = std::net::TcpStream::connect(at).unwrap();
                    s.write_all(&flood).unwrap();
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            let mut results = Vec::new();
            for _ in 0..30 {
                let start = Instant::now();
                let r = (|| -> io::Result<Vec<u8>> {
                    let mut s = std::net::TcpStream::connect(at)?;
                    s.set_read_timeout(Some(Duration::from_secs(3)))?;
                    s.write_all(b"GET /fresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
                    let mut got = Vec::new();
                    s.read_to_end(&mut got)?;
                    Ok(got)
                })();
                results.push((r.map_err(|e| e.kind()), start.elapsed()));
                std::thread::sleep(Duration::from_millis(20));
            }
            (mutes, results)
        });
        while !clients.is_finished() {
            lp.turn(&mut h);
        }
        let (mut mutes, results) = clients.join().unwrap();
        for (r, t) in &results {
            match r {
                Ok(got) => assert!(
                    got.starts_with(b"HTTP/1.1 200 OK\r\n") && got.ends_with(b"ok\n"),
                    "{:?}",
                    String::from_utf8_lossy(got)
                ),
                Err(e) => panic!("a fresh client failed ({e:?}) after {t:?}"),
            }
        }
        // Every flooding connection is gone by the write deadline (or was
        // displaced earlier); none was served all 50 responses.
        let gone = lp.turn_until(&mut h, limits.write + Duration::from_secs(2), |s, _| {
            s.open_connections() == 0
        });
        assert!(
            gone,
            "{} connections still open",
            lp.server.open_connections()
        );
        let routed_big = h.routed.iter().filter(|p| *p == "/big").count();
        assert!(
            routed_big < 100 * 50,
            "{routed_big} responses to peers that read nothing"
        );
        for m in &mut mutes {
            m.set_nonblocking(true).unwrap();
            let mut got = Vec::new();
            let closed = (0..200).any(|_| {
                let c = drained_to_close(m, &mut got).is_some();
                if !c {
                    std::thread::sleep(Duration::from_millis(5));
                }
                c
            });
            assert!(closed, "a flooding connection was left open");
            assert!(got.len() < 50 * BIG);
        }
    }
}
