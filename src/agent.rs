//! The event loop: one `mio::Poll`, one thread. Everything the agent does is
//! a reaction to a socket becoming ready, a timer falling due, or a signal.

use std::collections::HashSet;
use std::io::{self, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::config::Config;
use crate::docker::api::{error_message, parse_container_list, parse_info, parse_inspect};
use crate::docker::client::{DockerClient, Output, Request};
use crate::docker::events::{events_path, ContainerEvent, EventAction};
use crate::docker::version::{parse_version_body, ApiVersion};
use crate::metrics::Collector;
use crate::pages::Pages;
use crate::registry::{self, ContainerInfo, Registry, SelfIdentity};
use crate::server::{Server, StreamState};
use crate::sys::SignalFd;
use crate::upload::{processes_of_pids, HostIdentity, UploadSettings, Uploader};
use crate::{debug, error, info, warn};

const SIGNALS: Token = Token(0);
const LISTENER: Token = Token(1);
const DOCKER_API: Token = Token(2);
const DOCKER_EVENTS: Token = Token(3);
const CONNECTIONS: usize = 16;
/// The uploader's tokens start after the server's connection slots.
const UPLOAD_BASE: usize = CONNECTIONS + crate::server::MAX_CONNECTIONS;

/// Full re-list of containers, the safety net behind the events stream.
pub const RELIST_EVERY: Duration = Duration::from_secs(60);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// `--once`: how long to wait for Docker before reading what is there.
const ONCE_SYNC_WAIT: Duration = Duration::from_secs(5);
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
    registry: Registry,
    collector: Collector,
    host_id: Option<String>,
    fingerprint: Option<String>,
    docker_up: bool,
    /// Ids with an inspect queued or in flight whose answer is still wanted.
    pending: HashSet<String>,
    /// Running containers we decided not to track (so relists skip them).
    excluded: HashSet<String>,
    /// The first list after a (re)connect is a sync, later ones are checks.
    synced: bool,
    list_in_flight: bool,
    down_since: Option<Instant>,
    backoff: Duration,
    reconnect_at: Option<Instant>,
    next_collect: Instant,
    next_relist: Option<Instant>,
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
        let docker = DockerClient::new(cfg.docker_socket.clone(), DOCKER_API, DOCKER_EVENTS);
        let now = Instant::now();
        let once = cfg.once.then_some(Once::ExpectSync {
            until: now + ONCE_SYNC_WAIT,
        });
        Ok(Agent {
            next_collect: now + cfg.interval,
            cfg,
            poll,
            signals,
            server,
            docker,
            registry,
            collector,
            host_id,
            fingerprint,
            docker_up: false,
            pending: HashSet::new(),
            excluded: HashSet::new(),
            synced: false,
            list_in_flight: false,
            down_since: None,
            backoff: BACKOFF_FIRST,
            reconnect_at: None,
            next_relist: None,
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
            "starting: rootfs {}, docker {}, interval {}s, {} mode",
            self.cfg.rootfs.display(),
            self.cfg.docker_socket.display(),
            self.cfg.interval.as_secs(),
            if self.cfg.agent_key.is_some() {
                "upload"
            } else {
                "local"
            }
        );
        match &self.fingerprint {
            Some(f) => info!("fingerprint {f}"),
            None => info!("no host id visible; the fingerprint will come from Docker's daemon id"),
        }
        info!("{}", self.registry.self_identity.describe());
        let now = Instant::now();
        self.connect_docker(now);
        self.handle_docker_outputs(now);
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
            self.handle_docker_outputs(now);
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
        let mut t = Some(self.next_collect);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.next_relist);
        consider(self.reconnect_at);
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
        self.handle_docker_outputs(now);
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.connect_docker(now);
            self.handle_docker_outputs(now);
        }
        if self.next_relist.is_some_and(|t| t <= now) {
            self.next_relist = Some(now + RELIST_EVERY);
            if self.docker_up && !self.list_in_flight {
                self.request(Request::List, now);
                self.list_in_flight = true;
            }
            self.handle_docker_outputs(now);
        }
        if self.next_collect <= now {
            self.collect(now);
            while self.next_collect <= now {
                self.next_collect += self.cfg.interval;
            }
        }
        if let Some(u) = self.uploader.as_mut() {
            if u.next_deadline().is_some_and(|t| t <= now) {
                u.tick(self.poll.registry(), now);
            }
        }
        self.step_once(now)
    }

    fn collect(&mut self, now: Instant) {
        let unix = unix_now();
        self.collector.collect(now, unix);
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
                let synced = self.synced && self.pending.is_empty() && !self.docker.is_busy();
                let gave_up = !self.docker_up && self.down_since.is_some();
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

    fn request(&mut self, r: Request, now: Instant) {
        self.docker
            .request(self.poll.registry(), r, now, &mut self.outputs);
    }

    fn connect_docker(&mut self, now: Instant) {
        self.synced = false;
        self.list_in_flight = false;
        self.pending.clear();
        self.request(Request::Version, now);
    }

    fn handle_docker_outputs(&mut self, now: Instant) {
        while !self.outputs.is_empty() {
            let batch = std::mem::take(&mut self.outputs);
            for out in batch {
                self.handle_docker_output(out, now);
            }
        }
    }

    fn handle_docker_output(&mut self, out: Output, now: Instant) {
        match out {
            Output::Down(why) => self.docker_down(why, now),
            Output::BadEvent(why) => warn!("docker: skipping an event: {why}"),
            Output::EventsOpen { status } => {
                debug!("docker: events stream open ({status})");
                if status == 200 && !self.synced && !self.list_in_flight {
                    self.start_list(now);
                }
            }
            Output::Event(ev) => self.handle_event(ev, now),
            Output::Reply {
                request,
                status,
                content_type,
                body,
            } => {
                if !(200..300).contains(&status) {
                    let msg = error_message(content_type.as_deref(), &body);
                    match request {
                        Request::Inspect(id) if status == 404 => {
                            self.pending.remove(&id);
                            debug!(
                                "docker: container {} vanished before inspection",
                                registry::short_id(&id)
                            );
                        }
                        Request::Inspect(id) => {
                            self.pending.remove(&id);
                            warn!(
                                "docker: inspecting {} failed with {status}: {msg}",
                                registry::short_id(&id)
                            );
                        }
                        Request::Info => {
                            warn!("docker: /info failed with {status}: {msg}");
                            self.start_uploader(now);
                        }
                        Request::List | Request::Version => self
                            .docker_down(format!("{request:?} failed with {status}: {msg}"), now),
                    }
                    return;
                }
                match request {
                    Request::Version => self.on_version(&body, now),
                    Request::Info => self.on_info(&body, now),
                    Request::List => self.on_list(&body, now),
                    Request::Inspect(id) => self.on_inspect(&id, &body, now),
                }
            }
        }
    }

    fn docker_down(&mut self, why: String, now: Instant) {
        self.docker.reset(self.poll.registry());
        self.pending.clear();
        self.synced = false;
        self.list_in_flight = false;
        self.next_relist = None;
        if self.docker_up || self.down_since.is_none() {
            warn!(
                "docker: {why}; retrying (backoff up to {}s), keeping {} containers meanwhile",
                BACKOFF_MAX.as_secs(),
                self.registry.len()
            );
            self.down_since = Some(now);
        } else {
            debug!("docker: still unavailable: {why}");
        }
        self.docker_up = false;
        self.reconnect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        // Without Docker the uploader starts with what is known locally.
        self.start_uploader(now);
    }

    fn on_version(&mut self, body: &[u8], now: Instant) {
        let v = match parse_version_body(body) {
            Ok(v) => v,
            Err(e) => return self.docker_down(format!("unusable /version reply: {e}"), now),
        };
        let api: ApiVersion = v.negotiated();
        self.docker.set_version(api);
        if let Some(since) = self.down_since.take() {
            if self.docker_up {
                info!("docker: reconnected");
            } else {
                info!(
                    "docker: connected after {:.1}s",
                    now.duration_since(since).as_secs_f64()
                );
            }
        }
        info!(
            "docker: daemon {} (API {}), using API {api}",
            v.version, v.api_version
        );
        self.docker_up = true;
        if self.fingerprint.is_none() || self.docker_host_name.is_none() {
            self.request(Request::Info, now);
        }
        let path = events_path(api, None);
        self.docker
            .open_events(self.poll.registry(), &path, &mut self.outputs);
        // Docker ≥ 1.9 (API 1.21) answers the events request at once, so the
        // list waits for that head and no event can fall between the two.
        // Older daemons send nothing until the first event: list right away.
        if api < ApiVersion::new(1, 21) {
            self.start_list(now);
        }
    }

    fn start_list(&mut self, now: Instant) {
        self.list_in_flight = true;
        self.request(Request::List, now);
    }

    fn on_info(&mut self, body: &[u8], now: Instant) {
        match parse_info(body) {
            Ok(info) => {
                if let Some(name) = info.name.as_deref().filter(|s| !s.is_empty()) {
                    self.docker_host_name = Some(name.to_owned());
                }
                if self.fingerprint.is_none() {
                    if let Some(id) = info.id.as_deref().filter(|s| !s.is_empty()) {
                        let f = registry::derive_host_fingerprint(id, self.cfg.name.as_deref());
                        info!("fingerprint {f} (from the Docker daemon id)");
                        self.host_id = Some(id.to_owned());
                        self.fingerprint = Some(f);
                    }
                }
            }
            Err(e) => warn!("docker: unusable /info reply: {e}"),
        }
        self.start_uploader(now);
    }

    fn on_list(&mut self, body: &[u8], now: Instant) {
        self.list_in_flight = false;
        let list = match parse_container_list(body) {
            Ok(l) => l,
            Err(e) => return self.docker_down(format!("unusable container list: {e}"), now),
        };
        let first = !self.synced;
        self.synced = true;
        // Only a full sync proves the daemon usable again: a daemon that
        // answers /version but fails the list keeps backing off.
        self.backoff = BACKOFF_FIRST;
        self.next_relist = Some(now + RELIST_EVERY);
        let running: HashSet<&str> = list
            .iter()
            .filter(|c| {
                c.state
                    .as_deref()
                    .is_none_or(|s| s == "running" || s == "paused")
            })
            .map(|c| c.id.as_str())
            .collect();
        for id in self.registry.ids() {
            if !running.contains(id.as_str()) && !self.pending.contains(&id) {
                if !first {
                    warn!(
                        "docker: drift: {} was tracked but is no longer listed",
                        registry::short_id(&id)
                    );
                }
                self.untrack(&id, "not running");
            }
        }
        self.excluded.retain(|id| running.contains(id.as_str()));
        let mut new = 0;
        for id in running {
            if first && self.registry.contains(id) && !self.pending.contains(id) {
                // A resync after losing the daemon: a tracked container may
                // have been restarted meanwhile (new pid, start time,
                // cgroup) and no event said so. Inspect it once more.
                self.pending.insert(id.to_owned());
                self.request(Request::Inspect(id.to_owned()), now);
                continue;
            }
            if self.registry.contains(id) || self.excluded.contains(id) || self.pending.contains(id)
            {
                continue;
            }
            if !first {
                warn!(
                    "docker: drift: {} runs but was not tracked",
                    registry::short_id(id)
                );
            }
            new += 1;
            self.pending.insert(id.to_owned());
            self.request(Request::Inspect(id.to_owned()), now);
        }
        debug!("docker: list has {} running, {new} to inspect", list.len());
    }

    fn on_inspect(&mut self, id: &str, body: &[u8], now: Instant) {
        if !self.pending.remove(id) {
            // A die/destroy arrived meanwhile: the answer is stale.
            debug!(
                "docker: dropping a stale inspection of {}",
                registry::short_id(id)
            );
            return;
        }
        let inspected = match parse_inspect(body) {
            Ok(i) => i,
            Err(e) => {
                return warn!(
                    "docker: unusable inspection of {}: {e}",
                    registry::short_id(id)
                )
            }
        };
        if !inspected.running {
            debug!("docker: {} is not running", registry::short_id(id));
            return;
        }
        let info = inspected.info;
        if let Some(why) = self.registry.exclusion(&info) {
            if self.excluded.insert(info.id.clone()) {
                info!("not tracking {} ({}): {why}", info.name, info.short_id());
            }
            for member in self.registry.own_pod_members() {
                self.untrack(&member, "in the agent's own pod");
            }
            return;
        }
        self.track(info, now);
    }

    fn track(&mut self, info: ContainerInfo, now: Instant) {
        let replaced = self.registry.get(&info.id).cloned();
        match replaced {
            Some(old) if old.pid == info.pid => {
                self.collector.update_info(&info);
            }
            Some(old) => {
                info!(
                    "{} ({}) restarted: pid {} -> {}",
                    info.name,
                    info.short_id(),
                    old.pid,
                    info.pid
                );
                self.collector.untrack(&info.id);
                self.collector.track(&info, now, unix_now());
            }
            None => {
                info!(
                    "tracking {} ({}, image {}, pid {}, finger {})",
                    info.name,
                    info.short_id(),
                    info.image,
                    info.pid,
                    info.fingerprint
                );
                self.collector.track(&info, now, unix_now());
            }
        }
        if self.uploader.is_some() {
            let processes = self.container_processes(&info.id);
            if let Some(u) = self.uploader.as_mut() {
                u.container_started(&info, processes, now);
            }
        }
        self.registry.insert(info);
    }

    fn untrack(&mut self, id: &str, why: &str) {
        if let Some(info) = self.registry.remove(id) {
            info!("untracking {} ({}): {why}", info.name, info.short_id());
            self.collector.untrack(id);
            if let Some(u) = self.uploader.as_mut() {
                u.container_stopped(id, &info.fingerprint, Instant::now());
            }
        }
    }

    fn handle_event(&mut self, ev: ContainerEvent, now: Instant) {
        debug!(
            "docker: event {:?} {}",
            ev.action,
            registry::short_id(&ev.id)
        );
        match ev.action {
            EventAction::Start | EventAction::Unpause | EventAction::Pause
                if !self.registry.contains(&ev.id) && !self.excluded.contains(&ev.id) =>
            {
                self.inspect(&ev.id, now)
            }
            EventAction::Start => {
                // A restart of a tracked container: new pid, maybe new cgroup.
                self.inspect(&ev.id, now)
            }
            EventAction::Die | EventAction::Destroy => {
                self.pending.remove(&ev.id);
                self.excluded.remove(&ev.id);
                self.untrack(
                    &ev.id,
                    if ev.action == EventAction::Die {
                        "died"
                    } else {
                        "destroyed"
                    },
                );
            }
            EventAction::Rename => match (self.registry.get_mut(&ev.id), ev.name) {
                (Some(c), Some(name)) => {
                    let name = name.trim_start_matches('/').to_owned();
                    info!("renamed {} to {name}", c.name);
                    c.name = name;
                    let updated = c.clone();
                    self.collector.update_info(&updated);
                }
                (Some(_), None) => self.inspect(&ev.id, now),
                (None, _) => {}
            },
            EventAction::Pause | EventAction::Unpause => {
                if let Some(c) = self.registry.get_mut(&ev.id) {
                    c.paused = ev.action == EventAction::Pause;
                    let updated = c.clone();
                    self.collector.update_info(&updated);
                }
            }
            _ => {}
        }
    }

    fn inspect(&mut self, id: &str, now: Instant) {
        if self.pending.insert(id.to_owned()) {
            self.request(Request::Inspect(id.to_owned()), now);
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
            docker_up: self.docker_up,
        };
        server.ready(self.poll.registry(), token, now, &mut pages);
    }

    fn pages(&self) -> Pages<'_> {
        Pages {
            fingerprint: self.fingerprint.as_deref(),
            collector: &self.collector,
            uploader: self.uploader.as_ref(),
            containers: self.registry.len(),
            docker_up: self.docker_up,
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
