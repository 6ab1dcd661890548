//! The sans-IO upload core on a virtual clock: the failure matrix without
//! sockets and without waiting (a 60 s outage runs in milliseconds).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::upload::core::Core;
use outlyer_agent::upload::{Endpoint, HostIdentity, Outcome, Request, UploadSettings};

const KEY: &str = "test-key-0123456789";

fn settings(extra: &[(&str, &str)]) -> UploadSettings {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("DATALOOP_AGENT_KEY".into(), KEY.into());
    vars.insert("DATALOOP_SERVER".into(), "https://backend.test".into());
    vars.insert(
        "DATALOOP_SERIES_URL".into(),
        "https://backend.test/v2/accounts/acme/series".into(),
    );
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    UploadSettings::from_env(|k| vars.get(k).cloned())
        .unwrap()
        .unwrap()
}

fn host() -> HostIdentity {
    outlyer_testkit::sample_host()
}

fn container(n: u8) -> ContainerInfo {
    outlyer_testkit::sample_container(n)
}

/// What the fake backend saw: request line and body of every request.
#[derive(Default)]
struct Seen {
    requests: Vec<(Duration, String, Vec<u8>)>,
}

fn split(req: &Request) -> (String, Vec<u8>) {
    let text = &req.bytes;
    let end = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(text[..end].to_vec()).unwrap();
    (head, text[end + 4..].to_vec())
}

/// Series samples in a body: (host, name, timestamp).
fn samples_of(body: &[u8]) -> Vec<(String, String, u64)> {
    use miniserde::json::{Number, Value};
    let v: Value = miniserde::json::from_str(std::str::from_utf8(body).unwrap()).unwrap();
    let Value::Object(mut o) = v else { panic!() };
    let Some(Value::Array(list)) = o.remove("samples") else {
        panic!()
    };
    list.into_iter()
        .map(|s| {
            let Value::Object(s) = s else { panic!() };
            let str_of = |k: &str| match s.get(k) {
                Some(Value::String(v)) => v.clone(),
                _ => panic!("{k}"),
            };
            let ts = match s.get("timestamp") {
                Some(Value::Number(Number::U64(t))) => *t,
                _ => panic!("timestamp"),
            };
            (str_of("host"), str_of("name"), ts)
        })
        .collect()
}

/// Drives the core like the shell does, answering each request at once
/// with `answer(elapsed, endpoint, head)`.
fn run(
    core: &mut Core,
    t0: Instant,
    to: Duration,
    step: Duration,
    seen: &mut Seen,
    mut cycle: impl FnMut(&mut Core, Duration),
    mut answer: impl FnMut(Duration, Endpoint, &str) -> Outcome,
) {
    let mut t = Duration::ZERO;
    while t <= to {
        let now = t0 + t;
        cycle(core, t);
        core.handle_timeout(now);
        for ep in [Endpoint::Api, Endpoint::Series] {
            while let Some(req) = core.poll_request(ep, now) {
                let (head, body) = split(&req);
                let outcome = answer(t, ep, &head);
                seen.requests.push((t, head, body));
                core.handle_outcome(req.id, outcome, now);
            }
        }
        t += step;
    }
}

fn ok() -> Outcome {
    Outcome::Response {
        status: 200,
        retry_after: None,
        body: b"[]".to_vec(),
    }
}

fn push_cycle(core: &mut Core, t: Duration, fingers: &[String], paths: &[&str]) {
    let list: Vec<(&str, &str, f64)> = fingers
        .iter()
        .flat_map(|f| paths.iter().map(move |p| (f.as_str(), *p, 1.5)))
        .collect();
    core.push_samples(1_700_000_000.0 + t.as_secs_f64(), list);
}

#[test]
fn new_container_is_registered_at_once_and_synced_every_10s() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 1, t0);
    let c = container(1);
    core.container_started(&c, vec!["nginx:2".into()]);
    let mut seen = Seen::default();
    run(
        &mut core,
        t0,
        Duration::from_secs(25),
        Duration::from_millis(100),
        &mut seen,
        |_, _| {},
        |_, _, _| ok(),
    );
    let lines: Vec<(u64, String)> = seen
        .requests
        .iter()
        .map(|(t, h, _)| (t.as_secs(), h.lines().next().unwrap().to_string()))
        .collect();
    let f = &c.fingerprint;
    let hf = host().finger;
    assert_eq!(
        lines[..3],
        [
            (0, format!("POST /agents/{f}/ping HTTP/1.1")),
            (0, format!("PUT /agents/{f}/tags HTTP/1.1")),
            (0, format!("POST /agents/{hf}/ping HTTP/1.1")),
        ]
    );
    // Each sync: host ping, container ping, list; tags are not resent.
    let at = |s: u64| -> Vec<&str> {
        lines
            .iter()
            .filter(|(t, _)| *t == s)
            .map(|(_, l)| l.as_str())
            .collect()
    };
    for s in [10, 20] {
        let l = at(s);
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(l.contains(&format!("POST /agents/{f}/ping HTTP/1.1").as_str()));
        assert!(l.contains(&"GET /agents?mac=mac-1 HTTP/1.1"));
    }
    let (_, head, body) = &seen.requests[0];
    assert!(head.contains(&format!("\r\nAuthorization: Bearer {KEY}\r\n")));
    assert!(head.contains("\r\nContent-Type: application/json\r\n"));
    assert!(head.contains("\r\nHost: backend.test\r\n"));
    let body = String::from_utf8(body.clone()).unwrap();
    assert!(body.contains("\"processes\":[\"nginx:2\"]"));
    assert!(!body.contains(KEY));
    let tags = String::from_utf8(seen.requests[1].2.clone()).unwrap();
    assert!(tags.contains("all,docker,container:010101010101"));
    // The host agent carries DATALOOP_TAGS, sent once.
    assert_eq!(lines[3], (0, format!("PUT /agents/{hf}/tags HTTP/1.1")));
    assert_eq!(
        seen.requests[3].2,
        format!(r#"{{"finger":"{hf}","tags":"docker"}}"#).into_bytes()
    );
    assert_eq!(core.api_counts().tags, 2);
}

#[test]
fn gone_agents_are_deregistered_and_stopped_containers_too() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 1, t0);
    let (a, b) = (container(1), container(2));
    core.container_started(&a, vec![]);
    core.container_started(&b, vec![]);
    let mut seen = Seen::default();
    let listed = format!(
        r#"[{{"id":"{}"}},{{"id":"{}"}},{{"id":"stale-1"}},{{"id":"{}"}}]"#,
        a.fingerprint,
        b.fingerprint,
        host().finger
    );
    let stop_b = b.fingerprint.clone();
    run(
        &mut core,
        t0,
        Duration::from_secs(12),
        Duration::from_millis(500),
        &mut seen,
        |core, t| {
            if t == Duration::from_secs(5) {
                core.container_stopped(&stop_b);
            }
        },
        |_, _, head| {
            if head.starts_with("GET /agents?mac=") {
                Outcome::Response {
                    status: 200,
                    retry_after: None,
                    body: listed.clone().into_bytes(),
                }
            } else {
                ok()
            }
        },
    );
    let deregs: Vec<String> = seen
        .requests
        .iter()
        .filter(|(_, h, _)| h.contains("/deregister "))
        .map(|(_, h, _)| h.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        deregs,
        [
            format!("/agents/{}/deregister", b.fingerprint),
            // b is listed again at 10 s (the fake does not forget it), and
            // is deregistered again; the host and a are kept.
            format!("/agents/{}/deregister", b.fingerprint),
            "/agents/stale-1/deregister".to_string(),
        ]
    );
    assert_eq!(core.tracked(), 1);
}

#[test]
fn backend_down_60s_then_back_everything_arrives_and_counts_balance() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 42, t0);
    let fingers: Vec<String> = (1..=5).map(|n| container(n).fingerprint).collect();
    let paths = ["base.cpu", "base.memory", "base.vmem.used", "base.count"];
    let mut seen = Seen::default();
    let mut attempts_while_down = Vec::new();
    run(
        &mut core,
        t0,
        Duration::from_secs(120),
        Duration::from_millis(50),
        &mut seen,
        |core, t| {
            if t.as_millis() % 10_000 == 0 && t <= Duration::from_secs(100) {
                push_cycle(core, t, &fingers, &paths);
            }
        },
        |t, ep, _| {
            if t < Duration::from_secs(60) {
                if ep == Endpoint::Series {
                    attempts_while_down.push(t);
                }
                Outcome::Failed("connect: Connection refused".into())
            } else {
                ok()
            }
        },
    );
    let c = core.counts(Endpoint::Series).unwrap();
    assert_eq!(c.produced, 11 * 5 * 4);
    assert_eq!((c.delivered, c.buffered, c.dropped()), (c.produced, 0, 0));
    assert!(c.balances());
    // Every sample arrived exactly once.
    let mut delivered = HashSet::new();
    for (t, head, body) in &seen.requests {
        if head.starts_with("POST /v2/accounts/acme/series ") && *t >= Duration::from_secs(60) {
            for s in samples_of(body) {
                assert!(delivered.insert(s.clone()), "duplicate {s:?}");
            }
        }
    }
    assert_eq!(delivered.len() as u64, c.produced);
    // Retries were spaced by a capped, growing backoff: never more than
    // 30 s apart, and far fewer than one per 50 ms step.
    assert!(attempts_while_down.len() >= 4 && attempts_while_down.len() < 60);
    for w in attempts_while_down.windows(2) {
        assert!(w[1] - w[0] <= Duration::from_secs(30) + Duration::from_millis(50));
    }
    // The backlog went out within one backoff ceiling of the recovery.
    let first_ok = seen
        .requests
        .iter()
        .find(|(t, h, _)| *t >= Duration::from_secs(60) && h.starts_with("POST /v2/"))
        .unwrap()
        .0;
    assert!(first_ok <= Duration::from_secs(91), "{first_ok:?}");
    assert!(core.failures(Endpoint::Series) >= 4);
}

#[test]
fn retry_after_on_503_is_honoured() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 3, t0);
    let f = container(1).fingerprint;
    let mut seen = Seen::default();
    let mut answered_503 = false;
    run(
        &mut core,
        t0,
        Duration::from_secs(9),
        Duration::from_millis(100),
        &mut seen,
        |core, t| {
            if t.is_zero() {
                push_cycle(core, t, std::slice::from_ref(&f), &["base.cpu"]);
            }
        },
        |_, ep, _| {
            if ep == Endpoint::Series && !answered_503 {
                answered_503 = true;
                Outcome::Response {
                    status: 503,
                    retry_after: Some(Duration::from_secs(7)),
                    body: Vec::new(),
                }
            } else {
                ok()
            }
        },
    );
    let series: Vec<Duration> = seen
        .requests
        .iter()
        .filter(|(_, h, _)| h.starts_with("POST /v2/"))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(series, [Duration::ZERO, Duration::from_secs(7)]);
    let c = core.counts(Endpoint::Series).unwrap();
    assert_eq!((c.delivered, c.buffered), (1, 0));
}

/// Requests in 90 s against a backend that answers every one with 503 and
/// the given `Retry-After`, one cycle of samples every 10 s.
fn requests_against_a_503_backend(hint: Option<Duration>) -> usize {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 3, t0);
    let f = container(1).fingerprint;
    let mut seen = Seen::default();
    let mut answered = 0usize;
    run(
        &mut core,
        t0,
        Duration::from_secs(90),
        Duration::from_millis(10),
        &mut seen,
        |core, t| {
            if t.as_millis() % 10_000 == 0 {
                push_cycle(core, t, std::slice::from_ref(&f), &["base.cpu"]);
            }
        },
        |_, _, _| {
            answered += 1;
            // Past 1 000 it is a storm already: end it, so that a failing
            // run fails instead of spinning on one instant.
            if answered > 1_000 {
                return ok();
            }
            Outcome::Response {
                status: 503,
                retry_after: hint,
                body: Vec::new(),
            }
        },
    );
    answered
}

/// `Retry-After: 0` (or any hint shorter than the agent's own backoff) may
/// not shorten the backoff: it once made about 1 260 requests a second.
#[test]
fn a_retry_after_shorter_than_the_backoff_does_not_shorten_it() {
    let own = requests_against_a_503_backend(None);
    let zero = requests_against_a_503_backend(Some(Duration::ZERO));
    let short = requests_against_a_503_backend(Some(Duration::from_millis(50)));
    let long = requests_against_a_503_backend(Some(Duration::from_secs(30)));
    println!(
        "requests in 90 s: own backoff {own}, Retry-After 0 {zero}, 50 ms {short}, 30 s {long}"
    );
    assert!(own < 100, "own backoff: {own} requests in 90 s");
    assert!(
        zero <= own,
        "Retry-After: 0 made {zero} requests, own backoff {own}"
    );
    assert!(
        short <= own,
        "Retry-After: 50 ms made {short} requests, own backoff {own}"
    );
    // A longer hint still lengthens it: two endpoints, about 3 tries each.
    assert!(long <= 8, "Retry-After: 30 s made {long} requests");
}

#[test]
fn a_400_drops_that_batch_only_and_counts_it() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 3, t0);
    let f = container(1).fingerprint;
    let mut seen = Seen::default();
    let mut n = 0;
    run(
        &mut core,
        t0,
        Duration::from_secs(30),
        Duration::from_millis(100),
        &mut seen,
        |core, t| {
            if t.as_millis() % 10_000 == 0 {
                push_cycle(
                    core,
                    t,
                    std::slice::from_ref(&f),
                    &["base.cpu", "base.memory"],
                );
            }
        },
        |_, ep, _| {
            if ep != Endpoint::Series {
                return ok();
            }
            n += 1;
            let status = match n {
                1 => 400,
                2 => 429,
                _ => 200,
            };
            Outcome::Response {
                status,
                retry_after: None,
                body: Vec::new(),
            }
        },
    );
    let c = core.counts(Endpoint::Series).unwrap();
    assert_eq!(c.produced, 8);
    assert_eq!((c.dropped_rejected, c.dropped_overflow), (2, 0));
    assert_eq!((c.delivered, c.buffered), (6, 0));
    assert!(c.balances());
    let mut text = String::new();
    core.write_prometheus(&mut text);
    assert!(text.contains("outlyer_agent_dropped_samples_total{sink=\"series\"} 2\n"));
    assert!(text.contains("outlyer_agent_produced_samples_total{sink=\"series\"} 8\n"));
    assert!(text.contains("outlyer_agent_upload_failures_total{endpoint=\"series\"} 2\n"));
    assert!(!text.contains(KEY));
}

#[test]
fn a_full_buffer_drops_the_oldest_first() {
    let t0 = Instant::now();
    let mut core = Core::new(
        &settings(&[("DATALOOP_BUFFER_SAMPLES", "100")]),
        host(),
        9,
        t0,
    );
    let fingers: Vec<String> = (1..=5).map(|n| container(n).fingerprint).collect();
    let paths = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut seen = Seen::default();
    run(
        &mut core,
        t0,
        Duration::from_secs(80),
        Duration::from_millis(100),
        &mut seen,
        |core, t| {
            if t.as_millis() % 10_000 == 0 && t <= Duration::from_secs(30) {
                push_cycle(core, t, &fingers, &paths);
            }
        },
        |t, _, _| {
            if t < Duration::from_secs(40) {
                Outcome::Failed("timed out waiting for the response".into())
            } else {
                ok()
            }
        },
    );
    let c = core.counts(Endpoint::Series).unwrap();
    assert_eq!(
        (c.produced, c.dropped_overflow, c.delivered, c.buffered),
        (200, 100, 100, 0)
    );
    // What arrived is the newest two cycles (t = 20 s and 30 s).
    let mut stamps = HashSet::new();
    for (t, head, body) in &seen.requests {
        if *t >= Duration::from_secs(40) && head.starts_with("POST /v2/") {
            for (_, _, ts) in samples_of(body) {
                stamps.insert(ts);
            }
        }
    }
    assert_eq!(
        stamps,
        HashSet::from([1_700_000_020_000u64, 1_700_000_030_000])
    );
}

#[test]
fn shutdown_deregisters_everything_and_is_bounded_when_the_backend_is_silent() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 5, t0);
    for n in 1..=3 {
        core.container_started(&container(n), vec![]);
    }
    // Everything sent so far is answered.
    while let Some(req) = core.poll_request(Endpoint::Api, t0) {
        core.handle_outcome(req.id, ok(), t0);
    }
    core.push_samples(1.0, [("f", "base.cpu", 1.0)]);
    core.shutdown(Duration::from_millis(4500), t0);
    assert!(!core.is_shutdown_complete());
    let mut deregs = Vec::new();
    let mut in_flight = Vec::new();
    for ep in [Endpoint::Api, Endpoint::Series] {
        while let Some(req) = core.poll_request(ep, t0) {
            let (head, _) = split(&req);
            if head.contains("/deregister") {
                deregs.push(head.split(' ').nth(1).unwrap().to_string());
            }
            in_flight.push(req.id);
        }
    }
    // Two API requests may be in flight at once; the third waits.
    assert_eq!(deregs.len(), 2);
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(4500)));
    // The backend never answers: at the deadline the shutdown is complete.
    core.handle_timeout(t0 + Duration::from_millis(4400));
    assert!(!core.is_shutdown_complete());
    core.handle_timeout(t0 + Duration::from_millis(4500));
    assert!(core.is_shutdown_complete());
    assert!(core
        .poll_request(Endpoint::Api, t0 + Duration::from_secs(5))
        .is_none());

    // And with a responsive backend it completes as soon as all is done.
    let mut core = Core::new(&settings(&[]), host(), 5, t0);
    for n in 1..=3 {
        core.container_started(&container(n), vec![]);
    }
    core.push_samples(1.0, [("f", "base.cpu", 1.0)]);
    core.shutdown(Duration::from_millis(4500), t0);
    let mut deregs = 0;
    for _ in 0..10 {
        for ep in [Endpoint::Api, Endpoint::Series] {
            while let Some(req) = core.poll_request(ep, t0) {
                deregs += usize::from(split(&req).0.contains("/deregister"));
                core.handle_outcome(req.id, ok(), t0);
            }
        }
    }
    assert_eq!(deregs, 3);
    assert!(core.is_shutdown_complete());
    assert_eq!(core.counts(Endpoint::Series).unwrap().delivered, 1);
}

#[test]
fn listed_ids_cannot_reshape_the_request_path() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 5, t0);
    let mut sent = Vec::new();
    let mut respond = |core: &mut Core, now: Instant| {
        while let Some(req) = core.poll_request(Endpoint::Api, now) {
            let (head, _) = split(&req);
            let body = if head.starts_with("GET /agents?mac=") {
                br#"[{"id":"../../admin?x=1 #"}]"#.to_vec()
            } else {
                b"{}".to_vec()
            };
            sent.push(head.lines().next().unwrap().to_string());
            core.handle_outcome(
                req.id,
                Outcome::Response {
                    status: 200,
                    retry_after: None,
                    body,
                },
                now,
            );
        }
    };
    respond(&mut core, t0);
    core.handle_timeout(t0 + Duration::from_secs(10));
    respond(&mut core, t0 + Duration::from_secs(10));
    assert!(sent
        .contains(&"POST /agents/..%2F..%2Fadmin%3Fx%3D1%20%23/deregister HTTP/1.1".to_string()));
}

#[test]
fn closed_idle_connection_is_resent_without_backoff() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 5, t0);
    let req = core.poll_request(Endpoint::Api, t0).unwrap();
    core.handle_outcome(req.id, Outcome::ClosedIdle, t0);
    let again = core.poll_request(Endpoint::Api, t0).unwrap();
    assert_eq!(again.bytes, req.bytes);
    assert_eq!(core.failures(Endpoint::Api), 0);
}

#[test]
fn plain_http_through_a_proxy_uses_absolute_form() {
    let t0 = Instant::now();
    let s = settings(&[
        ("DATALOOP_SERVER", "http://backend.test:8080"),
        ("http_proxy", "http://u:p@proxy.test:3128"),
    ]);
    let mut core = Core::new(&s, host(), 5, t0);
    let req = core.poll_request(Endpoint::Api, t0).unwrap();
    let (head, _) = split(&req);
    assert!(head.starts_with(&format!(
        "POST http://backend.test:8080/agents/{}/ping HTTP/1.1\r\n",
        host().finger
    )));
    assert!(head.contains("\r\nProxy-Authorization: Basic dTpw"));
}

#[test]
fn graphite_batches_are_delivered_when_written() {
    let t0 = Instant::now();
    let mut core = Core::new(
        &settings(&[("DATALOOP_GRAPHITE", "carbon.test:2003")]),
        host(),
        5,
        t0,
    );
    core.push_samples(
        1_700_000_000.0,
        [("fa", "base.cpu", 2.0), ("fa", "base.x", f64::NAN)],
    );
    let req = core.poll_request(Endpoint::Graphite, t0).unwrap();
    assert!(!req.expects_response);
    assert_eq!(req.bytes, b"fa.base.cpu 2 1700000000\n");
    core.handle_outcome(req.id, Outcome::Sent, t0);
    let c = core.counts(Endpoint::Graphite).unwrap();
    assert_eq!((c.produced, c.delivered), (1, 1));
}

#[test]
fn a_past_retry_time_is_no_deadline_once_handled() {
    let t0 = Instant::now();
    let mut core = Core::new(&settings(&[]), host(), 5, t0);
    // Fill both API slots, fail one: it waits for backoff.
    let a = core.poll_request(Endpoint::Api, t0);
    assert!(a.is_some());
    core.container_started(&container(1), vec![]);
    let b = core.poll_request(Endpoint::Api, t0).unwrap();
    core.handle_outcome(b.id, Outcome::Failed("x".into()), t0);
    let retry_at = core.poll_timeout().unwrap();
    assert!(retry_at <= t0 + Duration::from_millis(500));
    // Past the retry time, the remaining slot takes it; with the slots
    // full again the deadline is the sync timer, not the past instant.
    let later = t0 + Duration::from_secs(1);
    core.handle_timeout(later);
    let c = core.poll_request(Endpoint::Api, later).unwrap();
    assert_eq!(c.bytes, b.bytes);
    assert!(core.poll_request(Endpoint::Api, later).is_none());
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(10)));
}

/// xorshift64: inputs for the "never panic on input" property.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn peer_bytes_never_panic_the_parsers() {
    use outlyer_agent::upload::{dns, proxy, retry, wire};
    let q = dns::encode_query(7, "api.example.com", dns::QTYPE_A).unwrap();
    let mut valid = q.clone();
    valid[2] |= 0x80;
    valid[7] = 1;
    valid.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    assert_eq!(
        dns::parse_response(&valid, 7, "api.example.com", dns::QTYPE_A)
            .unwrap()
            .addrs
            .len(),
        1
    );
    let connect_ok = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n".to_vec();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000 {
        // Half random bytes, half mutations of valid inputs.
        let base: &[u8] = if round % 2 == 0 { &valid } else { &connect_ok };
        let mut input = if round % 4 < 2 {
            let n = (noise.next() % 80) as usize;
            (0..n).map(|_| noise.next() as u8).collect::<Vec<u8>>()
        } else {
            let mut m = base.to_vec();
            for _ in 0..1 + noise.next() % 4 {
                let i = (noise.next() as usize) % m.len();
                m[i] = noise.next() as u8;
            }
            m.truncate((noise.next() as usize) % (m.len() + 1));
            m
        };
        let _ = dns::parse_response(&input, 7, "api.example.com", dns::QTYPE_A);
        let _ = proxy::parse_connect_reply(&input);
        let _ = retry::parse_retry_after(&input, Some(&input), 0);
        let _ = wire::parse_agent_ids(&input);
        let _ = wire::parse_pids(&input);
        input.push(b'\n');
        let text = String::from_utf8_lossy(&input).into_owned();
        let _ = dns::parse_resolv_conf(&text);
        let _ = dns::hosts_lookup(&text, "api.example.com");
        let _ = proxy::NoProxy::parse(&text).matches("api.example.com", 443);
        let _ = proxy::Proxy::parse(&text);
        let _ = outlyer_agent::upload::settings::parse_url(&text);
        let _ = retry::parse_http_date(&text);
    }
}

#[test]
fn ten_thousand_containers_are_queued_once_each() {
    let t0 = Instant::now();
    let s = settings(&[]);
    let sync = s.sync_interval;
    let mut core = Core::new(&s, host(), 5, t0);
    let infos: Vec<ContainerInfo> = (0..10_000u32)
        .map(|i| {
            let id = format!("{i:064x}");
            ContainerInfo {
                fingerprint: outlyer_agent::uuid::container_fingerprint(&id),
                name: format!("c{i}"),
                id,
                ..ContainerInfo::default()
            }
        })
        .collect();
    for info in &infos {
        core.container_started(info, vec![]);
    }
    // The sync timer fires before anything went out: every ping is queued
    // already, so none is queued twice.
    core.handle_timeout(t0 + sync);
    let mut pings: HashMap<String, usize> = HashMap::new();
    let mut tags = 0;
    while let Some(req) = core.poll_request(Endpoint::Api, t0 + sync) {
        let (head, _) = split(&req);
        let line = head.lines().next().unwrap().to_owned();
        if let Some(f) = line
            .strip_prefix("POST /agents/")
            .and_then(|r| r.strip_suffix("/ping HTTP/1.1"))
        {
            *pings.entry(f.to_owned()).or_default() += 1;
        }
        tags += usize::from(line.starts_with("PUT "));
        core.handle_outcome(req.id, ok(), t0 + sync);
    }
    assert_eq!(pings.len(), 10_001, "every container and the host");
    assert!(pings.values().all(|&n| n == 1), "one ping each");
    assert_eq!(tags, 10_001);
    // Stopping half of them queues one deregistration each, no pings.
    for info in infos.iter().step_by(2) {
        core.container_stopped(&info.fingerprint);
    }
    let mut deregistered = HashSet::new();
    while let Some(req) = core.poll_request(Endpoint::Api, t0 + sync) {
        let (head, _) = split(&req);
        assert!(head.contains("/deregister "), "{head}");
        assert!(deregistered.insert(head));
        core.handle_outcome(req.id, ok(), t0 + sync);
    }
    assert_eq!(deregistered.len(), 5_000);
    assert_eq!(core.tracked(), 5_000);
}

/// The fault matrix's outage: five minutes of a backend that refuses
/// connections, then answers 503, then accepts and never answers (each
/// request given up at the request timeout), then comes back; a cycle every
/// 30 s. Returns the counts, the samples delivered (in delivery order) and
/// the time of the first delivery after the return.
fn five_minute_outage(
    buffer: Option<&str>,
) -> (
    outlyer_agent::upload::buffer::Counts,
    Vec<(String, String, u64)>,
    Duration,
    u64,
) {
    let t0 = Instant::now();
    let extra: Vec<(&str, &str)> = buffer
        .map(|b| ("DATALOOP_BUFFER_SAMPLES", b))
        .into_iter()
        .collect();
    let mut core = Core::new(&settings(&extra), host(), 7, t0);
    let fingers: Vec<String> = (1..=5).map(|n| container(n).fingerprint).collect();
    let paths = ["base.cpu", "base.memory", "base.vmem.used", "base.count"];
    let back = Duration::from_secs(300);
    let mut seen = Seen::default();
    let mut cycles = 0u64;
    run(
        &mut core,
        t0,
        Duration::from_secs(420),
        Duration::from_millis(50),
        &mut seen,
        |core, t| {
            if t.as_millis() % 30_000 == 0 && t <= Duration::from_secs(360) {
                push_cycle(core, t, &fingers, &paths);
                cycles += 1;
            }
        },
        |t, _, _| match t.as_secs() {
            0..=99 => Outcome::Failed("connect: Connection refused".into()),
            100..=199 => Outcome::Response {
                status: 503,
                retry_after: None,
                body: b"{\"error\":\"unavailable\"}".to_vec(),
            },
            200..=299 => Outcome::Failed("no answer within 10s".into()),
            _ => ok(),
        },
    );
    let c = core.counts(Endpoint::Series).unwrap();
    let mut delivered = Vec::new();
    let mut first_ok = None;
    for (t, head, body) in &seen.requests {
        if head.starts_with("POST /v2/accounts/acme/series ") && *t >= back {
            first_ok.get_or_insert(*t - back);
            delivered.extend(samples_of(body));
        }
    }
    (
        c,
        delivered,
        first_ok.expect("nothing delivered after the return"),
        cycles * 20,
    )
}

#[test]
fn five_minute_outage_refused_then_503_then_silent_loses_nothing() {
    let (c, delivered, recovery, produced) = five_minute_outage(None);
    println!(
        "FIGURE 5-min outage: produced {} = delivered {} + buffered {} + dropped {}; first delivery {recovery:?} after the return",
        c.produced, c.delivered, c.buffered, c.dropped()
    );
    assert_eq!(c.produced, produced);
    assert!(c.balances());
    assert_eq!((c.delivered, c.buffered, c.dropped()), (produced, 0, 0));
    assert_eq!(delivered.len() as u64, produced, "each sample exactly once");
    // In order: every series' timestamps only grow.
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    for (host, name, ts) in &delivered {
        if let Some(prev) = last.insert((host.clone(), name.clone()), *ts) {
            assert!(*ts > prev, "{host} {name}: {ts} after {prev}");
        }
    }
    // Recovery within one interval (30 s, the backoff's ceiling) of the return.
    assert!(recovery <= Duration::from_secs(30), "{recovery:?}");
}

#[test]
fn five_minute_outage_with_a_small_buffer_drops_only_the_oldest() {
    // 20 samples a cycle, 13 cycles: 260 produced into a buffer of 100.
    let (c, delivered, _, produced) = five_minute_outage(Some("100"));
    println!(
        "FIGURE 5-min outage, buffer 100: produced {} = delivered {} + buffered {} + dropped {} (overflow {})",
        c.produced, c.delivered, c.buffered, c.dropped(), c.dropped_overflow
    );
    assert_eq!(c.produced, produced);
    assert!(c.balances());
    assert_eq!(c.buffered, 0);
    assert_eq!(c.dropped(), c.dropped_overflow, "only overflow drops");
    assert!(c.dropped_overflow > 0);
    // What was dropped is older than anything delivered during the outage's
    // backlog: the newest samples survived.
    let backlog: Vec<u64> = delivered.iter().map(|s| s.2).collect();
    let oldest_kept = *backlog.iter().min().unwrap();
    let first_ts = 1_700_000_000_000u64;
    let dropped_cycles = c.dropped_overflow / 20;
    assert!(
        oldest_kept >= first_ts + dropped_cycles * 30_000,
        "oldest delivered {oldest_kept}, {dropped_cycles} cycles dropped"
    );
}
