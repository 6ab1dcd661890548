//! The reply bodies and the framing of the fake daemon, per [`Flavor`].
//!
//! 20.10 bodies are built from every field of a [`ContainerInfo`] (labels,
//! env tags, networks, paused state, cgroup parent) so they parse back to
//! it; 1.7 and 29 bodies carry the id, name, image, pid and start time, in
//! the shapes of those releases (docs/compat.md §1).

use crate::daemon::Flavor;
use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::time::civil_from_days;
use std::fmt::Write as _;

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

// ---------------------------------------------------------------------------
// Per flavor

/// `GET /version`.
pub(crate) fn version(flavor: Flavor) -> String {
    match flavor {
        Flavor::Docker2010 => FAKE_VERSION.to_string(),
        _ => version_body(flavor),
    }
}

/// `GET /info`.
pub(crate) fn info(flavor: Flavor, containers: &[ContainerInfo]) -> String {
    match flavor {
        Flavor::Docker2010 => fake_info(containers),
        _ => info_body(flavor, containers.len()),
    }
}

/// `GET /containers/json`.
pub(crate) fn list(flavor: Flavor, containers: &[ContainerInfo]) -> String {
    match flavor {
        Flavor::Docker2010 => {
            let mut body = String::from("[");
            for (i, c) in containers.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                fake_list_entry(&mut body, c);
            }
            body.push_str("]\n");
            body
        }
        _ => {
            let entries: Vec<String> = containers.iter().map(|c| list_entry(flavor, c)).collect();
            format!("[{}]\n", entries.join(","))
        }
    }
}

/// `GET /containers/<id>/json`.
pub(crate) fn inspect(flavor: Flavor, c: &ContainerInfo) -> String {
    match flavor {
        Flavor::Docker2010 => fake_inspect(c),
        _ => inspect_body(flavor, c),
    }
}

/// One line of `/events` about container `c` (`create`, `start`, `die`, …).
pub(crate) fn event(flavor: Flavor, c: &ContainerInfo, action: &str) -> String {
    match flavor {
        Flavor::Docker2010 => event_2010(c, action),
        _ => event_line(flavor, c, action),
    }
}

/// The message of a 404 on inspect.
pub(crate) fn no_such_container(flavor: Flavor, key: &str) -> String {
    match flavor {
        Flavor::Docker17 => format!("no such id: {key}"),
        _ => format!("No such container: {key}"),
    }
}

/// The message of a 400 for a version prefix out of the flavor's range.
pub(crate) fn version_refused(flavor: Flavor, v: (u32, u32)) -> Option<String> {
    let (min, max) = flavor.api_range()?;
    Some(match flavor {
        _ if v >= min && v <= max => return None,
        Flavor::Docker17 if v > max => format!(
            "client is newer than server (client API version: {}.{}, server API version: 1.19)",
            v.0, v.1
        ),
        Flavor::Docker17 => "client is too old, minimum supported API version is 1.12, please upgrade your client to a newer version".to_string(),
        _ if v > max => format!(
            "client version {}.{} is too new. Maximum supported API version is {}.{}",
            v.0, v.1, max.0, max.1
        ),
        _ => format!(
            "client version {}.{} is too old. Minimum supported API version is {}.{}, please upgrade your client to a newer version",
            v.0, v.1, min.0, min.1
        ),
    })
}

/// The status line and the headers every reply carries, without the
/// framing and the blank line.
fn head(flavor: Flavor, status: &str, content_type: &str, close: bool) -> String {
    match flavor {
        Flavor::Docker2010 => {
            let mut head = fake_head(status, content_type);
            if close {
                head.push_str("Connection: close\r\n");
            }
            head
        }
        _ => {
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{}",
                common_headers(flavor)
            );
            if content_type.starts_with("text/plain") && flavor == Flavor::Docker29 {
                head.push_str("X-Content-Type-Options: nosniff\r\n");
            }
            head
        }
    }
}

/// A whole reply framed like Go's `net/http`: `Content-Length` when the body
/// fits its 2048-byte buffer, chunked otherwise (20.10: one chunk plus the
/// last-chunk; 1.7 and 29: chunks of 2048), or close-delimited when the
/// client asked for `close` (HTTP/1.0, `Connection: close`).
pub(crate) fn reply(
    flavor: Flavor,
    status: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut head = head(flavor, status, content_type, close);
    if body.len() <= 2048 || close {
        let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        return out;
    }
    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut out = head.into_bytes();
    let piece = match flavor {
        Flavor::Docker2010 => body.len(),
        _ => 2048,
    };
    for piece in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// An error reply: plain text plus newline from Docker 1.7 (and from any
/// daemon for requests below v1.24), `{"message":…}` from later ones.
pub(crate) fn error(flavor: Flavor, status: &str, message: &str, close: bool) -> Vec<u8> {
    match flavor {
        Flavor::Docker17 => reply(
            flavor,
            status,
            TEXT,
            format!("{message}\n").as_bytes(),
            close,
        ),
        _ => reply(
            flavor,
            status,
            JSON,
            format!("{{\"message\":{}}}\n", json_str(message)).as_bytes(),
            close,
        ),
    }
}

/// The 404 of a route the daemon does not have.
pub(crate) fn page_not_found(flavor: Flavor, close: bool) -> Vec<u8> {
    match flavor {
        Flavor::Docker17 => reply(
            flavor,
            "404 Not Found",
            TEXT,
            b"404 page not found\n",
            close,
        ),
        _ => error(flavor, "404 Not Found", "page not found", close),
    }
}

/// The head of the `/events` reply (chunked, or close-delimited).
pub(crate) fn events_head(flavor: Flavor, chunked: bool) -> Vec<u8> {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        "Connection: close\r\n"
    };
    match flavor {
        Flavor::Docker2010 => format!("{}{framing}\r\n", fake_head("200 OK", JSON)).into_bytes(),
        _ => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{}{framing}\r\n",
            common_headers(flavor)
        )
        .into_bytes(),
    }
}

/// The head of a full reply (for HEAD requests).
pub(crate) fn head_part(mut reply: Vec<u8>) -> Vec<u8> {
    if let Some(p) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
        reply.truncate(p + 4);
    }
    reply
}

/// What a daemon in `garbage` mode answers, in turn.
pub(crate) const GARBAGE: [&[u8]; 3] = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not HTTP\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"Id\": [1,2,}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\n{]\r\n",
];

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Docker 20.10.24, API 1.41

/// Headers every 20.10 reply carries, without the framing and the blank line.
fn fake_head(status: &str, content_type: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
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

/// A 20.10 event: the old `status`/`id`/`from` fields and the new
/// `Type`/`Action`/`Actor` ones, attributes sorted like Go's maps.
fn event_2010(c: &ContainerInfo, action: &str) -> String {
    let mut attrs: Vec<(String, String)> = c.labels.clone();
    if action == "die" {
        attrs.push(("exitCode".into(), "137".into()));
    }
    attrs.push(("image".into(), c.image.clone()));
    attrs.push(("name".into(), c.name.clone()));
    attrs.sort();
    let t = now_secs();
    format!(
        concat!(
            r#"{{"status":{action},"id":"{id}","from":{image},"Type":"container","Action":{action},"#,
            r#""Actor":{{"ID":"{id}","Attributes":{attrs}}},"scope":"local","time":{t},"timeNano":{t}000000123}}"#,
            "\n"
        ),
        action = json_str(action),
        id = c.id,
        image = json_str(&c.image),
        attrs = json_labels(&attrs),
        t = t,
    )
}

/// Unix seconds → Go's RFC3339Nano (`2023-11-14T22:13:20.5Z`); 0 → Docker's never-set time.
pub(crate) fn rfc3339_nano(t: f64) -> String {
    if t <= 0.0 || !t.is_finite() {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = t.floor() as u64;
    let nanos = ((t - t.floor()) * 1e9).round().min(999_999_999.0) as u32;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
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

pub(crate) fn fake_inspect(c: &ContainerInfo) -> String {
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

// ---------------------------------------------------------------------------
// Docker 1.7.1 (API 1.19) and Docker 29.3 (API 1.56)
//
// Their functions are called for those two flavors only: `_` is Docker 29.

const DATE: &str = "Date: Tue, 24 Nov 2026 23:00:00 GMT\r\n";

/// `Created` of a 1.7 or 29 container: its start time, whole seconds.
fn created_secs(c: &ContainerInfo) -> u64 {
    c.started_at.max(0.0) as u64
}

fn version_body(flavor: Flavor) -> String {
    match flavor {
        Flavor::Docker17 => concat!(
            r#"{"Version":"1.7.1","ApiVersion":"1.19","GitCommit":"786b29d","GoVersion":"go1.4.2","#,
            r#""Os":"linux","Arch":"amd64","KernelVersion":"4.1.10-17.31.amzn1.x86_64"}"#,
            "\n"
        )
        .to_string(),
        _ => concat!(
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
        _ => format!(
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

fn image_hex(c: &ContainerInfo) -> String {
    c.id.chars().rev().collect()
}

fn list_entry(flavor: Flavor, c: &ContainerInfo) -> String {
    match flavor {
        Flavor::Docker17 => format!(
            r#"{{"Id":"{}","Names":["/{}"],"Image":"{}","Command":"sleep 3600","Created":{},"Ports":[],"Labels":null,"Status":"Up 5 seconds"}}"#,
            c.id,
            c.name,
            c.image,
            created_secs(c)
        ),
        _ => format!(
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
            created = created_secs(c)
        ),
    }
}

fn inspect_body(flavor: Flavor, c: &ContainerInfo) -> String {
    let created = rfc3339(created_secs(c));
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
        _ => format!(
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

fn event_line(flavor: Flavor, c: &ContainerInfo, action: &str) -> String {
    let t = now_secs();
    match flavor {
        Flavor::Docker17 => {
            format!(
                r#"{{"status":"{action}","id":"{}","from":"{}","time":{t}}}"#,
                c.id, c.image
            ) + "\n"
        }
        _ => {
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
        _ => format!(
            "Api-Version: 1.56\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/29.3.0 (linux)\r\n{DATE}"
        ),
    }
}
