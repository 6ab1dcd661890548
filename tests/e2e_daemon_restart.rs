//! The agent against a private dockerd that is killed, stopped, restarted or
//! not there yet. The shared daemon is never touched.
//!
//! What dockerd 20.10 does here (no live-restore): after `kill -9` of dockerd
//! and its containerd the shims keep the containers running; the restarted
//! daemon kills them during restore (they show `Exited (137)`) and starts
//! again those with `--restart always` (new PID, same cgroup path).

mod common;

use common::*;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);
/// Reconnect backoff is capped at 30 s, plus the daemon's own start.
const RECONNECT: Duration = Duration::from_secs(40);

fn docker_up(body: &str) -> Option<f64> {
    gauge(body, "outlyer_agent_docker_up")
}

fn wait_metrics_or_panic(
    agent: &Agent,
    what: &str,
    timeout: Duration,
    pred: impl FnMut(&str) -> bool,
) -> Duration {
    match agent.wait_metrics(timeout, POLL, pred) {
        Some((t, _)) => t,
        None => panic!(
            "{what}: not within {timeout:?}\n/metrics (container lines):\n{}\nagent stderr:\n{}",
            agent
                .try_metrics()
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    l.starts_with("container_last_seen")
                        || l.starts_with("container_start_time_seconds")
                        || l.starts_with("outlyer_agent")
                })
                .collect::<Vec<_>>()
                .join("\n"),
            agent.stderr()
        ),
    }
}

fn restart_case(tag: &str, kill: bool) {
    let mut daemon = PrivateDockerd::new(tag);
    daemon.start();
    let cli = daemon.cli();
    let mut agent = Agent::serve(daemon.socket_str(), &["--interval", "1"], &[]);
    wait_metrics_or_panic(
        &agent,
        "docker_up = 1 at start",
        Duration::from_secs(10),
        |b| docker_up(b) == Some(1.0),
    );

    let survivor = cli.run_sleeper(
        &unique_name("always"),
        &["--network", "none", "--restart", "always"],
    );
    let victim = cli.run_sleeper(&unique_name("plain"), &["--network", "none"]);
    wait_metrics_or_panic(
        &agent,
        "both containers listed",
        Duration::from_secs(3),
        |b| has_container(b, &survivor.name) && has_container(b, &victim.name),
    );
    let survivor_pid_before = cli.inspect(&survivor.name, "{{.State.Pid}}").unwrap();

    if kill {
        daemon.kill9();
    } else {
        daemon.stop();
    }
    wait_metrics_or_panic(
        &agent,
        "docker_up = 0 after the daemon went away",
        Duration::from_secs(5),
        |b| docker_up(b) == Some(0.0),
    );
    assert!(
        agent.is_running(),
        "agent exited when the daemon went away:\n{}",
        agent.stderr()
    );
    assert_eq!(http_get(&agent.addr, "/healthz").0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        agent.is_running(),
        "agent exited while the daemon was down:\n{}",
        agent.stderr()
    );

    let restarted_at = unix_now();
    daemon.start();
    // `start` returns once the socket answers `/_ping`.
    let answered = Instant::now();
    // Record what the daemon did to the containers, for the assertions below.
    let survivor_running = cli.inspect(&survivor.name, "{{.State.Running}}");
    let victim_running = cli.inspect(&victim.name, "{{.State.Running}}");
    let survivor_pid_after = cli.inspect(&survivor.name, "{{.State.Pid}}");
    eprintln!(
        "after restart: {} running={survivor_running:?} pid {survivor_pid_before} -> {survivor_pid_after:?}; {} running={victim_running:?}",
        survivor.name, victim.name
    );
    assert_eq!(
        victim_running.as_deref(),
        Some("false"),
        "the daemon did not stop the plain container"
    );

    let t = wait_metrics_or_panic(
        &agent,
        "re-sync after restart (docker_up 1, survivor listed, stopped one gone)",
        RECONNECT,
        |b| {
            docker_up(b) == Some(1.0)
                && has_container(b, &survivor.name)
                && !has_container(b, &victim.name)
        },
    );
    let since_answer = answered.elapsed();
    eprintln!("re-synced {since_answer:?} after the daemon answered again ({t:?} of waiting)");
    // The socket's directory is watched: the agent reconnects when the
    // socket reappears, not on its next backoff step (up to 30 s).
    assert!(
        since_answer <= Duration::from_secs(2),
        "re-synced only {since_answer:?} after the socket answered"
    );

    // The survivor is a new process now: a re-synced registry reports its
    // new start time (and so follows its new PID), not the old one.
    let old_start = unix_now();
    wait_metrics_or_panic(
        &agent,
        "survivor's container_start_time_seconds from after the restart",
        Duration::from_secs(5),
        |b| {
            container_line(b, "container_start_time_seconds", &survivor.name)
                .and_then(sample_value)
                .is_some_and(|v| v >= restarted_at - 1.0 && v <= old_start + 1.0)
        },
    );

    // Events flow again: a new container is seen quickly.
    std::thread::sleep(Duration::from_millis(500));
    let fresh = cli.run_sleeper(&unique_name("fresh"), &["--network", "none"]);
    let t = wait_metrics_or_panic(
        &agent,
        "container started after the restart",
        Duration::from_secs(5),
        |b| has_container(b, &fresh.name),
    );
    assert!(
        t <= Duration::from_secs(1),
        "container started after the restart listed only after {t:?}"
    );
    fresh.remove();
    let t = wait_metrics_or_panic(
        &agent,
        "removed container gone",
        Duration::from_secs(5),
        |b| !has_container(b, &fresh.name),
    );
    assert!(
        t <= Duration::from_secs(1),
        "container removed after the restart still listed {t:?}"
    );
    assert!(agent.is_running(), "agent exited");
}

#[test]
fn daemon_killed_and_restarted_registry_resyncs() {
    if !require_private_dockerd() {
        return;
    }
    restart_case("kill", true);
}

#[test]
fn daemon_stopped_and_restarted_registry_resyncs() {
    if !require_private_dockerd() {
        return;
    }
    restart_case("stop", false);
}

#[test]
fn daemon_absent_at_start_then_appears() {
    if !require_private_dockerd() {
        return;
    }
    let mut daemon = PrivateDockerd::new("late");
    assert!(!daemon.socket.exists());
    let mut agent = Agent::serve(daemon.socket_str(), &["--interval", "1"], &[]);
    let body = agent.metrics();
    assert_eq!(
        docker_up(&body),
        Some(0.0),
        "docker_up without a daemon:\n{body}"
    );
    assert_eq!(gauge(&body, "outlyer_agent_containers"), Some(0.0));
    let (status, fp) = http_get(&agent.addr, "/");
    assert_eq!(status, 200);
    assert_eq!(fp.trim().len(), 36, "GET / without a daemon: {fp:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        agent.is_running(),
        "agent exited without a daemon:\n{}",
        agent.stderr()
    );

    daemon.start();
    let cli = daemon.cli();
    let c = cli.run_sleeper(&unique_name("late"), &["--network", "none"]);
    let t = wait_metrics_or_panic(
        &agent,
        "container of a daemon that started late",
        RECONNECT,
        |b| docker_up(b) == Some(1.0) && has_container(b, &c.name),
    );
    eprintln!("daemon started late: container listed {t:?} after `docker run`");
    assert!(agent.is_running());
}
