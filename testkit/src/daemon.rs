//! A minimal fake Docker daemon (20.10, API 1.41) on a unix socket.

use outlyer_agent::registry::ContainerInfo;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A minimal Docker 20.10 daemon (API 1.41) on a unix socket in a temp dir,
/// serving a fixed set of running containers with the reply shapes of a real
/// 20.10.24 (compat.md §1): `GET /_ping`, `/version`, `/info`,
/// `/containers/json`, `/containers/<id>/json` (versioned or not) and
/// `/events` (the head, then an open stream with no events). Keep-alive;
/// bodies over 2 KiB are chunked like Go's `net/http`. Anything else gets a
/// 404. One thread accepts, one serves each connection; all stop on drop.
pub struct FakeDaemon {
    dir: PathBuf,
    socket: PathBuf,
    shared: std::sync::Arc<DaemonShared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

struct DaemonShared {
    containers: Vec<ContainerInfo>,
    stop: std::sync::atomic::AtomicBool,
    requests: AtomicUsize,
    lists: AtomicUsize,
    workers: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// How long a connection thread blocks in `read` before looking at the stop flag.
const FAKE_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// A request head larger than this is refused (400) and the connection closed.
const FAKE_MAX_HEAD: usize = 64 * 1024;

impl FakeDaemon {
    /// Listens at `<temp dir>/outlyer-fakedocker-<pid>-<n>/docker.sock`.
    pub fn start(containers: Vec<ContainerInfo>) -> io::Result<FakeDaemon> {
        let n = crate::next_seq();
        let dir =
            std::env::temp_dir().join(format!("outlyer-fakedocker-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket)?;
        let shared = std::sync::Arc::new(DaemonShared {
            containers,
            stop: std::sync::atomic::AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            workers: std::sync::Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("fake-docker".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s2 = s.clone();
                    let worker = std::thread::Builder::new()
                        .name("fake-docker-conn".into())
                        .spawn(move || serve_fake_connection(conn, &s2));
                    if let (Ok(w), Ok(mut ws)) = (worker, s.workers.lock()) {
                        ws.push(w);
                    }
                }
            })?;
        Ok(FakeDaemon {
            dir,
            socket,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The socket to pass as `--docker-socket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Requests answered so far (all connections, all paths).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// `GET /containers/json` requests answered so far.
    pub fn lists(&self) -> usize {
        self.shared.lists.load(Ordering::Relaxed)
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor out of `accept`; if that fails it is left detached.
        if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            if let Some(a) = self.acceptor.take() {
                let _ = a.join();
            }
        }
        let workers = match self.shared.workers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => Vec::new(),
        };
        for w in workers {
            let _ = w.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `conn` into `buf`; `Ok(false)` on EOF or stop.
fn fake_read(
    conn: &mut std::os::unix::net::UnixStream,
    buf: &mut Vec<u8>,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<bool> {
    use std::io::Read as _;
    let mut chunk = [0u8; 4096];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn serve_fake_connection(mut conn: std::os::unix::net::UnixStream, shared: &DaemonShared) {
    use std::io::Write as _;
    let _ = conn.set_read_timeout(Some(FAKE_POLL));
    let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(10)));
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > FAKE_MAX_HEAD {
                let _ = conn.write_all(&fake_reply(
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    b"400 Bad Request",
                    true,
                ));
                return;
            }
            match fake_read(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => continue,
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let (method, target, proto) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let mut body_len = 0usize;
        let mut close = proto != "HTTP/1.1";
        for h in lines {
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                body_len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        // A request body (never sent by the agent) is read and dropped.
        while buf.len() < body_len {
            match fake_read(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => {}
                _ => return,
            }
        }
        buf.drain(..body_len);
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let path = target.split('?').next().unwrap_or("");
        // `/v1.41/x` and `/x` are the same route (compat.md §1.2).
        let route = match path.strip_prefix("/v").and_then(|p| p.split_once('/')) {
            Some((ver, rest))
                if !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                format!("/{rest}")
            }
            _ => path.to_string(),
        };
        if method == "GET" && route == "/events" {
            let mut head = fake_head("200 OK", "application/json");
            head.push_str(if close {
                "Connection: close\r\n\r\n"
            } else {
                "Transfer-Encoding: chunked\r\n\r\n"
            });
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            // No events: hold the stream until the client leaves or we stop.
            let mut sink = Vec::new();
            while let Ok(true) = fake_read(&mut conn, &mut sink, &shared.stop) {
                sink.clear();
            }
            return;
        }
        let (status, ctype, body) = fake_route(method, &route, &shared.containers);
        if method == "GET" && route == "/containers/json" {
            shared.lists.fetch_add(1, Ordering::Relaxed);
        }
        if conn
            .write_all(&fake_reply(status, ctype, &body, close))
            .is_err()
            || close
        {
            return;
        }
    }
}

fn fake_route(
    method: &str,
    route: &str,
    containers: &[ContainerInfo],
) -> (&'static str, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    let not_found = |what: String| {
        (
            "404 Not Found",
            JSON,
            format!("{{\"message\":{}}}\n", json_str(&what)).into_bytes(),
        )
    };
    if method != "GET" {
        return not_found("page not found".into());
    }
    match route {
        "/_ping" => ("200 OK", "text/plain; charset=utf-8", b"OK".to_vec()),
        "/version" => ("200 OK", JSON, FAKE_VERSION.as_bytes().to_vec()),
        "/info" => ("200 OK", JSON, fake_info(containers).into_bytes()),
        "/containers/json" => {
            let mut body = String::from("[");
            for (i, c) in containers.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                fake_list_entry(&mut body, c);
            }
            body.push_str("]\n");
            ("200 OK", JSON, body.into_bytes())
        }
        _ => {
            let Some(key) = route
                .strip_prefix("/containers/")
                .and_then(|r| r.strip_suffix("/json"))
                .filter(|k| !k.is_empty() && !k.contains('/'))
            else {
                return not_found("page not found".into());
            };
            if let Some(c) = containers.iter().find(|c| c.id == key || c.name == key) {
                return ("200 OK", JSON, fake_inspect(c).into_bytes());
            }
            let mut by_prefix = containers.iter().filter(|c| c.id.starts_with(key));
            match (by_prefix.next(), by_prefix.next()) {
                (Some(c), None) => ("200 OK", JSON, fake_inspect(c).into_bytes()),
                (Some(_), Some(_)) => (
                    "400 Bad Request",
                    JSON,
                    format!("{{\"message\":\"multiple IDs found with provided prefix: {key}\"}}\n")
                        .into_bytes(),
                ),
                (None, _) => not_found(format!("No such container: {key}")),
            }
        }
    }
}

/// Headers every 20.10 reply carries, without the framing and the blank line.
fn fake_head(status: &str, content_type: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = outlyer_agent::time::civil_from_days(days);
    let rem = secs % 86_400;
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: {content_type}\r\n\
         Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24 (linux)\r\n\
         Date: {}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT\r\n",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1) % 12],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A whole reply framed like Go's `net/http`: `Content-Length` up to 2048
/// bytes, one chunk plus the last-chunk above (or close-delimited when the
/// client asked for `close`, as for HTTP/1.0).
fn fake_reply(status: &str, content_type: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut head = fake_head(status, content_type);
    if close {
        head.push_str("Connection: close\r\n");
    }
    let chunked = body.len() > 2048 && !close;
    if chunked {
        head.push_str(&format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        ));
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    if chunked {
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    out
}

/// Unix seconds → Go's RFC3339Nano (`2023-11-14T22:13:20.5Z`); 0 → Docker's never-set time.
fn rfc3339_nano(t: f64) -> String {
    if t <= 0.0 || !t.is_finite() {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = t.floor() as u64;
    let nanos = ((t - t.floor()) * 1e9).round().min(999_999_999.0) as u32;
    let (y, m, d) = outlyer_agent::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    outlyer_agent::upload::wire::push_json_str(&mut out, s);
    out
}

fn json_labels(labels: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(k), json_str(v));
    }
    out.push('}');
    out
}

/// A stable 64-hex string derived from a container id (image and network ids).
fn fake_hex(id: &str, salt: u8) -> String {
    id.bytes()
        .rev()
        .map(|b| {
            let v = (b as char).to_digit(16).unwrap_or(0) as u8 ^ (salt & 15);
            char::from_digit(u32::from(v), 16).unwrap_or('0')
        })
        .chain(std::iter::repeat('0'))
        .take(64)
        .collect()
}

fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `NetworkSettings.Networks` of 20.10: one endpoint per address; the
/// network is named after `NetworkMode` (`default` is `bridge`); `host`,
/// `none` and named networks without an address get one endpoint with an
/// empty `IPAddress`; `container:<id>` has none.
fn fake_networks(c: &ContainerInfo, out: &mut String) {
    out.push('{');
    if !c.network_mode.starts_with("container:") {
        let net = if c.network_mode == "default" || c.network_mode.is_empty() {
            "bridge"
        } else {
            c.network_mode.as_str()
        };
        let empty = [String::new()];
        let ips: &[String] = if c.ips.is_empty() { &empty } else { &c.ips };
        for (k, ip) in ips.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let name = if k == 0 {
                net.to_string()
            } else {
                format!("{net}-{k}")
            };
            let has = !ip.is_empty();
            let _ = write!(
                out,
                concat!(
                    r#"{}:{{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"{}","EndpointID":"{}","#,
                    r#""Gateway":"{}","IPAddress":{},"IPPrefixLen":{},"IPv6Gateway":"","GlobalIPv6Address":"","#,
                    r#""GlobalIPv6PrefixLen":0,"MacAddress":"{}","DriverOpts":null}}"#
                ),
                json_str(&name),
                fake_hex(&format!("{:016x}", fnv64(&name)), 3),
                fake_hex(&c.id, k as u8 + 5),
                if has { "172.17.0.1" } else { "" },
                json_str(ip),
                if has { 16 } else { 0 },
                if has { "02:42:ac:11:00:02" } else { "" },
            );
        }
    }
    out.push('}');
}

fn fake_list_entry(out: &mut String, c: &ContainerInfo) {
    let _ = write!(
        out,
        concat!(
            r#"{{"Id":"{id}","Names":[{name}],"Image":{image},"ImageID":"sha256:{img}","Command":"sleep 3600","#,
            r#""Created":{created},"Ports":[],"Labels":{labels},"State":"{state}","Status":"Up 5 minutes{paused}","#,
            r#""HostConfig":{{"NetworkMode":{mode}}},"NetworkSettings":{{"Networks":"#
        ),
        id = c.id,
        name = json_str(&format!("/{}", c.name)),
        image = json_str(&c.image),
        img = fake_hex(&c.id, 1),
        created = c.started_at.max(1.0) as u64 - 1,
        labels = json_labels(&c.labels),
        state = if c.paused { "paused" } else { "running" },
        paused = if c.paused { " (Paused)" } else { "" },
        mode = json_str(&c.network_mode),
    );
    fake_networks(c, out);
    out.push_str(r#"},"Mounts":[]}"#);
}

fn fake_inspect(c: &ContainerInfo) -> String {
    let mut env = vec![json_str(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )];
    for (var, value) in ["ENV", "APP_NAME"].iter().zip(&c.env_tags) {
        env.push(json_str(&format!("{var}={value}")));
    }
    let started = rfc3339_nano(c.started_at);
    let created = rfc3339_nano((c.started_at - 0.5).max(0.0));
    let overlay = fake_hex(&c.id, 7);
    let mut out = String::with_capacity(5000);
    let _ = write!(
        out,
        concat!(
            r#"{{"Id":"{id}","Created":"{created}","Path":"sleep","Args":["3600"],"#,
            r#""State":{{"Status":"{status}","Running":true,"Paused":{paused},"Restarting":false,"OOMKilled":false,"#,
            r#""Dead":false,"Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"{started}","FinishedAt":"0001-01-01T00:00:00Z"}},"#,
            r#""Image":"sha256:{img}","ResolvConfPath":"/var/lib/docker/containers/{id}/resolv.conf","#,
            r#""HostnamePath":"/var/lib/docker/containers/{id}/hostname","#,
            r#""HostsPath":"/var/lib/docker/containers/{id}/hosts","#,
            r#""LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":{name},"RestartCount":0,"#,
            r#""Driver":"overlay2","Platform":"linux","MountLabel":"","ProcessLabel":"","AppArmorProfile":"","#,
            r#""ExecIDs":null,"HostConfig":{{"Binds":null,"ContainerIDFile":"","LogConfig":{{"Type":"json-file","Config":{{}}}},"#,
            r#""NetworkMode":{mode},"PortBindings":{{}},"RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"#,
            r#""AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"#,
            r#""CgroupnsMode":"host","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"#,
            r#""IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"#,
            r#""PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","#,
            r#""ShmSize":67108864,"Runtime":"runc","ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"#,
            r#""NanoCpus":0,"CgroupParent":{parent},"BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"#,
            r#""BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"#,
            r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"#,
            r#""DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"#,
            r#""MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"#,
            r#""Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"#,
            r#""MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","#,
            r#""/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"],"#,
            r#""ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}},"#,
            r#""GraphDriver":{{"Data":{{"LowerDir":"/var/lib/docker/overlay2/{ov}-init/diff","#,
            r#""MergedDir":"/var/lib/docker/overlay2/{ov}/merged","UpperDir":"/var/lib/docker/overlay2/{ov}/diff","#,
            r#""WorkDir":"/var/lib/docker/overlay2/{ov}/work"}},"Name":"overlay2"}},"Mounts":[],"#,
            r#""Config":{{"Hostname":"{short}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"#,
            r#""AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":[{env}],"#,
            r#""Cmd":["sleep","3600"],"Image":{image},"Volumes":null,"WorkingDir":"","Entrypoint":null,"#,
            r#""OnBuild":null,"Labels":{labels}}},"#,
            r#""NetworkSettings":{{"Bridge":"","SandboxID":"{sandbox}","HairpinMode":false,"LinkLocalIPv6Address":"","#,
            r#""LinkLocalIPv6PrefixLen":0,"Ports":{{}},"SandboxKey":"/var/run/docker/netns/{sandbox_short}","#,
            r#""SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null,"EndpointID":"","Gateway":"","#,
            r#""GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","#,
            r#""MacAddress":"","Networks":"#
        ),
        id = c.id,
        created = created,
        status = if c.paused { "paused" } else { "running" },
        paused = c.paused,
        pid = c.pid,
        started = started,
        img = fake_hex(&c.id, 1),
        name = json_str(&format!("/{}", c.name)),
        mode = json_str(&c.network_mode),
        parent = json_str(&c.cgroup_parent),
        ov = overlay,
        short = c.short_id(),
        env = env.join(","),
        image = json_str(&c.image),
        labels = json_labels(&c.labels),
        sandbox = fake_hex(&c.id, 9),
        sandbox_short = &fake_hex(&c.id, 9)[..12],
    );
    fake_networks(c, &mut out);
    out.push_str("}}\n");
    out
}

fn fake_info(containers: &[ContainerInfo]) -> String {
    let paused = containers.iter().filter(|c| c.paused).count();
    format!(
        concat!(
            r#"{{"ID":"SYNT:HETI:CHOS:TFAK:EDAE:MONX:2010:API1:41XX:XXXX:XXXX:XXXX","Containers":{n},"#,
            r#""ContainersRunning":{running},"ContainersPaused":{paused},"ContainersStopped":0,"Images":1,"#,
            r#""Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"],"#,
            r#"["Native Overlay Diff","true"],["userxattr","false"]],"Plugins":{{"Volume":["local"],"#,
            r#""Network":["bridge","host","ipvlan","macvlan","null","overlay"],"Authorization":null,"#,
            r#""Log":["awslogs","fluentd","gcplogs","gelf","journald","json-file","local","logentries","splunk","syslog"]}},"#,
            r#""MemoryLimit":true,"SwapLimit":true,"KernelMemory":true,"KernelMemoryTCP":true,"CpuCfsPeriod":true,"#,
            r#""CpuCfsQuota":true,"CPUShares":true,"CPUSet":true,"PidsLimit":true,"IPv4Forwarding":true,"#,
            r#""BridgeNfIptables":true,"BridgeNfIp6tables":true,"Debug":false,"NFd":42,"OomKillDisable":true,"#,
            r#""NGoroutines":51,"SystemTime":"2026-11-24T22:51:19.123456789Z","LoggingDriver":"json-file","#,
            r#""CgroupDriver":"cgroupfs","CgroupVersion":"1","NEventsListener":1,"KernelVersion":"6.1.0","#,
            r#""OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSVersion":"12","OSType":"linux","#,
            r#""Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":null,"#,
            r#""NCPU":4,"MemTotal":16709636096,"GenericResources":null,"DockerRootDir":"/var/lib/docker","#,
            r#""HttpProxy":"","HttpsProxy":"","NoProxy":"","Name":"synthetic-host","Labels":[],"#,
            r#""ExperimentalBuild":false,"ServerVersion":"20.10.24","Runtimes":{{"runc":{{"path":"runc"}}}},"#,
            r#""DefaultRuntime":"runc","LiveRestoreEnabled":false,"Isolation":"","InitBinary":"docker-init","#,
            r#""SecurityOptions":["name=seccomp,profile=default"],"Warnings":null}}"#,
            "\n"
        ),
        n = containers.len(),
        running = containers.len() - paused,
        paused = paused,
    )
}

const FAKE_VERSION: &str = concat!(
    r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24","Details":{"ApiVersion":"1.41","#,
    r#""Arch":"amd64","BuildTime":"2023-04-04T17:59:27.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","#,
    r#""GoVersion":"go1.19.8","KernelVersion":"6.1.0","MinAPIVersion":"1.12","Os":"linux"}},"#,
    r#"{"Name":"containerd","Version":"1.6.20","Details":{"GitCommit":"2806fc1"}},"#,
    r#"{"Name":"runc","Version":"1.1.5","Details":{"GitCommit":"f19387a"}},"#,
    r#"{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":"de40ad0"}}],"#,
    r#""Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","#,
    r#""Os":"linux","Arch":"amd64","KernelVersion":"6.1.0","BuildTime":"2023-04-04T17:59:27.000000000+00:00"}"#,
    "\n"
);

#[cfg(test)]
mod fake_daemon_tests {
    use super::*;
    use crate::{SyntheticHost, TreeLayout, TreeOptions};
    use outlyer_agent::docker::api::{parse_container_list, parse_info, parse_inspect};
    use outlyer_agent::docker::version::parse_version_body;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn synthetic(n: usize) -> Vec<ContainerInfo> {
        let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, n)).unwrap();
        (0..n).map(|i| host.container_info(i)).collect()
    }

    fn odd_container() -> ContainerInfo {
        ContainerInfo {
            id: "ab".repeat(32),
            name: "odd \"one\"\\".into(),
            image: "registry.example:5000/team/app:1.2".into(),
            labels: vec![
                ("a".into(), "line\nbreak\ttab".into()),
                ("b".into(), String::new()),
            ],
            env_tags: vec!["prod".into(), "shop".into()],
            pid: 4242,
            network_mode: "shop_default".into(),
            ips: vec!["10.0.0.2".into(), "10.0.1.2".into()],
            started_at: 1_795_561_048.25,
            cgroup_parent: "/custom-parent".into(),
            fingerprint: String::new(),
            paused: true,
        }
    }

    /// Reads one reply (Content-Length or chunked) from a kept-alive connection.
    fn read_reply(s: &mut UnixStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut b = [0u8; 8192];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = s.read(&mut b).unwrap();
            assert!(n > 0, "EOF before a head");
            buf.extend_from_slice(&b[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        let mut rest = buf[end + 4..].to_vec();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                })
                .map(|(_, v)| v.trim().to_string())
        };
        let mut fill = |rest: &mut Vec<u8>, want: usize| {
            while rest.len() < want {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "EOF inside a body");
                rest.extend_from_slice(&b[..n]);
            }
        };
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().unwrap();
            fill(&mut rest, len);
            assert_eq!(rest.len(), len, "bytes after a Content-Length body");
            return (head, rest);
        }
        assert_eq!(
            header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{head}"
        );
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                let want = rest.len() + 1;
                fill(&mut rest, want);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            fill(&mut rest, line_end + 2 + size + 2);
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            assert_eq!(&rest[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            rest.drain(..line_end + 4 + size);
            if size == 0 {
                assert!(rest.is_empty(), "bytes after the last chunk");
                return (head, body);
            }
        }
    }

    fn get(s: &mut UnixStream, path: &str) -> (String, Vec<u8>) {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes())
            .unwrap();
        read_reply(s)
    }

    #[test]
    fn inspect_and_list_bodies_parse_back_to_the_container_info() {
        let mut all = synthetic(3);
        all.push(odd_container());
        let mut host_mode = synthetic(1).remove(0);
        host_mode.network_mode = "host".into();
        all.push(host_mode);
        let mut shared_net = odd_container();
        shared_net.id = "cd".repeat(32);
        shared_net.network_mode = format!("container:{}", "ab".repeat(32));
        shared_net.ips.clear();
        shared_net.env_tags = vec!["staging".into()];
        all.push(shared_net);
        for c in &all {
            let got = parse_inspect(fake_inspect(c).as_bytes()).unwrap();
            assert!(got.running);
            assert_eq!(got.hostname, c.short_id());
            let want = ContainerInfo {
                fingerprint: got.info.fingerprint.clone(),
                ..c.clone()
            };
            assert_eq!(got.info, want);
        }
        let (_, _, body) = fake_route("GET", "/containers/json", &all);
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), all.len());
        for (l, c) in listed.iter().zip(&all) {
            assert_eq!(l.id, c.id);
            assert_eq!(l.name(), Some(c.name.as_str()));
            assert_eq!(l.labels, c.labels);
            let state = if c.paused { "paused" } else { "running" };
            assert_eq!(l.state.as_deref(), Some(state));
        }
        let (_, _, body) = fake_route("GET", "/info", &all);
        let info = parse_info(&body).unwrap();
        assert_eq!(info.name.as_deref(), Some("synthetic-host"));
        assert!(info.id.is_some_and(|id| !id.is_empty()));
    }

    #[test]
    fn serves_a_kept_alive_connection_and_an_open_events_stream() {
        let containers = synthetic(40);
        let daemon = FakeDaemon::start(containers.clone()).unwrap();
        let mut s = UnixStream::connect(daemon.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        let (head, body) = get(&mut s, "/_ping");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, b"OK");
        let (head, body) = get(&mut s, "/version");
        assert!(head.contains("Api-Version: 1.41"), "{head}");
        assert!(head.contains("Content-Length:"), "{head}");
        let v = parse_version_body(&body).unwrap();
        assert_eq!(v.negotiated().to_string(), "1.41");
        // The whole list is over 2 KiB: chunked, like Go's net/http.
        let (head, body) = get(&mut s, "/v1.41/containers/json?all=0");
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), 40);
        assert_eq!(daemon.lists(), 1);
        // Inspect by full id, by short id, by name.
        let c = &containers[17];
        for key in [c.id.as_str(), c.name.as_str()] {
            let (head, body) = get(&mut s, &format!("/v1.41/containers/{key}/json"));
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            let got = parse_inspect(&body).unwrap();
            assert_eq!(got.info.id, c.id);
            assert_eq!(got.info.pid, c.pid);
        }
        // Synthetic ids share their first 12 digits: a short id is ambiguous.
        let (head, _) = get(&mut s, &format!("/v1.41/containers/{}/json", c.short_id()));
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        let (head, body) = get(&mut s, &format!("/containers/{}/json", &c.id[..20]));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(parse_inspect(&body).unwrap().info.id, c.id);
        let (head, body) = get(&mut s, "/v1.41/containers/nope/json");
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert_eq!(body, b"{\"message\":\"No such container: nope\"}\n");
        for odd in [
            "/v1.41/containers//json",
            "/v1.41/nothing",
            "/containers/a/b/json",
            "/",
            "*",
        ] {
            let (head, _) = get(&mut s, odd);
            assert!(
                head.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{odd}: {head}"
            );
        }
        s.write_all(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        assert!(read_reply(&mut s).0.starts_with("HTTP/1.1 404"));
        // Still the same connection: it answers after all of the above.
        assert_eq!(get(&mut s, "/_ping").1, b"OK");
        assert_eq!(daemon.requests(), 15);

        let mut ev = UnixStream::connect(daemon.socket()).unwrap();
        ev.write_all(b"GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n")
            .unwrap();
        ev.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = ev.read(&mut b).unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..n]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Transfer-Encoding: chunked")
        );
        assert!(
            head.ends_with("\r\n\r\n"),
            "nothing after the head: {head:?}"
        );
        ev.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let e = ev.read(&mut b).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );

        // A garbage head, then an oversized one: answered or closed, never a crash.
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        g.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        assert!(read_reply(&mut g).0.starts_with("HTTP/1.1 404"));
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = g.write_all(&vec![b'x'; FAKE_MAX_HEAD + 10]);
        let mut rest = Vec::new();
        let _ = g.read_to_end(&mut rest);
        assert!(
            rest.starts_with(b"HTTP/1.1 400"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );

        let socket = daemon.socket().to_path_buf();
        let t = std::time::Instant::now();
        drop(daemon);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "stopping took {:?}",
            t.elapsed()
        );
        assert!(!socket.exists());
        // The events stream ends when the daemon stops.
        ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(ev.read(&mut b).unwrap(), 0);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_nano(0.0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(1_795_561_048.25), "2026-11-24T22:57:28.25Z");
        assert_eq!(outlyer_agent::time::civil_from_days(0), (1970, 1, 1));
        assert_eq!(outlyer_agent::time::civil_from_days(19_782), (2024, 2, 29));
    }
}
