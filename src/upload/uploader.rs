//! The I/O shell around [`Core`]: the resolver's UDP socket, one
//! connection slot per allowed in-flight request, TLS configuration, and
//! the calls the event loop makes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use rustls::ClientConfig;

use super::conn::{Conn, Timeouts};
use super::core::{Core, Endpoint, Outcome, MAX_IN_FLIGHT};
use super::dns::{self, Lookup, Resolver};
use super::retry::Rng;
use super::settings::UploadSettings;
use super::wire::HostIdentity;
use crate::metrics::exposition::{self, Line};
use crate::registry::ContainerInfo;

/// Tokens an [`Uploader`] uses: `first_token .. first_token + TOKENS`
/// (the resolver's socket, then one per connection).
pub const TOKENS: usize = 1 + MAX_IN_FLIGHT[0] + MAX_IN_FLIGHT[1] + MAX_IN_FLIGHT[2];

/// The agent never presents a certificate: loading private keys is not
/// needed, and leaving it out lets the linker drop ring's signing code.
#[derive(Debug)]
struct NoPrivateKeys;

impl rustls::crypto::KeyProvider for NoPrivateKeys {
    fn load_private_key(
        &self,
        _key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "client certificates are not supported".into(),
        ))
    }
}

/// ring, trimmed to what a client on x86_64/aarch64 needs: AES-GCM suites
/// (hardware-accelerated there; ChaCha20 left out to save ~50 KB of code),
/// X25519 and P-256/P-384 key exchange, every signature algorithm webpki
/// verifies (public CA chains use RSA and ECDSA P-256/P-384).
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        key_provider: &NoPrivateKeys,
        ..rustls::crypto::ring::default_provider()
    }
}

/// TLS 1.2 and 1.3, Mozilla's roots plus `extra`.
pub fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("DATALOOP_CA_FILE: unusable certificate: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub struct Uploader {
    core: Core,
    grace: Duration,
    first_token: usize,
    resolver: Resolver,
    dns_sock: Option<UdpSocket>,
    conns: Vec<Conn>,
    /// Set when work was queued outside `tick`/`ready`: the loop should
    /// call `tick` at once.
    kick: Option<Instant>,
    last_now: Instant,
}

impl Uploader {
    /// Reads `/etc/hosts` and `/etc/resolv.conf` once. Fails only when the
    /// TLS configuration cannot be built (an unusable CA file): exit 2.
    pub fn new(
        settings: UploadSettings,
        host: HostIdentity,
        first_token: usize,
        now: Instant,
    ) -> Result<Uploader, String> {
        // Second line of defence: no log line can carry the key.
        crate::log::set_secret(settings.key.expose());
        let tls = tls_config(&settings.extra_roots)?;
        let hosts = std::fs::read_to_string(&settings.hosts_file).unwrap_or_default();
        let servers = settings.nameservers.clone().unwrap_or_else(|| {
            let text = std::fs::read_to_string(&settings.resolv_conf).unwrap_or_default();
            // The resolver's socket is IPv4 (an IPv6 nameserver would
            // only ever time out): use the IPv4 ones.
            let mut ips: Vec<IpAddr> = dns::parse_resolv_conf(&text)
                .into_iter()
                .filter(IpAddr::is_ipv4)
                .collect();
            if ips.is_empty() {
                ips.push(IpAddr::from([127, 0, 0, 1]));
            }
            ips.into_iter().map(|ip| SocketAddr::new(ip, 53)).collect()
        });
        let seed = Rng::seed_from_env();
        let resolver = Resolver::new(hosts, servers, Duration::from_secs(2), seed as u16);
        let core = Core::new(&settings, host, seed, now);
        let timeouts = Timeouts {
            connect: settings.connect_timeout,
            handshake: settings.handshake_timeout,
            request: settings.request_timeout,
        };
        let mut conns = Vec::new();
        let mut token = first_token + 1;
        for ep in Endpoint::ALL {
            let Some(target) = core.target(ep).cloned() else {
                token += MAX_IN_FLIGHT[ep as usize];
                continue;
            };
            let proxy = ep.proxy(&settings, &target).cloned();
            for _ in 0..MAX_IN_FLIGHT[ep as usize] {
                conns.push(Conn::new(
                    Token(token),
                    ep,
                    target.clone(),
                    proxy.clone(),
                    target.tls.then(|| tls.clone()),
                    timeouts,
                ));
                token += 1;
            }
        }
        for line in settings.describe() {
            if line.contains("WARNING") {
                crate::warn!("{line}");
            } else {
                crate::info!("{line}");
            }
        }
        Ok(Uploader {
            core,
            grace: settings.shutdown_grace,
            first_token,
            resolver,
            dns_sock: None,
            conns,
            kick: Some(now),
            last_now: now,
        })
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.first_token..self.first_token + TOKENS).contains(&token.0)
    }

    /// Registers `info` as a virtual agent within one loop turn.
    pub fn container_started(
        &mut self,
        info: &ContainerInfo,
        processes: Vec<String>,
        now: Instant,
    ) {
        self.core.container_started(info, processes);
        self.kick = Some(now);
    }

    pub fn update_processes(&mut self, finger: &str, processes: Vec<String>) {
        self.core.update_processes(finger, processes);
    }

    pub fn container_stopped(&mut self, _id: &str, finger: &str, now: Instant) {
        self.core.container_stopped(finger);
        self.kick = Some(now);
    }

    /// One cycle's samples: `(fingerprint, Outlyer path, value)`.
    pub fn push_samples<'a>(
        &mut self,
        unix_secs: f64,
        samples: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
    ) {
        self.core.push_samples(unix_secs, samples);
        self.kick = Some(self.last_now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut t = self.core.poll_timeout();
        let mut consider = |d: Option<Instant>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |t: Instant| t.min(d)));
            }
        };
        consider(self.kick);
        consider(self.resolver.poll_timeout());
        for c in &self.conns {
            consider(c.deadline());
        }
        t
    }

    /// Timers: sync, retries, timeouts, and anything queued since.
    pub fn tick(&mut self, registry: &Registry, now: Instant) {
        self.last_now = now;
        self.kick = None;
        self.core.handle_timeout(now);
        self.resolver.handle_timeout(now);
        for i in 0..self.conns.len() {
            if let Some((id, outcome)) = self.conns[i].check_timeout(registry, now) {
                self.finish(id, outcome, now);
            }
        }
        self.pump(registry, now);
    }

    /// A readiness event for one of our tokens.
    pub fn ready(&mut self, registry: &Registry, token: Token, now: Instant) {
        self.last_now = now;
        if token.0 == self.first_token {
            self.read_dns(now);
        } else if let Some(i) = self.conns.iter().position(|c| c.token == token) {
            if let Some((id, outcome)) = self.conns[i].drive(registry, now) {
                self.finish(id, outcome, now);
            }
        }
        self.pump(registry, now);
    }

    fn finish(&mut self, id: u64, outcome: Outcome, now: Instant) {
        if let Outcome::Failed(why) = &outcome {
            crate::debug!("upload: request {id} failed: {why}");
        }
        self.core.handle_outcome(id, outcome, now);
    }

    /// Hands queued requests to free connections; drives DNS.
    fn pump(&mut self, registry: &Registry, now: Instant) {
        for _round in 0..4 {
            let mut progressed = false;
            // Connections waiting for an address.
            for i in 0..self.conns.len() {
                if !self.conns[i].is_waiting_for_address() {
                    continue;
                }
                let host = self.conns[i].dial_host().to_owned();
                let result = match self.resolver.lookup(&host, now) {
                    Lookup::Pending => continue,
                    Lookup::Ready(addrs) => Ok(addrs),
                    Lookup::Failed(e) => Err(e),
                };
                progressed = true;
                if let Some((id, outcome)) = self.conns[i].connect(result, registry, now) {
                    self.finish(id, outcome, now);
                }
            }
            // New requests on free connections.
            for i in 0..self.conns.len() {
                if !self.conns[i].is_available() {
                    continue;
                }
                let ep = self.conns[i].endpoint;
                let Some(req) = self.core.poll_request(ep, now) else {
                    continue;
                };
                progressed = true;
                crate::debug!("upload: {} → {}", req.what, ep.name());
                if let Some((id, outcome)) = self.conns[i].start(req, registry, now) {
                    self.finish(id, outcome, now);
                }
            }
            self.send_dns(registry, now);
            if !progressed {
                break;
            }
        }
    }

    fn send_dns(&mut self, registry: &Registry, now: Instant) {
        while self.resolver.wants_transmit() {
            if self.dns_sock.is_none() {
                let bind: SocketAddr = ([0, 0, 0, 0], 0).into();
                match UdpSocket::bind(bind) {
                    Ok(mut s) => {
                        if registry
                            .register(&mut s, Token(self.first_token), Interest::READABLE)
                            .is_ok()
                        {
                            self.dns_sock = Some(s);
                        }
                    }
                    Err(e) => crate::warn!("upload: cannot open a DNS socket: {e}"),
                }
            }
            let Some((to, datagram)) = self.resolver.poll_transmit(now) else {
                break;
            };
            if let Some(s) = &self.dns_sock {
                // A lost datagram is a timeout like any other.
                let _ = s.send_to(&datagram, to);
            }
        }
    }

    fn read_dns(&mut self, now: Instant) {
        let Some(s) = &self.dns_sock else { return };
        let mut buf = [0u8; 1500];
        loop {
            match s.recv_from(&mut buf) {
                Ok((n, from)) => self.resolver.handle_datagram(from, &buf[..n], now),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    /// SIGTERM/SIGINT: deregister every container, flush, stop within the
    /// grace period (4.5 s by default) whether or not the backend answers.
    pub fn shutdown(&mut self, registry: &Registry, now: Instant) {
        self.core.shutdown(self.grace, now);
        // Deregistration goes first: an API request still waiting for its
        // answer (a ping to a stalled backend may wait out the whole grace
        // period) gives its connection up, and the deregistrations go out
        // on fresh ones at once.
        for c in &mut self.conns {
            let yields = c
                .current_id()
                .is_some_and(|id| self.core.yields_on_shutdown(id));
            if yields {
                if let Some(id) = c.abandon(registry) {
                    crate::debug!("upload: request {id} abandoned for the deregistrations");
                    self.core.abandon(id);
                }
            }
        }
        self.pump(registry, now);
    }

    pub fn is_shutdown_complete(&self) -> bool {
        self.core.is_shutdown_complete()
    }

    /// Bytes written to and read from the network (TLS records included).
    pub fn wire_bytes(&self) -> (u64, u64) {
        self.conns
            .iter()
            .fold((0, 0), |(o, i), c| (o + c.bytes_out, i + c.bytes_in))
    }

    /// Bytes written and read on the connections of one endpoint.
    pub fn wire_bytes_of(&self, ep: Endpoint) -> (u64, u64) {
        self.conns
            .iter()
            .filter(|c| c.endpoint == ep)
            .fold((0, 0), |(o, i), c| (o + c.bytes_out, i + c.bytes_in))
    }

    /// `outlyer_agent_*` families for `/metrics`.
    pub fn write_prometheus(&self, out: &mut Vec<u8>) {
        let mut text = String::with_capacity(2048);
        self.core.write_prometheus(&mut text);
        let name = "outlyer_agent_upload_wire_bytes_total";
        let help = "Bytes the uploader wrote and read on its sockets.";
        exposition::header(&mut text, name, "counter", help);
        let (o, i) = self.wire_bytes();
        for (direction, v) in [("out", o), ("in", i)] {
            Line::new(&mut text, name)
                .label("direction", direction)
                .value(v);
        }
        out.extend_from_slice(text.as_bytes());
    }
}
