//! Active health checks, off the request path: one thread requests each
//! server's check path on its interval and shares the result with every
//! worker through the server's health cell (`probe_up`). A server that fails
//! `unhealthy` checks in a row stops getting requests; `healthy` passes in a
//! row bring it back; both are audit lines.
//!
//! Each round reads the current snapshot, so servers a reload removes stop
//! being checked at once, and servers it keeps keep their state (their
//! health cells outlive the snapshot). A server of a back end without
//! checks is always `probe_up`. Each address of a host name is a server of
//! its own and is checked on its own. Checks of https servers open the TCP
//! connection only; plain HTTP servers get `GET path` with `Connection: close`.

use crate::snapshot::servers::{monotonic_ms, HealthCheckSpec, ServerSpec};
use crate::snapshot::{BackendSpec, SnapshotStore};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tracing::{info, warn};

/// How often the thread looks for checks that are due.
const ROUND: Duration = Duration::from_millis(50);

/// Starts the health-check thread; it lives as long as the process.
pub fn spawn(store: SnapshotStore) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("portcullis-health".into())
        .spawn(move || loop {
            round(&store);
            std::thread::sleep(ROUND);
        })
        .map(|_| ())
}

/// Runs the checks that are due in the current snapshot.
fn round(store: &SnapshotStore) {
    let snapshot = store.load_full();
    let mut seen = HashSet::new();
    for backend in snapshot.routes.iter().flat_map(|r| r.backend.each()) {
        let BackendSpec::Http(backend) = backend else {
            continue;
        };
        for server in &backend.servers {
            if !seen.insert(&*server.pool_key) {
                continue;
            }
            match &backend.health_check {
                None => {
                    server.health.probe_up.store(true, Relaxed);
                }
                Some(check) => {
                    let now = monotonic_ms();
                    if server.health.next_probe.load(Relaxed) <= now {
                        server
                            .health
                            .next_probe
                            .store(now + check.interval_ms, Relaxed);
                        let passed = probe(server, &backend.authority, check);
                        record(server, check, passed, &backend.label());
                    }
                }
            }
        }
    }
}

/// Counts one check's result; flips `probe_up` at the thresholds.
fn record(server: &ServerSpec, check: &HealthCheckSpec, passed: bool, backend: &str) {
    let health = &server.health;
    let up = health.probe_up.load(Relaxed);
    if passed {
        health.probe_failures.store(0, Relaxed);
        let passes = health.probe_passes.fetch_add(1, Relaxed) + 1;
        if !up && passes >= check.healthy {
            health.probe_up.store(true, Relaxed);
            info!(target: "portcullis::audit", backend, server = server.base(), "server passed its health checks: back in service");
        }
    } else {
        health.probe_passes.store(0, Relaxed);
        let failures = health.probe_failures.fetch_add(1, Relaxed) + 1;
        if up && failures >= check.unhealthy {
            health.probe_up.store(false, Relaxed);
            warn!(target: "portcullis::audit", backend, server = server.base(), failures, "server failed its health checks: out of service");
        }
    }
}

/// One check of `server`: true when it passed.
fn probe(server: &ServerSpec, authority: &str, check: &HealthCheckSpec) -> bool {
    let Some(addr) = server.addr else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, check.timeout) else {
        return false;
    };
    if server.tls_client.is_some() {
        return true;
    }
    let _ = stream.set_read_timeout(Some(check.timeout));
    let _ = stream.set_write_timeout(Some(check.timeout));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: portcullis-health-check\r\nConnection: close\r\n\r\n",
        check.path
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 32];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => len += n,
        }
    }
    let status = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(status) if head.starts_with(b"HTTP/1.") => {
            if check.statuses.is_empty() {
                (200..400).contains(&status)
            } else {
                check.statuses.contains(&status)
            }
        }
        _ => false,
    }
}
