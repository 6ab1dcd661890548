//! The uploader over real loopback sockets: a fake backend (rustls server,
//! certificates made here with rcgen) recording every request, a fake
//! HTTP CONNECT proxy, a fake nameserver, and the failure matrix that needs
//! real sockets (certificates, silent servers, proxies, a short outage).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::upload::{Endpoint, HostIdentity, UploadSettings, Uploader};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const KEY: &str = "s3cret-agent-key";
const FIRST_TOKEN: usize = 100;

// ---------------------------------------------------------------- certificates

struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

/// A CA and a leaf for `names`, signed by it.
fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: leaf_key.serialize_der(),
    }
}

/// A self-signed leaf for `names` (no CA anyone trusts).
fn self_signed(names: &[&str]) -> Pki {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pki {
        ca_pem: String::new(),
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
    }
}

/// A TLS server on a loopback port that completes every handshake, hands
/// each decrypted read to `on_bytes` and never answers. Returns the port.
fn tls_sink(pki: &Pki, on_bytes: impl Fn(&[u8]) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = server_config(pki);
    let on_bytes = Arc::new(on_bytes);
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let (cfg, on_bytes) = (cfg.clone(), on_bytes.clone());
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    on_bytes(&buf[..n]);
                }
            });
        }
    });
    port
}

fn server_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        pki.chain.clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
    )
    .unwrap();
    Arc::new(cfg)
}

// ---------------------------------------------------------------- fake backend

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Responder = dyn FnMut(&Recorded) -> (u16, Vec<(String, String)>, Vec<u8>) + Send;

struct Backend {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    handshake_failures: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

impl Backend {
    fn start(pki: &Pki, responder: Box<Responder>) -> Backend {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), pki, responder)
    }

    fn start_on(listener: TcpListener, pki: &Pki, responder: Box<Responder>) -> Backend {
        let addr = listener.local_addr().unwrap();
        let cfg = server_config(pki);
        let log = Arc::new(Mutex::new(Vec::new()));
        let responder = Arc::new(Mutex::new(responder));
        let connections = Arc::new(AtomicUsize::new(0));
        let handshake_failures = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, c2, h2, s2) = (
            log.clone(),
            connections.clone(),
            handshake_failures.clone(),
            stop.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c2.fetch_add(1, Ordering::SeqCst);
                let (cfg, log, responder, hf) =
                    (cfg.clone(), l2.clone(), responder.clone(), h2.clone());
                thread::spawn(move || serve(stream, cfg, log, responder, hf));
            }
        });
        Backend {
            addr,
            log,
            connections,
            handshake_failures,
            stop,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    log: Arc<Mutex<Vec<Recorded>>>,
    responder: Arc<Mutex<Box<Responder>>>,
    handshake_failures: Arc<AtomicUsize>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let conn = rustls::ServerConnection::new(cfg).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            handshake_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        // One request: head, then Content-Length bytes of body.
        let (rec, used) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if buf.len() >= n + len {
                    break (
                        Recorded {
                            method: req.method.unwrap().to_string(),
                            path: req.path.unwrap().to_string(),
                            headers,
                            body: buf[n..n + len].to_vec(),
                            at: Instant::now(),
                        },
                        n + len,
                    );
                }
            }
            match tls.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        buf.drain(..used);
        log.lock().unwrap().push(rec.clone());
        let (status, mut headers, body) = (responder.lock().unwrap())(&rec);
        // `X-Test-Close` (not sent): hang up after this response without
        // announcing it, like a server whose keep-alive timer just fired.
        let hang_up = headers.iter().any(|(k, _)| k == "X-Test-Close");
        headers.retain(|(k, _)| k != "X-Test-Close");
        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        if tls.write_all(&bytes).and_then(|_| tls.flush()).is_err() || hang_up {
            return;
        }
    }
}

fn ok_responder() -> Box<Responder> {
    Box::new(|r: &Recorded| {
        let body = if r.method == "GET" {
            b"[]".to_vec()
        } else {
            Vec::new()
        };
        (200, vec![], body)
    })
}

// ---------------------------------------------------------------- fake proxy

/// (CONNECT target, Proxy-Authorization) of every tunnel asked for.
type Tunnels = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct FakeProxy {
    addr: SocketAddr,
    seen: Tunnels,
}

/// A CONNECT proxy that sends every tunnel to `backend` whatever the name
/// (it "resolves" names the agent cannot). With `auth`, other credentials
/// get 407.
fn start_proxy(backend: SocketAddr, auth: Option<&'static str>) -> FakeProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let seen = s2.clone();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                let (target, got_auth) = loop {
                    let Ok(n) = client.read(&mut b) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&b[..n]);
                    let mut headers = [httparse::EMPTY_HEADER; 16];
                    let mut req = httparse::Request::new(&mut headers);
                    if let Ok(httparse::Status::Complete(_)) = req.parse(&buf) {
                        assert_eq!(req.method, Some("CONNECT"));
                        let a = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
                            .map(|h| String::from_utf8_lossy(h.value).into_owned());
                        break (req.path.unwrap().to_string(), a);
                    }
                };
                seen.lock().unwrap().push((target, got_auth.clone()));
                if auth.is_some() && got_auth.as_deref() != auth {
                    let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let Ok(upstream) = TcpStream::connect(backend) else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let mut upstream = upstream;
                thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                });
                let _ = std::io::copy(&mut client, &mut upstream);
            });
        }
    });
    FakeProxy { addr, seen }
}

// ---------------------------------------------------------------- fake nameserver

/// Answers A queries for every name with 127.0.0.1 (TTL 60), counting them.
fn start_nameserver() -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            c2.fetch_add(1, Ordering::SeqCst);
            let q = &buf[..n];
            let mut r = q.to_vec();
            r[2] |= 0x80;
            r[3] = 0x80;
            let is_a = q[n - 4..n - 2] == [0, 1];
            if is_a {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (addr, count)
}

// ---------------------------------------------------------------- the agent side

struct TempFiles(PathBuf);

impl TempFiles {
    fn new(tag: &str) -> TempFiles {
        let p = std::env::temp_dir().join(format!(
            "upl-{tag}-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempFiles(p)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(
    tmp: &TempFiles,
    server: &str,
    ca_pem: &str,
    extra: &[(&str, String)],
) -> UploadSettings {
    let mut vars: Vec<(String, String)> = vec![
        ("DATALOOP_AGENT_KEY".into(), KEY.into()),
        ("DATALOOP_SERVER".into(), server.into()),
        (
            "DATALOOP_SERIES_URL".into(),
            format!("{server}/v2/accounts/acme/series"),
        ),
    ];
    if !ca_pem.is_empty() {
        vars.push(("DATALOOP_CA_FILE".into(), tmp.write("ca.pem", ca_pem)));
    }
    for (k, v) in extra {
        vars.retain(|(n, _)| n != k);
        vars.push((k.to_string(), v.clone()));
    }
    let mut s =
        UploadSettings::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap()
            .unwrap();
    s.connect_timeout = Duration::from_secs(2);
    s.handshake_timeout = Duration::from_millis(800);
    s.request_timeout = Duration::from_secs(3);
    s.hosts_file = PathBuf::from(tmp.write("hosts", "127.0.0.1 localhost\n"));
    // No nameserver unless a test provides one: names outside the hosts
    // file must not leak to the machine's resolver.
    s.nameservers = Some(vec![]);
    s
}

fn host() -> HostIdentity {
    outlyer_testkit::sample_host()
}

fn container(n: u8) -> ContainerInfo {
    outlyer_testkit::sample_container(n)
}

struct Agent {
    poll: Poll,
    up: Uploader,
}

impl Agent {
    fn new(s: UploadSettings) -> Agent {
        let poll = Poll::new().unwrap();
        let up = Uploader::new(s, host(), FIRST_TOKEN, Instant::now()).unwrap();
        Agent { poll, up }
    }

    /// Runs the loop until `done` or `limit`; true when `done`.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Uploader) -> bool) -> bool {
        let start = Instant::now();
        let mut events = Events::with_capacity(64);
        loop {
            if done(&self.up) {
                return true;
            }
            let now = Instant::now();
            if now - start > limit {
                return false;
            }
            let timeout = self
                .up
                .next_deadline()
                .map_or(Duration::from_millis(50), |d| {
                    d.saturating_duration_since(now)
                })
                .min(Duration::from_millis(50));
            self.poll.poll(&mut events, Some(timeout)).unwrap();
            let now = Instant::now();
            for ev in events.iter() {
                assert!(self.up.owns(ev.token()), "foreign token {:?}", ev.token());
                self.up.ready(self.poll.registry(), ev.token(), now);
            }
            self.up.tick(self.poll.registry(), now);
        }
    }

    fn push_cycle(&mut self, fingers: &[String], unix: f64) {
        let paths = ["base.cpu", "base.memory", "base.vmem.used"];
        let list: Vec<(&str, &str, f64)> = fingers
            .iter()
            .flat_map(|f| paths.iter().map(move |p| (f.as_str(), *p, 2.5)))
            .collect();
        self.up.push_samples(unix, list);
    }
}

fn series_samples(reqs: &[Recorded]) -> usize {
    reqs.iter()
        .filter(|r| r.path.ends_with("/series") && r.method == "POST")
        .map(|r| {
            String::from_utf8_lossy(&r.body)
                .matches("\"name\":")
                .count()
        })
        .sum()
}

// ---------------------------------------------------------------- tests

#[test]
fn registers_tags_and_ships_over_tls_with_keep_alive() {
    let tmp = TempFiles::new("happy");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    assert!(agent.run_until(Duration::from_secs(5), |_| !backend.requests().is_empty()));

    let c = container(1);
    let started = Instant::now();
    agent
        .up
        .container_started(&c, vec!["nginx:2".into()], started);
    let ping_path = format!("/agents/{}/ping", c.fingerprint);
    assert!(agent.run_until(Duration::from_secs(5), |_| {
        backend.requests().iter().any(|r| r.path == ping_path)
    }));
    let ping = backend
        .requests()
        .into_iter()
        .find(|r| r.path == ping_path)
        .unwrap();
    assert!(
        ping.at - started < Duration::from_secs(1),
        "registered {:?} after start",
        ping.at - started
    );

    let fingers = vec![c.fingerprint.clone(), host().finger];
    for cycle in 0..3 {
        agent.push_cycle(&fingers, 1_700_000_000.0 + f64::from(cycle) * 10.0);
        assert!(agent.run_until(Duration::from_secs(5), |up| {
            let c = up.core().counts(Endpoint::Series).unwrap();
            c.buffered == 0
        }));
    }
    let reqs = backend.requests();
    assert_eq!(series_samples(&reqs), 3 * 2 * 3);
    let counts = agent.up.core().counts(Endpoint::Series).unwrap();
    assert_eq!((counts.produced, counts.delivered), (18, 18));
    assert!(reqs
        .iter()
        .any(|r| r.method == "PUT" && r.path == format!("/agents/{}/tags", c.fingerprint)));
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(!r.path.contains(KEY) && !String::from_utf8_lossy(&r.body).contains(KEY));
        assert!(r.headers.iter().filter(|(_, v)| v.contains(KEY)).count() == 1);
    }
    // Keep-alive: at most one connection per in-flight slot.
    assert!(backend.connections.load(Ordering::SeqCst) <= 3);
    let mut text = Vec::new();
    agent.up.write_prometheus(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("outlyer_agent_delivered_samples_total{sink=\"series\"} 18\n"));
    assert!(!text.contains(KEY));
}

#[test]
fn certificate_for_another_host_is_refused_and_nothing_is_sent() {
    let tmp = TempFiles::new("wronghost");
    let pki = pki(&["other.example"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    assert!(backend.requests().is_empty());
    assert!(backend.connections.load(Ordering::SeqCst) >= 1);
    // The server thread notices the refused handshake on its own time.
    assert!(agent.run_until(Duration::from_secs(3), |_| {
        backend.handshake_failures.load(Ordering::SeqCst) >= 1
    }));
    assert_eq!(agent.up.core().api_counts().pings, 0);
    assert!(backend.requests().is_empty());
}

#[test]
fn self_signed_certificate_is_refused_and_nothing_is_sent() {
    let tmp = TempFiles::new("selfsigned");
    let pki = self_signed(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    // No CA file: only the compiled-in public roots are trusted.
    let mut agent = Agent::new(settings(&tmp, &server, "", &[]));
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    assert!(backend.requests().is_empty());
    // The server thread notices the refused handshake on its own time.
    assert!(agent.run_until(Duration::from_secs(3), |_| {
        backend.handshake_failures.load(Ordering::SeqCst) >= 1
    }));
    assert!(backend.requests().is_empty());
}

#[test]
fn server_that_never_speaks_tls_times_out() {
    let tmp = TempFiles::new("silent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = held.clone();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h2.lock().unwrap().push(s); // accept, keep open, never answer
        }
    });
    let server = format!("https://localhost:{port}");
    let mut agent = Agent::new(settings(&tmp, &server, "", &[]));
    let start = Instant::now();
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    let took = start.elapsed();
    // The handshake timeout (0.8 s here) fired, not the request timeout.
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(!held.lock().unwrap().is_empty());
}

#[test]
fn backend_down_then_back_over_real_sockets() {
    let tmp = TempFiles::new("outage");
    let pki = pki(&["localhost"]);
    // Reserve a port, then close it: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("https://localhost:{port}");
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    let fingers = vec![host().finger];
    let t0 = Instant::now();
    let mut cycle = 0;
    // 3 s of outage with a cycle every second.
    while t0.elapsed() < Duration::from_secs(3) {
        agent.push_cycle(&fingers, 1_700_000_000.0 + f64::from(cycle));
        cycle += 1;
        agent.run_until(Duration::from_secs(1), |_| false);
    }
    let c = agent.up.core().counts(Endpoint::Series).unwrap();
    assert_eq!((c.delivered, c.buffered), (0, c.produced));
    assert!(agent.up.core().failures(Endpoint::Series) >= 1);
    let backend = Backend::start_on(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        &pki,
        ok_responder(),
    );
    assert!(agent.run_until(Duration::from_secs(20), |up| {
        up.core().counts(Endpoint::Series).unwrap().buffered == 0
    }));
    let c = agent.up.core().counts(Endpoint::Series).unwrap();
    assert!(c.balances());
    assert_eq!((c.delivered, c.dropped()), (c.produced, 0));
    assert_eq!(series_samples(&backend.requests()) as u64, c.produced);
}

/// The gap between the first series post, answered 503 with
/// `Retry-After: <retry_after>`, and its retry, against a real TLS backend.
fn retry_gap_after_503(tag: &str, retry_after: &'static str) -> Duration {
    let tmp = TempFiles::new(tag);
    let pki = pki(&["localhost"]);
    let served_503 = Arc::new(AtomicBool::new(false));
    let s2 = served_503.clone();
    let backend = Backend::start(
        &pki,
        Box::new(move |r: &Recorded| {
            if r.path.ends_with("/series") && !s2.swap(true, Ordering::SeqCst) {
                return (
                    503,
                    vec![("Retry-After".into(), retry_after.into())],
                    Vec::new(),
                );
            }
            (200, vec![], b"[]".to_vec())
        }),
    );
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    assert!(agent.run_until(Duration::from_secs(6), |up| {
        up.core().counts(Endpoint::Series).unwrap().delivered == 3
    }));
    let series: Vec<Instant> = backend
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/series"))
        .map(|r| r.at)
        .collect();
    assert_eq!(series.len(), 2);
    series[1] - series[0]
}

#[test]
fn retry_after_header_is_read_from_a_real_response() {
    let gap = retry_gap_after_503("retryafter", "2");
    assert!(
        gap >= Duration::from_millis(1900) && gap < Duration::from_millis(3500),
        "{gap:?}"
    );
}

/// An absurd `Retry-After` date (the year of the bug report) is no hint:
/// the retry comes after the normal backoff (500 ms ceiling on the first
/// failure), not after the 600 s cap, and nothing panics.
#[test]
fn absurd_retry_after_date_falls_back_to_backoff() {
    let gap = retry_gap_after_503("retryabsurd", "Mon, 01 Jan 99999999999 00:00:00 GMT");
    assert!(gap < Duration::from_millis(1500), "{gap:?}");
}

#[test]
fn a_400_on_a_batch_is_dropped_and_counted() {
    let tmp = TempFiles::new("400");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(
        &pki,
        Box::new(|r: &Recorded| {
            if r.path.ends_with("/series") {
                (400, vec![], b"{\"error\":\"bad\"}".to_vec())
            } else {
                (200, vec![], b"[]".to_vec())
            }
        }),
    );
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    assert!(agent.run_until(Duration::from_secs(5), |up| {
        up.core().counts(Endpoint::Series).unwrap().dropped_rejected == 3
    }));
    let c = agent.up.core().counts(Endpoint::Series).unwrap();
    assert!(c.balances() && c.buffered == 0 && c.delivered == 0);
    // Dropped, not retried.
    agent.run_until(Duration::from_millis(1500), |_| false);
    assert_eq!(
        backend
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/series"))
            .count(),
        1
    );
}

fn proxied(
    auth_required: Option<&'static str>,
    proxy_userinfo: &str,
) -> (Backend, FakeProxy, Agent, TempFiles) {
    let tmp = TempFiles::new("proxy");
    let pki = pki(&["backend.test"]);
    let backend = Backend::start(&pki, ok_responder());
    let proxy = start_proxy(backend.addr, auth_required);
    // backend.test is in no hosts file and there is no nameserver: only
    // the proxy can reach it.
    let server = format!("https://backend.test:{}", backend.addr.port());
    let s = settings(
        &tmp,
        &server,
        &pki.ca_pem,
        &[(
            "HTTPS_PROXY",
            format!("http://{proxy_userinfo}127.0.0.1:{}", proxy.addr.port()),
        )],
    );
    let agent = Agent::new(s);
    (backend, proxy, agent, tmp)
}

#[test]
fn through_a_connect_proxy_without_auth() {
    let (backend, proxy, mut agent, _tmp) = proxied(None, "");
    assert!(
        agent.run_until(Duration::from_secs(5), |up| up.core().api_counts().pings
            >= 1)
    );
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        (format!("backend.test:{}", backend.addr.port()), None)
    );
    assert_eq!(
        backend.requests()[0].header("host"),
        Some(format!("backend.test:{}", backend.addr.port()).as_str())
    );
}

#[test]
fn through_a_connect_proxy_with_basic_auth() {
    let (backend, proxy, mut agent, _tmp) = proxied(Some("Basic dXNlcjpwQHNz"), "user:p%40ss@");
    assert!(
        agent.run_until(Duration::from_secs(5), |up| up.core().api_counts().pings
            >= 1)
    );
    assert_eq!(
        proxy.seen.lock().unwrap()[0].1.as_deref(),
        Some("Basic dXNlcjpwQHNz")
    );
    assert!(!backend.requests().is_empty());
    // The proxy credentials never reach the backend.
    assert!(backend.requests()[0]
        .header("proxy-authorization")
        .is_none());

    let (backend, proxy, mut agent, _tmp) = proxied(Some("Basic dXNlcjpwQHNz"), "user:wrong@");
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    assert!(backend.requests().is_empty());
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen
        .iter()
        .all(|(_, a)| a.as_deref() == Some("Basic dXNlcjp3cm9uZw==")));
}

#[test]
fn no_proxy_goes_direct() {
    let tmp = TempFiles::new("noproxy");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let proxy = start_proxy(backend.addr, None);
    let server = format!("https://localhost:{}", backend.addr.port());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.addr.port());
    for no_proxy in ["localhost", ".localhost", "*", "127.0.0.0/8,localhost"] {
        let s = settings(
            &tmp,
            &server,
            &pki.ca_pem,
            &[
                ("https_proxy", proxy_url.clone()),
                ("no_proxy", no_proxy.into()),
            ],
        );
        let mut agent = Agent::new(s);
        let before = backend.requests().len();
        assert!(
            agent.run_until(Duration::from_secs(5), |_| backend.requests().len()
                > before)
        );
        assert!(proxy.seen.lock().unwrap().is_empty(), "NO_PROXY={no_proxy}");
    }
    // And a non-matching NO_PROXY does use the proxy.
    let s = settings(
        &tmp,
        &server,
        &pki.ca_pem,
        &[
            ("https_proxy", proxy_url),
            ("NO_PROXY", "example.com,localhost:1".into()),
        ],
    );
    let mut agent = Agent::new(s);
    assert!(
        agent.run_until(Duration::from_secs(5), |up| up.core().api_counts().pings
            >= 1)
    );
    // One tunnel per API connection in use (up to two).
    let seen = proxy.seen.lock().unwrap().clone();
    let want = format!("localhost:{}", backend.addr.port());
    assert!(
        !seen.is_empty() && seen.iter().all(|(t, _)| *t == want),
        "{seen:?}"
    );
}

#[test]
fn names_resolved_by_the_in_loop_resolver() {
    let tmp = TempFiles::new("dns");
    let pki = pki(&["backend.test"]);
    let backend = Backend::start(&pki, ok_responder());
    let (ns, queries) = start_nameserver();
    let server = format!("https://backend.test:{}", backend.addr.port());
    let mut s = settings(&tmp, &server, &pki.ca_pem, &[]);
    s.nameservers = Some(vec![ns]);
    let mut agent = Agent::new(s);
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    assert!(agent.run_until(Duration::from_secs(5), |up| {
        up.core().api_counts().pings >= 1
            && up.core().counts(Endpoint::Series).unwrap().delivered == 3
    }));
    // Two endpoints, one name: answered from the cache after the first query.
    assert_eq!(queries.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_deregisters_and_is_bounded() {
    let tmp = TempFiles::new("shutdown");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    let cs: Vec<ContainerInfo> = (1..=3).map(container).collect();
    for c in &cs {
        agent.up.container_started(c, vec![], Instant::now());
    }
    assert!(
        agent.run_until(Duration::from_secs(5), |up| up.core().api_counts().pings
            >= 4)
    );
    agent.push_cycle(&[cs[0].fingerprint.clone()], 1_700_000_000.0);
    let t = Instant::now();
    agent.up.shutdown(agent.poll.registry(), t);
    assert!(agent.run_until(Duration::from_secs(5), |up| up.is_shutdown_complete()));
    assert!(t.elapsed() < Duration::from_secs(2));
    let reqs = backend.requests();
    for c in &cs {
        let path = format!("/agents/{}/deregister", c.fingerprint);
        assert!(
            reqs.iter().any(|r| r.method == "POST" && r.path == path),
            "{path}"
        );
    }
    assert_eq!(
        agent.up.core().counts(Endpoint::Series).unwrap().delivered,
        3
    );

    // A backend that accepts and never answers: still done within 5 s.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let mut s = settings(&tmp, &format!("https://localhost:{port}"), &pki.ca_pem, &[]);
    s.handshake_timeout = Duration::from_secs(30);
    s.request_timeout = Duration::from_secs(30);
    let mut agent = Agent::new(s);
    agent.up.container_started(&cs[0], vec![], Instant::now());
    agent.run_until(Duration::from_millis(300), |_| false);
    let t = Instant::now();
    agent.up.shutdown(agent.poll.registry(), t);
    assert!(agent.run_until(Duration::from_secs(6), |up| up.is_shutdown_complete()));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn graphite_over_tls_lines_arrive() {
    let tmp = TempFiles::new("graphite-tls");
    let pki = pki(&["localhost"]);
    let lines = Arc::new(Mutex::new(String::new()));
    let l2 = lines.clone();
    let port = tls_sink(&pki, move |bytes| {
        l2.lock().unwrap().push_str(&String::from_utf8_lossy(bytes))
    });
    // The agent API is down; Graphite is independent of it.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = settings(
        &tmp,
        &format!("https://localhost:{dead}"),
        &pki.ca_pem,
        &[
            ("DATALOOP_GRAPHITE", format!("tls://localhost:{port}")),
            ("DATALOOP_SERIES_URL", String::new()),
        ],
    );
    assert!(s.series.is_none());
    let mut agent = Agent::new(s);
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    agent.push_cycle(&[host().finger], 1_700_000_010.0);
    let want = format!(
        "{f}.base.cpu 2.5 1700000000\n{f}.base.memory 2.5 1700000000\n{f}.base.vmem.used 2.5 1700000000\n\
         {f}.base.cpu 2.5 1700000010\n{f}.base.memory 2.5 1700000010\n{f}.base.vmem.used 2.5 1700000010\n",
        f = host().finger
    );
    assert!(
        agent.run_until(Duration::from_secs(5), |_| lines.lock().unwrap().len()
            >= want.len())
    );
    assert_eq!(*lines.lock().unwrap(), want);
    let c = agent.up.core().counts(Endpoint::Graphite).unwrap();
    assert_eq!((c.produced, c.delivered), (6, 6));
}

// ---------------------------------------------------------------- figures

/// Not a test: the backend of `figures`, in a process of its own so that
/// its memory is not counted as the agent's.
#[test]
#[ignore]
fn fake_backend_process() {
    let Some(dir) = std::env::var_os("UPL_BACKEND_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let pki = pki(&["localhost"]);
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
    let backend = Backend::start(&pki, ok_responder());
    std::fs::write(dir.join("port.tmp"), backend.addr.port().to_string()).unwrap();
    std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
    while dir.join("port").exists() {
        thread::sleep(Duration::from_millis(100));
    }
}

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Figures for the README: added RSS of the TLS uploader at steady state,
/// bytes on the wire per container per cycle, time to drain a 10 000-sample
/// backlog. Run with scripts/bench-upload.sh (release build).
#[test]
#[ignore]
fn figures() {
    let tmp = TempFiles::new("figures");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "fake_backend_process",
            "--test-threads=1",
        ])
        .env("UPL_BACKEND_DIR", &tmp.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !tmp.0.join("port").exists() {
        assert!(start.elapsed() < Duration::from_secs(10));
        thread::sleep(Duration::from_millis(20));
    }
    let port: u16 = std::fs::read_to_string(tmp.0.join("port"))
        .unwrap()
        .parse()
        .unwrap();
    let ca = std::fs::read_to_string(tmp.0.join("ca.pem")).unwrap();
    let server = format!("https://localhost:{port}");

    const CONTAINERS: u8 = 10;
    // The base.* catalog of docs/metrics.md §10, as the collector publishes it.
    const PATHS: usize = outlyer_agent::metrics::OUTLYER_PATHS.len();
    let paths: Vec<String> = outlyer_agent::metrics::OUTLYER_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    let cs: Vec<ContainerInfo> = (1..=CONTAINERS).map(container).collect();
    let fingers: Vec<String> = cs.iter().map(|c| c.fingerprint.clone()).collect();

    let rss0 = status_kib("VmRSS:");
    let anon0 = status_kib("RssAnon:");
    let mut s = settings(&tmp, &server, &ca, &[]);
    s.sync_interval = Duration::from_secs(1);
    let mut agent = Agent::new(s);
    for c in &cs {
        agent
            .up
            .container_started(c, vec!["nginx:4".into(), "sh:1".into()], Instant::now());
    }
    let push = |agent: &mut Agent, t: f64| {
        let list: Vec<(&str, &str, f64)> = fingers
            .iter()
            .flat_map(|f| {
                paths
                    .iter()
                    .map(move |p| (f.as_str(), p.as_str(), 1234.5678))
            })
            .collect();
        agent.up.push_samples(t, list);
    };
    // Warm up: registrations, connections, a few cycles.
    for i in 0..5 {
        push(&mut agent, 1_700_000_000.0 + f64::from(i));
        agent.run_until(Duration::from_secs(1), |_| false);
    }
    let api0 = agent.up.wire_bytes_of(Endpoint::Api);
    let ser0 = agent.up.wire_bytes_of(Endpoint::Series);
    const CYCLES: u32 = 10;
    for i in 0..CYCLES {
        push(&mut agent, 1_700_000_100.0 + f64::from(i));
        agent.run_until(Duration::from_secs(1), |_| false);
    }
    let api1 = agent.up.wire_bytes_of(Endpoint::Api);
    let ser1 = agent.up.wire_bytes_of(Endpoint::Series);
    let rss1 = status_kib("VmRSS:");
    let anon1 = status_kib("RssAnon:");
    let per = |a: u64, b: u64| (b - a) as f64 / f64::from(CYCLES) / f64::from(CONTAINERS);
    let c = agent.up.core().counts(Endpoint::Series).unwrap();
    assert!(
        c.balances() && c.buffered == 0 && c.delivered > 0,
        "{c:?} failures {}",
        agent.up.core().failures(Endpoint::Series)
    );
    println!("FIGURE containers={CONTAINERS} samples/container/cycle={PATHS} cycles={CYCLES} (sync every cycle)");
    println!(
        "FIGURE wire bytes per container per cycle: agent API out {:.0} in {:.0}; series out {:.0} in {:.0}",
        per(api0.0, api1.0),
        per(api0.1, api1.1),
        per(ser0.0, ser1.0),
        per(ser0.1, ser1.1)
    );
    let mut lines = Vec::new();
    for p in &paths {
        outlyer_agent::upload::graphite::write_graphite_line(
            &mut lines,
            &fingers[0],
            p,
            1234.5678,
            1.7e9,
        );
    }
    println!(
        "FIGURE graphite payload per container per cycle: {} bytes (before TLS framing)",
        lines.len()
    );
    println!(
        "FIGURE added RSS at steady state: {} KiB total, {} KiB anonymous",
        rss1.saturating_sub(rss0),
        anon1.saturating_sub(anon0)
    );

    // Drain: 10 000 samples buffered at once, then sent.
    let mut s = settings(&tmp, &server, &ca, &[]);
    s.buffer_samples = 10_000;
    let mut agent = Agent::new(s);
    assert!(
        agent.run_until(Duration::from_secs(5), |up| up.core().api_counts().pings
            >= 1)
    );
    let many: Vec<(String, String)> = (0..10_000)
        .map(|i| (fingers[i % fingers.len()].clone(), paths[i % PATHS].clone()))
        .collect();
    let t = Instant::now();
    agent.up.push_samples(
        1_700_000_000.0,
        many.iter().map(|(f, p)| (f.as_str(), p.as_str(), 1.0)),
    );
    assert!(agent.run_until(Duration::from_secs(30), |up| {
        up.core().counts(Endpoint::Series).unwrap().delivered == 10_000
    }));
    println!(
        "FIGURE drain of a 10000-sample backlog: {} ms",
        t.elapsed().as_millis()
    );

    std::fs::remove_file(tmp.0.join("port")).unwrap();
    let _ = child.wait();
}

#[test]
fn large_batches_go_out_whole() {
    let tmp = TempFiles::new("large");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    let names: Vec<String> = (0..2500).map(|i| format!("base.m{i}")).collect();
    agent.up.push_samples(
        1_700_000_000.0,
        names
            .iter()
            .map(|n| ("11111111-2222-3333-4444-555555555555", n.as_str(), 1.0)),
    );
    assert!(agent.run_until(Duration::from_secs(10), |up| {
        up.core().counts(Endpoint::Series).unwrap().delivered == 2500
    }));
    let reqs = backend.requests();
    let bodies: Vec<usize> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/series"))
        .map(|r| r.body.len())
        .collect();
    // 1000 + 1000 + 500 samples, each body well past rustls' 64 KiB default.
    assert_eq!(bodies.len(), 3);
    assert!(bodies[0] > 64 * 1024, "{bodies:?}");
    assert_eq!(series_samples(&reqs), 2500);
}

#[test]
fn a_server_hanging_up_kept_alive_connections_costs_no_failure() {
    let tmp = TempFiles::new("hangup");
    let pki = pki(&["localhost"]);
    let backend = Backend::start(
        &pki,
        Box::new(|r: &Recorded| {
            let body = if r.method == "GET" {
                b"[]".to_vec()
            } else {
                Vec::new()
            };
            (200, vec![("X-Test-Close".into(), "1".into())], body)
        }),
    );
    let server = format!("https://localhost:{}", backend.addr.port());
    let mut s = settings(&tmp, &server, &pki.ca_pem, &[]);
    s.sync_interval = Duration::from_millis(300);
    let mut agent = Agent::new(s);
    for i in 0..8 {
        agent.push_cycle(&[host().finger], 1_700_000_000.0 + f64::from(i));
        agent.run_until(Duration::from_millis(300), |_| false);
    }
    assert!(agent.run_until(Duration::from_secs(5), |up| {
        up.core().counts(Endpoint::Series).unwrap().delivered == 24
    }));
    assert_eq!(agent.up.core().failures(Endpoint::Api), 0);
    assert_eq!(agent.up.core().failures(Endpoint::Series), 0);
    assert!(agent.up.core().api_counts().pings >= 8);
    // Every request needed a connection of its own (more may be opening
    // for the next sync as we look).
    let requests = backend.requests().len();
    assert!(backend.connections.load(Ordering::SeqCst) >= requests);
}

#[test]
fn shutdown_deregistrations_do_not_wait_behind_requests_a_stalled_backend_holds() {
    let tmp = TempFiles::new("stalled-shutdown");
    let pki = pki(&["localhost"]);
    // Completes TLS, reads every request, answers none.
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let r2 = received.clone();
    let port = tls_sink(&pki, move |bytes| {
        r2.lock().unwrap().extend_from_slice(bytes)
    });
    let mut s = settings(&tmp, &format!("https://localhost:{port}"), &pki.ca_pem, &[]);
    s.request_timeout = Duration::from_secs(30);
    let mut agent = Agent::new(s);
    let cs: Vec<ContainerInfo> = (1..=2).map(container).collect();
    for c in &cs {
        agent.up.container_started(c, vec![], Instant::now());
    }
    // A 10 000-sample backlog (the fault matrix's), then every connection
    // holds a request.
    let fingers: Vec<String> = (0..3334).map(|i| format!("f{i}")).collect();
    agent.push_cycle(&fingers, 1_700_000_000.0);
    let api_requests = |r: &Mutex<Vec<u8>>| {
        String::from_utf8_lossy(&r.lock().unwrap())
            .matches(" /agents/")
            .count()
    };
    assert!(
        agent.run_until(Duration::from_secs(5), |_| api_requests(&received) >= 2),
        "both API connections carry a request"
    );
    let t = Instant::now();
    agent.up.shutdown(agent.poll.registry(), t);
    assert!(agent.run_until(Duration::from_secs(6), |up| up.is_shutdown_complete()));
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    let deregistered: Vec<bool> = cs
        .iter()
        .map(|c| {
            text.contains(&format!(
                "POST /agents/{}/deregister HTTP/1.1",
                c.fingerprint
            ))
        })
        .collect();
    eprintln!(
        "stalled backend: shutdown took {took:?}; deregistrations read by the backend: {} of {}",
        deregistered.iter().filter(|d| **d).count(),
        cs.len()
    );
    assert_eq!(
        deregistered,
        [true, true],
        "every deregistration reached the backend"
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

#[test]
fn request_timeout_fires_when_the_backend_never_answers() {
    let tmp = TempFiles::new("mute");
    let pki = pki(&["localhost"]);
    // Completes the TLS handshake, reads every request, answers none.
    let received = Arc::new(AtomicUsize::new(0));
    let r2 = received.clone();
    let port = tls_sink(&pki, move |bytes| {
        r2.fetch_add(bytes.len(), Ordering::SeqCst);
    });
    let mut s = settings(&tmp, &format!("https://localhost:{port}"), &pki.ca_pem, &[]);
    s.request_timeout = Duration::from_millis(700);
    let mut agent = Agent::new(s);
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    let t = Instant::now();
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Series)
        >= 1));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(received.load(Ordering::SeqCst) > 0, "the request was sent");
    // Nothing is lost: the batch waits for the next attempt.
    let c = agent.up.core().counts(Endpoint::Series).unwrap();
    assert_eq!((c.buffered, c.delivered, c.dropped()), (3, 0, 0));
}

#[test]
fn plain_http_through_a_proxy_asks_the_proxy_directly() {
    let tmp = TempFiles::new("httpproxy");
    // Plays an HTTP proxy that forwards and relays a 200: records request lines.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::<(String, Option<String>)>::new()));
    let l2 = lines.clone();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let lines = l2.clone();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut headers);
                    if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                        let len: usize = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                            .map_or(0, |h| {
                                std::str::from_utf8(h.value).unwrap().parse().unwrap()
                            });
                        if buf.len() >= n + len {
                            let auth = req
                                .headers
                                .iter()
                                .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
                                .map(|h| String::from_utf8_lossy(h.value).into_owned());
                            let line = format!("{} {}", req.method.unwrap(), req.path.unwrap());
                            lines.lock().unwrap().push((line, auth));
                            buf.drain(..n + len);
                            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
                                .is_err()
                            {
                                return;
                            }
                            continue;
                        }
                    }
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
            });
        }
    });
    let s = settings(
        &tmp,
        "http://backend.test:8080",
        "",
        &[("http_proxy", format!("http://u:p@127.0.0.1:{port}"))],
    );
    let mut agent = Agent::new(s);
    agent.push_cycle(&[host().finger], 1_700_000_000.0);
    assert!(agent.run_until(Duration::from_secs(5), |up| {
        up.core().api_counts().pings >= 1
            && up.core().counts(Endpoint::Series).unwrap().delivered == 3
    }));
    let lines = lines.lock().unwrap().clone();
    assert!(lines.iter().any(|(l, _)| *l
        == format!(
            "POST http://backend.test:8080/agents/{}/ping",
            host().finger
        )));
    assert!(lines
        .iter()
        .any(|(l, _)| l == "POST http://backend.test:8080/v2/accounts/acme/series"));
    assert!(lines
        .iter()
        .all(|(l, a)| !l.starts_with("CONNECT") && a.as_deref() == Some("Basic dTpw")));
}

#[test]
fn a_silent_nameserver_never_stalls_the_loop() {
    let tmp = TempFiles::new("silentdns");
    // Receives queries, answers none.
    let ns = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ns_addr = ns.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let q2 = queries.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while ns.recv_from(&mut buf).is_ok() {
            q2.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut s = settings(&tmp, "https://backend.test:443", "", &[]);
    s.nameservers = Some(vec![ns_addr]);
    let mut agent = Agent::new(s);
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    assert!(agent.run_until(Duration::from_secs(6), |up| {
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
        up.core().failures(Endpoint::Api) >= 1
    }));
    // The loop kept turning (50 ms poll cap in this harness) while the
    // name went unanswered; the request failed at the connect deadline.
    assert!(longest < Duration::from_millis(250), "{longest:?}");
    assert!(queries.load(Ordering::SeqCst) >= 1);

    // With no nameserver at all the failure is immediate.
    let mut agent = Agent::new(settings(&tmp, "https://backend.test:443", "", &[]));
    let t = Instant::now();
    assert!(agent.run_until(Duration::from_secs(2), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    assert!(t.elapsed() < Duration::from_millis(500));
}

/// The agent's API requests failed at the TLS handshake, which the backend
/// saw fail, and nothing reached it.
fn refused_at_the_handshake(agent: &mut Agent, backend: &Backend) {
    assert!(agent.run_until(Duration::from_secs(5), |up| up
        .core()
        .failures(Endpoint::Api)
        >= 1));
    assert!(agent.run_until(Duration::from_secs(3), |_| {
        backend.handshake_failures.load(Ordering::SeqCst) >= 1
    }));
    assert_eq!(agent.up.core().api_counts().pings, 0);
    assert!(backend.requests().is_empty());
}

/// A CA and a leaf for `names` that expired in 2020.
fn expired(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let leaf = params.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: leaf_key.serialize_der(),
    }
}

#[test]
fn expired_certificate_is_refused_and_nothing_is_sent() {
    let tmp = TempFiles::new("expired");
    let pki = expired(&["localhost"]);
    let backend = Backend::start(&pki, ok_responder());
    let server = format!("https://localhost:{}", backend.addr.port());
    // Its CA is trusted: only the dates are wrong.
    let mut agent = Agent::new(settings(&tmp, &server, &pki.ca_pem, &[]));
    refused_at_the_handshake(&mut agent, &backend);
}

/// A proxy that answers CONNECT and then terminates TLS itself with a
/// certificate for the right name from a CA the agent does not trust (the
/// MITM of a corporate proxy): refused, nothing sent through it.
#[test]
fn a_proxy_that_intercepts_tls_is_refused_and_nothing_is_sent() {
    let tmp = TempFiles::new("mitm");
    let real = pki(&["backend.test"]);
    let mitm = pki(&["backend.test"]);
    let interceptor = Backend::start(&mitm, ok_responder());
    let proxy = start_proxy(interceptor.addr, None);
    let server = format!("https://backend.test:{}", interceptor.addr.port());
    let mut agent = Agent::new(settings(
        &tmp,
        &server,
        &real.ca_pem,
        &[(
            "HTTPS_PROXY",
            format!("http://127.0.0.1:{}", proxy.addr.port()),
        )],
    ));
    refused_at_the_handshake(&mut agent, &interceptor);
    assert!(
        !proxy.seen.lock().unwrap().is_empty(),
        "went through the proxy"
    );
}
