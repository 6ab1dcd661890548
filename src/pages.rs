//! The routes of the :8000 server: `/` (the host fingerprint), `/healthz`, `/readyz`
//! and `/metrics` (the collector's Prometheus view, then the agent's and the
//! uploader's own families), answered from the agent's state without
//! touching the event loop.

use std::time::Instant;

use crate::docker::sync::DockerSync;
use crate::metrics::{exposition, Collector};
use crate::server::{self, Body, Handler, Response, StreamState};
use crate::upload::Uploader;

/// What the :8000 server reads of the agent while answering.
pub struct Pages<'a> {
    pub fingerprint: Option<&'a str>,
    pub collector: &'a Collector,
    pub uploader: Option<&'a Uploader>,
    pub containers: usize,
    /// Whether Docker answers, and `/readyz`'s answer (when the Docker API source runs).
    pub docker: Option<&'a DockerSync>,
    /// Whether the cgroup-tree source took its first look (when it runs).
    pub tree_synced: Option<bool>,
    /// The Docker API's socket (looked at by `/readyz` only).
    pub docker_socket: &'a std::path::Path,
    pub now: Instant,
}

/// A /metrics response goes out in pieces of about this many bytes.
const METRICS_PIECE: usize = 32 * 1024;

impl Pages<'_> {
    /// Appends the /metrics text from `stream` on, about `budget` bytes of
    /// it: the collector's view, then the agent's and the uploader's own
    /// families. Rendered per scrape from the latest readings (a rendering,
    /// never a collection), piece by piece as the socket drains, so even
    /// thousands of containers (some 8 KiB of text each) need no large buffer.
    pub fn produce_metrics(&self, stream: &mut StreamState, out: &mut Vec<u8>, budget: usize) {
        if !self
            .collector
            .write_prometheus_some(&mut stream.prom, out, budget)
        {
            return;
        }
        write_agent_families(out, self.containers, self.docker.map(DockerSync::is_up));
        if let Some(u) = self.uploader {
            u.write_prometheus(out);
        }
        stream.done = true;
    }
}

impl Handler for Pages<'_> {
    fn route(&mut self, req: &server::Request<'_>) -> Response {
        route(
            req.method,
            req.path,
            self.fingerprint,
            self.docker.is_some(),
            || {
                if self.tree_synced == Some(false) {
                    return Err("the cgroup tree has not been read yet".to_owned());
                }
                match self.docker {
                    // Beside the cgroup tree, a Docker API with no socket is a
                    // source that is not there (a containerd node), not one
                    // that is late.
                    Some(d) if self.tree_synced.is_none() || self.docker_socket.exists() => {
                        d.readiness(self.now)
                    }
                    _ => Ok(()),
                }
            },
        )
    }

    fn produce(&mut self, stream: &mut StreamState, out: &mut Vec<u8>) {
        let budget = out.len() + METRICS_PIECE;
        self.produce_metrics(stream, out, budget);
    }
}

/// Answers one request of the :8000 server.
fn route(
    method: &str,
    path: &str,
    fingerprint: Option<&str>,
    docker_api: bool,
    ready: impl FnOnce() -> Result<(), String>,
) -> Response {
    let path = path.split('?').next().unwrap_or(path);
    if !matches!(path, "/" | "/metrics" | "/healthz" | "/readyz") {
        return Response::text(404, "not found\n");
    }
    if method != "GET" && method != "HEAD" {
        return Response {
            status: 405,
            content_type: Some("text/plain; charset=utf-8"),
            body: Body::Static(b"method not allowed\n"),
            headers: &[("Allow", "GET, HEAD")],
        };
    }
    match path {
        "/" => match fingerprint {
            Some(f) => Response::text(200, format!("{f}\n")),
            None if docker_api => Response::text(
                503,
                "fingerprint not known yet: waiting for the Docker daemon id\n",
            ),
            None => Response::text(
                503,
                "fingerprint not known: no host id visible (mount /etc/machine-id or set DATALOOP_FINGERPRINT)\n",
            ),
        },
        "/healthz" => Response::text(200, "ok\n"),
        "/readyz" => match ready() {
            Ok(()) => Response::text(200, "ready\n"),
            Err(why) => Response::text(503, format!("not ready: {why}\n")),
        },
        _ => Response {
            status: 200,
            content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
            body: Body::Stream(StreamState::default()),
            headers: &[],
        },
    }
}

/// The agent's own health families.
fn write_agent_families(out: &mut Vec<u8>, containers: usize, docker_up: Option<bool>) {
    exposition::single(
        out,
        "outlyer_agent_containers",
        "gauge",
        "Containers tracked now.",
        containers,
    );
    if let Some(up) = docker_up {
        exposition::single(
            out,
            "outlyer_agent_docker_up",
            "gauge",
            "Whether the Docker API answers (1) or not (0).",
            u8::from(up),
        );
    }
    exposition::single(
        out,
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time the agent used.",
        crate::sys::process_cpu_seconds(),
    );
}
