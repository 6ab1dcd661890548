//! Flags and environment → a validated [`Config`]. Flags win over the
//! environment; every bad value is a [`SettingError`] that names the setting
//! (the process exits with code 2).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use crate::setting::{agent_key, SettingError, UPLOAD_FLAGS};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8000";
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// `podman system service`'s socket (rootful).
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";
/// containerd's and CRI-O's state directories, below the rootfs.
pub const CONTAINERD_STATE: &str = "run/containerd";
pub const CRIO_STATE: &str = "run/containers/storage";
pub const DEFAULT_INTERVAL: u64 = 30;
pub const DEFAULT_TAGS: &str = "docker";

/// `--runtime`: which container sources run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Every source found under the rootfs.
    Auto,
    Docker,
    Containerd,
    Crio,
    Podman,
}

impl RuntimeChoice {
    fn parse(v: &str) -> Option<RuntimeChoice> {
        Some(match v.trim().to_ascii_lowercase().as_str() {
            "auto" => RuntimeChoice::Auto,
            "docker" => RuntimeChoice::Docker,
            "containerd" => RuntimeChoice::Containerd,
            "crio" | "cri-o" => RuntimeChoice::Crio,
            "podman" => RuntimeChoice::Podman,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the host's /proc and /sys/fs/cgroup are visible.
    pub rootfs: PathBuf,
    pub docker_socket: PathBuf,
    pub runtime: RuntimeChoice,
    /// containerd's state directory (`--containerd-state`, else under the rootfs).
    pub containerd_state: PathBuf,
    /// CRI-O's state directory (`--crio-state`, else under the rootfs).
    pub crio_state: PathBuf,
    pub listen: SocketAddr,
    pub interval: Duration,
    pub once: bool,
    /// Needed only for uploading; without it the agent runs locally.
    pub agent_key: Option<Secret>,
    /// `DATALOOP_NAME`; `None` means "the host's name".
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// `DATALOOP_FINGERPRINT`, validated as a UUID and lower-cased.
    pub fingerprint: Option<String>,
    pub debug: bool,
    /// Publish `container_network_tcp_usage_total` (costly on busy hosts).
    pub tcp_states: bool,
    /// Upload flags given on the command line, as (variable, value): they
    /// overlay the environment for `upload::UploadSettings::from_env`.
    pub upload_flags: Vec<(&'static str, String)>,
}

impl Config {
    /// The environment as the uploader sees it: upload flags win.
    pub fn upload_env(&self, name: &str) -> Option<String> {
        self.upload_flags
            .iter()
            .find(|(var, _)| *var == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }

    /// The flag a variable's value came from, for error messages.
    pub fn flag_for(&self, var: &str) -> Option<&'static str> {
        self.upload_flags
            .iter()
            .find(|(v, _)| *v == var)
            .and_then(|(v, _)| UPLOAD_FLAGS.iter().find(|(_, e)| e == v).map(|(f, _)| *f))
    }
}

#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

fn err(setting: &str, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

pub fn help_text() -> String {
    format!(
        "outlyer-agent {ver}: monitors every running container (Docker, Podman, containerd, CRI-O) from cgroup and /proc files

Usage: outlyer-agent [FLAGS]

Flags (each wins over its environment variable):
  --rootfs PATH          where the host's /proc and /sys/fs/cgroup are visible
                         [env DATALOOP_ROOTFS; default /rootfs if /rootfs/proc exists, else /]
  --runtime NAME         container sources: auto, docker, containerd, crio, podman
                         (auto: the Docker API, and the cgroup tree with
                         containerd's and CRI-O's files when their state
                         directories exist) [env DATALOOP_RUNTIME; default auto]
  --docker-socket PATH   Docker API unix socket
                         [env DOCKER_HOST=unix:///PATH; default {sock},
                         {podman} with --runtime podman]
  --containerd-state DIR containerd's --state directory
                         [env DATALOOP_CONTAINERD_STATE; default <rootfs>/{ctrd}]
  --crio-state DIR       CRI-O's state (runroot) directory
                         [env DATALOOP_CRIO_STATE; default <rootfs>/{crio}]
  --listen ADDR          HTTP address for GET / (fingerprint) and /metrics
                         [env DATALOOP_LISTEN; default {listen}]
  --interval SECONDS     seconds between collections, 1..=3600
                         [env DATALOOP_INTERVAL; default {interval}]
  --once                 take two readings 1 s apart, print Prometheus text, exit
  --debug[=yes|no]       extra logging (also =true/=false) [env DATALOOP_DEBUG]
  --tcp-states           per-container TCP connection states (reads
                         /proc/<pid>/net/tcp and tcp6: ~1 ms per container)
                         [env DATALOOP_TCP_STATES=yes; default no]
  --server URL           agent API base URL (https://; http:// for testing)
                         [env DATALOOP_SERVER; default https://agent.dataloop.io]
  --graphite HOST:PORT   Graphite plaintext sink, tls://HOST:PORT for TLS; the
                         port is required [env DATALOOP_GRAPHITE; default none]
  --series-url URL       HTTPS series sink .../v2/accounts/<account>/series
                         [env DATALOOP_SERIES_URL; default none]
  --ca-file PATH         extra PEM roots; certificates are always verified
                         [env DATALOOP_CA_FILE; default none]
  --buffer-samples N     samples kept while the backend is unreachable
                         [env DATALOOP_BUFFER_SAMPLES; default 10000]
  --help                 this text
  --version              the version

Environment:
  DATALOOP_AGENT_KEY     API key; needed only for uploading (default: none, local mode)
  DATALOOP_NAME          name of this agent (default: the host name)
  DATALOOP_TAGS          comma-separated tags of the host agent (default: {tags})
  DATALOOP_FINGERPRINT   fixed fingerprint, a UUID (default: derived from the host id)
  DATALOOP_DEBUG         yes/no/true/false (default: no)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY (and lower-case)
                         proxies for the upload, read as curl reads them;
                         a proxy is http://HOST[:PORT] or HOST:PORT
",
        ver = env!("CARGO_PKG_VERSION"),
        sock = DEFAULT_SOCKET,
        podman = PODMAN_SOCKET,
        ctrd = CONTAINERD_STATE,
        crio = CRIO_STATE,
        listen = DEFAULT_LISTEN,
        interval = DEFAULT_INTERVAL,
        tags = DEFAULT_TAGS,
    )
}

/// Parses flags (without the program name) and the environment.
/// `path_exists` is consulted for the default rootfs and to validate `--rootfs`.
pub fn parse<I, E, P>(args: I, env: E, path_exists: P) -> Result<Command, SettingError>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
    P: Fn(&Path) -> bool,
{
    let mut rootfs = None;
    let mut socket = None;
    let mut runtime = None;
    let mut containerd_state = None;
    let mut crio_state = None;
    let mut listen = None;
    let mut interval = None;
    let mut once = false;
    let mut debug_flag: Option<bool> = None;
    let mut tcp_flag: Option<bool> = None;
    let mut upload_flags: Vec<(&'static str, String)> = Vec::new();

    let mut args = args.into_iter();
    let mut position = 0;
    while let Some(arg) = args.next() {
        position += 1;
        if !arg.starts_with('-') || arg == "-" {
            // Never echoed: a stray value may be a URL with a key in it.
            return Err(err(
                &format!("argument {position}"),
                "not a flag (flags start with --, see --help)",
            ));
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        // A switch takes no value, except `--debug=yes|no|true|false` (and
        // `--tcp-states=…`), the words its variable takes.
        let switch = |flag: &str| -> Result<bool, SettingError> {
            match &inline {
                None => Ok(true),
                Some(v) => yes_no(v).ok_or_else(|| {
                    err(
                        flag,
                        format!(
                            "{v:?}: use --{} alone, or =yes, =no, =true or =false",
                            &flag[2..]
                        ),
                    )
                }),
            }
        };
        let no_value = |flag: &str| -> Result<(), SettingError> {
            match inline {
                None => Ok(()),
                Some(_) => Err(err(flag, "takes no value")),
            }
        };
        let mut value = |flag: &str| -> Result<String, SettingError> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(err(flag, "needs a value")),
            }
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--once" => {
                no_value("--once")?;
                once = true
            }
            "--debug" => debug_flag = Some(switch("--debug")?),
            "--tcp-states" => tcp_flag = Some(switch("--tcp-states")?),
            "--rootfs" => rootfs = Some(("--rootfs", value("--rootfs")?)),
            "--docker-socket" => socket = Some(value("--docker-socket")?),
            "--runtime" => runtime = Some(("--runtime", value("--runtime")?)),
            "--containerd-state" => {
                containerd_state = Some(("--containerd-state", value("--containerd-state")?))
            }
            "--crio-state" => crio_state = Some(("--crio-state", value("--crio-state")?)),
            "--listen" => listen = Some(("--listen", value("--listen")?)),
            "--interval" => interval = Some(("--interval", value("--interval")?)),
            other => match UPLOAD_FLAGS.iter().find(|(f, _)| *f == other) {
                Some(&(flag, var)) => {
                    let v = value(flag)?;
                    upload_flags.retain(|(x, _)| *x != var);
                    upload_flags.push((var, v));
                }
                None if other.starts_with("--")
                    && other.len() <= 40
                    && other[2..]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
                {
                    return Err(err(other, "unknown flag (see --help)"))
                }
                // Not echoed: it may be a mistyped value.
                None => {
                    return Err(err(
                        &format!("argument {position}"),
                        "unknown flag (flags start with --, see --help)",
                    ))
                }
            },
        }
    }

    let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());

    let rootfs =
        match rootfs.or_else(|| nonempty("DATALOOP_ROOTFS").map(|v| ("DATALOOP_ROOTFS", v))) {
            Some((setting, v)) => {
                let p = PathBuf::from(&v);
                if !path_exists(&p.join("proc")) {
                    return Err(err(setting, format!("{v:?} has no proc directory")));
                }
                p
            }
            None if path_exists(Path::new("/rootfs/proc")) => PathBuf::from("/rootfs"),
            None => PathBuf::from("/"),
        };

    let runtime =
        match runtime.or_else(|| nonempty("DATALOOP_RUNTIME").map(|v| ("DATALOOP_RUNTIME", v))) {
            Some((setting, v)) => RuntimeChoice::parse(&v).ok_or_else(|| {
                err(
                    setting,
                    format!("{v:?} is not one of auto, docker, containerd, crio, podman"),
                )
            })?,
            None => RuntimeChoice::Auto,
        };
    let state_dir = |given: Option<(&'static str, String)>,
                     var: &'static str,
                     default: &str|
     -> Result<PathBuf, SettingError> {
        match given.or_else(|| nonempty(var).map(|v| (var, v))) {
            Some((setting, v)) if !v.starts_with('/') => Err(err(
                setting,
                format!("{v:?} is not an absolute directory path"),
            )),
            Some((_, v)) => Ok(PathBuf::from(v)),
            None => Ok(rootfs.join(default)),
        }
    };
    let containerd_state = state_dir(
        containerd_state,
        "DATALOOP_CONTAINERD_STATE",
        CONTAINERD_STATE,
    )?;
    let crio_state = state_dir(crio_state, "DATALOOP_CRIO_STATE", CRIO_STATE)?;

    let docker_socket = match socket {
        Some(v) if v.is_empty() => return Err(err("--docker-socket", "must not be empty")),
        Some(v) => PathBuf::from(v),
        None => match nonempty("DOCKER_HOST") {
            Some(v) => match v.strip_prefix("unix://") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                // Not echoed: a tcp:// or ssh:// URL may carry user info.
                _ => {
                    return Err(err(
                        "DOCKER_HOST",
                        "only unix:///path sockets are supported",
                    ))
                }
            },
            None if runtime == RuntimeChoice::Podman => PathBuf::from(PODMAN_SOCKET),
            None => PathBuf::from(DEFAULT_SOCKET),
        },
    };

    let (setting, listen_text) = listen
        .or_else(|| nonempty("DATALOOP_LISTEN").map(|v| ("DATALOOP_LISTEN", v)))
        .unwrap_or(("--listen", DEFAULT_LISTEN.to_owned()));
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        err(
            setting,
            format!("{listen_text:?} is not an address like 0.0.0.0:8000"),
        )
    })?;

    let interval = match interval
        .or_else(|| nonempty("DATALOOP_INTERVAL").map(|v| ("DATALOOP_INTERVAL", v)))
    {
        Some((setting, v)) => match v.trim().parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => n,
            _ => {
                return Err(err(
                    setting,
                    format!("{v:?} is not a whole number of seconds from 1 to 3600"),
                ))
            }
        },
        None => DEFAULT_INTERVAL,
    };

    let agent_key = agent_key(env("DATALOOP_AGENT_KEY"))?;

    let name = match env("DATALOOP_NAME") {
        Some(n) if n.bytes().any(|b| b.is_ascii_control()) => {
            return Err(err("DATALOOP_NAME", "contains control characters"))
        }
        Some(n) if !n.trim().is_empty() => Some(n.trim().to_owned()),
        _ => None,
    };

    let tags_text = env("DATALOOP_TAGS").unwrap_or_else(|| DEFAULT_TAGS.to_owned());
    if tags_text.bytes().any(|b| b.is_ascii_control()) {
        return Err(err("DATALOOP_TAGS", "contains control characters"));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in tags_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_owned());
        }
    }

    let fingerprint = match nonempty("DATALOOP_FINGERPRINT") {
        Some(f) => match crate::uuid::parse_uuid(f.trim()) {
            Some(bytes) => Some(crate::uuid::format_uuid(&bytes)),
            None => return Err(err("DATALOOP_FINGERPRINT", "is not a UUID")),
        },
        None => None,
    };

    // The variable is checked even when the flag wins.
    let debug_env = parse_yes_no(&env, "DATALOOP_DEBUG")?;
    let debug = debug_flag.unwrap_or(debug_env);
    let tcp_env = parse_yes_no(&env, "DATALOOP_TCP_STATES")?;
    let tcp_states = tcp_flag.unwrap_or(tcp_env);

    Ok(Command::Run(Box::new(Config {
        rootfs,
        docker_socket,
        runtime,
        containerd_state,
        crio_state,
        listen,
        interval: Duration::from_secs(interval),
        once,
        agent_key,
        name,
        tags,
        fingerprint,
        debug,
        tcp_states,
        upload_flags,
    })))
}

/// `yes/no/true/false`, case-insensitive.
fn yes_no(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// `yes/no/true/false`, case-insensitive; unset or empty is no.
fn parse_yes_no<E: Fn(&str) -> Option<String>>(env: &E, name: &str) -> Result<bool, SettingError> {
    match env(name) {
        None => Ok(false),
        Some(v) if v.trim().is_empty() => Ok(false),
        Some(v) => {
            yes_no(&v).ok_or_else(|| err(name, format!("{v:?}: use yes, no, true or false")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, SettingError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let exists = |p: &Path| p == Path::new("/rootfs/proc") || p == Path::new("/host/proc");
        match parse(
            args.iter().map(|s| s.to_string()),
            |k| env.get(k).cloned(),
            exists,
        )? {
            Command::Run(c) => Ok(*c),
            other => panic!("expected a config, got {other:?}"),
        }
    }

    fn setting_of(r: Result<Config, SettingError>) -> String {
        r.expect_err("should be rejected").setting
    }

    #[test]
    fn defaults() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.rootfs, PathBuf::from("/rootfs"));
        assert_eq!(c.docker_socket, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(c.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(c.interval, Duration::from_secs(30));
        assert_eq!(c.tags, vec!["docker".to_string()]);
        assert!(c.agent_key.is_none() && c.name.is_none() && c.fingerprint.is_none());
        assert!(!c.once && !c.debug);
    }

    #[test]
    fn rootfs_defaults_to_slash_without_rootfs_proc() {
        let c = parse(std::iter::empty(), |_| None, |_| false).unwrap();
        match c {
            Command::Run(c) => assert_eq!(c.rootfs, PathBuf::from("/")),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_win_over_env() {
        let c = run(
            &[
                "--interval",
                "5",
                "--listen=127.0.0.1:9000",
                "--docker-socket",
                "/tmp/d.sock",
                "--rootfs",
                "/host",
            ],
            &[
                ("DATALOOP_INTERVAL", "7"),
                ("DATALOOP_LISTEN", "0.0.0.0:1"),
                ("DOCKER_HOST", "unix:///x.sock"),
            ],
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.docker_socket, PathBuf::from("/tmp/d.sock"));
        assert_eq!(c.rootfs, PathBuf::from("/host"));
    }

    #[test]
    fn env_values_apply() {
        let c = run(
            &[],
            &[
                ("DOCKER_HOST", "unix:///run/user/1000/docker.sock"),
                ("DATALOOP_INTERVAL", "60"),
                ("DATALOOP_NAME", " web-1 "),
                ("DATALOOP_TAGS", "a, b,,a,c"),
                (
                    "DATALOOP_FINGERPRINT",
                    "739D4A2E-D99E-5A2E-B29A-6B886D59DF5F",
                ),
                ("DATALOOP_DEBUG", "Yes"),
                ("DATALOOP_AGENT_KEY", "k3y"),
            ],
        )
        .unwrap();
        assert_eq!(c.docker_socket, PathBuf::from("/run/user/1000/docker.sock"));
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.name.as_deref(), Some("web-1"));
        assert_eq!(c.tags, vec!["a", "b", "c"]);
        assert_eq!(
            c.fingerprint.as_deref(),
            Some("739d4a2e-d99e-5a2e-b29a-6b886d59df5f")
        );
        assert!(c.debug);
        assert_eq!(c.agent_key.as_ref().map(Secret::expose), Some("k3y"));
    }

    #[test]
    fn upload_flags_overlay_their_variables() {
        let c = run(&["--server", "https://a.example", "--graphite=g:2003"], &[]).unwrap();
        assert_eq!(
            c.upload_flags,
            vec![
                ("DATALOOP_SERVER", "https://a.example".to_string()),
                ("DATALOOP_GRAPHITE", "g:2003".to_string())
            ]
        );
        assert_eq!(
            c.upload_env("DATALOOP_SERVER").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(c.flag_for("DATALOOP_GRAPHITE"), Some("--graphite"));
        assert_eq!(c.flag_for("DATALOOP_CA_FILE"), None);
        assert_eq!(setting_of(run(&["--ca-file"], &[])), "--ca-file");
    }

    #[test]
    fn runtime_and_state_directories() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.runtime, RuntimeChoice::Auto);
        // Below the rootfs (the test's default one is /rootfs).
        assert_eq!(c.containerd_state, PathBuf::from("/rootfs/run/containerd"));
        assert_eq!(
            c.crio_state,
            PathBuf::from("/rootfs/run/containers/storage")
        );
        let c = run(
            &["--runtime", "podman", "--containerd-state=/s/ctrd"],
            &[("DATALOOP_CRIO_STATE", "/s/crio")],
        )
        .unwrap();
        assert_eq!(c.runtime, RuntimeChoice::Podman);
        assert_eq!(c.docker_socket, PathBuf::from(PODMAN_SOCKET));
        assert_eq!(c.containerd_state, PathBuf::from("/s/ctrd"));
        assert_eq!(c.crio_state, PathBuf::from("/s/crio"));
        let c = run(
            &["--runtime", "CRI-O"],
            &[("DOCKER_HOST", "unix:///d.sock")],
        )
        .unwrap();
        assert_eq!(c.runtime, RuntimeChoice::Crio);
        assert_eq!(c.docker_socket, PathBuf::from("/d.sock"));
        assert_eq!(setting_of(run(&["--runtime", "rkt"], &[])), "--runtime");
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_RUNTIME", "lxc")])),
            "DATALOOP_RUNTIME"
        );
        assert_eq!(
            setting_of(run(&["--containerd-state", "run/containerd"], &[])),
            "--containerd-state"
        );
        assert_eq!(setting_of(run(&["--crio-state"], &[])), "--crio-state");
    }

    #[test]
    fn bad_values_name_their_setting() {
        assert_eq!(setting_of(run(&["--interval", "0"], &[])), "--interval");
        assert_eq!(setting_of(run(&["--interval", "3601"], &[])), "--interval");
        assert_eq!(setting_of(run(&["--interval", "abc"], &[])), "--interval");
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_INTERVAL", "-3")])),
            "DATALOOP_INTERVAL"
        );
        assert_eq!(setting_of(run(&["--listen", "8000"], &[])), "--listen");
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_LISTEN", "nope")])),
            "DATALOOP_LISTEN"
        );
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_FINGERPRINT", "abc")])),
            "DATALOOP_FINGERPRINT"
        );
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_DEBUG", "maybe")])),
            "DATALOOP_DEBUG"
        );
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_TCP_STATES", "1")])),
            "DATALOOP_TCP_STATES"
        );
        assert!(run(&["--tcp-states"], &[]).unwrap().tcp_states);
        assert!(
            run(&[], &[("DATALOOP_TCP_STATES", "YES")])
                .unwrap()
                .tcp_states
        );
        assert_eq!(
            setting_of(run(&[], &[("DOCKER_HOST", "tcp://1.2.3.4:2375")])),
            "DOCKER_HOST"
        );
        assert_eq!(setting_of(run(&["--rootfs", "/nowhere"], &[])), "--rootfs");
        assert_eq!(setting_of(run(&["--interval"], &[])), "--interval");
        assert_eq!(setting_of(run(&["--bogus"], &[])), "--bogus");
        assert_eq!(
            setting_of(run(&[], &[("DATALOOP_TAGS", "a\r\nb")])),
            "DATALOOP_TAGS"
        );
    }

    #[test]
    fn debug_and_tcp_states_switches() {
        assert!(run(&["--debug"], &[]).unwrap().debug);
        assert!(run(&["--debug=yes"], &[]).unwrap().debug);
        assert!(run(&["--debug=TRUE"], &[]).unwrap().debug);
        assert!(!run(&["--debug=no"], &[]).unwrap().debug);
        assert!(
            !run(&["--debug=false"], &[("DATALOOP_DEBUG", "yes")])
                .unwrap()
                .debug
        );
        assert!(
            run(&["--debug"], &[("DATALOOP_DEBUG", "no")])
                .unwrap()
                .debug
        );
        assert!(run(&["--tcp-states=yes"], &[]).unwrap().tcp_states);
        assert!(!run(&["--tcp-states=no"], &[]).unwrap().tcp_states);
        for args in [
            &["--debug=maybe"][..],
            &["--debug="],
            &["--debug=1"],
            &["--debug", "maybe"],
        ] {
            let e = run(args, &[]).unwrap_err();
            assert!(
                e.setting == "--debug" || e.setting == "argument 2",
                "{args:?}: {e}"
            );
        }
        assert_eq!(setting_of(run(&["--debug=maybe"], &[])), "--debug");
        assert_eq!(
            setting_of(run(&["--tcp-states=maybe"], &[])),
            "--tcp-states"
        );
        assert_eq!(setting_of(run(&["--once=no"], &[])), "--once");
        // A bad variable stops start-up even when the flag wins.
        assert_eq!(
            setting_of(run(&["--debug"], &[("DATALOOP_DEBUG", "maybe")])),
            "DATALOOP_DEBUG"
        );
    }

    #[test]
    fn stray_arguments_are_not_echoed() {
        for args in [
            &["https://SEKRIT@127.0.0.1:1/"][..],
            &["--server", "https://a.example", "SEKRIT"],
            &["-server=https://SEKRIT@h/"],
            &["--SEKRIT@h=x"],
            &["--debug", "SEKRIT"],
        ] {
            let e = run(args, &[]).unwrap_err();
            assert!(e.setting.starts_with("argument "), "{args:?}: {e}");
            assert!(!e.to_string().contains("SEKRIT"), "{args:?}: {e}");
        }
        assert_eq!(setting_of(run(&["--bogus=SEKRIT"], &[])), "--bogus");
        for (var, value) in [
            ("DOCKER_HOST", "tcp://user:SEKRIT@h:2375"),
            ("DATALOOP_FINGERPRINT", "SEKRIT"),
        ] {
            let e = run(&[], &[(var, value)]).unwrap_err();
            assert_eq!(e.setting, var);
            assert!(!e.to_string().contains("SEKRIT"), "{var}: {e}");
        }
    }

    #[test]
    fn key_is_never_in_errors_or_debug_output() {
        let e = run(&[], &[("DATALOOP_AGENT_KEY", "sekrit\nvalue")]).unwrap_err();
        assert_eq!(e.setting, "DATALOOP_AGENT_KEY");
        assert!(!e.to_string().contains("sekrit"));
        let c = run(&[], &[("DATALOOP_AGENT_KEY", "sekrit-value")]).unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn help_lists_every_setting() {
        let h = help_text();
        for s in [
            "--rootfs",
            "--docker-socket",
            "--listen",
            "--interval",
            "--once",
            "--help",
            "--version",
            "DATALOOP_AGENT_KEY",
            "DATALOOP_NAME",
            "DATALOOP_TAGS",
            "DATALOOP_FINGERPRINT",
            "DATALOOP_DEBUG",
            "DATALOOP_ROOTFS",
            "DATALOOP_LISTEN",
            "DATALOOP_INTERVAL",
            "DOCKER_HOST",
            "--server",
            "--graphite",
            "--series-url",
            "--ca-file",
            "--buffer-samples",
            "DATALOOP_SERVER",
            "DATALOOP_GRAPHITE",
            "DATALOOP_SERIES_URL",
            "DATALOOP_CA_FILE",
            "DATALOOP_BUFFER_SAMPLES",
            "--tcp-states",
            "DATALOOP_TCP_STATES",
            "HTTPS_PROXY",
            "NO_PROXY",
        ] {
            assert!(h.contains(s), "help misses {s}");
        }
    }
}
