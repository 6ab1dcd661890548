//! The agent end to end against the machine's real Docker daemon (shared
//! with other test runs: only our own `oe2e-*` containers are asserted on),
//! and its HTTP surface, signals, secrets and configuration errors.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);
const FAST_POLL: Duration = Duration::from_millis(5);

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The agent against the shared daemon, with Docker already answering.
fn agent_on_shared_daemon(extra_args: &[&str], env: &[(&str, &str)]) -> Agent {
    let agent = Agent::serve(SHARED_SOCKET, extra_args, env);
    let up = agent.wait_metrics(Duration::from_secs(10), Duration::from_millis(20), |b| {
        gauge(b, "outlyer_agent_docker_up") == Some(1.0)
    });
    assert!(
        up.is_some(),
        "outlyer_agent_docker_up never became 1 with the shared daemon\n/metrics:\n{}\nstderr:\n{}",
        agent.try_metrics().unwrap_or_default(),
        agent.stderr()
    );
    // Give the events subscription a moment after the first successful list.
    std::thread::sleep(Duration::from_millis(300));
    agent
}

/// A socket path where no daemon will ever answer.
fn nowhere_socket() -> String {
    format!("/tmp/{}-absent.sock", unique_name("nodaemon"))
}

fn promtool_check(text: &str) {
    let Some((_, report)) = promtool_report(text) else {
        eprintln!("promtool not installed; exposition format not checked");
        return;
    };
    // promtool exits 1 for lint findings (e.g. missing HELP) as well as for
    // parse errors; only the latter make the text unusable for Prometheus.
    let parse_error = report
        .lines()
        .any(|l| l.contains("error while linting") || l.contains("text format parsing error"));
    assert!(
        !parse_error,
        "promtool cannot parse /metrics: {report}\n---\n{text}"
    );
}

// ---------------------------------------------------------------------------
// Discovery

#[test]
fn containers_appear_and_disappear_within_one_second() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let agent = agent_on_shared_daemon(&[], &[]);
    let mut containers = Vec::new();
    let mut times = Vec::new();
    for i in 0..5 {
        let name = unique_name(&format!("disc{i}"));
        let before = unix_now();
        // Two on the default bridge network, the rest without networking.
        let extra: &[&str] = if i < 2 { &[] } else { &["--network", "none"] };
        let c = cli.run_sleeper(&name, extra);
        let after = unix_now();
        let seen = agent.wait_metrics(Duration::from_secs(5), FAST_POLL, |b| {
            has_container(b, &name)
        });
        let Some((t, body)) = seen else {
            panic!(
                "container {name} not in /metrics 5 s after `docker run` returned\nstderr:\n{}",
                agent.stderr()
            );
        };
        times.push(t);
        if i == 0 {
            let (status, body) = http_get(&agent.addr, "/readyz");
            assert_eq!(
                (status, body.as_str()),
                (200, "ready\n"),
                "/readyz once listed"
            );
        }
        assert!(
            t <= SECOND,
            "container {name} appeared {t:?} after `docker run` returned (limit 1 s)"
        );

        let line = container_line(&body, "container_last_seen", &name).unwrap();
        let id = label(line, "id").unwrap_or_default();
        assert!(
            id.contains(&c.id),
            "id label {id:?} is not the cgroup path of {}: {line}",
            c.id
        );
        assert!(
            id.starts_with('/'),
            "id label {id:?} should be a cgroup path"
        );
        assert_eq!(
            label(line, "image").as_deref(),
            Some(IMAGE),
            "image label: {line}"
        );
        let seen_at = sample_value(line).unwrap();
        assert!(
            (seen_at - unix_now()).abs() < 40.0,
            "container_last_seen {seen_at} is not a recent unix time: {line}"
        );
        let start = container_line(&body, "container_start_time_seconds", &name)
            .unwrap_or_else(|| panic!("no container_start_time_seconds for {name}:\n{body}"));
        let started = sample_value(start).unwrap();
        assert!(
            started >= before - 2.0 && started <= after + 2.0,
            "container_start_time_seconds {started} outside [{before}, {after}] ±2 s: {start}"
        );
        containers.push(c);
    }
    eprintln!("discovery times after `docker run`: {times:?}");
    let body = agent.metrics();
    let n = gauge(&body, "outlyer_agent_containers").expect("outlyer_agent_containers");
    assert!(
        n >= 5.0,
        "outlyer_agent_containers = {n} with our 5 containers running"
    );
    promtool_check(&body);

    // Three ways to end a container; each must be gone within 1 s.
    let ends: [(&str, &[&str]); 3] = [
        ("rm -f", &["rm", "-f"]),
        ("stop", &["stop", "-t", "1"]),
        ("kill", &["kill"]),
    ];
    for (c, (what, args)) in containers.iter().zip(ends) {
        let mut full = args.to_vec();
        full.push(&c.name);
        cli.ok(&full);
        let gone = agent.wait_metrics(Duration::from_secs(5), FAST_POLL, |b| {
            !has_container(b, &c.name)
        });
        let Some((t, _)) = gone else {
            panic!(
                "container {} still in /metrics 5 s after `docker {what}`\nstderr:\n{}",
                c.name,
                agent.stderr()
            );
        };
        assert!(
            t <= SECOND,
            "container {} gone only {t:?} after `docker {what}` (limit 1 s)",
            c.name
        );
    }
    let body = agent.metrics();
    for c in &containers[3..] {
        assert!(
            has_container(&body, &c.name),
            "untouched container {} disappeared",
            c.name
        );
    }
}

#[test]
fn label_values_are_escaped_in_the_exposition() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let name = unique_name("labels");
    let tricky = "say \"hi\" \\ C:\\path\nsecond line {a=\"b\"},";
    let _c = cli.run_sleeper(
        &name,
        &[
            "--network",
            "none",
            "--label",
            &format!("oe2e.note={tricky}"),
            "--label",
            "oe2e.plain=ok",
        ],
    );
    let agent = agent_on_shared_daemon(&[], &[]);
    let Some((_, body)) =
        agent.wait_metrics(Duration::from_secs(5), Duration::from_millis(20), |b| {
            has_container(b, &name)
        })
    else {
        panic!("container {name} never listed\nstderr:\n{}", agent.stderr());
    };
    promtool_check(&body);
    let ours: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && label(l, "name").as_deref() == Some(name.as_str()))
        .collect();
    assert!(!ours.is_empty());
    // Every sample line of the container must still parse to the right name
    // and image: a bad escape would shift or break the label set.
    for line in &ours {
        assert_eq!(
            label(line, "image").as_deref(),
            Some(IMAGE),
            "label set broken: {line}"
        );
        assert!(
            sample_value(line).is_some(),
            "no value after the labels: {line}"
        );
    }
    // Where the agent exports Docker labels, the value survives escaping.
    let exported: Vec<String> = ours
        .iter()
        .filter_map(|l| label(l, "container_label_oe2e_note"))
        .collect();
    if exported.is_empty() {
        eprintln!("NOTE: container labels are not exported as container_label_*");
    }
    for v in exported {
        assert_eq!(v, tricky, "label value changed by escaping");
    }
}

#[test]
fn docker_host_variable_selects_the_socket() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut agent = Agent::spawn(
        &["--listen", &addr],
        &[("DOCKER_HOST", &format!("unix://{SHARED_SOCKET}"))],
    );
    agent.wait_healthy(Duration::from_secs(10));
    let name = unique_name("dockerhost");
    let _c = cli.run_sleeper(&name, &["--network", "none"]);
    let seen = agent.wait_metrics(Duration::from_secs(5), Duration::from_millis(20), |b| {
        has_container(b, &name)
    });
    assert!(
        seen.is_some(),
        "DOCKER_HOST=unix://{SHARED_SOCKET}: container never listed\nstderr:\n{}",
        agent.stderr()
    );
}

#[test]
fn once_prints_metrics_and_exits_zero() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let name = unique_name("once");
    let _c = cli.run_sleeper(&name, &["--network", "none"]);
    let done = run_agent(
        &["--once", "--docker-socket", SHARED_SOCKET],
        &[],
        Duration::from_secs(15),
    );
    assert_eq!(
        done.code,
        Some(0),
        "--once exit code; stderr:\n{}",
        done.stderr
    );
    assert!(
        done.elapsed >= Duration::from_millis(900),
        "--once took {:?}, expected two readings 1 s apart",
        done.elapsed
    );
    assert!(
        done.elapsed <= Duration::from_secs(10),
        "--once took {:?}",
        done.elapsed
    );
    assert!(
        has_container(&done.stdout, &name),
        "--once output lacks {name}:\n{}",
        done.stdout
    );
    assert_eq!(gauge(&done.stdout, "outlyer_agent_docker_up"), Some(1.0));
    promtool_check(&done.stdout);
}

/// A container run with `--ipc=shareable` puts its id in the host's mount
/// table (its `shm` mount). An agent on the host must still report it, and
/// say once that it runs on the host.
#[test]
fn shareable_ipc_container_is_not_taken_for_the_agent() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let name = unique_name("shm");
    let c = cli.run_sleeper(&name, &["--ipc=shareable", "--network", "none"]);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mountinfo.contains(&format!("/containers/{}/mounts/shm", c.id)),
        "the repro needs the container's shm mount in this mount table:\n{mountinfo}"
    );
    let done = run_agent(
        &["--once", "--docker-socket", SHARED_SOCKET],
        &[],
        Duration::from_secs(15),
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert!(
        has_container(&done.stdout, &name),
        "--once output lacks {name}; stderr:\n{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("the agent's own container"),
        "stderr:\n{}",
        done.stderr
    );
    let placed: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("running on the host") || l.contains("running in container"))
        .collect();
    assert_eq!(placed.len(), 1, "stderr:\n{}", done.stderr);
    assert!(placed[0].contains("running on the host"), "{}", placed[0]);
}

// ---------------------------------------------------------------------------
// HTTP surface

#[test]
fn fingerprint_is_a_uuid_stable_across_runs() {
    let socket = nowhere_socket();
    let read = || {
        let agent = Agent::serve(&socket, &[], &[]);
        let (status, body) = http_get(&agent.addr, "/");
        assert_eq!(status, 200, "GET / status");
        body
    };
    let first = read();
    let fp = first
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("GET / body {first:?} does not end in a newline"));
    assert!(is_uuid(fp), "GET / body {first:?} is not a UUID");
    let second = read();
    assert_eq!(first, second, "fingerprint changed between two agent runs");

    let chosen = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let agent = Agent::serve(&socket, &[], &[("DATALOOP_FINGERPRINT", chosen)]);
    let (_, body) = http_get(&agent.addr, "/");
    assert_eq!(
        body.trim().to_ascii_lowercase(),
        chosen,
        "DATALOOP_FINGERPRINT not served on GET /"
    );
}

#[test]
fn http_status_codes() {
    // The Docker API alone (`auto` would add the cgroup tree on a host with
    // /run/containerd, and ready itself without a Docker socket).
    let agent = Agent::serve(&nowhere_socket(), &["--runtime", "docker"], &[]);
    let addr = agent.addr.as_str();
    let send = |raw: &str| {
        http_exchange(addr, raw.as_bytes(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{raw:?}: {e}\nstderr:\n{}", agent.stderr()))
    };
    assert_eq!(http_get(addr, "/healthz").0, 200, "/healthz");
    // Live but not ready: no container source has listed anything.
    let (status, body) = http_get(addr, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (
            503,
            "not ready: no container list yet: the Docker API has not answered for 0s\n"
        ),
        "/readyz without a daemon"
    );

    let get = send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(get.status, 200);
    let ctype = get.header("content-type").unwrap_or_default().to_string();
    assert!(
        ctype.starts_with("text/plain"),
        "/metrics Content-Type {ctype:?}"
    );
    assert_eq!(
        gauge(&get.body_text(), "outlyer_agent_docker_up"),
        Some(0.0),
        "docker_up without a daemon"
    );
    assert_eq!(
        gauge(&get.body_text(), "outlyer_agent_containers"),
        Some(0.0)
    );
    promtool_check(&get.body_text());

    for path in ["/", "/metrics", "/healthz"] {
        let head = send(&format!(
            "HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(head.status, 200, "HEAD {path}");
        // The reader stops at the head; the agent must not send a body.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        assert!(body.is_empty(), "HEAD {path} sent a body: {body:?}");
    }

    for path in ["/nope", "/metrics/x", "/favicon.ico"] {
        assert_eq!(http_get(addr, path).0, 404, "GET {path}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let r = send(&format!("{method} /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        assert_eq!(r.status, 405, "{method} /metrics");
    }

    // Keep-alive: two requests on one connection.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, false).expect("keep-alive response");
        assert_eq!(r.status, 200);
    }
    assert!(agent.stderr().len() < 1_000_000);
}

#[test]
fn request_head_over_8_kib_gets_431() {
    let agent = Agent::serve(&nowhere_socket(), &[], &[]);
    let mut request = String::from("GET /metrics HTTP/1.1\r\nHost: t\r\n");
    request.push_str(&format!("X-Filler: {}\r\n", "a".repeat(9000)));
    request.push_str("\r\n");
    let mut s = TcpStream::connect(&agent.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request.as_bytes());
    match read_response(&mut s, false) {
        Ok(r) => assert_eq!(r.status, 431, "oversized head answered {}", r.head),
        Err(e) => panic!(
            "no response to a 9 KiB request head ({e}); expected 431\nstderr:\n{}",
            agent.stderr()
        ),
    }
    // The agent is still fine.
    assert_eq!(http_get(&agent.addr, "/healthz").0, 200);
}

#[test]
fn idle_connections_do_not_block_new_clients() {
    let agent = Agent::serve(&nowhere_socket(), &[], &[]);
    let idle: Vec<TcpStream> = (0..70)
        .map(|i| {
            TcpStream::connect(&agent.addr).unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let start = Instant::now();
        let r = try_http_get(&agent.addr, "/metrics");
        let t = start.elapsed();
        match r {
            Ok(r) => assert_eq!(r.status, 200),
            Err(e) => panic!(
                "with 70 idle connections open a new client failed: {e}\nstderr:\n{}",
                agent.stderr()
            ),
        }
        assert!(
            t < SECOND,
            "with 70 idle connections open a new client waited {t:?}"
        );
    }
    drop(idle);
}

#[test]
fn stalled_half_head_neither_delays_others_nor_lives_forever() {
    let agent = Agent::serve(&nowhere_socket(), &[], &[]);
    let mut stalled = TcpStream::connect(&agent.addr).unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Half")
        .unwrap();
    let stalled_at = Instant::now();
    for _ in 0..5 {
        let start = Instant::now();
        let (status, _) = http_get(&agent.addr, "/healthz");
        assert_eq!(status, 200);
        let t = start.elapsed();
        assert!(
            t < Duration::from_millis(500),
            "a stalled client delayed another by {t:?}"
        );
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match stalled.read(&mut buf) {
            Ok(0) => break Ok(stalled_at.elapsed()),
            Ok(_) => continue, // e.g. a 408 before closing
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break Ok(stalled_at.elapsed())
            }
            Err(e) => break Err(e),
        }
    };
    let t = closed.unwrap_or_else(|e| panic!("stalled connection not closed within 15 s ({e})"));
    assert!(
        t >= Duration::from_secs(2) && t <= Duration::from_secs(9),
        "stalled connection closed after {t:?}, expected about 5 s"
    );
}

// ---------------------------------------------------------------------------
// Process behaviour

#[test]
fn sigterm_and_sigint_exit_zero_within_one_second() {
    // Against the shared daemon when there is one (an open events stream),
    // else against nothing.
    let socket = if docker_answers(Path::new(SHARED_SOCKET)) {
        SHARED_SOCKET.to_string()
    } else {
        nowhere_socket()
    };
    for signal in ["TERM", "INT"] {
        let mut agent = Agent::serve(&socket, &[], &[]);
        std::thread::sleep(Duration::from_millis(500));
        let start = Instant::now();
        agent.signal(signal);
        let status = agent.wait_exit(Duration::from_secs(5));
        let t = start.elapsed();
        let status = status.unwrap_or_else(|| {
            panic!(
                "SIG{signal}: agent still running after 5 s\nstderr:\n{}",
                agent.stderr()
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: exit status {status:?}\nstderr:\n{}",
            agent.stderr()
        );
        assert!(t <= SECOND, "SIG{signal}: exit took {t:?}");
    }
}

/// A plain-HTTP stand-in for the Outlyer API on loopback. It records every
/// request line; `failing` answers 401 first and then 500 (so the agent's
/// upload error paths, where a careless log line would print the key, run),
/// otherwise it answers 200 (`[]` for the agent list, `{}` for the rest).
/// Requests a fake backend saw, as (request line, body).
type Recorded = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

struct FakeBackend {
    addr: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    /// Every request as (request line, body).
    requests: Recorded,
    connections: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl FakeBackend {
    fn start(failing: bool) -> FakeBackend {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backend = FakeBackend {
            addr,
            received: Default::default(),
            lines: Default::default(),
            requests: Default::default(),
            connections: Default::default(),
        };
        let requests = backend.requests.clone();
        let (rx, lines, count) = (
            backend.received.clone(),
            backend.lines.clone(),
            backend.connections.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let n = count.fetch_add(1, Ordering::Relaxed);
                let (rx, lines, requests) = (rx.clone(), lines.clone(), requests.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    // One request per connection: head, then Content-Length bytes.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let mut need = None;
                    loop {
                        if let Some(total) = need {
                            if buf.len() >= total {
                                break;
                            }
                        } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            need = Some(end + 4 + len);
                            continue;
                        }
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    let line = String::from_utf8_lossy(&buf)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    rx.lock().unwrap().extend_from_slice(&buf);
                    lines.lock().unwrap().push((Instant::now(), line.clone()));
                    let body = buf
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|end| buf[end + 4..].to_vec())
                        .unwrap_or_default();
                    requests.lock().unwrap().push((line.clone(), body));
                    let (status, body) = if failing {
                        let status = if n == 0 {
                            "401 Unauthorized"
                        } else {
                            "500 Internal Server Error"
                        };
                        (status, "{\"error\":\"rejected\"}")
                    } else if line.starts_with("GET /agents") {
                        ("200 OK", "[]")
                    } else {
                        ("200 OK", "{}")
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        backend
    }

    fn request_lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// The body of the first request whose line starts with `prefix`.
    fn body_of(&self, prefix: &str) -> Option<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .find(|(line, _)| line.starts_with(prefix))
            .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
    }
}

/// The shared daemon's socket when it answers, else a path with no daemon.
fn shared_socket_or_nowhere() -> String {
    if docker_answers(Path::new(SHARED_SOCKET)) {
        SHARED_SOCKET.to_string()
    } else {
        nowhere_socket()
    }
}

#[test]
fn agent_key_never_appears_in_logs_or_answers() {
    let key = format!(
        "oe2eKEY{:x}{}",
        std::process::id(),
        unique_name("k").replace('-', "")
    );
    let tail = &key[key.len() - 12..];
    let socket = shared_socket_or_nowhere();
    let _c = (socket == SHARED_SOCKET)
        .then(|| DockerCli::shared().run_sleeper(&unique_name("keyed"), &["--network", "none"]));
    // The backend is on loopback: a keyed agent must not reach out anywhere else.
    let backend = FakeBackend::start(true);
    let server = format!("http://{}", backend.addr);
    let mut agent = Agent::serve(
        &socket,
        &["--interval", "1"],
        &[
            ("DATALOOP_AGENT_KEY", &key),
            ("DATALOOP_SERVER", &server),
            ("DATALOOP_DEBUG", "yes"),
            ("DATALOOP_NAME", "oe2e-keyed-host"),
            ("DATALOOP_TAGS", "env:test,role:e2e"),
        ],
    );
    // Let it tick and try to upload a few times.
    std::thread::sleep(Duration::from_secs(4));
    let mut answers = String::new();
    for path in ["/", "/metrics", "/healthz", "/nope", "/?key=1"] {
        if let Ok(r) = try_http_get(&agent.addr, path) {
            answers.push_str(&r.head);
            answers.push_str(&r.body_text());
        }
    }
    let stop = Instant::now();
    agent.signal("TERM");
    let status = agent.wait_exit(Duration::from_secs(15));
    let took = stop.elapsed();
    let attempts = backend
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        attempts >= 1,
        "a keyed agent never contacted DATALOOP_SERVER={server}: the upload path was not exercised\nstderr:\n{}",
        agent.stderr()
    );
    eprintln!(
        "backend saw {attempts} connection(s); SIGTERM with a failing backend: exit after {took:?}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status after SIGTERM"
    );
    // Deregistering against a failing backend may take a while, but must end
    // before Docker's default stop timeout (10 s) turns SIGTERM into SIGKILL.
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM with a failing backend: exit took {took:?}"
    );
    for (what, text) in [
        ("stderr", agent.stderr()),
        ("stdout", agent.stdout()),
        ("HTTP answers", answers),
    ] {
        assert!(!text.contains(&key), "DATALOOP_AGENT_KEY appears in {what}");
        assert!(
            !text.contains(tail),
            "the end of DATALOOP_AGENT_KEY appears in {what}"
        );
    }
}

#[test]
fn keyed_agent_deregisters_and_exits_within_one_second_on_sigterm() {
    if !require_docker() {
        return;
    }
    let c = DockerCli::shared().run_sleeper(&unique_name("dereg"), &["--network", "none"]);
    let backend = FakeBackend::start(false);
    let server = format!("http://{}", backend.addr);
    let mut agent = Agent::serve(
        SHARED_SOCKET,
        &["--interval", "1"],
        &[
            ("DATALOOP_AGENT_KEY", "oe2e-shutdown-key"),
            ("DATALOOP_SERVER", &server),
        ],
    );
    let short_id = &c.id[..12];
    let pinged = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        let sent = String::from_utf8_lossy(&backend.received.lock().unwrap()).into_owned();
        sent.contains(short_id) || sent.contains(&c.id)
    });
    assert!(
        pinged.is_some(),
        "the keyed agent never told its backend about container {short_id}; requests: {:#?}\nstderr:\n{}",
        backend.request_lines(),
        agent.stderr()
    );
    let start = Instant::now();
    agent.signal("TERM");
    let status = agent.wait_exit(Duration::from_secs(15));
    let took = start.elapsed();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status after SIGTERM\nstderr:\n{}",
        agent.stderr()
    );
    let deregisters = backend
        .request_lines()
        .into_iter()
        .filter(|(t, line)| *t >= start && line.contains("/deregister"))
        .count();
    assert!(
        deregisters >= 1,
        "no POST /agents/{{id}}/deregister after SIGTERM; requests: {:#?}",
        backend.request_lines()
    );
    assert!(
        took <= SECOND,
        "keyed agent with a responsive backend took {took:?} to exit on SIGTERM (limit 1 s); {deregisters} deregister calls\nstderr:\n{}",
        agent.stderr()
    );
}

fn json_str<'a>(v: &'a miniserde::json::Value, key: &str) -> Option<&'a str> {
    match v {
        miniserde::json::Value::Object(o) => match o.get(key) {
            Some(miniserde::json::Value::String(s)) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn keyed_agent_pings_each_container_with_its_fingerprint_and_deregisters_a_stopped_one() {
    if !require_docker() {
        return;
    }
    let cli = DockerCli::shared();
    let a = cli.run_sleeper(
        &unique_name("va-a"),
        &[
            "--network",
            "none",
            "-e",
            "APP_NAME=shop",
            "-e",
            "SECRET=hunter2",
            "--label",
            "team=payments",
        ],
    );
    let b = cli.run_sleeper(&unique_name("va-b"), &["--network", "none"]);
    let backend = FakeBackend::start(false);
    let server = format!("http://{}", backend.addr);
    let agent = Agent::serve(
        SHARED_SOCKET,
        &["--interval", "1"],
        &[
            ("DATALOOP_AGENT_KEY", "oe2e-va-key"),
            ("DATALOOP_SERVER", &server),
        ],
    );
    let host_finger = http_get(&agent.addr, "/").1.trim().to_string();
    let finger_a = outlyer_agent::uuid::container_fingerprint(&a.id);
    let finger_b = outlyer_agent::uuid::container_fingerprint(&b.id);
    let ping_a = format!("POST /agents/{finger_a}/ping ");
    let ping_b = format!("POST /agents/{finger_b}/ping ");
    let seen = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        backend.body_of(&ping_a).is_some() && backend.body_of(&ping_b).is_some()
    });
    assert!(
        seen.is_some(),
        "no ping for both containers; requests: {:#?}\nstderr:\n{}",
        backend.request_lines(),
        agent.stderr()
    );
    let body = backend.body_of(&ping_a).unwrap();
    let v: miniserde::json::Value = miniserde::json::from_str(&body).expect("ping body is JSON");
    assert_eq!(json_str(&v, "finger"), Some(finger_a.as_str()), "{body}");
    assert_eq!(json_str(&v, "name"), Some(a.name.as_str()), "{body}");
    assert_eq!(json_str(&v, "hostname"), Some(&a.id[..12]), "{body}");
    assert_eq!(json_str(&v, "container_id"), Some(a.id.as_str()), "{body}");
    assert_eq!(json_str(&v, "parent"), Some(host_finger.as_str()), "{body}");
    assert_eq!(json_str(&v, "os_name"), Some("docker"), "{body}");
    assert!(
        body.contains("\"sleep:1\""),
        "processes of the container: {body}"
    );
    assert!(body.contains("\"lo0\""), "loopback interface: {body}");
    assert!(!body.contains("hunter2"), "an env value leaked: {body}");
    // Tags: the image, the APP_NAME value, the label value, the short id.
    let tags_a = format!("PUT /agents/{finger_a}/tags ");
    let tagged = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        backend.body_of(&tags_a).is_some()
    });
    assert!(
        tagged.is_some(),
        "no tags for {finger_a}: {:#?}",
        backend.request_lines()
    );
    let tags = backend.body_of(&tags_a).unwrap();
    for t in [
        "all",
        "docker",
        "shop",
        "payments",
        &format!("container:{}", &a.id[..12]),
    ] {
        assert!(tags.contains(t), "tag {t} missing: {tags}");
    }
    assert!(
        !tags.contains("hunter2"),
        "an env value leaked into tags: {tags}"
    );

    // Stopping one container deregisters its virtual agent, and only it.
    let dereg_b = format!("POST /agents/{finger_b}/deregister ");
    let dereg_a = format!("POST /agents/{finger_a}/deregister ");
    drop(b);
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        backend.body_of(&dereg_b).is_some()
    });
    assert!(
        gone.is_some(),
        "no deregister for the stopped container; requests: {:#?}\nstderr:\n{}",
        backend.request_lines(),
        agent.stderr()
    );
    assert!(
        backend.body_of(&dereg_a).is_none(),
        "the running container was deregistered"
    );
}

// ---------------------------------------------------------------------------
// Configuration

fn expect_config_error(args: &[&str], env: &[(&str, &str)], names: &str) {
    let done = run_agent(args, env, Duration::from_secs(5));
    let case = format!("args {args:?} env {env:?}");
    assert_eq!(
        done.code,
        Some(2),
        "{case}: exit code (stderr: {:?})",
        done.stderr
    );
    let lines: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: expected one line on stderr, got {:?}",
        done.stderr
    );
    assert!(
        lines[0].contains(names),
        "{case}: stderr {:?} does not name {names}",
        lines[0]
    );
}

#[test]
fn configuration_errors_exit_2_naming_the_setting() {
    expect_config_error(&["--interval", "0"], &[], "--interval");
    expect_config_error(&["--interval", "4000"], &[], "--interval");
    expect_config_error(&["--interval", "3601"], &[], "--interval");
    expect_config_error(&["--interval", "abc"], &[], "--interval");
    expect_config_error(&["--interval", "-5"], &[], "--interval");
    expect_config_error(&["--interval"], &[], "--interval");
    expect_config_error(&[], &[("DATALOOP_INTERVAL", "0")], "DATALOOP_INTERVAL");
    expect_config_error(&[], &[("DATALOOP_INTERVAL", "abc")], "DATALOOP_INTERVAL");
    expect_config_error(
        &[],
        &[("DATALOOP_FINGERPRINT", "not-a-uuid")],
        "DATALOOP_FINGERPRINT",
    );
    expect_config_error(
        &[],
        &[(
            "DATALOOP_FINGERPRINT",
            "0f8fad5b-d9cb-469f-a165-70867728950",
        )],
        "DATALOOP_FINGERPRINT",
    );
    expect_config_error(&[], &[("DATALOOP_DEBUG", "maybe")], "DATALOOP_DEBUG");
    expect_config_error(&["--listen", "nonsense"], &[], "--listen");
    expect_config_error(&["--listen", "127.0.0.1:99999"], &[], "--listen");
    expect_config_error(
        &[],
        &[("DATALOOP_LISTEN", "not an address")],
        "DATALOOP_LISTEN",
    );
    expect_config_error(&["--no-such-flag"], &[], "--no-such-flag");
    expect_config_error(&["--debug=maybe"], &[], "--debug");
    expect_config_error(&["--tcp-states=maybe"], &[], "--tcp-states");
    expect_config_error(&["--once=yes"], &[], "--once");
    expect_config_error(&["--runtime", "rkt"], &[], "--runtime");
    expect_config_error(&[], &[("DATALOOP_RUNTIME", "lxc")], "DATALOOP_RUNTIME");
    expect_config_error(
        &["--containerd-state", "run/containerd"],
        &[],
        "--containerd-state",
    );
    expect_config_error(
        &[],
        &[("DATALOOP_CRIO_STATE", "relative")],
        "DATALOOP_CRIO_STATE",
    );
}

/// Bad upload settings (read only with a key) exit 2 naming the setting,
/// and nothing the agent prints carries the key.
#[test]
fn bad_upload_settings_exit_2_without_echoing_the_key() {
    const KEY: &str = "k3y-0f8fad5b-never-printed";
    let server = format!("https://{KEY}@127.0.0.1:1/");
    let query = format!("--server=https://127.0.0.1:1/?key={KEY}");
    let proxy = format!("http://user:{KEY}@");
    let series = format!("https://{KEY}@h/v2/accounts/a/series");
    let key = ("DATALOOP_AGENT_KEY", KEY);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--server", &server], vec![key], "--server"),
        (vec![&server], vec![key], "argument 1"),
        (
            vec![],
            vec![key, ("DATALOOP_SERVER", &server)],
            "DATALOOP_SERVER",
        ),
        (vec![&query], vec![key], "--server"),
        (vec!["--series-url", &series], vec![key], "--series-url"),
        (vec!["--graphite", "nohostport"], vec![key], "--graphite"),
        (
            vec![],
            vec![key, ("DATALOOP_GRAPHITE", "garbage")],
            "DATALOOP_GRAPHITE",
        ),
        (vec![], vec![key, ("HTTPS_PROXY", "garbage")], "HTTPS_PROXY"),
        (vec![], vec![key, ("https_proxy", "garbage")], "https_proxy"),
        (vec![], vec![key, ("http_proxy", "garbage")], "http_proxy"),
        (vec![], vec![key, ("HTTPS_PROXY", &proxy)], "HTTPS_PROXY"),
        (vec![], vec![key, ("NO_PROXY", "10.0.0.0/33")], "NO_PROXY"),
        (vec!["--debug=maybe"], vec![key], "--debug"),
    ];
    for (args, env, names) in &cases {
        expect_config_error(args, env, names);
        let done = run_agent(args, env, Duration::from_secs(5));
        assert!(
            !done.stderr.contains(KEY) && !done.stdout.contains(KEY),
            "args {args:?}: the key was printed: {:?} {:?}",
            done.stdout,
            done.stderr
        );
    }
    let done = run_agent(&["--server", &server], &[key], Duration::from_secs(5));
    assert!(
        done.stderr
            .contains("invalid --server: user info is not allowed"),
        "{:?}",
        done.stderr
    );
}

#[test]
fn valid_boundaries_are_accepted() {
    let socket = nowhere_socket();
    for (args, env) in [
        (vec!["--interval", "1"], vec![]),
        (vec!["--interval", "3600"], vec![]),
        (
            vec![],
            vec![("DATALOOP_DEBUG", "no"), ("DATALOOP_INTERVAL", "60")],
        ),
        (vec![], vec![("DATALOOP_DEBUG", "true")]),
        (vec![], vec![("DATALOOP_DEBUG", "false")]),
        (vec!["--debug"], vec![]),
        (vec!["--debug=true"], vec![]),
        (vec!["--debug=no"], vec![("DATALOOP_DEBUG", "yes")]),
        (vec![], vec![("HTTP_PROXY", "garbage")]),
        (
            vec![],
            vec![(
                "DATALOOP_FINGERPRINT",
                "0F8FAD5B-D9CB-469F-A165-70867728950E",
            )],
        ),
    ] {
        let mut agent = Agent::serve(&socket, &args, &env);
        assert!(
            agent.is_running(),
            "args {args:?} env {env:?} rejected:\n{}",
            agent.stderr()
        );
    }
}

#[test]
fn help_and_version() {
    let help = run_agent(&["--help"], &[], Duration::from_secs(5));
    assert_eq!(
        help.code,
        Some(0),
        "--help exit code; stderr {:?}",
        help.stderr
    );
    for flag in [
        "--docker-socket",
        "--listen",
        "--rootfs",
        "--interval",
        "--once",
    ] {
        assert!(
            help.stdout.contains(flag),
            "--help does not mention {flag}:\n{}",
            help.stdout
        );
    }
    let version = run_agent(&["--version"], &[], Duration::from_secs(5));
    assert_eq!(version.code, Some(0));
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version printed {:?}",
        version.stdout
    );
}

/// Fault matrix, "SIGTERM during a daemon reconnect": the daemon went away
/// with three containers registered; the agent, in its reconnect backoff,
/// still deregisters all three on SIGTERM and exits 0 within 5 s.
#[test]
fn sigterm_during_a_daemon_reconnect_deregisters_and_exits_in_time() {
    let containers: Vec<_> = (1..=3).map(outlyer_testkit::sample_container).collect();
    let daemon = outlyer_testkit::FakeDaemon::start(containers.clone()).unwrap();
    let backend = FakeBackend::start(false);
    let server = format!("http://{}", backend.addr);
    let socket = daemon.socket().to_str().unwrap().to_owned();
    let mut agent = Agent::serve(
        &socket,
        &["--interval", "1", "--runtime", "docker"],
        &[
            ("DATALOOP_AGENT_KEY", "oe2e-reconnect-key"),
            ("DATALOOP_SERVER", &server),
        ],
    );
    let registered = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        let sent = String::from_utf8_lossy(&backend.received.lock().unwrap()).into_owned();
        containers.iter().all(|c| sent.contains(&c.fingerprint))
    });
    assert!(
        registered.is_some(),
        "the three containers were never registered; requests: {:#?}\nstderr:\n{}",
        backend.request_lines(),
        agent.stderr()
    );
    drop(daemon);
    let down = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        agent.gauge("outlyer_agent_docker_up") == Some(0.0)
    });
    assert!(
        down.is_some(),
        "docker_up never went to 0\n{}",
        agent.stderr()
    );
    let start = Instant::now();
    agent.signal("TERM");
    let status = agent.wait_exit(Duration::from_secs(10));
    let took = start.elapsed();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status after SIGTERM\nstderr:\n{}",
        agent.stderr()
    );
    let deregistered: Vec<String> = backend
        .request_lines()
        .into_iter()
        .filter(|(t, line)| *t >= start && line.contains("/deregister"))
        .map(|(_, line)| line)
        .collect();
    for c in &containers {
        assert!(
            deregistered.iter().any(|l| l.contains(&c.fingerprint)),
            "{} not deregistered; after SIGTERM: {deregistered:#?}",
            c.name
        );
    }
    eprintln!(
        "FIGURE sigterm during a reconnect: {} deregistrations, exit 0 after {took:?}",
        deregistered.len()
    );
    assert!(took <= Duration::from_secs(5), "exit took {took:?}");
}
