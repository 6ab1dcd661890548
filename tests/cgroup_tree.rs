//! The cgroup-tree source on synthetic trees: inotify sees containers'
//! directories come and go (nested creation included), the runtimes'
//! bundles name them, bad bundles cost names and nothing else, and the
//! collector publishes them with the kubelet's labels.

use outlyer_agent::bundle::MAX_CONFIG_BYTES;
use outlyer_agent::cgroup::mounts;
use outlyer_agent::cgroup::runtime::Runtime;
use outlyer_agent::cgroup::tree::{CgroupTree, TreeEvent};
use outlyer_agent::cgroup_source::{CgroupSource, Settings, GRACE};
use outlyer_agent::metrics::Collector;
use outlyer_agent::registry::{ContainerInfo, Registry, SelfIdentity};
use outlyer_agent::source::Change;
use outlyer_agent::tracking::Followers;
use outlyer_testkit::{Driver, SyntheticHost, TreeLayout, TreeOptions};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::TempDir;

fn id(n: u32) -> String {
    format!("{n:08x}{}", "ab".repeat(28))
}

fn uid(n: u32) -> String {
    format!("{n:08x}-1111-4222-8333-444455556666")
}

fn appeared(events: &[TreeEvent]) -> Vec<(Runtime, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            TreeEvent::Appeared(c) => Some((c.runtime, c.id.clone(), c.cgroup.clone())),
            TreeEvent::Gone { .. } => None,
        })
        .collect()
}

fn gone(events: &[TreeEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TreeEvent::Gone { id, .. } => Some(id.clone()),
            TreeEvent::Appeared(_) => None,
        })
        .collect()
}

#[test]
fn nested_creation_is_never_missed_and_removal_is_seen() {
    let dir = TempDir::new("tree-nested");
    fs::create_dir_all(dir.path().join("system.slice/cron.service")).unwrap();
    let mut tree = CgroupTree::new(dir.path(), "/").unwrap();
    let mut ev = Vec::new();
    tree.walk(&mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    let mut want = Vec::new();
    for n in 0..40u32 {
        // The pod's directory and the container's in one go, as the
        // kubelet and the runtime make them; half on each driver.
        let rel = if n % 2 == 0 {
            format!("kubepods/besteffort/pod{}/{}", uid(n), id(n))
        } else {
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
                uid(n).replace('-', "_"),
                id(n)
            )
        };
        fs::create_dir_all(dir.path().join(&rel)).unwrap();
        // A container's own inner cgroups are no containers.
        fs::create_dir_all(dir.path().join(&rel).join("inner")).unwrap();
        want.push((id(n), format!("/{rel}")));
        tree.drain(&mut ev);
    }
    // CRI-O's monitor scope and a service are not containers.
    fs::create_dir_all(dir.path().join(format!(
        "kubepods.slice/kubepods-pod{}.slice/crio-conmon-{}.scope",
        uid(99).replace('-', "_"),
        id(99)
    )))
    .unwrap();
    fs::create_dir_all(dir.path().join("system.slice/ssh.service")).unwrap();
    tree.drain(&mut ev);
    let got = appeared(&ev);
    assert_eq!(got.len(), 40, "{got:#?}");
    for (i, (id, path)) in want.iter().enumerate() {
        let hit = got.iter().find(|(_, g, _)| g == id).unwrap_or_else(|| {
            panic!("container {i} ({path}) missed: {got:#?}");
        });
        assert_eq!(&hit.2, path);
        let runtime = if i % 2 == 0 {
            Runtime::Unknown
        } else {
            Runtime::Containerd
        };
        assert_eq!(hit.0, runtime, "{path}");
    }
    assert_eq!(tree.len(), 40);

    ev.clear();
    for (id, path) in want.iter().take(10) {
        let d = dir.path().join(path.trim_start_matches('/'));
        fs::remove_dir(d.join("inner")).unwrap();
        fs::remove_dir(&d).unwrap();
        let _ = id;
    }
    tree.drain(&mut ev);
    let mut g = gone(&ev);
    g.sort();
    let mut w: Vec<String> = want.iter().take(10).map(|(id, _)| id.clone()).collect();
    w.sort();
    assert_eq!(g, w);
    assert_eq!(tree.len(), 30);

    // A walk agrees with what the events said, and finds nothing new.
    ev.clear();
    tree.walk(&mut ev);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn a_walk_finds_what_happened_unwatched() {
    let dir = TempDir::new("tree-walk");
    let a = format!("kubepods/pod{}/{}", uid(1), id(1));
    fs::create_dir_all(dir.path().join(&a)).unwrap();
    let mut tree = CgroupTree::new(dir.path(), "/").unwrap();
    let mut ev = Vec::new();
    tree.walk(&mut ev);
    assert_eq!(appeared(&ev).len(), 1);
    // A mount whose root is not the hierarchy's root (a cgroup namespace):
    // paths carry the root.
    let mut nested = CgroupTree::new(&dir.path().join("kubepods"), "/kubepods").unwrap();
    let mut ev2 = Vec::new();
    nested.walk(&mut ev2);
    assert_eq!(appeared(&ev2)[0].2, format!("/{a}"));
}

/// A V2 synthetic host with `n` Kubernetes containers
/// (`/kubepods/burstable/pod…/<id>`), and a containerd state directory.
struct Node {
    host: SyntheticHost,
    state: TempDir,
}

impl Node {
    fn new(n: usize) -> Node {
        let mut opts = TreeOptions::new(TreeLayout::V2, n);
        opts.driver = Driver::Kubernetes;
        Node {
            host: SyntheticHost::create(opts).unwrap(),
            state: TempDir::new("ctrd-state"),
        }
    }

    fn bundle_dir(&self, namespace: &str, id: &str) -> PathBuf {
        let d = self
            .state
            .path()
            .join("io.containerd.runtime.v2.task")
            .join(namespace)
            .join(id);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn settings(&self) -> Settings {
        Settings {
            containerd_state: Some(self.state.path().to_path_buf()),
            crio_state: None,
            docker_api: false,
        }
    }

    fn hierarchies(&self) -> mounts::Hierarchies {
        mounts::discover(self.host.rootfs())
    }

    fn unified(&self) -> PathBuf {
        self.hierarchies().unified.unwrap().path
    }
}

fn cri_config(kind: &str, namespace: &str, pod: &str, container: &str) -> String {
    let q = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    format!(
        r#"{{"ociVersion":"1.1.0","process":{{"args":["sh"],"env":["APP_NAME=shop"]}},
        "annotations":{{"io.kubernetes.cri.container-type":"{kind}","io.kubernetes.cri.container-name":"{}",
        "io.kubernetes.cri.sandbox-name":"{}","io.kubernetes.cri.sandbox-namespace":"{}",
        "io.kubernetes.cri.sandbox-uid":"{}","io.kubernetes.cri.image-name":"registry.example/shop:1"}},
        "linux":{{"namespaces":[{{"type":"network","path":"/proc/1/ns/net"}}]}}}}"#,
        q(container),
        q(pod),
        q(namespace),
        uid(7)
    )
}

fn drain(src: &mut CgroupSource) -> Vec<Change> {
    std::iter::from_fn(|| src.next_change()).collect()
}

fn added(changes: &[Change]) -> Vec<&ContainerInfo> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Added(info) => Some(&**info),
            _ => None,
        })
        .collect()
}

#[test]
fn kubernetes_containers_reach_metrics_with_the_kubelets_labels() {
    let node = Node::new(5);
    let c = node.host.containers.clone();
    // 0: an app container whose name needs escaping; 1: the pod's sandbox;
    // 2: a 10 MB config.json; 3: a truncated one; 4: no bundle at all.
    let d = node.bundle_dir("k8s.io", &c[0].id);
    fs::write(
        d.join("config.json"),
        cri_config("container", "shop", "web-0", "a\"b\nc\\d"),
    )
    .unwrap();
    fs::write(d.join("init.pid"), c[0].pid.to_string()).unwrap();
    let d = node.bundle_dir("k8s.io", &c[1].id);
    fs::write(
        d.join("config.json"),
        cri_config("sandbox", "shop", "web-0", ""),
    )
    .unwrap();
    fs::write(d.join("init.pid"), c[1].pid.to_string()).unwrap();
    let d = node.bundle_dir("k8s.io", &c[2].id);
    let mut big = cri_config("container", "shop", "big", "big").into_bytes();
    big.resize(10 << 20, b' ');
    fs::write(d.join("config.json"), big).unwrap();
    let d = node.bundle_dir("k8s.io", &c[3].id);
    let cut = cri_config("container", "shop", "cut", "cut");
    fs::write(d.join("config.json"), &cut[..cut.len() / 2]).unwrap();
    fs::write(d.join("init.pid"), c[3].pid.to_string()).unwrap();

    let hier = node.hierarchies();
    let mut src = CgroupSource::new(&hier, &node.settings()).unwrap();
    let t0 = Instant::now();
    src.walk(t0);
    let mut changes = drain(&mut src);
    // The one with no bundle waits for one, then is reported by its cgroup.
    assert_eq!(added(&changes).len(), 4, "{changes:#?}");
    src.tick(t0 + GRACE + Duration::from_millis(1));
    changes.extend(drain(&mut src));
    let infos = added(&changes);
    assert_eq!(infos.len(), 5);
    let by_id = |i: usize| *infos.iter().find(|x| x.id == c[i].id).unwrap();
    let app = by_id(0);
    assert_eq!(app.name, "shop/web-0/a\"b\nc\\d");
    assert_eq!(app.image, "registry.example/shop:1");
    assert_eq!(app.pid, c[0].pid);
    assert_eq!(app.cgroup, c[0].cgroup_path);
    assert_eq!(app.env_tags, vec!["shop"]);
    assert!(app.kubelet_labels && app.has_own_netns());
    for i in [2, 3, 4] {
        let x = by_id(i);
        assert_eq!(x.name, x.id, "container {i} is named by its id");
        assert_eq!(x.cgroup, c[i].cgroup_path);
        assert_eq!(
            x.pid, c[i].pid,
            "container {i}: pid from cgroup.procs or init.pid"
        );
    }
    assert!(
        fs::metadata(node.bundle_dir("k8s.io", &c[2].id).join("config.json"))
            .unwrap()
            .len()
            > MAX_CONFIG_BYTES
    );

    // Through the registry (the sandbox is left out) into the collector.
    let mut registry = Registry::new(SelfIdentity::default(), false);
    let mut collector = Collector::new(node.host.rootfs(), "host-finger");
    let now = Instant::now();
    for ch in changes {
        Followers {
            registry: &mut registry,
            collector: &mut collector,
            uploader: None,
            rootfs: node.host.rootfs(),
        }
        .apply(ch, now, 1.7e9);
    }
    assert_eq!(registry.len(), 4, "the sandbox is not tracked");
    collector.collect(now, 1.7e9);
    let mut out = Vec::new();
    collector.write_prometheus(&mut out);
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("container_memory_usage_bytes{") && l.contains(&c[0].id))
        .unwrap_or_else(|| panic!("no memory line for the app container:\n{text}"));
    let want = format!(
        r#"container_memory_usage_bytes{{id="{}",container="a\"b\nc\\d",image="registry.example/shop:1",name="{}",namespace="shop",pod="web-0"}} "#,
        c[0].cgroup_path, c[0].id
    );
    assert!(line.starts_with(&want), "{line}\nwant {want}");
    assert_eq!(
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap(),
        c[0].mem_usage as f64
    );
    assert!(!text.contains(&c[1].id), "sandbox published:\n{text}");
    for i in [2, 3, 4] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("container_memory_usage_bytes{")
                    && l.contains(&format!("name=\"{}\"", c[i].id))),
            "container {i} missing:\n{text}"
        );
    }
}

#[test]
fn a_container_that_vanishes_before_it_is_looked_at_is_never_reported() {
    let node = Node::new(0);
    let hier = node.hierarchies();
    let mut src = CgroupSource::new(&hier, &node.settings()).unwrap();
    let now = Instant::now();
    src.walk(now);
    let pod = node
        .unified()
        .join(format!("kubepods/besteffort/pod{}", uid(3)));
    let leaf = pod.join(id(3));
    fs::create_dir_all(&leaf).unwrap();
    fs::remove_dir(&leaf).unwrap();
    src.ready(now);
    src.tick(now + GRACE * 2);
    assert!(drain(&mut src).is_empty());
    // One that stays, with no bundle, is reported after the grace and removed with its cgroup.
    fs::create_dir_all(&leaf).unwrap();
    src.ready(now);
    assert!(drain(&mut src).is_empty(), "waits for its bundle");
    src.tick(now + GRACE * 2);
    let ch = drain(&mut src);
    assert_eq!(added(&ch).len(), 1, "{ch:?}");
    fs::remove_dir(&leaf).unwrap();
    src.ready(now + GRACE * 2);
    let ch = drain(&mut src);
    assert!(
        matches!(&ch[..], [Change::Removed { id: gone, .. }] if *gone == id(3)),
        "{ch:?}"
    );
}

#[test]
fn bare_ids_nobody_names_are_left_to_the_docker_api() {
    let node = Node::new(1);
    let mut settings = node.settings();
    settings.docker_api = true;
    let hier = node.hierarchies();
    let mut src = CgroupSource::new(&hier, &settings).unwrap();
    let now = Instant::now();
    src.walk(now);
    src.tick(now + GRACE * 2);
    assert!(
        drain(&mut src).is_empty(),
        "a dockershim-style container is Docker's"
    );
}

#[test]
fn a_bundle_written_after_the_cgroup_is_waited_for() {
    let node = Node::new(1);
    let c = node.host.containers[0].clone();
    let d = node.bundle_dir("k8s.io", &c.id);
    fs::write(
        d.join("config.json"),
        cri_config("container", "shop", "late", "app"),
    )
    .unwrap();
    let hier = node.hierarchies();
    let mut src = CgroupSource::new(&hier, &node.settings()).unwrap();
    let t0 = Instant::now();
    src.walk(t0);
    assert!(drain(&mut src).is_empty(), "no init.pid yet");
    let next = src.deadline().unwrap();
    assert!(next <= t0 + Duration::from_millis(10), "retried soon");
    fs::write(d.join("init.pid"), format!("{}\n", c.pid)).unwrap();
    src.tick(next);
    let ch = drain(&mut src);
    let infos = added(&ch);
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].name, "shop/late/app");
    assert!(infos[0].started_at > 1.0e9, "from the pid file's time");
}

/// CRI-O on cgroup v2 with the systemd driver, from a config.json of the
/// shape CRI-O writes (CRI-O itself is not packaged here).
#[test]
fn crio_systemd_layout_from_fixtures() {
    let node = Node::new(0);
    let crio = TempDir::new("crio-state");
    let cid = id(42);
    let pod_uid = uid(42);
    let slice = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        pod_uid.replace('-', "_")
    );
    let userdata = crio
        .path()
        .join("overlay-containers")
        .join(&cid)
        .join("userdata");
    fs::create_dir_all(&userdata).unwrap();
    let fixture = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtimes/crio-config.json"),
    )
    .unwrap()
    .replace("CONTAINER_ID", &cid)
    .replace("POD_UID_US", &pod_uid.replace('-', "_"))
    .replace("POD_UID", &pod_uid);
    fs::write(userdata.join("config.json"), fixture).unwrap();
    fs::write(userdata.join("pidfile"), "4242").unwrap();
    let settings = Settings {
        containerd_state: None,
        crio_state: Some(crio.path().to_path_buf()),
        docker_api: true,
    };
    let hier = node.hierarchies();
    let mut src = CgroupSource::new(&hier, &settings).unwrap();
    let now = Instant::now();
    src.walk(now);
    let unified = node.unified();
    fs::create_dir_all(
        unified
            .join(&slice)
            .join(format!("crio-conmon-{cid}.scope")),
    )
    .unwrap();
    fs::create_dir_all(
        unified
            .join(&slice)
            .join(format!("crio-{cid}.scope/container")),
    )
    .unwrap();
    src.ready(now);
    let ch = drain(&mut src);
    let infos = added(&ch);
    assert_eq!(infos.len(), 1, "{ch:#?}");
    let x = infos[0];
    assert_eq!(x.id, cid);
    assert_eq!(x.cgroup, format!("/{slice}/crio-{cid}.scope"));
    assert_eq!(x.name, "shop/web-7d4b9c8f6-x2x9q/web");
    assert_eq!(x.image, "docker.io/library/nginx:1.25");
    assert_eq!(x.pid, 4242);
    assert_eq!(x.env_tags, vec!["production", "shop-web"]);
    assert_eq!(x.label("io.kubernetes.pod.uid"), Some(pod_uid.as_str()));
    assert!(x.kubelet_labels && x.has_own_netns());
    // A Docker container beside it is the Docker API's.
    fs::create_dir_all(unified.join(format!("system.slice/docker-{}.scope", id(43)))).unwrap();
    src.ready(now);
    assert!(drain(&mut src).is_empty());
}

/// The agent itself on a synthetic containerd node (no Docker socket):
/// ready without Docker, a moved-in container listed within a second with
/// the kubelet's labels, gone when its cgroup goes.
#[test]
fn the_agent_on_a_containerd_node_without_docker() {
    let node = Node::new(2);
    let c = node.host.containers.clone();
    for (i, name) in [(0, "web"), (1, "late")] {
        let d = node.bundle_dir("k8s.io", &c[i].id);
        fs::write(
            d.join("config.json"),
            cri_config("container", "shop", &format!("{name}-pod"), name),
        )
        .unwrap();
        fs::write(d.join("init.pid"), c[i].pid.to_string()).unwrap();
    }
    // Container 1's cgroup is made (moved in) after the agent started.
    let unified = node.unified();
    let late_dir = unified.join(c[1].cgroup_path.trim_start_matches('/'));
    let parked = node.host.rootfs().join("parked");
    fs::rename(&late_dir, &parked).unwrap();

    let addr = format!("127.0.0.1:{}", common::free_port());
    let rootfs = node.host.rootfs().to_str().unwrap().to_owned();
    let state = node.state.path().to_str().unwrap().to_owned();
    let mut agent = common::Agent::spawn(
        &[
            "--rootfs",
            &rootfs,
            "--containerd-state",
            &state,
            "--docker-socket",
            "/nonexistent/docker.sock",
            "--interval",
            "1",
            "--listen",
            &addr,
        ],
        &[],
    );
    agent.wait_healthy(Duration::from_secs(10));
    assert_eq!(
        common::http_get(&addr, "/readyz"),
        (200, "ready\n".to_owned()),
        "ready without a Docker socket beside the cgroup tree"
    );
    let has = |body: &str, i: usize| {
        body.lines().any(|l| {
            l.starts_with("container_memory_usage_bytes{")
                && l.contains(&format!("name=\"{}\"", c[i].id))
        })
    };
    let (_, body) = agent
        .wait_metrics(Duration::from_secs(5), Duration::from_millis(10), |b| {
            has(b, 0)
        })
        .unwrap_or_else(|| panic!("container 0 never listed:\n{}", agent.stderr()));
    assert!(
        body.contains(r#"container="web",image="registry.example/shop:1""#)
            && body.contains(r#"namespace="shop",pod="web-pod""#),
        "{body}"
    );
    assert!(!has(&body, 1));
    let log = agent.stderr();
    assert!(
        log.contains(
            "container sources: the Docker API at /nonexistent/docker.sock; the cgroup tree at "
        ),
        "{log}"
    );

    let moved = Instant::now();
    fs::rename(&parked, &late_dir).unwrap();
    let (t, _) = agent
        .wait_metrics(Duration::from_secs(5), Duration::from_millis(5), |b| {
            has(b, 1)
        })
        .unwrap_or_else(|| panic!("moved-in container never listed:\n{}", agent.stderr()));
    eprintln!(
        "moved-in container listed after {:?} (polled every 5 ms)",
        moved.elapsed()
    );
    assert!(t <= Duration::from_secs(1), "listed after {t:?}");

    // Gone with its cgroup (moved out: the synthetic files cannot be rmdir'ed).
    fs::rename(&late_dir, &parked).unwrap();
    let (t, _) = agent
        .wait_metrics(Duration::from_secs(5), Duration::from_millis(5), |b| {
            !has(b, 1)
        })
        .unwrap_or_else(|| panic!("removed container still listed:\n{}", agent.stderr()));
    assert!(t <= Duration::from_secs(1), "still listed after {t:?}");
    assert!(agent.is_running());
}

/// The config.json containerd 1.6 and ctr wrote for the containerd test's
/// limited app container, byte for byte.
#[test]
fn a_captured_containerd_config_parses() {
    let text = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/runtimes/containerd-config.json"),
    )
    .unwrap();
    let spec = outlyer_agent::bundle::parse_spec(&text).unwrap();
    assert!(
        spec.has_netns,
        "the pod's network namespace, joined by path"
    );
    assert!(spec.env_tags.is_empty());
    let k = spec.kube().unwrap();
    assert_eq!(
        (
            k.namespace.as_str(),
            k.pod.as_str(),
            k.container.as_str(),
            k.pod_uid.as_str(),
            k.image.as_str(),
            k.sandbox
        ),
        (
            "oe2e-apps",
            "oe2e-pod-b",
            "limited",
            "f574aef3-ae53-4c5b-99bc-1bc9ad2a4f1a",
            "docker.io/library/localbusy:latest",
            false
        )
    );
}
