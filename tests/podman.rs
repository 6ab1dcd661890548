//! The agent against a real Podman: `podman system service` serving the
//! Docker-compatible API on a private socket, over a private store (its own
//! `--root`, `--runroot` and `--tmpdir` in a temporary directory, removed
//! afterwards), with the `cgroupfs` manager (`/libpod_parent/libpod-<id>`)
//! and the file events backend (no systemd or journald here).
//!
//! The figures are checked against `podman stats --no-stream`, which reads
//! the same cgroup files: CPU as a rate over (nearly) the same window and as
//! cumulative seconds that must interleave with the agent's readings,
//! memory usage within 10 %, the memory limit exactly. A container started
//! and removed while the agent runs must come and go through the events
//! stream, seconds before the 60 s re-list could notice.

mod common;

use common::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(10);

/// A hard resource limit of this process (`/proc/self/limits`), if finite.
fn hard_limit(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().nth(1)?.parse().ok()
}

/// One Podman store and its API service, all under one temporary directory.
struct Podman {
    dir: TempDir,
    global: Vec<String>,
    socket: PathBuf,
    service: Option<Child>,
}

impl Podman {
    fn global_flags(dir: &Path) -> Vec<String> {
        let p = |sub: &str| dir.join(sub).to_string_lossy().into_owned();
        vec![
            "--root".into(),
            p("root"),
            "--runroot".into(),
            p("run"),
            "--tmpdir".into(),
            p("tmp"),
            // vfs: no overlay mounts to leave behind if a run is cut short.
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    /// A store with `localbusy:latest` imported and the service answering.
    fn start() -> Podman {
        sweep_stale_stores();
        let dir = TempDir::new("podman");
        let global = Podman::global_flags(dir.path());
        let socket = dir.path().join("podman.sock");
        let mut podman = Podman {
            dir,
            global,
            socket,
            service: None,
        };
        podman.import_image();
        let log = fs::File::create(podman.dir.path().join("service.log")).expect("service log");
        let child = Command::new(common::podman())
            .args(&podman.global)
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", podman.socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn podman system service");
        fs::write(
            podman.dir.path().join("service.pid"),
            child.id().to_string(),
        )
        .expect("write service.pid");
        podman.service = Some(child);
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            docker_answers(&podman.socket)
        });
        assert!(
            up.is_some(),
            "podman system service did not answer /_ping on {} within 20 s:\n{}",
            podman.socket.display(),
            podman.service_log()
        );
        eprintln!("podman service answered after {:?}", up.unwrap());
        podman
    }

    fn socket_str(&self) -> &str {
        self.socket.to_str().expect("utf-8 socket path")
    }

    fn service_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// `scripts/ci-setup.sh --image-tar | podman import - localbusy:latest`.
    fn import_image(&self) {
        let mut tar = Command::new("bash")
            .arg(repo_root().join("scripts/ci-setup.sh"))
            .arg("--image-tar")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run scripts/ci-setup.sh --image-tar");
        let out = Command::new(common::podman())
            .args(&self.global)
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().expect("tar stdout"))
            .output()
            .expect("run podman import");
        let tar_ok = tar.wait().is_ok_and(|s| s.success());
        assert!(
            tar_ok && out.status.success(),
            "importing {IMAGE} into podman failed (tar ok: {tar_ok}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new(common::podman())
            .args(&self.global)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `podman run -d` of `sh -c script` without networking; the id.
    fn run(&self, name: &str, extra: &[&str], script: &str) -> String {
        // Podman gives a container nofile and nproc limits of 1048576 by
        // default. Where that is above the hard limits (podman itself drops
        // its nproc to 32768, and a sandbox may withhold CAP_SYS_RESOURCE)
        // runc fails the start with EPERM, so stay within ours: these
        // containers run one or two processes.
        let nofile = hard_limit("Max open files").unwrap_or(1024).min(65536);
        let nofile = format!("nofile={nofile}:{nofile}");
        let nproc = "nproc=4096:4096";
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--ulimit",
            &nofile,
            "--ulimit",
            nproc,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        let id = self.ok(&args);
        assert_eq!(id.len(), 64, "podman run printed {id:?}, expected an id");
        id
    }

    /// `podman stats --no-stream` of `names`, by name. The raw report
    /// (`{{json .ContainerStats}}`): `--format json` prints the same report
    /// with rounded human strings (`340kB`) and without its sample time.
    fn stats(&self, names: &[&str]) -> HashMap<String, PodStats> {
        let mut args = vec![
            "stats",
            "--no-stream",
            "--format",
            "{{json .ContainerStats}}",
        ];
        args.extend_from_slice(names);
        self.ok(&args)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let s = PodStats::parse(l);
                (s.name.clone(), s)
            })
            .collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]);
        if let Some(mut child) = self.service.take() {
            send_signal(child.id(), "TERM");
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- podman service log ----\n{}",
                self.service_log()
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        unmount_below(self.dir.path());
        // The TempDir removes the store.
    }
}

/// Unmounts whatever is still mounted below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

/// Removes the stores of test runs whose process is gone: their containers,
/// their service (recorded in `service.pid`), their mounts, their files.
fn sweep_stale_stores() {
    let tmp = std::env::temp_dir();
    let Ok(rd) = fs::read_dir(&tmp) else { return };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-podman-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        eprintln!("removing the stale podman store {}", dir.display());
        let _ = Command::new(common::podman())
            .args(Podman::global_flags(&dir))
            .args(["rm", "--all", "--force", "--time", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(service) = fs::read_to_string(dir.join("service.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            let cmdline = fs::read(format!("/proc/{service}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy()) {
                send_signal(service, "KILL");
            }
        }
        unmount_below(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// One container's line of `podman stats`.
#[derive(Debug)]
struct PodStats {
    name: String,
    /// Cumulative CPU time, ns.
    cpu_nano: u64,
    /// When podman took the sample, unix ns.
    system_nano: u64,
    mem_usage: u64,
    mem_limit: u64,
}

impl PodStats {
    fn parse(line: &str) -> PodStats {
        let num = |key: &str| -> u64 {
            let tag = format!("\"{key}\":");
            let at = line
                .find(&tag)
                .unwrap_or_else(|| panic!("no {key} in podman stats line {line}"));
            let rest = &line[at + tag.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end]
                .parse()
                .unwrap_or_else(|_| panic!("bad {key} in podman stats line {line}"))
        };
        let tag = "\"Name\":\"";
        let at = line
            .find(tag)
            .unwrap_or_else(|| panic!("no Name in podman stats line {line}"));
        let rest = &line[at + tag.len()..];
        let name = rest[..rest.find('"').expect("closing quote")].to_string();
        PodStats {
            name,
            cpu_nano: num("CPUNano"),
            system_nano: num("SystemNano"),
            mem_usage: num("MemUsage"),
            mem_limit: num("MemLimit"),
        }
    }

    fn cpu_secs(&self) -> f64 {
        self.cpu_nano as f64 / 1e9
    }

    fn at(&self) -> f64 {
        self.system_nano as f64 / 1e9
    }
}

fn value(body: &str, metric: &str, name: &str) -> Option<f64> {
    container_line(body, metric, name).and_then(sample_value)
}

/// Waits for the agent's next collection (a new `container_last_seen` for
/// `name`); returns its time and the body.
fn next_collection(agent: &Agent, name: &str) -> (f64, String) {
    let before = agent
        .try_metrics()
        .and_then(|b| value(&b, "container_last_seen", name));
    let (_, body) = agent
        .wait_metrics(Duration::from_secs(5), POLL, |b| {
            let seen = value(b, "container_last_seen", name);
            seen.is_some() && seen != before
        })
        .unwrap_or_else(|| panic!("no new collection of {name} within 5 s"));
    let at = value(&body, "container_last_seen", name).unwrap();
    (at, body)
}

fn cpu_total(body: &str, name: &str) -> f64 {
    value(body, "container_cpu_usage_seconds_total", name)
        .unwrap_or_else(|| panic!("no container_cpu_usage_seconds_total for {name}:\n{body}"))
}

#[test]
fn podman_service_containers_metrics_and_events() {
    if !require_podman() {
        return;
    }
    let test_start = Instant::now();
    let podman = Podman::start();
    let busy = unique_name("pm-busy");
    let lim = unique_name("pm-lim");
    let busy_id = podman.run(&busy, &[], "while :; do :; done");
    let lim_id = podman.run(
        &lim,
        &["--memory", "64m"],
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; exec sleep 3600",
    );

    let agent_start = Instant::now();
    let agent = Agent::serve(podman.socket_str(), &["--interval", "1", "--debug"], &[]);
    let listed = agent.wait_metrics(Duration::from_secs(10), POLL, |b| {
        gauge(b, "outlyer_agent_docker_up") == Some(1.0)
            && has_container(b, &busy)
            && value(b, "container_memory_usage_bytes", &lim).is_some_and(|v| v > 20e6)
    });
    let Some((t, body)) = listed else {
        panic!(
            "{busy} and {lim} (with 24 MB in /dev/shm) not on /metrics within 10 s\n/metrics:\n{}",
            agent.try_metrics().unwrap_or_default()
        );
    };
    eprintln!("both podman containers on /metrics {t:?} after the agent answered");

    // Names, cgroups and the image as Podman has them.
    for (name, id) in [(&busy, &busy_id), (&lim, &lim_id)] {
        let line = container_line(&body, "container_last_seen", name).unwrap();
        assert_eq!(
            label(line, "id").as_deref(),
            Some(format!("/libpod_parent/libpod-{id}").as_str()),
            "the cgroupfs manager's cgroup: {line}"
        );
        let image = label(line, "image").unwrap_or_default();
        assert!(image.ends_with(IMAGE), "image label {image:?}: {line}");
    }

    // The memory limit is the cgroup's, exactly.
    assert_eq!(
        value(&body, "container_spec_memory_limit_bytes", &lim),
        Some(64.0 * 1024.0 * 1024.0),
        "memory limit of {lim}"
    );

    // CPU: the agent's rate between two of its collections ~3 s apart
    // against podman's between two samples taken just after each of them.
    // The cumulative seconds must interleave: agent ≤ podman ≤ agent ≤
    // podman. A contended host can move the spinner's share between the
    // two windows' edges, so up to three attempts.
    let mut attempt = 0;
    let (agent_rate, podman_rate) = loop {
        attempt += 1;
        let (a0, body0) = next_collection(&agent, &busy);
        let p0 = podman
            .stats(&[&busy])
            .remove(&busy)
            .expect("podman stats of busy");
        std::thread::sleep(Duration::from_secs(3));
        let (a1, body1) = next_collection(&agent, &busy);
        let p1 = podman
            .stats(&[&busy])
            .remove(&busy)
            .expect("podman stats of busy");
        let (c0, c1) = (cpu_total(&body0, &busy), cpu_total(&body1, &busy));
        eprintln!(
            "busy cpu seconds: agent {c0:.6} @ {a0:.3}, podman {:.6} @ {:.3}, agent {c1:.6} @ {a1:.3}, podman {:.6} @ {:.3}",
            p0.cpu_secs(),
            p0.at(),
            p1.cpu_secs(),
            p1.at()
        );
        assert!(
            c0 <= p0.cpu_secs() && p0.cpu_secs() <= c1 && c1 <= p1.cpu_secs(),
            "cumulative CPU seconds out of order: agent {c0}, podman {}, agent {c1}, podman {}",
            p0.cpu_secs(),
            p1.cpu_secs()
        );
        let agent_rate = (c1 - c0) / (a1 - a0);
        let podman_rate = (p1.cpu_secs() - p0.cpu_secs()) / (p1.at() - p0.at());
        eprintln!(
            "busy cpu rate (attempt {attempt}): agent {agent_rate:.4} over {:.3} s, podman {podman_rate:.4} over {:.3} s",
            a1 - a0,
            p1.at() - p0.at()
        );
        if (agent_rate - podman_rate).abs() <= 0.1 * podman_rate || attempt == 3 {
            break (agent_rate, podman_rate);
        }
    };
    assert!(
        podman_rate > 0.1,
        "the spinner got {podman_rate} of a core by podman's count"
    );
    assert!(
        (agent_rate - podman_rate).abs() <= 0.1 * podman_rate,
        "CPU rate: agent {agent_rate} vs podman {podman_rate}"
    );

    // Memory: podman (4.3, cgroup v1) reports memory.usage_in_bytes as it
    // is, page cache included, which is container_memory_usage_bytes; the
    // working set (usage less inactive_file) is printed beside it.
    let (_, body) = next_collection(&agent, &lim);
    let stats = podman.stats(&[&busy, &lim]);
    for name in [&busy, &lim] {
        let p = &stats[name.as_str()];
        let usage = value(&body, "container_memory_usage_bytes", name).unwrap();
        let ws = value(&body, "container_memory_working_set_bytes", name).unwrap();
        eprintln!(
            "{name} memory: agent usage {usage} working set {ws}, podman {} (limit {})",
            p.mem_usage, p.mem_limit
        );
        let podman_mem = p.mem_usage as f64;
        assert!(
            (usage - podman_mem).abs() <= 0.1 * podman_mem,
            "{name} memory usage: agent {usage} vs podman {podman_mem}"
        );
    }
    assert_eq!(stats[lim.as_str()].mem_limit, 64 * 1024 * 1024);
    assert!(
        value(&body, "container_memory_working_set_bytes", &lim).unwrap() > 20e6,
        "24 MB held in /dev/shm count in the working set"
    );

    // Events: a container started now shows within seconds and leaves within
    // seconds of `podman rm -f`; the re-list (every 60 s) is not due yet.
    let ev = unique_name("pm-ev");
    let ev_id = podman.run(&ev, &[], "exec sleep 3600");
    let appeared = agent
        .wait_metrics(Duration::from_secs(5), POLL, |b| has_container(b, &ev))
        .unwrap_or_else(|| panic!("{ev} not on /metrics 5 s after `podman run` returned"))
        .0;
    podman.ok(&["rm", "--force", "--time", "0", &ev]);
    let gone = agent
        .wait_metrics(Duration::from_secs(5), POLL, |b| {
            !has_container(b, &ev) && has_container(b, &busy)
        })
        .unwrap_or_else(|| panic!("{ev} still on /metrics 5 s after `podman rm -f` returned"))
        .0;
    eprintln!(
        "{ev}: on /metrics {appeared:?} after `podman run`, gone {gone:?} after `podman rm -f`"
    );
    assert!(
        agent_start.elapsed() < Duration::from_secs(55),
        "the test ran into the agent's 60 s re-list; events are not proven"
    );
    let log = agent.stderr();
    let short = &ev_id[..12];
    for what in ["Start", "Die"] {
        assert!(
            log.contains(&format!("docker: event {what} {short}")),
            "no {what} event for {ev} in the agent's log:\n{log}"
        );
    }
    assert!(
        !log.contains("drift"),
        "the re-list found what the events missed:\n{log}"
    );
    // Podman's /info ID (a new UUID on every call) is not taken for the
    // host: the fingerprint comes from the host id the agent sees here.
    assert!(
        log.contains("Podman's /info ID is new on every call"),
        "Podman not recognised from its /info reply:\n{log}"
    );
    let (status, finger) = http_get(&agent.addr, "/");
    assert_eq!(status, 200, "GET / answered {status}: {finger}");
    assert!(
        !log.contains("(from the Docker daemon id)"),
        "the host fingerprint came from Podman's /info ID:\n{log}"
    );
    // No reply, event or inspection of Podman's was unusable.
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" warn ")).collect();
    assert!(
        warnings.is_empty(),
        "the agent warned:\n{}",
        warnings.join("\n")
    );
    drop(agent);
    drop(podman);
    eprintln!("podman test took {:?}", test_start.elapsed());
}
