//! The servers of an `http` back end as workers see them: each server's
//! address, pool key and TLS client, its weight, and its health cell — the
//! atomics every worker reads and the outlier detector and health checker
//! write (`crate::proxy::health`). Also the back end's balancing, ejection and
//! retry settings, compiled from `crate::config::backend`.
//!
//! Health cells outlive snapshots: [`health_cell`] hands out the cell already
//! in use for a server (same pool key) so that a reload keeps the state of
//! servers it did not change, and a removed server's cell is dropped with the
//! last snapshot naming it (its active checks stop with it). Each address of
//! a host name is a server (`super::names`), its pool key carrying the
//! address, so an address keeps its health while the name keeps it.

use crate::config::backend::{Balance, Outlier, Retry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

/// Health of one server, shared by every worker and the health thread.
#[derive(Debug)]
pub struct ServerHealth {
    /// Connect failures, resets and 5xx in a row.
    pub consecutive_failures: AtomicU32,
    /// [`monotonic_ms`] at which an ejection ends; 0 when not ejected.
    pub ejected_until: AtomicU64,
    /// Ejections since the server last answered well (the back-off exponent).
    pub ejections: AtomicU32,
    /// Requests in flight to this server, all workers together.
    pub active: AtomicU32,
    /// The last active health check passed (true without checks).
    pub probe_up: AtomicBool,
    /// Active checks passed / failed in a row, and when the next one is due
    /// ([`monotonic_ms`]); written by the health-check thread only.
    pub probe_passes: AtomicU32,
    pub probe_failures: AtomicU32,
    pub next_probe: AtomicU64,
    /// A check of this server is under way on a thread of its own: the
    /// health thread starts no second one.
    pub probing: AtomicBool,
    /// Counters for the metrics.
    pub ejections_total: AtomicU64,
    pub retries_total: AtomicU64,
    pub budget_exhausted_total: AtomicU64,
}

impl Default for ServerHealth {
    fn default() -> Self {
        ServerHealth {
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            active: AtomicU32::new(0),
            probe_up: AtomicBool::new(true),
            probe_passes: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            next_probe: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            ejections_total: AtomicU64::new(0),
            retries_total: AtomicU64::new(0),
            budget_exhausted_total: AtomicU64::new(0),
        }
    }
}

impl ServerHealth {
    /// Whether requests may go to the server at `now` ([`monotonic_ms`]).
    /// One relaxed load in the common case.
    #[inline]
    pub fn available(&self, now: impl FnOnce() -> u64) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until == 0 || until <= now()) && self.probe_up.load(Ordering::Relaxed)
    }

    /// Whether an ejection is running at `now`.
    pub fn ejected_at(&self, now: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now
    }
}

/// Milliseconds since the first call in this process (monotonic; never 0
/// after the first millisecond, so 0 can mean "not set").
pub fn monotonic_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    origin.elapsed().as_millis() as u64 + 1
}

/// The health cell of the server with this pool key: the one a live snapshot
/// already uses, or a new one.
pub fn health_cell(pool_key: &str) -> Arc<ServerHealth> {
    static CELLS: OnceLock<Mutex<HashMap<String, Weak<ServerHealth>>>> = OnceLock::new();
    let mut cells = CELLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(cell) = cells.get(pool_key).and_then(Weak::upgrade) {
        return cell;
    }
    cells.retain(|_, weak| weak.strong_count() > 0);
    let cell = Arc::new(ServerHealth::default());
    cells.insert(pool_key.to_string(), Arc::downgrade(&cell));
    cell
}

/// One server of an HTTP back end: a URL whose host is an IP literal, or
/// one address of a URL's host name (`super::names`: each address of a name
/// is a server of its own, with the URL's weight).
#[derive(Debug)]
pub struct ServerSpec {
    /// Identifies the server for connection pooling and health:
    /// [`ServerSpec::name`] (and for https the TLS identity).
    pub pool_key: Box<str>,
    /// `scheme://host:port`, and for an address of a host name the address
    /// too (`http://svc.example:8080 (10.0.0.7)`): logs, metrics, `/config`.
    pub name: Box<str>,
    /// Host name or IP literal (IPv6 in brackets) and port, from the URL.
    pub host: Box<str>,
    pub port: u16,
    /// Where to connect; None for a host name that did not resolve (its
    /// requests get 502).
    pub addr: Option<SocketAddr>,
    /// How to run the TLS handshake (https back ends).
    pub tls_client: Option<Arc<crate::tls::client::ClientTls>>,
    pub weight: u32,
    pub health: Arc<ServerHealth>,
    /// Resolutions of the host name, counted by the name (None: an IP literal).
    pub resolutions: Option<Arc<AtomicU64>>,
}

impl ServerSpec {
    /// How logs, metrics and `/config` name the server.
    pub fn base(&self) -> &str {
        &self.name
    }
}

/// What consistent hashing keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    ClientAddress,
    Subscriber,
    /// A request header field (its name, lowercase).
    Header(Box<str>),
}

/// How the back end balances its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceSpec {
    RoundRobin,
    LeastRequest,
    /// A ring of virtual nodes: (point, server index), sorted by point.
    ConsistentHash {
        on: HashOn,
        ring: Vec<(u64, u16)>,
    },
}

/// Passive health settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierSpec {
    pub consecutive_failures: u32,
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    pub max_ejected_percent: u32,
}

/// Retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySpec {
    pub attempts: u32,
    pub budget_percent: u32,
    pub statuses: Vec<u16>,
    pub idempotency_key: bool,
}

/// Active health-check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    pub path: Box<str>,
    pub interval_ms: u64,
    pub timeout: std::time::Duration,
    /// Passing statuses; empty: 200–399.
    pub statuses: Vec<u16>,
    pub healthy: u32,
    pub unhealthy: u32,
}

/// Compiles the `health_check` table, defaults applied.
pub fn compile_health_check(
    config: Option<&crate::config::backend::HealthCheck>,
) -> Result<Option<HealthCheckSpec>, (&'static str, String)> {
    let Some(c) = config else { return Ok(None) };
    let bad = |m: &str| ("health_check", m.to_string());
    let path = c.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/')
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad(
            "`path` must start with / and hold no spaces or control characters",
        ));
    }
    let interval = crate::config::seconds(c.interval.unwrap_or(5.0))
        .ok_or_else(|| bad("`interval` must be a positive number of seconds"))?;
    let timeout = crate::config::seconds(c.timeout.unwrap_or(2.0))
        .ok_or_else(|| bad("`timeout` must be a positive number of seconds"))?;
    let statuses = c.statuses.clone().unwrap_or_default();
    if statuses.iter().any(|s| !(100..=599).contains(s)) {
        return Err(bad("`statuses` must be HTTP statuses (100–599)"));
    }
    let (healthy, unhealthy) = (c.healthy.unwrap_or(2), c.unhealthy.unwrap_or(2));
    if healthy == 0 || unhealthy == 0 {
        return Err(bad("`healthy` and `unhealthy` must be at least 1"));
    }
    Ok(Some(HealthCheckSpec {
        path: path.into(),
        interval_ms: interval.as_millis().max(1) as u64,
        timeout,
        statuses,
        healthy,
        unhealthy,
    }))
}

/// Virtual nodes per unit of weight on the consistent-hashing ring.
const RING_POINTS_PER_WEIGHT: u32 = 160;

/// A 64-bit hash of `bytes`, the same in every process (FNV-1a, then mixed).
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer spreads the bits over the ring.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ring for servers named by `keys` with `weights`: each server's points
/// depend on its own key only, so removing a server moves only its keys.
pub fn build_ring(keys: &[&str], weights: &[u32]) -> Vec<(u64, u16)> {
    let mut ring = Vec::new();
    let mut name = String::new();
    for (index, (key, weight)) in keys.iter().zip(weights).enumerate() {
        for point in 0..weight.saturating_mul(RING_POINTS_PER_WEIGHT) {
            name.clear();
            name.push_str(key);
            name.push('#');
            name.push_str(itoa::Buffer::new().format(point));
            ring.push((hash64(name.as_bytes()), index as u16));
        }
    }
    ring.sort_unstable();
    ring
}

/// Compiles `balance` and `hash_key`. Errors are (key, message).
pub fn compile_balance(
    balance: Option<Balance>,
    hash_key: Option<&str>,
    keys: &[&str],
    weights: &[u32],
) -> Result<BalanceSpec, (&'static str, String)> {
    match (balance.unwrap_or(Balance::RoundRobin), hash_key) {
        (Balance::ConsistentHash, Some(key)) => {
            let on = match key {
                "client_address" => HashOn::ClientAddress,
                "subscriber" => HashOn::Subscriber,
                _ => match key.strip_prefix("header:") {
                    Some(name) if crate::http::fields::is_token(name.as_bytes()) => {
                        HashOn::Header(name.to_ascii_lowercase().into())
                    }
                    _ => {
                        return Err((
                            "hash_key",
                            format!(
                                "`{key}` is not `client_address`, `subscriber` or `header:NAME`"
                            ),
                        ))
                    }
                },
            };
            Ok(BalanceSpec::ConsistentHash {
                on,
                ring: build_ring(keys, weights),
            })
        }
        (Balance::ConsistentHash, None) => Err((
            "hash_key",
            "`consistent_hash` needs a `hash_key`".to_string(),
        )),
        (_, Some(_)) => Err((
            "hash_key",
            "`hash_key` applies to `balance = \"consistent_hash\"` only".to_string(),
        )),
        (Balance::RoundRobin, None) => Ok(BalanceSpec::RoundRobin),
        (Balance::LeastRequest, None) => Ok(BalanceSpec::LeastRequest),
    }
}

/// Compiles the `outlier` table, defaults applied. Without the table, a back
/// end of one server never ejects it (`consecutive_failures` 0: off).
pub fn compile_outlier(
    config: Option<&Outlier>,
    servers: usize,
) -> Result<OutlierSpec, (&'static str, String)> {
    let default = Outlier {
        consecutive_failures: None,
        base_ejection: None,
        max_ejection: None,
        max_ejected_percent: None,
    };
    let o = config.unwrap_or(&default);
    let ms = |value: Option<f64>, default: f64| {
        crate::config::seconds(value.unwrap_or(default))
            .map(|d| d.as_millis().max(1) as u64)
            .ok_or((
                "outlier",
                "ejection times must be positive seconds".to_string(),
            ))
    };
    let spec = OutlierSpec {
        consecutive_failures: o.consecutive_failures.unwrap_or(5),
        base_ejection_ms: ms(o.base_ejection, 1.0)?,
        max_ejection_ms: ms(o.max_ejection, 30.0)?,
        max_ejected_percent: o.max_ejected_percent.unwrap_or(50),
    };
    if spec.consecutive_failures == 0 || spec.max_ejected_percent > 100 {
        return Err((
            "outlier",
            "`consecutive_failures` must be at least 1 and `max_ejected_percent` at most 100"
                .to_string(),
        ));
    }
    if config.is_none() && servers < 2 {
        return Ok(OutlierSpec {
            consecutive_failures: 0,
            ..spec
        });
    }
    Ok(spec)
}

/// Compiles the `retry` table, defaults applied.
pub fn compile_retry(config: Option<&Retry>) -> Result<RetrySpec, (&'static str, String)> {
    let spec = RetrySpec {
        attempts: config.and_then(|r| r.attempts).unwrap_or(2),
        budget_percent: config.and_then(|r| r.budget_percent).unwrap_or(20),
        statuses: config
            .and_then(|r| r.statuses.clone())
            .unwrap_or_else(|| vec![502, 503]),
        idempotency_key: config.and_then(|r| r.idempotency_key).unwrap_or(false),
    };
    if !(1..=10).contains(&spec.attempts) || spec.budget_percent > 100 {
        return Err((
            "retry",
            "`attempts` must be 1 to 10 and `budget_percent` at most 100".to_string(),
        ));
    }
    if let Some(bad) = spec.statuses.iter().find(|s| !(500..=599).contains(*s)) {
        return Err(("retry", format!("retried status {bad} is not a 5xx status")));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Removing one of four servers moves only the keys it held.
    #[test]
    fn ring_moves_only_the_removed_servers_keys() {
        let keys = ["a", "b", "c", "d"];
        let full = build_ring(&keys, &[1; 4]);
        let less = build_ring(&keys[..3], &[1; 3]);
        let owner = |ring: &[(u64, u16)], k: u64| {
            let i = ring.partition_point(|p| p.0 < k) % ring.len();
            ring[i].1
        };
        let moved = (0..10_000u64)
            .map(|k| hash64(&k.to_le_bytes()))
            .filter(|&h| owner(&full, h) != 3 && owner(&full, h) != owner(&less, h))
            .count();
        assert_eq!(moved, 0);
    }

    // A server's health cell is shared while a snapshot holds it.
    #[test]
    fn health_cells_are_shared_by_pool_key() {
        let a = health_cell("http://cells.test:1");
        let b = health_cell("http://cells.test:1");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
