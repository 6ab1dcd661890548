//! The Docker sync core on a virtual clock: replies, events and the daemon
//! going away in, requests and container changes out. No socket, no daemon:
//! each test plays one conversation, including the orders a real daemon
//! produces only by bad luck (a restart mid-list, an event racing the list,
//! a container gone before its inspection).

use outlyer_agent::docker::client::{Output, Request};
use outlyer_agent::docker::events::{ContainerEvent, EventAction};
use outlyer_agent::docker::sync::{
    Action, DockerSync, BACKOFF_FIRST, BACKOFF_MAX, READY_GRACE, RELIST_EVERY,
};
use outlyer_agent::docker::version::ApiVersion;
use outlyer_agent::source::{Change, Update};
use std::time::{Duration, Instant};

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn version(api: &str) -> Output {
    ok(
        Request::Version,
        format!(r#"{{"Version":"x","ApiVersion":"{api}","MinAPIVersion":"1.12"}}"#),
    )
}

fn list(running: &[u8]) -> Output {
    let items: Vec<String> = running
        .iter()
        .map(|n| {
            format!(
                r#"{{"Id":"{}","Names":["/c{n}"],"State":"running"}}"#,
                id(*n)
            )
        })
        .collect();
    ok(Request::List, format!("[{}]", items.join(",")))
}

fn inspect(n: u8, pid: u32, running: bool) -> Output {
    ok(
        Request::Inspect(id(n)),
        format!(
            r#"{{"Id":"{}","Name":"/c{n}","State":{{"Running":{running},"Paused":false,"Pid":{pid},"StartedAt":"2026-01-01T00:00:00Z"}},"Config":{{"Image":"img","Labels":{{}}}},"HostConfig":{{"NetworkMode":"bridge"}}}}"#,
            id(n)
        ),
    )
}

fn ok(request: Request, body: String) -> Output {
    reply(request, 200, body)
}

fn reply(request: Request, status: u16, body: String) -> Output {
    Output::Reply {
        request,
        status,
        content_type: Some("application/json".into()),
        body: body.into_bytes(),
    }
}

fn event(action: EventAction, n: u8, name: Option<&str>) -> Output {
    Output::Event(ContainerEvent {
        action,
        id: id(n),
        name: name.map(str::to_owned),
        time_nano: 0,
    })
}

fn drain(s: &mut DockerSync) -> Vec<Action> {
    std::iter::from_fn(|| s.next_action()).collect()
}

/// Ids of the inspections among `actions`, in order.
fn inspections(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Request::Inspect(id)) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

fn changes(actions: Vec<Action>) -> Vec<Change> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Change(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn added_pid(c: &Change) -> Option<(String, u32)> {
    match c {
        Change::Added(info) => Some((info.id.clone(), info.pid)),
        _ => None,
    }
}

/// Connected to an API 1.41 daemon, the events stream open, the container
/// list requested (and the actions so far drained).
fn listing(t: Instant) -> DockerSync {
    let mut s = DockerSync::new();
    s.set_want_info(false);
    s.connect();
    s.handle(version("1.41"), t);
    s.handle(Output::EventsOpen { status: 200 }, t);
    drain(&mut s);
    s
}

/// Connects to an API 1.41 daemon whose list holds `running`, inspects
/// them all (pids 100 + n) and returns the sync, synced.
fn synced(t: Instant, running: &[u8]) -> DockerSync {
    let mut s = DockerSync::new();
    s.set_want_info(false);
    s.connect();
    assert_eq!(drain(&mut s), vec![Action::Send(Request::Version)]);
    s.handle(version("1.41"), t);
    let a = drain(&mut s);
    assert_eq!(
        a,
        vec![
            Action::SetVersion(ApiVersion::new(1, 41)),
            Action::OpenEvents(
                "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D".into()
            ),
        ],
        "API ≥ 1.21: the list waits for the events head"
    );
    s.handle(Output::EventsOpen { status: 200 }, t);
    assert_eq!(drain(&mut s), vec![Action::Send(Request::List)]);
    s.handle(list(running), t);
    let a = drain(&mut s);
    let mut want: Vec<String> = running.iter().map(|n| id(*n)).collect();
    let mut got = inspections(&a);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(!s.is_synced(), "inspections outstanding");
    for n in running {
        s.handle(inspect(*n, 100 + u32::from(*n), true), t);
    }
    let added: Vec<_> = changes(drain(&mut s))
        .iter()
        .filter_map(added_pid)
        .collect();
    assert_eq!(added.len(), running.len());
    assert!(s.is_synced() && s.is_up());
    assert_eq!(s.known(), running.len());
    s
}

#[test]
fn first_sync_inspects_each_running_container_once_and_adds_it() {
    let t = Instant::now();
    let s = synced(t, &[1, 2, 3]);
    assert_eq!(
        s.deadline(),
        Some(t + RELIST_EVERY),
        "the safety-net re-list"
    );
}

#[test]
fn old_daemons_are_listed_without_waiting_for_an_events_head() {
    let t = Instant::now();
    let mut s = DockerSync::new();
    s.connect();
    drain(&mut s);
    s.handle(version("1.19"), t);
    let a = drain(&mut s);
    assert_eq!(a[0], Action::SetVersion(ApiVersion::new(1, 19)));
    assert_eq!(
        a[1],
        Action::Send(Request::Info),
        "the host identity is wanted"
    );
    assert!(matches!(a[2], Action::OpenEvents(_)));
    assert_eq!(a[3], Action::Send(Request::List));
    // The late head of an old daemon's stream does not list a second time.
    s.handle(Output::EventsOpen { status: 200 }, t);
    assert_eq!(drain(&mut s), vec![]);
}

#[test]
fn info_reply_and_failure_both_report_the_daemon() {
    let t = Instant::now();
    let mut s = DockerSync::new();
    s.handle(
        ok(Request::Info, r#"{"ID":"ABCD:EF","Name":"node-7"}"#.into()),
        t,
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Daemon {
            id: Some("ABCD:EF".into()),
            name: Some("node-7".into())
        }]
    );
    s.handle(reply(Request::Info, 500, r#"{"message":"boom"}"#.into()), t);
    assert_eq!(
        drain(&mut s),
        vec![Action::Daemon {
            id: None,
            name: None
        }],
        "a failed /info lets the uploader start with what is known"
    );
    // A daemon that is up never goes down for a failed /info.
    assert!(!s.is_down());
}

#[test]
fn an_event_before_the_list_finishes_is_not_lost_or_doubled() {
    let t = Instant::now();
    let mut s = listing(t);
    // Container 5 starts while the list is in flight; the list then shows it.
    s.handle(event(EventAction::Start, 5, Some("c5")), t);
    assert_eq!(inspections(&drain(&mut s)), vec![id(5)]);
    s.handle(list(&[4, 5]), t);
    assert_eq!(
        inspections(&drain(&mut s)),
        vec![id(4)],
        "5 is being inspected already"
    );
    s.handle(inspect(5, 105, true), t);
    s.handle(inspect(4, 104, true), t);
    let added: Vec<_> = changes(drain(&mut s))
        .iter()
        .filter_map(added_pid)
        .collect();
    assert_eq!(added, vec![(id(5), 105), (id(4), 104)]);
    assert!(s.is_synced());

    // A container that dies while the list is in flight: its inspection
    // comes back stale and is dropped, and nothing is added.
    s.handle(event(EventAction::Start, 6, None), t);
    drain(&mut s);
    s.handle(event(EventAction::Die, 6, None), t);
    assert_eq!(
        drain(&mut s),
        vec![],
        "6 was never reported, so nothing to remove"
    );
    s.handle(inspect(6, 106, true), t);
    assert_eq!(drain(&mut s), vec![], "a stale inspection adds nothing");
}

#[test]
fn inspect_404_and_errors_drop_the_container_quietly_and_the_sync_completes() {
    let t = Instant::now();
    let mut s = listing(t);
    s.handle(list(&[1, 2, 3]), t);
    drain(&mut s);
    s.handle(
        reply(
            Request::Inspect(id(1)),
            404,
            r#"{"message":"No such container"}"#.into(),
        ),
        t,
    );
    s.handle(reply(Request::Inspect(id(2)), 500, "oops".into()), t);
    s.handle(inspect(3, 0, false), t);
    assert_eq!(drain(&mut s), vec![], "no change, no reconnect");
    assert!(s.is_synced() && s.is_up());
    assert_eq!(s.known(), 0);
    // An unusable inspection body is the same: skipped, the daemon stays up.
    s.handle(event(EventAction::Start, 7, None), t);
    drain(&mut s);
    s.handle(ok(Request::Inspect(id(7)), "{not json".into()), t);
    assert_eq!(drain(&mut s), vec![]);
    assert!(s.is_up());
}

#[test]
fn a_die_event_for_an_unknown_id_changes_nothing() {
    let t = Instant::now();
    let mut s = synced(t, &[1]);
    s.handle(event(EventAction::Die, 9, None), t);
    s.handle(event(EventAction::Destroy, 9, None), t);
    s.handle(event(EventAction::Rename, 9, Some("/x")), t);
    s.handle(event(EventAction::Pause, 1, None), t);
    assert_eq!(
        changes(drain(&mut s)),
        vec![Change::Updated {
            id: id(1),
            update: Update::Paused(true)
        }]
    );
    assert_eq!(s.known(), 1);
}

#[test]
fn events_for_known_containers() {
    let t = Instant::now();
    let mut s = synced(t, &[1, 2]);
    s.handle(event(EventAction::Rename, 1, Some("/new-name")), t);
    assert_eq!(
        changes(drain(&mut s)),
        vec![Change::Updated {
            id: id(1),
            update: Update::Name("new-name".into())
        }]
    );
    // Rename without the new name (Docker ≤ 1.9): inspect again.
    s.handle(event(EventAction::Rename, 1, None), t);
    assert_eq!(inspections(&drain(&mut s)), vec![id(1)]);
    s.handle(inspect(1, 101, true), t);
    drain(&mut s);
    // A start of a known container is a restart: inspect, report the new pid.
    s.handle(event(EventAction::Start, 2, None), t);
    s.handle(event(EventAction::Start, 2, None), t);
    assert_eq!(inspections(&drain(&mut s)), vec![id(2)], "one inspection");
    s.handle(inspect(2, 777, true), t);
    assert_eq!(
        changes(drain(&mut s))
            .iter()
            .filter_map(added_pid)
            .collect::<Vec<_>>(),
        vec![(id(2), 777)]
    );
    s.handle(event(EventAction::Die, 2, None), t);
    s.handle(event(EventAction::Destroy, 2, None), t);
    assert_eq!(
        changes(drain(&mut s)),
        vec![Change::Removed {
            id: id(2),
            why: "died"
        }],
        "removed once"
    );
    // Events the sync has no use for.
    for a in [
        EventAction::Create,
        EventAction::Oom,
        EventAction::Other("exec_start".into()),
    ] {
        s.handle(event(a, 1, None), t);
    }
    assert_eq!(drain(&mut s), vec![]);
}

#[test]
fn relist_finds_drift_both_ways() {
    let t = Instant::now();
    let mut s = synced(t, &[1, 2]);
    assert_eq!(s.deadline(), Some(t + RELIST_EVERY));
    s.tick(t + RELIST_EVERY - Duration::from_millis(1));
    assert_eq!(drain(&mut s), vec![], "not due yet");
    let t1 = t + RELIST_EVERY;
    s.tick(t1);
    assert_eq!(drain(&mut s), vec![Action::Send(Request::List)]);
    // A second tick while the list is in flight asks nothing more.
    s.tick(t1 + RELIST_EVERY);
    assert_eq!(drain(&mut s), vec![]);
    // 2 vanished without an event, 3 appeared without one.
    s.handle(list(&[1, 3]), t1);
    let a = drain(&mut s);
    assert_eq!(
        inspections(&a),
        vec![id(3)],
        "1 is known: not inspected again"
    );
    assert_eq!(
        changes(a),
        vec![Change::Removed {
            id: id(2),
            why: "not running"
        }]
    );
}

#[test]
fn daemon_restart_mid_list_backs_off_then_resyncs_everything() {
    let t = Instant::now();
    let mut s = synced(t, &[1, 2]);
    // A re-list, and the daemon goes away before answering.
    s.tick(t + RELIST_EVERY);
    drain(&mut s);
    let t1 = t + RELIST_EVERY;
    s.handle(Output::Down("connection reset".into()), t1);
    assert_eq!(drain(&mut s), vec![Action::Reset, Action::Unavailable]);
    assert!(s.is_down() && !s.is_up() && !s.is_synced());
    assert_eq!(s.known(), 2, "containers are kept while the daemon is away");
    assert_eq!(
        s.deadline(),
        Some(t1 + BACKOFF_FIRST),
        "no re-list while down"
    );

    // Reconnects double their wait up to the cap while /version fails.
    let mut at = t1 + BACKOFF_FIRST;
    let mut wait = BACKOFF_FIRST;
    for _ in 0..12 {
        s.tick(at);
        assert_eq!(drain(&mut s), vec![Action::Send(Request::Version)]);
        s.handle(Output::Down("connection refused".into()), at);
        assert_eq!(drain(&mut s), vec![Action::Reset, Action::Unavailable]);
        wait = (wait * 2).min(BACKOFF_MAX);
        assert_eq!(s.deadline(), Some(at + wait));
        at += wait;
    }
    assert_eq!(wait, BACKOFF_MAX);

    // Back: /version answers, then the list shows 1 (restarted) and 3, not 2.
    s.tick(at);
    drain(&mut s);
    s.handle(version("1.41"), at);
    drain(&mut s);
    s.handle(Output::EventsOpen { status: 200 }, at);
    assert_eq!(drain(&mut s), vec![Action::Send(Request::List)]);
    assert_eq!(s.deadline(), None, "neither reconnect nor re-list pending");
    s.handle(list(&[1, 3]), at);
    let a = drain(&mut s);
    let mut got = inspections(&a);
    got.sort();
    assert_eq!(
        got,
        vec![id(1), id(3)],
        "the resync re-inspects known ones too"
    );
    assert_eq!(
        changes(a),
        vec![Change::Removed {
            id: id(2),
            why: "not running"
        }]
    );
    s.handle(inspect(1, 555, true), at);
    s.handle(inspect(3, 103, true), at);
    assert_eq!(
        changes(drain(&mut s))
            .iter()
            .filter_map(added_pid)
            .collect::<Vec<_>>(),
        vec![(id(1), 555), (id(3), 103)],
        "the restarted container's new pid reaches the registry"
    );
    assert!(s.is_synced() && s.is_up() && !s.is_down());

    // The complete list reset the backoff: the next loss waits BACKOFF_FIRST.
    s.handle(Output::Down("gone again".into()), at);
    drain(&mut s);
    assert_eq!(s.deadline(), Some(at + BACKOFF_FIRST));
}

#[test]
fn a_daemon_that_answers_version_but_fails_the_list_keeps_backing_off() {
    let t = Instant::now();
    let mut s = DockerSync::new();
    s.set_want_info(false);
    let mut at = t;
    s.connect();
    let mut waits = Vec::new();
    for _ in 0..4 {
        drain(&mut s);
        s.handle(version("1.41"), at);
        s.handle(Output::EventsOpen { status: 200 }, at);
        drain(&mut s);
        s.handle(
            reply(Request::List, 500, r#"{"message":"db locked"}"#.into()),
            at,
        );
        assert_eq!(drain(&mut s), vec![Action::Reset, Action::Unavailable]);
        let next = s.deadline().unwrap();
        waits.push(next - at);
        at = next;
        s.tick(at);
    }
    assert_eq!(
        waits,
        [100, 200, 400, 800].map(Duration::from_millis).to_vec()
    );
    // An unusable list body counts the same.
    drain(&mut s);
    s.handle(version("1.41"), at);
    s.handle(Output::EventsOpen { status: 200 }, at);
    drain(&mut s);
    s.handle(ok(Request::List, "[{".into()), at);
    assert_eq!(drain(&mut s), vec![Action::Reset, Action::Unavailable]);
    assert_eq!(s.deadline(), Some(at + Duration::from_millis(1600)));
}

#[test]
fn a_reappearing_socket_cuts_the_backoff_short() {
    let t = Instant::now();
    let mut s = synced(t, &[1]);
    // Up: a socket event means nothing.
    s.socket_appeared(t);
    assert_eq!(s.deadline(), Some(t + RELIST_EVERY));
    let mut at = t;
    for _ in 0..10 {
        s.handle(Output::Down("refused".into()), at);
        at = s.deadline().unwrap();
        s.tick(at);
    }
    s.handle(Output::Down("refused".into()), at);
    drain(&mut s);
    assert!(s.deadline().unwrap() - at >= Duration::from_secs(25));
    s.socket_appeared(at + Duration::from_millis(3));
    assert_eq!(s.deadline(), Some(at + Duration::from_millis(3)));
    s.tick(at + Duration::from_millis(3));
    assert_eq!(drain(&mut s), vec![Action::Send(Request::Version)]);
}

#[test]
fn unusable_version_reply_is_the_daemon_down() {
    let t = Instant::now();
    let mut s = DockerSync::new();
    s.connect();
    drain(&mut s);
    s.handle(ok(Request::Version, "<html>".into()), t);
    assert_eq!(drain(&mut s), vec![Action::Reset, Action::Unavailable]);
    assert!(s.is_down());
}

#[test]
fn ready_after_a_complete_list_and_until_the_daemon_is_away_too_long() {
    let t = Instant::now();
    let mut s = DockerSync::new();
    assert_eq!(
        s.readiness(t),
        Err("no container list yet: waiting for the Docker API".into())
    );
    s.connect();
    s.handle(Output::Down("connection refused".into()), t);
    assert_eq!(
        s.readiness(t + Duration::from_secs(7)),
        Err("no container list yet: the Docker API has not answered for 7s".into())
    );
    let mut s = synced(t, &[1]);
    assert_eq!(s.readiness(t), Ok(()));
    let t1 = t + Duration::from_secs(100);
    s.handle(Output::Down("connection reset".into()), t1);
    assert_eq!(
        s.readiness(t1 + READY_GRACE - Duration::from_millis(1)),
        Ok(())
    );
    assert_eq!(
        s.readiness(t1 + READY_GRACE),
        Err("the Docker API has not answered for 30s".into())
    );
    // Reachable again: ready at once (the complete list of earlier counts).
    let t2 = t1 + Duration::from_secs(45);
    s.tick(t2);
    s.handle(version("1.41"), t2);
    s.handle(Output::EventsOpen { status: 200 }, t2);
    assert_eq!(s.readiness(t2), Ok(()), "up again");
    s.handle(list(&[1]), t2);
    assert_eq!(s.readiness(t2), Ok(()));
}
