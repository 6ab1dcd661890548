//! A big listing absorbed while the agent keeps answering: N synthetic
//! containers (`SyntheticHost`) served by the fake Docker daemon at once,
//! the agent binary started in local mode against them, and a client that
//! scrapes all the while. Prints how long the agent took to track all N,
//! and the latency of `/healthz` (a whole answer) and of `/metrics` (its
//! head, which the loop sends as soon as it gets to the request) during the
//! absorption and during the steady state that follows, with the collection
//! cycles running.
//!
//! `cargo bench --bench absorb -- [--containers 10000] [--layout v1|v2]
//! [--foreign-pidns] [--seconds 10] [--nofile N]`
//!
//! The agent runs under `prlimit --nofile=N` (default 20 per container
//! plus 1 024: it keeps about 17 descriptors per container open); a lower
//! limit shows the agent going on with fewer files.
//!
//! `--foreign-pidns` makes the tree's `/proc/self` name another process, as
//! the host's `/proc` looks to an agent in its own PID namespace (the
//! scratch image): the agent then finds containers' processes by scanning
//! the host's processes. The agent is the cargo-built one unless
//! `AGENT_BIN` names another.

use outlyer_testkit::{FakeDaemon, SyntheticHost, TreeLayout, TreeOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    containers: usize,
    layout: TreeLayout,
    foreign_pidns: bool,
    seconds: u64,
    nofile: Option<u64>,
}

fn usage() -> ! {
    eprintln!("usage: absorb [--containers N] [--layout v1|v2] [--foreign-pidns] [--seconds S] [--nofile N]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        containers: 10_000,
        layout: TreeLayout::V1Comounted,
        foreign_pidns: false,
        seconds: 10,
        nofile: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--containers" => args.containers = value().parse().unwrap_or_else(|_| usage()),
            "--layout" => {
                args.layout = match value().as_str() {
                    "v1" => TreeLayout::V1Comounted,
                    "v2" => TreeLayout::V2,
                    _ => usage(),
                }
            }
            "--foreign-pidns" => args.foreign_pidns = true,
            "--seconds" => args.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--nofile" => args.nofile = Some(value().parse().unwrap_or_else(|_| usage())),
            "--bench" => {}
            _ => usage(),
        }
    }
    args
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Time to the whole answer of a small GET, or to the head of a big one.
fn probe(port: u16, path: &str, head_only: bool) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if head_only && got.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    got.starts_with(b"HTTP/1.1 200").then(|| t.elapsed())
}

fn stats(name: &str, mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return format!("{name}: no answers");
    }
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    format!(
        "{name}: n={} p50={:.1}ms p99={:.1}ms max={:.1}ms",
        v.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    )
}

fn main() {
    let args = parse_args();
    let n = args.containers;
    let host = SyntheticHost::create(TreeOptions::new(args.layout, n)).expect("synthetic tree");
    if args.foreign_pidns {
        // Another process's `self`: the agent is in a PID namespace of its own.
        let link = host.rootfs().join("proc/self");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("1", &link).expect("proc/self link");
    }
    let daemon =
        FakeDaemon::start((0..n).map(|i| host.container_info(i)).collect()).expect("fake daemon");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let log_path = std::env::temp_dir().join(format!("outlyer-absorb-{}.log", std::process::id()));
    let bin = match std::env::var_os("AGENT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_outlyer-agent")),
    };
    // Never above this process's hard limit: raising it takes privileges
    // a test container may not have.
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok())
        })
        .unwrap_or(u64::MAX);
    let nofile = args.nofile.unwrap_or(20 * n as u64 + 1024).min(hard);
    let t0 = Instant::now();
    let mut agent = Agent(
        Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(&bin)
            .arg("--rootfs")
            .arg(host.rootfs())
            .arg("--docker-socket")
            .arg(daemon.socket())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "2"])
            .env_remove("DATALOOP_AGENT_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn the agent"),
    );
    let tracked = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches(" info tracking ")
            .count()
    };
    let (mut health, mut metrics) = (Vec::new(), Vec::new());
    let mut misses = 0;
    let limit = t0 + Duration::from_secs(120 + n as u64 / 50);
    let absorbed = loop {
        match probe(port, "/healthz", false) {
            Some(d) => health.push(d),
            None if t0.elapsed() > Duration::from_millis(200) => misses += 1,
            None => {}
        }
        if let Some(d) = probe(port, "/metrics", true) {
            metrics.push(d);
        }
        if let Ok(Some(st)) = agent.0.try_wait() {
            eprintln!(
                "absorb: the agent exited ({st}):\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::process::exit(1);
        }
        let k = tracked();
        if k >= n {
            break t0.elapsed();
        }
        if Instant::now() > limit {
            eprintln!("absorb: only {k} of {n} tracked after {:?}", t0.elapsed());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut health2, mut metrics2) = (Vec::new(), Vec::new());
    let steady = Instant::now();
    while steady.elapsed() < Duration::from_secs(args.seconds) {
        if let Some(d) = probe(port, "/healthz", false) {
            health2.push(d);
        } else {
            misses += 1;
        }
        if let Some(d) = probe(port, "/metrics", true) {
            metrics2.push(d);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    let warnings = log.lines().filter(|l| l.contains(" warn ")).count();
    let fd_short = log.contains("out of file descriptors");
    println!(
        "absorb containers={n} layout={} foreign_pidns={} nofile={nofile} absorbed_in={:.2}s docker_requests={} warnings={warnings} out_of_fds={fd_short} unanswered_probes={misses}",
        match args.layout {
            TreeLayout::V2 => "v2",
            _ => "v1",
        },
        args.foreign_pidns,
        absorbed.as_secs_f64(),
        daemon.requests()
    );
    println!("  while absorbing: {}", stats("/healthz", health));
    println!("  while absorbing: {}", stats("/metrics head", metrics));
    println!(
        "  steady {}s (collection every 2 s): {}",
        args.seconds,
        stats("/healthz", health2)
    );
    println!(
        "  steady {}s (collection every 2 s): {}",
        args.seconds,
        stats("/metrics head", metrics2)
    );
}
