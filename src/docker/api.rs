//! Docker Engine API models (miniserde), tolerant of unknown fields, missing
//! fields and `null` where a map or array is expected.

use crate::http::response::excerpt;
use crate::registry::ContainerInfo;
use crate::time;
use core::fmt;
use miniserde::json::{Number, Value};
use miniserde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A Docker reply that could not be turned into the values the agent needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not UTF-8 JSON of the expected shape.
    Malformed { what: &'static str, excerpt: String },
    /// A required field is missing or has an unusable value.
    BadField {
        what: &'static str,
        field: &'static str,
        excerpt: String,
    },
    /// A streamed line exceeded the line cap; it was skipped.
    LineTooLong { len: usize },
}

impl ApiError {
    pub(crate) fn malformed(what: &'static str, body: &[u8]) -> ApiError {
        ApiError::Malformed {
            what,
            excerpt: excerpt(body),
        }
    }

    pub(crate) fn field(what: &'static str, field: &'static str, value: &[u8]) -> ApiError {
        ApiError::BadField {
            what,
            field,
            excerpt: excerpt(value),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Malformed { what, excerpt } => {
                write!(f, "malformed {what} reply (starts \"{excerpt}\")")
            }
            ApiError::BadField {
                what,
                field,
                excerpt,
            } => {
                write!(
                    f,
                    "{what} reply: missing or bad field {field} (\"{excerpt}\")"
                )
            }
            ApiError::LineTooLong { len } => {
                write!(
                    f,
                    "event line longer than the cap ({len} bytes so far), skipped"
                )
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// miniserde over a reply, mapping every failure to [`ApiError::Malformed`].
/// A name or label a daemon passes through from its user may hold bytes
/// that are not UTF-8, or a `\uD800` escape with no pair: both become
/// U+FFFD ([`json_text`]) so that one odd container never costs the whole
/// reply.
pub(crate) fn parse_json<T: miniserde::Deserialize>(
    what: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    miniserde::json::from_str(&json_text(body)).map_err(|_| ApiError::malformed(what, body))
}

/// The reply as JSON text miniserde accepts: invalid UTF-8 sequences become
/// U+FFFD, and so does every `\u` escape of a UTF-16 surrogate that is not
/// half of a pair. Borrows the body when there is nothing to replace (the
/// usual case): no allocation.
pub fn json_text(body: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(body);
    let Some(first) = first_lone_surrogate(text.as_bytes()) else {
        return text;
    };
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    let mut at = Some(first);
    while let Some(i) = at {
        out.push_str(&rest[..i]);
        out.push_str("\\uFFFD");
        rest = &rest[i + 6..];
        at = first_lone_surrogate(rest.as_bytes());
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn hex4(b: &[u8]) -> Option<u16> {
    let digits = core::str::from_utf8(b.get(..4)?).ok()?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// Offset of the first `\uXXXX` escape of a lone surrogate, skipping
/// surrogate pairs and escaped backslashes.
fn first_lone_surrogate(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        match hex4(&b[i + 2..]) {
            Some(0xD800..=0xDBFF) => {
                let low = (b.get(i + 6..i + 8) == Some(b"\\u"))
                    .then(|| hex4(&b[i + 8..]))
                    .flatten();
                if matches!(low, Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    return Some(i);
                }
            }
            Some(0xDC00..=0xDFFF) => return Some(i),
            _ => i += 2,
        }
    }
    None
}

/// Longest message [`error_message`] returns.
pub const MAX_ERROR_MESSAGE: usize = 512;
/// Longest container id accepted (Docker's are 64 hex digits).
pub const MAX_ID_LEN: usize = 128;

/// True for a plausible container id: 1–128 hex digits. Ids end up in
/// request paths and cgroup paths, so nothing else (no `/`, no `..`) passes.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------
// GET /containers/json

/// One entry of `GET /containers/json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedContainer {
    pub id: String,
    /// As sent: `/name` plus link aliases such as `/app/alias`.
    pub names: Vec<String>,
    pub image: String,
    /// `created|restarting|running|paused|exited|dead|removing` (API ≥ 1.23).
    pub state: Option<String>,
    /// Sorted by key; empty when `null` or absent.
    pub labels: Vec<(String, String)>,
}

impl ListedContainer {
    /// The canonical name without its `/`: the entry with exactly one `/`.
    pub fn name(&self) -> Option<&str> {
        self.names
            .iter()
            .find(|n| n.bytes().filter(|&b| b == b'/').count() == 1 && n.starts_with('/'))
            .map(|n| &n[1..])
    }
}

#[derive(Deserialize)]
struct RawListed {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Names")]
    names: Option<Vec<String>>,
    #[serde(rename = "Image")]
    image: Option<String>,
    #[serde(rename = "State")]
    state: Option<Value>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, Value>>,
}

/// Parses `GET /containers/json`. Entries without a valid `Id` are an error
/// (the daemon never sends them; a body that has them is not what we think).
pub fn parse_container_list(body: &[u8]) -> Result<Vec<ListedContainer>, ApiError> {
    let raw: Vec<RawListed> = parse_json("/containers/json", body)?;
    raw.into_iter()
        .map(|c| {
            let id = c.id.unwrap_or_default();
            if !is_valid_id(&id) {
                return Err(ApiError::field("/containers/json", "Id", id.as_bytes()));
            }
            Ok(ListedContainer {
                id,
                names: c.names.unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                // Before API 1.23 (and in Podman's shim) `State` may be absent
                // or an object; only the string form is meaningful here.
                state: match c.state {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                },
                labels: string_map(c.labels),
            })
        })
        .collect()
}

/// Label maps: string values kept (sorted by key); other JSON types, which
/// Docker never sends, are skipped rather than failing the whole reply.
fn string_map(map: Option<BTreeMap<String, Value>>) -> Vec<(String, String)> {
    map.unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// GET /containers/{id}/json

/// What the agent takes from one inspect reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inspected {
    pub info: ContainerInfo,
    /// `State.Running`.
    pub running: bool,
    /// `Config.Hostname` (the 12-char id unless `--hostname` was given).
    pub hostname: String,
}

#[derive(Deserialize)]
struct RawInspect {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "State")]
    state: Option<RawState>,
    #[serde(rename = "Config")]
    config: Option<RawConfig>,
    #[serde(rename = "HostConfig")]
    host_config: Option<RawHostConfig>,
    #[serde(rename = "NetworkSettings")]
    network_settings: Option<RawNetworkSettings>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(rename = "Running")]
    running: Option<Value>,
    #[serde(rename = "Paused")]
    paused: Option<Value>,
    #[serde(rename = "Pid")]
    pid: Option<Value>,
    #[serde(rename = "StartedAt")]
    started_at: Option<Value>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(rename = "Hostname")]
    hostname: Option<Value>,
    #[serde(rename = "Env")]
    env: Option<Vec<Value>>,
    #[serde(rename = "Image")]
    image: Option<Value>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RawHostConfig {
    #[serde(rename = "NetworkMode")]
    network_mode: Option<Value>,
    #[serde(rename = "CgroupParent")]
    cgroup_parent: Option<Value>,
}

#[derive(Deserialize)]
struct RawNetworkSettings {
    #[serde(rename = "IPAddress")]
    ip_address: Option<Value>,
    #[serde(rename = "Networks")]
    networks: Option<BTreeMap<String, Option<RawEndpoint>>>,
}

#[derive(Deserialize)]
struct RawEndpoint {
    #[serde(rename = "IPAddress")]
    ip_address: Option<Value>,
}

/// Env vars whose values become tags; every other value may be a secret and
/// is never copied out of the reply.
const TAG_ENV_VARS: [&str; 2] = ["ENV", "APP_NAME"];

/// Parses `GET /containers/{id}/json` into the registry's [`ContainerInfo`].
/// Only `Id` is required; every other field falls back to its empty value,
/// so a reply from any daemon since Docker 1.7 is usable.
pub fn parse_inspect(body: &[u8]) -> Result<Inspected, ApiError> {
    let raw: RawInspect = parse_json("/containers/{id}/json", body)?;
    let id = raw.id.unwrap_or_default();
    if !is_valid_id(&id) {
        return Err(ApiError::field(
            "/containers/{id}/json",
            "Id",
            id.as_bytes(),
        ));
    }
    let name = raw.name.unwrap_or_default();
    let name = name.strip_prefix('/').unwrap_or(&name).to_string();

    let (running, paused, pid, started_at) = match raw.state {
        Some(s) => (
            as_bool(s.running.as_ref()).unwrap_or(false),
            as_bool(s.paused.as_ref()).unwrap_or(false),
            as_u64(s.pid.as_ref())
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
            as_str(s.started_at.as_ref())
                .and_then(parse_rfc3339)
                .unwrap_or(0.0),
        ),
        None => (false, false, 0, 0.0),
    };

    let (hostname, image, labels, env_tags) = match raw.config {
        Some(c) => (
            as_string(c.hostname),
            as_string(c.image),
            string_map(c.labels),
            env_tags(c.env.as_deref().unwrap_or_default()),
        ),
        None => Default::default(),
    };

    let (network_mode, cgroup_parent) = match raw.host_config {
        Some(h) => (as_string(h.network_mode), as_string(h.cgroup_parent)),
        None => Default::default(),
    };

    let mut ips: Vec<String> = Vec::new();
    if let Some(ns) = raw.network_settings {
        for endpoint in ns.networks.unwrap_or_default().into_values().flatten() {
            push_ip(&mut ips, endpoint.ip_address);
        }
        // Old daemons (API < 1.21) only have the top-level address; it is
        // gone from API 1.52.
        if ips.is_empty() {
            push_ip(&mut ips, ns.ip_address);
        }
    }

    let fingerprint = crate::uuid::container_fingerprint(&id);
    Ok(Inspected {
        info: ContainerInfo {
            id,
            name,
            image,
            labels,
            env_tags,
            pid,
            network_mode,
            ips,
            started_at,
            cgroup_parent,
            fingerprint,
            paused,
            ..ContainerInfo::default()
        },
        running,
        hostname,
    })
}

fn push_ip(ips: &mut Vec<String>, value: Option<Value>) {
    if let Some(Value::String(ip)) = value {
        let ip = ip.trim();
        if !ip.is_empty() && !ips.iter().any(|known| known == ip) {
            ips.push(ip.to_string());
        }
    }
}

/// Values of `ENV` then `APP_NAME` (last occurrence wins, empty skipped).
fn env_tags(env: &[Value]) -> Vec<String> {
    TAG_ENV_VARS
        .iter()
        .filter_map(|wanted| {
            env.iter()
                .rev()
                .filter_map(|v| match v {
                    Value::String(s) => s.split_once('='),
                    _ => None,
                })
                .find(|(k, _)| k == wanted)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
        .collect()
}

fn as_str(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn as_string(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Booleans, and integers as C-style truth (old daemons sent ints).
fn as_bool(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Number(Number::U64(n))) => Some(*n != 0),
        Some(Value::Number(Number::I64(n))) => Some(*n != 0),
        _ => None,
    }
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Number(Number::U64(n))) => Some(*n),
        _ => None,
    }
}

/// RFC 3339 (Go's RFC3339Nano) → Unix seconds. `None` for anything
/// unparsable and for times before 1970 (Docker's never-set time is
/// `0001-01-01T00:00:00Z`), which callers treat as unknown.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |range: core::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && (sep(10, b'T') || sep(10, b't'))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            // Digits past nanoseconds cannot change an f64 of this size.
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hh = num(i + 1..i + 3)?;
            let mm = num(i + 4..i + 6)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = i64::from(hh * 3600 + mm * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    // Validates the date (no 2023-02-29) and the time of day.
    let secs = time::unix_seconds(i64::from(year), month, day, hour, minute, second)?
        .checked_sub(offset_secs)?;
    if secs < 0 {
        return None;
    }
    Some(secs as f64 + f64::from(nanos) / 1e9)
}

// ---------------------------------------------------------------------------
// GET /info

/// The parts of `GET /info` the agent uses; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonInfo {
    /// `ID`: daemon key fingerprint (format not stable across versions).
    pub id: Option<String>,
    /// `Name`: the host's name as the daemon sees it (a tag).
    pub name: Option<String>,
    pub server_version: Option<String>,
    pub kernel_version: Option<String>,
    pub operating_system: Option<String>,
    /// `cgroupfs`, `systemd` or `none` (API ≥ 1.23).
    pub cgroup_driver: Option<String>,
    /// `"1"` or `"2"` (API ≥ 1.41).
    pub cgroup_version: Option<String>,
    /// Host memory in bytes.
    pub mem_total: Option<u64>,
    pub ncpu: Option<u32>,
    /// `false` predicts missing `memory.*` files (int before API 1.19).
    pub memory_limit: Option<bool>,
    /// `false` predicts missing `memory.memsw.*` files.
    pub swap_limit: Option<bool>,
    /// Podman's compatible API answered (it alone sends `BuildahVersion`).
    /// Its `ID` is a new random UUID on every call (4.3), not an identity.
    pub podman: bool,
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(rename = "ID")]
    id: Option<Value>,
    #[serde(rename = "Name")]
    name: Option<Value>,
    #[serde(rename = "ServerVersion")]
    server_version: Option<Value>,
    #[serde(rename = "KernelVersion")]
    kernel_version: Option<Value>,
    #[serde(rename = "OperatingSystem")]
    operating_system: Option<Value>,
    #[serde(rename = "CgroupDriver")]
    cgroup_driver: Option<Value>,
    #[serde(rename = "CgroupVersion")]
    cgroup_version: Option<Value>,
    #[serde(rename = "MemTotal")]
    mem_total: Option<Value>,
    #[serde(rename = "NCPU")]
    ncpu: Option<Value>,
    #[serde(rename = "MemoryLimit")]
    memory_limit: Option<Value>,
    #[serde(rename = "SwapLimit")]
    swap_limit: Option<Value>,
    #[serde(rename = "BuildahVersion")]
    buildah_version: Option<Value>,
}

/// Parses `GET /info`. Only the JSON must be well-formed: a field of an
/// unexpected type is treated as absent.
pub fn parse_info(body: &[u8]) -> Result<DaemonInfo, ApiError> {
    let raw: RawInfo = parse_json("/info", body)?;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    Ok(DaemonInfo {
        id: text(raw.id),
        name: text(raw.name),
        server_version: text(raw.server_version),
        kernel_version: text(raw.kernel_version),
        operating_system: text(raw.operating_system),
        cgroup_driver: text(raw.cgroup_driver),
        cgroup_version: match raw.cgroup_version {
            Some(Value::Number(Number::U64(n))) => Some(n.to_string()),
            other => text(other),
        },
        mem_total: as_u64(raw.mem_total.as_ref()),
        ncpu: as_u64(raw.ncpu.as_ref()).and_then(|n| u32::try_from(n).ok()),
        memory_limit: as_bool(raw.memory_limit.as_ref()),
        swap_limit: as_bool(raw.swap_limit.as_ref()),
        podman: text(raw.buildah_version).is_some(),
    })
}

// ---------------------------------------------------------------------------
// Errors

#[derive(Deserialize)]
struct RawErrorBody {
    message: Option<Value>,
}

/// The daemon's error text for logs: `{"message":"…"}` (API ≥ 1.24) or
/// plain text (older daemons and old request versions), whitespace-trimmed,
/// control characters replaced by spaces, at most [`MAX_ERROR_MESSAGE`] bytes.
pub fn error_message(content_type: Option<&str>, body: &[u8]) -> String {
    let looks_json = content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
        || body.trim_ascii_start().starts_with(b"{");
    let from_json = if looks_json {
        parse_json::<RawErrorBody>("error", body.trim_ascii())
            .ok()
            .and_then(|e| match e.message {
                Some(Value::String(s)) => Some(s),
                _ => None,
            })
    } else {
        None
    };
    let text = match from_json {
        Some(s) => s,
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = cleaned.len().min(MAX_ERROR_MESSAGE);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    cleaned[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_1_7: &str = "cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6";

    /// Docker 1.7.1 / API 1.19 inspect: top-level IPAddress, no Networks,
    /// Labels and Env null, bare-hex image ID, ExecDriver.
    const INSPECT_1_7: &[u8] = br#"{"AppArmorProfile":"","Args":["-g","daemon off;"],"Config":{"AttachStderr":false,"AttachStdin":false,"AttachStdout":false,"Cmd":["nginx","-g","daemon off;"],"CpuShares":0,"Cpuset":"","Domainname":"","Entrypoint":null,"Env":null,"ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Hostname":"cb4ab36a1c21","Image":"nginx:1.9","Labels":null,"MacAddress":"","Memory":0,"MemorySwap":0,"NetworkDisabled":false,"OnBuild":null,"OpenStdin":false,"PortSpecs":null,"StdinOnce":false,"Tty":false,"User":"","Volumes":null,"WorkingDir":""},"Created":"2015-11-03T09:33:19.987654321Z","Driver":"aufs","ExecDriver":"native-0.2","ExecIDs":null,"HostConfig":{"Binds":null,"BlkioWeight":0,"CapAdd":null,"CapDrop":null,"CgroupParent":"","ContainerIDFile":"","CpuPeriod":0,"CpuQuota":0,"CpuShares":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"Dns":null,"DnsSearch":null,"ExtraHosts":null,"IpcMode":"","Links":null,"LogConfig":{"Config":{},"Type":"json-file"},"LxcConf":[],"Memory":0,"MemorySwap":0,"NetworkMode":"bridge","OomKillDisable":false,"PidMode":"","PortBindings":{},"Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"RestartPolicy":{"MaximumRetryCount":0,"Name":"no"},"SecurityOpt":null,"UTSMode":"","Ulimits":null,"VolumesFrom":null},"HostnamePath":"/var/lib/docker/containers/cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6/hostname","HostsPath":"/var/lib/docker/containers/cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6/hosts","Id":"cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6","Image":"0a2c1ae5bcc4c3f7b5d3ec3e5a5d2c9f0c8f0a7c5d2a5d3c0b9f8e7d6c5b4a39","LogPath":"/var/lib/docker/containers/cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6/cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6-json.log","MountLabel":"","Name":"/web","NetworkSettings":{"Bridge":"","EndpointID":"","Gateway":"172.17.42.1","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"HairpinMode":false,"IPAddress":"172.17.0.5","IPPrefixLen":16,"IPv6Gateway":"","LinkLocalIPv6Address":"","LinkLocalIPv6PrefixLen":0,"MacAddress":"02:42:ac:11:00:05","NetworkID":"","PortMapping":null,"Ports":{"443/tcp":null,"80/tcp":null},"SandboxKey":"","SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null},"Path":"nginx","ProcessLabel":"","ResolvConfPath":"/var/lib/docker/containers/cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6/resolv.conf","RestartCount":0,"State":{"Dead":false,"Error":"","ExitCode":0,"FinishedAt":"0001-01-01T00:00:00Z","OOMKilled":false,"Paused":false,"Pid":13642,"Restarting":false,"Running":true,"StartedAt":"2015-11-03T09:33:20.518763286Z"},"Volumes":{},"VolumesRW":{}}
"#;

    /// Docker 29 / API 1.52 inspect: no top-level NetworkSettings addresses,
    /// two networks, health state, extra fields.
    const INSPECT_29: &[u8] = br#"{"Id":"4d4a1e7f3c2b5a6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b5f40","Created":"2025-11-10T08:00:00.123456789Z","Path":"/docker-entrypoint.sh","Args":["nginx","-g","daemon off;"],"State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ExitCode":0,"Error":"","StartedAt":"2025-11-10T08:00:01.5Z","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"healthy","FailingStreak":0,"Log":[]}},"Image":"sha256:1e5f3c5b981a9f91ca91cf13ce87c2eedfc7a083f4f279552084dd08fc477512","ImageManifestDescriptor":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":2290},"Name":"/shop-web-1","RestartCount":0,"Driver":"overlayfs","Platform":"linux","HostConfig":{"NetworkMode":"shop_default","CgroupParent":"","Memory":0,"CpuShares":0,"Annotations":null},"Config":{"Hostname":"4d4a1e7f3c2b","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NGINX_VERSION=1.27.2","DB_PASSWORD=s3cr3t","APP_NAME=shop","ENV=prod"],"Cmd":["nginx","-g","daemon off;"],"Image":"nginx:1.27","Labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"web","maintainer":"NGINX Docker Maintainers"}},"NetworkSettings":{"SandboxID":"9f","SandboxKey":"/var/run/docker/netns/9f","Ports":{"80/tcp":null},"Networks":{"shop_default":{"IPAMConfig":null,"Links":null,"Aliases":["shop-web-1","web"],"MacAddress":"02:42:ac:12:00:02","DriverOpts":null,"GwPriority":0,"NetworkID":"aa","EndpointID":"bb","Gateway":"172.18.0.1","IPAddress":"172.18.0.2","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":["shop-web-1","web","4d4a1e7f3c2b"]},"backend":{"IPAMConfig":null,"MacAddress":"02:42:0a:00:01:05","NetworkID":"cc","EndpointID":"dd","Gateway":"10.0.1.1","IPAddress":"10.0.1.5","IPPrefixLen":24},"dup":{"IPAddress":"10.0.1.5"},"nullnet":null}},"Mounts":[]}
"#;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/docker/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Twenty containers, one of which has a name with bytes that are not
    /// UTF-8 and a label with a lone surrogate escape: all twenty are
    /// listed, the odd strings with U+FFFD in place of what could not be
    /// read.
    #[test]
    fn one_odd_container_does_not_cost_the_list() {
        let entry = |i: usize, name: &[u8], label: &str| {
            let mut e = format!(r#"{{"Id":"{:064x}","Names":["/"#, i).into_bytes();
            e.extend_from_slice(name);
            e.extend_from_slice(
                format!(r#""],"Image":"busy","State":"running","Labels":{{"k":"{label}"}}}}"#)
                    .as_bytes(),
            );
            e
        };
        for (name, label, want_name, want_label) in [
            (
                &b"odd\xff\xfename"[..],
                "ok",
                "odd\u{FFFD}\u{FFFD}name",
                "ok",
            ),
            (b"odd", r"a\ud800b", "odd", "a\u{FFFD}b"),
            (b"odd", r"a\udc00", "odd", "a\u{FFFD}"),
            (b"odd", r"\ud800\ud800\udc00", "odd", "\u{FFFD}\u{10000}"),
            (b"odd\xc3", r"x\ud83d", "odd\u{FFFD}", "x\u{FFFD}"),
        ] {
            let mut body = b"[".to_vec();
            for i in 0..20 {
                if i > 0 {
                    body.push(b',');
                }
                if i == 7 {
                    body.extend(entry(i, name, label));
                } else {
                    body.extend(entry(i, format!("c{i}").as_bytes(), "v"));
                }
            }
            body.push(b']');
            let list = parse_container_list(&body)
                .unwrap_or_else(|e| panic!("{e} for {:?}", String::from_utf8_lossy(&body)));
            assert_eq!(list.len(), 20);
            assert_eq!(list[7].name(), Some(want_name));
            assert_eq!(list[7].labels, vec![("k".into(), want_label.into())]);
            assert_eq!(list[8].name(), Some("c8"));
        }
    }

    #[test]
    fn json_text_borrows_and_keeps_valid_escapes() {
        let valid = br#"{"a":"\\ud800 is text, \ud83d\ude00 a pair, \u00e9"}"#;
        assert!(matches!(json_text(valid), Cow::Borrowed(_)));
        let v: Value = miniserde::json::from_str(&json_text(valid)).unwrap();
        let Value::Object(o) = v else { panic!() };
        assert!(
            matches!(&o["a"], Value::String(s) if s == "\\ud800 is text, \u{1F600} a pair, \u{e9}")
        );
        // Why the pass exists: miniserde refuses a lone surrogate outright.
        assert!(miniserde::json::from_str::<Value>(r#"["a\ud800b"]"#).is_err());
        // Truncated escapes are left for the parser to reject.
        for bad in [&br#"["\ud8"]"#[..], br#"["\ud800\u"]"#, br#"["\"#] {
            assert!(parse_container_list(bad).is_err());
        }
    }

    #[test]
    fn inspect_docker_1_7_shape() {
        let got = parse_inspect(INSPECT_1_7).unwrap();
        let info = &got.info;
        assert_eq!(info.id, ID_1_7);
        assert_eq!(info.name, "web");
        assert_eq!(info.image, "nginx:1.9");
        assert!(info.labels.is_empty());
        assert!(info.env_tags.is_empty());
        assert_eq!(info.pid, 13642);
        assert_eq!(info.network_mode, "bridge");
        assert_eq!(info.ips, vec!["172.17.0.5".to_string()]);
        assert!((info.started_at - 1_446_543_200.518_763_3).abs() < 1e-6);
        assert_eq!(info.cgroup_parent, "");
        assert_eq!(info.fingerprint, "c6631056-9935-590f-b7f7-bb47405308a5");
        assert!(!info.paused);
        assert!(got.running);
        assert_eq!(got.hostname, "cb4ab36a1c21");
    }

    #[test]
    fn inspect_docker_29_shape() {
        let got = parse_inspect(INSPECT_29).unwrap();
        let info = &got.info;
        assert_eq!(info.name, "shop-web-1");
        assert_eq!(info.image, "nginx:1.27");
        assert_eq!(
            info.labels,
            vec![
                ("com.docker.compose.project".into(), "shop".into()),
                ("com.docker.compose.service".into(), "web".into()),
                ("maintainer".into(), "NGINX Docker Maintainers".into()),
            ]
        );
        // ENV first, then APP_NAME; nothing else from Env.
        assert_eq!(info.env_tags, vec!["prod".to_string(), "shop".to_string()]);
        assert_eq!(info.network_mode, "shop_default");
        // Networks in key order, de-duplicated, null endpoint skipped.
        assert_eq!(
            info.ips,
            vec!["10.0.1.5".to_string(), "172.18.0.2".to_string()]
        );
        assert_eq!(info.started_at, 1_762_761_601.5);
        assert_eq!(info.pid, 4242);
        let dump = format!("{got:?}");
        assert!(!dump.contains("s3cr3t") && !dump.contains("NGINX_VERSION"));
    }

    #[test]
    fn inspect_real_20_10_none_network_with_labels_and_env() {
        let got = parse_inspect(&fixture("inspect-20.10-hh-none.json")).unwrap();
        let info = &got.info;
        assert_eq!(
            info.id,
            "f1906bc0d7373c49c53c2ed0744d120661324125acb7829fff2e37135b2cf609"
        );
        assert_eq!(info.name, "hh-none");
        assert_eq!(info.image, "localbusy:latest");
        assert_eq!(
            info.labels,
            vec![
                ("app".into(), "web".into()),
                ("com.example.team".into(), "payments".into()),
                ("version".into(), "1.2.3".into()),
            ]
        );
        assert_eq!(
            info.env_tags,
            vec!["staging".to_string(), "checkout".to_string()]
        );
        assert_eq!(info.pid, 23430);
        assert_eq!(info.network_mode, "none");
        assert!(info.ips.is_empty());
        assert!(!info.has_own_netns());
        assert!((info.started_at - 1_795_561_038.819_284_5).abs() < 1e-5);
        assert_eq!(info.fingerprint, "2aa9cec6-37e1-500e-94b6-e34071842072");
        assert!(got.running && !info.paused);
        assert_eq!(got.hostname, "hh-none-host");
        assert!(!format!("{got:?}").contains("hunter2"));
    }

    #[test]
    fn inspect_real_20_10_host_network_and_cgroup_parent() {
        let got = parse_inspect(&fixture("inspect-20.10-hh-host.json")).unwrap();
        assert_eq!(got.info.name, "hh-host");
        assert_eq!(got.info.network_mode, "host");
        assert_eq!(got.info.cgroup_parent, "/hh-parent");
        assert_eq!(got.info.env_tags, vec!["prod".to_string()]);
        assert!(got.info.labels.is_empty());
        assert!(!format!("{got:?}").contains("hunter2"));
    }

    #[test]
    fn inspect_real_20_10_paused_exited_and_two_networks() {
        let paused = parse_inspect(&fixture("inspect-20.10-hh-paused.json")).unwrap();
        assert!(paused.info.paused && paused.running);
        assert_eq!(paused.info.pid, 23565);
        assert_eq!(paused.hostname, paused.info.short_id());

        let exited = parse_inspect(&fixture("inspect-20.10-hh-exited.json")).unwrap();
        assert!(!exited.running && !exited.info.paused);
        assert_eq!(exited.info.pid, 0);
        assert!(exited.info.started_at > 1.7e9);

        let netted = parse_inspect(&fixture("inspect-20.10-hh-net1.json")).unwrap();
        assert_eq!(netted.info.network_mode, "hh-net");
        assert_eq!(
            netted.info.ips,
            vec!["10.213.7.2".to_string(), "10.213.8.2".to_string()]
        );
        assert_eq!(netted.info.labels, vec![("app".into(), "netted".into())]);
        assert_eq!(
            netted.info.fingerprint,
            "63d7f863-6721-552d-8de4-8c94e2936f2b"
        );
        assert!(netted.info.has_own_netns());
    }

    #[test]
    fn inspect_tolerates_missing_and_null_sections() {
        let id = "0".repeat(64);
        for body in [
            format!(r#"{{"Id":"{id}"}}"#),
            format!(
                r#"{{"Id":"{id}","Name":null,"State":null,"Config":null,"HostConfig":null,"NetworkSettings":null}}"#
            ),
            format!(
                r#"{{"Id":"{id}","State":{{"Pid":null,"StartedAt":null,"Running":null}},"Config":{{"Env":null,"Labels":null,"Image":null}},"NetworkSettings":{{"Networks":null,"IPAddress":null}}}}"#
            ),
            format!(
                r#"{{"Id":"{id}","State":{{"Pid":-1,"StartedAt":"garbage","Running":"yes"}},"Config":{{"Env":[1,"ENV",null,"ENV="],"Labels":{{"n":1,"ok":"v"}}}},"NetworkSettings":{{"Networks":{{"x":{{"IPAddress":7}}}}}}}}"#
            ),
        ] {
            let got = parse_inspect(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(got.info.id, id);
            assert_eq!(got.info.fingerprint, "739d4a2e-d99e-5a2e-b29a-6b886d59df5f");
            assert_eq!(got.info.pid, 0);
            assert_eq!(got.info.started_at, 0.0);
            assert!(got.info.env_tags.is_empty());
            assert!(got.info.ips.is_empty());
            assert!(!got.running);
            assert!(got.info.labels.iter().all(|(k, _)| k == "ok"));
        }
    }

    #[test]
    fn inspect_errors() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"Id\":\"\"}",
            b"{\"Id\":\"../../../etc/passwd\"}",
            b"{\"Id\":42}",
            b"{\"Id\":\"abc\",\"State\":[]}",
            b"{\"Id\":\"abc\"",
            b"\xff",
        ] {
            let err = parse_inspect(body).unwrap_err();
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn container_list_real_and_old() {
        let list = parse_container_list(&fixture("list-20.10.json")).unwrap();
        assert_eq!(list.len(), 5);
        let none = list.iter().find(|c| c.name() == Some("hh-none")).unwrap();
        assert_eq!(none.state.as_deref(), Some("running"));
        assert_eq!(none.image, "localbusy:latest");
        assert_eq!(none.labels.len(), 3);
        assert_eq!(none.labels[0], ("app".to_string(), "web".to_string()));
        let paused = list.iter().find(|c| c.name() == Some("hh-paused")).unwrap();
        assert_eq!(paused.state.as_deref(), Some("paused"));

        // API 1.19: no State, Labels null, link aliases in Names.
        let old = format!(
            r#"[{{"Id":"{ID_1_7}","Names":["/app/db-alias","/web"],"Image":"nginx:1.9","Command":"nginx -g 'daemon off;'","Created":1446543199,"Ports":[{{"PrivatePort":80,"Type":"tcp"}}],"Labels":null,"Status":"Up 2 minutes"}},{{"Id":"{ID_1_7}","Names":null}}]"#
        );
        let list = parse_container_list(old.as_bytes()).unwrap();
        assert_eq!(list[0].name(), Some("web"));
        assert_eq!(list[0].state, None);
        assert!(list[0].labels.is_empty());
        assert_eq!(list[1].name(), None);
        assert_eq!(list[1].image, "");

        assert_eq!(parse_container_list(b"[]\n").unwrap(), vec![]);
        assert!(parse_container_list(b"null").is_err());
        assert!(parse_container_list(b"{}").is_err());
        assert!(parse_container_list(b"[{\"Names\":[\"/x\"]}]").is_err());
        assert!(parse_container_list(b"[{\"Id\":\"a/b\"}]").is_err());
    }

    #[test]
    fn info_real_20_10() {
        let info = parse_info(&fixture("info-20.10.json")).unwrap();
        assert!(info.id.as_deref().is_some_and(|id| id.contains(':')));
        assert_eq!(info.cgroup_driver.as_deref(), Some("cgroupfs"));
        assert_eq!(info.cgroup_version.as_deref(), Some("1"));
        assert!(info.mem_total.is_some_and(|m| m > 0));
        assert!(info.ncpu.is_some_and(|n| n >= 1));
        assert!(info.memory_limit.is_some());
        assert!(info.name.is_some());
        assert!(info
            .server_version
            .as_deref()
            .is_some_and(|v| v.starts_with("20.10")));
        assert!(!info.podman);
    }

    #[test]
    fn info_old_and_new_shapes() {
        // API < 1.19: MemoryLimit/SwapLimit as ints, no cgroup fields.
        let old = br#"{"Containers":2,"Debug":0,"Driver":"aufs","ExecutionDriver":"native-0.2","ID":"7TRN:IPZB:QYBB:VPBQ:UWYJ:KFOJ:R7JU:DNNP:ODRZ:JRL2:3ZUK:XLGH","IPv4Forwarding":1,"Images":14,"KernelVersion":"3.13.0-24-generic","MemTotal":2099236864,"MemoryLimit":1,"NCPU":1,"Name":"prod-server-42","OperatingSystem":"Ubuntu 14.04","SwapLimit":0}"#;
        let info = parse_info(old).unwrap();
        assert_eq!(info.memory_limit, Some(true));
        assert_eq!(info.swap_limit, Some(false));
        assert_eq!(info.mem_total, Some(2_099_236_864));
        assert_eq!(info.ncpu, Some(1));
        assert_eq!(info.name.as_deref(), Some("prod-server-42"));
        assert_eq!(info.cgroup_driver, None);
        assert_eq!(info.cgroup_version, None);
        // Current: booleans, string cgroup version, systemd.
        let new = br#"{"ID":"b6b5d1f2-1c3e-4c0e-9c1e-2b4f0c9a7d31","Name":"node-7","CgroupDriver":"systemd","CgroupVersion":"2","MemTotal":16623271936,"NCPU":8,"MemoryLimit":true,"SwapLimit":false,"Warnings":null,"Plugins":{"Log":["json-file"]}}"#;
        let info = parse_info(new).unwrap();
        assert_eq!(info.cgroup_version.as_deref(), Some("2"));
        assert_eq!(info.cgroup_driver.as_deref(), Some("systemd"));
        assert_eq!(info.memory_limit, Some(true));
        assert_eq!(info.swap_limit, Some(false));
        // Everything optional; wrong types read as absent.
        assert_eq!(parse_info(b"{}").unwrap(), DaemonInfo::default());
        let odd =
            parse_info(br#"{"NCPU":-1,"MemTotal":"lots","Name":null,"CgroupVersion":2}"#).unwrap();
        assert_eq!(odd.ncpu, None);
        assert_eq!(odd.mem_total, None);
        assert_eq!(odd.name, None);
        assert_eq!(odd.cgroup_version.as_deref(), Some("2"));
        assert!(parse_info(b"[]").is_err());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(
                Some("application/json"),
                b"{\"message\":\"No such container: nope\"}\n"
            ),
            "No such container: nope"
        );
        assert_eq!(
            error_message(Some("text/plain; charset=utf-8"), b"no such id: nope\n"),
            "no such id: nope"
        );
        assert_eq!(
            error_message(None, b"400 Bad Request: missing required Host header"),
            "400 Bad Request: missing required Host header"
        );
        // JSON without a message, or broken JSON: the text itself.
        assert_eq!(
            error_message(Some("application/json"), b"{\"x\":1}"),
            "{\"x\":1}"
        );
        assert_eq!(error_message(Some("application/json"), b"{oops"), "{oops");
        // One line, capped, never split inside a character.
        let long = "é\n".repeat(1000);
        let msg = error_message(None, long.as_bytes());
        assert!(msg.len() <= MAX_ERROR_MESSAGE && msg.len() > 500);
        assert!(!msg.contains('\n'));
        let msg = error_message(None, b"\xff\xfe bad bytes");
        assert!(msg.ends_with("bad bytes"));
        assert_eq!(error_message(None, b""), "");
    }

    #[test]
    fn rfc3339_parsing() {
        let cases: [(&str, Option<f64>); 14] = [
            ("1970-01-01T00:00:00Z", Some(0.0)),
            ("0001-01-01T00:00:00Z", None),
            (
                "2015-11-03T09:33:20.518763286Z",
                Some(1_446_543_200.518_763_3),
            ),
            (
                "2015-11-03T09:33:20.518763286+00:00",
                Some(1_446_543_200.518_763_3),
            ),
            ("2024-02-29T23:59:59.5-07:00", Some(1_709_276_399.5)),
            ("2000-03-01T00:00:00+05:30", Some(951_849_000.0)),
            ("2025-11-10T08:00:01.5Z", Some(1_762_761_601.5)),
            ("2023-02-29T00:00:00Z", None),
            ("2023-13-01T00:00:00Z", None),
            ("2023-01-01 00:00:00Z", None),
            ("2023-01-01T00:00:00", None),
            ("2023-01-01T00:00:00.Z", None),
            ("2023-01-01T00:00:00+0100", None),
            ("", None),
        ];
        for (text, want) in cases {
            match (parse_rfc3339(text), want) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-6, "{text}: {got}"),
                (got, want) => assert_eq!(got, want, "{text}"),
            }
        }
        // Extra fraction digits are accepted and ignored past nanoseconds.
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.1234567891234Z"),
            Some(1.123_456_789)
        );
    }

    #[test]
    fn miniserde_behaviour_we_rely_on() {
        #[derive(Deserialize, Debug)]
        struct S {
            a: Option<Vec<String>>,
            b: Option<BTreeMap<String, String>>,
            c: Option<String>,
        }
        // Unknown fields ignored, missing Option fields are None, null is None.
        let s: S = miniserde::json::from_str(r#"{"zz":[1,{"q":null}],"a":null}"#).unwrap();
        assert!(s.a.is_none() && s.b.is_none() && s.c.is_none());
        // A type mismatch inside a known Option field fails the whole parse,
        // hence `Value` for fields whose type varies.
        assert!(miniserde::json::from_str::<S>(r#"{"c":1}"#).is_err());
        // A non-Option field must be present and non-null.
        #[derive(Deserialize)]
        struct R {
            #[allow(dead_code)]
            v: Vec<u8>,
        }
        assert!(miniserde::json::from_str::<R>(r#"{}"#).is_err());
        assert!(miniserde::json::from_str::<R>(r#"{"v":null}"#).is_err());
        // Trailing garbage is rejected; trailing whitespace is not.
        assert!(miniserde::json::from_str::<S>("{} x").is_err());
        assert!(miniserde::json::from_str::<S>("{}\n").is_ok());
        // Deep nesting does not overflow the stack (no recursion).
        let deep = format!("{{\"zz\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(miniserde::json::from_str::<S>(&deep).is_ok());
    }

    #[test]
    fn env_tags_take_only_env_and_app_name_last_wins() {
        let env: Vec<Value> = [
            "APP_NAME=first",
            "ENV=a",
            "ENVX=no",
            "XENV=no",
            "ENV=b",
            "APP_NAME=",
            "env=lower",
            "PASSWORD=ENV=x",
            "APP_NAME",
        ]
        .iter()
        .map(|s| Value::String(s.to_string()))
        .collect();
        // APP_NAME's last assignment is empty, so it is skipped.
        assert_eq!(env_tags(&env), vec!["b".to_string()]);
        let env = vec![
            Value::String("APP_NAME=x=y".into()),
            Value::String("ENV= prod ".into()),
        ];
        assert_eq!(env_tags(&env), vec!["prod".to_string(), "x=y".to_string()]);
    }

    #[test]
    fn valid_ids() {
        assert!(is_valid_id(ID_1_7));
        assert!(is_valid_id("abc"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("abc/def"));
        assert!(!is_valid_id(".."));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
    }
}
