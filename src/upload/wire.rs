//! What the agent API carries (docs/protocol.md): ping bodies, tags,
//! process counts, the agents list, and the JSON string writer the series
//! sink shares. Pure functions; the only file access is [`processes_of`],
//! kept apart.

use std::fmt::Write as _;
use std::path::Path;

use crate::registry::ContainerInfo;

/// Identity of the host agent, the parent of every virtual agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostIdentity {
    pub finger: String,
    /// `DATALOOP_NAME` or the host name.
    pub name: String,
    /// The `mac` field grouping this host's virtual agents (protocol §1).
    pub mac: String,
    /// `DATALOOP_TAGS` of the host agent.
    pub tags: Vec<String>,
    /// The host's name as Docker reports it (`/info` `Name`), a tag of
    /// every container.
    pub hostname: String,
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_str_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, s);
    }
    out.push(']');
}

/// `POST /agents/{finger}/ping` body of a container's virtual agent.
pub fn container_ping_body(
    info: &ContainerInfo,
    processes: &[String],
    host: &HostIdentity,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"finger\":");
    push_json_str(&mut out, &info.fingerprint);
    out.push_str(",\"name\":");
    push_json_str(&mut out, info.name.trim_start_matches('/'));
    out.push_str(",\"mac\":");
    push_json_str(&mut out, &host.mac);
    out.push_str(",\"hostname\":");
    push_json_str(&mut out, info.short_id());
    out.push_str(",\"os_name\":\"docker\",\"os_version\":\"\",\"processes\":");
    push_str_list(&mut out, processes);
    out.push_str(
        ",\"interfaces\":[{\"interface\":\"lo0\",\"addresses\":[{\"ips\":[\"127.0.0.1\"],\"family\":\"AF_INET\"}]}",
    );
    if !info.ips.is_empty() {
        let (v4, v6): (Vec<String>, Vec<String>) =
            info.ips.iter().cloned().partition(|ip| !ip.contains(':'));
        out.push_str(",{\"interface\":\"eth0\",\"addresses\":[");
        let mut first = true;
        for (ips, family) in [(v4, "AF_INET"), (v6, "AF_INET6")] {
            if ips.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str("{\"ips\":");
            push_str_list(&mut out, &ips);
            let _ = write!(out, ",\"family\":\"{family}\"}}");
        }
        out.push_str("]}");
    }
    out.push_str("],\"mode\":\"DEFAULT\",\"interpreter\":\"\",\"container_id\":");
    push_json_str(&mut out, &info.id);
    out.push_str(",\"parent\":");
    push_json_str(&mut out, &host.finger);
    out.push('}');
    out
}

/// `POST /agents/{finger}/ping` body of the host agent itself.
pub fn host_ping_body(host: &HostIdentity) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"finger\":");
    push_json_str(&mut out, &host.finger);
    out.push_str(",\"name\":");
    push_json_str(&mut out, &host.name);
    out.push_str(",\"mac\":");
    push_json_str(&mut out, &host.mac);
    out.push_str(",\"hostname\":");
    push_json_str(&mut out, &host.hostname);
    out.push_str(
        ",\"os_name\":\"linux\",\"os_version\":\"\",\"processes\":[],\"interfaces\":[],\"mode\":\"DEFAULT\",\"interpreter\":\"\"}",
    );
    out
}

/// `PUT /agents/{finger}/tags` body.
pub fn tags_body(finger: &str, tags: &str) -> String {
    let mut out = String::with_capacity(64 + tags.len());
    out.push_str("{\"finger\":");
    push_json_str(&mut out, finger);
    out.push_str(",\"tags\":");
    push_json_str(&mut out, tags);
    out.push('}');
    out
}

/// A label value that would make a useless or risky tag.
fn is_noise_label(v: &str) -> bool {
    let t = v.trim();
    let lower = t.to_ascii_lowercase();
    t.parse::<f64>().is_ok()
        || (t.len() >= 32 && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        || matches!(
            lower.as_str(),
            "true" | "false" | "null" | "nil" | "none" | "undefined"
        )
        || t.contains(['[', ']', '{', '}'])
}

/// Tags of a container (protocol §2), comma-joined, in a stable order.
pub fn container_tags(info: &ContainerInfo, host: &HostIdentity) -> String {
    let id12 = info.short_id();
    let mut tags: Vec<String> = vec![
        "all".into(),
        "docker".into(),
        format!("container:{id12}"),
        format!("parent:{}", host.finger),
        info.image.clone(),
        host.hostname.clone(),
        id12.to_owned(),
    ];
    tags.extend(info.env_tags.iter().cloned());
    tags.extend(
        info.labels
            .iter()
            .map(|(_, v)| v)
            .filter(|v| !is_noise_label(v))
            .cloned(),
    );
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        // Commas would split one tag into two; control bytes have no place.
        let t: String = t
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .map(|c| match c {
                '/' => ':',
                ',' => ' ',
                c => c,
            })
            .collect();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out.join(",")
}

/// Groups process names into `name:count`, sorted by name.
pub fn group_processes<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for raw in names {
        let name = String::from_utf8_lossy(raw.trim_ascii()).replace([',', ':'], "_");
        if name.is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort();
    counts
        .into_iter()
        .map(|(n, c)| format!("{n}:{c}"))
        .collect()
}

/// PIDs listed in a `cgroup.procs` file (bad lines skipped).
pub fn parse_pids(buf: &[u8]) -> Vec<u32> {
    crate::cgroup::parse::pids(buf)
        .filter_map(Result::ok)
        .collect()
}

/// Processes of a container from its `cgroup.procs` and each
/// `<rootfs>/proc/<pid>/comm` (a process that exits meanwhile is skipped).
pub fn processes_of(rootfs: &Path, cgroup_procs: &Path) -> Vec<String> {
    match std::fs::read(cgroup_procs) {
        Ok(procs) => processes_of_pids(rootfs, &parse_pids(&procs)),
        Err(_) => Vec::new(),
    }
}

/// `name:count` of the given host PIDs, from `<rootfs>/proc/<pid>/comm`.
pub fn processes_of_pids(rootfs: &Path, pids: &[u32]) -> Vec<String> {
    let comms: Vec<Vec<u8>> = pids
        .iter()
        .take(4096)
        .filter_map(|pid| std::fs::read(rootfs.join(format!("proc/{pid}/comm"))).ok())
        .collect();
    group_processes(comms.iter().map(Vec::as_slice))
}

/// Ids of the agents in a `GET /agents?mac=` answer: a JSON list of
/// objects each with `id` (a string, or a number). `None` when the body is
/// not such a list.
pub fn parse_agent_ids(body: &[u8]) -> Option<Vec<String>> {
    use miniserde::json::{Number, Value};
    let text = std::str::from_utf8(body).ok()?;
    let value: Value = miniserde::json::from_str(text).ok()?;
    let list = match value {
        Value::Array(a) => a,
        // Some deployments wrap lists: {"agents": [...]}.
        Value::Object(mut o) => match o.remove("agents") {
            Some(Value::Array(a)) => a,
            _ => return None,
        },
        _ => return None,
    };
    let mut ids = Vec::new();
    for item in list {
        if let Value::Object(o) = item {
            match o.get("id") {
                Some(Value::String(s)) => ids.push(s.clone()),
                Some(Value::Number(Number::U64(n))) => ids.push(n.to_string()),
                Some(Value::Number(Number::I64(n))) => ids.push(n.to_string()),
                _ => {}
            }
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostIdentity {
        HostIdentity {
            finger: "11111111-2222-3333-4444-555555555555".into(),
            name: "node1".into(),
            mac: "mac-1".into(),
            tags: vec!["docker".into()],
            hostname: "docker-host".into(),
        }
    }

    fn container() -> ContainerInfo {
        let id = "cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6";
        ContainerInfo {
            id: id.into(),
            name: "web".into(),
            image: "library/nginx:1.25".into(),
            labels: vec![
                ("com.docker.compose.project".into(), "shop".into()),
                ("count".into(), "3".into()),
                ("version".into(), "1.5e3".into()),
                ("hash".into(), "0123456789abcdef0123456789abcdef".into()),
                ("uuid".into(), "c6631056-9935-590f-b7f7-bb47405308a5".into()),
                ("flag".into(), "True".into()),
                ("empty".into(), "".into()),
                ("json".into(), "{\"a\":1}".into()),
                ("list".into(), "[a]".into()),
                ("team".into(), "payments/eu".into()),
                ("dup".into(), "docker".into()),
            ],
            env_tags: vec!["production".into(), "shop-api".into()],
            ips: vec!["172.17.0.2".into(), "10.0.0.5".into(), "fd00::5".into()],
            fingerprint: crate::uuid::container_fingerprint(id),
            ..ContainerInfo::default()
        }
    }

    #[test]
    fn tags_follow_the_rules() {
        assert_eq!(
            container_tags(&container(), &host()),
            "all,docker,container:cb4ab36a1c21,parent:11111111-2222-3333-4444-555555555555,\
             library:nginx:1.25,docker-host,cb4ab36a1c21,production,shop-api,shop,payments:eu"
        );
        let mut c = container();
        c.labels = vec![
            ("a".into(), "x,y".into()),
            ("b".into(), "nil".into()),
            ("c".into(), "undefined".into()),
        ];
        c.env_tags.clear();
        c.image = "img".into();
        assert!(container_tags(&c, &host()).ends_with(",img,docker-host,cb4ab36a1c21,x y"));
    }

    #[test]
    fn ping_body_shape() {
        let body = container_ping_body(&container(), &["nginx:4".into(), "sh:1".into()], &host());
        let v: miniserde::json::Value = miniserde::json::from_str(&body).unwrap();
        let miniserde::json::Value::Object(o) = v else {
            panic!("not an object")
        };
        let s = |k: &str| match o.get(k) {
            Some(miniserde::json::Value::String(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(s("finger"), "c6631056-9935-590f-b7f7-bb47405308a5");
        assert_eq!(s("name"), "web");
        assert_eq!(s("mac"), "mac-1");
        assert_eq!(s("hostname"), "cb4ab36a1c21");
        assert_eq!(s("os_name"), "docker");
        assert_eq!(s("mode"), "DEFAULT");
        assert_eq!(s("parent"), host().finger);
        assert_eq!(s("container_id").len(), 64);
        assert!(body.contains("\"processes\":[\"nginx:4\",\"sh:1\"]"));
        assert!(body.contains(
            "{\"interface\":\"eth0\",\"addresses\":[{\"ips\":[\"172.17.0.2\",\"10.0.0.5\"],\"family\":\"AF_INET\"},{\"ips\":[\"fd00::5\"],\"family\":\"AF_INET6\"}]}"
        ));
        let mut c = container();
        c.ips.clear();
        c.name = "/we\"b".into();
        let body = container_ping_body(&c, &[], &host());
        assert!(body.contains("\"interfaces\":[{\"interface\":\"lo0\""));
        assert!(!body.contains("eth0"));
        assert!(body.contains("\"name\":\"we\\\"b\""));
        miniserde::json::from_str::<miniserde::json::Value>(&body).unwrap();
        let h = host_ping_body(&host());
        assert!(h.starts_with("{\"finger\":\"11111111-"));
        miniserde::json::from_str::<miniserde::json::Value>(&h).unwrap();
        assert_eq!(tags_body("f", "a,b"), r#"{"finger":"f","tags":"a,b"}"#);
    }

    #[test]
    fn json_escaping() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"\\\n\u{1}é");
        assert_eq!(s, r#""a\"\\\n\u0001é""#);
    }

    #[test]
    fn processes_grouped() {
        let names: [&[u8]; 6] = [
            b"nginx\n", b"sh\n", b"nginx\n", b"nginx\n", b"\n", b"a,b:c\n",
        ];
        assert_eq!(group_processes(names), ["a_b_c:1", "nginx:3", "sh:1"]);
        assert_eq!(parse_pids(b"1\n23\nx\n\n456\n"), [1, 23, 456]);
    }

    #[test]
    fn processes_from_files() {
        let dir = std::env::temp_dir().join(format!("upl-procs-{}", std::process::id()));
        for (pid, comm) in [(10, "nginx\n"), (11, "nginx\n"), (12, "sh\n")] {
            std::fs::create_dir_all(dir.join(format!("proc/{pid}"))).unwrap();
            std::fs::write(dir.join(format!("proc/{pid}/comm")), comm).unwrap();
        }
        std::fs::write(dir.join("cgroup.procs"), "10\n11\n12\n13\n").unwrap();
        assert_eq!(
            processes_of(&dir, &dir.join("cgroup.procs")),
            ["nginx:2", "sh:1"]
        );
        assert!(processes_of(&dir, &dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn agent_lists() {
        assert_eq!(
            parse_agent_ids(br#"[{"id":"a","name":"x"},{"id":7},{"name":"no id"}]"#),
            Some(vec!["a".to_string(), "7".to_string()])
        );
        assert_eq!(
            parse_agent_ids(br#"{"agents":[{"id":"b"}]}"#),
            Some(vec!["b".to_string()])
        );
        assert_eq!(parse_agent_ids(b"[]"), Some(vec![]));
        assert_eq!(parse_agent_ids(b"{\"error\":1}"), None);
        assert_eq!(parse_agent_ids(b"\xff"), None);
    }
}
