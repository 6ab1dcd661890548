//! HTTP proxies as curl reads them: the proxy and its credentials (the URL
//! is parsed by [`crate::url`]), `NO_PROXY` matching and the `CONNECT`
//! tunnel handshake (sans-IO: bytes in, bytes out).

use std::fmt;
use std::net::IpAddr;

use crate::secret::Secret;

/// An HTTP proxy, parsed by [`crate::url::parse_proxy_url`]. `Debug` hides
/// the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// `Basic <base64(user:pass)>`, ready for `Proxy-Authorization`.
    pub authorization: Option<Secret>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Proxy({}:{}{})",
            self.host,
            self.port,
            if self.authorization.is_some() {
                " with credentials"
            } else {
                ""
            }
        )
    }
}

impl Proxy {
    /// Messages never quote the text: it may carry `user:pass@`.
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let url = crate::url::parse_proxy_url(text)?;
        let authorization = url.userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let mut plain = percent_decode(user);
            plain.push(b':');
            plain.extend(percent_decode(pass));
            Secret::new(format!("Basic {}", base64(&plain)))
        });
        Ok(Proxy {
            host: url.host,
            port: url.port,
            authorization,
        })
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// A host name: matches itself and every sub-domain.
    Domain { name: String, port: Option<u16> },
    /// An address, or a network in CIDR notation.
    Ip { net: IpAddr, prefix: u8 },
}

/// `NO_PROXY`/`no_proxy`: comma- or space-separated host suffixes (a
/// leading `.` is ignored), `*` alone for every host, IP addresses and CIDR
/// networks, and (beyond curl) `host:port` to bypass one port only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<Entry>,
}

impl NoProxy {
    /// Lenient, like curl: entries that are not a host, address or network
    /// are skipped.
    pub fn parse(text: &str) -> NoProxy {
        Self::parse_entries(text, false).unwrap_or_default()
    }

    /// Like [`NoProxy::parse`], but an entry that is not `*`, an IP address,
    /// a CIDR network, `host` or `host:port` is an error (naming its
    /// position, not its text).
    pub fn try_parse(text: &str) -> Result<NoProxy, String> {
        Self::parse_entries(text, true)
    }

    fn parse_entries(text: &str, strict: bool) -> Result<NoProxy, String> {
        let mut out = NoProxy::default();
        let items = text
            .split([',', ' ', '\t'])
            .map(str::trim)
            .filter(|i| !i.is_empty());
        for (n, item) in items.enumerate() {
            if item == "*" {
                out.all = true;
                continue;
            }
            if let Some(entry) = parse_ip_entry(item) {
                out.entries.push(entry);
                continue;
            }
            let bad = || {
                format!(
                    "entry {} is not a host, host:port, IP address or CIDR network",
                    n + 1
                )
            };
            let (name, port) = match item.rsplit_once(':') {
                Some((h, p)) => match p.parse::<u16>() {
                    Ok(p) => (h, Some(p)),
                    Err(_) if strict => return Err(bad()),
                    Err(_) => continue,
                },
                None => (item, None),
            };
            let name = name.trim_start_matches('.').trim_end_matches('.');
            let valid = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if strict && (name.is_empty() || !valid) {
                return Err(bad());
            }
            if !name.is_empty() {
                out.entries.push(Entry::Domain {
                    name: name.to_ascii_lowercase(),
                    port,
                });
            }
        }
        Ok(out)
    }

    /// True when `host:port` must be reached directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip: Option<IpAddr> = host.parse().ok();
        self.entries.iter().any(|e| match (e, ip) {
            (Entry::Ip { net, prefix }, Some(ip)) => in_network(ip, *net, *prefix),
            (Entry::Ip { .. }, None) => false,
            (Entry::Domain { name, port: p }, _) => {
                p.is_none_or(|p| p == port)
                    && (host == *name
                        || (host.len() > name.len()
                            && host.ends_with(name.as_str())
                            && host.as_bytes()[host.len() - name.len() - 1] == b'.'))
            }
        })
    }
}

fn parse_ip_entry(item: &str) -> Option<Entry> {
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (item, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let net: IpAddr = addr.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Entry::Ip { net, prefix })
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let bits = |a: IpAddr| -> (u128, u8) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            IpAddr::V6(v) => match v.to_ipv4_mapped() {
                Some(v4) => (u128::from(u32::from(v4)) << 96, 32),
                None => (u128::from(v), 128),
            },
        }
    };
    let (a, alen) = bits(ip);
    let (n, nlen) = bits(net);
    if alen != nlen {
        return false;
    }
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    a & mask == n & mask
}

/// The tunnel request: `CONNECT host:port HTTP/1.1`.
pub fn write_connect(out: &mut Vec<u8>, host: &str, port: u16, authorization: Option<&str>) {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(crate::http::request::USER_AGENT.as_bytes());
    if let Some(a) = authorization {
        out.extend_from_slice(b"\r\nProxy-Authorization: ");
        out.extend_from_slice(a.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// What the proxy answered to `CONNECT` so far.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectReply {
    /// The head is not complete yet.
    Partial,
    /// 2xx: the tunnel is open; the head was this many bytes (anything
    /// after it already belongs to the tunnel).
    Established(usize),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The proxy refused (407 means it wants, or rejected, credentials).
    Refused(u16),
    Malformed,
    TooLarge,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused(407) => f.write_str("proxy wants credentials (407)"),
            ConnectError::Refused(s) => write!(f, "proxy refused the tunnel ({s})"),
            ConnectError::Malformed => f.write_str("proxy sent a malformed reply"),
            ConnectError::TooLarge => f.write_str("proxy reply head too large"),
        }
    }
}

/// Parses the proxy's reply to `CONNECT` from the bytes received so far.
pub fn parse_connect_reply(buf: &[u8]) -> Result<ConnectReply, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > 8 * 1024 => Err(ConnectError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(ConnectReply::Partial),
        Ok(httparse::Status::Complete(n)) => match resp.code {
            Some(c) if (200..300).contains(&c) => Ok(ConnectReply::Established(n)),
            Some(c) => Err(ConnectError::Refused(c)),
            None => Err(ConnectError::Malformed),
        },
        Err(_) => Err(ConnectError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://us%40er:p%3Ass@proxy.example:3128/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(
            p.authorization.as_ref().map(Secret::expose),
            Some(format!("Basic {}", base64(b"us@er:p:ss")).as_str())
        );
        assert!(!format!("{p:?}").contains("Basic"));
        let p = Proxy::parse("http://proxy").unwrap();
        assert_eq!((p.port, p.authorization), (1080, None));
        let p = Proxy::parse("proxy:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        // Without http:// a port is required: a stray word is no proxy.
        assert!(Proxy::parse("proxy").is_err());
        assert!(Proxy::parse("garbage").is_err());
        assert!(Proxy::parse("u:p@garbage").is_err());
        let e = Proxy::parse("u:hunter2@x://h").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let p = Proxy::parse("HTTP://[::1]:8080").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
        assert!(Proxy::parse("https://p:1").is_err());
        assert!(Proxy::parse("socks5h://p:1").is_err());
        assert!(Proxy::parse("http://:1").is_err());
    }

    #[test]
    fn no_proxy_matching() {
        let np = NoProxy::parse(
            ".internal.example, localhost 10.0.0.0/8,192.168.1.5, ::1, api.example:8443",
        );
        assert!(np.matches("internal.example", 443));
        assert!(np.matches("a.b.internal.example", 443));
        assert!(np.matches("A.Internal.Example.", 443));
        assert!(!np.matches("notinternal.example", 443));
        assert!(!np.matches("internal.example.com", 443));
        assert!(np.matches("localhost", 80));
        assert!(np.matches("10.1.2.3", 443));
        assert!(!np.matches("11.1.2.3", 443));
        assert!(np.matches("192.168.1.5", 1));
        assert!(!np.matches("192.168.1.6", 1));
        assert!(np.matches("::1", 443));
        assert!(np.matches("api.example", 8443));
        assert!(!np.matches("api.example", 443));
        assert!(!np.matches("example", 443));
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(!NoProxy::parse("").matches("anything", 1));
        // Like curl, `*` is special only alone: no glob patterns.
        assert!(!NoProxy::parse("*.example").matches("a.example", 1));
        // Strict parsing (start-up) refuses what lenient parsing skips.
        assert_eq!(
            NoProxy::try_parse("localhost, .a.example,10.0.0.0/8 ::1 [::1] h:8443 *"),
            Ok(NoProxy::parse(
                "localhost, .a.example,10.0.0.0/8 ::1 [::1] h:8443 *"
            ))
        );
        for bad in ["h:x", "10.0.0.0/33", "a/b", ".", "h:99999", "a@b"] {
            assert!(NoProxy::try_parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            NoProxy::try_parse("ok, SEKRIT:x"),
            Err("entry 2 is not a host, host:port, IP address or CIDR network".to_owned())
        );
        let np = NoProxy::parse("fd00::/8");
        assert!(
            np.matches("fd12::1", 1) && !np.matches("fe80::1", 1) && !np.matches("10.0.0.1", 1)
        );
    }

    #[test]
    fn connect_exchange() {
        let mut out = Vec::new();
        write_connect(&mut out, "backend.test", 443, Some("Basic dTpw"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("CONNECT backend.test:443 HTTP/1.1\r\nHost: backend.test:443\r\n"));
        assert!(text.ends_with("Proxy-Authorization: Basic dTpw\r\n\r\n"));
        let mut out = Vec::new();
        write_connect(&mut out, "::1", 8443, None);
        assert!(out.starts_with(b"CONNECT [::1]:8443 HTTP/1.1\r\n"));
        assert!(!String::from_utf8(out)
            .unwrap()
            .contains("Proxy-Authorization"));

        let reply = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03";
        assert_eq!(parse_connect_reply(&reply[..20]), Ok(ConnectReply::Partial));
        assert_eq!(
            parse_connect_reply(reply),
            Ok(ConnectReply::Established(reply.len() - 2))
        );
        assert_eq!(
            parse_connect_reply(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"
            ),
            Err(ConnectError::Refused(407))
        );
        assert_eq!(
            parse_connect_reply(b"garbage\r\n\r\n"),
            Err(ConnectError::Malformed)
        );
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(9000, b'a');
        assert_eq!(parse_connect_reply(&long), Err(ConnectError::TooLarge));
    }
}
