//! The admin endpoint: `/healthz`, `/readyz`, `/config`, `/usage` and `/metrics` on
//! their own listener (loopback by default), served by their own thread so
//! that nothing here can block a worker.
//!
//! [`metrics`] renders the Prometheus text. A deliberately small HTTP/1.1 server: one request per connection, each
//! connection on a short-lived thread of its own (a silent client cannot hold up a health check), read and write
//! timeouts, heads parsed with httparse, answers built in memory.

use crate::telemetry::access_log::AccessLogStats;

mod metrics;
pub mod servers;
mod usage;
pub use metrics::metrics;
pub use usage::usage_report;

use crate::snapshot::{Inventory, SnapshotStore};
use crate::telemetry::counters::SharedWorkerStats;
use crate::telemetry::reloads::ReloadStats;
use serde::Serialize;
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
/// Admin connections served at once (each on its own short-lived thread).
const ADMIN_MAX_CONNECTIONS: usize = 32;

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

/// `/config`'s JSON body: the running snapshot's identity, its inventory in
/// plain fields (see [`Inventory`]: settings, listeners, deployments and
/// usage plans as written, routes, subscribers, clients and referenced
/// files; never a secret) and the last reload.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ConfigReport {
    pub generation: u64,
    /// RFC 3339, milliseconds.
    pub loaded_at: String,
    /// SHA-256 of the config file text.
    pub digest: String,
    pub inventory: Inventory,
    /// The last reload applied, rejected or found unchanged since start (null before any).
    #[serde(default)]
    pub last_reload: Option<crate::telemetry::reloads::LastReload>,
    /// The back ends' servers and their health.
    #[serde(default)]
    pub servers: Vec<servers::ServerReport>,
}

/// Binds the admin listener and serves it on a new thread; returns its address.
pub fn spawn(address: SocketAddr, state: Arc<AdminState>) -> std::io::Result<SocketAddr> {
    spawn_on(TcpListener::bind(address)?, state)
}

/// Serves the admin endpoint on a socket already bound (a takeover's).
pub fn spawn_on(listener: TcpListener, state: Arc<AdminState>) -> std::io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("portcullis-admin".into())
        .spawn(move || {
            let active = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => serve_on_own_thread(stream, &state, &active),
                    Err(e) => warn!(error = %e, "admin accept failed"),
                }
            }
        })?;
    info!(admin_address = %bound, "admin endpoint serving /healthz /readyz /config /usage /metrics");
    Ok(bound)
}

/// Serves one admin connection on a thread of its own, so that a client that
/// connects and sends nothing (for up to [`ADMIN_IO_TIMEOUT`]) cannot hold up
/// a health check or a scrape; beyond [`ADMIN_MAX_CONNECTIONS`] at once, new
/// connections are closed unanswered.
fn serve_on_own_thread(stream: TcpStream, state: &Arc<AdminState>, active: &Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::AcqRel) >= ADMIN_MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::AcqRel);
        warn!("admin endpoint: too many connections at once; closing one unanswered");
        return;
    }
    let slot = ActiveSlot(Arc::clone(active));
    let state = Arc::clone(state);
    let spawned = std::thread::Builder::new()
        .name("portcullis-admin-conn".into())
        .spawn(move || {
            let _slot = slot;
            if let Err(e) = serve(stream, &state) {
                warn!(error = %e, "admin request failed");
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "admin endpoint: cannot start a thread for a connection");
    }
}

/// One of the admin endpoint's connection slots, given back when dropped.
struct ActiveSlot(Arc<AtomicUsize>);

impl Drop for ActiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn serve(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    stream.set_read_timeout(Some(ADMIN_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(ADMIN_IO_TIMEOUT))?;
    let mut buf = vec![0u8; ADMIN_MAX_HEAD];
    let mut filled = 0;
    let (method, path, query) = loop {
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
                let target = request.path.unwrap_or("");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                break (method, path.to_string(), query.to_string());
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => continue,
            _ => return respond(&mut stream, 400, "text/plain", "bad request\n", false),
        }
    };
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET and HEAD\n", false);
    }
    let (status, content_type, body) = answer(state, &path, &query);
    respond(&mut stream, status, content_type, &body, method == "HEAD")
}

/// The status, content type and body for a GET of `path`.
fn answer(state: &AdminState, path: &str, query: &str) -> (u16, &'static str, String) {
    let text = |status, body: &str| (status, "text/plain", body.to_string());
    match path {
        "/healthz" => text(200, "ok\n"),
        "/readyz" => {
            // Workers count themselves out when the drain starts.
            if state.ready_workers.load(Ordering::Acquire) >= state.workers.len() {
                text(200, "ready\n")
            } else {
                text(503, "not ready (starting or draining)\n")
            }
        }
        "/config" => (
            200,
            "application/json",
            serde_json::to_string(&config_report(state)).unwrap_or_default(),
        ),
        "/usage" => {
            let snapshot = state.store.load();
            let only = usage::query_param(query, "subscriber");
            match usage_report(&snapshot, only.as_deref()) {
                Some(body) => (200, "application/json", body),
                None => text(404, "no such subscriber\n"),
            }
        }
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(state),
        ),
        _ => text(404, "not found\n"),
    }
}

/// Writes the answer; a HEAD gets the head only, a 405 names the allowed methods.
fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        crate::http::status::reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if head_only {
        return Ok(());
    }
    stream.write_all(body.as_bytes())
}

/// The running snapshot's identity and inventory.
pub fn config_report(state: &AdminState) -> ConfigReport {
    let snapshot = state.store.load();
    ConfigReport {
        generation: snapshot.generation,
        loaded_at: humantime::format_rfc3339_millis(snapshot.loaded_at).to_string(),
        digest: snapshot.digest.clone(),
        inventory: snapshot.inventory().clone(),
        last_reload: state.reloads.last(),
        servers: servers::server_reports(&snapshot),
    }
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
