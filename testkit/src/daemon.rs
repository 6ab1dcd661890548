//! A fake Docker daemon on a unix socket.
//!
//! One [`FakeDaemon`] serves the reply shapes of three releases ([`Flavor`]):
//! Docker 20.10 for the benches and the tests that need every
//! [`ContainerInfo`] field to survive list and inspect, Docker 1.7 and 29 for
//! the tests of what the machine's real daemon can't produce (old and new
//! API versions, plain-text errors, event shapes). Its [`DaemonState`] is
//! scripted while it runs: containers come and go (announced on `/events`
//! or not), and faults are switched on and off (dripped replies, closed
//! connections, garbage, failing lists, containers that vanish between list
//! and inspect). Every request line is recorded with its `Host` header.

use crate::replies::{self, JSON, TEXT};
use outlyer_agent::registry::ContainerInfo;
use std::collections::HashSet;
use std::io::{self, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Which Docker release the daemon imitates (docs/compat.md §1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    /// Docker 20.10.24, API 1.41: any `/v<x.y>/` prefix is served, JSON
    /// errors, the events head at once; list and inspect bodies carry every
    /// [`ContainerInfo`] field (labels, env tags, networks, paused state,
    /// cgroup parent) and parse back to it.
    Docker2010,
    /// Docker 1.7.1, API 1.19 (min 1.12): no MinAPIVersion, old shapes,
    /// plain-text errors, events without status line until the first event.
    Docker17,
    /// Docker 29.3, API 1.56 (min 1.40): no top-level IPAddress, events only
    /// Type/Action/Actor, JSON errors.
    Docker29,
}

impl Flavor {
    /// The API versions `(min, max)` a `/v<x.y>/` prefix must fall in
    /// (others get a 400); `None`: any is served.
    pub fn api_range(self) -> Option<((u32, u32), (u32, u32))> {
        match self {
            Flavor::Docker2010 => None,
            Flavor::Docker17 => Some(((1, 12), (1, 19))),
            Flavor::Docker29 => Some(((1, 40), (1, 56))),
        }
    }
}

/// One request the daemon read: its request line and `Host` header.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub line: String,
    pub host: Option<String>,
}

/// The path of a request line, without the query (`/v1.19/containers/json`).
pub fn path_of(request_line: &str) -> String {
    let target = request_line.split(' ').nth(1).unwrap_or("");
    target.split('?').next().unwrap_or("").to_string()
}

struct Subscriber {
    stream: UnixStream,
    headers_sent: bool,
    chunked: bool,
}

/// What the daemon serves and how; change it with [`FakeDaemon::with`].
pub struct DaemonState {
    pub flavor: Flavor,
    /// Listed and inspected, in this order.
    pub containers: Vec<ContainerInfo>,
    /// Write every reply (and event) one byte at a time.
    pub drip: bool,
    /// Close every connection right after a reply, without announcing it
    /// (an idle keep-alive connection dropped by the daemon).
    pub close_after_reply: bool,
    /// Answer every request with garbage and close.
    pub garbage: bool,
    /// Answer the next N `/containers/json` with a 500.
    pub fail_lists: u32,
    /// Ids listed, but whose inspect answers 404 (removed between list and inspect).
    pub vanished: HashSet<String>,
    /// Connections accepted so far.
    pub connections: u32,
    /// Garbage replies sent so far.
    pub garbage_sent: u32,
    requests: Vec<Recorded>,
    lists: usize,
    subscribers: Vec<Subscriber>,
}

struct Shared {
    state: Mutex<DaemonState>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, DaemonState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake Docker daemon on a unix socket in a temp dir: `GET` (or `HEAD`)
/// `/_ping`, `/version`, `/info`, `/containers/json`, `/containers/<id or
/// name or unique id prefix>/json` and `/events` (the head, then the events
/// sent with [`FakeDaemon::emit`]), versioned or not. Keep-alive, unless the
/// client asks for `close` (HTTP/1.0, `Connection: close`); bodies over
/// 2 KiB are chunked like Go's `net/http`. Anything else gets a 404, a head
/// over 64 KiB a 400. One thread accepts, one serves each connection; all
/// stop on drop, which also ends the open events streams.
pub struct FakeDaemon {
    dir: PathBuf,
    socket: PathBuf,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// How long a connection thread blocks in `read` before looking at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// A request head larger than this is refused (400) and the connection closed.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The body of a failing list.
const LIST_FAILURE: &str = "Cannot list containers: devmapper: Unknown device 0e34";

impl FakeDaemon {
    /// A Docker 20.10 daemon serving `containers`.
    pub fn start(containers: Vec<ContainerInfo>) -> io::Result<FakeDaemon> {
        FakeDaemon::start_as(Flavor::Docker2010, containers)
    }

    /// Listens at `<temp dir>/outlyer-fakedocker-<pid>-<n>/docker.sock`.
    pub fn start_as(flavor: Flavor, containers: Vec<ContainerInfo>) -> io::Result<FakeDaemon> {
        let n = crate::next_seq();
        let dir =
            std::env::temp_dir().join(format!("outlyer-fakedocker-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("docker.sock");
        let listener = UnixListener::bind(&socket)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(DaemonState {
                flavor,
                containers,
                drip: false,
                close_after_reply: false,
                garbage: false,
                fail_lists: 0,
                vanished: HashSet::new(),
                connections: 0,
                garbage_sent: 0,
                requests: Vec::new(),
                lists: 0,
                subscribers: Vec::new(),
            }),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("fake-docker".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    s.lock().connections += 1;
                    let s2 = s.clone();
                    let worker = std::thread::Builder::new()
                        .name("fake-docker-conn".into())
                        .spawn(move || serve_connection(conn, &s2));
                    if let (Ok(w), Ok(mut ws)) = (worker, s.workers.lock()) {
                        ws.push(w);
                    }
                }
            })?;
        Ok(FakeDaemon {
            dir,
            socket,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The socket to pass as `--docker-socket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Reads or changes what the daemon serves.
    pub fn with<R>(&self, f: impl FnOnce(&mut DaemonState) -> R) -> R {
        f(&mut self.shared.lock())
    }

    pub fn flavor(&self) -> Flavor {
        self.with(|s| s.flavor)
    }

    /// Requests read so far (all connections, all paths).
    pub fn requests(&self) -> usize {
        self.with(|s| s.requests.len())
    }

    /// The requests read so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    /// `/containers/json` requests answered so far (failed ones included).
    pub fn lists(&self) -> usize {
        self.with(|s| s.lists)
    }

    /// Connections that asked for `/events` (until a write to them fails).
    pub fn subscribers(&self) -> usize {
        self.with(|s| s.subscribers.len())
    }

    /// Serves one more container (no event: see [`FakeDaemon::emit`]).
    pub fn add(&self, c: ContainerInfo) {
        self.with(|s| s.containers.push(c));
    }

    /// Stops serving the container with this id (no event).
    pub fn remove(&self, id: &str) -> Option<ContainerInfo> {
        self.with(|s| {
            let i = s.containers.iter().position(|c| c.id == id)?;
            Some(s.containers.remove(i))
        })
    }

    /// Sends the flavor's event line for `action` (`create`, `start`,
    /// `die`, `destroy`, …) on container `c` to every subscriber.
    pub fn emit(&self, c: &ContainerInfo, action: &str) {
        let line = replies::event(self.flavor(), c, action);
        self.emit_raw(&line);
    }

    /// Sends `line` as one event (one chunk) to every subscriber, after
    /// the head if the flavor (1.7) had not sent it yet.
    pub fn emit_raw(&self, line: &str) {
        let mut s = self.shared.lock();
        let (flavor, drip) = (s.flavor, s.drip);
        let stop = &self.shared.stop;
        s.subscribers.retain_mut(|sub| {
            let mut out = Vec::new();
            if !sub.headers_sent {
                out.extend_from_slice(&replies::events_head(flavor, sub.chunked));
                sub.headers_sent = true;
            }
            if sub.chunked {
                out.extend_from_slice(format!("{:x}\r\n", line.len()).as_bytes());
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(line.as_bytes());
            }
            write_out(&mut sub.stream, &out, drip, stop).is_ok()
        });
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor out of `accept`; if that fails it is left detached.
        if UnixStream::connect(&self.socket).is_ok() {
            if let Some(a) = self.acceptor.take() {
                let _ = a.join();
            }
        }
        // End the events streams (the connection threads hold no other copy).
        for sub in self.shared.lock().subscribers.drain(..) {
            let _ = sub.stream.shutdown(std::net::Shutdown::Both);
        }
        let workers = match self.shared.workers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => Vec::new(),
        };
        for w in workers {
            let _ = w.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `bytes`, one at a time with `drip` (giving up once stopped).
fn write_out(
    stream: &mut UnixStream,
    bytes: &[u8],
    drip: bool,
    stop: &AtomicBool,
) -> io::Result<()> {
    if !drip {
        return stream.write_all(bytes);
    }
    for b in bytes {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("daemon stopped"));
        }
        stream.write_all(std::slice::from_ref(b))?;
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

/// Reads `conn` into `buf`; `Ok(false)` on EOF or stop.
fn read_some(conn: &mut UnixStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

enum Next {
    Keep,
    Close,
    /// The connection became an events subscriber: keep it open, send nothing.
    Subscribed,
}

fn serve_connection(mut conn: UnixStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(POLL));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > MAX_HEAD {
                let flavor = shared.lock().flavor;
                let _ = conn.write_all(&replies::reply(
                    flavor,
                    "400 Bad Request",
                    TEXT,
                    b"400 Bad Request",
                    true,
                ));
                return;
            }
            match read_some(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => continue,
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("");
        let mut parts = line.split(' ');
        let (method, target, proto) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let mut body_len = 0usize;
        let mut host = None;
        let mut close = proto != "HTTP/1.1";
        for h in lines {
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                body_len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("host") {
                host = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        // A request body (never sent by the agent) is read and dropped.
        while buf.len() < body_len {
            match read_some(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => {}
                _ => return,
            }
        }
        buf.drain(..body_len);
        shared.lock().requests.push(Recorded {
            line: line.to_string(),
            host,
        });
        match respond(shared, &mut conn, method, target, close) {
            Next::Keep => {}
            Next::Close => return,
            Next::Subscribed => {
                // Clients send nothing more on an events stream: hold it
                // until the client leaves or the daemon stops.
                let mut sink = Vec::new();
                while let Ok(true) = read_some(&mut conn, &mut sink, &shared.stop) {
                    sink.clear();
                }
                return;
            }
        }
    }
}

/// Splits `/v1.19/containers/json` into `(Some((1, 19)), "/containers/json")`
/// (docs/compat.md §1.2: `/v<x.y>/x` and `/x` are the same route); a version
/// that does not parse as `major[.minor]` is ignored.
fn split_version(path: &str) -> (Option<(u32, u32)>, String) {
    let Some((ver, rest)) = path.strip_prefix("/v").and_then(|p| p.split_once('/')) else {
        return (None, path.to_string());
    };
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return (None, path.to_string());
    }
    let (major, minor) = ver.split_once('.').unwrap_or((ver, "0"));
    let version = major.parse().ok().zip(minor.parse().ok());
    (version, format!("/{rest}"))
}

enum Lookup<'a> {
    Found(&'a ContainerInfo),
    Ambiguous,
    Missing,
}

/// By full id or name, else by a unique id prefix.
fn lookup<'a>(containers: &'a [ContainerInfo], key: &str) -> Lookup<'a> {
    if let Some(c) = containers.iter().find(|c| c.id == key || c.name == key) {
        return Lookup::Found(c);
    }
    let mut by_prefix = containers.iter().filter(|c| c.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(c), None) => Lookup::Found(c),
        (Some(_), Some(_)) => Lookup::Ambiguous,
        (None, _) => Lookup::Missing,
    }
}

fn respond(
    shared: &Shared,
    conn: &mut UnixStream,
    method: &str,
    target: &str,
    close: bool,
) -> Next {
    let mut s = shared.lock();
    let (flavor, drip) = (s.flavor, s.drip);
    let keep_open = !close && !s.close_after_reply;
    if s.garbage {
        let g = replies::GARBAGE[(s.garbage_sent % 3) as usize];
        s.garbage_sent += 1;
        drop(s);
        let _ = write_out(conn, g, drip, &shared.stop);
        return Next::Close;
    }
    let (version, route) = split_version(target.split('?').next().unwrap_or(""));
    let refused = version.and_then(|v| replies::version_refused(flavor, v));
    let out = if method != "GET" && method != "HEAD" {
        replies::page_not_found(flavor, close)
    } else if let Some(message) = refused {
        replies::error(flavor, "400 Bad Request", &message, close)
    } else {
        match route.as_str() {
            "/_ping" => replies::reply(flavor, "200 OK", TEXT, b"OK", close),
            "/version" => replies::reply(
                flavor,
                "200 OK",
                JSON,
                replies::version(flavor).as_bytes(),
                close,
            ),
            "/info" => {
                let body = replies::info(flavor, &s.containers);
                replies::reply(flavor, "200 OK", JSON, body.as_bytes(), close)
            }
            "/containers/json" => {
                s.lists += 1;
                if s.fail_lists > 0 {
                    s.fail_lists -= 1;
                    replies::error(flavor, "500 Internal Server Error", LIST_FAILURE, close)
                } else {
                    let body = replies::list(flavor, &s.containers);
                    replies::reply(flavor, "200 OK", JSON, body.as_bytes(), close)
                }
            }
            "/events" => {
                let Ok(stream) = conn.try_clone() else {
                    return Next::Close;
                };
                let mut sub = Subscriber {
                    stream,
                    headers_sent: false,
                    chunked: !close,
                };
                // Docker 1.7/1.8 send nothing until the first event; 1.9+
                // flush the status line and headers at once.
                if flavor != Flavor::Docker17 {
                    let head = replies::events_head(flavor, sub.chunked);
                    if write_out(&mut sub.stream, &head, drip, &shared.stop).is_err() {
                        return Next::Close;
                    }
                    sub.headers_sent = true;
                }
                s.subscribers.push(sub);
                return Next::Subscribed;
            }
            _ => {
                let key = route
                    .strip_prefix("/containers/")
                    .and_then(|r| r.strip_suffix("/json"))
                    .filter(|k| !k.is_empty() && !k.contains('/'));
                match key.map(|k| (k, lookup(&s.containers, k))) {
                    None => replies::page_not_found(flavor, close),
                    Some((_, Lookup::Found(c))) if !s.vanished.contains(&c.id) => {
                        let body = replies::inspect(flavor, c);
                        replies::reply(flavor, "200 OK", JSON, body.as_bytes(), close)
                    }
                    Some((key, Lookup::Ambiguous)) => replies::error(
                        flavor,
                        "400 Bad Request",
                        &format!("multiple IDs found with provided prefix: {key}"),
                        close,
                    ),
                    Some((key, _)) => replies::error(
                        flavor,
                        "404 Not Found",
                        &replies::no_such_container(flavor, key),
                        close,
                    ),
                }
            }
        }
    };
    drop(s);
    let out = if method == "HEAD" {
        replies::head_part(out)
    } else {
        out
    };
    if write_out(conn, &out, drip, &shared.stop).is_err() || !keep_open {
        return Next::Close;
    }
    Next::Keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replies::{fake_inspect, rfc3339_nano};
    use crate::{SyntheticHost, TreeLayout, TreeOptions};
    use outlyer_agent::docker::api::{parse_container_list, parse_info, parse_inspect};
    use outlyer_agent::docker::version::parse_version_body;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn synthetic(n: usize) -> Vec<ContainerInfo> {
        let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, n)).unwrap();
        (0..n).map(|i| host.container_info(i)).collect()
    }

    fn odd_container() -> ContainerInfo {
        ContainerInfo {
            id: "ab".repeat(32),
            name: "odd \"one\"\\".into(),
            image: "registry.example:5000/team/app:1.2".into(),
            labels: vec![
                ("a".into(), "line\nbreak\ttab".into()),
                ("b".into(), String::new()),
            ],
            env_tags: vec!["prod".into(), "shop".into()],
            pid: 4242,
            network_mode: "shop_default".into(),
            ips: vec!["10.0.0.2".into(), "10.0.1.2".into()],
            started_at: 1_795_561_048.25,
            cgroup_parent: "/custom-parent".into(),
            fingerprint: String::new(),
            paused: true,
            ..Default::default()
        }
    }

    /// Reads one reply (Content-Length or chunked) from a kept-alive connection.
    fn read_reply(s: &mut UnixStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut b = [0u8; 8192];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = s.read(&mut b).unwrap();
            assert!(n > 0, "EOF before a head");
            buf.extend_from_slice(&b[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        let mut rest = buf[end + 4..].to_vec();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                })
                .map(|(_, v)| v.trim().to_string())
        };
        let mut fill = |rest: &mut Vec<u8>, want: usize| {
            while rest.len() < want {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "EOF inside a body");
                rest.extend_from_slice(&b[..n]);
            }
        };
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().unwrap();
            fill(&mut rest, len);
            assert_eq!(rest.len(), len, "bytes after a Content-Length body");
            return (head, rest);
        }
        assert_eq!(
            header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{head}"
        );
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                let want = rest.len() + 1;
                fill(&mut rest, want);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            fill(&mut rest, line_end + 2 + size + 2);
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            assert_eq!(&rest[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            rest.drain(..line_end + 4 + size);
            if size == 0 {
                assert!(rest.is_empty(), "bytes after the last chunk");
                return (head, body);
            }
        }
    }

    fn get(s: &mut UnixStream, path: &str) -> (String, Vec<u8>) {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes())
            .unwrap();
        read_reply(s)
    }

    #[test]
    fn inspect_and_list_bodies_parse_back_to_the_container_info() {
        let mut all = synthetic(3);
        all.push(odd_container());
        let mut host_mode = synthetic(1).remove(0);
        host_mode.network_mode = "host".into();
        all.push(host_mode);
        let mut shared_net = odd_container();
        shared_net.id = "cd".repeat(32);
        shared_net.network_mode = format!("container:{}", "ab".repeat(32));
        shared_net.ips.clear();
        shared_net.env_tags = vec!["staging".into()];
        all.push(shared_net);
        for c in &all {
            let got = parse_inspect(fake_inspect(c).as_bytes()).unwrap();
            assert!(got.running);
            assert_eq!(got.hostname, c.short_id());
            let want = ContainerInfo {
                fingerprint: got.info.fingerprint.clone(),
                ..c.clone()
            };
            assert_eq!(got.info, want);
        }
        let body = replies::list(Flavor::Docker2010, &all).into_bytes();
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), all.len());
        for (l, c) in listed.iter().zip(&all) {
            assert_eq!(l.id, c.id);
            assert_eq!(l.name(), Some(c.name.as_str()));
            assert_eq!(l.labels, c.labels);
            let state = if c.paused { "paused" } else { "running" };
            assert_eq!(l.state.as_deref(), Some(state));
        }
        let body = replies::info(Flavor::Docker2010, &all).into_bytes();
        let info = parse_info(&body).unwrap();
        assert_eq!(info.name.as_deref(), Some("synthetic-host"));
        assert!(info.id.is_some_and(|id| !id.is_empty()));
    }

    #[test]
    fn serves_a_kept_alive_connection_and_an_open_events_stream() {
        let containers = synthetic(40);
        let daemon = FakeDaemon::start(containers.clone()).unwrap();
        let mut s = UnixStream::connect(daemon.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        let (head, body) = get(&mut s, "/_ping");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, b"OK");
        let (head, body) = get(&mut s, "/version");
        assert!(head.contains("Api-Version: 1.41"), "{head}");
        assert!(head.contains("Content-Length:"), "{head}");
        let v = parse_version_body(&body).unwrap();
        assert_eq!(v.negotiated().to_string(), "1.41");
        // The whole list is over 2 KiB: chunked, like Go's net/http.
        let (head, body) = get(&mut s, "/v1.41/containers/json?all=0");
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), 40);
        assert_eq!(daemon.lists(), 1);
        // Inspect by full id, by short id, by name.
        let c = &containers[17];
        for key in [c.id.as_str(), c.name.as_str()] {
            let (head, body) = get(&mut s, &format!("/v1.41/containers/{key}/json"));
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            let got = parse_inspect(&body).unwrap();
            assert_eq!(got.info.id, c.id);
            assert_eq!(got.info.pid, c.pid);
        }
        // Synthetic ids share their first 12 digits: a short id is ambiguous.
        let (head, _) = get(&mut s, &format!("/v1.41/containers/{}/json", c.short_id()));
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        let (head, body) = get(&mut s, &format!("/containers/{}/json", &c.id[..20]));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(parse_inspect(&body).unwrap().info.id, c.id);
        let (head, body) = get(&mut s, "/v1.41/containers/nope/json");
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert_eq!(body, b"{\"message\":\"No such container: nope\"}\n");
        for odd in [
            "/v1.41/containers//json",
            "/v1.41/nothing",
            "/containers/a/b/json",
            "/",
            "*",
        ] {
            let (head, _) = get(&mut s, odd);
            assert!(
                head.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{odd}: {head}"
            );
        }
        s.write_all(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        assert!(read_reply(&mut s).0.starts_with("HTTP/1.1 404"));
        // Still the same connection: it answers after all of the above.
        assert_eq!(get(&mut s, "/_ping").1, b"OK");
        assert_eq!(daemon.requests(), 15);

        let mut ev = UnixStream::connect(daemon.socket()).unwrap();
        ev.write_all(b"GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n")
            .unwrap();
        ev.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = ev.read(&mut b).unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..n]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Transfer-Encoding: chunked")
        );
        assert!(
            head.ends_with("\r\n\r\n"),
            "nothing after the head: {head:?}"
        );
        ev.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let e = ev.read(&mut b).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );

        // A garbage head, then an oversized one: answered or closed, never a crash.
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        g.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        assert!(read_reply(&mut g).0.starts_with("HTTP/1.1 404"));
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = g.write_all(&vec![b'x'; MAX_HEAD + 10]);
        let mut rest = Vec::new();
        let _ = g.read_to_end(&mut rest);
        assert!(
            rest.starts_with(b"HTTP/1.1 400"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );

        let socket = daemon.socket().to_path_buf();
        let t = std::time::Instant::now();
        drop(daemon);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "stopping took {:?}",
            t.elapsed()
        );
        assert!(!socket.exists());
        // The events stream ends when the daemon stops.
        ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(ev.read(&mut b).unwrap(), 0);
    }

    /// The union of both former fakes: events sent on a 20.10 stream, a
    /// failing list, a vanished container, HEAD, recorded request lines.
    #[test]
    fn scripted_events_and_faults_in_the_2010_shapes() {
        use outlyer_agent::docker::events::{parse_event_line, EventAction};
        let containers = synthetic(2);
        let daemon = FakeDaemon::start(Vec::new()).unwrap();
        let mut s = UnixStream::connect(daemon.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut ev = UnixStream::connect(daemon.socket()).unwrap();
        ev.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ev.write_all(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = ev.read(&mut b).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&b[..n]);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while daemon.subscribers() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(daemon.subscribers(), 1);

        daemon.add(containers[0].clone());
        daemon.emit(&containers[0], "start");
        got.clear();
        while !got.ends_with(b"\n\r\n") {
            let n = ev.read(&mut b).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8(got.clone()).unwrap();
        let (size, rest) = text.split_once("\r\n").unwrap();
        let line = &rest[..usize::from_str_radix(size, 16).unwrap()];
        let e = parse_event_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(e.action, EventAction::Start);
        assert_eq!(e.id, containers[0].id);
        assert_eq!(e.name.as_deref(), Some(containers[0].name.as_str()));
        assert!(line.contains(r#""status":"start""#), "{line}");

        daemon.with(|st| st.fail_lists = 1);
        let (head, body) = get(&mut s, "/v1.41/containers/json");
        assert!(head.starts_with("HTTP/1.1 500 "), "{head}");
        assert!(body.starts_with(b"{\"message\":"));
        let (_, body) = get(&mut s, "/v1.41/containers/json");
        assert_eq!(parse_container_list(&body).unwrap().len(), 1);
        assert_eq!(daemon.lists(), 2);

        daemon.with(|st| st.vanished.insert(containers[0].id.clone()));
        let (head, _) = get(&mut s, &format!("/containers/{}/json", containers[0].id));
        assert!(head.starts_with("HTTP/1.1 404 "), "{head}");

        s.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut b[..1]).unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..1]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(get(&mut s, "/_ping").1, b"OK");

        let recorded = daemon.recorded();
        assert_eq!(recorded.len(), daemon.requests());
        assert_eq!(path_of(&recorded[0].line), "/v1.41/events");
        assert!(recorded.iter().all(|r| r.host.as_deref() == Some("docker")));
        assert_eq!(
            daemon.remove(&containers[0].id).map(|c| c.id),
            Some(containers[0].id.clone())
        );
        assert_eq!(daemon.with(|st| st.containers.len()), 0);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_nano(0.0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(1_795_561_048.25), "2026-11-24T22:57:28.25Z");
        assert_eq!(outlyer_agent::time::civil_from_days(0), (1970, 1, 1));
        assert_eq!(outlyer_agent::time::civil_from_days(19_782), (2024, 2, 29));
    }
}
