//! Fault matrix, slowloris: 1 000 connections to the agent's :8000 each
//! dribble one header byte a second (and reconnect when the agent drops
//! them) while a fresh client scrapes `/metrics` 200 times. Every scrape
//! must answer, quickly; the agent's descriptors must stay within its
//! connection cap; no dribbling connection may outlive the head deadline.
//! Prints the figures. Real sockets on loopback, no Docker needed.

mod common;

use common::*;
use outlyer_agent::server::{HEAD_TIMEOUT, MAX_CONNECTIONS};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ATTACKERS: usize = 1000;
const SCRAPES: usize = 200;
/// The target is 20 ms; the bound asserted leaves room for a shared, noisy
/// machine and a debug build.
const P99_BOUND: Duration = Duration::from_millis(200);

/// One dribbling connection: the bytes of an endless request head, one a
/// second, from a random-ish phase.
struct Dribbler {
    stream: Option<TcpStream>,
    opened: Instant,
    sent: usize,
    next: Instant,
}

const HEAD: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: ";

fn head_byte(i: usize) -> u8 {
    HEAD.get(i).copied().unwrap_or(b'a')
}

fn dial(addr: SocketAddr) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// True when the agent closed (or reset) the connection.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or anything else: the agent is done with it.
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

#[derive(Default)]
struct AttackStats {
    reconnects: usize,
    connect_failures: usize,
    /// Longest life of a connection the agent closed.
    longest_life: Duration,
}

fn attack(addr: SocketAddr, stop: Arc<AtomicBool>, up: Arc<AtomicUsize>) -> AttackStats {
    let start = Instant::now();
    let mut stats = AttackStats::default();
    let mut conns: Vec<Dribbler> = (0..ATTACKERS)
        .map(|i| Dribbler {
            stream: dial(addr),
            opened: Instant::now(),
            sent: 0,
            next: start + Duration::from_millis((i * 1000 / ATTACKERS) as u64),
        })
        .collect();
    up.store(
        conns.iter().filter(|c| c.stream.is_some()).count(),
        Ordering::SeqCst,
    );
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        for c in conns.iter_mut().filter(|c| c.next <= now) {
            c.next += Duration::from_secs(1);
            let alive = match c.stream.as_mut() {
                Some(s) => !closed_by_peer(s) && s.write(&[head_byte(c.sent)]).is_ok(),
                None => false,
            };
            if alive {
                c.sent += 1;
                continue;
            }
            if c.stream.take().is_some() {
                stats.longest_life = stats.longest_life.max(now - c.opened);
            }
            stats.reconnects += 1;
            c.stream = dial(addr);
            if c.stream.is_none() {
                stats.connect_failures += 1;
            }
            c.opened = Instant::now();
            c.sent = 0;
            if let Some(s) = c.stream.as_mut() {
                if s.write(&[head_byte(0)]).is_ok() {
                    c.sent = 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stats
}

enum Outcome {
    Answered(Duration),
    Failed(String),
}

fn scrape(addr: SocketAddr) -> Outcome {
    let start = Instant::now();
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if let Err(e) = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") {
        return Outcome::Failed(format!("write: {e}"));
    }
    match read_response(&mut s, false) {
        Ok(r) if r.status == 200 => Outcome::Answered(start.elapsed()),
        Ok(r) => Outcome::Failed(format!("status {}", r.status)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Outcome::Failed("closed".into()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Outcome::Failed("reset".into()),
        Err(e) => Outcome::Failed(format!("{:?}", e.kind())),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[test]
fn slowloris_leaves_metrics_answering_within_the_connection_cap() {
    outlyer_agent::sys::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let socket = format!("/tmp/{}-absent.sock", unique_name("slowloris"));
    let agent = Agent::serve(&socket, &[], &[]);
    let addr: SocketAddr = agent.addr.parse().unwrap();
    let pid = agent.pid();
    std::thread::sleep(Duration::from_millis(200));
    let baseline = open_fds(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let up = Arc::new(AtomicUsize::new(0));
    let max_fds = Arc::new(Mutex::new(baseline));
    let sampler = {
        let (stop, max_fds) = (stop.clone(), max_fds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = open_fds(pid);
                let mut m = max_fds.lock().unwrap();
                *m = (*m).max(n);
                drop(m);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let attacker = {
        let (stop, up) = (stop.clone(), up.clone());
        std::thread::spawn(move || attack(addr, stop, up))
    };
    // Let every attacker connect and the agent's slots churn for a while.
    wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        up.load(Ordering::SeqCst) > 0
    });
    std::thread::sleep(Duration::from_secs(2));

    let mut answered = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for _ in 0..SCRAPES {
        match scrape(addr) {
            Outcome::Answered(t) => answered.push(t),
            Outcome::Failed(why) => failures.push(why),
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    // Past one head deadline, so a dribbler that was never closed shows.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let stats = attacker.join().unwrap();
    sampler.join().unwrap();
    let max_fds = *max_fds.lock().unwrap();

    answered.sort();
    let (p50, p99) = (percentile(&answered, 0.50), percentile(&answered, 0.99));
    let max = answered.last().copied().unwrap_or_default();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for f in &failures {
        match kinds.iter_mut().find(|(k, _)| k == f) {
            Some((_, n)) => *n += 1,
            None => kinds.push((f.clone(), 1)),
        }
    }
    let cap = baseline + MAX_CONNECTIONS + 2;
    println!(
        "slowloris: {} connections dribbling 1 byte/s ({} initially up, {} reconnects, {} failed connects); \
         /metrics from a fresh client: {}/{} answered (failures: {kinds:?}), \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; agent fds: {baseline} idle, max {max_fds} \
         (cap {cap} = idle + {MAX_CONNECTIONS} slots + 2); longest dribbler life {:.2} s (head deadline {:?})",
        ATTACKERS,
        up.load(Ordering::SeqCst),
        stats.reconnects,
        stats.connect_failures,
        answered.len(),
        SCRAPES,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        stats.longest_life.as_secs_f64(),
        HEAD_TIMEOUT,
    );
    assert_eq!(
        answered.len(),
        SCRAPES,
        "scrapes failed under slowloris: {kinds:?}\nstderr tail:\n{}",
        tail(&agent.stderr())
    );
    assert!(p99 <= P99_BOUND, "p99 {p99:?} over {P99_BOUND:?}");
    assert!(
        max_fds <= cap,
        "agent held {max_fds} descriptors, cap {cap}"
    );
    // Detected at the next byte, up to a second late.
    assert!(
        stats.longest_life <= HEAD_TIMEOUT + Duration::from_millis(2500),
        "a dribbling connection lived {:?}",
        stats.longest_life
    );
    assert_eq!(http_get(&agent.addr, "/healthz").0, 200);
}

fn tail(s: &str) -> &str {
    let at = s.len().saturating_sub(2000);
    let at = (at..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[at..]
}
