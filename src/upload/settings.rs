//! Upload settings from the environment (flags mirror the variables, see
//! [`UPLOAD_FLAGS`](crate::setting::UPLOAD_FLAGS)). Every bad value is a
//! [`SettingError`] naming the setting; the key itself is never part of a
//! message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::proxy::{NoProxy, Proxy};
use crate::secret::Secret;
use crate::setting::{agent_key, SettingError};
use crate::url::parse_graphite;
pub use crate::url::{parse_url, Target};

pub const DEFAULT_SERVER: &str = "https://agent.dataloop.io";
pub const DEFAULT_BUFFER_SAMPLES: usize = 10_000;

/// Proxies as curl reads them from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    /// `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`/`ALL_PROXY`.
    pub https: Option<Proxy>,
    /// `http_proxy` only (curl ignores upper-case `HTTP_PROXY`, which a
    /// CGI client could set through a `Proxy:` header), then `all_proxy`.
    pub http: Option<Proxy>,
    /// `no_proxy`, then `NO_PROXY`.
    pub no_proxy: NoProxy,
}

impl Proxies {
    /// The proxy to use for `target`, if any.
    pub fn for_target(&self, target: &Target) -> Option<&Proxy> {
        if self.no_proxy.matches(&target.host, target.port) {
            return None;
        }
        if target.tls {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UploadSettings {
    pub key: Secret,
    /// Base URL of the agent API.
    pub server: Target,
    /// Graphite plaintext sink (`tls` when given as `tls://host:port`).
    pub graphite: Option<Target>,
    /// HTTPS series sink: the full `.../v2/accounts/<account>/series` URL.
    pub series: Option<Target>,
    /// Extra trusted roots from `DATALOOP_CA_FILE`, already parsed.
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub proxies: Proxies,
    /// Samples kept per sink while the backend cannot take them.
    pub buffer_samples: usize,
    pub sync_interval: Duration,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// From the request's last byte written to the response's last byte.
    pub request_timeout: Duration,
    /// Bound on shutdown: deregister and flush, then stop regardless.
    pub shutdown_grace: Duration,
    pub resolv_conf: PathBuf,
    pub hosts_file: PathBuf,
    /// Overrides the nameservers of `resolv_conf` (tests).
    pub nameservers: Option<Vec<SocketAddr>>,
}

fn err(setting: &str, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

/// What is wrong with a PEM file, without quoting its lines.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        E::Base64Decode(_) => "a section is not valid base64",
        E::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

/// A value that will become part of a request head must not carry CR, LF
/// or any other control byte.
fn reject_controls(setting: &str, value: &str) -> Result<(), SettingError> {
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err(err(setting, "contains control characters (CR/LF?)"));
    }
    Ok(())
}

impl UploadSettings {
    /// `Ok(None)` when `DATALOOP_AGENT_KEY` is unset or empty: nothing is
    /// uploaded. `read_file` loads `DATALOOP_CA_FILE` (start-up only).
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<UploadSettings>, SettingError> {
        Self::from_env_with(env, |p| std::fs::read(p))
    }

    pub fn from_env_with(
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Option<UploadSettings>, SettingError> {
        let nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        // Without a key nothing is uploaded, but every upload setting given
        // is still checked: a bad one stops start-up either way.
        let key = agent_key(env("DATALOOP_AGENT_KEY"))?;

        let server_text = nonempty("DATALOOP_SERVER").unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        reject_controls("DATALOOP_SERVER", &server_text)?;
        let server = parse_url(server_text.trim()).map_err(|m| err("DATALOOP_SERVER", m))?;

        let graphite = match nonempty("DATALOOP_GRAPHITE") {
            None => None,
            Some(v) => {
                reject_controls("DATALOOP_GRAPHITE", &v)?;
                Some(parse_graphite(v.trim()).map_err(|m| err("DATALOOP_GRAPHITE", m))?)
            }
        };

        let series = match nonempty("DATALOOP_SERIES_URL") {
            None => None,
            Some(v) => {
                reject_controls("DATALOOP_SERIES_URL", &v)?;
                let t = parse_url(v.trim()).map_err(|m| err("DATALOOP_SERIES_URL", m))?;
                if !t.path.ends_with("/series") {
                    return Err(err(
                        "DATALOOP_SERIES_URL",
                        "the URL path must end with /v2/accounts/<account>/series",
                    ));
                }
                Some(t)
            }
        };

        let mut extra_roots = Vec::new();
        if let Some(path) = nonempty("DATALOOP_CA_FILE") {
            let pem =
                read_file(&path).map_err(|e| err("DATALOOP_CA_FILE", format!("{path:?}: {e}")))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    err(
                        "DATALOOP_CA_FILE",
                        format!("{path:?}: bad PEM: {}", pem_problem(&e)),
                    )
                })?;
                extra_roots.push(cert);
            }
            if extra_roots.is_empty() {
                return Err(err(
                    "DATALOOP_CA_FILE",
                    format!("{path:?} holds no CERTIFICATE block"),
                ));
            }
        }

        let proxy_var = |names: &[&'static str]| -> Result<Option<Proxy>, SettingError> {
            for &name in names {
                if let Some(v) = nonempty(name) {
                    reject_controls(name, &v)?;
                    return Proxy::parse(v.trim()).map(Some).map_err(|m| err(name, m));
                }
            }
            Ok(None)
        };
        let https = proxy_var(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])?;
        let http = proxy_var(&["http_proxy", "all_proxy", "ALL_PROXY"])?;
        // `HTTP_PROXY` (upper case) is never read, so never checked.
        let no_proxy = match [("no_proxy", env("no_proxy")), ("NO_PROXY", env("NO_PROXY"))]
            .into_iter()
            .find_map(|(name, v)| v.map(|v| (name, v)))
        {
            Some((name, v)) => {
                reject_controls(name, &v)?;
                NoProxy::try_parse(&v).map_err(|m| err(name, m))?
            }
            None => NoProxy::default(),
        };

        let buffer_samples = match nonempty("DATALOOP_BUFFER_SAMPLES") {
            None => DEFAULT_BUFFER_SAMPLES,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (100..=10_000_000).contains(&n) => n,
                _ => {
                    return Err(err(
                        "DATALOOP_BUFFER_SAMPLES",
                        format!("{v:?} is not a whole number from 100 to 10000000"),
                    ))
                }
            },
        };

        let Some(key) = key else {
            return Ok(None);
        };
        Ok(Some(UploadSettings {
            key,
            server,
            graphite,
            series,
            extra_roots,
            proxies: Proxies {
                https,
                http,
                no_proxy,
            },
            buffer_samples,
            sync_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_millis(4500),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            hosts_file: PathBuf::from("/etc/hosts"),
            nameservers: None,
        }))
    }

    /// Lines worth logging once at start-up (never the key).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "upload: agent API {}://{}{}",
            if self.server.tls { "https" } else { "http" },
            self.server.host_header(),
            self.server.path
        )];
        if !self.server.tls {
            lines.push("upload: WARNING the agent API is plain http: the key travels unencrypted (testing only)".into());
        }
        if let Some(g) = &self.graphite {
            lines.push(format!(
                "upload: graphite {}{}",
                if g.tls { "tls://" } else { "" },
                g.host_header()
            ));
        }
        if let Some(s) = &self.series {
            lines.push(format!("upload: series {}{}", s.host_header(), s.path));
            if !s.tls {
                lines.push("upload: WARNING the series URL is plain http: the key travels unencrypted (testing only)".into());
            }
        }
        if self.graphite.is_none() && self.series.is_none() {
            lines.push("upload: no metrics sink (DATALOOP_GRAPHITE, DATALOOP_SERIES_URL): only the agent API sync runs".into());
        }
        lines
    }

    /// True when some configured address is plain text.
    pub fn has_plain_http(&self) -> bool {
        !self.server.tls || self.series.as_ref().is_some_and(|s| !s.tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<UploadSettings>, SettingError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UploadSettings::from_env_with(
            |k| map.get(k).cloned(),
            |p| {
                if p == "/ca.pem" {
                    Ok(b"-----BEGIN CERTIFICATE-----\nMIIBAjCBqQIBATAKBggqhkjOPQQDAjAAMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEw\n-----END CERTIFICATE-----\n".to_vec())
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
                }
            },
        )
    }

    fn setting_of(r: Result<Option<UploadSettings>, SettingError>) -> String {
        r.unwrap_err().setting
    }

    #[test]
    fn no_key_no_upload() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(settings(&[("DATALOOP_AGENT_KEY", "  ")]).unwrap(), None);
    }

    #[test]
    fn defaults() {
        let s = settings(&[("DATALOOP_AGENT_KEY", "k")]).unwrap().unwrap();
        assert_eq!(s.key.expose(), "k");
        assert_eq!(
            s.server,
            Target {
                tls: true,
                host: "agent.dataloop.io".into(),
                port: 443,
                path: String::new()
            }
        );
        assert_eq!(s.buffer_samples, 10_000);
        assert!(s.graphite.is_none() && s.series.is_none());
        assert_eq!(s.proxies, Proxies::default());
        assert!(!format!("{s:?}").contains("\"k\""));
    }

    #[test]
    fn urls_and_sinks() {
        let s = settings(&[
            ("DATALOOP_AGENT_KEY", "k"),
            ("DATALOOP_SERVER", "http://[::1]:8080/api/"),
            ("DATALOOP_GRAPHITE", "tls://Carbon.example:2004"),
            (
                "DATALOOP_SERIES_URL",
                "https://ingest.example/v2/accounts/acme/series",
            ),
            ("DATALOOP_BUFFER_SAMPLES", "500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.server.tls, s.server.host.as_str(), s.server.port),
            (false, "::1", 8080)
        );
        assert_eq!(s.server.path, "/api");
        assert_eq!(s.server.host_header(), "[::1]:8080");
        assert!(s.has_plain_http());
        let g = s.graphite.unwrap();
        assert_eq!(
            (g.tls, g.host.as_str(), g.port),
            (true, "carbon.example", 2004)
        );
        let series = s.series.unwrap();
        assert_eq!(series.path, "/v2/accounts/acme/series");
        assert_eq!(series.host_header(), "ingest.example");
        assert_eq!(s.buffer_samples, 500);
        let g = settings(&[("DATALOOP_AGENT_KEY", "k"), ("DATALOOP_GRAPHITE", "g:2003")])
            .unwrap()
            .unwrap()
            .graphite
            .unwrap();
        assert_eq!((g.tls, g.port), (false, 2003));
    }

    #[test]
    fn graphite_needs_an_explicit_port() {
        let k = ("DATALOOP_AGENT_KEY", "k");
        for (value, tls, host, port) in [
            ("localhost:2003", false, "localhost", 2003),
            ("carbon.example.com:2003", false, "carbon.example.com", 2003),
            ("tcp://c:2004", false, "c", 2004),
            ("tls://Carbon:2004", true, "carbon", 2004),
            ("[::1]:2003", false, "::1", 2003),
            ("10.0.0.1:1", false, "10.0.0.1", 1),
        ] {
            let g = settings(&[k, ("DATALOOP_GRAPHITE", value)])
                .unwrap()
                .unwrap()
                .graphite
                .unwrap();
            assert_eq!(
                (g.tls, g.host.as_str(), g.port),
                (tls, host, port),
                "{value}"
            );
        }
        for value in [
            "nohostport",
            "garbage",
            "g",
            "localhost",
            "tls://carbon.example.com",
            "tcp://garbage",
            "[::1]",
            "h:",
            ":2003",
            "h:0",
            "u:p@h:2003",
        ] {
            let e = settings(&[k, ("DATALOOP_GRAPHITE", value)]).unwrap_err();
            assert_eq!(e.setting, "DATALOOP_GRAPHITE", "{value}");
            assert!(e.message.contains("host:port"), "{value}: {}", e.message);
        }
    }

    /// Without a key nothing is uploaded, yet a bad upload setting still
    /// stops start-up; good ones just mean local mode.
    #[test]
    fn upload_settings_are_checked_without_a_key_too() {
        for (var, value) in [
            ("DATALOOP_GRAPHITE", "nohostport"),
            ("DATALOOP_SERVER", "https://secret@h/"),
            ("DATALOOP_SERIES_URL", "https://h/not-series"),
            ("HTTPS_PROXY", "garbage"),
        ] {
            let e = settings(&[(var, value)]).unwrap_err();
            assert_eq!(e.setting, var, "{value}");
        }
        assert!(settings(&[("DATALOOP_GRAPHITE", "carbon:2003")])
            .unwrap()
            .is_none());
        assert!(settings(&[]).unwrap().is_none());
    }

    #[test]
    fn bad_proxies_stop_start_up() {
        let k = ("DATALOOP_AGENT_KEY", "k");
        for (var, value) in [
            ("HTTPS_PROXY", "garbage"),
            ("https_proxy", "garbage"),
            ("http_proxy", "garbage"),
            ("ALL_PROXY", "garbage"),
            ("all_proxy", "garbage"),
            ("HTTPS_PROXY", "u:p@garbage"),
            ("HTTPS_PROXY", "http://"),
            ("HTTPS_PROXY", "http://h:x"),
            ("NO_PROXY", "example.com,a:b"),
            ("no_proxy", "10.0.0.0/33"),
            ("NO_PROXY", "a/b"),
            ("NO_PROXY", "bad\rhost"),
        ] {
            assert_eq!(
                setting_of(settings(&[k, (var, value)])),
                var,
                "{var}={value}"
            );
        }
        // Upper-case HTTP_PROXY is never read (like curl), so never checked.
        assert!(settings(&[k, ("HTTP_PROXY", "garbage")]).is_ok());
        for (var, value) in [
            ("HTTPS_PROXY", "proxy:3128"),
            ("HTTPS_PROXY", "http://proxy"),
            ("https_proxy", "http://u:p@proxy.example.com:3128/"),
            ("http_proxy", "[::1]:3128"),
            (
                "NO_PROXY",
                "localhost, .example.com,10.0.0.0/8 ::1 h:8443 *",
            ),
            ("NO_PROXY", ""),
        ] {
            assert!(settings(&[k, (var, value)]).is_ok(), "{var}={value}");
        }
    }

    #[test]
    fn messages_never_echo_values_that_can_hold_secrets() {
        let k = ("DATALOOP_AGENT_KEY", "k");
        for (var, value) in [
            ("DATALOOP_SERVER", "https://SEKRIT@127.0.0.1:1/"),
            ("DATALOOP_SERVER", "https://user:SEKRIT@h/"),
            ("DATALOOP_SERVER", "https://h/api?key=SEKRIT"),
            ("DATALOOP_SERVER", "https://h?key=SEKRIT"),
            ("DATALOOP_SERVER", "https://h/#SEKRIT"),
            ("DATALOOP_SERVER", "ftp://SEKRIT@h"),
            ("DATALOOP_SERVER", "SEKRIT"),
            ("DATALOOP_SERVER", "https://h:SEKRIT/"),
            ("DATALOOP_SERIES_URL", "https://h/v2/accounts/SEKRIT"),
            (
                "DATALOOP_SERIES_URL",
                "https://SEKRIT@h/v2/accounts/a/series",
            ),
            (
                "DATALOOP_SERIES_URL",
                "https://h/v2/accounts/a/series?SEKRIT",
            ),
            ("DATALOOP_GRAPHITE", "SEKRIT"),
            ("DATALOOP_GRAPHITE", "SEKRIT@h:2003"),
            ("DATALOOP_GRAPHITE", "h:SEKRIT"),
            ("HTTPS_PROXY", "http://u:SEKRIT@"),
            ("HTTPS_PROXY", "socks5://u:SEKRIT@h:1080"),
            ("HTTPS_PROXY", "u:SEKRIT@h"),
            ("https_proxy", "u:SEKRIT@h://x"),
            ("ALL_PROXY", "http://u:SEKRIT@h:notaport"),
            ("NO_PROXY", "SEKRIT:x"),
        ] {
            let e = settings(&[k, (var, value)]).expect_err(value);
            assert_eq!(e.setting, var, "{value}");
            assert!(!e.to_string().contains("SEKRIT"), "{var}={value}: {e}");
        }
        let e = settings(&[k, ("DATALOOP_SERVER", "https://SEKRIT@h/")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid DATALOOP_SERVER: user info is not allowed in the URL (the key goes in DATALOOP_AGENT_KEY)"
        );
        let e = settings(&[k, ("DATALOOP_SERVER", "ftp://h")]).unwrap_err();
        assert!(e.message.contains("scheme must be https://"), "{e}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let k = ("DATALOOP_AGENT_KEY", "k");
        for (var, value) in [
            ("DATALOOP_SERVER", "ftp://x"),
            ("DATALOOP_SERVER", "https://"),
            ("DATALOOP_SERVER", "https://h:0"),
            ("DATALOOP_SERVER", "https://h/x?y"),
            ("DATALOOP_SERVER", "https://u:p@h"),
            ("DATALOOP_SERVER", "https://h\r\nX: y"),
            ("DATALOOP_GRAPHITE", "h:notaport"),
            ("DATALOOP_SERIES_URL", "https://h/v2/accounts/a"),
            ("DATALOOP_BUFFER_SAMPLES", "10"),
            ("DATALOOP_BUFFER_SAMPLES", "lots"),
            ("DATALOOP_CA_FILE", "/missing.pem"),
            ("https_proxy", "socks5://p:1080"),
            ("HTTPS_PROXY", "http://p:1080\r\n"),
        ] {
            assert_eq!(
                setting_of(settings(&[k, (var, value)])),
                var,
                "{var}={value}"
            );
        }
        let e = settings(&[("DATALOOP_AGENT_KEY", "se cret")]).unwrap_err();
        assert_eq!(e.setting, "DATALOOP_AGENT_KEY");
        assert!(!e.message.contains("se cret"));
        assert_eq!(
            setting_of(settings(&[("DATALOOP_AGENT_KEY", "a\r\nb")])),
            "DATALOOP_AGENT_KEY"
        );
    }

    #[test]
    fn debug_output_hides_the_key_and_proxy_credentials() {
        let s = settings(&[
            ("DATALOOP_AGENT_KEY", "SEKRIT-KEY"),
            ("HTTPS_PROXY", "http://user:SEKRIT-PASS@proxy:3128"),
        ])
        .unwrap()
        .unwrap();
        let auth = s.proxies.https.as_ref().unwrap().authorization.as_ref();
        let encoded = auth.unwrap().expose().trim_start_matches("Basic ");
        for text in [format!("{s:?}"), format!("{s:#?}")] {
            assert!(
                !text.contains("SEKRIT") && !text.contains(encoded),
                "{text}"
            );
        }
    }

    #[test]
    fn ca_file_is_parsed() {
        let s = settings(&[("DATALOOP_AGENT_KEY", "k"), ("DATALOOP_CA_FILE", "/ca.pem")])
            .unwrap()
            .unwrap();
        assert_eq!(s.extra_roots.len(), 1);
    }

    #[test]
    fn proxies_read_like_curl() {
        let s = settings(&[
            ("DATALOOP_AGENT_KEY", "k"),
            ("HTTPS_PROXY", "upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("HTTP_PROXY", "ignored:1"),
            ("NO_PROXY", "internal.example"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.proxies.https.as_ref().unwrap().host, "lower");
        assert_eq!(s.proxies.http, None, "upper-case HTTP_PROXY is ignored");
        let t = parse_url("https://api.internal.example").unwrap();
        assert_eq!(s.proxies.for_target(&t), None);
        let t = parse_url("https://api.example").unwrap();
        assert_eq!(s.proxies.for_target(&t).unwrap().port, 3128);
        let s = settings(&[("DATALOOP_AGENT_KEY", "k"), ("ALL_PROXY", "http://all")])
            .unwrap()
            .unwrap();
        assert_eq!(s.proxies.https.as_ref().unwrap().port, 1080);
        assert_eq!(s.proxies.http.as_ref().unwrap().host, "all");
    }
}
