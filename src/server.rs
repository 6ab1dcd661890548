//! Port 8000: `GET /` (fingerprint), `/metrics`, `/healthz`, HTTP/1.1 only.
//!
//! Every connection is non-blocking and bounded: a request head must arrive
//! within [`HEAD_TIMEOUT`] and fit in 8 KiB, a response must drain within
//! [`WRITE_TIMEOUT`], at most [`MAX_CONNECTIONS`] are open (the oldest idle
//! one makes room for a newcomer). A slow or hostile client only ever costs
//! its own slot.

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
    /// When this connection last finished a response or was accepted.
    idle_since: Instant,
    /// A parsed request waiting for its body to be skipped.
    pending: Option<(String, String, bool)>,
}

impl Conn {
    fn is_idle(&self) -> bool {
        matches!(self.state, State::ExpectHead) && self.inbuf.is_empty()
    }
}

pub struct Server {
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    token_base: usize,
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
            local_addr,
        })
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_base + MAX_CONNECTIONS).contains(&token.0)
    }

    pub fn open_connections(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// Accepts every pending connection.
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
                    match self.oldest_idle() {
                        Some(i) => {
                            crate::debug!("http: connection limit reached, dropping the oldest idle connection");
                            self.close(registry, i);
                            i
                        }
                        None => {
                            crate::debug!(
                                "http: connection limit reached and none idle, refusing a client"
                            );
                            drop(stream);
                            continue;
                        }
                    }
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
            self.conns[slot] = Some(Conn {
                stream,
                state: State::ExpectHead,
                inbuf: Vec::new(),
                head: Vec::new(),
                head_pos: 0,
                body: Body::Empty,
                body_pos: 0,
                deadline: now + HEAD_TIMEOUT,
                idle_since: now,
                pending: None,
            });
        }
    }

    fn oldest_idle(&self) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .filter(|c| c.is_idle())
                    .map(|c| (i, c.idle_since))
            })
            .min_by_key(|&(_, t)| t)
            .map(|(i, _)| i)
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
        let keep = match self.conns.get_mut(slot).and_then(Option::as_mut) {
            Some(conn) => drive(conn, now, route),
            None => return,
        };
        if !keep {
            self.close(registry, slot);
        }
    }
}

/// Reads, parses, answers and writes until the socket would block.
/// Returns false when the connection should be closed.
fn drive<H: Handler>(conn: &mut Conn, now: Instant, route: &mut H) -> bool {
    loop {
        match conn.state {
            State::Writing { keep_alive } => match flush(conn, route) {
                Ok(true) => {
                    if !keep_alive {
                        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                        return false;
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
                    conn.idle_since = now;
                    conn.deadline = now + HEAD_TIMEOUT;
                    // Pipelined bytes may already hold the next request.
                    continue;
                }
                Ok(false) => return true,
                Err(_) => return false,
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
                        Ok(false) => return true,
                        Err(_) => return false,
                    }
                }
                let (method, path, keep_alive) = conn.pending.take().unwrap_or_default();
                answer(
                    conn,
                    now,
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
                        reject(conn, now, 413);
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
                        reject(conn, now, 431);
                        continue;
                    }
                    match fill(conn) {
                        Ok(true) => continue,
                        Ok(false) => return true,
                        Err(_) => return false,
                    }
                }
                Err(e) => {
                    reject(conn, now, e.status());
                }
            },
        }
    }
}

fn reject(conn: &mut Conn, now: Instant, status: u16) {
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
    conn.deadline = now + WRITE_TIMEOUT;
    conn.state = State::Writing { keep_alive: false };
}

fn answer<H: Handler>(
    conn: &mut Conn,
    now: Instant,
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
    conn.deadline = now + WRITE_TIMEOUT;
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
}
