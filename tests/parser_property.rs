//! Robustness properties of every cgroup and /proc parser, driven by a small
//! deterministic PRNG (no extra crates): random byte strings and random
//! mutations of every captured fixture must produce `Ok` or `Err`, never a
//! panic, and row iterators must stop after at most one row per line. The
//! shared number/splitting helpers are also checked against naive references.

use outlyer_agent::cgroup::parse as cg;
use outlyer_agent::fuzzing;
use outlyer_agent::parse as p;
use outlyer_agent::procfs::parse as pr;
use std::path::{Path, PathBuf};

/// The agent's own xorshift64* generator (deterministic per seed) picks
/// bytes and positions.
use outlyer_agent::upload::retry::Rng;

trait Pick {
    fn below(&mut self, n: usize) -> usize;
    fn chance(&mut self, one_in: usize) -> bool;
}

impl Pick for Rng {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes the formats give meaning to, so random input reaches deep branches.
const ALPHABET: &[u8] = b"0123456789 \n\t:()=,-/\\.#abcdefxAF";
/// Tokens that steer parsers into their known-key and special-value paths.
const TOKENS: &[&[u8]] = &[
    b"cpu ",
    b"cpu0 ",
    b"btime ",
    b"MemTotal:",
    b" kB\n",
    b"max",
    b"-1",
    b"Total ",
    b"Read ",
    b"Write ",
    b"rbytes=",
    b"dios=",
    b"8:0 ",
    b"cache ",
    b"total_inactive_file ",
    b"usage_usec ",
    b"oom_kill ",
    b" - ",
    b"cgroup2 ",
    b"\\040",
    b"\\777",
    b" (deleted)",
    b"name=systemd",
    b"eth0:",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775808",
    b"0A ",
    b"#subsys_name\t",
];

fn random_input(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    let len = rng.below(160);
    while out.len() < len {
        match rng.below(10) {
            0 => out.push(rng.next_u64() as u8),
            1 | 2 => out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]),
            _ => out.push(ALPHABET[rng.below(ALPHABET.len())]),
        }
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 if at < data.len() => {
                data.remove(at);
            }
            3 => data.truncate(at),
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            5 if !data.is_empty() => {
                // Overwrite a digit run with a huge number (overflow paths).
                let i = rng.below(data.len());
                data[i] = b'9';
                data.splice(i..i, b"99999999999999999999".iter().copied());
            }
            _ if !data.is_empty() => {
                // Duplicate a random slice (repeated keys and rows).
                let a = rng.below(data.len());
                let b = (a + rng.below(64)).min(data.len());
                let chunk = data[a..b].to_vec();
                data.splice(at..at, chunk);
            }
            _ => {}
        }
    }
}

/// Upper bound on rows an iterator may yield: one per line (plus one).
fn max_rows(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count() + 1
}

fn assert_bounded<T>(what: &str, buf: &[u8], it: impl Iterator<Item = T>) {
    let limit = max_rows(buf);
    let mut n = 0usize;
    for _ in it {
        n += 1;
        assert!(n <= limit, "{what} yielded more rows than lines on {buf:?}");
    }
}

/// Every parser on one input: returns must be Ok/Err (a panic fails the
/// test) and iterators must stop within one row per line.
fn drive_all(buf: &[u8]) {
    fuzzing::fuzz_all(buf);
    assert_bounded("blkio_rows", buf, cg::blkio_rows(buf));
    assert_bounded("io_stat_rows", buf, cg::io_stat_rows(buf));
    assert_bounded("pids", buf, cg::pids(buf));
    assert_bounded("net_dev_rows", buf, pr::net_dev_rows(buf));
    assert_bounded("proc_cgroups_rows", buf, pr::proc_cgroups_rows(buf));
    assert_bounded("pid_cgroup_rows", buf, pr::pid_cgroup_rows(buf));
    assert_bounded("mountinfo_rows", buf, pr::mountinfo_rows(buf));
    assert_bounded("key_values", buf, p::key_values(buf));
    assert_bounded("lines", buf, p::lines(buf));
    assert!(p::fields(buf).count() <= buf.len());
    assert!(cg::percpu_values(buf).count() <= buf.len());
    // Results that borrow must point into the input.
    let range = buf.as_ptr_range();
    let inside = |s: &[u8]| s.is_empty() || range.contains(&s.as_ptr());
    if let Ok(s) = pr::parse_pid_stat(buf) {
        assert!(inside(s.comm));
        assert_eq!(pr::parse_pid_state(buf), Ok(s.state));
        assert_eq!(
            pr::parse_pid_state_threads(buf),
            Ok((s.state, s.num_threads))
        );
    }
    for row in pr::mountinfo_rows(buf).flatten() {
        assert!(inside(row.mount_point) && inside(row.optional_fields) && inside(row.source));
    }
    for row in pr::net_dev_rows(buf).flatten() {
        assert!(!row.name.is_empty() && inside(row.name));
    }
    let mut out = [0u8; 64];
    if let Ok(n) = pr::unescape_octal_into(buf, &mut out) {
        assert!(n <= buf.len());
    }
}

fn fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/files");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.sort();
    out
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x5EED_0001);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        random_input(&mut rng, &mut buf);
        drive_all(&buf);
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let files = fixture_files();
    assert!(files.len() > 150, "fixtures missing: {}", files.len());
    let mut rng = Rng::new(0x5EED_0002);
    let mut inputs = 0usize;
    for path in &files {
        let original = std::fs::read(path).unwrap();
        drive_all(&original);
        // Large files get fewer rounds to keep debug runs short.
        let rounds = if original.len() > 1024 { 8 } else { 40 };
        for _ in 0..rounds {
            let mut data = original.clone();
            mutate(&mut rng, &mut data);
            drive_all(&data);
            inputs += 1;
        }
    }
    assert!(inputs > 5_000, "only {inputs} mutated inputs");
}

#[test]
fn numbers_match_std() {
    let mut rng = Rng::new(0x5EED_0003);
    let mut s = Vec::new();
    for _ in 0..50_000 {
        s.clear();
        if rng.chance(3) {
            s.push(b'-');
        }
        let len = rng.below(23);
        for _ in 0..len {
            s.push(if rng.chance(40) {
                b'x'
            } else {
                b'0' + rng.below(10) as u8
            });
        }
        let text = std::str::from_utf8(&s).unwrap();
        let leading_zeros = s
            .iter()
            .skip_while(|&&b| b == b'-')
            .take_while(|&&b| b == b'0')
            .count();
        // We reject over-long digit strings even when the value fits (the kernel never
        // prints leading zeros); compare only inputs where both rules agree on the domain.
        let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
        if digits <= 20 || leading_zeros == 0 {
            match (p::parse_u64(&s), text.parse::<u64>()) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(_), Err(_)) => {}
                (a, b) => {
                    if digits <= 20 {
                        panic!("parse_u64({text}) = {a:?}, std = {b:?}")
                    }
                }
            }
            match (p::parse_i64(&s), text.parse::<i64>()) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(_), Err(_)) => {}
                (a, b) => {
                    if digits <= 20 {
                        panic!("parse_i64({text}) = {a:?}, std = {b:?}")
                    }
                }
            }
        }
        let hex: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'x' { b'f' } else { b })
            .collect();
        if let Ok(h) = std::str::from_utf8(&hex) {
            if !h.starts_with('-') && hex.len() <= 16 {
                assert_eq!(
                    p::parse_hex_u64(&hex).ok(),
                    u64::from_str_radix(h, 16).ok(),
                    "{h}"
                );
            }
        }
    }
}

/// Naive reference for octal unescaping.
fn unescape_naive(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'\\' && i + 4 <= src.len() {
            let d = &src[i + 1..i + 4];
            if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (d[0] - b'0') as u32 * 64 + (d[1] - b'0') as u32 * 8 + (d[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(src[i]);
        i += 1;
    }
    out
}

#[test]
fn splitting_matches_naive() {
    let mut rng = Rng::new(0x5EED_0004);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        random_input(&mut rng, &mut buf);
        let naive_fields: Vec<&[u8]> = buf
            .split(|&b| p::is_space(b))
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(p::fields(&buf).collect::<Vec<_>>(), naive_fields);
        let mut naive_lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        if buf.is_empty() || buf.ends_with(b"\n") {
            naive_lines.pop();
        }
        assert_eq!(p::lines(&buf).collect::<Vec<_>>(), naive_lines);
        let naive = unescape_naive(&buf);
        let mut out = vec![0u8; buf.len()];
        let n = pr::unescape_octal_into(&buf, &mut out).unwrap();
        assert_eq!(&out[..n], &naive[..]);
        assert!(pr::eq_unescaped(&buf, &naive));
        let start = buf
            .iter()
            .position(|&b| !p::is_space(b))
            .unwrap_or(buf.len());
        let end = buf
            .iter()
            .rposition(|&b| !p::is_space(b))
            .map_or(start, |e| e + 1);
        assert_eq!(p::trim_ascii(&buf), &buf[start..end.max(start)]);
    }
}

#[test]
fn word_at_a_time_searches_match_naive() {
    let mut rng = Rng::new(0x5EED_0005);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        // Any byte at all, biased towards the searched ones and their neighbours.
        buf.clear();
        let len = rng.below(70);
        for _ in 0..len {
            let b = match rng.below(7) {
                0 => rng.next_u64() as u8,
                4..=5 => b' ',
                1 => [b'\n', b' ', b')', b'\t', 0x0d][rng.below(5)],
                2 => [0x20, 0x21, 0x1f, 0x80, 0xa0, 0x8a, 0x00, 0xff][rng.below(8)],
                _ => b'7',
            };
            buf.push(b);
        }
        for needle in [b'\n', b')', 0x00, 0xff, 0x80] {
            assert_eq!(
                p::find_byte(&buf, needle),
                buf.iter().position(|&b| b == needle)
            );
            assert_eq!(
                p::rfind_byte(&buf, needle),
                buf.iter().rposition(|&b| b == needle)
            );
        }
    }
}
