//! A small stub resolver that lives in the event loop: `/etc/hosts` first,
//! then A (and, when there is none, AAAA) queries over UDP to the
//! nameservers of `/etc/resolv.conf`, one at a time with a per-server
//! timeout, answers cached for their TTL (clamped to 5 s..5 min).
//!
//! Why not `getaddrinfo`: it blocks for as long as the nameservers take,
//! and bounding it needs a thread; the agent has one thread. The names it
//! resolves are a handful of backend hosts, so a stub resolver is enough:
//! no search domains (give fully-qualified names), no TCP fallback (a
//! truncated answer still carries the addresses that fitted).
//!
//! Sans-IO: [`Resolver::lookup`] asks, [`Resolver::poll_transmit`] gives
//! the datagram to send, [`Resolver::handle_datagram`] takes replies,
//! [`Resolver::handle_timeout`] moves on to the next server.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

pub const QTYPE_A: u16 = 1;
pub const QTYPE_AAAA: u16 = 28;
const MIN_TTL: u32 = 5;
const MAX_TTL: u32 = 300;
/// How long a failed lookup is remembered before trying again.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// A DNS query for `name` (`QTYPE_A` or `QTYPE_AAAA`), recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 12 + 255 {
        return None;
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    Some(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// Not an answer to our question (wrong id, name or type): ignore it.
    NotOurs,
    Malformed,
    /// RCODE 3: the name does not exist.
    NxDomain,
    /// Another RCODE (SERVFAIL, REFUSED...): try the next server.
    Server(u8),
}

/// Addresses of the answer and their smallest TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub ttl: u32,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a possibly compressed name, lower-cased and dot-joined.
    fn name(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut pos = self.pos;
        let mut jumped = false;
        for _ in 0..128 {
            let len = *self.buf.get(pos)?;
            match len {
                0 => {
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    return Some(out);
                }
                l if l & 0xC0 == 0xC0 => {
                    let lo = *self.buf.get(pos + 1)?;
                    if !jumped {
                        self.pos = pos + 2;
                    }
                    jumped = true;
                    pos = (usize::from(l & 0x3F) << 8) | usize::from(lo);
                }
                l if l < 64 => {
                    let label = self.buf.get(pos + 1..pos + 1 + usize::from(l))?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
                    pos += 1 + usize::from(l);
                }
                _ => return None,
            }
        }
        None
    }
}

/// Decodes a reply to `encode_query(id, name, qtype)`, following CNAMEs
/// within the answer section.
pub fn parse_response(buf: &[u8], id: u16, name: &str, qtype: u16) -> Result<Answer, DnsError> {
    let mut r = Reader { buf, pos: 0 };
    let m = DnsError::Malformed;
    let rid = r.u16().ok_or(DnsError::NotOurs)?;
    let flags = r.u16().ok_or(DnsError::NotOurs)?;
    if rid != id || flags & 0x8000 == 0 {
        return Err(DnsError::NotOurs);
    }
    let qd = r.u16().ok_or(m.clone())?;
    let an = r.u16().ok_or(m.clone())?;
    r.u16().ok_or(m.clone())?;
    r.u16().ok_or(m.clone())?;
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    if qd != 1 {
        return Err(DnsError::NotOurs);
    }
    let qname = r.name().ok_or(m.clone())?;
    let qt = r.u16().ok_or(m.clone())?;
    r.u16().ok_or(m.clone())?;
    if qname != want || qt != qtype {
        return Err(DnsError::NotOurs);
    }
    match (flags & 0x000F) as u8 {
        0 => {}
        3 => return Err(DnsError::NxDomain),
        code => return Err(DnsError::Server(code)),
    }
    let mut owner = want;
    let mut addrs = Vec::new();
    let mut ttl = u32::MAX;
    for _ in 0..an {
        let rname = r.name().ok_or(m.clone())?;
        let rtype = r.u16().ok_or(m.clone())?;
        let _class = r.u16().ok_or(m.clone())?;
        let rttl = r.u32().ok_or(m.clone())?;
        let len = usize::from(r.u16().ok_or(m.clone())?);
        let start = r.pos;
        let data = r.take(len).ok_or(m.clone())?;
        if rname != owner {
            continue;
        }
        match (rtype, len) {
            (5, _) => {
                let mut sub = Reader { buf, pos: start };
                owner = sub.name().ok_or(m.clone())?;
                ttl = ttl.min(rttl);
            }
            (QTYPE_A, 4) if qtype == QTYPE_A => {
                addrs.push(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                )));
                ttl = ttl.min(rttl);
            }
            (QTYPE_AAAA, 16) if qtype == QTYPE_AAAA => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                addrs.push(IpAddr::V6(Ipv6Addr::from(b)));
                ttl = ttl.min(rttl);
            }
            _ => {}
        }
    }
    Ok(Answer {
        addrs,
        ttl: if ttl == u32::MAX { 0 } else { ttl },
    })
}

/// `nameserver` lines of resolv.conf (at most 3, like glibc).
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == "nameserver").then_some(())?;
            // A scoped v6 address (`fe80::1%eth0`) loses its scope.
            it.next()?.split('%').next()?.parse().ok()
        })
        .take(3)
        .collect()
}

/// Addresses `/etc/hosts` gives `name` (case-insensitive), in file order.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut it = l.split_whitespace();
            let ip: IpAddr = it.next()?.parse().ok()?;
            it.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// What a lookup has come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Ready(Vec<IpAddr>),
    Pending,
    Failed(String),
}

#[derive(Debug)]
enum Entry {
    Ready {
        addrs: Vec<IpAddr>,
        expires: Instant,
    },
    Failed {
        reason: String,
        expires: Instant,
    },
    ExpectReply(Query),
}

#[derive(Clone, Debug)]
struct Query {
    id: u16,
    qtype: u16,
    server: usize,
    /// `None` until the datagram was handed out by `poll_transmit`.
    deadline: Option<Instant>,
}

#[derive(Debug)]
pub struct Resolver {
    hosts: String,
    servers: Vec<SocketAddr>,
    timeout: Duration,
    entries: HashMap<String, Entry>,
    next_id: u16,
}

impl Resolver {
    /// `hosts` is the text of `/etc/hosts`; `servers` the nameservers
    /// (port 53 unless a test says otherwise).
    pub fn new(hosts: String, servers: Vec<SocketAddr>, timeout: Duration, seed: u16) -> Resolver {
        Resolver {
            hosts,
            servers,
            timeout,
            entries: HashMap::new(),
            next_id: seed,
        }
    }

    fn fresh_id(&mut self) -> u16 {
        // Odd steps over u16 visit every id; the seed makes them unguessable
        // enough for a loopback-or-LAN resolver.
        self.next_id = self.next_id.wrapping_mul(25_173).wrapping_add(13_849);
        self.next_id
    }

    /// Starts or continues resolving `name`.
    pub fn lookup(&mut self, name: &str, now: Instant) -> Lookup {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Lookup::Ready(vec![ip]);
        }
        let from_hosts = hosts_lookup(&self.hosts, name);
        if !from_hosts.is_empty() {
            return Lookup::Ready(from_hosts);
        }
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        match self.entries.get(&key) {
            Some(Entry::Ready { addrs, expires }) if *expires > now => {
                return Lookup::Ready(addrs.clone())
            }
            Some(Entry::Failed { reason, expires }) if *expires > now => {
                return Lookup::Failed(reason.clone())
            }
            Some(Entry::ExpectReply(_)) => return Lookup::Pending,
            _ => {}
        }
        if self.servers.is_empty() {
            return Lookup::Failed(format!("cannot resolve {name}: no nameserver"));
        }
        let id = self.fresh_id();
        self.entries.insert(
            key,
            Entry::ExpectReply(Query {
                id,
                qtype: QTYPE_A,
                server: 0,
                deadline: None,
            }),
        );
        Lookup::Pending
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        let timeout = self.timeout;
        for (name, e) in self.entries.iter_mut() {
            if let Entry::ExpectReply(q) = e {
                if q.deadline.is_none() {
                    q.deadline = Some(now + timeout);
                    let server = *self.servers.get(q.server)?;
                    return encode_query(q.id, name, q.qtype).map(|d| (server, d));
                }
            }
        }
        None
    }

    pub fn handle_datagram(&mut self, from: SocketAddr, buf: &[u8], now: Instant) {
        let servers = &self.servers;
        let mut next_id = None;
        let mut done = None;
        for (name, e) in self.entries.iter_mut() {
            let Entry::ExpectReply(q) = e else { continue };
            if servers.get(q.server) != Some(&from) {
                continue;
            }
            match parse_response(buf, q.id, name, q.qtype) {
                Err(DnsError::NotOurs) => continue,
                Ok(a) if a.addrs.is_empty() && q.qtype == QTYPE_A => {
                    // No IPv4 address: ask for IPv6 from the same server.
                    q.qtype = QTYPE_AAAA;
                    q.deadline = None;
                    next_id = Some(name.clone());
                }
                Ok(a) if a.addrs.is_empty() => {
                    done = Some((name.clone(), Err(format!("{name} has no address"))));
                }
                Ok(a) => {
                    let ttl = Duration::from_secs(u64::from(a.ttl.clamp(MIN_TTL, MAX_TTL)));
                    done = Some((name.clone(), Ok((a.addrs, ttl))));
                }
                Err(DnsError::NxDomain) => {
                    done = Some((name.clone(), Err(format!("{name}: no such host"))));
                }
                Err(other) => {
                    q.server += 1;
                    q.deadline = None;
                    if q.server >= servers.len() {
                        done = Some((
                            name.clone(),
                            Err(format!("{name}: nameserver error {other:?}")),
                        ));
                    }
                }
            }
            break;
        }
        if let Some(name) = next_id {
            let id = self.fresh_id();
            if let Some(Entry::ExpectReply(q)) = self.entries.get_mut(&name) {
                q.id = id;
            }
        }
        if let Some((name, result)) = done {
            let entry = match result {
                Ok((addrs, ttl)) => Entry::Ready {
                    addrs,
                    expires: now + ttl,
                },
                Err(reason) => Entry::Failed {
                    reason,
                    expires: now + NEGATIVE_TTL,
                },
            };
            self.entries.insert(name, entry);
        }
    }

    /// Gives up on servers that did not answer in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let n = self.servers.len();
        let mut renew = Vec::new();
        for (name, e) in self.entries.iter_mut() {
            if let Entry::ExpectReply(q) = e {
                if q.deadline.is_some_and(|d| d <= now) {
                    q.server += 1;
                    q.deadline = None;
                    if q.server >= n {
                        *e = Entry::Failed {
                            reason: format!("{name}: no nameserver answered"),
                            expires: now + NEGATIVE_TTL,
                        };
                    } else {
                        renew.push(name.clone());
                    }
                }
            }
        }
        for name in renew {
            let id = self.fresh_id();
            if let Some(Entry::ExpectReply(q)) = self.entries.get_mut(&name) {
                q.id = id;
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e {
                Entry::ExpectReply(q) => q.deadline,
                _ => None,
            })
            .min()
    }

    /// True while a query waits to be sent.
    pub fn wants_transmit(&self) -> bool {
        self.entries
            .values()
            .any(|e| matches!(e, Entry::ExpectReply(q) if q.deadline.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(query: &[u8], rcode: u8, answers: &[(&[u8], u16, u32, &[u8])]) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2] |= 0x80;
        r[3] = rcode;
        r[7] = answers.len() as u8;
        for (name, t, ttl, data) in answers {
            r.extend_from_slice(name);
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&[0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        r
    }

    #[test]
    fn query_encoding() {
        let q = encode_query(0x1234, "api.Example.com.", QTYPE_A).unwrap();
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03api\x07Example\x03com\x00\x00\x01\x00\x01"
        );
        assert!(encode_query(1, "a..b", QTYPE_A).is_none());
        assert!(encode_query(1, &"x".repeat(64), QTYPE_A).is_none());
        assert!(encode_query(1, &["abcdefghi"; 30].join("."), QTYPE_A).is_none());
    }

    #[test]
    fn answers_with_compression_and_cname() {
        let q = encode_query(7, "api.example.com", QTYPE_A).unwrap();
        // Answer 1: api.example.com (pointer to offset 12) CNAME lb.example.com
        // Answer 2: lb.example.com A 192.0.2.1; answer 3: unrelated name, ignored.
        let r = reply(
            &q,
            0,
            &[
                (b"\xc0\x0c", 5, 300, b"\x02lb\xc0\x10"),
                (b"\x02lb\xc0\x10", 1, 60, &[192, 0, 2, 1]),
                (b"\x05other\x00", 1, 60, &[10, 0, 0, 1]),
            ],
        );
        let a = parse_response(&r, 7, "api.example.com", QTYPE_A).unwrap();
        assert_eq!(a.addrs, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
        assert_eq!(a.ttl, 60);
        assert_eq!(
            parse_response(&r, 8, "api.example.com", QTYPE_A),
            Err(DnsError::NotOurs)
        );
        assert_eq!(
            parse_response(&r, 7, "x.example.com", QTYPE_A),
            Err(DnsError::NotOurs)
        );
        assert_eq!(
            parse_response(&q, 7, "api.example.com", QTYPE_A),
            Err(DnsError::NotOurs)
        );
        assert_eq!(
            parse_response(&reply(&q, 3, &[]), 7, "api.example.com", QTYPE_A),
            Err(DnsError::NxDomain)
        );
        assert_eq!(
            parse_response(&reply(&q, 2, &[]), 7, "api.example.com", QTYPE_A),
            Err(DnsError::Server(2))
        );
        // Every truncation of a valid reply is an error, never a panic.
        for n in 0..r.len() {
            assert!(parse_response(&r[..n], 7, "api.example.com", QTYPE_A).is_err());
        }
        // A pointer loop ends.
        let mut evil = reply(&q, 0, &[(b"\xc0\x0c", 5, 1, b"\xc0\x2d")]);
        let at = evil.len() - 2;
        evil[at + 1] = at as u8;
        assert!(parse_response(&evil, 7, "api.example.com", QTYPE_A).is_err());
    }

    #[test]
    fn config_files() {
        let conf = "# c\nsearch example\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver bad\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n";
        assert_eq!(
            parse_resolv_conf(conf),
            [
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap(),
                "1.1.1.1".parse().unwrap()
            ]
        );
        let hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost # c\n10.1.1.1 Backend.Test backend # x\n#10.9.9.9 backend\n";
        assert_eq!(
            hosts_lookup(hosts, "backend.test."),
            ["10.1.1.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(hosts_lookup(hosts, "localhost").len(), 2);
        assert!(hosts_lookup(hosts, "nothere").is_empty());
    }

    #[test]
    fn resolver_flow_with_virtual_clock() {
        let s1: SocketAddr = "10.0.0.2:53".parse().unwrap();
        let s2: SocketAddr = "10.0.0.3:53".parse().unwrap();
        let mut r = Resolver::new(
            "10.1.1.1 pinned\n".into(),
            vec![s1, s2],
            Duration::from_secs(2),
            99,
        );
        let t0 = Instant::now();
        assert_eq!(
            r.lookup("192.0.2.9", t0),
            Lookup::Ready(vec!["192.0.2.9".parse().unwrap()])
        );
        assert_eq!(
            r.lookup("pinned", t0),
            Lookup::Ready(vec!["10.1.1.1".parse().unwrap()])
        );
        assert_eq!(r.lookup("api.example", t0), Lookup::Pending);
        assert_eq!(r.lookup("api.example", t0), Lookup::Pending);
        let (to, q1) = r.poll_transmit(t0).unwrap();
        assert_eq!(to, s1);
        assert!(r.poll_transmit(t0).is_none());
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        // The first server is silent: after 2 s the second is asked, with a new id.
        r.handle_timeout(t0 + Duration::from_secs(2));
        let t1 = t0 + Duration::from_secs(2);
        let (to, q2) = r.poll_transmit(t1).unwrap();
        assert_eq!(to, s2);
        assert_ne!(q1[..2], q2[..2]);
        // A late answer from the first server is ignored.
        let late = reply(&q1, 0, &[(b"\xc0\x0c", 1, 30, &[1, 2, 3, 4])]);
        r.handle_datagram(s1, &late, t1);
        assert_eq!(r.lookup("api.example", t1), Lookup::Pending);
        // No A record: the same server is asked for AAAA.
        r.handle_datagram(s2, &reply(&q2, 0, &[]), t1);
        let (to, q3) = r.poll_transmit(t1).unwrap();
        assert_eq!(
            (to, u16::from_be_bytes([q3[q3.len() - 4], q3[q3.len() - 3]])),
            (s2, QTYPE_AAAA)
        );
        let v6 = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        r.handle_datagram(s2, &reply(&q3, 0, &[(b"\xc0\x0c", QTYPE_AAAA, 1, &v6)]), t1);
        let want = Lookup::Ready(vec!["2001:db8::1".parse().unwrap()]);
        assert_eq!(r.lookup("api.example", t1), want);
        // The TTL of 1 s is clamped to 5 s: cached until then.
        assert_eq!(r.lookup("API.example.", t1 + Duration::from_secs(4)), want);
        assert_eq!(
            r.lookup("api.example", t1 + Duration::from_secs(5)),
            Lookup::Pending
        );
        // Both servers silent: the lookup fails, and is not retried at once.
        let t2 = t1 + Duration::from_secs(5);
        r.poll_transmit(t2).unwrap();
        r.handle_timeout(t2 + Duration::from_secs(2));
        r.poll_transmit(t2 + Duration::from_secs(2)).unwrap();
        r.handle_timeout(t2 + Duration::from_secs(4));
        assert!(matches!(
            r.lookup("api.example", t2 + Duration::from_secs(4)),
            Lookup::Failed(_)
        ));
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn nxdomain_and_no_servers() {
        let s1: SocketAddr = "10.0.0.2:53".parse().unwrap();
        let mut r = Resolver::new(String::new(), vec![s1], Duration::from_secs(1), 1);
        let t = Instant::now();
        r.lookup("nope.example", t);
        let (_, q) = r.poll_transmit(t).unwrap();
        r.handle_datagram(s1, &reply(&q, 3, &[]), t);
        assert_eq!(
            r.lookup("nope.example", t),
            Lookup::Failed("nope.example: no such host".into())
        );
        let mut r = Resolver::new(String::new(), vec![], Duration::from_secs(1), 1);
        assert!(matches!(r.lookup("x.example", t), Lookup::Failed(_)));
    }
}
