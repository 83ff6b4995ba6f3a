//! The admin endpoint: `/healthz`, `/readyz`, `/config` and `/metrics` on
//! their own listener (loopback by default), served by their own thread so
//! that nothing here can block a worker.
//!
//! A deliberately small HTTP/1.1 server: one request per connection, read and
//! write timeouts, heads parsed with httparse, answers built in memory.

use crate::access_log::AccessLogStats;
use crate::reload::ReloadStats;
use crate::snapshot::{Inventory, SnapshotStore};
use crate::snapshot::{RouteSpec, Snapshot};
use crate::telemetry::{merged, total, SharedWorkerStats, DECISIONS, STATUS_CLASSES};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Longest an admin client may take to send its request or read the answer.
const ADMIN_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest admin request head read.
const ADMIN_MAX_HEAD: usize = 8192;

/// What the admin endpoint reports on.
pub struct AdminState {
    pub store: SnapshotStore,
    pub reloads: Arc<ReloadStats>,
    pub workers: Vec<Arc<SharedWorkerStats>>,
    /// Workers that have started accepting.
    pub ready_workers: Arc<AtomicUsize>,
    /// The access log's counters, if it is on.
    pub access_log: Option<Arc<AccessLogStats>>,
}

/// `/config`'s JSON body.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ConfigReport {
    pub generation: u64,
    /// RFC 3339, milliseconds.
    pub loaded_at: String,
    /// SHA-256 of the config file text.
    pub digest: String,
    pub inventory: Inventory,
}

/// Binds the admin listener and serves it on a new thread; returns its address.
pub fn spawn(address: SocketAddr, state: Arc<AdminState>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("portcullis-admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = serve(stream, &state) {
                            warn!(error = %e, "admin request failed");
                        }
                    }
                    Err(e) => warn!(error = %e, "admin accept failed"),
                }
            }
        })?;
    info!(admin_address = %bound, "admin endpoint serving /healthz /readyz /config /metrics");
    Ok(bound)
}

fn serve(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    stream.set_read_timeout(Some(ADMIN_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(ADMIN_IO_TIMEOUT))?;
    let mut buf = vec![0u8; ADMIN_MAX_HEAD];
    let mut filled = 0;
    let (method, path) = loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or("").to_string();
                let path = request
                    .path
                    .unwrap_or("")
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .to_string();
                break (method, path);
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => continue,
            _ => return respond(&mut stream, 400, "text/plain", "bad request\n"),
        }
    };
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET\n");
    }
    match path.as_str() {
        "/healthz" => respond(&mut stream, 200, "text/plain", "ok\n"),
        "/readyz" => {
            if state.ready_workers.load(Ordering::Acquire) >= state.workers.len() {
                respond(&mut stream, 200, "text/plain", "ready\n")
            } else {
                respond(&mut stream, 503, "text/plain", "starting\n")
            }
        }
        "/config" => {
            let body = serde_json::to_string(&config_report(state)).unwrap_or_default();
            respond(&mut stream, 200, "application/json", &body)
        }
        "/metrics" => respond(
            &mut stream,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            &metrics(state),
        ),
        _ => respond(&mut stream, 404, "text/plain", "not found\n"),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        crate::http::status::reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

/// The running snapshot's identity and inventory.
pub fn config_report(state: &AdminState) -> ConfigReport {
    let snapshot = state.store.load();
    ConfigReport {
        generation: snapshot.generation,
        loaded_at: humantime::format_rfc3339_millis(snapshot.loaded_at).to_string(),
        digest: snapshot.digest.clone(),
        inventory: Inventory::of(&snapshot),
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The Prometheus text exposition.
pub fn metrics(state: &AdminState) -> String {
    let mut out = String::with_capacity(8192);
    let snapshot = state.store.load();
    let workers = &state.workers;
    let reloads = &state.reloads;
    metric(
        &mut out,
        "portcullis_config_generation",
        "gauge",
        "Generation of the running configuration.",
    );
    let _ = writeln!(out, "portcullis_config_generation {}", snapshot.generation);
    metric(
        &mut out,
        "portcullis_config_reloads_total",
        "counter",
        "Configuration reload attempts by result.",
    );
    for (result, counter) in [
        ("applied", &reloads.applied),
        ("rejected", &reloads.failed),
        ("unchanged", &reloads.unchanged),
    ] {
        let _ = writeln!(
            out,
            "portcullis_config_reloads_total{{result=\"{result}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    metric(
        &mut out,
        "portcullis_workers",
        "gauge",
        "Worker threads serving.",
    );
    let _ = writeln!(
        out,
        "portcullis_workers {}",
        state.ready_workers.load(Ordering::Acquire)
    );
    metric(
        &mut out,
        "portcullis_responses_total",
        "counter",
        "Answers to clients by status class, routed or not.",
    );
    for class in 0..STATUS_CLASSES {
        let n = total(workers, |w| &w.requests_by_class[class]);
        let _ = writeln!(
            out,
            "portcullis_responses_total{{status_class=\"{}xx\"}} {n}",
            class + 1
        );
    }
    metric(
        &mut out,
        "portcullis_decisions_total",
        "counter",
        "Requests by the decision that settled them.",
    );
    for (i, decision) in DECISIONS.iter().enumerate() {
        let n = total(workers, |w| &w.decisions[i]);
        let _ = writeln!(
            out,
            "portcullis_decisions_total{{decision=\"{}\"}} {n}",
            decision.code()
        );
    }
    metric(
        &mut out,
        "portcullis_requests_total",
        "counter",
        "Routed requests by deployment, route and status class.",
    );
    let mut route_bytes = Vec::with_capacity(snapshot.routes.len());
    for route in &snapshot.routes {
        let (classes, bytes_in, bytes_out) = route.stats.totals();
        let labels = route_labels(&snapshot, route);
        for (class, n) in classes.iter().enumerate() {
            let _ = writeln!(
                out,
                "portcullis_requests_total{{{labels},status_class=\"{}xx\"}} {n}",
                class + 1
            );
        }
        route_bytes.push((labels, bytes_in, bytes_out));
    }
    metric(
        &mut out,
        "portcullis_route_received_bytes_total",
        "counter",
        "Request bytes (head and body) by route.",
    );
    for (labels, bytes_in, _) in &route_bytes {
        let _ = writeln!(
            out,
            "portcullis_route_received_bytes_total{{{labels}}} {bytes_in}"
        );
    }
    metric(
        &mut out,
        "portcullis_route_sent_bytes_total",
        "counter",
        "Response bytes by route.",
    );
    for (labels, _, bytes_out) in &route_bytes {
        let _ = writeln!(
            out,
            "portcullis_route_sent_bytes_total{{{labels}}} {bytes_out}"
        );
    }
    metric(
        &mut out,
        "portcullis_received_bytes_total",
        "counter",
        "Request bytes received (head and body).",
    );
    let _ = writeln!(
        out,
        "portcullis_received_bytes_total {}",
        total(workers, |w| &w.bytes_in)
    );
    metric(
        &mut out,
        "portcullis_sent_bytes_total",
        "counter",
        "Response bytes sent.",
    );
    let _ = writeln!(
        out,
        "portcullis_sent_bytes_total {}",
        total(workers, |w| &w.bytes_out)
    );
    histogram(
        &mut out,
        "portcullis_request_duration_seconds",
        "Time from a complete request head to the end of the answer.",
        &merged(workers, |w| &w.request_latency),
    );
    histogram(
        &mut out,
        "portcullis_backend_duration_seconds",
        "Time spent in the exchange with the back end.",
        &merged(workers, |w| &w.backend_latency),
    );
    metric(
        &mut out,
        "portcullis_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(
        out,
        "portcullis_connections_accepted_total {}",
        total(workers, |w| &w.connections_accepted)
    );
    metric(
        &mut out,
        "portcullis_connections_active",
        "gauge",
        "Client connections open.",
    );
    let _ = writeln!(
        out,
        "portcullis_connections_active {}",
        total(workers, |w| &w.connections_active)
    );
    if let Some(log) = &state.access_log {
        metric(
            &mut out,
            "portcullis_access_log_lines_total",
            "counter",
            "Access log lines by fate.",
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_lines_total{{result=\"written\"}} {}",
            log.lines_written.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_lines_total{{result=\"dropped\"}} {}",
            log.lines_dropped.load(Ordering::Relaxed)
        );
        metric(
            &mut out,
            "portcullis_access_log_reopens_total",
            "counter",
            "Times the access log file was reopened.",
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_reopens_total {}",
            log.reopens.load(Ordering::Relaxed)
        );
    }
    out
}

/// `deployment="..",route="..",methods=".."` with Prometheus escaping.
fn route_labels(snapshot: &Snapshot, route: &RouteSpec) -> String {
    let deployment = &snapshot.deployments[route.deployment].name;
    let methods = if route.methods.is_empty() {
        "*".to_string()
    } else {
        route.methods.join(",")
    };
    format!(
        "deployment=\"{}\",route=\"{}\",methods=\"{}\"",
        escape_label(deployment),
        escape_label(&route.pattern),
        escape_label(&methods)
    )
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A latency histogram (recorded in microseconds) as a Prometheus histogram in seconds.
fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram<u64>) {
    metric(out, name, "histogram", help);
    for bound in LATENCY_BUCKETS {
        let micros = (bound * 1_000_000.0) as u64;
        let count = if h.is_empty() {
            0
        } else {
            h.count_between(0, micros)
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
    let _ = writeln!(
        out,
        "{name}_sum {}",
        h.mean() * h.len() as f64 / 1_000_000.0
    );
    let _ = writeln!(out, "{name}_count {}", h.len());
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Fetches `/config` from a running gateway's admin endpoint.
pub fn fetch_config(address: &str) -> Result<ConfigReport, String> {
    let mut stream = TcpStream::connect(address)
        .map_err(|e| format!("cannot reach the admin endpoint {address}: {e}"))?;
    let _ = stream.set_read_timeout(Some(ADMIN_IO_TIMEOUT));
    stream
        .write_all(
            format!("GET /config HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("truncated admin response")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "admin endpoint answered: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("unreadable /config answer: {e}"))
}
