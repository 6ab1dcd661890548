//! The agent's containerd source end to end (`--runtime containerd`, no
//! Docker socket) against a private containerd holding two Kubernetes pods
//! laid out as the CRI plugin lays them out (tests/common/containerd.rs):
//!
//! - pod A, BestEffort (`/kubepods/besteffort/pod<uid>/<id>`): a sandbox, a
//!   busy app container and a sleeping one;
//! - pod B, Burstable (`/kubepods/burstable/pod<uid>/<id>`): a sandbox and an
//!   app container with a memory limit.
//!
//! The harness is checked first (cgroups as `/proc/<pid>/cgroup` shows them,
//! the bundle's `config.json` and `init.pid`), then the agent: every app
//! container listed within 1 s of `/healthz` with its Kubernetes labels, CPU
//! time growing for the busy one, the limit exact, no sandbox, a container
//! started later listed within 1 s and a killed one gone within 1 s.
//!
//! `OUTLYER_SAVE_CONTAINERD_CONFIG=<path>` copies pod B's app container's
//! `config.json` there as written (how
//! tests/fixtures/runtimes/containerd-config.json was made).

mod common;

use common::containerd::*;
use common::*;
use std::fs;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(5);
/// Pod B's app container limit: a multiple of the page size, which the
/// kernel keeps as given.
const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// Not `kube-system`: the agent leaves that namespace's containers out.
const POD_NAMESPACE: &str = "oe2e-apps";

/// The cgroup path of `pid` in the v1 hierarchy of `controller` (or the v2
/// one when `controller` is empty), from `/proc/<pid>/cgroup`.
fn proc_cgroup(pid: u32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

/// The cgroup hierarchy root that holds `controller`'s files (v1), or the
/// v2 root.
fn hierarchy_with(file: &str) -> Option<std::path::PathBuf> {
    cgroup_mounts().into_iter().find(|m| m.join(file).exists())
}

/// The harness did what the CRI plugin would: the task's processes are in
/// its cgroup in every hierarchy, the cgroup has CPU accounting, and the
/// bundle holds `init.pid` and a `config.json` with the annotations and the
/// cgroup path.
fn check_layout(ctrd: &PrivateContainerd, task: &Task, annotations: &[(&str, &str)]) {
    for controller in ["cpu", "cpuacct", "memory", "pids"] {
        if let Some(path) = proc_cgroup(task.pid, controller) {
            assert_eq!(
                path, task.cgroup,
                "/proc/{}/cgroup, {controller}: task {} is not in its cgroup",
                task.pid, task.id
            );
        }
    }
    let usage = hierarchy_with("cpuacct.usage")
        .map(|root| {
            root.join(task.cgroup.trim_start_matches('/'))
                .join("cpuacct.usage")
        })
        .or_else(|| {
            hierarchy_with("cgroup.controllers").map(|root| {
                root.join(task.cgroup.trim_start_matches('/'))
                    .join("cpu.stat")
            })
        })
        .expect("a cgroup hierarchy with CPU accounting");
    assert!(
        usage.exists(),
        "{} missing: task {} has no cgroup of its own",
        usage.display(),
        task.id
    );
    let bundle = ctrd.bundle(&task.id);
    let pid = fs::read_to_string(bundle.join("init.pid")).expect("read init.pid");
    assert_eq!(pid.trim(), task.pid.to_string(), "init.pid of {}", task.id);
    let config = fs::read_to_string(bundle.join("config.json")).expect("read config.json");
    assert!(
        config.contains(&format!("\"cgroupsPath\":\"{}\"", task.cgroup)),
        "config.json of {} lacks linux.cgroupsPath {}: {config}",
        task.id,
        task.cgroup
    );
    for (k, v) in annotations {
        assert!(
            config.contains(&format!("\"{k}\":\"{v}\"")),
            "config.json of {} lacks the annotation {k}={v}: {config}",
            task.id
        );
    }
}

/// Pod and app annotations a container's config.json must carry.
fn app_annotations<'a>(pod: &'a Pod, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.container-name", name),
        ("io.kubernetes.cri.sandbox-id", &pod.sandbox.id),
        ("io.kubernetes.cri.sandbox-name", &pod.name),
        ("io.kubernetes.cri.sandbox-namespace", &pod.namespace),
        ("io.kubernetes.cri.sandbox-uid", &pod.uid),
        ("io.kubernetes.cri.image-name", CONTAINERD_IMAGE),
    ]
}

fn sandbox_annotations(pod: &Pod) -> Vec<(&str, &str)> {
    vec![
        ("io.kubernetes.cri.container-type", "sandbox"),
        ("io.kubernetes.cri.sandbox-id", &pod.sandbox.id),
        ("io.kubernetes.cri.sandbox-name", &pod.name),
        ("io.kubernetes.cri.sandbox-namespace", &pod.namespace),
        ("io.kubernetes.cri.sandbox-uid", &pod.uid),
    ]
}

/// An app container as the agent should list it.
struct Expected<'a> {
    task: &'a Task,
    pod: &'a Pod,
    name: &'a str,
}

/// The `container_last_seen` line of `task`, if listed.
fn listed<'a>(body: &'a str, task: &Task) -> Option<&'a str> {
    container_line(body, "container_last_seen", &task.id)
}

/// What is wrong with `e`'s labels in `body`, if anything.
fn label_errors(body: &str, e: &Expected) -> Vec<String> {
    let Some(line) = listed(body, e.task) else {
        return vec![format!("{} ({}) not listed", e.name, e.task.id)];
    };
    let want = [
        ("id", e.task.cgroup.as_str()),
        ("name", e.task.id.as_str()),
        ("namespace", e.pod.namespace.as_str()),
        ("pod", e.pod.name.as_str()),
        ("container", e.name),
        ("image", CONTAINERD_IMAGE),
    ];
    want.iter()
        .filter_map(|(k, v)| {
            let got = label(line, k);
            (got.as_deref() != Some(v)).then(|| format!("{}: {k}={got:?}, want {v:?}", e.name))
        })
        .collect()
}

fn cpu_total(body: &str, task: &Task) -> Option<f64> {
    metric_lines(body, "container_cpu_usage_seconds_total")
        .find(|l| {
            label(l, "name").as_deref() == Some(task.id.as_str())
                && label(l, "cpu").as_deref().is_none_or(|c| c == "total")
        })
        .and_then(sample_value)
}

#[test]
fn kubernetes_pods_on_containerd() {
    if !require_containerd() {
        return;
    }
    let started = Instant::now();
    let ctrd = PrivateContainerd::start("k8s");
    let up = started.elapsed();

    let pod_a = ctrd.run_pod("oe2e-pod-a", POD_NAMESPACE, Qos::BestEffort);
    let busy = ctrd.run_app(&pod_a, &App::busy("busy"));
    let idle = ctrd.run_app(&pod_a, &App::sleeping("idle"));
    let pod_b = ctrd.run_pod("oe2e-pod-b", POD_NAMESPACE, Qos::Burstable);
    let limited = ctrd.run_app(
        &pod_b,
        &App {
            memory_limit: Some(MEMORY_LIMIT),
            ..App::sleeping("limited")
        },
    );
    eprintln!(
        "containerd up and image imported in {:.0} ms; two pods, five tasks after {:.0} ms",
        up.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );

    // The harness itself.
    for pod in [&pod_a, &pod_b] {
        check_layout(&ctrd, &pod.sandbox, &sandbox_annotations(pod));
    }
    check_layout(&ctrd, &busy, &app_annotations(&pod_a, "busy"));
    check_layout(&ctrd, &idle, &app_annotations(&pod_a, "idle"));
    check_layout(&ctrd, &limited, &app_annotations(&pod_b, "limited"));
    assert!(pod_a.sandbox.cgroup.starts_with("/kubepods/besteffort/pod"));
    assert!(limited.cgroup.starts_with("/kubepods/burstable/pod"));
    let limit_file = hierarchy_with("memory.limit_in_bytes")
        .map(|r| {
            r.join(limited.cgroup.trim_start_matches('/'))
                .join("memory.limit_in_bytes")
        })
        .or_else(|| {
            hierarchy_with("cgroup.controllers").map(|r| {
                r.join(limited.cgroup.trim_start_matches('/'))
                    .join("memory.max")
            })
        })
        .expect("a memory hierarchy");
    assert_eq!(
        fs::read_to_string(&limit_file).unwrap_or_default().trim(),
        MEMORY_LIMIT.to_string(),
        "{}",
        limit_file.display()
    );
    if let Ok(path) = std::env::var("OUTLYER_SAVE_CONTAINERD_CONFIG") {
        fs::copy(ctrd.bundle(&limited.id).join("config.json"), &path).expect("copy config.json");
        eprintln!("config.json of {} copied to {path}", limited.id);
    }

    // The agent, with no Docker socket anywhere near it.
    let addr = format!("127.0.0.1:{}", free_port());
    let mut agent = Agent::spawn(
        &[
            "--runtime",
            "containerd",
            "--containerd-state",
            ctrd.state_str(),
            "--rootfs",
            "/",
            "--listen",
            &addr,
            "--interval",
            "1",
        ],
        &[],
    );
    agent.wait_healthy(Duration::from_secs(10));
    let expected = [
        Expected {
            task: &busy,
            pod: &pod_a,
            name: "busy",
        },
        Expected {
            task: &idle,
            pod: &pod_a,
            name: "idle",
        },
        Expected {
            task: &limited,
            pod: &pod_b,
            name: "limited",
        },
    ];
    let listed_all = agent.wait_metrics(SECOND, POLL, |body| {
        expected.iter().all(|e| listed(body, e.task).is_some())
    });
    let body = agent.try_metrics().unwrap_or_default();
    assert!(
        listed_all.is_some(),
        "not every app container listed within 1 s of /healthz: {:?}\n/metrics:\n{body}",
        expected
            .iter()
            .flat_map(|e| label_errors(&body, e))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "all 3 app containers listed {:.1} ms after /healthz",
        listed_all.map_or(0.0, |(t, _)| t.as_secs_f64() * 1e3)
    );
    let errors: Vec<String> = expected
        .iter()
        .flat_map(|e| label_errors(&body, e))
        .collect();
    assert!(errors.is_empty(), "labels: {errors:#?}\n/metrics:\n{body}");
    for pod in [&pod_a, &pod_b] {
        assert!(
            !body.contains(&pod.sandbox.id),
            "the sandbox of {} ({}) is on /metrics:\n{body}",
            pod.name,
            pod.sandbox.id
        );
    }
    let limit_line = container_line(&body, "container_spec_memory_limit_bytes", &limited.id)
        .unwrap_or_else(|| panic!("no container_spec_memory_limit_bytes for limited:\n{body}"));
    assert_eq!(
        sample_value(limit_line),
        Some(MEMORY_LIMIT as f64),
        "{limit_line}"
    );

    // CPU time of the busy loop grows from one collection to a later one.
    let first = agent
        .wait_metrics(Duration::from_secs(5), POLL, |b| {
            cpu_total(b, &busy).is_some_and(|v| v > 0.0)
        })
        .and_then(|(_, b)| cpu_total(&b, &busy));
    let Some(first) = first else {
        panic!(
            "no non-zero container_cpu_usage_seconds_total for busy within 5 s:\n{}",
            agent.try_metrics().unwrap_or_default()
        );
    };
    let grew = agent.wait_metrics(Duration::from_secs(5), POLL, |b| {
        cpu_total(b, &busy).is_some_and(|v| v > first)
    });
    assert!(
        grew.is_some(),
        "container_cpu_usage_seconds_total of busy stayed at {first} for 5 s"
    );

    // One more container while the agent runs.
    let late = ctrd.run_app(&pod_b, &App::sleeping("late"));
    let started_late = Instant::now();
    let seen = agent.wait_metrics(SECOND, Duration::from_millis(1), |b| {
        listed(b, &late).is_some()
    });
    let latency = started_late.elapsed();
    let body = agent.try_metrics().unwrap_or_default();
    assert!(
        seen.is_some(),
        "a container started while the agent runs was not listed within 1 s of ctr run:\n{body}"
    );
    eprintln!(
        "container started with the agent running: listed {:.1} ms after ctr run returned",
        latency.as_secs_f64() * 1e3
    );
    let late_expected = Expected {
        task: &late,
        pod: &pod_b,
        name: "late",
    };
    let errors = label_errors(&body, &late_expected);
    assert!(errors.is_empty(), "labels: {errors:#?}");

    // Killing and removing it.
    let (killed, removed) = ctrd.kill_and_remove(&late.id);
    let after_removal = Instant::now();
    let gone = agent.wait_metrics(SECOND, Duration::from_millis(1), |b| {
        listed(b, &late).is_none()
    });
    assert!(
        gone.is_some(),
        "a killed and removed container is still listed 1 s after ctr c rm:\n{}",
        agent.try_metrics().unwrap_or_default()
    );
    let gone_after = after_removal.elapsed();
    eprintln!(
        "killed container: kill returned after {:.1} ms, task and container removed after {:.1} ms; \
         gone from /metrics {:.1} ms after the removal ({:.1} ms after the kill returned)",
        killed.as_secs_f64() * 1e3,
        removed.as_secs_f64() * 1e3,
        gone_after.as_secs_f64() * 1e3,
        (removed - killed + gone_after).as_secs_f64() * 1e3
    );
    let body = agent.metrics();
    for e in &expected {
        assert!(
            listed(&body, e.task).is_some(),
            "{} disappeared with the killed container",
            e.name
        );
    }
    assert!(agent.is_running(), "agent exited:\n{}", agent.stderr());
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f64());
}
