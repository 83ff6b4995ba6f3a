//! The servers of the running snapshot's back ends as the admin endpoint
//! shows them: their health in `/config` and their series in `/metrics`
//! (up, ejected, active requests, ejections, retries, retry budget
//! exhausted). Read from the shared health cells; each server once, however
//! many routes name it.

use crate::snapshot::servers::{monotonic_ms, ServerSpec};
use crate::snapshot::{BackendSpec, Snapshot};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// One server in `/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// `scheme://host:port`.
    pub server: String,
    /// The back ends (their server lists) naming it.
    pub backend: String,
    pub weight: u32,
    /// Takes requests: not ejected, not failing its health checks.
    pub up: bool,
    pub ejected: bool,
    /// Seconds left of the ejection (0 when not ejected).
    pub ejected_seconds_left: f64,
    /// Requests in flight, all workers together.
    pub active: u32,
    /// Connect failures, resets and 5xx in a row.
    pub consecutive_failures: u32,
}

/// Every server of the snapshot's HTTP back ends, each once.
fn servers(snapshot: &Snapshot) -> Vec<(String, &ServerSpec)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for backend in snapshot.routes.iter().flat_map(|r| r.backend.each()) {
        if let BackendSpec::Http(h) = backend {
            for server in &h.servers {
                if seen.insert(&*server.pool_key) {
                    out.push((h.label(), server));
                }
            }
        }
    }
    out
}

/// The servers and their health, for `/config`.
pub fn server_reports(snapshot: &Snapshot) -> Vec<ServerReport> {
    let now = monotonic_ms();
    servers(snapshot)
        .into_iter()
        .map(|(backend, s)| {
            let until = s.health.ejected_until.load(Relaxed);
            let ejected = s.health.ejected_at(now);
            ServerReport {
                server: s.base().to_string(),
                backend,
                weight: s.weight,
                up: s.health.available(|| now),
                ejected,
                ejected_seconds_left: if ejected {
                    (until - now) as f64 / 1000.0
                } else {
                    0.0
                },
                active: s.health.active.load(Relaxed),
                consecutive_failures: s.health.consecutive_failures.load(Relaxed),
            }
        })
        .collect()
}

/// The per-server series of `/metrics`.
pub fn server_series(out: &mut String, snapshot: &Snapshot) {
    let servers = servers(snapshot);
    if servers.is_empty() {
        return;
    }
    let now = monotonic_ms();
    type Value = fn(&ServerSpec, u64) -> u64;
    let families: [(&str, &str, &str, Value); 7] = [
        (
            "portcullis_server_up",
            "gauge",
            "1 while the server takes requests (not ejected, health checks passing).",
            |s, now| u64::from(s.health.available(|| now)),
        ),
        (
            "portcullis_server_ejected",
            "gauge",
            "1 while the server is ejected by outlier detection.",
            |s, now| u64::from(s.health.ejected_at(now)),
        ),
        (
            "portcullis_server_active_requests",
            "gauge",
            "Requests in flight to the server, all workers.",
            |s, _| u64::from(s.health.active.load(Relaxed)),
        ),
        (
            "portcullis_server_ejections_total",
            "counter",
            "Times outlier detection ejected the server.",
            |s, _| s.health.ejections_total.load(Relaxed),
        ),
        (
            "portcullis_server_retries_total",
            "counter",
            "Failed tries on the server retried on another one.",
            |s, _| s.health.retries_total.load(Relaxed),
        ),
        (
            "portcullis_server_resolutions_total",
            "counter",
            "Times the server's host name was resolved (at start, reload and on its TTL).",
            |s, _| s.resolutions.as_ref().map_or(0, |r| r.load(Relaxed)),
        ),
        (
            "portcullis_server_retry_budget_exhausted_total",
            "counter",
            "Failed tries on the server not retried because the retry budget was empty.",
            |s, _| s.health.budget_exhausted_total.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (_, server) in &servers {
            let label = server.base().replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{server=\"{label}\"}} {}", value(server, now));
        }
    }
}
