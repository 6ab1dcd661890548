//! Shared harness for the end-to-end tests: the agent as a child process, a
//! plain HTTP/1.1 client over std `TcpStream`, Docker CLI helpers with
//! containers removed on drop, and a private dockerd for tests that kill the
//! daemon. Every test binary uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod containerd;

/// The socket of the machine's shared Docker daemon.
pub const SHARED_SOCKET: &str = "/var/run/docker.sock";
/// The test image (a busybox-static tar made by `scripts/ci-setup.sh`).
pub const IMAGE: &str = "localbusy:latest";
/// Every container, directory and daemon the tests create starts with this.
pub const PREFIX: &str = "oe2e";

static COUNTER: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------
// Paths and preconditions

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The agent binary: this build's, or `OUTLYER_AGENT_BIN` (a release or
/// static build, for the figures some tests print).
pub fn agent_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("OUTLYER_AGENT_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_outlyer-agent").to_owned())
    })
}

/// The Docker CLI: `OUTLYER_DOCKER_CLI` if set, else `/usr/bin/docker`, else
/// whatever `docker` is on PATH.
pub fn docker() -> String {
    if let Ok(path) = std::env::var("OUTLYER_DOCKER_CLI") {
        return path;
    }
    if Path::new("/usr/bin/docker").exists() {
        return "/usr/bin/docker".to_string();
    }
    "docker".to_string()
}

fn dockerd_bin() -> Option<String> {
    [
        "/usr/sbin/dockerd",
        "/usr/bin/dockerd",
        "/usr/local/bin/dockerd",
    ]
    .iter()
    .find(|p| Path::new(p).exists())
    .map(|p| p.to_string())
}

fn docker_required() -> bool {
    std::env::var_os("OUTLYER_REQUIRE_DOCKER").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A name unique to this test, this process and this call, usable as a
/// container name or directory name.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{tag}-{}-{n}", std::process::id())
}

/// True when `GET /_ping` on the unix socket answers `200 OK`.
pub fn docker_answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    reply.starts_with("HTTP/1.") && reply.contains(" 200 ") && reply.ends_with("OK")
}

/// Whether the shared daemon can be used. Without a daemon the test is
/// skipped with a message, unless `OUTLYER_REQUIRE_DOCKER` is set: then it
/// fails. Also imports the test image if it is missing.
pub fn require_docker() -> bool {
    let available = docker_answers(Path::new(SHARED_SOCKET))
        && Command::new(docker())
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !available {
        if docker_required() {
            panic!(
                "OUTLYER_REQUIRE_DOCKER is set but no Docker daemon answers on {SHARED_SOCKET} \
                 (or the docker CLI is missing); run scripts/ci-setup.sh as root"
            );
        }
        eprintln!("SKIPPED: no Docker daemon on {SHARED_SOCKET}; set OUTLYER_REQUIRE_DOCKER=1 to fail instead");
        return false;
    }
    let cli = DockerCli::shared();
    ensure_image(&cli);
    cli.sweep_stale();
    true
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The Podman CLI: `OUTLYER_PODMAN_CLI` if set, else `podman` on PATH.
pub fn podman() -> String {
    std::env::var("OUTLYER_PODMAN_CLI").unwrap_or_else(|_| "podman".to_string())
}

/// Whether a rootful Podman can be used (root, the CLI runs). Same skip/fail
/// policy as [`require_docker`], on the same variable: `scripts/ci-setup.sh`
/// installs podman beside Docker.
pub fn require_podman() -> bool {
    let ok = is_root()
        && Command::new(podman())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        if docker_required() {
            panic!(
                "OUTLYER_REQUIRE_DOCKER is set but podman can't be used (needs root and the \
                 podman CLI); run scripts/ci-setup.sh as root"
            );
        }
        eprintln!("SKIPPED: podman needs root and the podman CLI; set OUTLYER_REQUIRE_DOCKER=1 to fail instead");
        return false;
    }
    true
}

/// Whether a private dockerd can be started (root, dockerd installed). Same
/// skip/fail policy as [`require_docker`].
pub fn require_private_dockerd() -> bool {
    let ok = is_root()
        && dockerd_bin().is_some()
        && Path::new("/usr/bin/containerd").exists()
        && Command::new("unshare")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        if docker_required() {
            panic!("OUTLYER_REQUIRE_DOCKER is set but a private dockerd can't be started (needs root, dockerd, containerd, unshare)");
        }
        eprintln!("SKIPPED: a private dockerd needs root, dockerd, containerd and unshare");
        return false;
    }
    sweep_stale_private_daemons();
    true
}

fn ensure_image(cli: &DockerCli) {
    if cli.cmd(&["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let script = repo_root().join("scripts/ci-setup.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--import-image")
        .arg(cli.host_url())
        .output()
        .expect("run scripts/ci-setup.sh --import-image");
    assert!(
        out.status.success(),
        "importing {IMAGE} into {} failed: {}",
        cli.host_url(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// Waiting

/// Calls `f` every `poll` until it returns true or `timeout` passes. Returns
/// how long it took, or `None` on timeout (`f` is tried once more at the end).
pub fn wait_until(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(poll);
    }
}

// ---------------------------------------------------------------------------
// Temporary directories

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(tag));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// HTTP client (std only)

pub struct HttpResponse {
    pub status: u16,
    /// Status line and header lines, CRLF-separated, without the blank line.
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response from `stream`. `head_only` is for replies to HEAD
/// (no body whatever the framing headers say).
pub fn read_response(stream: &mut impl Read, head_only: bool) -> io::Result<HttpResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "EOF before end of head; got {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line: {head:?}"),
            )
        })?;
    let mut response = HttpResponse {
        status,
        head,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        while rest.len() < len {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside body",
                ));
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        response.body = rest;
    } else if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.body = read_chunked(stream, rest)?;
    } else {
        stream.read_to_end(&mut rest)?;
        response.body = rest;
    }
    Ok(response)
}

fn read_chunked(stream: &mut impl Read, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>| -> io::Result<()> {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside chunked body",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(())
    };
    loop {
        let line_end = loop {
            if let Some(p) = find(&buf, b"\r\n") {
                break p;
            }
            fill(&mut buf)?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size_text:?}"),
                )
            })?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        while buf.len() < size + 2 {
            fill(&mut buf)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// Sends `request` as-is and reads one response.
pub fn http_exchange(addr: &str, request: &[u8], timeout: Duration) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request)?;
    let head_only = request.starts_with(b"HEAD ");
    read_response(&mut stream, head_only)
}

pub fn try_http_get(addr: &str, path: &str) -> io::Result<HttpResponse> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http_exchange(addr, request.as_bytes(), Duration::from_secs(5))
}

/// `GET path` with `Connection: close`; panics on a transport error.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    match try_http_get(addr, path) {
        Ok(r) => (r.status, r.body_text()),
        Err(e) => panic!("GET http://{addr}{path}: {e}"),
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

// ---------------------------------------------------------------------------
// Prometheus text helpers

/// Sample lines of `metric` (exact name, with or without labels).
pub fn metric_lines<'a>(body: &'a str, metric: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    body.lines().filter(move |line| {
        line.strip_prefix(metric)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// The value of `key` in a sample line's label set.
pub fn label(line: &str, key: &str) -> Option<String> {
    let labels = line.get(line.find('{')? + 1..line.rfind('}')?)?;
    let mut rest = labels;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let k = rest[..eq].trim_start_matches([',', ' ']).trim();
        let after = rest.get(eq + 1..)?.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        if k == key {
            return Some(value);
        }
        rest = after.get(end + 1..)?;
    }
    None
}

/// The sample value (the field after the labels; timestamps are ignored).
pub fn sample_value(line: &str) -> Option<f64> {
    let after_labels = match line.rfind('}') {
        Some(p) => &line[p + 1..],
        None => line.split_once(' ')?.1,
    };
    let v = after_labels.split_whitespace().next()?;
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

/// The value of an unlabelled gauge such as `outlyer_agent_docker_up`.
pub fn gauge(body: &str, metric: &str) -> Option<f64> {
    metric_lines(body, metric).next().and_then(sample_value)
}

/// The `metric` sample line whose `name` label is `name`.
pub fn container_line<'a>(body: &'a str, metric: &'a str, name: &str) -> Option<&'a str> {
    metric_lines(body, metric).find(|line| label(line, "name").as_deref() == Some(name))
}

/// Whether the container named `name` is listed (`container_last_seen`).
pub fn has_container(body: &str, name: &str) -> bool {
    container_line(body, "container_last_seen", name).is_some()
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// The agent as a child process

/// Sends a signal by name (`TERM`, `INT`, `KILL`, …) to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

fn clean_agent_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        // Proxies too: nothing the agent does in a test may leave loopback.
        let proxy = k.eq_ignore_ascii_case("http_proxy")
            || k.eq_ignore_ascii_case("https_proxy")
            || k.eq_ignore_ascii_case("all_proxy")
            || k.eq_ignore_ascii_case("no_proxy");
        if k.starts_with("DATALOOP_") || k == "DOCKER_HOST" || proxy {
            cmd.env_remove(&key);
        }
    }
}

pub struct Agent {
    child: Child,
    dir: TempDir,
    /// The `--listen` address when started through [`Agent::serve`].
    pub addr: String,
    status: Option<ExitStatus>,
}

impl Agent {
    /// Starts the agent with exactly `args` and `env` (inherited `DATALOOP_*`
    /// and `DOCKER_HOST` are removed). stdout and stderr go to files.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let dir = TempDir::new("agent");
        let stdout = fs::File::create(dir.path().join("stdout")).expect("create stdout file");
        let stderr = fs::File::create(dir.path().join("stderr")).expect("create stderr file");
        let mut cmd = Command::new(agent_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        clean_agent_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn outlyer-agent");
        let addr = args
            .iter()
            .position(|a| *a == "--listen")
            .and_then(|i| args.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default();
        Agent {
            child,
            dir,
            addr,
            status: None,
        }
    }

    /// Starts the agent on a free loopback port against the Docker socket
    /// `socket` and waits (10 s) until `/healthz` answers 200.
    pub fn serve(socket: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Agent {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["--docker-socket", socket, "--listen", &addr];
        args.extend_from_slice(extra_args);
        let mut agent = Agent::spawn(&args, env);
        agent.wait_healthy(Duration::from_secs(10));
        agent
    }

    /// Waits until `/healthz` answers 200; panics with the agent's stderr if
    /// not, at once if the agent has exited.
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let addr = self.addr.clone();
        let mut healthy = false;
        wait_until(timeout, Duration::from_millis(20), || {
            healthy = try_http_get(&addr, "/healthz").is_ok_and(|r| r.status == 200);
            healthy || self.try_status().is_some()
        });
        if !healthy {
            let exited = self.try_status();
            panic!(
                "agent did not answer GET /healthz on {addr} within {timeout:?} (exit status: {exited:?})\nstderr:\n{}",
                self.stderr()
            );
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// The exit status if the agent has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the agent to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, Duration::from_millis(5), || {
            self.try_status().is_some()
        });
        self.try_status()
    }

    pub fn try_metrics(&self) -> Option<String> {
        try_http_get(&self.addr, "/metrics")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body_text())
    }

    /// `GET /metrics`; panics (with the agent's stderr) unless it answers 200.
    pub fn metrics(&self) -> String {
        match try_http_get(&self.addr, "/metrics") {
            Ok(r) if r.status == 200 => r.body_text(),
            Ok(r) => panic!(
                "GET /metrics answered {}: {}\nagent stderr:\n{}",
                r.status,
                r.body_text(),
                self.stderr()
            ),
            Err(e) => panic!("GET /metrics failed: {e}\nagent stderr:\n{}", self.stderr()),
        }
    }

    /// Polls `/metrics` every `poll` until `pred` holds; returns the elapsed
    /// time and the body that satisfied it.
    pub fn wait_metrics(
        &self,
        timeout: Duration,
        poll: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<(Duration, String)> {
        let mut last = String::new();
        let elapsed = wait_until(timeout, poll, || match self.try_metrics() {
            Some(body) => {
                let ok = pred(&body);
                last = body;
                ok
            }
            None => false,
        })?;
        Some((elapsed, last))
    }

    /// The current value of an unlabelled gauge, if /metrics answers.
    pub fn gauge(&self, metric: &str) -> Option<f64> {
        self.try_metrics().and_then(|b| gauge(&b, metric))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- agent stderr (pid {}) ----\n{}",
                self.child.id(),
                tail(&self.stderr(), 80)
            );
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs the agent to completion (killed after `timeout`, then `code` is None).
pub fn run_agent(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let start = Instant::now();
    let mut agent = Agent::spawn(args, env);
    let status = agent.wait_exit(timeout);
    let elapsed = start.elapsed();
    Finished {
        code: status.and_then(|s| s.code()),
        stdout: agent.stdout(),
        stderr: agent.stderr(),
        elapsed,
    }
}

// ---------------------------------------------------------------------------
// Docker CLI

#[derive(Clone)]
pub struct DockerCli {
    host: Option<String>,
}

impl DockerCli {
    /// The machine's shared daemon.
    pub fn shared() -> DockerCli {
        DockerCli { host: None }
    }

    /// A daemon at `host` (`unix:///path`).
    pub fn at(host: &str) -> DockerCli {
        DockerCli {
            host: Some(host.to_string()),
        }
    }

    pub fn host_url(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| format!("unix://{SHARED_SOCKET}"))
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(docker());
        cmd.env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
        cmd.arg("-H").arg(self.host_url());
        cmd.args(args).stdin(Stdio::null());
        cmd.output().expect("run docker CLI")
    }

    /// Runs the CLI, panics unless it succeeds; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker run -d --name <name> <extra…> localbusy:latest sleep 3600`.
    /// The container is removed when the guard drops.
    pub fn run_sleeper(&self, name: &str, extra: &[&str]) -> Container {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sleep", "3600"]);
        let id = self.ok(&args);
        assert_eq!(
            id.len(),
            64,
            "docker run printed {id:?}, expected a 64-hex ID"
        );
        Container {
            name: name.to_string(),
            id,
            cli: self.clone(),
        }
    }

    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = self.cmd(&["inspect", "--format", format, name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Removes containers named `oe2e-*-<pid>-*` whose test process is gone
    /// (left behind by an interrupted run).
    pub fn sweep_stale(&self) {
        let out = self.cmd(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={PREFIX}-"),
            "--format",
            "{{.Names}}",
        ]);
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            let parts: Vec<&str> = name.split('-').collect();
            if parts.len() < 4 || parts[0] != PREFIX {
                continue;
            }
            let Ok(pid) = parts[parts.len() - 2].parse::<u32>() else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = self.cmd(&["rm", "-f", name]);
            }
        }
    }
}

/// A container removed (`docker rm -f`) when dropped.
pub struct Container {
    pub name: String,
    pub id: String,
    cli: DockerCli,
}

impl Container {
    /// `docker rm -f` now (the guard then does nothing more).
    pub fn remove(&self) {
        self.cli.ok(&["rm", "-f", &self.name]);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.cli.cmd(&["rm", "-f", &self.name]);
    }
}

// ---------------------------------------------------------------------------
// A private dockerd (own socket, data-root, exec-root, pidfile)

pub struct PrivateDockerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl PrivateDockerd {
    /// Reserves the paths; the daemon is not started (its socket does not
    /// exist until [`PrivateDockerd::start`]).
    pub fn new(tag: &str) -> PrivateDockerd {
        // Short: unix socket paths are limited to 107 bytes.
        let dir = PathBuf::from(format!("/tmp/{PREFIX}d-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create private dockerd dir");
        let socket = dir.join("docker.sock");
        PrivateDockerd {
            dir,
            socket,
            child: None,
            starts: 0,
        }
    }

    pub fn socket_str(&self) -> &str {
        self.socket.to_str().expect("utf-8 path")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn cli(&self) -> DockerCli {
        DockerCli::at(&self.host())
    }

    fn exec_root(&self) -> PathBuf {
        self.dir.join("x")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Starts dockerd and waits (60 s) for `/_ping`; imports the test image.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "private dockerd already running");
        let _ = fs::remove_file(self.dir.join("dockerd.pid"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open dockerd log");
        let log2 = log.try_clone().expect("dup log fd");
        let config = self.dir.join("daemon.json");
        fs::write(&config, "{}\n").expect("write daemon.json");
        let dockerd = dockerd_bin().expect("dockerd binary");
        // Its own network namespace: with `--bridge none` dockerd deletes any
        // `docker0` it can see, which in the host namespace belongs to the
        // shared daemon. `unshare` execs dockerd, so the child PID is dockerd's.
        let child = Command::new("unshare")
            .arg("--net")
            .arg(dockerd)
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .arg("--config-file")
            .arg(&config)
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
            ])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn dockerd");
        self.child = Some(child);
        self.starts += 1;
        let socket = self.socket.clone();
        let up = wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
            docker_answers(&socket)
        });
        if up.is_none() {
            panic!(
                "private dockerd did not answer /_ping within 60 s; log:\n{}",
                tail(&self.log(), 40)
            );
        }
        ensure_image(&self.cli());
    }

    /// PIDs of processes whose parent is `ppid`.
    fn children_of(ppid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return out;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(after) = stat.rfind(')').map(|p| &stat[p + 2..]) else {
                continue;
            };
            if after
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
                == Some(ppid)
            {
                out.push(pid);
            }
        }
        out
    }

    /// The containerd this dockerd started.
    pub fn containerd_pid(&self) -> Option<u32> {
        let pid = self.pid()?;
        Self::children_of(pid).into_iter().find(|c| {
            fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|comm| comm.trim() == "containerd")
        })
    }

    /// `kill -9` dockerd and its containerd (shims and containers are left
    /// to whatever happens to them).
    pub fn kill9(&mut self) {
        let containerd = self.containerd_pid();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A killed dockerd leaves its pidfile; the next start refuses it.
        let _ = fs::remove_file(self.dir.join("dockerd.pid"));
        if let Some(pid) = containerd {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
        }
    }

    /// Graceful stop (SIGTERM, 20 s), then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills every process that still refers to this daemon's directory
    /// (shims, containerd), by PID.
    fn kill_leftovers(&self) {
        let marker = self.dir.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        // Processes of its containers, through their cgroups (cgroupfs
        // driver on v1 or v2, or the systemd driver).
        let Ok(containers) = fs::read_dir(self.dir.join("data/containers")) else {
            return;
        };
        for entry in containers.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            for procs in [
                format!("/sys/fs/cgroup/pids/docker/{id}/cgroup.procs"),
                format!("/sys/fs/cgroup/docker/{id}/cgroup.procs"),
                format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/cgroup.procs"),
            ] {
                for pid in fs::read_to_string(&procs)
                    .unwrap_or_default()
                    .split_whitespace()
                {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            // The killed daemon can no longer remove the emptied cgroups.
            for mount in cgroup_mounts() {
                let dir = mount.join("docker").join(&id);
                if dir.exists() {
                    wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                        fs::remove_dir(&dir).is_ok() || !dir.exists()
                    });
                }
            }
        }
    }

    fn unmount_all(&self) {
        unmount_below(&self.dir);
    }
}

/// Mount points of every cgroup hierarchy (v1 controllers and cgroup2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let mount_point = pre.split_whitespace().nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// Tears down private daemons left by test processes that no longer exist
/// (a run killed by a timeout never reaches the drop handlers).
fn sweep_stale_private_daemons() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{PREFIX}d-")) {
            continue;
        }
        let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let socket = dir.join("docker.sock");
        drop(PrivateDockerd {
            dir,
            socket,
            child: None,
            starts: 0,
        });
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- private dockerd log ----\n{}", tail(&self.log(), 40));
        }
        if self.child.is_some() && docker_answers(&self.socket) {
            let cli = self.cli();
            let ids = cli.cmd(&["ps", "-aq"]);
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = cli.cmd(&args);
            }
        }
        self.stop();
        self.kill_leftovers();
        self.unmount_all();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Descriptors a process has open now.
pub fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `RssAnon`, ...), in KiB; 0
/// when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `promtool check metrics` over `text`: whether it exited 0, and what it
/// printed (stdout then stderr). `None` when promtool is not installed
/// (Debian package `prometheus`); callers decide whether that skips or fails.
pub fn promtool_report(text: &str) -> Option<(bool, String)> {
    let bin = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(
            std::env::var_os("PATH").map_or_else(Vec::new, |p| std::env::split_paths(&p).collect()),
        )
        .map(|d| d.join("promtool"))
        .find(|c| c.exists())?;
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), report))
}

/// Lazily unmounts every mount point below `dir`, deepest first (what a
/// private daemon left mounted there).
pub fn unmount_below(dir: &Path) {
    let marker = dir.to_string_lossy().into_owned();
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(&marker))
        .map(|p| p.to_string())
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", &p])
            .stderr(Stdio::null())
            .status();
    }
}
