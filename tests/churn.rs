//! Fault matrix, churn: containers started and stopped 20 times a second
//! (the fake daemon's events, over a synthetic host whose cgroup files
//! exist for a pool of containers) while /metrics is scraped. Every
//! container that lived two intervals or more was seen on /metrics; after
//! the churn nothing is left tracked and the agent's descriptors and RSS are
//! back to what they were before it (RSS within 64 KiB; the baseline is
//! taken after a first, shorter churn, so that what the allocator keeps of
//! a busy moment is not counted as a leak, while a leak would still grow).
//!
//! `OUTLYER_CHURN_SECS` sets the churn's length (default 30 s in the suite;
//! scripts/test-static.sh runs 60 s against the static binary, the README's
//! figure 240 s).

mod common;

use common::*;
use outlyer_testkit::{FakeDaemon, SyntheticHost, TreeLayout, TreeOptions};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const POOL: usize = 120;
const STARTS_PER_SEC: u64 = 20;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One scrape: when it was asked, and the container names it listed.
type Scrape = (Instant, HashSet<String>);

/// One container's life: pool index, started, stopped.
struct Life {
    i: usize,
    start: Instant,
    stop: Instant,
}

#[test]
fn churn_leaves_nothing_behind_and_misses_no_container() {
    let secs: u64 = std::env::var("OUTLYER_CHURN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, POOL)).unwrap();
    let infos: Vec<_> = (0..POOL).map(|i| host.container_info(i)).collect();
    let daemon = FakeDaemon::start(Vec::new()).unwrap();
    let rootfs = host.rootfs().to_str().unwrap().to_owned();
    let socket = daemon.socket().to_str().unwrap().to_owned();
    let agent = Agent::serve(
        &socket,
        &[
            "--interval",
            "1",
            "--rootfs",
            &rootfs,
            "--runtime",
            "docker",
        ],
        &[],
    );
    // The baseline: after a first churn of 10 s (what the allocator keeps
    // of a busy moment is no leak), a few cycles, a scrape.
    churn(&daemon, &infos, Duration::from_secs(10));
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        agent.gauge("outlyer_agent_containers") == Some(0.0)
    });
    thread::sleep(Duration::from_secs(3));
    let _ = agent.metrics();
    thread::sleep(Duration::from_millis(200));
    let (fd0, rss0) = (fds(agent.pid()), status_kib(agent.pid(), "VmRSS"));

    // Scrapes in the background: (when, names listed).
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Scrape>>> = Arc::default();
    let scraper = {
        let (stop, seen, addr) = (stop.clone(), seen.clone(), agent.addr.clone());
        thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                if let Ok(r) = try_http_get(&addr, "/metrics") {
                    slowest = slowest.max(asked.elapsed());
                    let names: HashSet<String> = r
                        .body_text()
                        .lines()
                        .filter(|l| l.starts_with("container_last_seen{"))
                        .filter_map(|l| label(l, "name"))
                        .collect();
                    seen.lock().unwrap().push((asked, names));
                }
                thread::sleep(Duration::from_millis(100));
            }
            slowest
        })
    };

    let lives = churn(&daemon, &infos, Duration::from_secs(secs));
    let tracked_gone = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        agent.gauge("outlyer_agent_containers") == Some(0.0)
    });
    stop.store(true, Ordering::Relaxed);
    let slowest = scraper.join().unwrap();
    assert!(
        tracked_gone.is_some(),
        "containers still tracked after the churn: {:?}\n{}",
        agent.gauge("outlyer_agent_containers"),
        agent.stderr()
    );

    // Every container that lived two intervals was on a scrape during its life.
    let scrapes = seen.lock().unwrap();
    let long: Vec<&Life> = lives
        .iter()
        .filter(|l| l.stop - l.start >= Duration::from_secs(2))
        .collect();
    let missed: Vec<String> = long
        .iter()
        .filter(|l| {
            let name = &infos[l.i].name;
            !scrapes
                .iter()
                .any(|(t, names)| *t >= l.start && *t <= l.stop && names.contains(name))
        })
        .map(|l| infos[l.i].name.clone())
        .collect();

    // Back to the baseline once the churn is over.
    thread::sleep(Duration::from_secs(3));
    let _ = agent.metrics();
    // The scrape's own connection is closed by the agent when it reads the
    // client's end: a descriptor counted in that instant is no leak, one
    // that stays is.
    wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
        fds(agent.pid()) <= fd0
    });
    let (fd1, rss1) = (fds(agent.pid()), status_kib(agent.pid(), "VmRSS"));
    println!(
        "FIGURE churn: {secs} s at {STARTS_PER_SEC} starts/s, {} containers started, {} lived >= 2 s, \
         {} missed; {} scrapes, the slowest {slowest:?}; fds {fd0} -> {fd1}, VmRSS {rss0} -> {rss1} KiB",
        lives.len(),
        long.len(),
        missed.len(),
        scrapes.len()
    );
    assert!(lives.len() as u64 >= secs * STARTS_PER_SEC * 9 / 10);
    assert!(missed.is_empty(), "never seen: {missed:?}");
    assert!(fd1 <= fd0, "descriptors after the churn: {fd0} -> {fd1}");
    // The RSS promise is the shipped binary's: scripts/test-static.sh runs
    // this test against the static build (OUTLYER_AGENT_BIN). A debug build
    // on glibc's allocator keeps a little more of every busy moment (+76 KiB
    // after 30 s, +128 KiB after 90 s here, where the static build stayed at
    // +36 KiB from 60 s to 240 s), so for it the figure is printed only.
    if std::env::var_os("OUTLYER_AGENT_BIN").is_some() {
        assert!(
            rss1 <= rss0 + 64,
            "VmRSS {rss0} -> {rss1} KiB after the churn\n{}",
            agent.stderr()
        );
    }
}

/// Starts a container every 50 ms for `length` (half live 0.1 to 1 s, half
/// 2.5 to 4 s), then stops those still running. Returns every life.
fn churn(
    daemon: &FakeDaemon,
    infos: &[outlyer_agent::registry::ContainerInfo],
    length: Duration,
) -> Vec<Life> {
    let began = Instant::now();
    let mut running: Vec<Life> = Vec::new();
    let mut lives: Vec<Life> = Vec::new();
    let mut free: Vec<usize> = (0..POOL).rev().collect();
    let mut n: u64 = 0;
    let tick = Duration::from_millis(1000 / STARTS_PER_SEC);
    while began.elapsed() < length {
        let now = Instant::now();
        let (due, alive): (Vec<Life>, Vec<Life>) = running.into_iter().partition(|l| l.stop <= now);
        running = alive;
        for l in due {
            daemon.remove(&infos[l.i].id);
            daemon.emit(&infos[l.i], "die");
            free.push(l.i);
            lives.push(Life { stop: now, ..l });
        }
        if let Some(i) = free.pop() {
            let ms = if n % 2 == 0 {
                100 + (n * 37) % 900
            } else {
                2500 + (n * 53) % 1500
            };
            daemon.add(infos[i].clone());
            daemon.emit(&infos[i], "start");
            running.push(Life {
                i,
                start: Instant::now(),
                stop: Instant::now() + Duration::from_millis(ms),
            });
            n += 1;
        }
        thread::sleep(tick.saturating_sub(now.elapsed()));
    }
    for l in running.drain(..) {
        daemon.remove(&infos[l.i].id);
        daemon.emit(&infos[l.i], "die");
        lives.push(Life {
            stop: Instant::now(),
            ..l
        });
    }
    lives
}
