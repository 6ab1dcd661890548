//! The thin I/O shell around the Docker API: two non-blocking connections on
//! the unix socket, driven by the event loop.
//!
//! - The *API* connection carries one request at a time (keep-alive), from a
//!   queue: version, info, list, inspect. A reused connection that closes
//!   before answering is retried once on a fresh one (docs/compat.md §1.1).
//! - The *events* connection holds one `GET /events` stream whose body is
//!   split into lines and parsed as container events.
//!
//! Anything unexpected (refused connect, malformed reply, a stream that ends,
//! a request that takes longer than [`REQUEST_TIMEOUT`]) is reported as
//! [`Output::Down`]; the agent then drops both connections and reconnects
//! with backoff.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::docker::events::{parse_event_line, ContainerEvent, LineSplitter};
use crate::docker::version::ApiVersion;
use crate::http::request::write_request;
use crate::http::response::{HttpError, Progress, ResponseDecoder, ResponseHead};

/// An API request has this long to be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Cap on a non-streaming reply body (a `containers/json` of thousands of
/// containers fits easily).
pub const MAX_REPLY_BODY: u64 = 32 * 1024 * 1024;
/// What the agent sends as `Host` (daemons built with Go ≥ 1.6 require one).
pub const HOST: &str = "docker";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Version,
    Info,
    List,
    Inspect(String),
}

impl Request {
    fn path(&self, prefix: &str) -> String {
        match self {
            // Unversioned: always accepted, whatever the daemon's range.
            Request::Version => "/version".to_owned(),
            Request::Info => format!("{prefix}/info"),
            Request::List => format!("{prefix}/containers/json"),
            Request::Inspect(id) => format!("{prefix}/containers/{id}/json"),
        }
    }
}

/// What the client tells the agent.
#[derive(Debug)]
pub enum Output {
    /// A complete reply to `request`.
    Reply {
        request: Request,
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// The events stream answered with a head (old daemons only do so with
    /// the first event).
    EventsOpen {
        status: u16,
    },
    Event(ContainerEvent),
    /// One events line could not be used (logged by the agent, skipped).
    BadEvent(String),
    /// The daemon cannot be used right now; both connections are closed.
    Down(String),
}

struct Conn {
    stream: UnixStream,
    out: Vec<u8>,
    out_pos: usize,
    decoder: ResponseDecoder,
    body: Vec<u8>,
    head: Option<ResponseHead>,
    /// At least one full response came over this connection.
    reused: bool,
    /// Events connection only: the streamed body cut into lines.
    lines: LineSplitter,
}

impl Conn {
    fn open(
        path: &PathBuf,
        registry: &Registry,
        token: Token,
        body_limit: Option<u64>,
    ) -> io::Result<Conn> {
        let mut stream = UnixStream::connect(path)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
            out: Vec::new(),
            out_pos: 0,
            decoder: ResponseDecoder::new(body_limit),
            body: Vec::new(),
            head: None,
            reused: false,
            lines: LineSplitter::new(),
        })
    }

    fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }

    /// Writes what is pending; errors only on a broken socket.
    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Not connected yet (a hint arrived early): wait for writable.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }
}

enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
}

fn read_some(stream: &mut UnixStream, buf: &mut [u8]) -> io::Result<(ReadOutcome, usize)> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok((ReadOutcome::Eof, 0)),
            Ok(n) => return Ok((ReadOutcome::Data, n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok((ReadOutcome::WouldBlock, 0))
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                return Ok((ReadOutcome::WouldBlock, 0))
            }
            Err(e) => return Err(e),
        }
    }
}

struct InFlight {
    request: Request,
    deadline: Instant,
    retried: bool,
}

pub struct DockerClient {
    path: PathBuf,
    api_token: Token,
    events_token: Token,
    api: Option<Conn>,
    events: Option<Conn>,
    queue: VecDeque<Request>,
    in_flight: Option<InFlight>,
    /// `/v1.41` once negotiated.
    prefix: String,
}

impl DockerClient {
    pub fn new(path: PathBuf, api_token: Token, events_token: Token) -> DockerClient {
        DockerClient {
            path,
            api_token,
            events_token,
            api: None,
            events: None,
            queue: VecDeque::new(),
            in_flight: None,
            prefix: String::new(),
        }
    }

    pub fn set_version(&mut self, v: ApiVersion) {
        self.prefix = format!("/v{v}");
    }

    /// True while a request is queued or waiting for its reply.
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some() || !self.queue.is_empty()
    }

    /// Drops both connections and everything queued.
    pub fn reset(&mut self, registry: &Registry) {
        if let Some(c) = self.api.take() {
            c.close(registry);
        }
        if let Some(c) = self.events.take() {
            c.close(registry);
        }
        self.queue.clear();
        self.in_flight = None;
        self.prefix.clear();
    }

    /// When the in-flight request times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }

    pub fn expire(&mut self, registry: &Registry, now: Instant, out: &mut Vec<Output>) {
        if self.deadline().is_some_and(|d| d <= now) {
            let what = self
                .in_flight
                .as_ref()
                .map(|f| f.request.path(&self.prefix))
                .unwrap_or_default();
            self.fail(
                registry,
                format!("no answer to {what} within {}s", REQUEST_TIMEOUT.as_secs()),
                out,
            );
        }
    }

    pub fn request(
        &mut self,
        registry: &Registry,
        request: Request,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        self.queue.push_back(request);
        self.pump(registry, now, out);
    }

    fn fail(&mut self, registry: &Registry, why: String, out: &mut Vec<Output>) {
        self.reset(registry);
        out.push(Output::Down(why));
    }

    /// Sends the next queued request when the API connection is free.
    fn pump(&mut self, registry: &Registry, now: Instant, out: &mut Vec<Output>) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(request) = self.queue.pop_front() else {
            if self.queue.capacity() > 64 {
                self.queue.shrink_to_fit();
            }
            return;
        };
        self.send(registry, request, false, now, out);
    }

    fn send(
        &mut self,
        registry: &Registry,
        request: Request,
        retried: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if self.api.is_none() {
            match Conn::open(&self.path, registry, self.api_token, Some(MAX_REPLY_BODY)) {
                Ok(c) => self.api = Some(c),
                Err(e) => {
                    return self.fail(
                        registry,
                        format!("cannot connect to {}: {e}", self.path.display()),
                        out,
                    );
                }
            }
        }
        let path = request.path(&self.prefix);
        crate::debug!("docker: GET {path}");
        let conn = self.api.as_mut().expect("connection opened above");
        write_request(&mut conn.out, "GET", &path, HOST, &[], None);
        self.in_flight = Some(InFlight {
            request,
            deadline: now + REQUEST_TIMEOUT,
            retried,
        });
        if let Err(e) = conn.flush() {
            self.retry_or_fail(
                registry,
                format!("writing to the Docker API: {e}"),
                now,
                out,
            );
        }
    }

    /// A reused keep-alive connection broke (EPIPE, reset, EOF) before the
    /// in-flight request was answered: the daemon dropped it while idle, so
    /// the request is sent once more on a fresh connection. Anything else
    /// means the daemon is unusable.
    fn retry_or_fail(
        &mut self,
        registry: &Registry,
        why: String,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let reused = self.api.as_ref().is_some_and(|c| c.reused);
        let retriable = reused && self.in_flight.as_ref().is_some_and(|f| !f.retried);
        if !retriable {
            return self.fail(registry, why, out);
        }
        crate::debug!("docker: {why} on a reused connection; retrying on a fresh one");
        if let Some(c) = self.api.take() {
            c.close(registry);
        }
        let request = self.in_flight.take().expect("checked above").request;
        self.send(registry, request, true, now, out);
    }

    /// Opens the events stream at `path` (e.g. from `events::events_path`).
    pub fn open_events(&mut self, registry: &Registry, path: &str, out: &mut Vec<Output>) {
        if let Some(c) = self.events.take() {
            c.close(registry);
        }
        let mut conn = match Conn::open(&self.path, registry, self.events_token, None) {
            Ok(c) => c,
            Err(e) => {
                return self.fail(
                    registry,
                    format!("cannot connect to {}: {e}", self.path.display()),
                    out,
                )
            }
        };
        crate::debug!("docker: GET {path} (stream)");
        write_request(&mut conn.out, "GET", path, HOST, &[], None);
        let flushed = conn.flush();
        self.events = Some(conn);
        if let Err(e) = flushed {
            self.fail(registry, format!("writing to the Docker API: {e}"), out);
        }
    }

    pub fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if token == self.api_token {
            self.ready_api(registry, now, out);
        } else if token == self.events_token {
            self.ready_events(registry, out);
        }
    }

    fn ready_api(&mut self, registry: &Registry, now: Instant, out: &mut Vec<Output>) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.api.as_mut() else {
                return;
            };
            if let Err(e) = conn.flush() {
                let why = format!("writing to the Docker API: {e}");
                return self.retry_or_fail(registry, why, now, out);
            }
            let (outcome, n) = match read_some(&mut conn.stream, &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    let why = format!("reading from the Docker API: {e}");
                    return self.retry_or_fail(registry, why, now, out);
                }
            };
            let mut input: &[u8] = &buf[..n];
            match outcome {
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Data => {}
                ReadOutcome::Eof => {
                    let result = conn.decoder.eof();
                    let reused = conn.reused;
                    match result {
                        Ok(Progress::Done) => {
                            self.complete(out);
                            if let Some(c) = self.api.take() {
                                c.close(registry);
                            }
                            self.pump(registry, now, out);
                        }
                        Err(HttpError::ClosedBeforeResponse)
                            if reused && self.in_flight.is_some() =>
                        {
                            let why = "the connection closed before a reply".to_owned();
                            self.retry_or_fail(registry, why, now, out);
                        }
                        Err(HttpError::ClosedBeforeResponse) if self.in_flight.is_none() => {
                            if let Some(c) = self.api.take() {
                                c.close(registry);
                            }
                            self.pump(registry, now, out);
                        }
                        Ok(_) | Err(_) => {
                            let why = match result {
                                Err(e) => e.to_string(),
                                Ok(_) => "connection closed".to_owned(),
                            };
                            return self.fail(registry, format!("Docker API: {why}"), out);
                        }
                    }
                    return;
                }
            }
            // Feed until the decoder needs more bytes.
            loop {
                let Some(conn) = self.api.as_mut() else {
                    return;
                };
                match conn.decoder.feed(input, &mut conn.body) {
                    Ok(Progress::NeedMore) => break,
                    Ok(Progress::Head(h)) => conn.head = Some(h),
                    Ok(Progress::Done) => {
                        let close = conn.head.as_ref().is_some_and(|h| h.close_after);
                        self.complete(out);
                        if close {
                            if let Some(c) = self.api.take() {
                                c.close(registry);
                            }
                        }
                        self.pump(registry, now, out);
                    }
                    Err(e) => return self.fail(registry, format!("Docker API reply: {e}"), out),
                }
                input = &[];
            }
        }
    }

    /// Hands a complete reply to the agent.
    fn complete(&mut self, out: &mut Vec<Output>) {
        let Some(conn) = self.api.as_mut() else {
            return;
        };
        let head = conn.head.take();
        let body = std::mem::take(&mut conn.body);
        conn.reused = true;
        let Some(flight) = self.in_flight.take() else {
            // A reply nobody asked for: the daemon is not speaking our protocol.
            crate::debug!("docker: unexpected reply without a request");
            return;
        };
        let (status, content_type) = head
            .map(|h| (h.status, h.content_type))
            .unwrap_or((0, None));
        out.push(Output::Reply {
            request: flight.request,
            status,
            content_type,
            body,
        });
    }

    fn ready_events(&mut self, registry: &Registry, out: &mut Vec<Output>) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.events.as_mut() else {
                return;
            };
            if let Err(e) = conn.flush() {
                return self.fail(
                    registry,
                    format!("writing to the Docker events stream: {e}"),
                    out,
                );
            }
            let (outcome, n) = match read_some(&mut conn.stream, &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    return self.fail(
                        registry,
                        format!("reading the Docker events stream: {e}"),
                        out,
                    )
                }
            };
            match outcome {
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Eof => {
                    let why = match conn.decoder.eof() {
                        Ok(_) => "the events stream ended".to_owned(),
                        Err(e) => format!("the events stream ended: {e}"),
                    };
                    return self.fail(registry, why, out);
                }
                ReadOutcome::Data => {}
            }
            let mut input: &[u8] = &buf[..n];
            loop {
                let Some(conn) = self.events.as_mut() else {
                    return;
                };
                let progress = conn.decoder.feed(input, conn.lines.buffer_mut());
                input = &[];
                match progress {
                    Ok(Progress::NeedMore) => {
                        self.drain_lines(out);
                        break;
                    }
                    Ok(Progress::Head(h)) => {
                        let status = h.status;
                        conn.head = Some(h);
                        out.push(Output::EventsOpen { status });
                        if status != 200 {
                            // The body (an error message) is not worth waiting for.
                            return self.fail(
                                registry,
                                format!("the events request was refused with {status}"),
                                out,
                            );
                        }
                    }
                    Ok(Progress::Done) => {
                        self.drain_lines(out);
                        return self.fail(registry, "the events stream ended".to_owned(), out);
                    }
                    Err(e) => return self.fail(registry, format!("the events stream: {e}"), out),
                }
            }
        }
    }

    /// Parses every complete line of the events body.
    fn drain_lines(&mut self, out: &mut Vec<Output>) {
        let Some(conn) = self.events.as_mut() else {
            return;
        };
        while let Some(line) = conn.lines.next_line() {
            match line.and_then(parse_event_line) {
                Ok(Some(ev)) => out.push(Output::Event(ev)),
                Ok(None) => {}
                Err(e) => out.push(Output::BadEvent(e.to_string())),
            }
        }
    }
}
