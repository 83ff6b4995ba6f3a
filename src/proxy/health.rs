//! Passive health (outlier ejection): each try's outcome updates its server's
//! shared health cell. Connect failures, resets and 5xx in a row eject the
//! server for a back-off that doubles on each repeated ejection, up to the
//! back end's maximum, while at most `max_ejected_percent` of its servers
//! (at least one) are ejected at once. The decision is taken once, by the
//! failing try that crosses the threshold (a compare-and-swap), and announced
//! in the audit log; the first good answer after the ejection ends announces
//! the server's return. A try that succeeds pays two relaxed loads.

use crate::snapshot::servers::monotonic_ms;
use crate::snapshot::HttpBackendSpec;
use std::sync::atomic::Ordering::Relaxed;
use tracing::info;

/// A try on server `index` was answered (below 500).
#[inline]
pub fn succeeded(backend: &HttpBackendSpec, index: usize) {
    let health = &backend.servers[index].health;
    if health.consecutive_failures.load(Relaxed) != 0 {
        health.consecutive_failures.store(0, Relaxed);
    }
    if health.ejected_until.load(Relaxed) != 0 && health.ejected_until.swap(0, Relaxed) != 0 {
        health.ejections.store(0, Relaxed);
        info!(
            target: "portcullis::audit",
            backend = %backend.label(),
            server = backend.servers[index].base(),
            "server returned: answered after its ejection"
        );
    }
}

/// A try on server `index` failed (connect failure, reset, 5xx).
pub fn failed(backend: &HttpBackendSpec, index: usize) {
    let outlier = &backend.outlier;
    let server = &backend.servers[index];
    let health = &server.health;
    let in_a_row = health.consecutive_failures.fetch_add(1, Relaxed) + 1;
    if outlier.consecutive_failures == 0 || in_a_row < outlier.consecutive_failures {
        return;
    }
    let now = monotonic_ms();
    let before = health.ejected_until.load(Relaxed);
    if before > now {
        return;
    }
    let servers = backend.servers.len();
    let cap = (servers * outlier.max_ejected_percent as usize / 100).max(1);
    let ejected = backend
        .servers
        .iter()
        .filter(|s| s.health.ejected_at(now))
        .count();
    if ejected >= cap {
        return;
    }
    let repeats = health.ejections.load(Relaxed).min(16);
    let back_off = outlier
        .base_ejection_ms
        .saturating_mul(1 << repeats)
        .min(outlier.max_ejection_ms);
    if health
        .ejected_until
        .compare_exchange(before, now + back_off, Relaxed, Relaxed)
        .is_err()
    {
        return;
    }
    health.ejections.fetch_add(1, Relaxed);
    health.ejections_total.fetch_add(1, Relaxed);
    // One more failure after the ejection ends ejects the server again.
    health
        .consecutive_failures
        .store(outlier.consecutive_failures - 1, Relaxed);
    info!(
        target: "portcullis::audit",
        backend = %backend.label(),
        server = server.base(),
        failures = in_a_row,
        seconds = back_off as f64 / 1000.0,
        "server ejected: failed in a row"
    );
}

/// Seconds until the first ejected server of `backend` returns (at least 1),
/// for `Retry-After` when no server is available.
pub fn seconds_until_return(backend: &HttpBackendSpec) -> u64 {
    let now = monotonic_ms();
    backend
        .servers
        .iter()
        .map(|s| s.health.ejected_until.load(Relaxed))
        .filter(|&until| until > now)
        .min()
        .map_or(1, |until| (until - now).div_ceil(1000).max(1))
}
