//! The Outlyer agent API sink: one virtual agent per container beside the
//! host's own. What to send (pings, tags, the agents list, deregistrations),
//! in which order, and what an answer means; `core` carries the requests and
//! retries them.
//!
//! ```text
//!  container_started ─▶ Ping+Tags (front of the queue)
//!  sync timer (10 s) ─▶ host Ping, Ping per container, Tags if changed, ListAgents
//!  ListAgents answer ─▶ Deregister for every id that is no tracked finger
//!  container_stopped ─▶ Deregister
//!  shutdown          ─▶ Deregister every container, nothing else
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::wire::{self, HostIdentity};
use crate::registry::ContainerInfo;

/// One agent API call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    HostPing,
    HostTags,
    Ping(String),
    Tags(String),
    ListAgents,
    Deregister(String),
}

/// One call as HTTP: method, path below the server's base path, body, and
/// a short description for logs (never the key).
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Option<String>,
    pub what: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApiCounts {
    pub pings: u64,
    pub tags: u64,
    pub deregistered: u64,
    /// API calls dropped after a 4xx.
    pub rejected: u64,
}

#[derive(Debug)]
struct Tracked {
    info: ContainerInfo,
    processes: Vec<String>,
    tags: String,
    tags_sent: Option<String>,
}

#[derive(Debug)]
pub struct AgentApi {
    host: HostIdentity,
    containers: BTreeMap<String, Tracked>,
    jobs: VecDeque<Job>,
    /// The jobs in `jobs`, for the duplicate check (a queue of ten
    /// thousand containers' pings is not searched once per enqueue).
    queued: HashSet<Job>,
    sync_interval: Duration,
    next_sync: Instant,
    counts: ApiCounts,
    host_tags_sent: bool,
    shutting_down: bool,
}

impl AgentApi {
    /// Registers the host agent at once; the sync timer starts.
    pub fn new(host: HostIdentity, sync_interval: Duration, now: Instant) -> AgentApi {
        let mut api = AgentApi {
            host,
            containers: BTreeMap::new(),
            jobs: VecDeque::new(),
            queued: HashSet::new(),
            sync_interval,
            next_sync: now + sync_interval,
            counts: ApiCounts::default(),
            host_tags_sent: false,
            shutting_down: false,
        };
        api.enqueue(Job::HostPing, false);
        api.enqueue(Job::HostTags, false);
        api
    }

    fn enqueue(&mut self, job: Job, front: bool) {
        if !self.queued.insert(job.clone()) {
            return;
        }
        if front {
            self.jobs.push_front(job);
        } else {
            self.jobs.push_back(job);
        }
    }

    /// A new container: registered (ping, then tags) ahead of routine work.
    pub fn container_started(&mut self, info: &ContainerInfo, processes: Vec<String>) {
        if self.shutting_down || info.fingerprint.is_empty() {
            return;
        }
        let tags = wire::container_tags(info, &self.host);
        let finger = info.fingerprint.clone();
        let tags_sent = self.containers.remove(&finger).and_then(|t| t.tags_sent);
        self.containers.insert(
            finger.clone(),
            Tracked {
                info: info.clone(),
                processes,
                tags,
                tags_sent,
            },
        );
        let deregister = Job::Deregister(finger.clone());
        if self.queued.contains(&deregister) {
            self.drop_jobs(|j| *j == deregister);
        }
        self.enqueue(Job::Tags(finger.clone()), true);
        self.enqueue(Job::Ping(finger), true);
    }

    /// Fresh process counts for the next ping.
    pub fn update_processes(&mut self, finger: &str, processes: Vec<String>) {
        if let Some(t) = self.containers.get_mut(finger) {
            t.processes = processes;
        }
    }

    pub fn container_stopped(&mut self, finger: &str) {
        if self.containers.remove(finger).is_none() && self.shutting_down {
            return;
        }
        self.drop_jobs(|j| matches!(j, Job::Ping(f) | Job::Tags(f) if f == finger));
        self.enqueue(Job::Deregister(finger.to_owned()), false);
    }

    /// Removes the queued jobs `drop` picks.
    fn drop_jobs(&mut self, drop: impl Fn(&Job) -> bool) {
        let queued = &mut self.queued;
        self.jobs.retain(|j| {
            let dropped = drop(j);
            if dropped {
                queued.remove(j);
            }
            !dropped
        });
    }

    pub fn tracked(&self) -> usize {
        self.containers.len()
    }

    /// The name of the container behind a fingerprint (none for the host).
    pub fn container_name(&self, finger: &str) -> Option<&str> {
        self.containers
            .get(finger)
            .map(|t| t.info.name.trim_start_matches('/'))
    }

    pub fn has_work(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The next call worth making.
    pub fn next_job(&mut self) -> Option<Job> {
        loop {
            let job = self.jobs.pop_front()?;
            self.queued.remove(&job);
            // A ping or tags of a container gone meanwhile is moot.
            match &job {
                Job::Ping(f) | Job::Tags(f) if !self.containers.contains_key(f) => continue,
                _ => return Some(job),
            }
        }
    }

    /// A call as HTTP.
    pub fn call(&self, job: &Job) -> Call {
        let (method, path, body, what) = match job {
            Job::HostPing => (
                "POST",
                format!("/agents/{}/ping", segment(&self.host.finger)),
                Some(wire::host_ping_body(&self.host)),
                "host ping".into(),
            ),
            Job::HostTags => {
                let f = &self.host.finger;
                (
                    "PUT",
                    format!("/agents/{}/tags", segment(f)),
                    Some(wire::tags_body(f, &self.host.tags.join(","))),
                    "host tags".into(),
                )
            }
            Job::Ping(f) => {
                let body = self
                    .containers
                    .get(f)
                    .map(|t| wire::container_ping_body(&t.info, &t.processes, &self.host));
                (
                    "POST",
                    format!("/agents/{}/ping", segment(f)),
                    body,
                    format!("ping {f}"),
                )
            }
            Job::Tags(f) => {
                let tags = self.containers.get(f).map_or("", |t| t.tags.as_str());
                (
                    "PUT",
                    format!("/agents/{}/tags", segment(f)),
                    Some(wire::tags_body(f, tags)),
                    format!("tags {f}"),
                )
            }
            Job::ListAgents => {
                let mut path = String::from("/agents?mac=");
                crate::http::request::percent_encode(&mut path, &self.host.mac);
                ("GET", path, None, "list agents".into())
            }
            Job::Deregister(id) => (
                "POST",
                format!("/agents/{}/deregister", segment(id)),
                Some(String::new()),
                format!("deregister {id}"),
            ),
        };
        Call {
            method,
            path,
            body,
            what,
        }
    }

    /// A 2xx answer to `job`.
    pub fn done(&mut self, job: Job, body: &[u8]) {
        match job {
            Job::HostPing | Job::Ping(_) => self.counts.pings += 1,
            Job::HostTags => {
                self.counts.tags += 1;
                self.host_tags_sent = true;
            }
            Job::Tags(f) => {
                self.counts.tags += 1;
                if let Some(t) = self.containers.get_mut(&f) {
                    t.tags_sent = Some(t.tags.clone());
                }
            }
            Job::Deregister(_) => self.counts.deregistered += 1,
            Job::ListAgents => match wire::parse_agent_ids(body) {
                Some(ids) => {
                    for id in ids {
                        if id != self.host.finger
                            && !self.containers.contains_key(&id)
                            && !self.shutting_down
                        {
                            self.enqueue(Job::Deregister(id), false);
                        }
                    }
                }
                None => {
                    crate::warn!("upload: the agents list is not a JSON list of objects with ids")
                }
            },
        }
    }

    /// A 4xx other than 408 and 429: the call is dropped and counted.
    pub fn rejected(&mut self, job: Job, status: u16) {
        self.counts.rejected += 1;
        if matches!(status, 401 | 403) {
            crate::warn!("upload: the backend refused the agent key (HTTP {status})");
        } else {
            crate::warn!("upload: {job:?} refused with HTTP {status}; dropped");
        }
    }

    /// A call that failed and is to be made again.
    pub fn give_back(&mut self, job: Job) {
        // After shutdown only deregistrations are still worth sending.
        if self.shutting_down && !matches!(job, Job::Deregister(_)) {
            return;
        }
        // Ping/Tags of a container gone meanwhile are moot; a Deregister
        // must survive.
        self.enqueue(job, true);
    }

    /// When the sync timer is due.
    pub fn next_sync(&self) -> Instant {
        self.next_sync
    }

    /// The sync timer: the host and every container pinged, tags resent
    /// where they changed, the agents list checked for strays.
    pub fn sync(&mut self, now: Instant) {
        if self.shutting_down || now < self.next_sync {
            return;
        }
        while self.next_sync <= now {
            self.next_sync += self.sync_interval;
        }
        self.enqueue(Job::HostPing, false);
        if !self.host_tags_sent {
            self.enqueue(Job::HostTags, false);
        }
        let fingers: Vec<String> = self.containers.keys().cloned().collect();
        for f in fingers {
            self.enqueue(Job::Ping(f.clone()), false);
            let t = &self.containers[&f];
            if t.tags_sent.as_deref() != Some(t.tags.as_str()) {
                self.enqueue(Job::Tags(f), false);
            }
        }
        if !self.host.mac.is_empty() {
            self.enqueue(Job::ListAgents, false);
        }
    }

    /// Every container deregistered ahead of anything else; nothing new
    /// is registered afterwards.
    pub fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.drop_jobs(|j| !matches!(j, Job::Deregister(_)));
        let fingers: Vec<String> = std::mem::take(&mut self.containers).into_keys().collect();
        for f in fingers {
            self.enqueue(Job::Deregister(f), true);
        }
    }

    pub fn counts(&self) -> ApiCounts {
        self.counts
    }
}

/// A path segment from data (an id the server listed may hold `/`, `?`...).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::http::request::percent_encode(&mut out, s);
    out
}
