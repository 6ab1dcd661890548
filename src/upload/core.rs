//! The sans-IO heart of the uploader: which request goes next on which
//! endpoint, what a response means, when to retry, what is buffered.
//! No sockets, no clock: `now` comes in, requests and deadlines go out.
//! What goes in a request is the sinks' business: the agent API's calls
//! ([`AgentApi`]) and each metrics backend's batches ([`SampleSink`]).
//!
//! ```text
//!  agent API calls   ─▶ AgentApi's queue (registrations, syncs, deregistrations)
//!  push_samples      ─▶ per-sink bounded buffer ─▶ batches ─▶ SampleSink::encode
//!
//!  poll_request(endpoint) ─▶ Request ──(shell: DNS, TCP, proxy, TLS)──▶ handle_outcome
//!     2xx / Sent          → done, backoff reset
//!     408, 429, 5xx, I/O  → back to the front, endpoint waits Retry-After or backoff
//!     other 4xx           → dropped and counted (a batch's samples count as dropped)
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use super::agent_api::ApiCounts;
use super::agent_api::{AgentApi, Job};
use super::buffer::{Counts, Names, Sample, SampleBuffer};
use super::graphite::Graphite;
use super::proxy::Proxy;
use super::retry::{Backoff, Rng};
use super::series::Series;
use super::settings::{Target, UploadSettings};
use super::sink::{Context, Framing, SampleSink};
use super::wire::HostIdentity;
use crate::metrics::exposition::{self, Line};
use crate::registry::ContainerInfo;
/// Concurrent requests per endpoint (one per connection, no pipelining).
pub const MAX_IN_FLIGHT: [usize; 3] = [2, 1, 1];
/// Largest response body read from the backend.
pub const MAX_RESPONSE_BODY: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Api = 0,
    Series = 1,
    Graphite = 2,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Api, Endpoint::Series, Endpoint::Graphite];

    /// The proxy this endpoint goes through, if any: HTTP(S) endpoints as
    /// the proxy settings say, Graphite (raw TCP) never.
    pub fn proxy<'s>(self, settings: &'s UploadSettings, target: &Target) -> Option<&'s Proxy> {
        match self {
            Endpoint::Graphite => None,
            Endpoint::Api | Endpoint::Series => settings.proxies.for_target(target),
        }
    }

    pub fn name(self) -> &'static str {
        match self.sample_sink() {
            Some(sink) => sink.name(),
            None => "api",
        }
    }

    /// The metrics backend's format (none for the agent API).
    pub fn sample_sink(self) -> Option<&'static dyn SampleSink> {
        match self {
            Endpoint::Api => None,
            Endpoint::Series => Some(&Series),
            Endpoint::Graphite => Some(&Graphite),
        }
    }
}

/// One request for the shell to carry.
#[derive(Debug)]
pub struct Request {
    pub id: u64,
    pub endpoint: Endpoint,
    pub bytes: Vec<u8>,
    /// False for Graphite: done when every byte is written.
    pub expects_response: bool,
    /// A short description for logs (never the key).
    pub what: String,
}

/// How a request ended, as the shell saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Response {
        status: u16,
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    /// Every byte written (Graphite).
    Sent,
    /// A kept-alive connection closed before any byte of the answer: send
    /// again on a fresh connection, no backoff.
    ClosedIdle,
    /// Resolve, connect, proxy, TLS, timeout or framing failure.
    Failed(String),
}

#[derive(Debug)]
enum InFlight {
    Job(Job),
    Batch(Vec<Sample>),
}

#[derive(Debug)]
struct EndpointState {
    target: Option<Target>,
    backoff: Backoff,
    not_before: Option<Instant>,
    in_flight: usize,
    requests: u64,
    failures: u64,
}

pub struct Core {
    api: AgentApi,
    auth: String,
    /// `Some(proxy authorization)` per endpoint sent in absolute form
    /// through a plain-http proxy.
    absolute_form: [Option<Option<String>>; 3],
    in_flight: HashMap<u64, (Endpoint, InFlight)>,
    next_id: u64,
    endpoints: [EndpointState; 3],
    buffers: [Option<SampleBuffer>; 3],
    names: Names,
    /// A sink's batch is encoded here, then copied once into the request.
    body: Vec<u8>,
    rng: Rng,
    shutdown_deadline: Option<Instant>,
    shutdown_expired: bool,
}

impl Core {
    pub fn new(settings: &UploadSettings, host: HostIdentity, seed: u64, now: Instant) -> Core {
        let targets = [
            Some(settings.server.clone()),
            settings.series.clone(),
            settings.graphite.clone(),
        ];
        // Plain http through a proxy goes in absolute form (no CONNECT).
        let absolute_form = Endpoint::ALL.map(|ep| {
            let t = targets[ep as usize].as_ref()?;
            if t.tls {
                return None;
            }
            ep.proxy(settings, t)
                .map(|p| p.authorization.as_ref().map(|a| a.expose().to_owned()))
        });
        let endpoints = targets.map(|target| EndpointState {
            target,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            not_before: None,
            in_flight: 0,
            requests: 0,
            failures: 0,
        });
        let buffers = [
            None,
            settings
                .series
                .as_ref()
                .map(|_| SampleBuffer::new(settings.buffer_samples)),
            settings
                .graphite
                .as_ref()
                .map(|_| SampleBuffer::new(settings.buffer_samples)),
        ];
        Core {
            api: AgentApi::new(host, settings.sync_interval, now),
            auth: format!("Bearer {}", settings.key.expose()),
            absolute_form,
            in_flight: HashMap::new(),
            next_id: 1,
            endpoints,
            buffers,
            names: Names::default(),
            body: Vec::new(),
            rng: Rng::new(seed),
            shutdown_deadline: None,
            shutdown_expired: false,
        }
    }

    pub fn target(&self, ep: Endpoint) -> Option<&Target> {
        self.endpoints[ep as usize].target.as_ref()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// A new container: registered (ping, then tags) ahead of routine work.
    pub fn container_started(&mut self, info: &ContainerInfo, processes: Vec<String>) {
        self.api.container_started(info, processes);
    }

    /// Fresh process counts for the next ping.
    pub fn update_processes(&mut self, finger: &str, processes: Vec<String>) {
        self.api.update_processes(finger, processes);
    }

    pub fn container_stopped(&mut self, finger: &str) {
        self.api.container_stopped(finger);
    }

    pub fn tracked(&self) -> usize {
        self.api.tracked()
    }

    /// One cycle's samples. Non-finite values are not produced (no sink
    /// can carry them).
    pub fn push_samples<'a>(
        &mut self,
        unix_secs: f64,
        samples: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
    ) {
        if self.buffers.iter().all(Option::is_none) {
            return;
        }
        for (finger, path, value) in samples {
            if !value.is_finite() {
                continue;
            }
            let sample = Sample {
                finger: self.names.intern(finger),
                path: self.names.intern(path),
                value,
                unix_secs,
            };
            for b in self.buffers.iter_mut().flatten() {
                b.push(sample);
            }
        }
    }

    /// The next request for `ep`, if it may send one now.
    pub fn poll_request(&mut self, ep: Endpoint, now: Instant) -> Option<Request> {
        if self.shutdown_expired {
            return None;
        }
        let state = &self.endpoints[ep as usize];
        let target = state.target.clone()?;
        if state.in_flight >= MAX_IN_FLIGHT[ep as usize]
            || state.not_before.is_some_and(|t| t > now)
        {
            return None;
        }
        let id = self.next_id;
        let (bytes, expects_response, what, flight) = match ep.sample_sink() {
            None => {
                let job = self.api.next_job()?;
                let call = self.api.call(&job);
                let bytes = self.http_request(
                    ep,
                    &target,
                    call.method,
                    &call.path,
                    "application/json",
                    call.body.as_deref().map(str::as_bytes),
                );
                (bytes, true, call.what, InFlight::Job(job))
            }
            Some(sink) => {
                let buf = self.buffers[ep as usize].as_mut()?;
                if buf.waiting() == 0 {
                    return None;
                }
                let batch = buf.take_batch(sink.batch_size());
                self.body.clear();
                let api = &self.api;
                let container_name = |finger: &str| api.container_name(finger);
                let cx = Context {
                    names: &self.names,
                    container_name: &container_name,
                };
                sink.encode(&batch, &cx, &mut self.body);
                let what = format!("{} batch of {}", sink.name(), batch.len());
                match sink.framing() {
                    Framing::HttpPost { content_type } => {
                        let bytes = self.http_request(
                            ep,
                            &target,
                            "POST",
                            &target.path,
                            content_type,
                            Some(&self.body),
                        );
                        (bytes, true, what, InFlight::Batch(batch))
                    }
                    Framing::Stream => (self.body.clone(), false, what, InFlight::Batch(batch)),
                }
            }
        };
        self.next_id += 1;
        let state = &mut self.endpoints[ep as usize];
        state.in_flight += 1;
        state.requests += 1;
        self.in_flight.insert(id, (ep, flight));
        Some(Request {
            id,
            endpoint: ep,
            bytes,
            expects_response,
            what,
        })
    }

    fn http_request(
        &self,
        ep: Endpoint,
        target: &Target,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
    ) -> Vec<u8> {
        let full_path = if ep == Endpoint::Api {
            format!("{}{}", target.path, path)
        } else {
            path.to_owned()
        };
        let host = target.host_header();
        let mut headers: Vec<(&str, &str)> = vec![
            ("Authorization", &self.auth),
            ("Content-Type", content_type),
            ("Accept", "application/json"),
        ];
        let absolute;
        let request_target = match &self.absolute_form[ep as usize] {
            Some(proxy_auth) => {
                if let Some(a) = proxy_auth {
                    headers.push(("Proxy-Authorization", a));
                }
                absolute = format!("http://{host}{full_path}");
                &absolute
            }
            None => &full_path,
        };
        let mut out = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        crate::http::request::write_request(
            &mut out,
            method,
            request_target,
            &host,
            &headers,
            body,
        );
        out
    }

    pub fn handle_outcome(&mut self, id: u64, outcome: Outcome, now: Instant) {
        let Some((ep, flight)) = self.in_flight.remove(&id) else {
            return;
        };
        let state = &mut self.endpoints[ep as usize];
        state.in_flight = state.in_flight.saturating_sub(1);
        enum Verdict {
            Done(Vec<u8>),
            Retry(Option<Duration>, String),
            Requeue,
            Reject(u16),
        }
        let verdict = match outcome {
            Outcome::Sent => Verdict::Done(Vec::new()),
            Outcome::ClosedIdle => Verdict::Requeue,
            Outcome::Failed(why) => Verdict::Retry(None, why),
            Outcome::Response { status, body, .. } if (200..300).contains(&status) => {
                Verdict::Done(body)
            }
            Outcome::Response {
                status,
                retry_after,
                ..
            } if matches!(status, 408 | 429) || status >= 500 => {
                Verdict::Retry(retry_after, format!("HTTP {status}"))
            }
            Outcome::Response { status, .. } => Verdict::Reject(status),
        };
        match verdict {
            Verdict::Done(body) => {
                if state.backoff.failures() > 0 {
                    crate::info!("upload: {} reachable again", ep.name());
                }
                state.backoff.reset();
                state.not_before = None;
                match flight {
                    InFlight::Job(job) => self.api.done(job, &body),
                    InFlight::Batch(batch) => {
                        if let Some(b) = self.buffers[ep as usize].as_mut() {
                            b.delivered(batch);
                        }
                    }
                }
            }
            Verdict::Retry(retry_after, why) => {
                state.failures += 1;
                let drawn = state.backoff.fail(&mut self.rng);
                // A server's hint may lengthen the backoff, never shorten
                // it (`Retry-After: 0` would be a retry storm).
                let delay = retry_after.map_or(drawn, |hint| hint.max(drawn));
                state.not_before = Some(now + delay);
                // One warning per outage, not one per retry.
                if state.backoff.failures() == 1 {
                    crate::warn!(
                        "upload: {} request failed ({why}); retrying with backoff",
                        ep.name()
                    );
                } else {
                    crate::debug!(
                        "upload: {} request failed ({why}); retry in {} ms",
                        ep.name(),
                        delay.as_millis()
                    );
                }
                self.give_back(ep, flight);
            }
            Verdict::Requeue => self.give_back(ep, flight),
            Verdict::Reject(status) => {
                // The server answered: it is up, so no backoff for others.
                state.failures += 1;
                state.backoff.reset();
                state.not_before = None;
                match flight {
                    InFlight::Job(job) => self.api.rejected(job, status),
                    InFlight::Batch(batch) => {
                        crate::warn!(
                            "upload: {} refused a batch of {} samples with HTTP {status}; dropped",
                            ep.name(),
                            batch.len()
                        );
                        if let Some(b) = self.buffers[ep as usize].as_mut() {
                            b.rejected(batch);
                        }
                    }
                }
            }
        }
        self.collect_names();
    }

    fn give_back(&mut self, ep: Endpoint, flight: InFlight) {
        match flight {
            InFlight::Job(job) => self.api.give_back(job),
            InFlight::Batch(batch) => {
                if let Some(b) = self.buffers[ep as usize].as_mut() {
                    b.give_back(batch);
                }
            }
        }
    }

    /// Interned names are freed when nothing refers to them any more.
    fn collect_names(&mut self) {
        if self.names.len() > 4096 && self.buffers.iter().flatten().all(SampleBuffer::is_empty) {
            self.names.clear();
        }
    }

    /// Runs the sync timer and the shutdown bound.
    pub fn handle_timeout(&mut self, now: Instant) {
        // A wait that is over is no deadline any more (else a busy
        // endpoint would make the loop spin on a past instant).
        for s in &mut self.endpoints {
            if s.not_before.is_some_and(|t| t <= now) {
                s.not_before = None;
            }
        }
        if let Some(deadline) = self.shutdown_deadline {
            if now >= deadline {
                self.shutdown_expired = true;
            }
            return;
        }
        self.api.sync(now);
    }

    /// When `handle_timeout` or `poll_request` has something to do next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = match self.shutdown_deadline {
            Some(_) if self.shutdown_expired => return None,
            Some(d) => d,
            None => self.api.next_sync(),
        };
        for ep in Endpoint::ALL {
            if let Some(nb) = self.endpoints[ep as usize].not_before {
                if self.has_work(ep) {
                    t = t.min(nb);
                }
            }
        }
        Some(t)
    }

    /// True when `ep` has something waiting to be sent.
    pub fn has_work(&self, ep: Endpoint) -> bool {
        match ep {
            Endpoint::Api => self.api.has_work(),
            _ => self.buffers[ep as usize]
                .as_ref()
                .is_some_and(|b| b.waiting() > 0),
        }
    }

    /// Deregisters every tracked container and flushes the buffers, within
    /// the grace period; afterwards nothing new is started.
    pub fn shutdown(&mut self, grace: Duration, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(now + grace);
        self.api.shutdown();
        // Waiting out a long backoff would only hit the deadline.
        for s in &mut self.endpoints {
            s.not_before = None;
        }
    }

    /// Whether in-flight request `id` may be dropped for the shutdown's
    /// deregistrations: an API request that is not one itself.
    pub fn yields_on_shutdown(&self, id: u64) -> bool {
        self.is_shutting_down()
            && matches!(
                self.in_flight.get(&id),
                Some((Endpoint::Api, InFlight::Job(job))) if !matches!(job, Job::Deregister(_))
            )
    }

    /// The shell dropped request `id` unanswered during shutdown: it is
    /// forgotten (no backoff, not counted as a failure; after shutdown a
    /// ping or tags request is moot).
    pub fn abandon(&mut self, id: u64) {
        if let Some((ep, flight)) = self.in_flight.remove(&id) {
            let state = &mut self.endpoints[ep as usize];
            state.in_flight = state.in_flight.saturating_sub(1);
            if let InFlight::Job(job @ Job::Deregister(_)) = flight {
                self.api.give_back(job);
            }
        }
    }

    pub fn is_shutdown_complete(&self) -> bool {
        self.shutdown_expired
            || (self.shutdown_deadline.is_some()
                && self.in_flight.is_empty()
                && Endpoint::ALL.iter().all(|&ep| !self.has_work(ep)))
    }

    pub fn counts(&self, ep: Endpoint) -> Option<Counts> {
        self.buffers[ep as usize].as_ref().map(SampleBuffer::counts)
    }

    pub fn api_counts(&self) -> ApiCounts {
        self.api.counts()
    }

    pub fn failures(&self, ep: Endpoint) -> u64 {
        self.endpoints[ep as usize].failures
    }

    pub fn requests(&self, ep: Endpoint) -> u64 {
        self.endpoints[ep as usize].requests
    }

    /// `outlyer_agent_*` families for `/metrics`.
    pub fn write_prometheus(&self, out: &mut String) {
        let sinks: Vec<(Endpoint, Counts)> = [Endpoint::Series, Endpoint::Graphite]
            .into_iter()
            .filter_map(|ep| Some((ep, self.counts(ep)?)))
            .collect();
        type Field = fn(&Counts) -> u64;
        let families: [(&str, &str, &str, Field); 5] = [
            (
                "outlyer_agent_produced_samples_total",
                "counter",
                "Samples handed to the uploader.",
                |c| c.produced,
            ),
            (
                "outlyer_agent_delivered_samples_total",
                "counter",
                "Samples the backend accepted.",
                |c| c.delivered,
            ),
            (
                "outlyer_agent_buffered_samples",
                "gauge",
                "Samples waiting for the backend.",
                |c| c.buffered,
            ),
            (
                "outlyer_agent_dropped_samples_total",
                "counter",
                "Samples dropped: buffer full (oldest first) or batch refused.",
                |c| c.dropped(),
            ),
            (
                "outlyer_agent_rejected_samples_total",
                "counter",
                "Samples of batches the backend refused with a 4xx.",
                |c| c.dropped_rejected,
            ),
        ];
        for (name, kind, help, field) in families {
            exposition::header(out, name, kind, help);
            for (ep, c) in &sinks {
                Line::new(out, name)
                    .label("sink", ep.name())
                    .value(field(c));
            }
        }
        type Count = fn(&Core, Endpoint) -> u64;
        let per_endpoint: [(&str, &str, Count); 2] = [
            (
                "outlyer_agent_upload_failures_total",
                "Backend requests that failed (I/O, timeout or HTTP error).",
                Self::failures,
            ),
            (
                "outlyer_agent_upload_requests_total",
                "Backend requests started.",
                Self::requests,
            ),
        ];
        for (name, help, field) in per_endpoint {
            exposition::header(out, name, "counter", help);
            for ep in Endpoint::ALL {
                if self.endpoints[ep as usize].target.is_some() {
                    Line::new(out, name)
                        .label("endpoint", ep.name())
                        .value(field(self, ep));
                }
            }
        }
        exposition::single(
            out,
            "outlyer_agent_virtual_agents",
            "gauge",
            "Containers registered as virtual agents.",
            self.api.tracked(),
        );
        exposition::single(
            out,
            "outlyer_agent_deregistered_total",
            "counter",
            "Virtual agents deregistered.",
            self.api.counts().deregistered,
        );
    }
}
