//! Keeping up with a Docker daemon, without I/O: which requests to send,
//! what the replies and events mean for the set of running containers, when
//! to re-list and when to reconnect.
//!
//! Inputs are the client's [`Output`]s (replies, events, the daemon going
//! away) and the time; outputs are [`Action`]s the event loop carries out in
//! order: requests for the client, and [`Change`]s for the registry. The
//! sync keeps the ids it reported as running (so a re-list or an event
//! knows what is new) and never looks at the registry.
//!
//! The protocol: `GET /version` (the API version to use), `GET /info` while
//! the host's identity is wanted, the events stream, then the container list
//! (after the events head on API ≥ 1.21, so no event falls between the two;
//! at once on older daemons, which send no head until the first event), an
//! inspection per running container, and a re-list every [`RELIST_EVERY`]
//! as the safety net behind the events. A failed `/version` or list, an
//! unusable reply or a broken connection is the daemon going down: reconnect
//! with exponential backoff from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`], reset
//! only by a complete list. The first list after a (re)connect re-inspects
//! every known container, which may have restarted meanwhile.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::docker::api::{error_message, parse_container_list, parse_info, parse_inspect};
use crate::docker::client::{Output, Request};
use crate::docker::events::{events_path, ContainerEvent, EventAction};
use crate::docker::version::{parse_version_body, ApiVersion};
use crate::registry::short_id;
use crate::source::{Change, Update};
use crate::{debug, info, warn};

/// Full re-list of containers, the safety net behind the events stream.
pub const RELIST_EVERY: Duration = Duration::from_secs(60);
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// `/readyz`: how long the daemon may be away before the agent says it is
/// not ready.
pub const READY_GRACE: Duration = Duration::from_secs(30);

/// What the event loop must do, in this order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Queue a request on the API connection.
    Send(Request),
    /// Prefix later requests with this API version.
    SetVersion(ApiVersion),
    /// Open the events stream at this path.
    OpenEvents(String),
    /// Close both connections and drop everything queued.
    Reset,
    /// The daemon's answer to `/info`: its id and host name, each when
    /// present (both `None` when `/info` failed).
    Daemon {
        id: Option<String>,
        name: Option<String>,
    },
    /// Docker cannot be used for now (what depends on it goes on without).
    Unavailable,
    /// A change to the running containers.
    Change(Change),
}

#[derive(Debug)]
pub struct DockerSync {
    actions: VecDeque<Action>,
    up: bool,
    /// Whether `/info` is requested on the next connect.
    want_info: bool,
    /// Ids reported running (added and not removed since).
    known: IdSet,
    /// Ids with an inspection queued or in flight whose answer is wanted.
    pending: HashSet<String>,
    /// The first list after a (re)connect is a sync, later ones are checks.
    synced: bool,
    /// A complete list arrived at least once.
    listed_once: bool,
    list_in_flight: bool,
    down_since: Option<Instant>,
    backoff: Duration,
    reconnect_at: Option<Instant>,
    next_relist: Option<Instant>,
}

impl Default for DockerSync {
    fn default() -> Self {
        DockerSync::new()
    }
}

impl DockerSync {
    pub fn new() -> DockerSync {
        DockerSync {
            actions: VecDeque::new(),
            up: false,
            want_info: true,
            known: IdSet::default(),
            pending: HashSet::new(),
            synced: false,
            listed_once: false,
            list_in_flight: false,
            down_since: None,
            backoff: BACKOFF_FIRST,
            reconnect_at: None,
            next_relist: None,
        }
    }

    /// The next thing to do, oldest first.
    pub fn next_action(&mut self) -> Option<Action> {
        let next = self.actions.pop_front();
        if next.is_none() && self.actions.capacity() > 64 {
            // A listing queued an inspection per container: that room
            // (an action holds a whole container's record) goes.
            self.actions.shrink_to_fit();
        }
        next
    }

    /// True while the daemon answers.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// A full list arrived since the last (re)connect and every inspection
    /// it asked for was answered.
    pub fn is_synced(&self) -> bool {
        self.synced && self.pending.is_empty()
    }

    /// The daemon did not answer and is being retried.
    pub fn is_down(&self) -> bool {
        !self.up && self.down_since.is_some()
    }

    /// Ready: a complete list arrived once and the daemon is up, or away
    /// for less than [`READY_GRACE`]. Otherwise why not, in one line.
    pub fn readiness(&self, now: Instant) -> Result<(), String> {
        if !self.listed_once {
            return Err(match self.down_since {
                Some(since) => format!(
                    "no container list yet: the Docker API has not answered for {}s",
                    now.saturating_duration_since(since).as_secs()
                ),
                None => "no container list yet: waiting for the Docker API".to_owned(),
            });
        }
        match self.down_since {
            Some(since) if !self.up && now.saturating_duration_since(since) >= READY_GRACE => {
                Err(format!(
                    "the Docker API has not answered for {}s",
                    now.saturating_duration_since(since).as_secs()
                ))
            }
            _ => Ok(()),
        }
    }

    /// Running containers the daemon reported.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// Whether to ask `/info` on the next connect (the host's identity is
    /// still incomplete).
    pub fn set_want_info(&mut self, want: bool) {
        self.want_info = want;
    }

    /// The next reconnect or re-list.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.reconnect_at, self.next_relist) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// First contact: ask the daemon's version.
    pub fn connect(&mut self) {
        self.synced = false;
        self.list_in_flight = false;
        self.pending.clear();
        self.actions.push_back(Action::Send(Request::Version));
    }

    /// The daemon's socket reappeared: a pending reconnect happens now
    /// instead of on its backoff step.
    pub fn socket_appeared(&mut self, now: Instant) {
        if !self.up && self.reconnect_at.is_some() {
            debug!("docker: the socket reappeared; reconnecting now");
            self.backoff = BACKOFF_FIRST;
            self.reconnect_at = Some(now);
        }
    }

    /// Runs the reconnect and the re-list when due.
    pub fn tick(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.connect();
        }
        if self.next_relist.is_some_and(|t| t <= now) {
            self.next_relist = Some(now + RELIST_EVERY);
            if self.up && !self.list_in_flight {
                self.start_list();
            }
        }
    }

    /// One output of the client.
    pub fn handle(&mut self, out: Output, now: Instant) {
        match out {
            Output::Down(why) => self.down(why, now),
            Output::BadEvent(why) => warn!("docker: skipping an event: {why}"),
            Output::EventsOpen { status } => {
                debug!("docker: events stream open ({status})");
                if status == 200 && !self.synced && !self.list_in_flight {
                    self.start_list();
                }
            }
            Output::Event(ev) => self.event(ev),
            Output::Reply {
                request,
                status,
                content_type,
                body,
            } => {
                if (200..300).contains(&status) {
                    match request {
                        Request::Version => self.on_version(&body, now),
                        Request::Info => self.on_info(&body),
                        Request::List => self.on_list(&body, now),
                        Request::Inspect(id) => self.on_inspect(&id, &body),
                    }
                    return;
                }
                let msg = error_message(content_type.as_deref(), &body);
                match request {
                    Request::Inspect(id) if status == 404 => {
                        self.pending.remove(&id);
                        debug!(
                            "docker: container {} vanished before inspection",
                            short_id(&id)
                        );
                    }
                    Request::Inspect(id) => {
                        self.pending.remove(&id);
                        warn!(
                            "docker: inspecting {} failed with {status}: {msg}",
                            short_id(&id)
                        );
                    }
                    Request::Info => {
                        warn!("docker: /info failed with {status}: {msg}");
                        self.actions.push_back(Action::Daemon {
                            id: None,
                            name: None,
                        });
                    }
                    Request::List | Request::Version => {
                        self.down(format!("{request:?} failed with {status}: {msg}"), now)
                    }
                }
            }
        }
    }

    fn down(&mut self, why: String, now: Instant) {
        self.actions.push_back(Action::Reset);
        self.pending.clear();
        self.synced = false;
        self.list_in_flight = false;
        self.next_relist = None;
        if self.up || self.down_since.is_none() {
            warn!(
                "docker: {why}; retrying (backoff up to {}s), keeping {} containers meanwhile",
                BACKOFF_MAX.as_secs(),
                self.known.len()
            );
            self.down_since = Some(now);
        } else {
            debug!("docker: still unavailable: {why}");
        }
        self.up = false;
        self.reconnect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.actions.push_back(Action::Unavailable);
    }

    fn on_version(&mut self, body: &[u8], now: Instant) {
        let v = match parse_version_body(body) {
            Ok(v) => v,
            Err(e) => return self.down(format!("unusable /version reply: {e}"), now),
        };
        let api: ApiVersion = v.negotiated();
        self.actions.push_back(Action::SetVersion(api));
        if let Some(since) = self.down_since.take() {
            if self.up {
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
        self.up = true;
        if self.want_info {
            self.actions.push_back(Action::Send(Request::Info));
        }
        self.actions
            .push_back(Action::OpenEvents(events_path(api, None)));
        // Docker ≥ 1.9 (API 1.21) answers the events request at once, so the
        // list waits for that head and no event can fall between the two.
        // Older daemons send nothing until the first event: list right away.
        if api < ApiVersion::new(1, 21) {
            self.start_list();
        }
    }

    fn start_list(&mut self) {
        self.list_in_flight = true;
        self.actions.push_back(Action::Send(Request::List));
    }

    fn on_info(&mut self, body: &[u8]) {
        let (id, name) = match parse_info(body) {
            Ok(info) if info.podman => {
                info!(
                    "docker: Podman's /info ID is new on every call, so it cannot stand for \
                     this host: the host fingerprint needs a host id (the host's \
                     /etc/machine-id under the rootfs) or DATALOOP_FINGERPRINT"
                );
                (None, info.name.filter(|s| !s.is_empty()))
            }
            Ok(info) => (
                info.id.filter(|s| !s.is_empty()),
                info.name.filter(|s| !s.is_empty()),
            ),
            Err(e) => {
                warn!("docker: unusable /info reply: {e}");
                (None, None)
            }
        };
        self.actions.push_back(Action::Daemon { id, name });
    }

    fn on_list(&mut self, body: &[u8], now: Instant) {
        self.list_in_flight = false;
        let list = match parse_container_list(body) {
            Ok(l) => l,
            Err(e) => return self.down(format!("unusable container list: {e}"), now),
        };
        let first = !self.synced;
        self.synced = true;
        self.listed_once = true;
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
        let mut gone: Vec<String> = self
            .known
            .iter()
            .filter(|id| !running.contains(id.as_str()) && !self.pending.contains(id))
            .collect();
        gone.sort_unstable();
        for id in gone {
            if !first {
                warn!(
                    "docker: drift: {} was tracked but is no longer listed",
                    short_id(&id)
                );
            }
            self.known.remove(&id);
            self.actions.push_back(Action::Change(Change::Removed {
                id,
                why: "not running",
            }));
        }
        let mut new = 0;
        for id in running {
            if self.pending.contains(id) {
                continue;
            }
            if self.known.contains(id) {
                if first {
                    // A resync after losing the daemon: a known container
                    // may have been restarted meanwhile (new pid, start
                    // time, cgroup) and no event said so. Inspect it again.
                    self.inspect(id);
                }
                continue;
            }
            if !first {
                warn!("docker: drift: {} runs but was not tracked", short_id(id));
            }
            new += 1;
            self.inspect(id);
        }
        debug!("docker: list has {} running, {new} to inspect", list.len());
    }

    fn on_inspect(&mut self, id: &str, body: &[u8]) {
        if !self.pending.remove(id) {
            // A die/destroy arrived meanwhile: the answer is stale.
            debug!("docker: dropping a stale inspection of {}", short_id(id));
            return;
        }
        let inspected = match parse_inspect(body) {
            Ok(i) => i,
            Err(e) => return warn!("docker: unusable inspection of {}: {e}", short_id(id)),
        };
        if !inspected.running {
            debug!("docker: {} is not running", short_id(id));
            return;
        }
        self.known.insert(&inspected.info.id);
        if self.pending.is_empty() && self.pending.capacity() > 64 {
            // A big listing is absorbed: its inspection set goes.
            self.pending.shrink_to_fit();
        }
        self.actions
            .push_back(Action::Change(Change::Added(Box::new(inspected.info))));
    }

    fn event(&mut self, ev: ContainerEvent) {
        debug!("docker: event {:?} {}", ev.action, short_id(&ev.id));
        let known = self.known.contains(&ev.id);
        match ev.action {
            // Unknown and running, or a restart of a known one (new pid,
            // maybe a new cgroup).
            EventAction::Start => self.inspect(&ev.id),
            EventAction::Pause | EventAction::Unpause if !known => self.inspect(&ev.id),
            EventAction::Pause | EventAction::Unpause => {
                self.actions.push_back(Action::Change(Change::Updated {
                    id: ev.id,
                    update: Update::Paused(ev.action == EventAction::Pause),
                }))
            }
            EventAction::Die | EventAction::Destroy => {
                // An inspection still in flight is stale now.
                self.pending.remove(&ev.id);
                if self.known.remove(&ev.id) {
                    let why = if ev.action == EventAction::Die {
                        "died"
                    } else {
                        "destroyed"
                    };
                    self.actions
                        .push_back(Action::Change(Change::Removed { id: ev.id, why }));
                }
            }
            EventAction::Rename if known => match ev.name {
                Some(name) => self.actions.push_back(Action::Change(Change::Updated {
                    id: ev.id,
                    update: Update::Name(name.trim_start_matches('/').to_owned()),
                })),
                None => self.inspect(&ev.id),
            },
            _ => {}
        }
    }

    fn inspect(&mut self, id: &str) {
        if self.pending.insert(id.to_owned()) {
            self.actions
                .push_back(Action::Send(Request::Inspect(id.to_owned())));
        }
    }
}

/// Container ids: the usual 64 lower-case hex digits packed into 32 bytes
/// (a tenth of a `String`'s cost at ten thousand containers), any other id
/// kept as text.
#[derive(Debug, Default)]
struct IdSet {
    packed: HashSet<[u8; 32]>,
    other: HashSet<Box<str>>,
}

fn pack(id: &str) -> Option<[u8; 32]> {
    let b = id.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn unpack(p: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in p {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

impl IdSet {
    fn insert(&mut self, id: &str) -> bool {
        match pack(id) {
            Some(p) => self.packed.insert(p),
            None => self.other.insert(id.into()),
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        match pack(id) {
            Some(p) => self.packed.remove(&p),
            None => self.other.remove(id),
        }
    }

    fn contains(&self, id: &str) -> bool {
        match pack(id) {
            Some(p) => self.packed.contains(&p),
            None => self.other.contains(id),
        }
    }

    fn len(&self) -> usize {
        self.packed.len() + self.other.len()
    }

    /// Every id, as text.
    fn iter(&self) -> impl Iterator<Item = String> + '_ {
        self.packed
            .iter()
            .map(unpack)
            .chain(self.other.iter().map(|s| s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_and_come_back_as_they_were() {
        let hex = "0123456789abcdef".repeat(4);
        let mut set = IdSet::default();
        assert!(set.insert(&hex));
        assert!(!set.insert(&hex));
        assert!(set.insert("my-task"));
        assert!(set.insert(&hex.to_uppercase()), "not packed: kept as given");
        assert!(set.contains(&hex) && set.contains("my-task"));
        assert!(!set.contains(&hex[..63]));
        let mut all: Vec<String> = set.iter().collect();
        all.sort();
        assert_eq!(all, [hex.to_uppercase(), hex.clone(), "my-task".to_owned()]);
        assert!(set.remove(&hex) && !set.contains(&hex));
        assert_eq!(set.len(), 2);
    }
}
