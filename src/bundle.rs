//! What containerd and CRI-O keep on disk for every running container: the
//! OCI bundle's `config.json` (annotations, environment, namespaces) and
//! the init process's pid file. The cgroup tree says *that* a container
//! runs; these files say *what* it is.
//!
//! | runtime | bundle directory | pid file |
//! |---|---|---|
//! | containerd | `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/` | `init.pid` |
//! | CRI-O | `<state>/overlay-containers/<id>/userdata/` | `pidfile` |
//!
//! `<state>` is `/run/containerd` (containerd's `--state`) and
//! `/run/containers/storage` (CRI-O's `runroot`) by default. Docker's own
//! containerd namespace, `moby`, is the Docker API's to report.

use miniserde::json::Value;
use miniserde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest `config.json` read (a real one is 5–30 KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// At most this many annotations are kept per container, each value cut at
/// [`MAX_ANNOTATION_BYTES`].
const MAX_ANNOTATIONS: usize = 64;
const MAX_ANNOTATION_BYTES: usize = 1024;
/// Docker's containerd namespace.
pub const DOCKER_NAMESPACE: &str = "moby";
const CONTAINERD_TASKS: &str = "io.containerd.runtime.v2.task";

/// Which runtime's files described a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Containerd,
    Crio,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Containerd => "containerd",
            Kind::Crio => "cri-o",
        }
    }
}

/// What a bundle's `config.json` tells about its container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spec {
    /// The `io.kubernetes.*` and `io.containerd.*` annotations, sorted by key.
    pub annotations: Vec<(String, String)>,
    /// Values of the `ENV` and `APP_NAME` environment variables (tags, as for Docker).
    pub env_tags: Vec<String>,
    /// `linux.namespaces` holds a network namespace (its own or the pod's);
    /// without one the container shares the host's.
    pub has_netns: bool,
}

/// The Kubernetes identity in a container's annotations, whichever
/// runtime wrote them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kube {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub pod_uid: String,
    pub image: String,
    /// The pod's sandbox ("pause") container.
    pub sandbox: bool,
}

/// Why a bundle could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum BundleError {
    TooLarge { path: PathBuf, len: u64 },
    Unreadable { path: PathBuf, why: String },
    Malformed { path: PathBuf },
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::TooLarge { path, len } => write!(
                f,
                "{}: {len} bytes, more than the {MAX_CONFIG_BYTES} read; not used",
                path.display()
            ),
            BundleError::Unreadable { path, why } => write!(f, "{}: {why}", path.display()),
            BundleError::Malformed { path } => {
                write!(
                    f,
                    "{}: not an OCI runtime spec (malformed JSON)",
                    path.display()
                )
            }
        }
    }
}

/// A container's bundle, found.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub kind: Kind,
    /// containerd's namespace (`k8s.io`, `default`, …).
    pub namespace: Option<String>,
    pub spec: Spec,
    /// The init process's host pid, once the runtime wrote it.
    pub pid: Option<u32>,
    /// When the pid file was written (the task's start), Unix seconds.
    pub started_at: f64,
}

/// Where the runtimes keep their bundles.
#[derive(Clone, Debug, Default)]
pub struct Stores {
    /// `<containerd state>/io.containerd.runtime.v2.task`.
    pub containerd: Option<PathBuf>,
    /// `<CRI-O state>/overlay-containers`.
    pub crio: Option<PathBuf>,
}

impl Stores {
    pub fn new(containerd_state: Option<&Path>, crio_state: Option<&Path>) -> Stores {
        Stores {
            containerd: containerd_state.map(|s| s.join(CONTAINERD_TASKS)),
            crio: crio_state.map(|s| s.join("overlay-containers")),
        }
    }

    /// containerd's namespaces with tasks (Docker's excluded), sorted.
    pub fn containerd_namespaces(&self) -> Vec<String> {
        let Some(tasks) = &self.containerd else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(tasks) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != DOCKER_NAMESPACE)
            .collect();
        v.sort();
        v
    }

    /// The bundle of container `id`, if a runtime keeps one: containerd's
    /// (in `namespace` only, when the cgroup path named it), then CRI-O's.
    /// `Ok(None)` when neither has it.
    pub fn find(
        &self,
        id: &str,
        namespace: Option<&str>,
        want: &[Kind],
    ) -> Result<Option<Bundle>, BundleError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Ok(None);
        }
        if want.contains(&Kind::Containerd) {
            if let Some(tasks) = &self.containerd {
                let namespaces = match namespace {
                    Some(ns) if ns != DOCKER_NAMESPACE => vec![ns.to_owned()],
                    Some(_) => Vec::new(),
                    None => self.containerd_namespaces(),
                };
                for ns in namespaces {
                    let dir = tasks.join(&ns).join(id);
                    if let Some(spec) = read_spec(&dir.join("config.json"))? {
                        let (pid, started_at) = read_pid(&dir.join("init.pid"));
                        return Ok(Some(Bundle {
                            kind: Kind::Containerd,
                            namespace: Some(ns),
                            spec,
                            pid,
                            started_at,
                        }));
                    }
                }
            }
        }
        if want.contains(&Kind::Crio) {
            if let Some(containers) = &self.crio {
                let dir = containers.join(id).join("userdata");
                if let Some(spec) = read_spec(&dir.join("config.json"))? {
                    let (pid, started_at) = read_pid(&dir.join("pidfile"));
                    return Ok(Some(Bundle {
                        kind: Kind::Crio,
                        namespace: None,
                        spec,
                        pid,
                        started_at,
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// Reads and parses `config.json`; `Ok(None)` when there is none.
pub fn read_spec(path: &Path) -> Result<Option<Spec>, BundleError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BundleError::Unreadable {
                path: path.to_path_buf(),
                why: e.to_string(),
            })
        }
    };
    let mut text = Vec::new();
    // One byte past the cap tells a file that is too large.
    if let Err(e) = file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut text) {
        return Err(BundleError::Unreadable {
            path: path.to_path_buf(),
            why: e.to_string(),
        });
    }
    if text.len() as u64 > MAX_CONFIG_BYTES {
        let len = std::fs::metadata(path).map_or(text.len() as u64, |m| m.len());
        return Err(BundleError::TooLarge {
            path: path.to_path_buf(),
            len,
        });
    }
    parse_spec(&text)
        .map(Some)
        .ok_or_else(|| BundleError::Malformed {
            path: path.to_path_buf(),
        })
}

/// The pid in a pid file (a decimal number, maybe without a newline) and
/// the file's modification time.
fn read_pid(path: &Path) -> (Option<u32>, f64) {
    let Ok(text) = std::fs::read(path) else {
        return (None, 0.0);
    };
    let pid = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|&p| p > 0);
    let at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    (pid, at)
}

#[derive(Deserialize)]
struct RawSpec {
    annotations: Option<BTreeMap<String, Value>>,
    process: Option<RawProcess>,
    linux: Option<RawLinux>,
}

#[derive(Deserialize)]
struct RawProcess {
    env: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct RawLinux {
    namespaces: Option<Vec<RawNamespace>>,
}

#[derive(Deserialize)]
struct RawNamespace {
    #[serde(rename = "type")]
    kind: Option<Value>,
}

/// The parts of an OCI runtime spec the agent uses; `None` when the text is
/// not a JSON object of that shape.
pub fn parse_spec(text: &[u8]) -> Option<Spec> {
    let raw: RawSpec = crate::docker::api::parse_json("config.json", text).ok()?;
    let mut annotations: Vec<(String, String)> = raw
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("io.kubernetes.") || k.starts_with("io.containerd."))
        .filter_map(|(k, v)| match v {
            Value::String(mut s) => {
                if s.len() > MAX_ANNOTATION_BYTES {
                    let mut cut = MAX_ANNOTATION_BYTES;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                }
                Some((k, s))
            }
            _ => None,
        })
        .take(MAX_ANNOTATIONS)
        .collect();
    annotations.sort();
    let env_tags = raw
        .process
        .and_then(|p| p.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
        .filter_map(|s| {
            let (k, v) = s.split_once('=')?;
            (k == "ENV" || k == "APP_NAME").then(|| v.to_owned())
        })
        .collect();
    let has_netns = raw
        .linux
        .and_then(|l| l.namespaces)
        .unwrap_or_default()
        .iter()
        .any(|n| matches!(&n.kind, Some(Value::String(k)) if k == "network"));
    Some(Spec {
        annotations,
        env_tags,
        has_netns,
    })
}

impl Spec {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The Kubernetes identity, when the CRI plugin of containerd or CRI-O
    /// made the container.
    pub fn kube(&self) -> Option<Kube> {
        let get = |keys: [&str; 2]| {
            keys.iter()
                .find_map(|k| self.annotation(k))
                .unwrap_or("")
                .to_owned()
        };
        let kind = get([
            "io.kubernetes.cri.container-type",
            "io.kubernetes.cri-o.ContainerType",
        ]);
        let pod = get(["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]);
        if kind.is_empty() && pod.is_empty() {
            return None;
        }
        Some(Kube {
            namespace: get([
                "io.kubernetes.cri.sandbox-namespace",
                "io.kubernetes.pod.namespace",
            ]),
            container: get([
                "io.kubernetes.cri.container-name",
                "io.kubernetes.container.name",
            ]),
            pod_uid: get(["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]),
            image: get([
                "io.kubernetes.cri.image-name",
                "io.kubernetes.cri-o.ImageName",
            ]),
            sandbox: kind == "sandbox",
            pod,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_cri_annotations() {
        let text = br#"{"ociVersion":"1.1.0","process":{"args":["sh"],"env":["PATH=/bin","ENV=prod","APP_NAME=web","X"]},
            "annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"app",
            "io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-uid":"8b0f2a1c-3d4e-4f5a-8b6c-7d8e9f0a1b2c",
            "io.kubernetes.cri.image-name":"docker.io/library/nginx:1.25","other":"dropped","io.kubernetes.n":1},
            "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/9/ns/net"}]}}"#;
        let spec = parse_spec(text).unwrap();
        assert_eq!(spec.env_tags, vec!["prod", "web"]);
        assert!(spec.has_netns);
        assert!(spec.annotations.iter().all(|(k, _)| k != "other"));
        let k = spec.kube().unwrap();
        assert_eq!(
            (
                k.namespace.as_str(),
                k.pod.as_str(),
                k.container.as_str(),
                k.image.as_str()
            ),
            ("shop", "web-0", "app", "docker.io/library/nginx:1.25")
        );
        assert!(!k.sandbox);
    }

    #[test]
    fn crio_annotations_and_sandbox() {
        let text = br#"{"annotations":{"io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.pod.name":"p",
            "io.kubernetes.pod.namespace":"n","io.kubernetes.container.name":"POD"},"linux":{"namespaces":[{"type":"mount"}]}}"#;
        let spec = parse_spec(text).unwrap();
        assert!(!spec.has_netns, "no network namespace: the host's");
        let k = spec.kube().unwrap();
        assert!(k.sandbox);
        assert_eq!((k.pod.as_str(), k.namespace.as_str()), ("p", "n"));
    }

    #[test]
    fn plain_containerd_container_has_no_kube_identity() {
        let spec = parse_spec(br#"{"ociVersion":"1.0.2","process":{"env":[]}}"#).unwrap();
        assert_eq!(spec.kube(), None);
        assert_eq!(parse_spec(b"[1,2]"), None);
        assert_eq!(parse_spec(br#"{"annotations":"#), None);
    }

    #[test]
    fn long_and_many_annotations_are_bounded() {
        let mut text = String::from(r#"{"annotations":{"#);
        for i in 0..200 {
            text.push_str(&format!(
                r#""io.kubernetes.k{i:03}":"{}","#,
                "é".repeat(600)
            ));
        }
        text.push_str(r#""io.kubernetes.z":"1"}}"#);
        let spec = parse_spec(text.as_bytes()).unwrap();
        assert_eq!(spec.annotations.len(), MAX_ANNOTATIONS);
        assert!(spec
            .annotations
            .iter()
            .all(|(_, v)| v.len() <= MAX_ANNOTATION_BYTES));
    }
}
