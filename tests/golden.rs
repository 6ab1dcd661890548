//! Byte-for-byte views of fixed trees: the `/metrics` text, the Outlyer
//! samples and every upload body (agent API pings and tags, Graphite lines,
//! the series API body) rendered from the captured Docker tree and from
//! synthetic trees of each cgroup layout, compared with the files under
//! `tests/fixtures/golden/`. A refactor must leave them unchanged; a change
//! meant to alter an output regenerates them with `GOLDEN_UPDATE=1` and the
//! diff shows in review what changed.

use outlyer_agent::metrics::Collector;
use outlyer_agent::registry::ContainerInfo;
use outlyer_agent::upload::graphite::write_graphite_line;
use outlyer_agent::upload::series::{write_series_body, SeriesSample};
use outlyer_agent::upload::wire::{container_ping_body, container_tags, host_ping_body, tags_body};
use outlyer_testkit::{sample_host, Driver, SyntheticHost, TreeLayout, TreeOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const UNIX0: f64 = 1_760_000_000.0;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// Compares `got` with the stored file (or rewrites it under GOLDEN_UPDATE).
fn check(name: &str, got: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n  want: {:?}\n  got:  {:?}\n({} vs {} bytes)",
            path.display(),
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line),
            want.len(),
            got.len()
        );
    }
}

/// The one sample that is a measurement of this run (the cycle's own
/// duration) keeps its name and loses its value.
fn mask_measured(text: &str) -> String {
    let mut masked = 0;
    let out: String = text
        .lines()
        .map(
            |l| match l.strip_prefix("outlyer_agent_collection_seconds ") {
                Some(v) => {
                    assert!(v.parse::<f64>().is_ok_and(|v| v > 0.0), "{l}");
                    masked += 1;
                    "outlyer_agent_collection_seconds <measured>\n".to_owned()
                }
                None => format!("{l}\n"),
            },
        )
        .collect();
    assert_eq!(masked, 1, "the cycle's duration appears once");
    out
}

/// Two cycles ten seconds apart (rates need a previous reading), then
/// every view of the second one.
fn render(name: &str, rootfs: &Path, infos: &[ContainerInfo], mut between: impl FnMut()) {
    let t0 = Instant::now();
    let mut c = Collector::new(rootfs, "11111111-2222-3333-4444-555555555555");
    for info in infos {
        c.track(info, t0, UNIX0);
    }
    c.collect(t0, UNIX0);
    between();
    let t1 = t0 + Duration::from_secs(10);
    c.collect(t1, UNIX0 + 10.0);

    let mut prom = Vec::new();
    c.write_prometheus(&mut prom);
    check(
        &format!("{name}.prom"),
        &mask_measured(&String::from_utf8(prom).unwrap()),
    );

    let mut samples = Vec::new();
    c.for_each_outlyer_sample(|finger, path, value| {
        samples.push((finger.to_owned(), path, value));
    });
    let mut outlyer = String::new();
    for (finger, path, value) in &samples {
        let _ = writeln!(outlyer, "{finger} {path} {value:?}");
    }
    check(&format!("{name}.outlyer"), &outlyer);

    let host = sample_host();
    let mut bodies = String::new();
    let _ = writeln!(bodies, "{}", host_ping_body(&host));
    let _ = writeln!(bodies, "{}", tags_body(&host.finger, "docker,linux"));
    for info in infos {
        let _ = writeln!(
            bodies,
            "{}",
            container_ping_body(info, &["sh:1".to_owned(), "sleep:2".to_owned()], &host)
        );
        let _ = writeln!(bodies, "{}", container_tags(info, &host));
    }
    check(&format!("{name}.bodies"), &bodies);

    let mut graphite = Vec::new();
    for (finger, path, value) in &samples {
        write_graphite_line(&mut graphite, finger, path, *value, UNIX0 + 10.0);
    }
    check(
        &format!("{name}.graphite"),
        &String::from_utf8(graphite).unwrap(),
    );

    let mut series = String::new();
    write_series_body(
        &mut series,
        // As the uploader sends them: each sample's own fingerprint is its host.
        samples.iter().map(|(finger, path, value)| SeriesSample {
            host: finger,
            container: infos
                .iter()
                .find(|i| &i.fingerprint == finger)
                .map(|i| i.name.as_str()),
            name: path,
            unix_secs: UNIX0 + 10.0,
            value: *value,
        }),
    );
    series.push('\n');
    check(&format!("{name}.series"), &series);
}

fn synthetic(name: &str, layout: TreeLayout, driver: Driver) {
    let mut opts = TreeOptions::new(layout, 3);
    opts.driver = driver;
    let mut host = SyntheticHost::create(opts).unwrap();
    let mut infos: Vec<ContainerInfo> = (0..3).map(|i| host.container_info(i)).collect();
    infos[1].ips = vec!["172.17.0.3".into(), "fd00::3".into()];
    infos[2].env_tags = vec!["role:db".into()];
    let root = host.rootfs().to_owned();
    render(name, &root, &infos, || host.advance(10.0).unwrap());
}

#[test]
fn v1_comounted_cgroupfs() {
    synthetic("v1-comounted", TreeLayout::V1Comounted, Driver::Cgroupfs);
}

#[test]
fn v1_centos6() {
    synthetic("v1-centos6", TreeLayout::V1CentOs6, Driver::Cgroupfs);
}

#[test]
fn hybrid_systemd() {
    synthetic("hybrid-systemd", TreeLayout::Hybrid, Driver::Systemd);
}

#[test]
fn v2_systemd() {
    synthetic("v2-systemd", TreeLayout::V2, Driver::Systemd);
}

#[test]
fn v2_kubernetes() {
    synthetic("v2-kubernetes", TreeLayout::V2, Driver::Kubernetes);
}

#[test]
fn captured_docker_tree() {
    let tree =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trees/v1-hybrid-docker20");
    let infos: Vec<ContainerInfo> = std::fs::read_to_string(tree.join("containers"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            ContainerInfo {
                id: f[0].into(),
                pid: f[1].parse().unwrap(),
                name: format!("/{}", f[2]),
                image: "localbusy".into(),
                fingerprint: format!("finger-{}", f[2]),
                ..ContainerInfo::default()
            }
        })
        .collect();
    render("captured-v1-hybrid", &tree, &infos, || {});
}

/// Every request the upload core sends for one cycle of the v2 tree's
/// samples (three containers registered, the series API and Graphite on),
/// answered at once: request heads and bodies exactly as they go out.
#[test]
fn upload_core_requests() {
    use outlyer_agent::upload::core::Core;
    use outlyer_agent::upload::{Endpoint, Outcome, UploadSettings};
    let vars = [
        ("DATALOOP_AGENT_KEY", "golden-key"),
        ("DATALOOP_SERVER", "https://backend.test/api"),
        (
            "DATALOOP_SERIES_URL",
            "https://backend.test/v2/accounts/acme/series",
        ),
        ("DATALOOP_GRAPHITE", "graphite.test:2003"),
    ];
    let settings = UploadSettings::from_env(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
    .unwrap();
    let t0 = Instant::now();
    let mut core = Core::new(&settings, sample_host(), 7, t0);
    let mut host = SyntheticHost::create(TreeOptions::new(TreeLayout::V2, 3)).unwrap();
    let infos: Vec<ContainerInfo> = (0..3).map(|i| host.container_info(i)).collect();
    for info in &infos {
        core.container_started(info, vec!["sleep:1".into()]);
    }
    let mut c = Collector::new(host.rootfs(), &sample_host().finger);
    for info in &infos {
        c.track(info, t0, UNIX0);
    }
    c.collect(t0, UNIX0);
    host.advance(10.0).unwrap();
    c.collect(t0 + Duration::from_secs(10), UNIX0 + 10.0);
    let mut samples = Vec::new();
    c.for_each_outlyer_sample(|f, p, v| samples.push((f.to_owned(), p, v)));
    core.push_samples(
        UNIX0 + 10.0,
        samples.iter().map(|(f, p, v)| (f.as_str(), *p, *v)),
    );
    let mut out = String::new();
    for ep in [Endpoint::Api, Endpoint::Series, Endpoint::Graphite] {
        while let Some(req) = core.poll_request(ep, t0) {
            let _ = writeln!(
                out,
                "=== {} {} expects_response={}",
                ep.name(),
                req.what,
                req.expects_response
            );
            out.push_str(&String::from_utf8(req.bytes).unwrap());
            out.push('\n');
            let outcome = if req.expects_response {
                Outcome::Response {
                    status: 200,
                    retry_after: None,
                    body: b"[]".to_vec(),
                }
            } else {
                Outcome::Sent
            };
            core.handle_outcome(req.id, outcome, t0);
        }
    }
    check("upload-core-requests.http", &out);
    let mut families = String::new();
    core.write_prometheus(&mut families);
    check("upload-core-families.prom", &families);
}
