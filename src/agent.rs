//! The event loop: one `mio::Poll`, one thread. Everything the agent does is
//! a reaction to a socket becoming ready, a timer falling due, or a signal.

use std::io::{self, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::cgroup_source::{self, CgroupSource};
use crate::config::{Config, RuntimeChoice};
use crate::docker::client::{DockerClient, Output};
use crate::docker::socket_watch::SocketWatch;
use crate::docker::sync::{Action, DockerSync};
use crate::metrics::Collector;
use crate::pages::Pages;
use crate::registry::{self, Registry, SelfIdentity};
use crate::server::{Server, StreamState};
use crate::sys::SignalFd;
use crate::tracking::Followers;
use crate::upload::{processes_of_pids, HostIdentity, UploadSettings, Uploader};
use crate::{debug, error, info, warn};

const SIGNALS: Token = Token(0);
const LISTENER: Token = Token(1);
const DOCKER_API: Token = Token(2);
const DOCKER_EVENTS: Token = Token(3);
const SOCKET_WATCH: Token = Token(4);
const CGROUP_TREE: Token = Token(5);
const CONNECTIONS: usize = 16;
/// The uploader's tokens start after the server's connection slots.
const UPLOAD_BASE: usize = CONNECTIONS + crate::server::MAX_CONNECTIONS;

/// `--once`: how long to wait for Docker before reading what is there.
const ONCE_SYNC_WAIT: Duration = Duration::from_secs(5);
/// Containers read per loop turn while a collection cycle is in progress
/// (a few milliseconds of reads): sockets are served between slices.
const COLLECT_SLICE: usize = 128;
/// SIGTERM/SIGINT: deregistering and flushing may take this long at most.
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(4800);

/// Why the agent could not start: a setting (exit 2) or the system (exit 1).
pub enum StartError {
    Setting(&'static str, io::Error),
    Io(io::Error),
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// Progress of `--once`.
enum Once {
    /// Waiting for the first sync with Docker (or for it to fail).
    ExpectSync { until: Instant },
    /// First reading taken; the second is due at `at`.
    ExpectSecondReading { at: Instant },
}

pub struct Agent {
    cfg: Config,
    poll: Poll,
    signals: SignalFd,
    server: Option<Server>,
    docker: DockerClient,
    /// What the Docker replies and events mean; the client only moves bytes.
    sync: DockerSync,
    /// The socket's directory, watched: a reappearing socket ends the
    /// backoff at once.
    socket_watch: Option<SocketWatch>,
    /// The Docker API source runs (`--runtime` auto with a socket, docker, podman).
    docker_api: bool,
    /// The cgroup-tree source (containerd, CRI-O), when it runs.
    cgroups: Option<CgroupSource>,
    registry: Registry,
    collector: Collector,
    host_id: Option<String>,
    fingerprint: Option<String>,
    next_collect: Instant,
    /// The wall clock at the start of the cycle being read.
    cycle_unix: f64,
    once: Option<Once>,
    outputs: Vec<Output>,
    /// Upload settings until the uploader can start (it needs the host
    /// fingerprint and, when Docker answers, the daemon's host name).
    upload_settings: Option<UploadSettings>,
    uploader: Option<Uploader>,
    /// `/info` `Name`: the host's name as Docker sees it.
    docker_host_name: Option<String>,
    /// Set on SIGTERM/SIGINT: exit once the uploader is done or by then.
    shutdown_by: Option<Instant>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Agent {
    pub fn new(cfg: Config, upload: Option<UploadSettings>) -> Result<Agent, StartError> {
        let poll = Poll::new()?;
        let signals = SignalFd::new()?;
        poll.registry().register(
            &mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&signals)),
            SIGNALS,
            Interest::READABLE,
        )?;
        let server = if cfg.once {
            None
        } else {
            let s =
                Server::bind(cfg.listen, poll.registry(), LISTENER, CONNECTIONS).map_err(|e| {
                    StartError::Setting(
                        "--listen",
                        io::Error::new(e.kind(), format!("{}: {e}", cfg.listen)),
                    )
                })?;
            Some(s)
        };
        let host_id = registry::host_id(&cfg.rootfs);
        let fingerprint = cfg.fingerprint.clone().or_else(|| {
            host_id
                .as_deref()
                .map(|h| registry::derive_host_fingerprint(h, cfg.name.as_deref()))
        });
        let kubernetes = std::env::var_os("KUBERNETES_PORT").is_some();
        let registry = Registry::new(SelfIdentity::detect(), kubernetes);
        let mut collector = Collector::new(&cfg.rootfs, fingerprint.as_deref().unwrap_or(""));
        collector.set_tcp_states(cfg.tcp_states);
        let (docker_api, tree_settings) = choose_sources(&cfg);
        let cgroups = match tree_settings {
            Some(s) => match CgroupSource::new(collector.hierarchies(), &s) {
                Ok(src) => {
                    poll.registry().register(
                        &mut SourceFd(&src.raw_fd()),
                        CGROUP_TREE,
                        Interest::READABLE,
                    )?;
                    Some(src)
                }
                Err(e) => {
                    warn!("cgroups: cannot watch the cgroup tree ({e}); containerd and CRI-O containers are not seen");
                    None
                }
            },
            None => None,
        };
        let docker = DockerClient::new(cfg.docker_socket.clone(), DOCKER_API, DOCKER_EVENTS);
        let socket_watch = match docker_api.then(|| SocketWatch::new(&cfg.docker_socket)) {
            None => None,
            Some(w) => match w {
                Ok(w) => {
                    let fd = w.raw_fd();
                    poll.registry().register(
                        &mut SourceFd(&fd),
                        SOCKET_WATCH,
                        Interest::READABLE,
                    )?;
                    Some(w)
                }
                Err(e) => {
                    debug!("docker: not watching the socket's directory ({e}); reconnecting on backoff only");
                    None
                }
            },
        };
        let now = Instant::now();
        let once = cfg.once.then_some(Once::ExpectSync {
            until: now + ONCE_SYNC_WAIT,
        });
        Ok(Agent {
            next_collect: now + cfg.interval,
            cycle_unix: 0.0,
            cfg,
            poll,
            signals,
            server,
            docker,
            sync: DockerSync::new(),
            socket_watch,
            docker_api,
            cgroups,
            registry,
            collector,
            host_id,
            fingerprint,
            once,
            outputs: Vec::new(),
            upload_settings: upload,
            uploader: None,
            docker_host_name: None,
            shutdown_by: None,
        })
    }

    pub fn run(&mut self) -> io::Result<()> {
        if let Some(s) = &self.server {
            info!("listening on {}", s.local_addr);
        }
        info!(
            "starting: rootfs {}, interval {}s, {} mode",
            self.cfg.rootfs.display(),
            self.cfg.interval.as_secs(),
            if self.cfg.agent_key.is_some() {
                "upload"
            } else {
                "local"
            }
        );
        match &self.fingerprint {
            Some(f) => info!("fingerprint {f}"),
            None if self.docker_api => {
                info!("no host id visible; the fingerprint will come from Docker's daemon id")
            }
            None => info!(
                "no host id visible and no Docker API: no fingerprint (mount /etc/machine-id or set DATALOOP_FINGERPRINT)"
            ),
        }
        info!("{}", self.registry.self_identity.describe());
        let now = Instant::now();
        if let Some(c) = self.cgroups.as_mut() {
            c.walk(now);
        }
        info!("{}", self.describe_sources());
        if self.docker_api {
            self.sync.connect();
            self.pump_docker(now);
        }
        self.pump_cgroups(now);
        if !self.docker_api {
            // No Docker daemon to learn the host's identity from.
            self.start_uploader(now);
        }
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = self.next_wake().map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        if let Some(sig) = self.read_signals() {
                            if self.begin_shutdown(sig, now) {
                                return Ok(());
                            }
                        }
                    }
                    LISTENER => {
                        if let Some(s) = self.server.as_mut() {
                            s.accept(self.poll.registry(), now);
                        }
                    }
                    SOCKET_WATCH => {
                        if self.socket_watch.as_mut().is_some_and(SocketWatch::drain) {
                            self.sync.socket_appeared(now);
                        }
                    }
                    CGROUP_TREE => {
                        if let Some(c) = self.cgroups.as_mut() {
                            c.ready(now);
                        }
                        self.pump_cgroups(now);
                    }
                    t @ (DOCKER_API | DOCKER_EVENTS) => {
                        self.docker
                            .ready(self.poll.registry(), t, now, &mut self.outputs);
                    }
                    t if self.uploader.as_ref().is_some_and(|u| u.owns(t)) => {
                        if let Some(u) = self.uploader.as_mut() {
                            u.ready(self.poll.registry(), t, now);
                        }
                    }
                    t => self.serve(t, now),
                }
            }
            self.pump_docker(now);
            if self.run_timers(Instant::now())? {
                return Ok(());
            }
            if let Some(by) = self.shutdown_by {
                let done = self
                    .uploader
                    .as_ref()
                    .is_none_or(Uploader::is_shutdown_complete);
                if done || Instant::now() >= by {
                    if !done {
                        warn!("upload: exiting before the backend confirmed everything");
                    }
                    return Ok(());
                }
            }
        }
    }

    fn read_signals(&mut self) -> Option<i32> {
        let mut last = None;
        while let Ok(Some(sig)) = self.signals.read() {
            last = Some(sig);
        }
        last
    }

    fn next_wake(&self) -> Option<Instant> {
        if self.collector.cycle_in_progress() {
            // The next slice is due at once (after whatever is ready).
            return Some(Instant::now());
        }
        let mut t = Some(self.next_collect);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.collector.deadline());
        consider(self.sync.deadline());
        consider(self.cgroups.as_ref().and_then(CgroupSource::deadline));
        consider(self.docker.deadline());
        consider(self.server.as_ref().and_then(Server::next_deadline));
        consider(self.uploader.as_ref().and_then(Uploader::next_deadline));
        consider(self.shutdown_by);
        match &self.once {
            Some(Once::ExpectSync { until }) => consider(Some(*until)),
            Some(Once::ExpectSecondReading { at }) => consider(Some(*at)),
            None => {}
        }
        t
    }

    /// Runs what is due. Returns true when `--once` is finished.
    fn run_timers(&mut self, now: Instant) -> io::Result<bool> {
        if let Some(s) = self.server.as_mut() {
            s.expire(self.poll.registry(), now);
        }
        self.docker
            .expire(self.poll.registry(), now, &mut self.outputs);
        self.pump_docker(now);
        self.sync.tick(now);
        self.pump_docker(now);
        if let Some(c) = self.cgroups.as_mut() {
            c.tick(now);
            self.pump_cgroups(now);
        }
        self.collector.scan_new(now);
        if self.next_collect <= now {
            self.cycle_unix = unix_now();
            self.collector.begin_cycle(now, self.cycle_unix);
            while self.next_collect <= now {
                self.next_collect += self.cfg.interval;
            }
        }
        if self.collector.cycle_in_progress() && self.collector.continue_cycle(COLLECT_SLICE) {
            self.cycle_read(self.cycle_unix);
        }
        if let Some(u) = self.uploader.as_mut() {
            if u.next_deadline().is_some_and(|t| t <= now) {
                u.tick(self.poll.registry(), now);
            }
        }
        self.step_once(now)
    }

    /// A whole cycle at once (`--once`).
    fn collect(&mut self, now: Instant) {
        let unix = unix_now();
        self.collector.collect(now, unix);
        self.cycle_read(unix);
    }

    /// Every container of the cycle was read: its samples go to the uploader.
    fn cycle_read(&mut self, unix: f64) {
        self.upload_cycle(unix);
        debug!(
            "collected {} containers in {:.3} ms",
            self.collector.len(),
            self.collector.last_cycle_seconds().unwrap_or(0.0) * 1e3
        );
    }

    fn step_once(&mut self, now: Instant) -> io::Result<bool> {
        match self.once {
            Some(Once::ExpectSync { until }) => {
                let tree_synced = self.cgroups.as_ref().is_none_or(CgroupSource::is_synced);
                let synced = tree_synced
                    && (!self.docker_api || (self.sync.is_synced() && !self.docker.is_busy()));
                let gave_up = self.docker_api && self.sync.is_down();
                if synced || gave_up || until <= now {
                    if !synced {
                        warn!("--once: reading without a complete container list from Docker");
                    }
                    self.collect(now);
                    self.once = Some(Once::ExpectSecondReading {
                        at: now + Duration::from_secs(1),
                    });
                }
                Ok(false)
            }
            Some(Once::ExpectSecondReading { at }) if at <= now => {
                self.collect(now);
                let mut text = Vec::new();
                let mut stream = StreamState::default();
                self.pages()
                    .produce_metrics(&mut stream, &mut text, usize::MAX);
                let mut stdout = io::stdout().lock();
                stdout.write_all(&text)?;
                stdout.flush()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    // ---- Docker -------------------------------------------------------

    /// Feeds the client's outputs to the sync and carries out what it asks,
    /// until neither has more (a request may fail at once and so produce
    /// another output).
    fn pump_docker(&mut self, now: Instant) {
        loop {
            while let Some(action) = self.sync.next_action() {
                self.docker_action(action, now);
            }
            if self.outputs.is_empty() {
                return;
            }
            for out in std::mem::take(&mut self.outputs) {
                self.sync.handle(out, now);
                while let Some(action) = self.sync.next_action() {
                    self.docker_action(action, now);
                }
            }
        }
    }

    fn docker_action(&mut self, action: Action, now: Instant) {
        let registry = self.poll.registry();
        match action {
            Action::Send(r) => self.docker.request(registry, r, now, &mut self.outputs),
            Action::SetVersion(api) => self.docker.set_version(api),
            Action::OpenEvents(path) => self.docker.open_events(registry, &path, &mut self.outputs),
            Action::Reset => self.docker.reset(registry),
            Action::Daemon { id, name } => {
                if let Some(name) = name {
                    self.docker_host_name = Some(name);
                }
                if self.fingerprint.is_none() {
                    if let Some(id) = id {
                        let f = registry::derive_host_fingerprint(&id, self.cfg.name.as_deref());
                        info!("fingerprint {f} (from the Docker daemon id)");
                        self.host_id = Some(id);
                        self.fingerprint = Some(f);
                    }
                }
                self.sync
                    .set_want_info(self.fingerprint.is_none() || self.docker_host_name.is_none());
                self.start_uploader(now);
            }
            // Without Docker the uploader starts with what is known locally.
            Action::Unavailable => self.start_uploader(now),
            Action::Change(change) => self.apply(change, now),
        }
    }

    fn apply(&mut self, change: crate::source::Change, now: Instant) {
        let mut followers = Followers {
            registry: &mut self.registry,
            collector: &mut self.collector,
            uploader: self.uploader.as_mut(),
            rootfs: &self.cfg.rootfs,
        };
        followers.apply(change, now, unix_now());
    }

    // ---- cgroup tree --------------------------------------------------

    /// Applies what the cgroup-tree source learned.
    fn pump_cgroups(&mut self, now: Instant) {
        while let Some(change) = self.cgroups.as_mut().and_then(CgroupSource::next_change) {
            self.apply(change, now);
        }
    }

    /// The one start-up line naming the container sources.
    fn describe_sources(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.docker_api {
            parts.push(format!(
                "the Docker API at {}",
                self.cfg.docker_socket.display()
            ));
        }
        if let Some(c) = &self.cgroups {
            let mut runtimes: Vec<String> = Vec::new();
            let s = c.settings();
            for (name, dir) in [
                ("containerd", &s.containerd_state),
                ("CRI-O", &s.crio_state),
            ] {
                if let Some(dir) = dir {
                    let state = if dir.is_dir() {
                        ""
                    } else {
                        ", missing: containers are named by their cgroups alone"
                    };
                    runtimes.push(format!("{name} files at {}{state}", dir.display()));
                }
            }
            parts.push(format!(
                "the cgroup tree at {} ({}), {} containers, {} directories watched",
                c.mount().display(),
                runtimes.join("; "),
                c.known(),
                c.watches()
            ));
        }
        if parts.is_empty() {
            "container sources: none".to_owned()
        } else {
            format!("container sources: {}", parts.join("; "))
        }
    }

    // ---- Upload -------------------------------------------------------

    /// Starts the uploader once its identity is known: the host fingerprint,
    /// and Docker's view of the host name when the daemon answers.
    fn start_uploader(&mut self, now: Instant) {
        if self.uploader.is_some() || self.upload_settings.is_none() {
            return;
        }
        let Some(finger) = self.fingerprint.clone() else {
            return;
        };
        let local_name = crate::sys::hostname();
        let hostname = self
            .docker_host_name
            .clone()
            .unwrap_or_else(|| local_name.clone());
        let host = HostIdentity {
            name: self.cfg.name.clone().unwrap_or_else(|| hostname.clone()),
            mac: self.host_id.clone().unwrap_or_else(|| finger.clone()),
            tags: self.cfg.tags.clone(),
            hostname,
            finger,
        };
        let settings = self.upload_settings.take().expect("checked above");
        match Uploader::new(settings, host, UPLOAD_BASE, now) {
            Ok(mut u) => {
                for info in self.registry.iter() {
                    u.container_started(info, self.container_processes(&info.id), now);
                }
                self.uploader = Some(u);
                // Process lists are uploaded: let the collector tell when they change.
                self.collector.set_process_fingerprints(true);
            }
            // Validated at start-up, so this is not expected.
            Err(e) => error!("upload: cannot start: {e}"),
        }
    }

    /// `name:count` of the processes in a container.
    fn container_processes(&self, id: &str) -> Vec<String> {
        processes_of_pids(&self.cfg.rootfs, &self.collector.container_pids(id))
    }

    /// Hands one cycle's Outlyer samples (and fresh process lists) over.
    fn upload_cycle(&mut self, unix: f64) {
        let Some(u) = self.uploader.as_mut() else {
            return;
        };
        // Straight from the collector's view into the uploader, which interns
        // the names: no copy of a fingerprint per sample.
        self.collector
            .for_each_outlyer_sample(|finger, path, value| {
                u.push_samples(unix, [(finger, path, value)]);
            });
        // Process names are re-read only where the collector saw the
        // processes change (usually nowhere), not every cycle.
        let collector = &mut self.collector;
        let changed: Vec<(&str, &str)> = self
            .registry
            .iter()
            .filter(|c| collector.processes_changed(&c.id))
            .map(|c| (c.fingerprint.as_str(), c.id.as_str()))
            .collect();
        let processes: Vec<(String, Vec<String>)> = changed
            .into_iter()
            .map(|(finger, id)| (finger.to_owned(), self.container_processes(id)))
            .collect();
        if let Some(u) = self.uploader.as_mut() {
            for (finger, procs) in processes {
                u.update_processes(&finger, procs);
            }
        }
    }

    /// SIGTERM/SIGINT. Returns true when the agent can exit at once.
    fn begin_shutdown(&mut self, sig: i32, now: Instant) -> bool {
        if self.shutdown_by.is_some() {
            info!("received {} again, exiting now", signal_name(sig));
            return true;
        }
        match self.uploader.as_mut() {
            Some(u) => {
                info!(
                    "received {}: deregistering {} containers and flushing (at most {:.1}s)",
                    signal_name(sig),
                    self.registry.len(),
                    SHUTDOWN_LIMIT.as_secs_f64()
                );
                u.shutdown(self.poll.registry(), now);
                self.shutdown_by = Some(now + SHUTDOWN_LIMIT);
                false
            }
            None => {
                info!("received {}, exiting", signal_name(sig));
                true
            }
        }
    }

    // ---- HTTP ---------------------------------------------------------

    fn serve(&mut self, token: Token, now: Instant) {
        let Some(server) = self.server.as_mut() else {
            return;
        };
        if !server.owns(token) {
            return;
        }
        // Disjoint borrows: the server drives the socket, the pages read
        // the agent's state.
        let mut pages = Pages {
            fingerprint: self.fingerprint.as_deref(),
            collector: &self.collector,
            uploader: self.uploader.as_ref(),
            containers: self.registry.len(),
            docker: self.docker_api.then_some(&self.sync),
            tree_synced: self.cgroups.as_ref().map(CgroupSource::is_synced),
            docker_socket: &self.cfg.docker_socket,
            now,
        };
        server.ready(self.poll.registry(), token, now, &mut pages);
    }

    fn pages(&self) -> Pages<'_> {
        Pages {
            fingerprint: self.fingerprint.as_deref(),
            collector: &self.collector,
            uploader: self.uploader.as_ref(),
            containers: self.registry.len(),
            docker: self.docker_api.then_some(&self.sync),
            tree_synced: self.cgroups.as_ref().map(CgroupSource::is_synced),
            docker_socket: &self.cfg.docker_socket,
            now: Instant::now(),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Whether the cgroup-tree source reads `runtime`'s files under `--runtime`.
fn tree_wants(cfg: &Config, runtime: RuntimeChoice) -> bool {
    match cfg.runtime {
        RuntimeChoice::Auto => match runtime {
            RuntimeChoice::Containerd => cfg.containerd_state.is_dir(),
            RuntimeChoice::Crio => cfg.crio_state.is_dir(),
            _ => false,
        },
        chosen => chosen == runtime,
    }
}

/// Which sources run: the Docker API (true) and the cgroup tree (its
/// settings). Under `auto` the Docker API always runs (a daemon may start
/// after the agent; an absent socket costs a watch on its directory), and
/// the cgroup tree runs when containerd's or CRI-O's state directory exists.
fn choose_sources(cfg: &Config) -> (bool, Option<cgroup_source::Settings>) {
    let containerd = tree_wants(cfg, RuntimeChoice::Containerd);
    let crio = tree_wants(cfg, RuntimeChoice::Crio);
    let docker_api = match cfg.runtime {
        RuntimeChoice::Docker | RuntimeChoice::Podman => true,
        RuntimeChoice::Containerd | RuntimeChoice::Crio => false,
        RuntimeChoice::Auto => true,
    };
    let tree = (containerd || crio).then(|| cgroup_source::Settings {
        containerd_state: containerd.then(|| cfg.containerd_state.clone()),
        crio_state: crio.then(|| cfg.crio_state.clone()),
        docker_api,
    });
    (docker_api, tree)
}
