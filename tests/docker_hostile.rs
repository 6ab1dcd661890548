//! Fault matrix, hostile Docker socket: the agent binary against a server
//! that answers with a 100 MB header, an endless chunked body, or a reply
//! that stalls after its first bytes with the connection held open, then (the
//! socket path being a symlink, re-pointed) against the fake daemon serving
//! names and labels full of quotes, newlines and control characters. The
//! agent's RSS stays under a stated cap, the fault is logged once, /metrics
//! keeps answering, reconnects back off, and the agent recovers; the names
//! come out escaped (checked with promtool when installed).

mod common;

use common::*;
use outlyer_testkit::{FakeDaemon, SyntheticHost, TreeLayout, TreeOptions};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `HTTP/1.1 200 OK` and one header line of 100 MB.
    HugeHead,
    /// A chunked reply whose chunks never end.
    EndlessChunked,
    /// A head and the start of a body, then nothing, the connection open.
    StallMidReply,
}

impl Mode {
    /// How long the fault is watched: a stalled reply is given up after the
    /// client's request timeout (15 s), then the daemon is tried again.
    fn window(self) -> Duration {
        match self {
            Mode::StallMidReply => Duration::from_secs(18),
            _ => Duration::from_secs(4),
        }
    }
}

struct Hostile {
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU32>,
    sent: Arc<AtomicU64>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_hostile(path: &Path, mode: Mode) -> Hostile {
    let listener = UnixListener::bind(path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let h = Hostile {
        stop: Arc::new(AtomicBool::new(false)),
        connections: Arc::new(AtomicU32::new(0)),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let (stop, conns, sent) = (h.stop.clone(), h.connections.clone(), h.sent.clone());
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((conn, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            conns.fetch_add(1, Ordering::Relaxed);
            let (stop, sent) = (stop.clone(), sent.clone());
            thread::spawn(move || answer(conn, mode, &stop, &sent));
        }
    });
    h
}

fn answer(mut conn: UnixStream, mode: Mode, stop: &AtomicBool, sent: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
    }
    if let Mode::StallMidReply = mode {
        let start = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{\"Id\":\"";
        if conn.write_all(start).is_err() {
            return;
        }
        sent.fetch_add(start.len() as u64, Ordering::Relaxed);
        // Hold the connection open, silent, until the client gives up.
        let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
        while !stop.load(Ordering::Relaxed) {
            match conn.read(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
        return;
    }
    let piece = vec![b'a'; 64 * 1024];
    let (start, total): (&[u8], u64) = match mode {
        Mode::HugeHead => (b"HTTP/1.1 200 OK\r\nX-Pad: ", 100 << 20),
        Mode::EndlessChunked => (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            u64::MAX,
        ),
        Mode::StallMidReply => unreachable!("answered above"),
    };
    if conn.write_all(start).is_err() {
        return;
    }
    let chunk_head = format!("{:x}\r\n", piece.len());
    let mut n = 0u64;
    while n < total && !stop.load(Ordering::Relaxed) {
        let ok = match mode {
            Mode::HugeHead => conn.write_all(&piece).is_ok(),
            Mode::EndlessChunked => {
                conn.write_all(chunk_head.as_bytes()).is_ok()
                    && conn.write_all(&piece).is_ok()
                    && conn.write_all(b"\r\n").is_ok()
            }
            Mode::StallMidReply => false,
        };
        if !ok {
            break;
        }
        n += piece.len() as u64;
        sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
}

/// The agent's RSS cap under a hostile reply: a reply body is held up to
/// `MAX_REPLY_BODY` (32 MiB), a head up to 16 KiB; the rest of the agent
/// is a few MiB.
const RSS_CAP_KIB: u64 = 40 * 1024;

#[test]
fn hostile_replies_are_bounded_logged_once_and_survived() {
    for mode in [Mode::HugeHead, Mode::EndlessChunked, Mode::StallMidReply] {
        let dir = TempDir::new("hostile-docker");
        let link = dir.path().join("docker.sock");
        let bad_sock = dir.path().join("hostile.sock");
        let hostile = serve_hostile(&bad_sock, mode);
        std::os::unix::fs::symlink(&bad_sock, &link).unwrap();

        let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, 2)).unwrap();
        let mut infos: Vec<_> = (0..2).map(|i| host.container_info(i)).collect();
        infos[0].name = "we\"ird\\name\nwith\tcontrol\u{1}\u{7f}chars\u{fffd}".into();
        infos[0]
            .labels
            .push(("evil".into(), "line1\nline2\r\"q\"\\\u{0}".into()));
        let daemon = FakeDaemon::start(infos.clone()).unwrap();

        let rootfs = host.rootfs().to_str().unwrap().to_string();
        let mut agent = Agent::serve(
            link.to_str().unwrap(),
            &["--interval", "1", "--rootfs", &rootfs],
            &[],
        );
        // The fault's window: RSS sampled, /metrics scraped (its slowest answer kept).
        let start = Instant::now();
        let mut max_rss = 0;
        let mut scrapes = 0;
        let mut slowest = Duration::ZERO;
        while start.elapsed() < mode.window() {
            max_rss = max_rss.max(status_kib(agent.pid(), "VmRSS"));
            let asked = Instant::now();
            let (status, _) = http_get(&agent.addr, "/metrics");
            slowest = slowest.max(asked.elapsed());
            assert_eq!(status, 200, "{mode:?}: /metrics during the fault");
            scrapes += 1;
            thread::sleep(Duration::from_millis(50));
        }
        let conns = hostile.connections.load(Ordering::Relaxed);
        let sent = hostile.sent.load(Ordering::Relaxed);
        let log = agent.stderr();
        let docker_lines: Vec<&str> = log.lines().filter(|l| l.contains("docker")).collect();
        println!(
            "{mode:?}: {} MiB sent over {conns} connections in {:?}; agent VmRSS max {max_rss} KiB \
             (cap {RSS_CAP_KIB}); {scrapes} scrapes answered, the slowest in {slowest:?}; docker log lines {}:",
            sent >> 20,
            mode.window(),
            docker_lines.len()
        );
        for l in &docker_lines {
            println!("    {l}");
        }
        assert!(agent.is_running(), "{mode:?}: agent exited");
        assert!(
            max_rss > 0 && max_rss < RSS_CAP_KIB,
            "{mode:?}: RSS {max_rss} KiB"
        );
        assert!(conns >= 2, "{mode:?}: no reconnect ({conns})");
        assert!(
            conns <= 8,
            "{mode:?}: {conns} connections in {:?}: no backoff",
            mode.window()
        );
        let fault_lines = docker_lines
            .iter()
            .filter(|l| l.contains("warn") || l.contains("error"))
            .count();
        assert!(
            fault_lines >= 1,
            "{mode:?}: the fault is not logged:\n{log}"
        );
        assert!(
            fault_lines <= 2,
            "{mode:?}: {fault_lines} lines for one fault (a flood):\n{log}"
        );

        // The daemon comes back: the agent reconnects and lists.
        drop(hostile);
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(daemon.socket(), &link).unwrap();
        let shown = agent.wait_metrics(Duration::from_secs(20), Duration::from_millis(50), |b| {
            b.contains("name=\"synth-1\"") && b.contains("we\\\"ird")
        });
        assert!(shown.is_some(), "{mode:?}: no recovery\n{}", agent.stderr());
        let body = agent.metrics();
        let line = body
            .lines()
            .find(|l| l.starts_with("container_last_seen{") && l.contains("we\\\"ird"))
            .unwrap();
        println!("{mode:?}: after recovery: {line}");
        assert!(
            line.contains(r#"name="we\"ird\\name\nwith"#),
            "name not escaped: {line}"
        );
        assert!(
            line.contains(r#"container_label_evil="line1\nline2"#),
            "label not escaped: {line}"
        );
        // Other control characters are legal in a label value (only `\`,
        // `"` and newline are escaped): promtool decides.
        promtool_check(&body);
    }
}

/// `promtool check metrics` on `body`, when promtool is installed.
fn promtool_check(body: &str) {
    let Some((_, text)) = promtool_report(body) else {
        println!("promtool not installed: skipped");
        return;
    };
    // Lint warnings (counter names, units) are not format errors.
    assert!(
        !text.contains("error while linting") && !text.contains("parsing error"),
        "promtool: {text}"
    );
    println!("promtool check metrics: ok");
}
