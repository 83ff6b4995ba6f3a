//! The keys of an `http` back end spread over several servers: the server
//! list, how requests are balanced over it, outlier ejection, retries and
//! concurrency limits. Serde data only; `snapshot::backend` validates and
//! compiles them.

use serde::Deserialize;

/// One server of a back end: a URL with the back end's scheme and path.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    pub url: String,
    /// Share of the requests relative to the other servers (default 1).
    pub weight: Option<u32>,
}

/// How a request chooses its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Smooth weighted round robin (the default).
    RoundRobin,
    /// The server with the fewest outstanding requests (per weight).
    LeastRequest,
    /// A ring of virtual nodes keyed by `hash_key`.
    ConsistentHash,
}

/// Passive health: servers that fail in a row are ejected for a while.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    /// Connect failures, resets and 5xx in a row that eject a server (default 5).
    pub consecutive_failures: Option<u32>,
    /// Seconds of the first ejection; doubled on each repeated one (default 1).
    pub base_ejection: Option<f64>,
    /// Longest ejection in seconds (default 30).
    pub max_ejection: Option<f64>,
    /// Largest share of the servers ejected at once, in percent (default 50;
    /// one server may always be ejected).
    pub max_ejected_percent: Option<u32>,
}

/// Retries on another server of requests that failed before any response byte.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries in all, the first included (default 2; 1 turns retries off).
    pub attempts: Option<u32>,
    /// Retries allowed per hundred requests, per worker (default 20).
    pub budget_percent: Option<u32>,
    /// Final statuses retried for idempotent requests (default [502, 503]).
    pub statuses: Option<Vec<u16>>,
    /// Non-idempotent requests carrying an `Idempotency-Key` are retried
    /// like idempotent ones (default false).
    pub idempotency_key: Option<bool>,
}

/// Active health checks: a request to each server on an interval.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Path requested (default "/").
    pub path: Option<String>,
    /// Seconds between checks of a server (default 5).
    pub interval: Option<f64>,
    /// Seconds a check may take (default 2).
    pub timeout: Option<f64>,
    /// Statuses that pass (default 200–399).
    pub statuses: Option<Vec<u16>>,
    /// Passed checks in a row that bring a server back (default 2).
    pub healthy: Option<u32>,
    /// Failed checks in a row that take a server out (default 2).
    pub unhealthy: Option<u32>,
}
