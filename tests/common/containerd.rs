//! A private containerd for tests and benches, and Kubernetes pods laid out
//! in it as the CRI plugin lays them out, without the CRI plugin: every
//! container is made with `ctr run` in the pod's cgroup and with the CRI
//! annotations, app containers join their sandbox's network, IPC and UTS
//! namespaces.
//!
//! The daemon has its own root, state, socket, `opt` directory and runc root
//! under `/tmp/oe2ec-<tag>-<pid>`, and no CRI plugin (nor anything else that
//! needs a network). What it still shares with any other containerd 1.6 on
//! the machine is `/run/containerd/s/`, where shims put their sockets under a
//! hash of (daemon socket, namespace, sandbox id): containerd has no setting
//! for it, and the names cannot collide.
//!
//! Cgroups are the cgroupfs driver's, `/kubepods[/<qos>]/pod<uid>/<id>` in
//! every hierarchy; runc removes a container's own directory when its task is
//! deleted but never the pod's nor the QoS class's, so the harness records the
//! directories it made (in the daemon directory, for a later run to sweep if
//! this one is killed) and removes them when dropped.

use super::*;

/// The namespace the CRI plugin uses.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// The test image in containerd (`scripts/ci-setup.sh --containerd-image`).
pub const CONTAINERD_IMAGE: &str = "docker.io/library/localbusy:latest";
const DIR_PREFIX: &str = "oe2ec-";

/// `name` from PATH or the usual system directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map_or_else(Vec::new, |p| std::env::split_paths(&p).collect())
        .into_iter()
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// PATH for the daemon: it looks up `containerd-shim-runc-v2`, the shim
/// looks up `runc` (in `/usr/sbin` on Debian).
const DAEMON_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn is_root() -> bool {
    status_field_is_zero("Uid:")
}

fn status_field_is_zero(field: &str) -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Whether a private containerd can be started: root, `containerd`, `ctr`,
/// `containerd-shim-runc-v2`, `runc`, a static busybox for the image, and a
/// cgroup hierarchy. Without them the test is skipped with a message, unless
/// `OUTLYER_REQUIRE_DOCKER` is set (as `scripts/test.sh` sets it): then it
/// fails. Also tears down daemons left by killed test runs.
pub fn require_containerd() -> bool {
    let mut missing: Vec<&str> = ["containerd", "ctr", "containerd-shim-runc-v2", "runc"]
        .into_iter()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !is_root() {
        missing.push("root");
    }
    if !["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        missing.push("busybox-static");
    }
    if cgroup_mounts().is_empty() {
        missing.push("a mounted cgroup hierarchy");
    }
    if !missing.is_empty() {
        if docker_required() {
            panic!(
                "OUTLYER_REQUIRE_DOCKER is set but a private containerd can't be started: missing {}; \
                 run scripts/ci-setup.sh as root",
                missing.join(", ")
            );
        }
        eprintln!(
            "SKIPPED: a private containerd needs {}; set OUTLYER_REQUIRE_DOCKER=1 to fail instead",
            missing.join(", ")
        );
        return false;
    }
    sweep_stale_containerds();
    true
}

/// 32 random bytes as 64 lower-case hex digits: a CRI container id.
pub fn random_id() -> String {
    random_hex(32)
}

/// A random (version 4) UUID, as Kubernetes gives pods.
pub fn random_uuid() -> String {
    let mut h = random_hex(16).into_bytes();
    h[12] = b'4';
    h[16] = b"89ab"[usize::from(h[16]) % 4];
    let s = String::from_utf8(h).expect("hex digits");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Kubernetes' quality-of-service classes, as the pod cgroup's parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    /// The directories above the pod's, outermost first.
    fn parents(self) -> &'static [&'static str] {
        match self {
            Qos::Guaranteed => &["/kubepods"],
            Qos::Burstable => &["/kubepods", "/kubepods/burstable"],
            Qos::BestEffort => &["/kubepods", "/kubepods/besteffort"],
        }
    }
}

/// A running task: its id, its cgroup path (from the hierarchy root) and its
/// init process as the host sees it.
#[derive(Clone, Debug)]
pub struct Task {
    pub id: String,
    pub cgroup: String,
    pub pid: u32,
}

/// A pod: its sandbox task and its identity.
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub qos: Qos,
    pub sandbox: Task,
}

impl Pod {
    /// `/kubepods[/<qos>]/pod<uid>`.
    pub fn cgroup_parent(&self) -> String {
        pod_cgroup(self.qos, &self.uid)
    }
}

fn pod_cgroup(qos: Qos, uid: &str) -> String {
    format!("{}/pod{uid}", qos.parents().last().copied().unwrap_or(""))
}

/// An app container to start in a pod.
pub struct App<'a> {
    /// The Kubernetes container name (`io.kubernetes.cri.container-name`).
    pub name: &'a str,
    /// The process, run in the busybox image.
    pub args: &'a [&'a str],
    /// `linux.resources.memory.limit` in bytes (`ctr run --memory-limit`).
    pub memory_limit: Option<u64>,
}

impl<'a> App<'a> {
    pub fn sleeping(name: &'a str) -> App<'a> {
        App {
            name,
            args: &["sleep", "3600"],
            memory_limit: None,
        }
    }

    /// A shell busy loop: one core's worth of CPU time.
    pub fn busy(name: &'a str) -> App<'a> {
        App {
            name,
            args: &["sh", "-c", "while :; do :; done"],
            memory_limit: None,
        }
    }
}

/// A containerd of its own (see the module doc). Dropping it removes every
/// container and task it has, stops it, kills what is left of its shims and
/// containers, unmounts their root filesystems and removes its cgroups and
/// directory.
pub struct PrivateContainerd {
    pub dir: PathBuf,
    pub address: PathBuf,
    /// containerd's `state` (the agent's `--containerd-state`).
    pub state: PathBuf,
    child: Option<Child>,
}

impl PrivateContainerd {
    /// Starts the daemon, waits (20 s) until `ctr version` answers and
    /// imports the test image into [`K8S_NAMESPACE`].
    pub fn start(tag: &str) -> PrivateContainerd {
        // Short: the socket path is limited to 107 bytes.
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{tag}-{}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create private containerd dir");
        let mut daemon = PrivateContainerd::at(dir);
        daemon.spawn();
        daemon.import_image();
        daemon
    }

    fn at(dir: PathBuf) -> PrivateContainerd {
        PrivateContainerd {
            address: dir.join("containerd.sock"),
            state: dir.join("state"),
            dir,
            child: None,
        }
    }

    pub fn address_str(&self) -> &str {
        self.address.to_str().expect("utf-8 path")
    }

    pub fn state_str(&self) -> &str {
        self.state.to_str().expect("utf-8 path")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    fn cgroups_file(&self) -> PathBuf {
        self.dir.join("cgroups")
    }

    /// The config: version 2, everything under `dir`, no CRI plugin, no
    /// tracing exporter, none of the snapshotters that need a special
    /// filesystem (overlayfs and native remain).
    pub fn config(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
"#
        )
    }

    fn spawn(&mut self) {
        let config = self.dir.join("config.toml");
        fs::write(&config, self.config()).expect("write containerd config");
        let log = fs::File::create(self.log_path()).expect("create containerd log");
        let log2 = log.try_clone().expect("dup log fd");
        let containerd = find_tool("containerd").expect("containerd binary");
        let child = Command::new(containerd)
            .arg("--config")
            .arg(&config)
            .env("PATH", DAEMON_PATH)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn containerd");
        self.child = Some(child);
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            self.address.exists() && self.ctr_in("", &["version"]).status.success()
        });
        if up.is_none() {
            panic!(
                "private containerd did not answer `ctr version` within 20 s; log:\n{}",
                tail(&self.log(), 40)
            );
        }
    }

    fn import_image(&self) {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/ci-setup.sh"))
            .arg("--containerd-image")
            .arg(&self.address)
            .arg(K8S_NAMESPACE)
            .env(
                "PATH",
                format!(
                    "{DAEMON_PATH}:{}",
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .expect("run scripts/ci-setup.sh --containerd-image");
        assert!(
            out.status.success(),
            "importing {CONTAINERD_IMAGE} into the private containerd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ctr -a <socket> [-n <namespace>] <args>` (no namespace flag when
    /// `namespace` is empty).
    pub fn ctr_in(&self, namespace: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(find_tool("ctr").expect("ctr binary"));
        cmd.env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .arg("-a")
            .arg(&self.address);
        if !namespace.is_empty() {
            cmd.args(["-n", namespace]);
        }
        cmd.args(args).stdin(Stdio::null());
        cmd.output().expect("run ctr")
    }

    /// `ctr -n k8s.io <args>`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_in(K8S_NAMESPACE, args)
    }

    /// Runs `ctr -n k8s.io <args>`, panics unless it succeeds; trimmed stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {} failed: {}{}\ncontainerd log:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 20)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `<state>/io.containerd.runtime.v2.task/k8s.io/<id>`: the task's
    /// bundle, with `config.json` and `init.pid`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.state
            .join("io.containerd.runtime.v2.task")
            .join(K8S_NAMESPACE)
            .join(id)
    }

    /// The task's init PID from its bundle's `init.pid`.
    pub fn init_pid(&self, id: &str) -> Option<u32> {
        fs::read_to_string(self.bundle(id).join("init.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Records the cgroup directories that creating `pod_dir` will make
    /// (the pod's, and the QoS ones that do not exist yet), so that drop
    /// removes them whatever happens to this process.
    fn note_cgroups(&self, qos: Qos, pod_dir: &str) {
        let probe = cgroup_mounts();
        let exists = |rel: &str| {
            probe
                .iter()
                .any(|m| m.join(rel.trim_start_matches('/')).exists())
        };
        let mut lines = String::new();
        for parent in qos.parents() {
            if !exists(parent) {
                lines.push_str(parent);
                lines.push('\n');
            }
        }
        lines.push_str(pod_dir);
        lines.push('\n');
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cgroups_file())
            .expect("open the cgroups record");
        f.write_all(lines.as_bytes())
            .expect("write the cgroups record");
    }

    /// `ctr run -d` of the busybox image as task `id` running `args`, in
    /// cgroup `cgroup`, with `annotations` and `extra` flags.
    fn run_task(
        &self,
        id: &str,
        cgroup: &str,
        annotations: &[(&str, &str)],
        extra: &[String],
        args: &[&str],
    ) -> Task {
        let runc_root = self.runc_root();
        let mut cmd: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            // No stdio FIFOs (they would go to /run/containerd/fifo).
            "--null-io".into(),
            "--runc-root".into(),
            runc_root.display().to_string(),
            "--cgroup".into(),
            cgroup.into(),
        ];
        for (k, v) in annotations {
            cmd.push("--annotation".into());
            cmd.push(format!("{k}={v}"));
        }
        cmd.extend(extra.iter().cloned());
        cmd.push(CONTAINERD_IMAGE.into());
        cmd.push(id.into());
        cmd.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        self.ctr_ok(&refs);
        let pid = self.init_pid(id).unwrap_or_else(|| {
            panic!("no init.pid in {} after ctr run", self.bundle(id).display())
        });
        Task {
            id: id.to_string(),
            cgroup: cgroup.to_string(),
            pid,
        }
    }

    /// A pod's sandbox (container type `sandbox`, a sleeping busybox in the
    /// role of the pause container) in `/kubepods[/<qos>]/pod<uid>/<id>`.
    pub fn run_pod(&self, name: &str, namespace: &str, qos: Qos) -> Pod {
        let uid = random_uuid();
        let id = random_id();
        let parent = pod_cgroup(qos, &uid);
        self.note_cgroups(qos, &parent);
        let log_dir = format!("/var/log/pods/{namespace}_{name}_{uid}");
        let sandbox = self.run_task(
            &id,
            &format!("{parent}/{id}"),
            &[
                ("io.kubernetes.cri.container-type", "sandbox"),
                ("io.kubernetes.cri.sandbox-id", &id),
                ("io.kubernetes.cri.sandbox-log-directory", &log_dir),
                ("io.kubernetes.cri.sandbox-name", name),
                ("io.kubernetes.cri.sandbox-namespace", namespace),
                ("io.kubernetes.cri.sandbox-uid", &uid),
            ],
            &[],
            &["sleep", "3600"],
        );
        Pod {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid,
            qos,
            sandbox,
        }
    }

    /// An app container of `pod` (container type `container`) in the pod's
    /// cgroup, sharing the sandbox's network, IPC and UTS namespaces.
    pub fn run_app(&self, pod: &Pod, app: &App) -> Task {
        let id = random_id();
        let sandbox_pid = pod.sandbox.pid;
        let mut extra: Vec<String> = ["network:net", "ipc:ipc", "uts:uts"]
            .iter()
            .flat_map(|spec| {
                let (kind, file) = spec.split_once(':').unwrap_or((spec, spec));
                [
                    "--with-ns".to_string(),
                    format!("{kind}:/proc/{sandbox_pid}/ns/{file}"),
                ]
            })
            .collect();
        if let Some(limit) = app.memory_limit {
            extra.push("--memory-limit".into());
            extra.push(limit.to_string());
        }
        self.run_task(
            &id,
            &format!("{}/{id}", pod.cgroup_parent()),
            &[
                ("io.kubernetes.cri.container-type", "container"),
                ("io.kubernetes.cri.container-name", app.name),
                ("io.kubernetes.cri.image-name", CONTAINERD_IMAGE),
                ("io.kubernetes.cri.sandbox-id", &pod.sandbox.id),
                ("io.kubernetes.cri.sandbox-name", &pod.name),
                ("io.kubernetes.cri.sandbox-namespace", &pod.namespace),
                ("io.kubernetes.cri.sandbox-uid", &pod.uid),
            ],
            &extra,
            app.args,
        )
    }

    /// `ctr task kill -s KILL`, then `ctr task rm` once the task has
    /// stopped, then `ctr c rm` (which also removes its snapshot). Returns
    /// how long after the start the kill and the removal returned.
    pub fn kill_and_remove(&self, id: &str) -> (Duration, Duration) {
        let start = Instant::now();
        self.ctr_ok(&["task", "kill", "-s", "KILL", id]);
        let killed = start.elapsed();
        // `task rm` refuses a task that has not stopped yet.
        let removed = wait_until(Duration::from_secs(10), Duration::from_millis(5), || {
            self.ctr(&["task", "rm", id]).status.success()
        });
        assert!(
            removed.is_some(),
            "ctr task rm {id} did not succeed within 10 s of the kill"
        );
        self.ctr_ok(&["container", "rm", id]);
        (killed, start.elapsed())
    }

    /// Every task and container of every namespace, killed and removed.
    fn remove_all(&self) {
        let out = self.ctr_in("", &["namespaces", "ls", "-q"]);
        for ns in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let tasks = self.ctr_in(ns, &["task", "ls", "-q"]);
            let tasks: Vec<String> = String::from_utf8_lossy(&tasks.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            for id in &tasks {
                let _ = self.ctr_in(ns, &["task", "kill", "-s", "KILL", id]);
            }
            for id in &tasks {
                let _ = self.ctr_in(ns, &["task", "rm", "-f", id]);
            }
            let containers = self.ctr_in(ns, &["container", "ls", "-q"]);
            for id in String::from_utf8_lossy(&containers.stdout).split_whitespace() {
                let _ = self.ctr_in(ns, &["container", "rm", id]);
            }
        }
    }

    /// SIGTERM, 10 s, then SIGKILL.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let exited = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                child.try_wait().ok().flatten().is_some()
            });
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// The recorded cgroup directories (pod and QoS ones), deepest first.
    fn recorded_cgroups(&self) -> Vec<String> {
        let mut dirs: Vec<String> = fs::read_to_string(self.cgroups_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("/kubepods"))
            .map(str::to_string)
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        dirs
    }

    /// Kills, by PID, every process that still names this daemon's
    /// directory (shims: `-address <dir>/containerd.sock`) and every process
    /// in a container cgroup under a recorded pod.
    fn kill_leftovers(&self) {
        let marker = self.dir.to_string_lossy().into_owned();
        if let Ok(entries) = fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                    continue;
                };
                if String::from_utf8_lossy(&cmdline).contains(&marker) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        for mount in cgroup_mounts() {
            for pod in self.recorded_cgroups() {
                let Ok(children) = fs::read_dir(mount.join(pod.trim_start_matches('/'))) else {
                    continue;
                };
                for child in children.flatten().filter(|c| c.path().is_dir()) {
                    for pid in fs::read_to_string(child.path().join("cgroup.procs"))
                        .unwrap_or_default()
                        .split_whitespace()
                    {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
            }
        }
    }

    /// Removes the recorded directories (and any container directory left
    /// in a pod's) from every hierarchy, waiting a little for processes
    /// that are still exiting.
    fn remove_cgroups(&self) {
        let dirs = self.recorded_cgroups();
        for mount in cgroup_mounts() {
            for rel in &dirs {
                let dir = mount.join(rel.trim_start_matches('/'));
                if !dir.exists() {
                    continue;
                }
                if let Ok(children) = fs::read_dir(&dir) {
                    for child in children.flatten().filter(|c| c.path().is_dir()) {
                        let path = child.path();
                        wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                            fs::remove_dir(&path).is_ok() || !path.exists()
                        });
                    }
                }
                // A QoS or kubepods directory someone else filled stays.
                wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                    fs::remove_dir(&dir).is_ok() || !dir.exists() || has_subdirs(&dir)
                });
            }
        }
    }

    /// Shim sockets (`/run/containerd/s/<hash>`, named in each bundle's
    /// `address` file) that a killed shim could not remove.
    fn remove_shim_sockets(&self) {
        let Ok(namespaces) = fs::read_dir(self.state.join("io.containerd.runtime.v2.task")) else {
            return;
        };
        for ns in namespaces.flatten() {
            let Ok(bundles) = fs::read_dir(ns.path()) else {
                continue;
            };
            for bundle in bundles.flatten() {
                let address = fs::read_to_string(bundle.path().join("address")).unwrap_or_default();
                let Some(path) = address.trim().strip_prefix("unix://") else {
                    continue;
                };
                if path.starts_with("/run/containerd/s/") && Path::new(path).exists() {
                    let _ = fs::remove_file(path);
                }
            }
        }
    }

    fn unmount_all(&self) {
        super::unmount_below(&self.dir);
    }
}

fn has_subdirs(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| e.path().is_dir()))
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log: String = self
                .log()
                .lines()
                .filter(|l| !l.contains("loading plugin"))
                .map(|l| format!("{l}\n"))
                .collect();
            eprintln!("---- private containerd log ----\n{}", tail(&log, 40));
        }
        if self.child.is_some() {
            self.remove_all();
        }
        self.stop();
        self.kill_leftovers();
        self.remove_shim_sockets();
        self.unmount_all();
        self.remove_cgroups();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Tears down private containerds left by test processes that no longer
/// exist (a run killed by a timeout never reaches the drop handlers).
fn sweep_stale_containerds() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        drop(PrivateContainerd::at(entry.path()));
    }
}
