//! Fault matrix, hostile cgroup and proc files: one container's file is
//! cut short, 10 MB long, non-numeric, negative, full of NULs, or its
//! directory is removed between open and read, on v1 and v2 trees. The
//! collector must not panic; the corrupted container loses the metrics that
//! file carries for that cycle (they are omitted, not replaced by garbage nor
//! by the previous value, which would pass a stale figure off as fresh),
//! keeps every other one, and they come back with the next good read; every
//! other container's figures are exactly those of an uncorrupted run; each
//! unusable read counts in `outlyer_agent_read_errors_total`; memory stays
//! bounded (single-show files are read up to 1 MiB, multi-record ones up to
//! 4 MiB, a larger file is unusable and the buffer it grew is released).

use outlyer_agent::metrics::Collector;
use outlyer_testkit::{SyntheticHost, TreeLayout, TreeOptions};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests run one at a time: the memory figures are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

const LAYOUTS: [TreeLayout; 2] = [TreeLayout::V1Comounted, TreeLayout::V2];
const T0: f64 = 1_700_000_000.0;

/// A file to corrupt and the families it alone carries.
struct Target {
    what: &'static str,
    path: fn(&SyntheticHost) -> PathBuf,
    families: &'static [&'static str],
}

fn targets(layout: TreeLayout) -> [Target; 2] {
    let v2 = layout == TreeLayout::V2;
    let cpu = Target {
        what: if v2 { "cpu.stat" } else { "cpuacct.usage" },
        path: if v2 {
            |h| {
                h.cgroup_dir("cpu", &h.containers[0].cgroup_path)
                    .join("cpu.stat")
            }
        } else {
            |h| {
                h.cgroup_dir("cpuacct", &h.containers[0].cgroup_path)
                    .join("cpuacct.usage")
            }
        },
        families: if v2 {
            &[
                "container_cpu_usage_seconds_total",
                "container_cpu_user_seconds_total",
                "container_cpu_system_seconds_total",
                "container_cpu_cfs_",
            ]
        } else {
            &["container_cpu_usage_seconds_total"]
        },
    };
    let mem = Target {
        what: if v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        },
        path: if v2 {
            |h| {
                h.cgroup_dir("memory", &h.containers[0].cgroup_path)
                    .join("memory.current")
            }
        } else {
            |h| {
                h.cgroup_dir("memory", &h.containers[0].cgroup_path)
                    .join("memory.usage_in_bytes")
            }
        },
        // Without a usage figure no memory figure is published.
        families: &[
            "container_memory_",
            "container_oom_events_total",
            "container_spec_memory_",
        ],
    };
    [cpu, mem]
}

/// How a valid file is spoilt.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    /// Cut in the middle of its first number (no final newline).
    Truncated,
    /// 10 MB of digits.
    HugeDigits,
    /// 10 MB of bytes of every value.
    HugeGarbage,
    /// Every digit a letter.
    NonNumeric,
    /// A minus sign before every number.
    Negative,
    /// NULs in the middle of the first number.
    Nul,
}

const HUGE: usize = 10 << 20;

/// Writes the corrupted form of `valid` to `path` (10 MB bodies in pieces,
/// so the test itself holds no 10 MB buffer).
fn corrupt(path: &PathBuf, valid: &[u8], c: Corruption) {
    let first = valid.iter().position(u8::is_ascii_digit).unwrap();
    let run = valid[first..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let mid = first + run.div_ceil(2);
    let body: Vec<u8> = match c {
        Corruption::Truncated => valid[..mid].to_vec(),
        Corruption::NonNumeric => valid
            .iter()
            .map(|&b| {
                if b.is_ascii_digit() {
                    b'a' + (b - b'0')
                } else {
                    b
                }
            })
            .collect(),
        Corruption::Negative => {
            let mut out = Vec::new();
            let mut prev = b' ';
            for &b in valid {
                if b.is_ascii_digit() && !prev.is_ascii_digit() {
                    out.push(b'-');
                }
                out.push(b);
                prev = b;
            }
            out
        }
        Corruption::Nul => {
            let mut out = valid[..mid].to_vec();
            out.extend_from_slice(b"\0\0\0");
            out.extend_from_slice(&valid[mid..]);
            out
        }
        Corruption::HugeDigits | Corruption::HugeGarbage => {
            let mut f = std::fs::File::create(path).unwrap();
            let mut piece = vec![0u8; 64 * 1024];
            let mut x: u32 = 0x9e37_79b9;
            for _ in 0..HUGE / piece.len() {
                for b in piece.iter_mut() {
                    *b = match c {
                        Corruption::HugeDigits => b'7',
                        _ => {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            x as u8
                        }
                    };
                }
                f.write_all(&piece).unwrap();
            }
            f.write_all(b"\n").unwrap();
            return;
        }
    };
    // In place: the collector holds the file open.
    std::fs::write(path, body).unwrap();
}

/// The sample lines of the Prometheus text for container `i` (by its `id` label).
fn lines_of(text: &str, host: &SyntheticHost, i: usize) -> BTreeSet<String> {
    let id = format!("id=\"{}\"", host.containers[i].cgroup_path);
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&id))
        .map(str::to_string)
        .collect()
}

/// Equal sets, or a panic naming the lines only one has (shortened).
fn assert_same(got: &BTreeSet<String>, want: &BTreeSet<String>, what: &str) {
    let short = |l: &String| {
        let name = l.split('{').next().unwrap_or("");
        format!("{name} {}", l.rsplit(' ').next().unwrap_or(""))
    };
    let extra: Vec<String> = got.difference(want).map(short).collect();
    let missing: Vec<String> = want.difference(got).map(short).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: unexpected {extra:?}, missing {missing:?}"
    );
}

fn read_errors(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("outlyer_agent_read_errors_total "))
        .expect("outlyer_agent_read_errors_total in the Prometheus text")
        .parse()
        .unwrap()
}

fn prom(c: &Collector) -> String {
    let mut out = Vec::new();
    c.write_prometheus(&mut out);
    String::from_utf8(out).unwrap()
}

fn outlyer(c: &Collector, finger: &str) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    c.for_each_outlyer_sample(|f, p, v| {
        if f == finger {
            s.insert(format!("{p} {v}"));
        }
    });
    s
}

/// Anonymous memory of this process, KiB.
fn rss_anon_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Three containers tracked, two cycles 10 s apart; `spoil` runs between
/// the second advance and the second collection.
struct Run {
    host: SyntheticHost,
    c: Collector,
    text: String,
}

fn run(layout: TreeLayout, spoil: impl FnOnce(&SyntheticHost)) -> Run {
    let mut host = SyntheticHost::create(TreeOptions::new(layout, 3)).unwrap();
    let mut c = Collector::new(host.rootfs(), "host-finger");
    let t0 = Instant::now();
    c.collect(t0, T0);
    for i in 0..3 {
        c.track(&host.container_info(i), t0, T0);
    }
    host.advance(10.0).unwrap();
    spoil(&host);
    c.collect(t0 + Duration::from_secs(10), T0 + 10.0);
    let text = prom(&c);
    Run { host, c, text }
}

/// One more cycle after `advance` rewrote every file with good values.
fn recover(r: &mut Run) {
    r.host.advance(10.0).unwrap();
    let t = Instant::now() + Duration::from_secs(20);
    r.c.collect(t, T0 + 20.0);
    r.text = prom(&r.c);
}

fn check(c: Corruption) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for layout in LAYOUTS {
        let clean = run(layout, |_| {});
        assert_eq!(read_errors(&clean.text), 0, "{layout:?}: clean run");
        for t in targets(layout) {
            let rss0 = rss_anon_kib();
            let mut bad = run(layout, |h| {
                let p = (t.path)(h);
                let valid = std::fs::read(&p).unwrap();
                corrupt(&p, &valid, c);
            });
            let rss = rss_anon_kib().saturating_sub(rss0);
            let errors = read_errors(&bad.text);
            let affected = |l: &String| t.families.iter().any(|f| l.starts_with(f));
            let want0: BTreeSet<String> = lines_of(&clean.text, &clean.host, 0)
                .into_iter()
                .filter(|l| !affected(l))
                .collect();
            let got0 = lines_of(&bad.text, &bad.host, 0);
            let dropped = lines_of(&clean.text, &clean.host, 0).len() - got0.len();
            println!(
                "{layout:?} {c:?} {}: container 0 lost {dropped} series ({} kept), \
                 read errors {errors}, RssAnon +{rss} KiB",
                t.what,
                got0.len()
            );
            assert_same(
                &got0,
                &want0,
                &format!("{layout:?} {c:?} {}: container 0's other series", t.what),
            );
            assert!(dropped > 0, "{layout:?} {c:?} {}: nothing omitted", t.what);
            for i in 1..3 {
                assert_same(
                    &lines_of(&bad.text, &bad.host, i),
                    &lines_of(&clean.text, &clean.host, i),
                    &format!("{layout:?} {c:?} {}: container {i}", t.what),
                );
                let f = clean.host.container_info(i).fingerprint;
                assert_eq!(outlyer(&bad.c, &f), outlyer(&clean.c, &f));
            }
            assert_eq!(
                errors, 1,
                "{layout:?} {c:?} {}: one unusable read counted",
                t.what
            );
            // The buffer is not left at the size of a hostile file.
            assert!(
                rss < 6 * 1024,
                "{layout:?} {c:?} {}: RssAnon grew {rss} KiB",
                t.what
            );
            recover(&mut bad);
            let back = lines_of(&bad.text, &bad.host, 0);
            assert!(
                back.iter().any(affected),
                "{layout:?} {c:?} {}: metric back after a good read",
                t.what
            );
            assert_eq!(read_errors(&bad.text), 1, "no more errors once good");
        }
    }
}

#[test]
fn truncated_mid_number() {
    check(Corruption::Truncated);
}

#[test]
fn ten_megabytes_of_digits() {
    check(Corruption::HugeDigits);
}

#[test]
fn ten_megabytes_of_garbage() {
    check(Corruption::HugeGarbage);
}

#[test]
fn non_numeric() {
    check(Corruption::NonNumeric);
}

#[test]
fn negative_numbers() {
    check(Corruption::Negative);
}

#[test]
fn nul_bytes() {
    check(Corruption::Nul);
}

/// The directory removed between open and read: in a synthetic tree the
/// files a collector holds open read empty (on a kernel, `ENODEV`). One
/// controller's directory gone loses that controller's figures (counted);
/// the whole container gone drops it for the cycle (no fault, not counted).
#[test]
fn directory_removed_between_open_and_read() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for layout in LAYOUTS {
        let clean = run(layout, |_| {});
        // v1: the memory controller's directory alone.
        if layout != TreeLayout::V2 {
            let bad = run(layout, |h| {
                let d = h.cgroup_dir("memory", &h.containers[0].cgroup_path);
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    std::fs::write(e.path(), b"").unwrap();
                }
                std::fs::remove_dir_all(&d).unwrap();
            });
            let got0 = lines_of(&bad.text, &bad.host, 0);
            let want0: BTreeSet<String> = lines_of(&clean.text, &clean.host, 0)
                .into_iter()
                .filter(|l| {
                    ![
                        "container_memory_",
                        "container_oom_",
                        "container_spec_memory_",
                    ]
                    .iter()
                    .any(|f| l.starts_with(f))
                })
                .collect();
            println!(
                "{layout:?} memory directory removed: container 0 keeps {} series, read errors {}",
                got0.len(),
                read_errors(&bad.text)
            );
            assert_same(&got0, &want0, &format!("{layout:?} memory dir removed"));
            assert_eq!(read_errors(&bad.text), 1);
            for i in 1..3 {
                assert_eq!(
                    lines_of(&bad.text, &bad.host, i),
                    lines_of(&clean.text, &clean.host, i)
                );
            }
        }
        let mut bad = run(layout, |h| h.remove_container(0).unwrap());
        println!(
            "{layout:?} container removed: container 0 series {}, published {}, read errors {}",
            lines_of(&bad.text, &bad.host, 0).len(),
            bad.c.published(),
            read_errors(&bad.text)
        );
        assert!(lines_of(&bad.text, &bad.host, 0).is_empty());
        assert_eq!(bad.c.published(), 2);
        assert_eq!(read_errors(&bad.text), 0);
        for i in 1..3 {
            assert_eq!(
                lines_of(&bad.text, &bad.host, i),
                lines_of(&clean.text, &clean.host, i)
            );
        }
        // The next cycles look for it again without panicking or counting
        // (no `advance`: it would write the removed container's files again).
        for k in 2..5 {
            let t = Instant::now() + Duration::from_secs(10 * k);
            bad.c.collect(t, T0 + 10.0 * k as f64);
        }
        bad.text = prom(&bad.c);
        assert_eq!(bad.c.published(), 2);
        assert_eq!(read_errors(&bad.text), 0);
    }
}
