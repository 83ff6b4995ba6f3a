//! One active health check of one server, on its own thread (started by
//! [`crate::proxy::health_check`]): connect to the addresses the server is
//! reached at now, run the TLS handshake for an https server (the back end's
//! own client TLS: the same trust, SNI and client certificate as its
//! requests), send `GET path` with `Connection: close`, and read the status.
//! A refused or slow connection, a failed handshake (a certificate the back
//! end would refuse), or a status outside the passing ones fail the check.
//! Then the result is counted in the server's health cell.
//!
//! Blocking I/O (std sockets, `rustls::StreamOwned`) bounded by the check's
//! timeout; never on a worker.

use crate::snapshot::servers::{HealthCheckSpec, ServerHealth};
use crate::tls::client::ClientTls;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// What a check of one server needs, owned by its thread.
pub struct ProbeTarget {
    pub health: Arc<ServerHealth>,
    /// `scheme://host:port`, for the audit lines.
    pub base: Box<str>,
    /// The back end's label, for the audit lines.
    pub backend: Box<str>,
    /// Where the server is reached now ([`crate::snapshot::servers::ServerSpec::connect_addrs`]).
    pub addrs: Vec<SocketAddr>,
    /// The back end's client TLS (https servers).
    pub tls: Option<Arc<ClientTls>>,
    /// The `Host` field.
    pub authority: Box<str>,
    pub check: HealthCheckSpec,
}

/// One check of the target: true when it passed.
pub fn probe(target: &ProbeTarget) -> bool {
    let check = &target.check;
    let Some(tcp) = connect(&target.addrs, check) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(check.timeout));
    let _ = tcp.set_write_timeout(Some(check.timeout));
    let _ = tcp.set_nodelay(true);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portcullis-health-check\r\nConnection: close\r\n\r\n",
        check.path, target.authority
    );
    let status = match &target.tls {
        None => ask(tcp, request.as_bytes()),
        Some(tls) => {
            let Ok(session) =
                rustls::ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
            else {
                return false;
            };
            // The handshake runs within the first write and read.
            ask(rustls::StreamOwned::new(session, tcp), request.as_bytes())
        }
    };
    match status {
        Some(status) if check.statuses.is_empty() => (200..400).contains(&status),
        Some(status) => check.statuses.contains(&status),
        None => false,
    }
}

/// Connects to the first of `addrs` that accepts, all within the check's
/// timeout.
fn connect(addrs: &[SocketAddr], check: &HealthCheckSpec) -> Option<TcpStream> {
    let deadline = Instant::now() + check.timeout;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        if let Ok(tcp) = TcpStream::connect_timeout(addr, left) {
            return Some(tcp);
        }
    }
    None
}

/// Sends `request` and reads the status of the answer; `None` when either
/// fails or the answer is not HTTP/1.x.
fn ask(mut stream: impl Read + Write, request: &[u8]) -> Option<u16> {
    stream.write_all(request).ok()?;
    stream.flush().ok()?;
    let mut head = [0u8; 12];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => len += n,
        }
    }
    if !head.starts_with(b"HTTP/1.") {
        return None;
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Counts one check's result; flips `probe_up` at the thresholds.
pub fn record(target: &ProbeTarget, passed: bool) {
    let (health, check) = (&target.health, &target.check);
    let (backend, server) = (&*target.backend, &*target.base);
    let up = health.probe_up.load(Relaxed);
    if passed {
        health.probe_failures.store(0, Relaxed);
        let passes = health.probe_passes.fetch_add(1, Relaxed) + 1;
        if !up && passes >= check.healthy {
            health.probe_up.store(true, Relaxed);
            info!(target: "portcullis::audit", backend, server, "server passed its health checks: back in service");
        }
    } else {
        health.probe_passes.store(0, Relaxed);
        let failures = health.probe_failures.fetch_add(1, Relaxed) + 1;
        if up && failures >= check.unhealthy {
            health.probe_up.store(false, Relaxed);
            warn!(target: "portcullis::audit", backend, server, failures, "server failed its health checks: out of service");
        }
    }
}
