//! The agent against a fake Docker daemon on a unix socket, for reply shapes
//! the machine's real daemon can't produce: Docker 1.7 (API 1.19) and
//! Docker 29 (API 1.56, min 1.40) bodies and event lines, plain-text errors,
//! a container that vanishes between list and inspect, replies dripped one
//! byte at a time, and garbage. Wire details follow docs/compat.md §1.
//!
//! Fake containers are real `sleep` processes placed in `/docker/<id>`
//! cgroups (like the cgroupfs driver does) when the test runs as root, so the
//! agent can resolve them like real ones.

mod common;

use common::*;
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Fake containers: a sleeping process in its own cgroups

static ID_COUNTER: AtomicU32 = AtomicU32::new(0);

fn fake_id() -> String {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let seed = (
        std::process::id(),
        ID_COUNTER.fetch_add(1, Ordering::Relaxed),
        Instant::now(),
    );
    (0..4u8)
        .map(|i| {
            let mut h = DefaultHasher::new();
            (format!("{seed:?}"), i).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// cpuset cgroups accept tasks only once cpus and mems are set.
fn inherit_cpuset(dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        if fs::read_to_string(&own).is_ok_and(|v| v.trim().is_empty()) {
            if let Some(parent) = dir.parent() {
                if let Ok(v) = fs::read_to_string(parent.join(file)) {
                    let _ = fs::write(&own, v.trim());
                }
            }
        }
    }
}

struct FakeProcess {
    child: Child,
    cgroup_dirs: Vec<PathBuf>,
}

impl FakeProcess {
    /// `sleep 3600`, moved into `/docker/<id>` in every hierarchy if possible.
    fn spawn(id: &str) -> FakeProcess {
        let child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let mut cgroup_dirs = Vec::new();
        for mount in cgroup_mounts() {
            let parent = mount.join("docker");
            let dir = parent.join(id);
            if fs::create_dir_all(&dir).is_err() {
                continue;
            }
            inherit_cpuset(&parent);
            inherit_cpuset(&dir);
            cgroup_dirs.push(dir.clone());
            if let Err(e) = fs::write(dir.join("cgroup.procs"), child.id().to_string()) {
                eprintln!(
                    "note: could not move pid {} into {}: {e}",
                    child.id(),
                    dir.display()
                );
            }
        }
        FakeProcess { child, cgroup_dirs }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.cgroup_dirs {
            // The kernel frees an emptied cgroup shortly after its last task exits.
            wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

#[derive(Clone)]
struct FakeContainer {
    id: String,
    name: String,
    image: String,
    pid: u32,
    created: u64,
}

// ---------------------------------------------------------------------------
// The fake daemon

#[derive(Clone, Copy, PartialEq, Debug)]
enum Flavor {
    /// Docker 1.7.1, API 1.19 (min 1.12): no MinAPIVersion, old shapes,
    /// plain-text errors, events without status line until the first event.
    Docker17,
    /// Docker 29.3, API 1.56 (min 1.40): no top-level IPAddress, events only
    /// Type/Action/Actor, JSON errors.
    Docker29,
}

impl Flavor {
    fn api_range(self) -> ((u32, u32), (u32, u32)) {
        match self {
            Flavor::Docker17 => ((1, 12), (1, 19)),
            Flavor::Docker29 => ((1, 40), (1, 56)),
        }
    }

    /// The prefix a negotiating client must use.
    fn expected_prefix(self) -> &'static str {
        match self {
            Flavor::Docker17 => "/v1.19/",
            Flavor::Docker29 => "/v1.54/",
        }
    }
}

#[derive(Clone, Debug)]
struct Recorded {
    line: String,
    host: Option<String>,
}

struct Subscriber {
    stream: UnixStream,
    headers_sent: bool,
    chunked: bool,
}

struct State {
    flavor: Flavor,
    /// Write every reply one byte at a time.
    drip: bool,
    /// Close every connection right after a reply, without announcing it
    /// (an idle keep-alive connection dropped by the daemon).
    close_after_reply: bool,
    /// Answer every request with garbage and close.
    garbage: bool,
    /// Answer the next N `/containers/json` with a plain-text 500.
    fail_lists: u32,
    /// Listed, but inspect answers 404 (removed between list and inspect).
    vanished: HashSet<String>,
    containers: Vec<FakeContainer>,
    requests: Vec<Recorded>,
    connections: u32,
    garbage_sent: u32,
    subscribers: Vec<Subscriber>,
}

struct FakeDocker {
    _dir: TempDir,
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    processes: Vec<FakeProcess>,
}

const DATE: &str = "Date: Tue, 24 Nov 2026 23:00:00 GMT\r\n";

fn now_secs() -> u64 {
    unix_now() as u64
}

impl FakeDocker {
    fn start(flavor: Flavor) -> FakeDocker {
        let dir = TempDir::new("fake");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake docker socket");
        let state = Arc::new(Mutex::new(State {
            flavor,
            drip: false,
            close_after_reply: false,
            garbage: false,
            fail_lists: 0,
            vanished: HashSet::new(),
            containers: Vec::new(),
            requests: Vec::new(),
            connections: 0,
            garbage_sent: 0,
            subscribers: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let state = state.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    state.lock().unwrap().connections += 1;
                    let state = state.clone();
                    let stop = stop.clone();
                    thread::spawn(move || serve_connection(conn, state, stop));
                }
            });
        }
        FakeDocker {
            _dir: dir,
            socket,
            state,
            stop,
            processes: Vec::new(),
        }
    }

    fn socket_str(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a running container (not announced by an event).
    fn add(&mut self, name: &str, image: &str) -> FakeContainer {
        let id = fake_id();
        let process = FakeProcess::spawn(&id);
        let c = FakeContainer {
            id,
            name: name.to_string(),
            image: image.to_string(),
            pid: process.pid(),
            created: now_secs(),
        };
        self.processes.push(process);
        self.with(|s| s.containers.push(c.clone()));
        c
    }

    /// Adds a running container and announces it (`create`, `start`).
    fn start_container(&mut self, name: &str, image: &str) -> FakeContainer {
        let c = self.add(name, image);
        self.emit(&c, "create");
        self.emit(&c, "start");
        c
    }

    /// Removes a container and announces `die` and `destroy`.
    fn kill_container(&mut self, c: &FakeContainer) {
        self.with(|s| s.containers.retain(|x| x.id != c.id));
        self.processes.retain(|p| p.pid() != c.pid);
        self.emit(c, "die");
        self.emit(c, "destroy");
    }

    fn emit(&self, c: &FakeContainer, action: &str) {
        let flavor = self.with(|s| s.flavor);
        self.emit_raw(&event_line(flavor, c, action));
    }

    /// Sends `line` as one event (one chunk) to every subscriber.
    fn emit_raw(&self, line: &str) {
        let mut s = self.state.lock().unwrap();
        let (flavor, drip) = (s.flavor, s.drip);
        s.subscribers.retain_mut(|sub| {
            let mut out = Vec::new();
            if !sub.headers_sent {
                out.extend_from_slice(&events_head(flavor, sub.chunked));
                sub.headers_sent = true;
            }
            if sub.chunked {
                out.extend_from_slice(format!("{:x}\r\n", line.len()).as_bytes());
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(line.as_bytes());
            }
            write_out(&mut sub.stream, &out, drip).is_ok()
        });
    }

    fn events_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| path_of(&r.line).ends_with("/events"))
            .count()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    fn subscribers(&self) -> usize {
        self.with(|s| s.subscribers.len())
    }

    /// Every request carried a Host header, used the negotiated version
    /// prefix (only `/version` and `/_ping` may be unversioned) and, where
    /// `/events` has filters, used the list form old daemons understand.
    fn assert_requests_well_formed(&self, agent: &Agent) {
        let prefix = self.with(|s| s.flavor.expected_prefix());
        let requests = self.requests();
        assert!(!requests.is_empty(), "the agent sent no request");
        assert!(
            requests.iter().any(|r| path_of(&r.line) == "/version"),
            "the agent never asked GET /version (unversioned) to negotiate; requests: {requests:#?}"
        );
        for r in &requests {
            assert!(
                r.host.is_some(),
                "request without Host header: {:?}\nagent stderr:\n{}",
                r.line,
                agent.stderr()
            );
            let path = path_of(&r.line);
            let unversioned_ok = matches!(path.as_str(), "/version" | "/_ping");
            assert!(
                path.starts_with(prefix) || unversioned_ok,
                "request {:?} does not use the negotiated prefix {prefix}; all requests: {requests:#?}",
                r.line
            );
            if path.ends_with("/events") {
                if let Some(filters) = query_param(&r.line, "filters") {
                    assert!(
                        filters.contains("\":[") && !filters.contains("\":{"),
                        "events filters must use the list form old daemons accept, got {filters}"
                    );
                }
            }
        }
    }
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = UnixStream::connect(&self.socket);
        let mut s = self.state.lock().unwrap();
        for sub in s.subscribers.drain(..) {
            let _ = sub.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn write_out(stream: &mut UnixStream, bytes: &[u8], drip: bool) -> std::io::Result<()> {
    if drip {
        for b in bytes {
            stream.write_all(std::slice::from_ref(b))?;
            thread::sleep(Duration::from_micros(500));
        }
        Ok(())
    } else {
        stream.write_all(bytes)
    }
}

fn path_of(request_line: &str) -> String {
    let target = request_line.split(' ').nth(1).unwrap_or("");
    target.split('?').next().unwrap_or("").to_string()
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(request_line: &str, key: &str) -> Option<String> {
    let target = request_line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| url_decode(v))
    })
}

/// Splits `/v1.19/containers/json` into (Some((1,19)), "/containers/json").
fn split_version(path: &str) -> (Option<(u32, u32)>, String) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some((ver, tail)) = rest.split_once('/') {
            if let Some((a, b)) = ver.split_once('.') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    return (Some((a, b)), format!("/{tail}"));
                }
            }
        }
    }
    (None, path.to_string())
}

// ---------------------------------------------------------------------------
// Reply bodies

fn version_body(flavor: Flavor) -> String {
    match flavor {
        Flavor::Docker17 => concat!(
            r#"{"Version":"1.7.1","ApiVersion":"1.19","GitCommit":"786b29d","GoVersion":"go1.4.2","#,
            r#""Os":"linux","Arch":"amd64","KernelVersion":"4.1.10-17.31.amzn1.x86_64"}"#,
            "\n"
        )
        .to_string(),
        Flavor::Docker29 => concat!(
            r#"{"Platform":{"Name":"Docker Engine - Community"},"Components":[{"Name":"Engine","Version":"29.3.0","#,
            r#""Details":{"ApiVersion":"1.56","Arch":"amd64","BuildTime":"2026-03-01T10:00:00.000000000+00:00","#,
            r#""Experimental":"false","GitCommit":"abcdef0","GoVersion":"go1.25.7","KernelVersion":"6.8.0-45-generic","#,
            r#""MinAPIVersion":"1.40","Os":"linux"}}],"Version":"29.3.0","ApiVersion":"1.56","MinAPIVersion":"1.40","#,
            r#""GitCommit":"abcdef0","GoVersion":"go1.25.7","Os":"linux","Arch":"amd64","#,
            r#""KernelVersion":"6.8.0-45-generic","BuildTime":"2026-03-01T10:00:00.000000000+00:00"}"#,
            "\n"
        )
        .to_string(),
    }
}

fn info_body(flavor: Flavor, running: usize) -> String {
    match flavor {
        Flavor::Docker17 => format!(
            concat!(
                r#"{{"ID":"7TRN:IPZB:QYBB:VPBQ:UWYL:IOZE:W2SR:LMS5:BHJZ:GOVT:NQ5Z:GB4L","Containers":{},"Images":1,"#,
                r#""Driver":"aufs","DriverStatus":[["Root Dir","/var/lib/docker/aufs"],["Dirs","3"]],"#,
                r#""MemoryLimit":true,"SwapLimit":false,"CpuCfsPeriod":true,"CpuCfsQuota":true,"OomKillDisable":true,"#,
                r#""IPv4Forwarding":true,"Debug":false,"NFd":14,"NGoroutines":31,"SystemTime":"2015-11-03T09:33:20Z","#,
                r#""ExecutionDriver":"native-0.2","LoggingDriver":"json-file","NEventsListener":1,"#,
                r#""KernelVersion":"4.1.10-17.31.amzn1.x86_64","OperatingSystem":"Amazon Linux AMI 2015.09","#,
                r#""IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":null,"InitSha1":"","#,
                r#""InitPath":"/usr/libexec/docker/dockerinit","NCPU":2,"MemTotal":4142276608,"#,
                r#""DockerRootDir":"/var/lib/docker","HttpProxy":"","HttpsProxy":"","NoProxy":"","Name":"ip-10-0-0-5","#,
                r#""Labels":null,"ExperimentalBuild":false}}"#,
                "\n"
            ),
            running
        ),
        Flavor::Docker29 => format!(
            concat!(
                r#"{{"ID":"3f0a1b2c-aaaa-bbbb-cccc-0123456789ab","Containers":{0},"ContainersRunning":{0},"#,
                r#""ContainersPaused":0,"ContainersStopped":0,"Images":1,"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]],"#,
                r#""Plugins":{{"Volume":["local"],"Network":["bridge","host"],"Log":["json-file","local"]}},"#,
                r#""MemoryLimit":true,"SwapLimit":true,"CpuCfsPeriod":true,"CpuCfsQuota":true,"CPUShares":true,"CPUSet":true,"#,
                r#""PidsLimit":true,"IPv4Forwarding":true,"Debug":false,"NFd":30,"OomKillDisable":false,"NGoroutines":50,"#,
                r#""SystemTime":"2026-11-24T23:00:00.000000000Z","LoggingDriver":"json-file","CgroupDriver":"cgroupfs","#,
                r#""CgroupVersion":"1","NEventsListener":1,"KernelVersion":"6.8.0-45-generic","OperatingSystem":"Ubuntu 24.04 LTS","#,
                r#""OSVersion":"24.04","OSType":"linux","Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","#,
                r#""RegistryConfig":null,"NCPU":2,"MemTotal":4142276608,"DockerRootDir":"/var/lib/docker","Name":"host1","#,
                r#""Labels":[],"ExperimentalBuild":false,"ServerVersion":"29.3.0","SecurityOptions":["name=seccomp,profile=builtin"],"#,
                r#""Warnings":null}}"#,
                "\n"
            ),
            running
        ),
    }
}

fn rfc3339(secs: u64) -> String {
    let (y, m, d) = outlyer_agent::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.123456789Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn image_hex(c: &FakeContainer) -> String {
    c.id.chars().rev().collect()
}

fn list_entry(flavor: Flavor, c: &FakeContainer) -> String {
    match flavor {
        Flavor::Docker17 => format!(
            r#"{{"Id":"{}","Names":["/{}"],"Image":"{}","Command":"sleep 3600","Created":{},"Ports":[],"Labels":null,"Status":"Up 5 seconds"}}"#,
            c.id, c.name, c.image, c.created
        ),
        Flavor::Docker29 => format!(
            concat!(
                r#"{{"Id":"{id}","Names":["/{name}"],"Image":"{image}","ImageID":"sha256:{img}","Command":"sleep 3600","#,
                r#""Created":{created},"Ports":[],"Labels":{{"com.example.team":"fake"}},"State":"running","Status":"Up 5 seconds","#,
                r#""HostConfig":{{"NetworkMode":"bridge"}},"NetworkSettings":{{"Networks":{{"bridge":{{"IPAMConfig":null,"#,
                r#""Links":null,"Aliases":null,"DriverOpts":null,"GwPriority":0,"NetworkID":"5b1f","EndpointID":"e1","#,
                r#""Gateway":"172.17.0.1","IPAddress":"172.17.0.2","MacAddress":"02:42:ac:11:00:02","IPPrefixLen":16,"#,
                r#""IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}}},"Mounts":[]}}"#
            ),
            id = c.id,
            name = c.name,
            image = c.image,
            img = image_hex(c),
            created = c.created
        ),
    }
}

fn inspect_body(flavor: Flavor, c: &FakeContainer) -> String {
    let created = rfc3339(c.created);
    let body = match flavor {
        Flavor::Docker17 => format!(
            concat!(
                r#"{{"Id":"{id}","Created":"{created}","Path":"sleep","Args":["3600"],"#,
                r#""State":{{"Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"#,
                r#""Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"{created}","FinishedAt":"0001-01-01T00:00:00Z"}},"#,
                r#""Image":"{img}","NetworkSettings":{{"Bridge":"","EndpointID":"","Gateway":"172.17.42.1","#,
                r#""GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"HairpinMode":false,"IPAddress":"172.17.0.5","#,
                r#""IPPrefixLen":16,"IPv6Gateway":"","LinkLocalIPv6Address":"","LinkLocalIPv6PrefixLen":0,"#,
                r#""MacAddress":"02:42:ac:11:00:05","NetworkID":"","PortMapping":null,"Ports":{{}},"SandboxKey":"","#,
                r#""SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null}},"#,
                r#""ResolvConfPath":"/var/lib/docker/containers/{id}/resolv.conf","#,
                r#""HostnamePath":"/var/lib/docker/containers/{id}/hostname","#,
                r#""HostsPath":"/var/lib/docker/containers/{id}/hosts","#,
                r#""LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":"/{name}","RestartCount":0,"#,
                r#""Driver":"aufs","ExecDriver":"native-0.2","MountLabel":"","ProcessLabel":"","AppArmorProfile":"","#,
                r#""ExecIDs":null,"Volumes":{{}},"VolumesRW":{{}},"#,
                r#""HostConfig":{{"Binds":null,"ContainerIDFile":"","LxcConf":[],"Memory":0,"MemorySwap":0,"#,
                r#""CpuShares":0,"CpuPeriod":0,"CpusetCpus":"","CpusetMems":"","CpuQuota":0,"BlkioWeight":0,"#,
                r#""OomKillDisable":false,"Privileged":false,"PortBindings":{{}},"Links":null,"PublishAllPorts":false,"#,
                r#""Dns":null,"DnsSearch":null,"ExtraHosts":null,"VolumesFrom":null,"Devices":[],"NetworkMode":"bridge","#,
                r#""IpcMode":"","PidMode":"","UTSMode":"","CapAdd":null,"CapDrop":null,"#,
                r#""RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"SecurityOpt":null,"ReadonlyRootfs":false,"#,
                r#""Ulimits":null,"LogConfig":{{"Type":"json-file","Config":{{}}}},"CgroupParent":""}},"#,
                r#""Config":{{"Hostname":"{short}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"#,
                r#""AttachStderr":false,"PortSpecs":null,"ExposedPorts":null,"Tty":false,"OpenStdin":false,"#,
                r#""StdinOnce":false,"Env":null,"Cmd":["sleep","3600"],"Image":"{image}","Volumes":null,"#,
                r#""VolumeDriver":"","WorkingDir":"","Entrypoint":null,"NetworkDisabled":false,"MacAddress":"","#,
                r#""OnBuild":null,"Labels":null}}}}"#
            ),
            id = c.id,
            created = created,
            pid = c.pid,
            img = image_hex(c),
            name = c.name,
            short = &c.id[..12],
            image = c.image
        ),
        Flavor::Docker29 => format!(
            concat!(
                r#"{{"Id":"{id}","Created":"{created}","Path":"sleep","Args":["3600"],"#,
                r#""State":{{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"#,
                r#""Dead":false,"Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"{created}","#,
                r#""FinishedAt":"0001-01-01T00:00:00Z"}},"Image":"sha256:{img}","#,
                r#""ResolvConfPath":"/var/lib/docker/containers/{id}/resolv.conf","#,
                r#""HostnamePath":"/var/lib/docker/containers/{id}/hostname","#,
                r#""HostsPath":"/var/lib/docker/containers/{id}/hosts","#,
                r#""LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":"/{name}","RestartCount":0,"#,
                r#""Driver":"overlayfs","Platform":"linux","MountLabel":"","ProcessLabel":"","AppArmorProfile":"docker-default","#,
                r#""ExecIDs":null,"HostConfig":{{"Binds":null,"ContainerIDFile":"","LogConfig":{{"Type":"json-file","Config":{{}}}},"#,
                r#""NetworkMode":"bridge","PortBindings":{{}},"RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"#,
                r#""AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"#,
                r#""CgroupnsMode":"host","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"#,
                r#""IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"#,
                r#""PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","#,
                r#""ShmSize":67108864,"Runtime":"runc","Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"#,
                r#""CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"CpuPeriod":0,"CpuQuota":0,"#,
                r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"#,
                r#""DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"#,
                r#""MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"#,
                r#""CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":[],"ReadonlyPaths":[]}},"#,
                r#""GraphDriver":{{"Data":null,"Name":"overlayfs"}},"Mounts":[],"#,
                r#""Config":{{"Hostname":"{short}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"#,
                r#""AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"#,
                r#""Cmd":["sleep","3600"],"Image":"{image}","Volumes":null,"WorkingDir":"","Entrypoint":null,"#,
                r#""OnBuild":null,"Labels":{{"com.example.team":"fake"}}}},"#,
                r#""NetworkSettings":{{"SandboxID":"9c1d","SandboxKey":"/var/run/docker/netns/9c1d","Ports":{{}},"#,
                r#""Networks":{{"bridge":{{"IPAMConfig":null,"Links":null,"Aliases":null,"DriverOpts":null,"GwPriority":0,"#,
                r#""NetworkID":"5b1f","EndpointID":"e1","Gateway":"172.17.0.1","IPAddress":"172.17.0.2","#,
                r#""MacAddress":"02:42:ac:11:00:02","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","#,
                r#""GlobalIPv6PrefixLen":0,"DNSNames":null}}}}}},"ImageManifestDescriptor":null}}"#
            ),
            id = c.id,
            created = created,
            pid = c.pid,
            img = image_hex(c),
            name = c.name,
            short = &c.id[..12],
            image = c.image
        ),
    };
    body + "\n"
}

fn event_line(flavor: Flavor, c: &FakeContainer, action: &str) -> String {
    let t = now_secs();
    match flavor {
        Flavor::Docker17 => {
            format!(
                r#"{{"status":"{action}","id":"{}","from":"{}","time":{t}}}"#,
                c.id, c.image
            ) + "\n"
        }
        Flavor::Docker29 => {
            let extra = if action == "die" {
                r#","exitCode":"137""#
            } else {
                ""
            };
            format!(
                concat!(
                    r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"#,
                    r#""com.example.team":"fake"{extra},"image":"{image}","name":"{name}"}}}},"#,
                    r#""scope":"local","time":{t},"timeNano":{t}000000123}}"#
                ),
                action = action,
                id = c.id,
                extra = extra,
                image = c.image,
                name = c.name,
                t = t
            ) + "\n"
        }
    }
}

fn common_headers(flavor: Flavor) -> String {
    match flavor {
        Flavor::Docker17 => DATE.to_string(),
        Flavor::Docker29 => format!(
            "Api-Version: 1.56\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/29.3.0 (linux)\r\n{DATE}"
        ),
    }
}

fn events_head(flavor: Flavor, chunked: bool) -> Vec<u8> {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        "Connection: close\r\n"
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{}{framing}\r\n",
        common_headers(flavor)
    )
    .into_bytes()
}

/// A reply framed like Go's net/http: Content-Length when the body fits the
/// 2048-byte buffer, chunked otherwise (HTTP/1.0: no chunking, close).
fn reply(flavor: Flavor, status: &str, content_type: &str, body: &str, http10: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{}",
        common_headers(flavor)
    );
    if content_type.starts_with("text/plain") && flavor == Flavor::Docker29 {
        head.push_str("X-Content-Type-Options: nosniff\r\n");
    }
    let mut out;
    if body.len() <= 2048 || http10 {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        out = head.into_bytes();
        out.extend_from_slice(body.as_bytes());
    } else {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out = head.into_bytes();
        for piece in body.as_bytes().chunks(2048) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

fn error_reply(flavor: Flavor, status: &str, message: &str, http10: bool) -> Vec<u8> {
    match flavor {
        // Docker 1.7 (and any request below v1.24): plain text plus newline.
        Flavor::Docker17 => reply(
            flavor,
            status,
            "text/plain; charset=utf-8",
            &format!("{message}\n"),
            http10,
        ),
        Flavor::Docker29 => reply(
            flavor,
            status,
            "application/json",
            &format!("{{\"message\":\"{message}\"}}\n"),
            http10,
        ),
    }
}

/// The head of a full reply (for HEAD requests).
fn head_part(mut reply: Vec<u8>) -> Vec<u8> {
    if let Some(p) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
        reply.truncate(p + 4);
    }
    reply
}

const GARBAGE: [&[u8]; 3] = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not HTTP\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"Id\": [1,2,}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\n{]\r\n",
];

enum Next {
    Keep,
    Close,
    /// The connection became an events subscriber; keep it open, send nothing.
    Subscribed,
}

fn serve_connection(mut conn: UnixStream, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut subscribed = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
        let Some(head_end) = head_end else {
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    if subscribed {
                        continue; // clients send nothing more on an events stream
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("").to_string();
        let mut host = None;
        let mut content_length = 0usize;
        for h in lines {
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("host") {
                    host = Some(v.trim().to_string());
                }
                if k.trim().eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        // Discard a request body, if any.
        while buf.len() < content_length {
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        buf.drain(..content_length);
        state.lock().unwrap().requests.push(Recorded {
            line: line.clone(),
            host,
        });
        match handle(&line, &state, &mut conn) {
            Next::Keep => {}
            Next::Close => return,
            Next::Subscribed => subscribed = true,
        }
    }
}

fn handle(line: &str, state: &Arc<Mutex<State>>, conn: &mut UnixStream) -> Next {
    let http10 = line.ends_with("HTTP/1.0");
    let mut s = state.lock().unwrap();
    let flavor = s.flavor;
    let drip = s.drip;
    let close_after_reply = s.close_after_reply;
    if s.garbage {
        let g = GARBAGE[(s.garbage_sent % 3) as usize];
        s.garbage_sent += 1;
        drop(s);
        let _ = write_out(conn, g, drip);
        return Next::Close;
    }
    let (version, path) = split_version(&path_of(line));
    let ((min_a, min_b), (max_a, max_b)) = flavor.api_range();
    let out = if let Some(v) = version.filter(|v| *v > (max_a, max_b) || *v < (min_a, min_b)) {
        let message = match flavor {
            Flavor::Docker17 if v > (max_a, max_b) => format!(
                "client is newer than server (client API version: {}.{}, server API version: 1.19)",
                v.0, v.1
            ),
            Flavor::Docker17 => "client is too old, minimum supported API version is 1.12, please upgrade your client to a newer version".to_string(),
            Flavor::Docker29 if v > (max_a, max_b) => format!(
                "client version {}.{} is too new. Maximum supported API version is 1.56",
                v.0, v.1
            ),
            Flavor::Docker29 => format!(
                "client version {}.{} is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version",
                v.0, v.1
            ),
        };
        error_reply(flavor, "400 Bad Request", &message, http10)
    } else if path == "/_ping" {
        reply(flavor, "200 OK", "text/plain; charset=utf-8", "OK", http10)
    } else if path == "/version" {
        reply(
            flavor,
            "200 OK",
            "application/json",
            &version_body(flavor),
            http10,
        )
    } else if path == "/info" {
        reply(
            flavor,
            "200 OK",
            "application/json",
            &info_body(flavor, s.containers.len()),
            http10,
        )
    } else if path == "/containers/json" {
        if s.fail_lists > 0 {
            s.fail_lists -= 1;
            let message = "Cannot list containers: devmapper: Unknown device 0e34";
            match flavor {
                Flavor::Docker17 => {
                    error_reply(flavor, "500 Internal Server Error", message, http10)
                }
                Flavor::Docker29 => {
                    error_reply(flavor, "500 Internal Server Error", message, http10)
                }
            }
        } else {
            let entries: Vec<String> = s.containers.iter().map(|c| list_entry(flavor, c)).collect();
            reply(
                flavor,
                "200 OK",
                "application/json",
                &format!("[{}]\n", entries.join(",")),
                http10,
            )
        }
    } else if let Some(id) = path
        .strip_prefix("/containers/")
        .and_then(|p| p.strip_suffix("/json"))
    {
        let found = s
            .containers
            .iter()
            .find(|c| (c.id.starts_with(id) && !id.is_empty()) || c.name == id)
            .filter(|c| !s.vanished.contains(&c.id));
        match found {
            Some(c) => reply(
                flavor,
                "200 OK",
                "application/json",
                &inspect_body(flavor, c),
                http10,
            ),
            None => match flavor {
                Flavor::Docker17 => error_reply(
                    flavor,
                    "404 Not Found",
                    &format!("no such id: {id}"),
                    http10,
                ),
                Flavor::Docker29 => error_reply(
                    flavor,
                    "404 Not Found",
                    &format!("No such container: {id}"),
                    http10,
                ),
            },
        }
    } else if path == "/events" {
        let stream = match conn.try_clone() {
            Ok(c) => c,
            Err(_) => return Next::Close,
        };
        let mut sub = Subscriber {
            stream,
            headers_sent: false,
            chunked: !http10,
        };
        // Docker 1.7/1.8 send nothing until the first event; 1.9+ flush the
        // status line and headers at once.
        if flavor == Flavor::Docker29 {
            if write_out(&mut sub.stream, &events_head(flavor, sub.chunked), drip).is_err() {
                return Next::Close;
            }
            sub.headers_sent = true;
        }
        s.subscribers.push(sub);
        return Next::Subscribed;
    } else {
        match flavor {
            Flavor::Docker17 => reply(
                flavor,
                "404 Not Found",
                "text/plain; charset=utf-8",
                "404 page not found\n",
                http10,
            ),
            Flavor::Docker29 => error_reply(flavor, "404 Not Found", "page not found", http10),
        }
    };
    drop(s);
    let out = if line.starts_with("HEAD ") {
        head_part(out)
    } else {
        out
    };
    if write_out(conn, &out, drip).is_err() || http10 || close_after_reply {
        return Next::Close;
    }
    Next::Keep
}

// ---------------------------------------------------------------------------
// Self-checks of the fake (no agent involved)

fn raw_unix(socket: &Path, request: &str) -> HttpResponse {
    let mut s = UnixStream::connect(socket).expect("connect fake docker");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_response(&mut s, false).expect("read fake reply")
}

#[test]
fn fake_daemon_speaks_docker_17_shapes() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let c = fake.add("oe2e-selfcheck", "busybox:1.0");
    let v = raw_unix(
        &fake.socket,
        "GET /version HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(v.status, 200);
    assert!(v.header("content-length").is_some());
    assert!(!v.body_text().contains("MinAPIVersion"));
    let too_new = raw_unix(
        &fake.socket,
        "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(too_new.status, 400);
    assert!(too_new
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let list = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert!(
        list.body_text().contains(r#""Labels":null"#),
        "{}",
        list.body_text()
    );
    let inspect = raw_unix(
        &fake.socket,
        &format!(
            "GET /v1.19/containers/{}/json HTTP/1.1\r\nHost: docker\r\n\r\n",
            &c.id[..12]
        ),
    );
    assert_eq!(inspect.status, 200);
    assert_eq!(inspect.header("transfer-encoding"), Some("chunked"));
    let body = inspect.body_text();
    assert!(body.contains(r#""IPAddress":"172.17.0.5""#) && !body.contains("Networks"));
    assert!(body.contains(&format!(r#""Pid":{}"#, c.pid)));
    let missing = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/nope/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_text(), "no such id: nope\n");

    // Events: nothing at all until the first event, then head + chunk.
    let mut ev = UnixStream::connect(&fake.socket).unwrap();
    ev.write_all(b"GET /v1.19/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .unwrap();
    ev.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        ev.read(&mut byte).is_err(),
        "Docker 1.7 sends no head before the first event"
    );
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(10), || fake
            .subscribers()
            == 1)
        .is_some()
    );
    let d = fake.start_container("oe2e-selfcheck2", "busybox:1.0");
    ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"start\"") {
        let n = ev.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(&format!(
        r#"{{"status":"create","id":"{}","from":"busybox:1.0","time":"#,
        d.id
    )));
    let recorded = fake.requests();
    assert!(recorded.iter().all(|r| r.host.as_deref() == Some("docker")));
}

#[test]
fn fake_daemon_speaks_docker_29_shapes() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let c = fake.add("oe2e-selfcheck", "nginx:1.27");
    let v = raw_unix(
        &fake.socket,
        "GET /version HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert!(v.body_text().contains(r#""MinAPIVersion":"1.40""#));
    assert_eq!(v.header("api-version"), Some("1.56"));
    let old = raw_unix(
        &fake.socket,
        "GET /v1.19/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
    );
    assert_eq!(old.status, 400);
    assert!(old
        .body_text()
        .starts_with(r#"{"message":"client version 1.19 is too old"#));
    let inspect = raw_unix(
        &fake.socket,
        &format!(
            "GET /v1.54/containers/{}/json HTTP/1.1\r\nHost: docker\r\n\r\n",
            c.id
        ),
    );
    let body = inspect.body_text();
    assert!(body.contains(r#""Networks":{"bridge""#));
    assert!(!body.contains(r#""NetworkSettings":{"IPAddress""#));
    let mut ev = UnixStream::connect(&fake.socket).unwrap();
    ev.write_all(b"GET /v1.54/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .unwrap();
    let head = read_head_only(&mut ev);
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("Transfer-Encoding: chunked"));
    assert!(
        wait_until(Duration::from_secs(2), Duration::from_millis(10), || fake
            .subscribers()
            == 1)
        .is_some()
    );
    fake.kill_container(&c);
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while !String::from_utf8_lossy(&got).contains("destroy") {
        let n = ev.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(r#"{"Type":"container","Action":"die","Actor":{"ID":""#));
    assert!(!text.contains("\"status\""));
}

fn read_head_only(s: &mut UnixStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(n, 1, "EOF inside head");
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

// ---------------------------------------------------------------------------
// The agent against the fake

const SHOW: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

fn agent_for(fake: &FakeDocker) -> Agent {
    Agent::serve(fake.socket_str(), &["--interval", "1"], &[])
}

fn wait_shown(agent: &Agent, name: &str, timeout: Duration) -> Duration {
    match agent.wait_metrics(timeout, POLL, |b| has_container(b, name)) {
        Some((t, _)) => t,
        None => panic!(
            "container {name} not in /metrics within {timeout:?}\n/metrics:\n{}\nagent stderr:\n{}",
            agent.try_metrics().unwrap_or_default(),
            agent.stderr()
        ),
    }
}

fn wait_gone(agent: &Agent, name: &str, timeout: Duration) -> Duration {
    match agent.wait_metrics(timeout, POLL, |b| !has_container(b, name)) {
        Some((t, _)) => t,
        None => panic!(
            "container {name} still in /metrics after {timeout:?}\nagent stderr:\n{}",
            agent.stderr()
        ),
    }
}

#[test]
fn docker_17_api_119_is_negotiated_and_followed() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let first = fake.add(&unique_name("old-a"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    let body = agent.metrics();
    let line = container_line(&body, "container_last_seen", &first.name).unwrap();
    assert_eq!(
        label(line, "image").as_deref(),
        Some("busybox:1.0"),
        "image label from Config.Image: {line}"
    );
    assert_eq!(
        gauge(&body, "outlyer_agent_docker_up"),
        Some(1.0),
        "docker_up with a 1.7 daemon"
    );

    // The events stream has no head until the first event: the agent must
    // not give up on it. A new container shows up through that stream.
    assert!(
        wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1).is_some(),
        "agent never subscribed to /events; requests: {:#?}",
        fake.requests()
    );
    thread::sleep(Duration::from_millis(2500));
    let second = fake.start_container(&unique_name("old-b"), "redis:3.0");
    let t = wait_shown(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "new container listed after {t:?} (> 1 s) via an old-style start event"
    );
    fake.kill_container(&first);
    let t = wait_gone(&agent, &first.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "dead container still listed {t:?} after its die event"
    );
    assert!(agent.is_running());
    assert_eq!(
        fake.events_requests(),
        1,
        "the agent re-opened /events: a silent old-daemon stream must not time out"
    );
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn docker_29_api_156_min_140_uses_v154() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("new-a"), "nginx:1.27");
    let agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    assert!(
        wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1).is_some(),
        "agent never subscribed to /events"
    );
    let second = fake.start_container(&unique_name("new-b"), "redis:7");
    let t = wait_shown(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "new container listed after {t:?} via a Type/Action/Actor event"
    );
    let line = container_line(&agent.metrics(), "container_last_seen", &second.name)
        .unwrap()
        .to_string();
    assert_eq!(label(&line, "image").as_deref(), Some("redis:7"), "{line}");
    fake.kill_container(&second);
    let t = wait_gone(&agent, &second.name, Duration::from_secs(3));
    assert!(
        t <= Duration::from_secs(1),
        "dead container listed {t:?} after a Type/Action/Actor die event"
    );
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn container_vanished_between_list_and_inspect_is_skipped() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    let kept = fake.add(&unique_name("kept"), "busybox:1.0");
    let gone = fake.add(&unique_name("vanished"), "busybox:1.0");
    fake.with(|s| s.vanished.insert(gone.id.clone()));
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &kept.name, SHOW);
    let inspected = wait_until(Duration::from_secs(5), POLL, || {
        fake.requests()
            .iter()
            .any(|r| r.line.contains(&gone.id[..12]))
    });
    assert!(
        inspected.is_some(),
        "agent never inspected the listed container {}",
        gone.id
    );
    thread::sleep(Duration::from_millis(500));
    let body = agent.metrics();
    assert!(
        !has_container(&body, &gone.name),
        "a container whose inspect answered 404 is listed:\n{body}"
    );
    assert!(agent.is_running(), "agent exited after a 404 on inspect");
    // And it keeps following events.
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let later = fake.start_container(&unique_name("later"), "busybox:1.0");
    wait_shown(&agent, &later.name, Duration::from_secs(3));
}

#[test]
fn plain_text_500_on_list_is_retried() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.fail_lists = 1);
    let c = fake.add(&unique_name("retry"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    // Reconnect backoff is capped at 30 s.
    wait_shown(&agent, &c.name, Duration::from_secs(35));
    let lists = fake
        .requests()
        .iter()
        .filter(|r| path_of(&r.line).ends_with("/containers/json"))
        .count();
    assert!(
        lists >= 2,
        "expected a second list after the 500, saw {lists}"
    );
    assert!(agent.is_running());
}

#[test]
fn persistent_errors_after_connecting_back_off() {
    // The daemon accepts connections and answers /version, but every list
    // fails: a backoff that restarts at each successful connect would retry
    // this at full speed forever.
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.fail_lists = u32::MAX);
    let c = fake.add(&unique_name("failing"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    let lists = || {
        fake.requests()
            .iter()
            .filter(|r| path_of(&r.line).ends_with("/containers/json"))
            .count()
    };
    thread::sleep(Duration::from_secs(8));
    let n = lists();
    assert!(
        n >= 2,
        "the failed list was not retried within 8 s ({n} lists)"
    );
    assert!(
        n <= 12,
        "{n} failed lists in 8 s: retries after an error reply do not back off\nstderr:\n{}",
        agent.stderr()
    );
    assert!(agent.is_running());
    // It recovers once the daemon does.
    fake.with(|s| s.fail_lists = 0);
    wait_shown(&agent, &c.name, Duration::from_secs(35));
}

#[test]
fn connections_closed_after_each_reply_are_retried() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.close_after_reply = true);
    let names: Vec<String> = (0..3)
        .map(|i| {
            fake.add(&unique_name(&format!("close{i}")), "busybox:1.0")
                .name
        })
        .collect();
    let mut agent = agent_for(&fake);
    for name in &names {
        wait_shown(&agent, name, SHOW);
    }
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let later = fake.start_container(&unique_name("close-ev"), "busybox:1.0");
    wait_shown(&agent, &later.name, Duration::from_secs(3));
    assert!(agent.is_running());
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn malformed_event_line_does_not_lose_later_events() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("badev-a"), "nginx:1.27");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    fake.emit_raw("{\"Type\":\"container\",\"Action\":\n");
    fake.emit_raw("\u{1e}not json at all]\n");
    let second = fake.start_container(&unique_name("badev-b"), "nginx:1.27");
    // Either the stream goes on or the agent reconnects and re-lists.
    wait_shown(&agent, &second.name, Duration::from_secs(10));
    assert!(agent.is_running());
    assert!(has_container(&agent.metrics(), &first.name));
}

/// A daemon that sends garbage event lines without end: the agent keeps
/// following the stream, but its log holds a bounded number of lines per
/// window, then one count of what it left out.
#[test]
fn a_flood_of_garbage_events_is_counted_not_logged() {
    let mut fake = FakeDocker::start(Flavor::Docker29);
    let first = fake.add(&unique_name("flood-a"), "nginx:1.27");
    let mut agent = agent_for(&fake);
    wait_shown(&agent, &first.name, SHOW);
    wait_until(Duration::from_secs(5), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let before = agent.stderr().lines().count();
    let sent = 20_000;
    let batch = "{\"Type\":\"container\",\"Action\":[}\n".repeat(100);
    for _ in 0..sent / 100 {
        fake.emit_raw(&batch);
    }
    // The stream still carries real events after the garbage.
    let second = fake.start_container(&unique_name("flood-b"), "nginx:1.27");
    wait_shown(&agent, &second.name, Duration::from_secs(10));
    let during = agent.stderr().lines().count() - before;
    println!("garbage event lines sent: {sent}; log lines written: {during}");
    assert!(
        during <= 250,
        "{during} log lines for {sent} garbage events"
    );
    // Past the window, the next line of that site brings the count.
    std::thread::sleep(Duration::from_millis(10_500));
    fake.emit_raw("{\"Type\":\"container\",\"Action\":[}\n");
    let counted = wait_until(Duration::from_secs(5), POLL, || {
        agent.stderr().contains("times in the last 10 s, not shown")
    });
    assert!(
        counted.is_some(),
        "no count of the hidden lines:\n{}",
        agent.stderr()
    );
    assert!(agent.is_running());
    assert!(has_container(&agent.metrics(), &first.name));
}

#[test]
fn replies_dripped_one_byte_at_a_time_are_parsed() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.drip = true);
    let c = fake.add(&unique_name("drip"), "busybox:1.0");
    let agent = agent_for(&fake);
    wait_shown(&agent, &c.name, Duration::from_secs(20));
    wait_until(Duration::from_secs(10), POLL, || fake.subscribers() >= 1)
        .expect("agent subscribed to events");
    let d = fake.start_container(&unique_name("drip-ev"), "busybox:1.0");
    // The event and then a ~2 KiB inspect reply arrive a byte at a time.
    wait_shown(&agent, &d.name, Duration::from_secs(20));
    fake.assert_requests_well_formed(&agent);
}

#[test]
fn garbage_replies_are_logged_and_survived() {
    let mut fake = FakeDocker::start(Flavor::Docker17);
    fake.with(|s| s.garbage = true);
    let c = fake.add(&unique_name("garbage"), "busybox:1.0");
    let mut agent = agent_for(&fake);
    let seen = wait_until(Duration::from_secs(15), POLL, || {
        fake.with(|s| s.garbage_sent) >= 2
    });
    assert!(
        seen.is_some(),
        "agent did not come back after a garbage reply (garbage replies sent: {}, connections: {})",
        fake.with(|s| s.garbage_sent),
        fake.with(|s| s.connections)
    );
    assert!(agent.is_running(), "agent exited on garbage");
    let (status, _) = http_get(&agent.addr, "/healthz");
    assert_eq!(status, 200, "/healthz while Docker answers garbage");
    let body = agent.metrics();
    assert_eq!(
        gauge(&body, "outlyer_agent_docker_up"),
        Some(0.0),
        "docker_up while Docker answers garbage:\n{body}"
    );
    assert!(!has_container(&body, &c.name));
    assert!(
        !agent.stderr().trim().is_empty(),
        "agent logged nothing about garbage replies"
    );
    // Reconnects back off: a daemon that keeps answering garbage is not
    // hammered (a doubling backoff from 100 ms makes about 7 attempts in 6 s).
    let start = Instant::now();
    let before = fake.with(|s| s.connections);
    thread::sleep(Duration::from_secs(6));
    let attempts = fake.with(|s| s.connections) - before;
    assert!(
        attempts <= 20,
        "{attempts} connections in {:?} to a daemon answering garbage: reconnects do not back off",
        start.elapsed()
    );
    assert!(agent.is_running(), "agent exited on garbage");

    fake.with(|s| s.garbage = false);
    wait_shown(&agent, &c.name, Duration::from_secs(35));
    let up = agent.wait_metrics(Duration::from_secs(5), POLL, |b| {
        gauge(b, "outlyer_agent_docker_up") == Some(1.0)
    });
    assert!(up.is_some(), "docker_up did not return to 1 after recovery");
}

/// For manual checks with curl or a development agent:
/// `FAKE_DOCKER_SOCKET=/tmp/fake.sock FAKE_DOCKER_FLAVOR=17|29 [FAKE_DOCKER_DRIP=1]
/// cargo test --test fake_docker serve_fake_for_manual_checks -- --ignored --nocapture`.
/// Serves one container, then starts another every 5 s and removes it 5 s
/// later, for `FAKE_DOCKER_SECS` (default 60).
#[test]
#[ignore]
fn serve_fake_for_manual_checks() {
    let flavor = match std::env::var("FAKE_DOCKER_FLAVOR").as_deref() {
        Ok("29") => Flavor::Docker29,
        _ => Flavor::Docker17,
    };
    let secs: u64 = std::env::var("FAKE_DOCKER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut fake = FakeDocker::start(flavor);
    fake.with(|s| s.drip = std::env::var_os("FAKE_DOCKER_DRIP").is_some());
    let link =
        std::env::var("FAKE_DOCKER_SOCKET").unwrap_or_else(|_| "/tmp/oe2e-fake.sock".to_string());
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&fake.socket, &link).expect("symlink socket");
    let first = fake.add("fake-first", "busybox:1.0");
    println!(
        "fake {flavor:?} daemon on {link}; container {} pid {}",
        first.id, first.pid
    );
    let start = Instant::now();
    let mut previous: Option<FakeContainer> = None;
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_secs(5));
        match previous.take() {
            Some(c) => fake.kill_container(&c),
            None => {
                n += 1;
                previous = Some(fake.start_container(&format!("fake-{n}"), "busybox:1.0"));
            }
        }
    }
    let _ = fs::remove_file(&link);
    for r in fake.requests() {
        println!("{:?} host={:?}", r.line, r.host);
    }
}
