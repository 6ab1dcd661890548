//! The one parser of URLs and `host:port` in the settings: the agent API
//! and series URLs, the Graphite target and proxies. Messages never quote
//! the text: user info or a query could hold a secret.

use std::net::Ipv6Addr;

/// `scheme://host[:port][/path]` with the scheme reduced to "TLS or not".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path without a trailing `/` (empty for the root).
    pub path: String,
}

impl Target {
    /// The `Host` header value: the port only when it is not the default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `https://host[:port][/path]` (or `http://`); query and fragment
/// are refused, user info too (credentials belong in the key).
pub fn parse_url(text: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = text.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("scheme must be https:// (or http:// for testing)".to_owned());
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(
            "user info is not allowed in the URL (the key goes in DATALOOP_AGENT_KEY)".to_owned(),
        );
    }
    if path.contains(['?', '#']) {
        return Err("a query string or fragment is not allowed in the URL".to_owned());
    }
    let (host, port) = parse_authority(authority, if tls { 443 } else { 80 })
        .ok_or_else(|| "the URL has no valid host[:port]".to_owned())?;
    Ok(Target {
        tls,
        host,
        port,
        path: path.trim_end_matches('/').to_owned(),
    })
}

/// `DATALOOP_GRAPHITE`: `host:port`, `tls://host:port` (or `tcp://host:port`).
/// The port is required: a bare word such as `garbage` is refused rather
/// than taken as `garbage:2003`.
pub fn parse_graphite(text: &str) -> Result<Target, String> {
    let (tls, rest) = match text.strip_prefix("tls://") {
        Some(r) => (true, r),
        None => (false, text.strip_prefix("tcp://").unwrap_or(text)),
    };
    if rest.contains('@') {
        return Err("user info is not allowed in host:port".to_owned());
    }
    let parsed = if has_port(rest) {
        parse_authority(rest, 0)
    } else {
        None
    };
    let (host, port) = parsed.ok_or_else(|| {
        "must be host:port or tls://host:port with an explicit port (e.g. carbon.example.com:2003)"
            .to_owned()
    })?;
    Ok(Target {
        tls,
        host,
        port,
        path: String::new(),
    })
}

/// A proxy URL's parts; `userinfo` is `user[:pass]`, still percent-encoded.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyUrl<'a> {
    pub userinfo: Option<&'a str>,
    pub host: String,
    pub port: u16,
}

/// `http://[user:pass@]host[:port][/…]` (port 1080 by default, like curl)
/// or `[user:pass@]host:port`: without `http://` the port is required, so
/// that a stray word is not taken for a proxy host.
pub fn parse_proxy_url(text: &str) -> Result<ProxyUrl<'_>, String> {
    let (has_scheme, rest) = match text.split_once("://") {
        None => (false, text),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (true, rest),
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            return Err(format!(
                "proxy scheme {scheme:?} is not supported (only http:// CONNECT proxies)"
            ))
        }
        Some(_) => return Err("proxy is not a URL like http://host:port".to_owned()),
    };
    let rest = rest.split('/').next().unwrap_or_default();
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if !has_scheme && !has_port(hostport) {
        return Err("proxy must be http://host[:port] or host:port".to_owned());
    }
    let (host, port) =
        parse_authority(hostport, 1080).ok_or_else(|| "proxy needs host[:port]".to_owned())?;
    Ok(ProxyUrl {
        userinfo,
        host,
        port,
    })
}

/// True when `host:port` or `[v6]:port` names a port (valid or not).
fn has_port(text: &str) -> bool {
    match text.strip_prefix('[') {
        Some(r) => r
            .split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':')),
        None => text.contains(':'),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (lower-case host, port); the
/// port is 1..=65535, `default_port` when absent.
pub fn parse_authority(text: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0)?,
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    valid.then(|| (host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tls: bool, host: &str, port: u16, path: &str) -> Target {
        Target {
            tls,
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn authorities() {
        assert_eq!(
            parse_authority("Host.Example", 80),
            Some(("host.example".into(), 80))
        );
        assert_eq!(parse_authority("h:8080", 80), Some(("h".into(), 8080)));
        assert_eq!(parse_authority("[::1]", 443), Some(("::1".into(), 443)));
        assert_eq!(
            parse_authority("[::1]:8443", 443),
            Some(("::1".into(), 8443))
        );
        assert_eq!(
            parse_authority("10.0.0.1:1", 0),
            Some(("10.0.0.1".into(), 1))
        );
        for bad in [
            "", ":80", "h:", "h:0", "h:65536", "h:x", "[h]:1", "[::1]x", "a b", "u@h",
        ] {
            assert_eq!(parse_authority(bad, 80), None, "{bad}");
        }
        assert_eq!(parse_authority(&"a".repeat(254), 80), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://agent.dataloop.io"),
            Ok(target(true, "agent.dataloop.io", 443, ""))
        );
        assert_eq!(
            parse_url("http://[::1]:8080/api/"),
            Ok(target(false, "::1", 8080, "/api"))
        );
        assert_eq!(
            parse_url("http://[::1]:8080/").unwrap().host_header(),
            "[::1]:8080"
        );
        assert_eq!(parse_url("https://h:443/x").unwrap().host_header(), "h");
        assert_eq!(
            parse_url("ftp://h"),
            Err("scheme must be https:// (or http:// for testing)".into())
        );
        assert_eq!(
            parse_url("https://SEKRIT@h/"),
            Err("user info is not allowed in the URL (the key goes in DATALOOP_AGENT_KEY)".into())
        );
        assert_eq!(
            parse_url("https://h/?key=SEKRIT"),
            Err("a query string or fragment is not allowed in the URL".into())
        );
        for bad in [
            "https://",
            "https://h:0",
            "https://h:SEKRIT/",
            "https://h?k=SEKRIT",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(!e.contains("SEKRIT"), "{bad}: {e}");
        }
        assert_eq!(
            parse_url("https://"),
            Err("the URL has no valid host[:port]".into())
        );
    }

    #[test]
    fn graphite_targets() {
        assert_eq!(parse_graphite("g:2003"), Ok(target(false, "g", 2003, "")));
        assert_eq!(
            parse_graphite("tcp://g:2003"),
            Ok(target(false, "g", 2003, ""))
        );
        assert_eq!(
            parse_graphite("tls://G:2004"),
            Ok(target(true, "g", 2004, ""))
        );
        assert_eq!(
            parse_graphite("[::1]:2003"),
            Ok(target(false, "::1", 2003, ""))
        );
        assert_eq!(
            parse_graphite("u:SEKRIT@h:2003"),
            Err("user info is not allowed in host:port".into())
        );
        for bad in [
            "garbage", "tls://g", "[::1]", "h:", ":2003", "h:0", "h:SEKRIT",
        ] {
            let e = parse_graphite(bad).unwrap_err();
            assert!(
                e.contains("explicit port") && !e.contains("SEKRIT"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn proxy_urls() {
        assert_eq!(
            parse_proxy_url("http://u:p@Proxy:3128/"),
            Ok(ProxyUrl {
                userinfo: Some("u:p"),
                host: "proxy".into(),
                port: 3128
            })
        );
        let p = parse_proxy_url("HTTP://[::1]").unwrap();
        assert_eq!((p.userinfo, p.host.as_str(), p.port), (None, "::1", 1080));
        let p = parse_proxy_url("proxy:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        assert_eq!(
            parse_proxy_url("proxy"),
            Err("proxy must be http://host[:port] or host:port".into())
        );
        assert_eq!(
            parse_proxy_url("socks5://p:1"),
            Err("proxy scheme \"socks5\" is not supported (only http:// CONNECT proxies)".into())
        );
        assert_eq!(
            parse_proxy_url("u:SEKRIT@h://x"),
            Err("proxy is not a URL like http://host:port".into())
        );
        assert_eq!(
            parse_proxy_url("http://u:SEKRIT@"),
            Err("proxy needs host[:port]".into())
        );
        assert!(parse_proxy_url("http://h:x").is_err());
        assert!(parse_proxy_url("u:p@garbage").is_err());
    }
}
