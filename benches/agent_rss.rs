//! Memory of the real agent process tracking N synthetic containers.
//!
//! For each N: writes a synthetic host tree (`outlyer_testkit::SyntheticHost`),
//! serves its containers from a fake Docker 20.10 daemon
//! (`outlyer_testkit::FakeDaemon`), starts the agent binary in local mode with
//! `--rootfs <tree (a short symlink to it)> --docker-socket <fake> --listen 127.0.0.1:<port>
//! --interval 1`, waits until it tracks all N (from its log: nothing is
//! scraped before the first measurement), lets it run `--cycles` collection
//! cycles while the counters move, then reads `/proc/<pid>/{status,
//! smaps_rollup,fd}`: once before any scrape, and once right after one
//! `GET /metrics` (which must show all N containers). N = 0 always runs
//! first: per-container cost = (figure at N − figure at 0) / N.
//!
//! `cargo bench --bench agent_rss -- [--containers 0,100,1000] [--layout v1|v2]
//! [--cycles 10] [--label NAME]`
//!
//! The agent is the cargo-built one (bench profile, glibc) unless `AGENT_BIN`
//! names another, e.g. the shipped static musl binary
//! `target/x86_64-unknown-linux-musl/release/outlyer-agent`
//! (`scripts/build-static.sh`). `scripts/bench-rss.sh` runs both.

use outlyer_testkit::{FakeDaemon, SyntheticHost, TreeLayout, TreeOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    sizes: Vec<usize>,
    layout: TreeLayout,
    cycles: u32,
    label: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: agent_rss [--containers N[,N...]] [--layout v1|v2|hybrid] [--cycles K] [--label NAME]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![1000],
        layout: TreeLayout::V1Comounted,
        cycles: 10,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--containers" => {
                args.sizes = value()
                    .split(',')
                    .map(|n| n.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--layout" => {
                args.layout = match value().as_str() {
                    "v1" => TreeLayout::V1Comounted,
                    "v2" => TreeLayout::V2,
                    "hybrid" => TreeLayout::Hybrid,
                    _ => usage(),
                }
            }
            "--cycles" => args.cycles = value().parse().unwrap_or_else(|_| usage()),
            "--label" => args.label = value(),
            // cargo bench appends this to every bench's arguments.
            "--bench" => {}
            _ => usage(),
        }
    }
    // The baseline first, each size once.
    args.sizes.retain(|&n| n != 0);
    args.sizes.insert(0, 0);
    args.sizes.dedup();
    args
}

fn agent_bin() -> PathBuf {
    match std::env::var_os("AGENT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_outlyer-agent")),
    }
}

fn layout_name(l: TreeLayout) -> &'static str {
    match l {
        TreeLayout::V1Comounted => "v1",
        TreeLayout::V2 => "v2",
        TreeLayout::Hybrid => "hybrid",
        TreeLayout::V1CentOs6 => "centos6",
    }
}

/// One reading of the agent's memory, in KiB (fds: a count).
#[derive(Clone, Copy, Default)]
struct Mem {
    vm_rss: u64,
    vm_hwm: u64,
    rss_anon: u64,
    rss_file: u64,
    pss: Option<u64>,
    private_dirty: Option<u64>,
    fds: u64,
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn read_mem(pid: u32) -> std::io::Result<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |k: &str| kib_field(&status, k).unwrap_or(0);
    Ok(Mem {
        vm_rss: field("VmRSS"),
        vm_hwm: field("VmHWM"),
        rss_anon: field("RssAnon"),
        rss_file: field("RssFile"),
        pss: kib_field(&rollup, "Pss"),
        private_dirty: kib_field(&rollup, "Private_Dirty"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64,
    })
}

/// The soft `Max open files` of a process.
fn nofile_limit(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// `GET path` with `Connection: close`; the body, de-chunked if need be.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP reply");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let mut body = raw[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
            let size_text = String::from_utf8_lossy(&rest[..nl]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad())?;
            if size == 0 {
                break;
            }
            let chunk = rest.get(nl + 2..nl + 2 + size).ok_or_else(bad)?;
            out.extend_from_slice(chunk);
            rest = rest.get(nl + 4 + size..).ok_or_else(bad)?;
        }
        body = out;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Distinct `name="…"` values of one metric family.
fn distinct_names(body: &str, metric: &str) -> usize {
    let mut names: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.split("name=\"").nth(1)?.split('"').next())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

fn gauge(body: &str, metric: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

struct Run {
    before: Mem,
    after: Mem,
    metrics_bytes: usize,
    nofile: String,
    startup: Duration,
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stops the agent however the run ends: SIGTERM (a profiler wrapping it
/// through `AGENT_BIN`, e.g. `exec valgrind --tool=massif …`, then writes its
/// output), SIGKILL if it is still there after 10 s.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &Args, bin: &Path, n: usize) -> Result<Run, String> {
    let mut host = SyntheticHost::create(TreeOptions::new(args.layout, n))
        .map_err(|e| format!("synthetic tree: {e}"))?;
    let daemon = FakeDaemon::start((0..n).map(|i| host.container_info(i)).collect())
        .map_err(|e| format!("fake daemon: {e}"))?;
    // The agent keeps paths under its rootfs (one per cgroup controller and
    // container): a short symlink makes them about as long as under the
    // usual `/rootfs` rather than the tree's long temp path.
    let rootfs = std::env::temp_dir().join(format!("oar{}.{n}", std::process::id()));
    let _ = std::fs::remove_file(&rootfs);
    std::os::unix::fs::symlink(host.rootfs(), &rootfs)
        .map_err(|e| format!("symlink {}: {e}", rootfs.display()))?;
    let _link = RemoveOnDrop(rootfs.clone());
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!(
        "outlyer-agent-rss-{}-{n}-{port}.log",
        std::process::id()
    ));
    let log = std::fs::File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--rootfs")
        .arg(&rootfs)
        .arg("--docker-socket")
        .arg(daemon.socket())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // Local mode, whatever the caller's environment says; no proxies.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("DATALOOP_") || k == "DOCKER_HOST" || k.to_lowercase().ends_with("_proxy")
        {
            cmd.env_remove(k);
        }
    }
    let t0 = Instant::now();
    let mut agent = AgentProcess(
        cmd.spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?,
    );
    let pid = agent.0.id();
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let fail = |why: String| {
        let text = log_text();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{why}; agent log tail:\n{}", tail.join("\n")))
    };

    // Tracked = one `tracking <name>` log line per container; no scrape yet.
    let deadline = t0 + Duration::from_secs(60 + n as u64 / 20);
    loop {
        if let Ok(Some(st)) = agent.0.try_wait() {
            let _ = std::fs::remove_file(&log_path);
            return fail(format!("the agent exited: {st}"));
        }
        let tracked = log_text()
            .lines()
            .filter(|l| l.contains(" info tracking "))
            .count();
        if tracked >= n && daemon.lists() > 0 {
            break;
        }
        if Instant::now() > deadline {
            let why = format!(
                "only {tracked} of {n} containers tracked after {:?} ({} Docker requests, {} lists)",
                t0.elapsed(),
                daemon.requests(),
                daemon.lists()
            );
            let r = fail(why);
            let _ = std::fs::remove_file(&log_path);
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let startup = t0.elapsed();

    // Collection cycles with moving counters (the agent collects every second).
    for _ in 0..args.cycles {
        let tick = Instant::now();
        host.advance(1.0)
            .map_err(|e| format!("advance the tree: {e}"))?;
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    // Half a cycle more, so that the last advance has been collected.
    std::thread::sleep(Duration::from_millis(500));

    let before = read_mem(pid).map_err(|e| format!("read /proc/{pid}: {e}"))?;
    let (status, body) = match http_get(port, "/metrics") {
        Ok(r) => r,
        Err(e) => return fail(format!("GET /metrics: {e}")),
    };
    let after = read_mem(pid).map_err(|e| format!("read /proc/{pid}: {e}"))?;
    let nofile = nofile_limit(pid);
    let log_all = log_text();
    let _ = std::fs::remove_file(&log_path);
    if status != 200 {
        return Err(format!("GET /metrics answered {status}"));
    }
    let shown = distinct_names(&body, "container_cpu_usage_seconds_total");
    let gauge_n = gauge(&body, "outlyer_agent_containers");
    if shown != n || gauge_n != Some(n as f64) {
        return Err(format!(
            "/metrics shows {shown} containers (outlyer_agent_containers {gauge_n:?}), expected {n}"
        ));
    }
    let bad: Vec<&str> = log_all
        .lines()
        .filter(|l| l.contains(" warn ") || l.contains(" error "))
        .take(5)
        .collect();
    if !bad.is_empty() {
        eprintln!("agent_rss: the agent warned:\n{}", bad.join("\n"));
    }
    drop(agent);
    drop(daemon);
    Ok(Run {
        before,
        after,
        metrics_bytes: body.len(),
        nofile,
        startup,
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn main() {
    let args = parse_args();
    let bin = agent_bin();
    let label = if args.label.is_empty() {
        if std::env::var_os("AGENT_BIN").is_some() {
            bin.display().to_string()
        } else {
            "cargo".into()
        }
    } else {
        args.label.clone()
    };
    eprintln!(
        "agent_rss: {} ({}), layout {}, {} cycles of 1 s, sizes {:?}",
        label,
        bin.display(),
        layout_name(args.layout),
        args.cycles,
        args.sizes
    );
    let mut base: Option<Run> = None;
    let mut failed = false;
    for &n in &args.sizes {
        let r = match run(&args, &bin, n) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("agent_rss: N={n}: {e}");
                failed = true;
                continue;
            }
        };
        for (phase, m, b) in [
            ("before-scrape", r.before, base.as_ref().map(|b| b.before)),
            ("after-scrape", r.after, base.as_ref().map(|b| b.after)),
        ] {
            let per = |now: u64, zero: Option<u64>| match zero {
                Some(z) if n > 0 => format!("{:.2}", (now as f64 - z as f64) / n as f64),
                _ => "-".into(),
            };
            println!(
                "agent_rss bin={label} layout={} containers={n} phase={phase} VmRSS={} VmHWM={} \
                 RssAnon={} RssFile={} Pss={} Private_Dirty={} fds={} nofile={} \
                 rss_per_container_kib={} anon_per_container_kib={} metrics_bytes={} startup_ms={}",
                layout_name(args.layout),
                m.vm_rss,
                m.vm_hwm,
                m.rss_anon,
                m.rss_file,
                opt(m.pss),
                opt(m.private_dirty),
                m.fds,
                r.nofile,
                per(m.vm_rss, b.map(|b| b.vm_rss)),
                per(m.rss_anon, b.map(|b| b.rss_anon)),
                r.metrics_bytes,
                r.startup.as_millis(),
            );
        }
        if n == 0 {
            base = Some(r);
        }
    }
    if failed {
        std::process::exit(1);
    }
}
