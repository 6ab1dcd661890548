//! The open-files limit reached: a host with more containers than the
//! limit lets the agent hold files for. The collector stops short of the
//! limit (it leaves `FD_RESERVE` descriptors to the rest of the agent), so
//! the agent still answers every scrape, still lists every container, says
//! once what is missing and why.

mod common;

use common::*;
use outlyer_agent::metrics::FD_RESERVE;
use outlyer_testkit::{FakeDaemon, SyntheticHost, TreeLayout, TreeOptions};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn out_of_descriptors_the_agent_still_answers_and_lists_every_container() {
    let n = 120;
    // Room for the reserve and about 20 containers' files, not 120.
    let nofile = FD_RESERVE + 20 * 17;
    let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, n)).unwrap();
    let daemon = FakeDaemon::start((0..n).map(|i| host.container_info(i)).collect()).unwrap();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("outlyer-fdlimit-{}.log", std::process::id()));
    let mut agent = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(agent_bin())
        .arg("--rootfs")
        .arg(host.rootfs())
        .arg("--docker-socket")
        .arg(daemon.socket())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "1"])
        .env_remove("DATALOOP_AGENT_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("prlimit (util-linux) and the agent");
    let addr = format!("127.0.0.1:{port}");
    let listed = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        try_http_get(&addr, "/metrics")
            .is_ok_and(|r| gauge(&r.body_text(), "outlyer_agent_containers") == Some(n as f64))
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        listed.is_some(),
        "not all {n} containers listed; log:\n{text}"
    );
    // Past the limit, connections keep coming and being answered.
    for _ in 0..100 {
        assert_eq!(http_get(&addr, "/healthz").0, 200);
    }
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    let pid = agent.id();
    let fds = open_fds(pid) as u64;
    let _ = agent.kill();
    let _ = agent.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    eprintln!(
        "nofile {nofile}: the agent holds {fds} descriptors for {n} containers, {} bytes of /metrics",
        body.len()
    );
    assert!(
        fds < nofile - FD_RESERVE / 2,
        "{fds} descriptors held of {nofile}"
    );
    assert_eq!(
        text.matches("out of file descriptors").count(),
        1,
        "said once:\n{text}"
    );
    assert!(body.contains("container_cpu_usage_seconds_total{"));
}
