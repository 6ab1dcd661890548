//! One outgoing connection, driven by readiness: non-blocking TCP connect,
//! optional `CONNECT` tunnel, optional TLS (rustls), then one request at a
//! time with keep-alive. Each wait has its own deadline.
//!
//! ```text
//!  Free ─start─▶ ExpectAddress ─DNS─▶ ExpectConnect ─▶ [ExpectTunnel] ─▶ [ExpectHandshake]
//!                                                                         │
//!       Idle ◀──────── response done / all bytes written ◀── ExpectResponse ◀┘
//!        └─start─▶ ExpectResponse
//! ```
//!
//! Request bytes reach rustls only once the handshake is complete, so a
//! refused certificate means not one payload byte left the agent.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::core::{Endpoint, Outcome, Request, MAX_RESPONSE_BODY};
use super::proxy::{self, ConnectReply, Proxy};
use super::retry::parse_retry_after;
use super::settings::Target;
use crate::http::response::{Progress, ResponseDecoder};

/// An idle kept-alive connection older than this is closed rather than reused.
const IDLE_LIMIT: Duration = Duration::from_secs(50);

#[derive(Debug)]
enum State {
    Free,
    ExpectAddress { deadline: Instant },
    ExpectConnect { deadline: Instant },
    ExpectTunnel { deadline: Instant },
    ExpectHandshake { deadline: Instant },
    ExpectResponse { deadline: Instant },
    Idle { since: Instant },
}

/// Timeouts of one endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub handshake: Duration,
    pub request: Duration,
}

pub struct Conn {
    pub token: Token,
    pub endpoint: Endpoint,
    target: Target,
    proxy: Option<Proxy>,
    tls_config: Option<Arc<ClientConfig>>,
    timeouts: Timeouts,
    state: State,
    /// Registered with the poll whenever present.
    sock: Option<TcpStream>,
    tls: Option<ClientConnection>,
    /// Bytes for the raw socket (CONNECT, or plain-text requests).
    raw_out: Vec<u8>,
    raw_in: Vec<u8>,
    /// The request waiting for the connection to be ready.
    pending: Option<Vec<u8>>,
    /// (id, expects_response) of the request on this connection.
    current: Option<(u64, bool)>,
    decoder: ResponseDecoder,
    body: Vec<u8>,
    head: Vec<u8>,
    status: Option<u16>,
    /// The decoder finished the current response.
    complete: bool,
    close_after: bool,
    reused: bool,
    answered: bool,
    connect_attempt: usize,
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl Conn {
    pub fn new(
        token: Token,
        endpoint: Endpoint,
        target: Target,
        proxy: Option<Proxy>,
        tls_config: Option<Arc<ClientConfig>>,
        timeouts: Timeouts,
    ) -> Conn {
        Conn {
            token,
            endpoint,
            target,
            proxy,
            tls_config,
            timeouts,
            state: State::Free,
            sock: None,
            tls: None,
            raw_out: Vec::new(),
            raw_in: Vec::new(),
            pending: None,
            current: None,
            decoder: ResponseDecoder::new(Some(MAX_RESPONSE_BODY)),
            body: Vec::new(),
            head: Vec::new(),
            status: None,
            complete: false,
            close_after: false,
            reused: false,
            answered: false,
            connect_attempt: 0,
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// True when a request can be handed over now.
    pub fn is_available(&self) -> bool {
        matches!(self.state, State::Free | State::Idle { .. })
    }

    pub fn is_waiting_for_address(&self) -> bool {
        matches!(self.state, State::ExpectAddress { .. })
    }

    /// The name to resolve: the proxy's when there is one (the proxy
    /// resolves the target, like curl).
    pub fn dial_host(&self) -> &str {
        self.proxy.as_ref().map_or(&self.target.host, |p| &p.host)
    }

    fn dial_port(&self) -> u16 {
        self.proxy.as_ref().map_or(self.target.port, |p| p.port)
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Free => None,
            State::ExpectAddress { deadline }
            | State::ExpectConnect { deadline }
            | State::ExpectTunnel { deadline }
            | State::ExpectHandshake { deadline }
            | State::ExpectResponse { deadline } => Some(deadline),
            State::Idle { since } => Some(since + IDLE_LIMIT),
        }
    }

    /// Takes a request. On an idle connection it is written at once;
    /// otherwise the caller resolves [`Conn::dial_host`] and calls
    /// [`Conn::connect`].
    pub fn start(
        &mut self,
        req: Request,
        registry: &Registry,
        now: Instant,
    ) -> Option<(u64, Outcome)> {
        self.current = Some((req.id, req.expects_response));
        self.body.clear();
        self.head.clear();
        self.status = None;
        self.complete = false;
        self.answered = false;
        match self.state {
            State::Idle { since } if now.duration_since(since) < IDLE_LIMIT => {
                self.reused = true;
                self.send_request(req.bytes, now);
                self.drive(registry, now)
            }
            _ => {
                self.close(registry);
                self.reused = false;
                self.pending = Some(req.bytes);
                self.state = State::ExpectAddress {
                    deadline: now + self.timeouts.connect,
                };
                None
            }
        }
    }

    /// Starts the TCP connect once the address is known (or fails the
    /// request when it cannot be resolved).
    pub fn connect(
        &mut self,
        addrs: Result<Vec<IpAddr>, String>,
        registry: &Registry,
        now: Instant,
    ) -> Option<(u64, Outcome)> {
        let addrs = match addrs {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => return self.fail(registry, format!("{} has no address", self.dial_host())),
            Err(e) => return self.fail(registry, e),
        };
        // Rotate through the addresses over successive attempts.
        let ip = addrs[self.connect_attempt % addrs.len()];
        self.connect_attempt = self.connect_attempt.wrapping_add(1);
        let addr = SocketAddr::new(ip, self.dial_port());
        let mut sock = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.fail(registry, format!("connect {addr}: {e}")),
        };
        let _ = sock.set_nodelay(true);
        if let Err(e) = registry.register(
            &mut sock,
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.fail(registry, format!("register: {e}"));
        }
        self.sock = Some(sock);
        self.state = State::ExpectConnect {
            deadline: now + self.timeouts.connect,
        };
        None
    }

    fn send_request(&mut self, bytes: Vec<u8>, now: Instant) {
        self.state = State::ExpectResponse {
            deadline: now + self.timeouts.request,
        };
        match self.tls.as_mut() {
            Some(tls) => {
                // Cannot fail: the plaintext buffer is unlimited.
                let _ = tls.writer().write_all(&bytes);
            }
            None => self.raw_out.extend_from_slice(&bytes),
        }
    }

    /// The connection reached the point where requests may flow.
    fn tunnel_ready(&mut self, now: Instant) -> Result<(), String> {
        if self.target.tls {
            let config = self.tls_config.clone().ok_or("no TLS configuration")?;
            let name = ServerName::try_from(self.target.host.clone())
                .map_err(|_| format!("{:?} is not a valid TLS server name", self.target.host))?;
            let mut tls = ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
            // A series batch (~150 KB) exceeds the default 64 KiB plaintext
            // limit; the request is held in memory either way.
            tls.set_buffer_limit(None);
            self.tls = Some(tls);
            self.state = State::ExpectHandshake {
                deadline: now + self.timeouts.handshake,
            };
            if !self.raw_in.is_empty() {
                // Bytes the proxy relayed right after its reply.
                let early = std::mem::take(&mut self.raw_in);
                let mut slice = early.as_slice();
                if let Some(tls) = self.tls.as_mut() {
                    while !slice.is_empty() {
                        if tls.read_tls(&mut slice).map_err(|e| e.to_string())? == 0 {
                            break;
                        }
                    }
                }
            }
        } else if let Some(bytes) = self.pending.take() {
            self.send_request(bytes, now);
        }
        Ok(())
    }

    /// Readiness (or a fresh state): move as far as the socket allows.
    pub fn drive(&mut self, registry: &Registry, now: Instant) -> Option<(u64, Outcome)> {
        match self.step(now) {
            Ok(done) => {
                self.update_interest(registry);
                done
            }
            Err(_)
                if self.reused
                    && !self.answered
                    && matches!(self.state, State::ExpectResponse { .. }) =>
            {
                // The server dropped the kept-alive connection as we wrote.
                self.close(registry);
                let (id, _) = self.current.take()?;
                Some((id, Outcome::ClosedIdle))
            }
            Err(e) => self.fail(registry, e),
        }
    }

    fn step(&mut self, now: Instant) -> Result<Option<(u64, Outcome)>, String> {
        if self.sock.is_none() {
            return Ok(None);
        }
        if let State::ExpectConnect { .. } = self.state {
            let sock = self.sock.as_ref().ok_or("no socket")?;
            if let Ok(Some(e)) | Err(e) = sock.take_error() {
                return Err(format!("connect: {e}"));
            }
            match sock.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(None),
                Err(e) => return Err(format!("connect: {e}")),
            }
            // A TLS target is tunnelled through the proxy; a plain-http one
            // is asked of the proxy directly (absolute-form request line).
            match self.proxy.as_ref().filter(|_| self.target.tls) {
                Some(p) => {
                    proxy::write_connect(
                        &mut self.raw_out,
                        &self.target.host,
                        self.target.port,
                        p.authorization.as_ref().map(|a| a.expose()),
                    );
                    self.state = State::ExpectTunnel {
                        deadline: now + self.timeouts.handshake,
                    };
                }
                None => self.tunnel_ready(now)?,
            }
        }
        // Writes first: they may complete a handshake step.
        self.flush()?;
        let eof = self.read_all()?;
        if let State::ExpectTunnel { .. } = self.state {
            match proxy::parse_connect_reply(&self.raw_in) {
                Ok(ConnectReply::Partial) if eof => {
                    return Err("proxy closed during CONNECT".into())
                }
                Ok(ConnectReply::Partial) => return Ok(None),
                Ok(ConnectReply::Established(n)) => {
                    self.raw_in.drain(..n);
                    self.tunnel_ready(now)?;
                    self.flush()?;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if let State::ExpectHandshake { .. } = self.state {
            let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
            if !handshaking {
                if let Some(bytes) = self.pending.take() {
                    self.send_request(bytes, now);
                }
                self.flush()?;
            } else if eof {
                return Err("connection closed during the TLS handshake".into());
            }
        }
        let done = self.take_response(eof, now)?;
        if done.is_some() {
            return Ok(done);
        }
        if eof {
            if self.current.is_some() {
                return Err("connection closed".into());
            }
            self.drop_socket();
        }
        Ok(None)
    }

    fn flush(&mut self) -> Result<(), String> {
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        while !self.raw_out.is_empty() {
            match sock.write(&self.raw_out) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => {
                    self.bytes_out += n as u64;
                    self.raw_out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        // rustls output only once the raw (CONNECT) bytes are gone.
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                match tls.write_tls(sock) {
                    Ok(n) => self.bytes_out += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Reads until WouldBlock; returns true at end of stream. Plain-text
    /// bytes go to `raw_in` (tunnel reply) or the response decoder.
    fn read_all(&mut self) -> Result<bool, String> {
        let mut buf = [0u8; 8192];
        loop {
            let tunnel_open = !matches!(self.state, State::ExpectTunnel { .. });
            if let (Some(tls), Some(sock), true) =
                (self.tls.as_mut(), self.sock.as_mut(), tunnel_open)
            {
                let n = match tls.read_tls(sock) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read: {e}")),
                };
                self.bytes_in += n as u64;
                let state = match tls.process_new_packets() {
                    Ok(state) => state,
                    Err(e) => {
                        // Let the peer see our alert before we go.
                        let _ = tls.write_tls(sock);
                        return Err(format!("TLS: {e}"));
                    }
                };
                let mut plain = vec![0u8; state.plaintext_bytes_to_read()];
                let m = tls.reader().read(&mut plain).unwrap_or(0);
                let closed = n == 0 || state.peer_has_closed();
                let wants_write = tls.wants_write();
                self.take_plain(&plain[..m])?;
                if closed {
                    return Ok(true);
                }
                // Handshake replies must go out before more reading.
                if wants_write {
                    self.flush()?;
                }
            } else {
                let Some(sock) = self.sock.as_mut() else {
                    return Ok(true);
                };
                let n = match sock.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read: {e}")),
                };
                self.bytes_in += n as u64;
                if n == 0 {
                    return Ok(true);
                }
                if tunnel_open {
                    self.take_plain(&buf[..n])?;
                } else {
                    self.raw_in.extend_from_slice(&buf[..n]);
                    if self.raw_in.len() > 16 * 1024 {
                        return Err("proxy reply too large".into());
                    }
                    // The tunnel reply may be complete: let `step` look.
                    if matches!(
                        proxy::parse_connect_reply(&self.raw_in),
                        Ok(ConnectReply::Established(_))
                    ) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Response bytes: feed the decoder and remember the head.
    fn take_plain(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.answered = true;
        if self.current.is_none_or(|(_, expects)| !expects) {
            // Nobody asked (Graphite never answers): ignore.
            return Ok(());
        }
        if self.status.is_none() && self.head.len() < 16 * 1024 {
            self.head.extend_from_slice(bytes);
        }
        let mut input = bytes;
        loop {
            match self
                .decoder
                .feed(input, &mut self.body)
                .map_err(|e| format!("HTTP: {e}"))?
            {
                Progress::NeedMore => return Ok(()),
                Progress::Head(h) => {
                    self.status = Some(h.status);
                    self.close_after = h.close_after;
                }
                Progress::Done => {
                    self.complete = true;
                    return Ok(());
                }
            }
            input = &[];
        }
    }

    fn take_response(&mut self, eof: bool, now: Instant) -> Result<Option<(u64, Outcome)>, String> {
        let Some((id, expects)) = self.current else {
            return Ok(None);
        };
        if !matches!(self.state, State::ExpectResponse { .. }) {
            return Ok(None);
        }
        if !expects {
            let flushed =
                self.raw_out.is_empty() && self.tls.as_ref().is_none_or(|t| !t.wants_write());
            if flushed {
                self.current = None;
                self.state = State::Idle { since: now };
                return Ok(Some((id, Outcome::Sent)));
            }
            return Ok(None);
        }
        let complete = self.status.is_some() && self.complete;
        let complete = if !complete && eof && self.status.is_some() {
            match self.decoder.eof() {
                Ok(Progress::Done) => {
                    self.close_after = true;
                    true
                }
                _ => false,
            }
        } else {
            complete
        };
        if !complete {
            if eof && !self.answered && self.reused {
                self.current = None;
                self.drop_socket();
                return Ok(Some((id, Outcome::ClosedIdle)));
            }
            return Ok(None);
        }
        let status = self.status.unwrap_or(0);
        let retry_after = self.header_retry_after();
        self.current = None;
        if self.close_after || eof {
            self.drop_socket();
        } else {
            self.state = State::Idle { since: now };
        }
        Ok(Some((
            id,
            Outcome::Response {
                status,
                retry_after,
                body: std::mem::take(&mut self.body),
            },
        )))
    }

    fn header_retry_after(&self) -> Option<Duration> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(&self.head).ok()?;
        let find = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        parse_retry_after(find("retry-after")?, find("date"), unix_now)
    }

    fn update_interest(&mut self, registry: &Registry) {
        let wants_write = matches!(self.state, State::ExpectConnect { .. })
            || !self.raw_out.is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write());
        if let Some(sock) = self.sock.as_mut() {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = registry.reregister(sock, self.token, interest);
        }
    }

    /// Deadlines: a request that waited too long fails.
    pub fn check_timeout(&mut self, registry: &Registry, now: Instant) -> Option<(u64, Outcome)> {
        let what = match self.state {
            State::ExpectAddress { deadline } if deadline <= now => "resolving the address",
            State::ExpectConnect { deadline } if deadline <= now => "connecting",
            State::ExpectTunnel { deadline } if deadline <= now => "the proxy tunnel",
            State::ExpectHandshake { deadline } if deadline <= now => "the TLS handshake",
            State::ExpectResponse { deadline } if deadline <= now => "the response",
            State::Idle { since } if now.duration_since(since) >= IDLE_LIMIT => {
                self.close(registry);
                return None;
            }
            _ => return None,
        };
        self.fail(registry, format!("timed out waiting for {what}"))
    }

    fn fail(&mut self, registry: &Registry, why: String) -> Option<(u64, Outcome)> {
        self.close(registry);
        let (id, _) = self.current.take()?;
        let why = format!("{}:{}: {why}", self.target.host, self.target.port);
        Some((id, Outcome::Failed(why)))
    }

    fn drop_socket(&mut self) {
        // Deregistration happens implicitly when the fd closes.
        self.sock = None;
        self.tls = None;
        self.raw_out.clear();
        self.raw_in.clear();
        self.decoder = ResponseDecoder::new(Some(MAX_RESPONSE_BODY));
        self.state = State::Free;
    }

    /// The id of the request this connection carries, if any.
    pub fn current_id(&self) -> Option<u64> {
        self.current.map(|(id, _)| id)
    }

    /// Drops the current request unanswered and closes the connection, so
    /// the next request goes out on a fresh one; returns the request's id.
    pub fn abandon(&mut self, registry: &Registry) -> Option<u64> {
        self.close(registry);
        self.current.take().map(|(id, _)| id)
    }

    pub fn close(&mut self, registry: &Registry) {
        if let Some(sock) = self.sock.as_mut() {
            let _ = registry.deregister(sock);
        }
        self.pending = None;
        self.drop_socket();
    }
}
