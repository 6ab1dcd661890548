//! Fault matrix, pipelining peers that never read: 100 connections to the
//! agent's :8000 each send 50 pipelined `GET /metrics` and read nothing,
//! while a fresh client scrapes 30 times. Every scrape must answer; every
//! flooding connection must be closed by the agent within its head and
//! write deadlines; its descriptors must stay within the connection cap.
//! Prints the figures. Real sockets on loopback, no Docker needed.
//!
//! Without containers this agent's /metrics is well under 1 KiB, so the
//! 50 answers usually fit in the loopback socket buffers and the flooding
//! connections end idle, at the head deadline; the unit tests in
//! `src/server.rs` cover answers large enough to fill them (closed at the
//! write deadline).

mod common;

use common::*;
use outlyer_agent::server::{HEAD_TIMEOUT, MAX_CONNECTIONS, WRITE_TIMEOUT};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const FLOODERS: usize = 100;
const PIPELINED: usize = 50;
const SCRAPES: usize = 30;

fn scrape(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    match read_response(&mut s, false) {
        Ok(r) if r.status == 200 => Ok(start.elapsed()),
        Ok(r) => Err(format!("status {}", r.status)),
        Err(e) => Err(format!("{:?}", e.kind())),
    }
}

/// Some(bytes read) once the agent closed or reset the connection.
fn closed(s: &mut TcpStream, got: &mut usize) -> Option<usize> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(*got),
            Ok(n) => *got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(*got),
        }
    }
}

#[test]
fn peers_pipelining_without_reading_neither_block_scrapes_nor_stay() {
    outlyer_agent::sys::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let socket = format!("/tmp/{}-absent.sock", unique_name("pipelining"));
    let agent = Agent::serve(&socket, &[], &[]);
    let addr: SocketAddr = agent.addr.parse().unwrap();
    let pid = agent.pid();
    std::thread::sleep(Duration::from_millis(200));
    let baseline = open_fds(pid);

    let flood = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(PIPELINED);
    let started = Instant::now();
    let mut flooders: Vec<TcpStream> = (0..FLOODERS)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("flooder {i}: {e}"));
            s.write_all(&flood).unwrap();
            s
        })
        .collect();
    let mut max_fds = open_fds(pid);
    let mut answered = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..SCRAPES {
        match scrape(addr) {
            Ok(t) => answered.push(t),
            Err(why) => failures.push(why),
        }
        max_fds = max_fds.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(50));
    }

    // The agent lets go of every flooding connection by the deadlines.
    let limit = HEAD_TIMEOUT + WRITE_TIMEOUT + Duration::from_secs(2);
    let back = wait_until(limit, Duration::from_millis(20), || {
        let n = open_fds(pid);
        max_fds = max_fds.max(n);
        n <= baseline
    });
    let released = started.elapsed();
    let mut bytes = Vec::new();
    for s in &mut flooders {
        s.set_nonblocking(true).unwrap();
        let mut got = 0;
        let done = wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
            closed(s, &mut got).is_some()
        });
        bytes.push(done.map(|_| got));
    }
    let still_open = bytes.iter().filter(|b| b.is_none()).count();

    answered.sort();
    let p50 = answered
        .get(answered.len() / 2)
        .copied()
        .unwrap_or_default();
    let max = answered.last().copied().unwrap_or_default();
    let cap = baseline + MAX_CONNECTIONS + 2;
    println!(
        "pipelining: {FLOODERS} connections x {PIPELINED} pipelined GET /metrics, never read; \
         /metrics from a fresh client: {}/{SCRAPES} answered (failures: {failures:?}), p50 {:.1} ms, max {:.1} ms; \
         agent fds: {baseline} idle, max {max_fds} (cap {cap}); flooders released after {:.2} s \
         (head deadline {HEAD_TIMEOUT:?}, write deadline {WRITE_TIMEOUT:?}), {still_open} left open; \
         bytes a flooder could read afterwards: max {}",
        answered.len(),
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        released.as_secs_f64(),
        bytes.iter().flatten().max().copied().unwrap_or(0),
    );
    assert!(
        failures.is_empty(),
        "scrapes failed beside pipelining peers: {failures:?}"
    );
    assert!(
        back.is_some(),
        "flooding connections still held after {limit:?}"
    );
    assert_eq!(still_open, 0, "flooding connections left open");
    assert!(
        max_fds <= cap,
        "agent held {max_fds} descriptors, cap {cap}"
    );
    assert_eq!(http_get(&agent.addr, "/healthz").0, 200);
}
