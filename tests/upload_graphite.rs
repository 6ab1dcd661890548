//! Graphite plaintext into a real carbon-cache (Debian `graphite-carbon`),
//! started here on loopback with its own configuration and storage, and
//! read back with `whisper-fetch` (`python3-whisper`): proof that the
//! agent's path names and line format are accepted end to end.
//!
//! Skipped when carbon is not installed, unless OUTLYER_REQUIRE_DOCKER is
//! set (CI installs the packages and sets it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll};
use outlyer_agent::upload::{Endpoint, HostIdentity, UploadSettings, Uploader};

struct Carbon {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(bin: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
        .iter()
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.exists())
}

fn start_carbon(bin: &Path) -> Carbon {
    let dir = std::env::temp_dir().join(format!("upl-carbon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["conf", "storage/whisper", "storage/lists", "log", "run"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "[cache]\n\
         STORAGE_DIR = {d}/storage\n\
         LOCAL_DATA_DIR = {d}/storage/whisper\n\
         WHITELISTS_DIR = {d}/storage/lists\n\
         CONF_DIR = {d}/conf\n\
         LOG_DIR = {d}/log\n\
         PID_DIR = {d}/run\n\
         ENABLE_LOGROTATION = False\n\
         USER =\n\
         MAX_CACHE_SIZE = inf\n\
         MAX_UPDATES_PER_SECOND = 10000\n\
         MAX_CREATES_PER_MINUTE = inf\n\
         LINE_RECEIVER_INTERFACE = 127.0.0.1\n\
         LINE_RECEIVER_PORT = {port}\n\
         ENABLE_UDP_LISTENER = False\n\
         PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
         PICKLE_RECEIVER_PORT = {}\n\
         CACHE_QUERY_INTERFACE = 127.0.0.1\n\
         CACHE_QUERY_PORT = {}\n\
         LOG_LISTENER_CONNECTIONS = True\n\
         LOG_UPDATES = False\n\
         WHISPER_AUTOFLUSH = True\n",
        free_port(),
        free_port()
    );
    std::fs::write(dir.join("conf/carbon.conf"), conf).unwrap();
    std::fs::write(
        dir.join("conf/storage-schemas.conf"),
        "[everything]\npattern = .*\nretentions = 10s:1d\n",
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config={d}/conf/carbon.conf"))
        .arg(format!("--pidfile={d}/run/carbon.pid"))
        .arg(format!("--logdir={d}/log"))
        .arg("--nodaemon")
        .arg("start")
        .env("GRAPHITE_ROOT", &dir)
        .env("GRAPHITE_CONF_DIR", dir.join("conf"))
        .env("GRAPHITE_STORAGE_DIR", dir.join("storage"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start carbon-cache");
    let carbon = Carbon { child, dir, port };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "carbon-cache did not listen on {port}; logs in {}",
            carbon.dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    carbon
}

#[test]
fn carbon_accepts_the_agents_lines() {
    let Some(carbon_bin) = find("carbon-cache") else {
        assert!(
            std::env::var_os("OUTLYER_REQUIRE_DOCKER").is_none(),
            "carbon-cache is required (apt-get install graphite-carbon python3-whisper)"
        );
        eprintln!("skipped: carbon-cache not installed (Debian package graphite-carbon)");
        return;
    };
    let fetch = find("whisper-fetch").or_else(|| find("whisper-fetch.py"));
    let Some(fetch) = fetch else {
        panic!("carbon is installed but whisper-fetch is not (Debian package python3-whisper)")
    };
    let carbon = start_carbon(&carbon_bin);

    let vars = [
        ("DATALOOP_AGENT_KEY", "k".to_string()),
        // Nothing listens there: the API sync fails on its own, Graphite goes on.
        (
            "DATALOOP_SERVER",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        ("DATALOOP_GRAPHITE", format!("127.0.0.1:{}", carbon.port)),
    ];
    let s =
        UploadSettings::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap()
            .unwrap();
    let host = HostIdentity {
        finger: "11111111-2222-3333-4444-555555555555".into(),
        name: "node1".into(),
        mac: "m".into(),
        tags: vec![],
        hostname: "h".into(),
    };
    let container = outlyer_agent::uuid::container_fingerprint(&"ab".repeat(32));
    let mut poll = Poll::new().unwrap();
    let mut up = Uploader::new(s, host.clone(), 10, Instant::now()).unwrap();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = (now / 10) * 10 - 20; // on the 10 s grid, safely in the past
    let samples: Vec<(&str, &str, f64)> = vec![
        (&container, "base.cpu", 12.5),
        (&container, "base.vmem.used", 1_048_576.0),
        (&container, "base.network.bytes_recv_per_sec", 3.25),
        (&container, "base.load_1_min", 0.5),
        (&host.finger, "base.memory", 42.0),
    ];
    up.push_samples(ts as f64, samples.iter().copied());
    let mut events = Events::with_capacity(16);
    let start = Instant::now();
    while up.core().counts(Endpoint::Graphite).unwrap().delivered < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "lines not written"
        );
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        let now = Instant::now();
        for ev in events.iter() {
            up.ready(poll.registry(), ev.token(), now);
        }
        up.tick(poll.registry(), now);
    }

    for (finger, path, value) in &samples {
        let file = carbon
            .dir
            .join("storage/whisper")
            .join(finger)
            .join(format!("{}.wsp", path.replace('.', "/")));
        let start = Instant::now();
        let mut found = None;
        while start.elapsed() < Duration::from_secs(20) {
            if file.exists() {
                let out = Command::new(&fetch)
                    .arg(format!("--from={}", ts - 60))
                    .arg(format!("--until={}", ts + 60))
                    .arg(&file)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                found = text.lines().find_map(|l| {
                    let (t, v) = l.split_once('\t')?;
                    (t.trim() == ts.to_string()).then(|| v.trim().to_string())
                });
                if found.as_deref().is_some_and(|v| v != "None") {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let got: f64 = found
            .unwrap_or_else(|| panic!("{} never held a value at {ts}", file.display()))
            .parse()
            .unwrap();
        assert_eq!(got, *value, "{finger}.{path}");
    }
}
