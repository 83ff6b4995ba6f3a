//! One active health check of one server, on its own thread (started by
//! [`crate::proxy::health_check`]): connect to the addresses the server is
//! reached at now, run the TLS handshake for an https server (the back end's
//! own client TLS: the same trust, SNI and client certificate as its
//! requests), send `GET path` with `Connection: close`, and read the status.
//! A refused or slow connection, a failed handshake (a certificate the back
//! end would refuse), or a status outside the passing ones fail the check.
//! Then the result is counted in the server's health cell.
//!
//! Blocking I/O (std sockets, `rustls::StreamOwned`), the whole check —
//! connect, handshake, request, status line — bounded by one deadline, the
//! check's timeout from its start ([`Bounded`]); never on a worker.

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
    /// Where the server is reached (its address).
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
    let deadline = Instant::now() + check.timeout;
    let Some(tcp) = connect(&target.addrs, deadline) else {
        return false;
    };
    let _ = tcp.set_nodelay(true);
    let tcp = Bounded { tcp, deadline };
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

/// A check's socket: every read and write waits at most until the check's
/// deadline, so a server that trickles bytes (one just inside a per-read
/// timeout, over and over: rustls reads many times during a handshake)
/// cannot hold the check past it.
struct Bounded {
    tcp: TcpStream,
    deadline: Instant,
}

impl Bounded {
    /// Sets the socket's timeouts to what is left; an error once none is.
    fn arm(&self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.set_write_timeout(Some(left))
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.tcp.read(buf)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Connects to the first of `addrs` that accepts, before `deadline`.
fn connect(addrs: &[SocketAddr], deadline: Instant) -> Option<TcpStream> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    // A server that answers a passing status one byte every 50 ms: each read
    // waits less than the check's 300 ms timeout, but the status line takes
    // 600 ms, so the check fails (it used to pass, however long it took).
    #[test]
    fn a_trickling_server_cannot_hold_a_check_past_its_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 256];
            let _ = conn.read(&mut request);
            // "HTTP/1.1 200 OK" arrives a byte at a time, then spaces.
            let mut bytes = b"HTTP/1.1 200 OK\r\n"
                .iter()
                .copied()
                .chain(std::iter::repeat(b' '));
            while !stopped.load(Relaxed) {
                if conn.write_all(&[bytes.next().unwrap_or(b' ')]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let target = ProbeTarget {
            health: Arc::new(ServerHealth::default()),
            base: "http://test".into(),
            backend: "test".into(),
            addrs: vec![addr],
            tls: None,
            authority: "test".into(),
            check: HealthCheckSpec {
                path: "/".into(),
                interval_ms: 1_000,
                timeout: Duration::from_millis(300),
                statuses: Vec::new(),
                healthy: 1,
                unhealthy: 1,
            },
        };
        let passed = probe(&target);
        stop.store(true, Relaxed);
        server.join().unwrap();
        assert!(
            !passed,
            "a status line that took 600 ms passed a 300 ms check"
        );
    }
}
