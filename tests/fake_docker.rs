//! The agent against a fake Docker daemon on a unix socket, for reply shapes
//! the machine's real daemon can't produce: Docker 1.7 (API 1.19) and
//! Docker 29 (API 1.56, min 1.40) bodies and event lines, plain-text errors,
//! a container that vanishes between list and inspect, replies dripped one
//! byte at a time, and garbage. Wire details follow docs/compat.md §1.
//!
//! The daemon is `outlyer_testkit::FakeDaemon` in its 1.7 and 29 flavors;
//! this file gives each of its containers a real process and checks the
//! requests the agent sent.
//!
//! Fake containers are real `sleep` processes placed in `/docker/<id>`
//! cgroups (like the cgroupfs driver does) when the test runs as root, so the
//! agent can resolve them like real ones.

mod common;

use common::*;
use outlyer_agent::registry::ContainerInfo;
use outlyer_testkit::{path_of, DaemonState, FakeDaemon, Flavor, Recorded};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Fake containers: a sleeping process in its own cgroups

static ID_COUNTER: AtomicU32 = AtomicU32::new(0);

fn fake_id() -> String {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let seed = (
        std::process::id(),
        ID_COUNTER.fetch_add(1, Ordering::Relaxed),
        Instant::now(),
    );
    (0..4u8)
        .map(|i| {
            let mut h = DefaultHasher::new();
            (format!("{seed:?}"), i).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// cpuset cgroups accept tasks only once cpus and mems are set.
fn inherit_cpuset(dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        if fs::read_to_string(&own).is_ok_and(|v| v.trim().is_empty()) {
            if let Some(parent) = dir.parent() {
                if let Ok(v) = fs::read_to_string(parent.join(file)) {
                    let _ = fs::write(&own, v.trim());
                }
            }
        }
    }
}

struct FakeProcess {
    child: Child,
    cgroup_dirs: Vec<PathBuf>,
}

impl FakeProcess {
    /// `sleep 3600`, moved into `/docker/<id>` in every hierarchy if possible.
    fn spawn(id: &str) -> FakeProcess {
        let child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let mut cgroup_dirs = Vec::new();
        for mount in cgroup_mounts() {
            let parent = mount.join("docker");
            let dir = parent.join(id);
            if fs::create_dir_all(&dir).is_err() {
                continue;
            }
            inherit_cpuset(&parent);
            inherit_cpuset(&dir);
            cgroup_dirs.push(dir.clone());
            if let Err(e) = fs::write(dir.join("cgroup.procs"), child.id().to_string()) {
                eprintln!(
                    "note: could not move pid {} into {}: {e}",
                    child.id(),
                    dir.display()
                );
            }
        }
        FakeProcess { child, cgroup_dirs }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.cgroup_dirs {
            // The kernel frees an emptied cgroup shortly after its last task exits.
            wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

/// A container of the fake daemon: `id`, `name`, `image`, `pid` (of its
/// `sleep`) and `started_at` are set.
type FakeContainer = ContainerInfo;

// ---------------------------------------------------------------------------
// The fake daemon (outlyer_testkit::FakeDaemon), with a real process per container

/// The prefix a negotiating client must use.
fn expected_prefix(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Docker17 => "/v1.19/",
        Flavor::Docker29 => "/v1.54/",
        Flavor::Docker2010 => "/v1.41/",
    }
}

struct FakeDocker {
    daemon: FakeDaemon,
    socket: PathBuf,
    processes: Vec<FakeProcess>,
}

fn now_secs() -> u64 {
    unix_now() as u64
}

impl FakeDocker {
    fn start(flavor: Flavor) -> FakeDocker {
        let daemon = FakeDaemon::start_as(flavor, Vec::new()).expect("start fake docker");
        let socket = daemon.socket().to_path_buf();
        FakeDocker {
            daemon,
            socket,
            processes: Vec::new(),
        }
    }

    fn socket_str(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    fn with<R>(&self, f: impl FnOnce(&mut DaemonState) -> R) -> R {
        self.daemon.with(f)
    }

    /// Adds a running container (not announced by an event).
    fn add(&mut self, name: &str, image: &str) -> FakeContainer {
        let id = fake_id();
        let process = FakeProcess::spawn(&id);
        let c = ContainerInfo {
            id,
            name: name.to_string(),
            image: image.to_string(),
            pid: process.pid(),
            started_at: now_secs() as f64,
            ..ContainerInfo::default()
        };
        self.processes.push(process);
        self.daemon.add(c.clone());
        c
    }

    /// Adds a running container and announces it (`create`, `start`).
    fn start_container(&mut self, name: &str, image: &str) -> FakeContainer {
        let c = self.add(name, image);
        self.daemon.emit(&c, "create");
        self.daemon.emit(&c, "start");
        c
    }

    /// Removes a container and announces `die` and `destroy`.
    fn kill_container(&mut self, c: &FakeContainer) {
        self.daemon.remove(&c.id);
        self.processes.retain(|p| p.pid() != c.pid);
        self.daemon.emit(c, "die");
        self.daemon.emit(c, "destroy");
    }

    /// Sends `line` as one event (one chunk) to every subscriber.
    fn emit_raw(&self, line: &str) {
        self.daemon.emit_raw(line);
    }

    fn events_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| path_of(&r.line).ends_with("/events"))
            .count()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.daemon.recorded()
    }

    fn subscribers(&self) -> usize {
        self.daemon.subscribers()
    }

    /// Every request carried a Host header, used the negotiated version
    /// prefix (only `/version` and `/_ping` may be unversioned) and, where
    /// `/events` has filters, used the list form old daemons understand.
    fn assert_requests_well_formed(&self, agent: &Agent) {
        let prefix = expected_prefix(self.daemon.flavor());
        let requests = self.requests();
        assert!(!requests.is_empty(), "the agent sent no request");
        assert!(
            requests.iter().any(|r| path_of(&r.line) == "/version"),
            "the agent never asked GET /version (unversioned) to negotiate; requests: {requests:#?}"
        );
        for r in &requests {
            assert!(
                r.host.is_some(),
                "request without Host header: {:?}\nagent stderr:\n{}",
                r.line,
                agent.stderr()
            );
            let path = path_of(&r.line);
            let unversioned_ok = matches!(path.as_str(), "/version" | "/_ping");
            assert!(
                path.starts_with(prefix) || unversioned_ok,
                "request {:?} does not use the negotiated prefix {prefix}; all requests: {requests:#?}",
                r.line
            );
            if path.ends_with("/events") {
                if let Some(filters) = query_param(&r.line, "filters") {
                    assert!(
                        filters.contains("\":[") && !filters.contains("\":{"),
                        "events filters must use the list form old daemons accept, got {filters}"
                    );
                }
            }
        }
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(request_line: &str, key: &str) -> Option<String> {
    let target = request_line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| url_decode(v))
    })
}

// ---------------------------------------------------------------------------
// Self-checks of the fake (no agent involved)

fn raw_unix(socket: &Path, request: &str) -> HttpResponse {
    let mut s = UnixStream::connect(socket).expect("connect fake docker");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_response(&mut s, false).expect("read fake reply")
}

#[test]
fn fake_daemon_speaks_docker_17_shapes() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let c = fake.add("oe2e-selfcheck", "busybox:1.0");
    let v = raw_unix(
        &fake.socket,
        "GET /version HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(v.status, 200);
    assert!(v.header("content-length").is_some());
    assert!(!v.body_text().contains("MinAPIVersion"));
    let too_new = raw_unix(
        &fake.socket,
        "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(too_new.status, 400);
    assert!(too_new
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let list = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert!(
        list.body_text().contains(r#""Labels":null"#),
        "{}",
        list.body_text()
    );
    let inspect = raw_unix(
        &fake.socket,
        &format!(
            "GET /v1.19/containers/{}/json HTTP/1.1\r\nHost: docker\r\n\r\n",
            &c.id[..12]
        ),
    );
    assert_eq!(inspect.status, 200);
    assert_eq!(inspect.header("transfer-encoding"), Some("chunked"));
    let body = inspect.body_text();
    assert!(body.contains(r#""IPAddress":"172.17.0.5""#) && !body.contains("Networks"));
    assert!(body.contains(&format!(r#""Pid":{}"#, c.pid)));
    let missing = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/nope/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_text(), "no such id: nope\n");

    // Events: nothing at all until the first event, then head + chunk.
    let mut ev = UnixStream::connect(&fake.socket).unwrap();
    ev.write_all(b"GET /v1.19/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .unwrap();
    ev.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        ev.read(&mut byte).is_err(),
        "Docker 1.7 sends no head before the first event"
    );
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(10), || fake
            .subscribers()
            == 1)
        .is_some()
    );
    let d = fake.start_container("oe2e-selfcheck2", "busybox:1.0");
    ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"start\"") {
        let n = ev.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(&format!(
        r#"{{"status":"create","id":"{}","from":"busybox:1.0","time":"#,
        d.id
    )));
    let recorded = fake.requests();
    assert!(recorded.iter().all(|r| r.host.as_deref() == Some("docker")));
}

#[test]
fn fake_daemon_speaks_docker_29_shapes() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let c = fake.add("oe2e-selfcheck", "nginx:1.27");
    let v = raw_unix(
        &fake.socket,
        "GET /version HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert!(v.body_text().contains(r#""MinAPIVersion":"1.40""#));
    assert_eq!(v.header("api-version"), Some("1.56"));
    let old = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(old.status, 400);
    assert!(old
        .body_text()
        .starts_with(r#"{"message":"client version 1.19 is too old"#));
    let inspect = raw_unix(
        &fake.socket,
        &format!(
            "GET /v1.54/containers/{}/json HTTP/1.1\r\nHost: docker\r\n\r\n",
            c.id
        ),
    );
    let body = inspect.body_text();
    assert!(body.contains(r#""Networks":{"bridge""#));
    assert!(!body.contains(r#""NetworkSettings":{"IPAddress""#));
    let mut ev = UnixStream::connect(&fake.socket).unwrap();
    ev.write_all(b"GET /v1.54/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .unwrap();
    let head = read_head_only(&mut ev);
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("Transfer-Encoding: chunked"));
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(10), || fake
            .subscribers()
            == 1)
        .is_some()
    );
    fake.kill_container(&c);
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while !String::from_utf8_lossy(&got).contains("destroy") {
        let n = ev.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(r#"{"Type":"container","Action":"die","Actor":{"ID":""#));
    assert!(!text.contains("\"status\""));
}

fn read_head_only(s: &mut UnixStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(n, 1, "EOF inside head");
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

// ---------------------------------------------------------------------------
// The agent against the fake

const SHOW: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

fn agent_for(fake: &FakeDocker) -> Agent {
    Agent::serve(fake.socket_str(), &["--interval", "1"], &[])
}

fn wait_shown(agent: &Agent, name: &str, timeout: Duration) -> Duration {
    match agent.wait_metrics(timeout, POLL, |b| has_container(b, name)) {
        Some((t, _)) => t,
        None => panic!(
            "container {name} not in /metrics within {timeout:?}\n/metrics:\n{}\nagent stderr:\n{}",
            agent.try_metrics().unwrap_or_default(),
            agent.stderr()
        ),
    }
}

fn wait_gone(agent: &Agent, name: &str, timeout: Duration) -> Duration {
    match agent.wait_metrics(timeout, POLL, |b| !has_container(b, name)) {
        Some((t, _)) => t,
        None => panic!(
            "container {name} still in /metrics after {timeout:?}\nagent stderr:\n{}",
            agent.stderr()
        ),
    }
}

#[test]
fn docker_17_api_119_is_negotiated_and_followed() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let first = fake.add(&unique_name("old-a"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    let body = agent.metrics();
    let line = container_line(&body, "container_last_seen", &first.name).unwrap();
    assert_eq!(
        label(line, "image").as_deref(),
        Some("busybox:1.0"),
        "image label from Config.Image: {line}"
    );
    assert_eq!(
        gauge(&body, "outlyer_agent_docker_up"),
        Some(1.0),
        "docker_up with a 1.7 daemon"
    );

    // The events stream has no head until the first event: the agent must
    // not give up on it. A new container shows up through that stream.
    assert!(
        wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1).is_some(),
        "agent never subscribed to /events; requests: {:#?}",
        fake.requests()
    );
    thread::sleep(Duration::from_millis(2500));
    let second = fake.start_container(&unique_name("old-b"), "redis:3.0");
    let t = wait_shown(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "new container listed after {t:?} (> 1 s) via an old-style start event"
    );
    fake.kill_container(&first);
    let t = wait_gone(&agent, &first.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "dead container still listed {t:?} after its die event"
    );
    assert!(agent.is_running());
    assert_eq!(
        fake.events_requests(),
        1,
        "the agent re-opened /events: a silent old-daemon stream must not time out"
    );
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn docker_29_api_156_min_140_uses_v154() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("new-a"), "nginx:1.27");
    let agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    assert!(
        wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1).is_some(),
        "agent never subscribed to /events"
    );
    let second = fake.start_container(&unique_name("new-b"), "redis:7");
    let t = wait_shown(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "new container listed after {t:?} via a Type/Action/Actor event"
    );
    let line = container_line(&agent.metrics(), "container_last_seen", &second.name)
        .unwrap()
        .to_string();
    assert_eq!(label(&line, "image").as_deref(), Some("redis:7"), "{line}");
    fake.kill_container(&second);
    let t = wait_gone(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "dead container listed {t:?} after a Type/Action/Actor die event"
    );
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn container_vanished_between_list_and_inspect_is_skipped() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let kept = fake.add(&unique_name("kept"), "busybox:1.0");
    let gone = fake.add(&unique_name("vanished"), "busybox:1.0");
    fake.with(|s| s.vanished.insert(gone.id.clone()));
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &kept.name, SHOW);
    let inspected = wait_until(Duration::from_secs(5), POLL, || {
        fake.requests()
            .iter()
            .any(|r| r.line.contains(&gone.id[..12]))
    });
    assert!(
        inspected.is_some(),
        "agent never inspected the listed container {}",
        gone.id
    );
    thread::sleep(Duration::from_millis(500));
    let body = agent.metrics();
    assert!(
        !has_container(&body, &gone.name),
        "a container whose inspect answered 404 is listed:\n{body}"
    );
    assert!(agent.is_running(), "agent exited after a 404 on inspect");
    // And it keeps following events.
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let later = fake.start_container(&unique_name("later"), "busybox:1.0");
    wait_shown(&agent, &later.name, Duration::from_secs(3));
}

#[test]
fn plain_text_500_on_list_is_retried() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.fail_lists = 1);
    let c = fake.add(&unique_name("retry"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    // Reconnect backoff is capped at 30 s.
    wait_shown(&agent, &c.name, Duration::from_secs(35));
    let lists = fake
        .requests()
        .iter()
        .filter(|r| path_of(&r.line).ends_with("/containers/json"))
        .count();
    assert!(
        lists >= 2,
        "expected a second list after the 500, saw {lists}"
    );
    assert!(agent.is_running());
}

#[test]
fn persistent_errors_after_connecting_back_off() {
    // The daemon accepts connections and answers /version, but every list
    // fails: a backoff that restarts at each successful connect would retry
    // this at full speed forever.
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.fail_lists = u32::MAX);
    let c = fake.add(&unique_name("failing"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    let lists = || {
        fake.requests()
            .iter()
            .filter(|r| path_of(&r.line).ends_with("/containers/json"))
            .count()
    };
    thread::sleep(Duration::from_secs(8));
    let n = lists();
    assert!(
        n >= 2,
        "the failed list was not retried within 8 s ({n} lists)"
    );
    assert!(
        n <= 12,
        "{n} failed lists in 8 s: retries after an error reply do not back off\nstderr:\n{}",
        agent.stderr()
    );
    assert!(agent.is_running());
    // It recovers once the daemon does.
    fake.with(|s| s.fail_lists = 0);
    wait_shown(&agent, &c.name, Duration::from_secs(35));
}

#[test]
fn connections_closed_after_each_reply_are_retried() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.close_after_reply = true);
    let names: Vec<String> = (0..3)
        .map(|i| {
            fake.add(&unique_name(&format!("close{i}")), "busybox:1.0")
                .name
        })
        .collect();
    let mut agent = agent_for(&fake);
    for name in &names {
        wait_shown(&agent, name, SHOW);
    }
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let later = fake.start_container(&unique_name("close-ev"), "busybox:1.0");
    wait_shown(&agent, &later.name, Duration::from_secs(3));
    assert!(agent.is_running());
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn malformed_event_line_does_not_lose_later_events() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("badev-a"), "nginx:1.27");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    fake.emit_raw("{\"Type\":\"container\",\"Action\":\n");
    fake.emit_raw("\u{1e}not json at all]\n");
    let second = fake.start_container(&unique_name("badev-b"), "nginx:1.27");
    // Either the stream goes on or the agent reconnects and re-lists.
    wait_shown(&agent, &second.name, Duration::from_secs(10));
    assert!(agent.is_running());
    assert!(has_container(&agent.metrics(), &first.name));
}

/// A daemon that sends garbage event lines without end: the agent keeps
/// following the stream, but its log holds a bounded number of lines per
/// window, then one count of what it left out.
#[test]
fn a_flood_of_garbage_events_is_counted_not_logged() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("flood-a"), "nginx:1.27");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let before = agent.stderr().lines().count();
    let sent = 20_000;
    let batch = "{\"Type\":\"container\",\"Action\":[}\n".repeat(100);
    for _ in 0..sent / 100 {
        fake.emit_raw(&batch);
    }
    // The stream still carries real events after the garbage.
    let second = fake.start_container(&unique_name("flood-b"), "nginx:1.27");
    wait_shown(&agent, &second.name, Duration::from_secs(10));
    let during = agent.stderr().lines().count() - before;
    println!("garbage event lines sent: {sent}; log lines written: {during}");
    assert!(
        during <= 250,
        "{during} log lines for {sent} garbage events"
    );
    // Past the window, the next line of that site brings the count.
    std::thread::sleep(Duration::from_millis(10_500));
    fake.emit_raw("{\"Type\":\"container\",\"Action\":[}\n");
    let counted = wait_until(Duration::from_secs(5), POLL, || {
        agent.stderr().contains("times in the last 10 s, not shown")
    });
    assert!(
        counted.is_some(),
        "no count of the hidden lines:\n{}",
        agent.stderr()
    );
    assert!(agent.is_running());
    assert!(has_container(&agent.metrics(), &first.name));
}

#[test]
fn replies_dripped_one_byte_at_a_time_are_parsed() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.drip = true);
    let c = fake.add(&unique_name("drip"), "busybox:1.0");
    let agent = agent_for(&fake);
    wait_shown(&agent, &c.name, Duration::from_secs(20));
    wait_until(Duration::from_secs(10), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let d = fake.start_container(&unique_name("drip-ev"), "busybox:1.0");
    // The event and then a ~2 KiB inspect reply arrive a byte at a time.
    wait_shown(&agent, &d.name, Duration::from_secs(20));
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn garbage_replies_are_logged_and_survived() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.garbage = true);
    let c = fake.add(&unique_name("garbage"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    let seen = wait_until(Duration::from_secs(15), POLL, || {
        fake.with(|s| s.garbage_sent) >= 2
    });
    assert!(
        seen.is_some(),
        "agent did not come back after a garbage reply (garbage replies sent: {}, connections: {})",
        fake.with(|s| s.garbage_sent),
        fake.with(|s| s.connections)
    );
    assert!(agent.is_running(), "agent exited on garbage");
    let (status, _) = http_get(&agent.addr, "/healthz");
    assert_eq!(status, 200, "/healthz while Docker answers garbage");
    let body = agent.metrics();
    assert_eq!(
        gauge(&body, "outlyer_agent_docker_up"),
        Some(0.0),
        "docker_up while Docker answers garbage:\n{body}"
    );
    assert!(!has_container(&body, &c.name));
    assert!(
        !agent.stderr().trim().is_empty(),
        "agent logged nothing about garbage replies"
    );
    // Reconnects back off: a daemon that keeps answering garbage is not
    // hammered (a doubling backoff from 100 ms makes about 7 attempts in 6 s).
    let start = Instant::now();
    let before = fake.with(|s| s.connections);
    thread::sleep(Duration::from_secs(6));
    let attempts = fake.with(|s| s.connections) - before;
    assert!(
        attempts <= 20,
        "{attempts} connections in {:?} to a daemon answering garbage: reconnects do not back off",
        start.elapsed()
    );
    assert!(agent.is_running(), "agent exited on garbage");

    fake.with(|s| s.garbage = false);
    wait_shown(&agent, &c.name, Duration::from_secs(35));
    let up = agent.wait_metrics(Duration::from_secs(5), POLL, |b| {
        gauge(b, "outlyer_agent_docker_up") == Some(1.0)
    });
    assert!(up.is_some(), "docker_up did not return to 1 after recovery");
}

/// For manual checks with curl or a development agent:
/// `FAKE_DOCKER_SOCKET=/tmp/fake.sock FAKE_DOCKER_FLAVOR=17|29 [FAKE_DOCKER_DRIP=1]
/// cargo test --test fake_docker serve_fake_for_manual_checks -- --ignored --nocapture`.
/// Serves one container, then starts another every 5 s and removes it 5 s
/// later, for `FAKE_DOCKER_SECS` (default 60).
#[test]
#[ignore]
fn serve_fake_for_manual_checks() {
    let flavor = match std::env::var("FAKE_DOCKER_FLAVOR").as_deref() {
        Ok("29") => Flavor::Docker29,
        _ => Flavor::Docker17,
    };
    let secs: u64 = std::env::var("FAKE_DOCKER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut fake = FakeDocker::start(flavor);
    fake.with(|s| s.drip = std::env::var_os("FAKE_DOCKER_DRIP").is_some());
    let link =
        std::env::var("FAKE_DOCKER_SOCKET").unwrap_or_else(|_| "/tmp/oe2e-fake.sock".to_string());
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&fake.socket, &link).expect("symlink socket");
    let first = fake.add("fake-first", "busybox:1.0");
    println!(
        "fake {flavor:?} daemon on {link}; container {} pid {}",
        first.id, first.pid
    );
    let start = Instant::now();
    let mut previous: Option<FakeContainer> = None;
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_secs(5));
        match previous.take() {
            Some(c) => fake.kill_container(&c),
            None => {
                n += 1;
                previous = Some(fake.start_container(&format!("fake-{n}"), "busybox:1.0"));
            }
        }
    }
    let _ = fs::remove_file(&link);
    for r in fake.requests() {
        println!("{:?} host={:?}", r.line, r.host);
    }
}
